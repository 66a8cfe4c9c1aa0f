//! Bulk import from spreadsheets (store counters, phone logs, paper forms):
//! a CSV file becomes `ImportRow`s for `IntakeService/ImportFeedback`
//! (gRPC stream; the CLI reads a file path with the same parser). Each row
//! is taken or refused on its own, naming the column; a row that cannot be
//! read is refused here with the row number.
//!
//! The first line names the columns (any order, unknown columns are kept
//! as custom fields): `external_id`, `channel` (default `paper`),
//! `submitted_at` (RFC 3339, or `YYYY-MM-DD HH:MM` in the deployment's
//! zone), `customer_name`, `company`, `phone`, `email`, `customer_number`,
//! `tier`, `product`, `order_number`, `occurred_at` (free text: "about
//! 3 Oct"), `problem_type`, `problem_cause`, `request_nature` (`problem`,
//! `consultation`, `suggestion`, `complaint`), `title`, `description`,
//! `customer_request` (`repair`, `replace`, `refund`, `explanation`,
//! `feature_change`, `other`), `customer_request_detail`, `urgency`
//! (`low`, `medium`, `high`, `urgent`), `region`, `entered_by`,
//! `affected_customers`, `locale`.
//!
//! Re-importing the same file creates nothing twice: a row without an
//! `external_id` gets `import-` + a hash of its cells, so the same row
//! always has the same id.

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeZone};
use kesu_domain::channel_from_token;
use kesu_proto::v1::{
    ApproximateTime, Contact, ContactKind, Customer, CustomerRequest, CustomerRequestKind, FieldError, ImportRow,
    OccurredAt, Priority, RawFeedback, RequestNature, occurred_at,
};
use sha2::{Digest, Sha256};

use crate::validate::field_error;

const KNOWN: &[&str] = &[
    "external_id",
    "channel",
    "submitted_at",
    "customer_name",
    "company",
    "phone",
    "email",
    "customer_number",
    "tier",
    "product",
    "order_number",
    "occurred_at",
    "problem_type",
    "problem_cause",
    "request_nature",
    "title",
    "description",
    "customer_request",
    "customer_request_detail",
    "urgency",
    "region",
    "entered_by",
    "affected_customers",
    "locale",
];

/// A row that could not be read: its number and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: u64,
    pub errors: Vec<FieldError>,
}

/// Reads a CSV file into import rows (numbered from 2: line 1 names the
/// columns). `time_zone` reads local `submitted_at` values.
pub fn parse_csv(
    input: impl std::io::Read,
    time_zone: chrono_tz::Tz,
) -> Result<Vec<Result<ImportRow, RowError>>, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("the first line must name the columns: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    if !headers.iter().any(|h| h == "description") {
        return Err("the first line must name the columns, including description".into());
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i as u64 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push(Err(RowError { row, errors: vec![field_error("row", "invalid_format", e.to_string())] }));
                continue;
            }
        };
        let cells: HashMap<&str, &str> =
            headers.iter().map(String::as_str).zip(record.iter()).filter(|(_, v)| !v.is_empty()).collect();
        rows.push(to_row(row, &cells, time_zone));
    }
    Ok(rows)
}

fn to_row(row: u64, cells: &HashMap<&str, &str>, time_zone: chrono_tz::Tz) -> Result<ImportRow, RowError> {
    let get = |k: &str| cells.get(k).copied().unwrap_or_default().to_string();
    let mut errors = Vec::new();
    let channel = match cells.get("channel") {
        None => kesu_proto::v1::Channel::Paper,
        Some(token) => channel_from_token(&token.to_lowercase()).unwrap_or_else(|| {
            errors.push(field_error("channel", "unknown_value", format!("channel: {token:?} is not a channel token")));
            kesu_proto::v1::Channel::Unspecified
        }),
    };
    let submitted_at = cells.get("submitted_at").and_then(|v| {
        let parsed =
            chrono::DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&chrono::Utc)).ok().or_else(|| {
                ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
                    .and_then(|n| time_zone.from_local_datetime(&n).earliest())
                    .map(|t| t.with_timezone(&chrono::Utc))
            });
        if parsed.is_none() {
            errors.push(field_error(
                "submitted_at",
                "invalid_format",
                "submitted_at: use 2026-11-24T09:30:00+08:00 or 2026-11-24 09:30",
            ));
        }
        parsed.map(kesu_domain::time::to_timestamp)
    });
    let pick = |column: &str, value: Option<&&str>, options: &[(&str, i32)], errors: &mut Vec<FieldError>| -> i32 {
        let Some(v) = value else { return 0 };
        options.iter().find(|(name, _)| name.eq_ignore_ascii_case(v)).map(|(_, n)| *n).unwrap_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            errors.push(field_error(column, "unknown_value", format!("{column}: one of {}", names.join(", "))));
            0
        })
    };
    let request_nature = pick(
        "request_nature",
        cells.get("request_nature"),
        &[
            ("problem", RequestNature::Problem as i32),
            ("consultation", RequestNature::Consultation as i32),
            ("suggestion", RequestNature::Suggestion as i32),
            ("complaint", RequestNature::Complaint as i32),
        ],
        &mut errors,
    );
    let urgency = pick(
        "urgency",
        cells.get("urgency"),
        &[
            ("low", Priority::Low as i32),
            ("medium", Priority::Medium as i32),
            ("high", Priority::High as i32),
            ("urgent", Priority::Urgent as i32),
        ],
        &mut errors,
    );
    let request_kind = pick(
        "customer_request",
        cells.get("customer_request"),
        &[
            ("repair", CustomerRequestKind::Repair as i32),
            ("replace", CustomerRequestKind::Replace as i32),
            ("refund", CustomerRequestKind::Refund as i32),
            ("explanation", CustomerRequestKind::Explanation as i32),
            ("feature_change", CustomerRequestKind::FeatureChange as i32),
            ("other", CustomerRequestKind::Other as i32),
        ],
        &mut errors,
    );
    let affected_customers = match cells.get("affected_customers") {
        None => 0,
        Some(v) => v.parse().unwrap_or_else(|_| {
            errors.push(field_error("affected_customers", "invalid_format", "affected_customers: a whole number"));
            0
        }),
    };
    if !errors.is_empty() {
        return Err(RowError { row, errors });
    }
    let mut contacts = Vec::new();
    if let Some(phone) = cells.get("phone") {
        contacts.push(Contact { kind: ContactKind::Phone as i32, value: phone.to_string(), masked: false });
    }
    if let Some(email) = cells.get("email") {
        contacts.push(Contact { kind: ContactKind::Email as i32, value: email.to_string(), masked: false });
    }
    let customer_request = (request_kind != 0 || cells.contains_key("customer_request_detail"))
        .then(|| CustomerRequest { kind: request_kind, detail: get("customer_request_detail") });
    let occurred_at = cells.get("occurred_at").map(|text| OccurredAt {
        when: Some(occurred_at::When::Approximate(ApproximateTime { text: text.to_string(), ..Default::default() })),
    });
    let custom_fields =
        cells.iter().filter(|(k, _)| !KNOWN.contains(k)).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let external_id = cells.get("external_id").map(|s| s.to_string()).unwrap_or_else(|| row_id(cells));
    Ok(ImportRow {
        row,
        feedback: Some(RawFeedback {
            channel: channel as i32,
            external_id,
            submitted_at,
            locale: get("locale"),
            customer: Some(Customer {
                name: get("customer_name"),
                company: get("company"),
                customer_number: get("customer_number"),
                tier: get("tier"),
                contacts,
                ..Default::default()
            }),
            product: get("product"),
            order_number: get("order_number"),
            occurred_at,
            problem_type: get("problem_type"),
            problem_cause: get("problem_cause"),
            request_nature,
            title: get("title"),
            description: get("description"),
            customer_request,
            urgency,
            region: get("region"),
            entered_by: get("entered_by"),
            affected_customers,
            custom_fields,
            ..Default::default()
        }),
    })
}

/// `import-` + the first 24 hex digits of a hash of the row's cells.
fn row_id(cells: &HashMap<&str, &str>) -> String {
    let mut keys: Vec<&&str> = cells.keys().collect();
    keys.sort();
    let mut hash = Sha256::new();
    for k in keys {
        hash.update(k.as_bytes());
        hash.update([0]);
        hash.update(cells[*k].as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("import-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\u{feff}description,phone,customer_name,submitted_at,urgency,customer_request,备注\n\
        扫地机器人开机无反应，使用一周,13812345678,张三,2026-11-24 09:30,high,repair,柜台登记\n\
        \"Kettle base leaks current, \"\"dangerous\"\"\",13900001111,Li Si,2026-11-24T10:00:00+08:00,urgent,replace,\n\
        坏了,13700002222,王五,yesterday,soon,,\n";

    #[test]
    fn rows_become_feedback_and_bad_cells_are_named_per_row() {
        let rows = parse_csv(FILE.as_bytes(), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(rows.len(), 3);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.row, 2);
        let raw = first.feedback.as_ref().unwrap();
        assert_eq!(raw.channel, kesu_proto::v1::Channel::Paper as i32);
        assert_eq!(raw.urgency, Priority::High as i32);
        assert_eq!(raw.customer.as_ref().unwrap().contacts[0].value, "13812345678");
        assert_eq!(raw.custom_fields["备注"], "柜台登记");
        assert_eq!(raw.submitted_at.as_ref().unwrap().seconds, 1_795_483_800, "09:30 in Shanghai");
        assert!(raw.external_id.starts_with("import-"));
        let second = rows[1].as_ref().unwrap().feedback.as_ref().unwrap();
        assert_eq!(second.description, "Kettle base leaks current, \"dangerous\"");
        let third = rows[2].as_ref().unwrap_err();
        assert_eq!(third.row, 4);
        let fields: Vec<&str> = third.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["submitted_at", "urgency"]);
        // The same file gives the same ids: re-importing creates nothing twice.
        let again = parse_csv(FILE.as_bytes(), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(raw.external_id, again[0].as_ref().unwrap().feedback.as_ref().unwrap().external_id);
        assert_ne!(raw.external_id, second.external_id);
    }

    #[test]
    fn a_file_without_a_description_column_is_refused() {
        assert!(parse_csv("phone,name\n1,2\n".as_bytes(), chrono_tz::Asia::Shanghai).is_err());
    }
}
