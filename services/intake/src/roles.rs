//! Who may call each RPC of `kesu.v1.IntakeService` (DOMAIN.md's role
//! table): adapters submit, agents and supervisors enter and review, staff
//! who must reach the customer see rejected originals in clear.

use kesu_auth::Role::*;
use kesu_auth::{Role, RoleTable, Rpc};

/// Channel adapters and the staff who take feedback in.
const SUBMITTERS: &[Role] = &[Adapter, Agent, Supervisor];
/// Staff typing feedback in or reviewing it.
const ENTRY: &[Role] = &[Agent, Supervisor];
/// Staff who read feedback (masked).
const READERS: &[Role] = &[Agent, Handler, Supervisor, DepartmentManager, Director, Admin];
/// Staff who must reach the customer: may see originals in clear.
const REACH_CUSTOMER: &[Role] = &[Agent, Handler, Supervisor, DepartmentManager, Admin];

pub static TABLE: RoleTable = RoleTable {
    service: "kesu.v1.IntakeService",
    rpcs: &[
        Rpc::action("SubmitFeedback", SUBMITTERS, "external_id"),
        Rpc::action("EnterFeedback", ENTRY, "feedback.external_id"),
        Rpc::action("ImportFeedback", ENTRY, ""),
        Rpc::read("GetFeedback", READERS),
        Rpc::action("SupplementFeedback", SUBMITTERS, "feedback_number"),
        Rpc::read("ListReviewQueue", &[Agent, Supervisor, DepartmentManager, Director]),
        Rpc::action("ResolveReview", ENTRY, "feedback_number"),
        Rpc::clear_read("ListRejected", REACH_CUSTOMER, ""),
        Rpc::clear_read("ListDeadLetters", &[Admin], ""),
        Rpc::action("ReplayDeadLetter", &[Admin], ""),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_lists_exactly_the_rpcs_of_the_contract() {
        super::TABLE.check_against_contract().unwrap();
    }
}
