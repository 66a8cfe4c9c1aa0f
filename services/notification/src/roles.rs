//! Who may call each RPC of `kesu.v1.NotificationService`: staff read
//! deliveries (addresses masked; handlers and department managers scoped in
//! the handler), agents and supervisors resend, templates are configuration
//! (admin) that supervisors may preview too. `kesu.v1.SenderService` (the
//! built-in senders' status) is for operations: admin, supervisor, director.

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

pub static SENDER_TABLE: RoleTable = RoleTable {
    service: "kesu.v1.SenderService",
    rpcs: &[Rpc::read("GetSenderStatus", &[Admin, Supervisor, Director])],
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_tables_list_exactly_the_rpcs_of_the_contract() {
        super::TABLE.check_against_contract().unwrap();
        super::SENDER_TABLE.check_against_contract().unwrap();
    }
}
