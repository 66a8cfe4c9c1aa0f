//! Names of clock kinds and states as stored and shown.

use kesu_proto::v1::{SlaClockKind, SlaClockState};

/// `response`, `resolution`, … as stored.
pub fn kind_name(kind: i32) -> String {
    SlaClockKind::try_from(kind).unwrap_or_default().as_str_name().trim_start_matches("SLA_CLOCK_KIND_").to_lowercase()
}

pub fn state_name(state: i32) -> String {
    SlaClockState::try_from(state)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("SLA_CLOCK_STATE_")
        .to_lowercase()
}
