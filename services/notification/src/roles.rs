//! Who may call each RPC of `kesu.v1.NotificationService`: staff read
//! deliveries (addresses masked), agents and supervisors resend, templates
//! are configuration (admin) that supervisors may preview too.

use kesu_auth::Role::*;
use kesu_auth::{Role, RoleTable, Rpc};

const READERS: &[Role] = &[Agent, Handler, Supervisor, DepartmentManager, Director, Admin];

pub static TABLE: RoleTable = RoleTable {
    service: "kesu.v1.NotificationService",
    rpcs: &[
        Rpc::read("ListDeliveries", READERS),
        Rpc::action("Resend", &[Agent, Supervisor], "request_id"),
        Rpc::read("PreviewTemplate", &[Supervisor, Admin]),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_lists_exactly_the_rpcs_of_the_contract() {
        super::TABLE.check_against_contract().unwrap();
    }
}
