//! `[common_issues]`: when reports of the same problem become a common issue
//! (共性问题, DOMAIN.md): how many distinct customers, within which window,
//! and the priority the linked tickets are raised to.

use std::time::Duration;

use serde::Deserialize;

use crate::Priority;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonIssuesPolicy {
    /// Distinct customers (keyed pseudonyms) that make a common issue.
    #[serde(default = "default_min_customers")]
    pub min_customers: u32,
    /// Reports count together within this many days.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Linked tickets are raised to this priority (batch complaints are urgent).
    #[serde(default = "default_raise_to")]
    pub raise_to: String,
}

fn default_min_customers() -> u32 {
    3
}

fn default_window_days() -> u32 {
    7
}

fn default_raise_to() -> String {
    "urgent".into()
}

impl Default for CommonIssuesPolicy {
    fn default() -> Self {
        Self {
            min_customers: default_min_customers(),
            window_days: default_window_days(),
            raise_to: default_raise_to(),
        }
    }
}

/// The checked rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonIssueRules {
    pub min_customers: u32,
    pub window: Duration,
    pub raise_to: Priority,
}

pub fn build(p: &CommonIssuesPolicy) -> Result<CommonIssueRules, (String, String)> {
    if !(2..=1000).contains(&p.min_customers) {
        return Err(("common_issues.min_customers".into(), "2 to 1000".into()));
    }
    if !(1..=365).contains(&p.window_days) {
        return Err(("common_issues.window_days".into(), "1 to 365 days".into()));
    }
    let raise_to: Priority = p.raise_to.parse().map_err(|m| ("common_issues.raise_to".to_string(), m))?;
    Ok(CommonIssueRules {
        min_customers: p.min_customers,
        window: Duration::from_secs(u64::from(p.window_days) * 86_400),
        raise_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_three_customers_in_seven_days_raised_to_urgent() {
        let rules = build(&CommonIssuesPolicy::default()).unwrap();
        assert_eq!(rules.min_customers, 3);
        assert_eq!(rules.window, Duration::from_secs(7 * 86_400));
        assert_eq!(rules.raise_to, Priority::Urgent);
    }

    #[test]
    fn bad_values_name_the_key() {
        let p = CommonIssuesPolicy { min_customers: 1, ..Default::default() };
        assert_eq!(build(&p).unwrap_err().0, "common_issues.min_customers");
        let p = CommonIssuesPolicy { window_days: 0, ..Default::default() };
        assert_eq!(build(&p).unwrap_err().0, "common_issues.window_days");
        let p = CommonIssuesPolicy { raise_to: "asap".into(), ..Default::default() };
        assert_eq!(build(&p).unwrap_err().0, "common_issues.raise_to");
    }
}
