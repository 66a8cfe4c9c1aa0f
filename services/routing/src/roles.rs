//! Who may call each RPC of `kesu.v1.TicketService` (DOMAIN.md's role
//! table): agents create, view, assign and note; handlers act on their
//! tickets; department managers on their department's; supervisors
//! reassign, extend and lead reviews; the director reads everything.
//! Every action is audited with the ticket id.

use kesu_auth::Role::*;
use kesu_auth::{Role, RoleTable, Rpc};

/// Staff who read tickets (masked).
const READERS: &[Role] = &[Agent, Handler, Supervisor, DepartmentManager, Director, Admin];
/// Working a ticket: the handler, their manager, the supervisor.
const HANDLING: &[Role] = &[Handler, DepartmentManager, Supervisor];
/// Changing who owns a ticket or its terms.
const STEERING: &[Role] = &[DepartmentManager, Supervisor];
/// Everyone who works tickets, frontline included.
const STAFF: &[Role] = &[Agent, Handler, DepartmentManager, Supervisor];

const TICKET: &str = "ticket.ticket_id";

pub static TABLE: RoleTable = RoleTable {
    service: "kesu.v1.TicketService",
    rpcs: &[
        Rpc::read("GetTicket", READERS),
        Rpc::read("ListTickets", READERS),
        Rpc::read("GetTicketHistory", READERS),
        Rpc::action("Acknowledge", HANDLING, TICKET),
        Rpc::action("RecordProgress", HANDLING, TICKET),
        Rpc::action("WaitOnCustomer", HANDLING, TICKET),
        Rpc::action("Resume", HANDLING, TICKET),
        Rpc::action("ExtendDeadline", STEERING, TICKET),
        Rpc::action("Reassign", &[Agent, DepartmentManager, Supervisor], TICKET),
        Rpc::action("Classify", &[Agent, DepartmentManager, Supervisor], TICKET),
        Rpc::action("SetPriority", STEERING, TICKET),
        Rpc::action("Escalate", STAFF, TICKET),
        Rpc::action("Resolve", HANDLING, TICKET),
        Rpc::action("Rate", &[Agent, Supervisor], TICKET),
        Rpc::action("Reopen", STEERING, TICKET),
        Rpc::action("Close", STAFF, TICKET),
        Rpc::action("Archive", HANDLING, TICKET),
        Rpc::action("AddNote", STAFF, TICKET),
        Rpc::read("ListCommonIssues", READERS),
        Rpc::read("GetCommonIssue", READERS),
        Rpc::read("SearchCases", READERS),
        Rpc::action("ResolveCommonIssue", STEERING, "common_issue_id"),
        Rpc::read("ListRejectedRatings", &[Agent, Supervisor, DepartmentManager, Director, Admin]),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_lists_exactly_the_rpcs_of_the_contract() {
        super::TABLE.check_against_contract().unwrap();
    }
}
