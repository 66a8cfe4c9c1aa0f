//! Who may call each RPC of `kesu.v1.SlaService`: the staff who read
//! tickets may read their clocks; those who set or check policy may
//! preview it. All reads, nothing audited.

use kesu_auth::Role::*;
use kesu_auth::{Role, RoleTable, Rpc};

const READERS: &[Role] = &[Agent, Handler, Supervisor, DepartmentManager, Director, Admin];

pub static TABLE: RoleTable = RoleTable {
    service: "kesu.v1.SlaService",
    rpcs: &[
        Rpc::read("GetTicketClocks", READERS),
        Rpc::read("ListAtRisk", READERS),
        Rpc::read("ListBreached", READERS),
        Rpc::read("PreviewClocks", &[Supervisor, DepartmentManager, Director, Admin]),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_lists_exactly_the_rpcs_of_the_contract() {
        super::TABLE.check_against_contract().unwrap();
    }
}
