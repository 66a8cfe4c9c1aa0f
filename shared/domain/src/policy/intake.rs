//! The `[intake]` section: feedback numbers, text limits, tiers, the
//! duplicate window.

use chrono::Duration;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakePolicy {
    pub number_prefix: String,
    pub max_title_chars: usize,
    pub max_description_chars: usize,
    pub max_name_chars: usize,
    pub max_contacts: usize,
    pub max_attachments: usize,
    pub max_custom_fields: usize,
    pub max_custom_field_chars: usize,
    pub customer_tiers: Vec<String>,
    pub default_tier: String,
    pub dedup_window: String,
}

/// Checks the section; returns the parsed duplicate window.
pub(super) fn validate(i: &IntakePolicy) -> Result<Duration, (String, String)> {
    crate::number::validate_prefix(&i.number_prefix).map_err(|m| ("intake.number_prefix".to_string(), m))?;
    // Upper bounds keep every event well inside the broker's max payload.
    for (key, value, min, max) in [
        ("intake.max_title_chars", i.max_title_chars, 1, 1_000),
        ("intake.max_description_chars", i.max_description_chars, 1, 50_000),
        ("intake.max_name_chars", i.max_name_chars, 1, 500),
        ("intake.max_contacts", i.max_contacts, 1, 20),
        ("intake.max_attachments", i.max_attachments, 0, 100),
        ("intake.max_custom_fields", i.max_custom_fields, 0, 200),
        ("intake.max_custom_field_chars", i.max_custom_field_chars, 1, 10_000),
    ] {
        if value < min || value > max {
            return Err((key.into(), format!("must be between {min} and {max}, got {value}")));
        }
    }
    if i.customer_tiers.is_empty() {
        return Err(("intake.customer_tiers".into(), "list at least one tier".into()));
    }
    if !i.customer_tiers.contains(&i.default_tier) {
        return Err(("intake.default_tier".into(), format!("{:?} is not in intake.customer_tiers", i.default_tier)));
    }
    super::parse_duration(&i.dedup_window, "intake.dedup_window")
}
