//! Staff roles and their wire names (the `role` claim of a token).

use std::fmt;
use std::str::FromStr;

/// What a caller may do, from DOMAIN.md's role table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A channel adapter: submits feedback and nothing else.
    Adapter,
    /// Frontline agent: creates and views tickets, assigns within the team, adds notes.
    Agent,
    /// Department handler: acts on tickets assigned to them.
    Handler,
    /// Reassigns, extends deadlines, leads reviews, sees all tickets.
    Supervisor,
    /// Everything on their department's tickets and reports.
    DepartmentManager,
    /// Reads everything; receives the last escalation.
    Director,
    /// Configuration (taxonomy, SLA policies, calendars, templates, rules, users).
    Admin,
    /// Read-only analytics; never sees contacts.
    Analyst,
}

impl Role {
    /// Every role, in the order of the table.
    pub const ALL: [Role; 8] = [
        Role::Adapter,
        Role::Agent,
        Role::Handler,
        Role::Supervisor,
        Role::DepartmentManager,
        Role::Director,
        Role::Admin,
        Role::Analyst,
    ];

    /// The name in tokens, tables and error messages.
    pub const fn wire_name(self) -> &'static str {
        match self {
            Role::Adapter => "adapter",
            Role::Agent => "agent",
            Role::Handler => "handler",
            Role::Supervisor => "supervisor",
            Role::DepartmentManager => "department_manager",
            Role::Director => "director",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (one of: {names})", names = Role::ALL.map(Role::wire_name).join(", "))]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.wire_name() == s).ok_or_else(|| UnknownRole(s.to_string()))
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.wire_name())
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.wire_name().parse::<Role>().unwrap(), role);
        }
        let err = "boss".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("department_manager"), "{err}");
    }
}
