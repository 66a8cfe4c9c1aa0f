//! The declarative role tables: for each RPC of a gRPC service, which roles
//! may call it and whether the call is audited. Each service declares its
//! table in its own `roles` module; the layer in `guard` enforces it.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use prost_reflect::DescriptorPool;

use crate::Role;

/// What the audit log records about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// Not recorded (reads of masked data).
    No,
    /// A staff action (the RPC changes something).
    Action,
    /// A read that returns contacts or originals in clear.
    ClearRead,
}

impl Audit {
    pub const fn name(self) -> &'static str {
        match self {
            Audit::No => "none",
            Audit::Action => "action",
            Audit::ClearRead => "clear_read",
        }
    }
}

/// One RPC of a service: who may call it, and what is audited.
#[derive(Debug, Clone, Copy)]
pub struct Rpc {
    /// The method name as in the proto (`ListRejected`).
    pub method: &'static str,
    pub roles: &'static [Role],
    pub audit: Audit,
    /// Dotted path of the request field naming what the call acts on
    /// (`ticket.ticket_id`), recorded in the audit log; empty for none.
    pub subject: &'static str,
}

impl Rpc {
    /// A read of masked data: not audited.
    pub const fn read(method: &'static str, roles: &'static [Role]) -> Self {
        Self { method, roles, audit: Audit::No, subject: "" }
    }

    /// A staff action on `subject` (a request field path, or "").
    pub const fn action(method: &'static str, roles: &'static [Role], subject: &'static str) -> Self {
        Self { method, roles, audit: Audit::Action, subject }
    }

    /// A read returning contacts or originals in clear.
    pub const fn clear_read(method: &'static str, roles: &'static [Role], subject: &'static str) -> Self {
        Self { method, roles, audit: Audit::ClearRead, subject }
    }

    pub fn allows(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// "agent, supervisor or admin".
    pub fn roles_text(&self) -> String {
        let names: Vec<&str> = self.roles.iter().map(|r| r.wire_name()).collect();
        match names.split_last() {
            None => "no role".into(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// The role table of one proto service.
#[derive(Debug, Clone, Copy)]
pub struct RoleTable {
    /// The fully-qualified proto service (`kesu.v1.TicketService`).
    pub service: &'static str,
    pub rpcs: &'static [Rpc],
}

impl RoleTable {
    pub fn rpc(&self, method: &str) -> Option<&Rpc> {
        self.rpcs.iter().find(|r| r.method == method)
    }

    /// Checks the table against the contract: every method of the proto
    /// service is listed exactly once, nothing else is, and every subject
    /// path names a string field of the request. Each service's unit test
    /// calls this.
    pub fn check_against_contract(&self) -> Result<(), String> {
        let service = contract()
            .get_service_by_name(self.service)
            .ok_or_else(|| format!("{} is not a service of the contract", self.service))?;
        let in_proto: BTreeSet<String> = service.methods().map(|m| m.name().to_string()).collect();
        let mut in_table = BTreeSet::new();
        for rpc in self.rpcs {
            if !in_table.insert(rpc.method.to_string()) {
                return Err(format!("{}.{} is listed twice", self.service, rpc.method));
            }
            if rpc.roles.is_empty() {
                return Err(format!("{}.{} allows no role", self.service, rpc.method));
            }
        }
        let missing: Vec<_> = in_proto.difference(&in_table).collect();
        let unknown: Vec<_> = in_table.difference(&in_proto).collect();
        if !missing.is_empty() || !unknown.is_empty() {
            return Err(format!("{}: missing from the table {missing:?}, not in the proto {unknown:?}", self.service));
        }
        for rpc in self.rpcs {
            if rpc.subject.is_empty() {
                continue;
            }
            let method = service.methods().find(|m| m.name() == rpc.method).expect("checked above");
            let mut message = method.input();
            let mut parts = rpc.subject.split('.').peekable();
            while let Some(part) = parts.next() {
                let field = message.get_field_by_name(part).ok_or_else(|| {
                    format!("{}.{}: the request has no field {:?}", self.service, rpc.method, rpc.subject)
                })?;
                match (parts.peek(), field.kind()) {
                    (Some(_), prost_reflect::Kind::Message(inner)) => message = inner,
                    (None, prost_reflect::Kind::String) if !field.is_list() => {}
                    _ => {
                        return Err(format!(
                            "{}.{}: {:?} is not a path to a string field",
                            self.service, rpc.method, rpc.subject
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The whole contract, decoded once.
pub(crate) fn contract() -> &'static DescriptorPool {
    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        DescriptorPool::decode(kesu_proto::FILE_DESCRIPTOR_SET).expect("the embedded descriptor set is valid")
    });
    &POOL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_like_a_sentence() {
        let rpc = Rpc::read("X", &[Role::Agent, Role::Supervisor, Role::Admin]);
        assert_eq!(rpc.roles_text(), "agent, supervisor or admin");
        assert_eq!(Rpc::read("X", &[Role::Analyst]).roles_text(), "analyst");
    }

    #[test]
    fn a_table_missing_a_method_or_with_a_bad_subject_is_refused() {
        static PARTIAL: RoleTable =
            RoleTable { service: "kesu.v1.SlaService", rpcs: &[Rpc::read("GetTicketClocks", &[Role::Agent])] };
        let err = PARTIAL.check_against_contract().unwrap_err();
        assert!(err.contains("ListAtRisk"), "{err}");
        static BAD_SUBJECT: RoleTable = RoleTable {
            service: "kesu.v1.SlaService",
            rpcs: &[
                Rpc::action("GetTicketClocks", &[Role::Agent], "no_such_field"),
                Rpc::read("ListAtRisk", &[Role::Agent]),
                Rpc::read("ListBreached", &[Role::Agent]),
                Rpc::read("PreviewClocks", &[Role::Agent]),
            ],
        };
        let err = BAD_SUBJECT.check_against_contract().unwrap_err();
        assert!(err.contains("no_such_field"), "{err}");
    }
}
