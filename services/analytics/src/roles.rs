//! Who may call each RPC of `kesu.v1.AnalyticsService`: analysts
//! (read-only), management (director, department managers, supervisors)
//! and admins. Analytics holds no contacts, so nothing here is audited.
//! Department managers are limited to their department inside the API
//! (`crate::api::Analytics::scope`).

use kesu_auth::{Role, RoleTable, Rpc};

const READERS: &[Role] = crate::api::READERS;

pub static TABLE: RoleTable = RoleTable {
    service: "kesu.v1.AnalyticsService",
    rpcs: &[
        Rpc::read("GetSummary", READERS),
        Rpc::read("GetSlaAttainment", READERS),
        Rpc::read("GetVolume", READERS),
        Rpc::read("GetSatisfaction", READERS),
        Rpc::read("GetWeeklyReport", READERS),
        Rpc::read("GetCauseShares", READERS),
        Rpc::read("GetTypeShares", READERS),
        Rpc::read("GetHandlingTimes", READERS),
        Rpc::read("GetRates", READERS),
        Rpc::read("GetCommonIssueStats", READERS),
        Rpc::read("GetSlaRisk", READERS),
        Rpc::action("RebuildRollups", &[Role::Admin], ""),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_lists_exactly_the_rpcs_of_the_contract() {
        super::TABLE.check_against_contract().unwrap();
    }
}
