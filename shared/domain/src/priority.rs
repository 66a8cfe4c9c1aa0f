//! The four priority levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A priority level; ordered from low to urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];

    /// From the wire; `None` for unspecified or values this build does not know.
    pub fn from_proto(value: i32) -> Option<Self> {
        match kesu_proto::v1::Priority::try_from(value).ok()? {
            kesu_proto::v1::Priority::Unspecified => None,
            kesu_proto::v1::Priority::Low => Some(Priority::Low),
            kesu_proto::v1::Priority::Medium => Some(Priority::Medium),
            kesu_proto::v1::Priority::High => Some(Priority::High),
            kesu_proto::v1::Priority::Urgent => Some(Priority::Urgent),
        }
    }

    pub fn to_proto(self) -> kesu_proto::v1::Priority {
        match self {
            Priority::Low => kesu_proto::v1::Priority::Low,
            Priority::Medium => kesu_proto::v1::Priority::Medium,
            Priority::High => kesu_proto::v1::Priority::High,
            Priority::Urgent => kesu_proto::v1::Priority::Urgent,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority {s:?} (expected low, medium, high or urgent)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_round_trip_and_unknowns() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_proto(p.to_proto() as i32), Some(p));
        }
        assert_eq!(Priority::from_proto(0), None);
        assert_eq!(Priority::from_proto(99), None);
    }
}
