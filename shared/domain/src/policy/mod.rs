//! Policy: the domain's configurable numbers and lists (taxonomy, SLA
//! targets, calendar, staff directory, tiers, limits, templates) with
//! shipped defaults.
//!
//! The defaults live in `policy/*.toml`, one file per owner (each section
//! appears in exactly one file); a deployment's file replaces whole
//! top-level sections. Loading validates everything and names the
//! offending key (`sla.targets.high.response: ...`). Each section has its
//! own module here.

pub mod assignment;
pub mod calendar;
pub mod classification;
pub mod common_issues;
pub mod intake;
pub mod notification;
pub mod prioritisation;
pub mod sla;
pub mod staff;
pub mod taxonomy;
pub mod templates;

use std::path::Path;

use chrono::Duration;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::calendar::BusinessCalendar;
use crate::priority::Priority;

pub use assignment::{AssignmentPolicy, CoHandlerRule};
pub use calendar::CalendarPolicy;
pub use classification::{ClassificationPolicy, Implied, LabelRule, Negations, TermRule};
pub use intake::IntakePolicy;
pub use notification::{Audience, NotificationPolicy, NotificationRules, QuietHours, Rule, Trigger};
pub use prioritisation::{PriorityRules, PriorityRulesPolicy, TermLevel};
pub use sla::{ChosenTarget, LevelTargets, SlaOverride, SlaPolicy, SlaTable};
pub use staff::{StaffDirectory, StaffMember, StaffPolicy};
pub use taxonomy::{Cause, Department, PriorityPolicy, ProblemType};
pub use templates::{
    LAYOUT, Part, RenderedMessage, TEMPLATE_LOCALES, TEMPLATE_PURPOSES, Template, TemplateData, Templates,
    TemplatesPolicy,
};

/// The shipped defaults: (file name, TOML text), one file per owner.
pub const DEFAULT_POLICY_FILES: &[(&str, &str)] = &[
    ("deployment.toml", include_str!("../../policy/deployment.toml")),
    ("intake.toml", include_str!("../../policy/intake.toml")),
    ("routing.toml", include_str!("../../policy/routing.toml")),
    ("classification.toml", include_str!("../../policy/classification.toml")),
    ("staff.toml", include_str!("../../policy/staff.toml")),
    ("calendar.toml", include_str!("../../policy/calendar.toml")),
    ("sla.toml", include_str!("../../policy/sla.toml")),
    ("templates.toml", include_str!("../../policy/templates.toml")),
    ("notification.toml", include_str!("../../policy/notification.toml")),
];

/// A policy that cannot be used, with the key that is wrong.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("policy {source_name}: {key}: {message}")]
pub struct PolicyError {
    pub source_name: String,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub deployment: DeploymentPolicy,
    pub intake: IntakePolicy,
    pub calendar: CalendarPolicy,
    pub priority: PriorityPolicy,
    pub sla: SlaPolicy,
    pub departments: Vec<Department>,
    pub taxonomy: Vec<ProblemType>,
    pub staff: StaffPolicy,
    pub templates: TemplatesPolicy,
    pub notification: NotificationPolicy,
    pub classification: ClassificationPolicy,
    pub priority_rules: PriorityRulesPolicy,
    pub assignment: AssignmentPolicy,
    #[serde(default)]
    pub common_issues: common_issues::CommonIssuesPolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentPolicy {
    pub time_zone: String,
    pub default_locale: String,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub doc: PolicyDoc,
    time_zone: Tz,
    calendar: BusinessCalendar,
    sla: SlaTable,
    staff: StaffDirectory,
    templates: Templates,
    notification: NotificationRules,
    dedup_window: Duration,
    default_priority: Priority,
    priority_rules: PriorityRules,
    common_issues: common_issues::CommonIssueRules,
}

impl Policy {
    /// The shipped defaults.
    pub fn default_policy() -> Self {
        Self::from_toml(None, "default").expect("the shipped default policy is valid")
    }

    /// Defaults overlaid with the file at `path` (whole top-level sections).
    pub fn load(path: Option<&Path>) -> Result<Self, PolicyError> {
        match path {
            None => Self::from_toml(None, "default"),
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
                    source_name: name.clone(),
                    key: "(file)".into(),
                    message: format!("cannot read: {e}"),
                })?;
                Self::from_toml(Some(&text), &name)
            }
        }
    }

    /// The shipped default sections as one TOML table.
    pub fn default_table() -> toml::Table {
        let mut table = toml::Table::new();
        for (file, text) in DEFAULT_POLICY_FILES {
            let part: toml::Table = text.parse().unwrap_or_else(|e| panic!("shipped policy {file} is not TOML: {e}"));
            for (key, value) in part {
                assert!(table.insert(key.clone(), value).is_none(), "section {key} of {file} is also in another file");
            }
        }
        table
    }

    /// Defaults overlaid with `overlay` (TOML text).
    pub fn from_toml(overlay: Option<&str>, source_name: &str) -> Result<Self, PolicyError> {
        let err =
            |key: &str, message: String| PolicyError { source_name: source_name.into(), key: key.into(), message };
        let mut table = Self::default_table();
        if let Some(text) = overlay {
            let over: toml::Table = text.parse().map_err(|e: toml::de::Error| err("(syntax)", e.to_string()))?;
            for (key, value) in over {
                table.insert(key, value);
            }
        }
        let doc: PolicyDoc = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            err(&path, e.into_inner().to_string())
        })?;
        Self::validate(doc).map_err(|(key, message)| err(&key, message))
    }

    fn validate(doc: PolicyDoc) -> Result<Self, (String, String)> {
        let time_zone: Tz = doc.deployment.time_zone.parse().map_err(|_| {
            ("deployment.time_zone".to_string(), format!("unknown time zone {:?}", doc.deployment.time_zone))
        })?;
        let dedup_window = intake::validate(&doc.intake)?;
        let calendar = calendar::build(&doc.calendar)?;
        let default_priority: Priority =
            doc.priority.default.parse().map_err(|m| ("priority.default".to_string(), m))?;
        taxonomy::validate(&doc.departments, &doc.taxonomy)?;
        classification::validate(&doc.classification, &doc.taxonomy)?;
        let priority_rules = prioritisation::build(&doc.priority_rules, &doc.taxonomy)?;
        assignment::validate(&doc.assignment, &doc.departments, &doc.taxonomy)?;
        let sla = sla::build(&doc.sla, &doc.taxonomy)?;
        let templates = Templates::compile(&doc.templates, &notification::link_templates(&doc.notification))?;
        let notification = notification::build(&doc.notification, &templates)?;
        let default_language = language_of(&doc.deployment.default_locale);
        let staff = staff::build(&doc.staff, &doc.departments, &doc.taxonomy, &calendar, default_language)?;
        let common_issues = common_issues::build(&doc.common_issues)?;
        Ok(Self {
            doc,
            time_zone,
            calendar,
            sla,
            staff,
            templates,
            notification,
            dedup_window,
            default_priority,
            priority_rules,
            common_issues,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn calendar(&self) -> &BusinessCalendar {
        &self.calendar
    }

    pub fn sla(&self) -> &SlaTable {
        &self.sla
    }

    /// When reports become a common issue (`[common_issues]`).
    pub fn common_issues(&self) -> &common_issues::CommonIssueRules {
        &self.common_issues
    }

    pub fn staff(&self) -> &StaffDirectory {
        &self.staff
    }

    pub fn dedup_window(&self) -> Duration {
        self.dedup_window
    }

    pub fn default_priority(&self) -> Priority {
        self.default_priority
    }

    /// How routing scores priorities (`[priority_rules]`).
    pub fn priority_rules(&self) -> &PriorityRules {
        &self.priority_rules
    }

    pub fn problem_type(&self, code: &str) -> Option<&ProblemType> {
        self.doc.taxonomy.iter().find(|t| t.code == code)
    }

    pub fn department(&self, code: &str) -> Option<&Department> {
        self.doc.departments.iter().find(|d| d.code == code)
    }

    /// The template language for a customer locale ("zh-CN" → "zh").
    pub fn template_language(&self, locale: &str) -> &'static str {
        let pick = |l: &str| TEMPLATE_LOCALES.into_iter().find(|t| l.to_ascii_lowercase().starts_with(t));
        pick(locale).or_else(|| pick(&self.doc.deployment.default_locale)).unwrap_or("zh")
    }

    /// The compiled message templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The notification rules, quiet hours and customer channel order.
    pub fn notification(&self) -> &NotificationRules {
        &self.notification
    }
}

/// "zh-CN" → "zh", "en-GB" → "en"; anything else → "zh".
fn language_of(locale: &str) -> &'static str {
    TEMPLATE_LOCALES.into_iter().find(|t| locale.to_ascii_lowercase().starts_with(t)).unwrap_or("zh")
}

/// A humantime duration ("10m", "24h", "7days"), naming `key` when it is not one.
pub fn parse_duration(text: &str, key: &str) -> Result<Duration, (String, String)> {
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| Duration::from_std(d).ok())
        .ok_or_else(|| (key.to_string(), format!("not a duration: {text:?} (e.g. \"10m\")")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_is_valid_and_matches_the_domain() {
        let p = Policy::default_policy();
        assert_eq!(p.doc.intake.number_prefix, "FB");
        assert_eq!(p.default_priority(), Priority::Medium);
        let (resp, res) = p.sla().targets_for(Priority::Urgent, "system_failure", "outage");
        assert_eq!((resp.target.text(), res.target.text()), ("1h calendar", "24h calendar"));
        let (resp, _) = p.sla().targets_for(Priority::Urgent, "product_quality", "safety_hazard");
        assert_eq!(resp.target.text(), "15m calendar");
        assert_eq!(resp.policy, "override[0].response");
        let (resp, res) = p.sla().targets_for(Priority::Medium, "logistics", "delivery_delay");
        assert_eq!((resp.target.text(), res.target.text()), ("8h", "3 business days"));
        assert_eq!(p.problem_type("logistics").unwrap().department, "operations");
        assert_eq!(p.template_language("en-GB"), "en");
        assert_eq!(p.template_language("fr"), "zh");
    }

    #[test]
    fn a_file_replaces_whole_sections() {
        let p = Policy::from_toml(Some("[priority]\ndefault = \"low\"\n"), "test").unwrap();
        assert_eq!(p.default_priority(), Priority::Low);
        assert_eq!(p.doc.intake.number_prefix, "FB");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Policy::from_toml(
            Some("[sla]\nwarn_at_percent = 80\nacknowledge = \"1h\"\nresult_notice = \"4h\"\nfollow_up = \"3d\"\nprogress_update = \"24h\"\n[sla.targets.low]\nresponse = \"1x\"\nresolution = \"1d\"\n"),
            "t",
        )
        .unwrap_err();
        assert_eq!(e.key, "sla.targets.low.response");
        let e = Policy::from_toml(Some("[priority]\ndefualt = \"low\"\n"), "t").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(e.key.starts_with("priority"), "{e}");
        let e = Policy::from_toml(Some("[deployment]\ntime_zone = \"Mars/Base\"\ndefault_locale = \"zh\"\n"), "t")
            .unwrap_err();
        assert_eq!(e.key, "deployment.time_zone");
        let mut templates = Policy::default_table()["templates"].as_table().unwrap().clone();
        templates["acknowledgement"]["zh"].as_table_mut().unwrap().insert("sms".into(), "{{ nope }}".into());
        let overlay =
            toml::to_string(&toml::Table::from_iter([("templates".to_string(), toml::Value::Table(templates))]))
                .unwrap();
        let e = Policy::from_toml(Some(&overlay), "t").unwrap_err();
        assert_eq!(e.key, "templates.acknowledgement.zh.sms");
        assert!(e.message.contains("unknown variable nope"), "{e}");
    }
}
