//! Policy: the domain's configurable numbers and lists (taxonomy, SLA
//! targets, calendar, tiers, limits, templates) with shipped defaults.
//!
//! The defaults live in `policy/default.toml`; a deployment's file replaces
//! whole top-level sections. Loading validates everything and names the
//! offending key (`sla.targets.high.response: ...`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::calendar::BusinessCalendar;
use crate::priority::Priority;
use crate::target::SlaTarget;

/// The shipped defaults.
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");

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
    pub templates: BTreeMap<String, BTreeMap<String, Template>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentPolicy {
    pub time_zone: String,
    pub default_locale: String,
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarPolicy {
    pub name: String,
    pub time_zone: String,
    pub working_days: Vec<String>,
    pub working_hours: Vec<String>,
    pub holidays: Vec<String>,
    pub extra_working_days: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityPolicy {
    pub default: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub warn_at_percent: u8,
    pub acknowledge: String,
    pub result_notice: String,
    pub follow_up: String,
    pub progress_update: String,
    pub targets: BTreeMap<String, LevelTargets>,
    #[serde(default)]
    pub overrides: Vec<SlaOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelTargets {
    pub response: String,
    pub resolution: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaOverride {
    pub problem_type: Option<String>,
    pub problem_cause: Option<String>,
    pub priority: Option<String>,
    pub response: Option<String>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemType {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub department: String,
    pub handler_role: String,
    pub keywords: Vec<String>,
    pub causes: Vec<Cause>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub keywords: Vec<String>,
}

/// One template in one locale; each channel's text is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub sms: Option<String>,
    pub email_subject: Option<String>,
    pub email_body: Option<String>,
    pub app: Option<String>,
}

/// Template purposes (the snake-case names of `NotificationPurpose`).
pub const TEMPLATE_PURPOSES: [&str; 15] = [
    "acknowledgement",
    "needs_info",
    "assigned",
    "urgent_page",
    "sla_warning",
    "sla_breached",
    "sla_escalated",
    "ack_overdue",
    "stale_reminder",
    "progress_update",
    "deadline_extended",
    "result_notice",
    "satisfaction_survey",
    "low_score_review",
    "report",
];

/// Template languages.
pub const TEMPLATE_LOCALES: [&str; 2] = ["zh", "en"];

/// Placeholders templates may use.
pub const TEMPLATE_PARAMS: [&str; 7] =
    ["feedback_number", "customer_name", "title", "ticket_id", "priority", "deadline", "department"];

/// A chosen SLA target and the policy entry it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenTarget {
    pub target: SlaTarget,
    /// "medium.response", "override[0].response", ...
    pub policy: String,
}

#[derive(Debug, Clone)]
struct ParsedOverride {
    problem_type: Option<String>,
    problem_cause: Option<String>,
    priority: Option<Priority>,
    response: Option<SlaTarget>,
    resolution: Option<SlaTarget>,
}

/// SLA targets, parsed.
#[derive(Debug, Clone)]
pub struct SlaTable {
    pub warn_at_percent: u8,
    pub acknowledge: SlaTarget,
    pub result_notice: SlaTarget,
    pub follow_up: SlaTarget,
    pub progress_update: SlaTarget,
    levels: BTreeMap<Priority, (SlaTarget, SlaTarget)>,
    overrides: Vec<ParsedOverride>,
}

impl SlaTable {
    /// Response and resolution targets for a ticket.
    pub fn targets_for(
        &self,
        priority: Priority,
        problem_type: &str,
        problem_cause: &str,
    ) -> (ChosenTarget, ChosenTarget) {
        let (response, resolution) = self.levels.get(&priority).expect("validation requires every level").clone();
        let mut response = ChosenTarget { target: response, policy: format!("{priority}.response") };
        let mut resolution = ChosenTarget { target: resolution, policy: format!("{priority}.resolution") };
        for (i, o) in self.overrides.iter().enumerate() {
            let matches = o.problem_type.as_deref().is_none_or(|t| t == problem_type)
                && o.problem_cause.as_deref().is_none_or(|c| c == problem_cause)
                && o.priority.is_none_or(|p| p == priority);
            if !matches {
                continue;
            }
            if let Some(t) = &o.response {
                response = ChosenTarget { target: t.clone(), policy: format!("override[{i}].response") };
            }
            if let Some(t) = &o.resolution {
                resolution = ChosenTarget { target: t.clone(), policy: format!("override[{i}].resolution") };
            }
        }
        (response, resolution)
    }
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub doc: PolicyDoc,
    time_zone: Tz,
    calendar: BusinessCalendar,
    sla: SlaTable,
    dedup_window: Duration,
    default_priority: Priority,
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

    /// Defaults overlaid with `overlay` (TOML text).
    pub fn from_toml(overlay: Option<&str>, source_name: &str) -> Result<Self, PolicyError> {
        let err =
            |key: &str, message: String| PolicyError { source_name: source_name.into(), key: key.into(), message };
        let mut table: toml::Table = DEFAULT_POLICY.parse().expect("the shipped default policy is valid TOML");
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
        let i = &doc.intake;
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
            return Err((
                "intake.default_tier".into(),
                format!("{:?} is not in intake.customer_tiers", i.default_tier),
            ));
        }
        let dedup_window =
            humantime::parse_duration(&i.dedup_window).ok().and_then(|d| Duration::from_std(d).ok()).ok_or_else(
                || ("intake.dedup_window".to_string(), format!("not a duration: {:?} (e.g. \"10m\")", i.dedup_window)),
            )?;

        let calendar = build_calendar(&doc.calendar)?;
        let default_priority: Priority =
            doc.priority.default.parse().map_err(|m| ("priority.default".to_string(), m))?;
        let sla = build_sla(&doc.sla)?;

        let departments: BTreeSet<&str> = doc.departments.iter().map(|d| d.code.as_str()).collect();
        if departments.len() != doc.departments.len() {
            return Err(("departments".into(), "department codes must be unique".into()));
        }
        let mut types = BTreeSet::new();
        for (n, t) in doc.taxonomy.iter().enumerate() {
            if !types.insert(t.code.as_str()) {
                return Err((format!("taxonomy[{n}].code"), format!("{:?} appears twice", t.code)));
            }
            if !departments.contains(t.department.as_str()) {
                return Err((
                    format!("taxonomy[{n}].department"),
                    format!("{:?} is not a department code", t.department),
                ));
            }
            let mut causes = BTreeSet::new();
            for (m, c) in t.causes.iter().enumerate() {
                if !causes.insert(c.code.as_str()) {
                    return Err((format!("taxonomy[{n}].causes[{m}].code"), format!("{:?} appears twice", c.code)));
                }
            }
        }
        for (n, o) in doc.sla.overrides.iter().enumerate() {
            if let Some(t) = &o.problem_type
                && !types.contains(t.as_str())
            {
                return Err((format!("sla.overrides[{n}].problem_type"), format!("{t:?} is not a taxonomy type")));
            }
            if let Some(c) = &o.problem_cause
                && !doc.taxonomy.iter().any(|t| t.causes.iter().any(|x| &x.code == c))
            {
                return Err((format!("sla.overrides[{n}].problem_cause"), format!("{c:?} is not a taxonomy cause")));
            }
        }
        for (purpose, locales) in &doc.templates {
            if !TEMPLATE_PURPOSES.contains(&purpose.as_str()) {
                return Err((
                    format!("templates.{purpose}"),
                    format!("unknown purpose (known: {})", TEMPLATE_PURPOSES.join(", ")),
                ));
            }
            for (locale, template) in locales {
                if !TEMPLATE_LOCALES.contains(&locale.as_str()) {
                    return Err((format!("templates.{purpose}.{locale}"), "locale must be zh or en".into()));
                }
                for (field, text) in [
                    ("sms", &template.sms),
                    ("email_subject", &template.email_subject),
                    ("email_body", &template.email_body),
                    ("app", &template.app),
                ] {
                    if let Some(text) = text {
                        check_placeholders(text).map_err(|m| (format!("templates.{purpose}.{locale}.{field}"), m))?;
                    }
                }
            }
        }
        Ok(Self { doc, time_zone, calendar, sla, dedup_window, default_priority })
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

    pub fn dedup_window(&self) -> Duration {
        self.dedup_window
    }

    pub fn default_priority(&self) -> Priority {
        self.default_priority
    }

    pub fn problem_type(&self, code: &str) -> Option<&ProblemType> {
        self.doc.taxonomy.iter().find(|t| t.code == code)
    }

    /// The template language for a customer locale ("zh-CN" → "zh").
    pub fn template_language(&self, locale: &str) -> &'static str {
        let pick = |l: &str| TEMPLATE_LOCALES.into_iter().find(|t| l.to_ascii_lowercase().starts_with(t));
        pick(locale).or_else(|| pick(&self.doc.deployment.default_locale)).unwrap_or("zh")
    }

    /// The template for a purpose in the customer's language, falling back
    /// to the other language.
    pub fn template(&self, purpose: &str, locale: &str) -> Option<(&'static str, &Template)> {
        let locales = self.doc.templates.get(purpose)?;
        let lang = self.template_language(locale);
        if let Some(t) = locales.get(lang) {
            return Some((lang, t));
        }
        TEMPLATE_LOCALES.into_iter().find_map(|l| locales.get(l).map(|t| (l, t)))
    }
}

fn build_calendar(c: &CalendarPolicy) -> Result<BusinessCalendar, (String, String)> {
    let tz: Tz = c
        .time_zone
        .parse()
        .map_err(|_| ("calendar.time_zone".to_string(), format!("unknown time zone {:?}", c.time_zone)))?;
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut working_days = [false; 7];
    for (n, day) in c.working_days.iter().enumerate() {
        let idx = DAYS.iter().position(|d| d == &day.to_ascii_lowercase()).ok_or_else(|| {
            (format!("calendar.working_days[{n}]"), format!("{day:?} is not one of {}", DAYS.join(", ")))
        })?;
        working_days[idx] = true;
    }
    let mut periods = Vec::new();
    for (n, range) in c.working_hours.iter().enumerate() {
        let key = format!("calendar.working_hours[{n}]");
        let (a, b) =
            range.split_once('-').ok_or_else(|| (key.clone(), format!("{range:?}: expected \"HH:MM-HH:MM\"")))?;
        let parse = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M");
        let (a, b) = (parse(a), parse(b));
        match (a, b) {
            (Ok(a), Ok(b)) => periods.push((a, b)),
            _ => return Err((key, format!("{range:?}: expected \"HH:MM-HH:MM\""))),
        }
    }
    periods.sort();
    let dates = |list: &[String], key: &str| -> Result<BTreeSet<NaiveDate>, (String, String)> {
        list.iter()
            .enumerate()
            .map(|(n, d)| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| (format!("{key}[{n}]"), format!("{d:?}: expected YYYY-MM-DD")))
            })
            .collect()
    };
    let holidays = dates(&c.holidays, "calendar.holidays")?;
    let extra = dates(&c.extra_working_days, "calendar.extra_working_days")?;
    BusinessCalendar::new(&c.name, tz, periods, working_days, holidays, extra).map_err(|m| ("calendar".to_string(), m))
}

fn build_sla(s: &SlaPolicy) -> Result<SlaTable, (String, String)> {
    let target = |key: String, text: &str| SlaTarget::parse(text).map_err(|m| (key, m));
    if !(1..=99).contains(&s.warn_at_percent) {
        return Err(("sla.warn_at_percent".into(), "must be between 1 and 99".into()));
    }
    let mut levels = BTreeMap::new();
    for (name, t) in &s.targets {
        let priority: Priority = name.parse().map_err(|m| (format!("sla.targets.{name}"), m))?;
        let response = target(format!("sla.targets.{name}.response"), &t.response)?;
        let resolution = target(format!("sla.targets.{name}.resolution"), &t.resolution)?;
        levels.insert(priority, (response, resolution));
    }
    for p in Priority::ALL {
        if !levels.contains_key(&p) {
            return Err((format!("sla.targets.{p}"), "missing: every priority level needs targets".into()));
        }
    }
    let mut overrides = Vec::new();
    for (n, o) in s.overrides.iter().enumerate() {
        let priority = match &o.priority {
            Some(p) => Some(p.parse().map_err(|m| (format!("sla.overrides[{n}].priority"), m))?),
            None => None,
        };
        let response = o.response.as_deref().map(|t| target(format!("sla.overrides[{n}].response"), t)).transpose()?;
        let resolution =
            o.resolution.as_deref().map(|t| target(format!("sla.overrides[{n}].resolution"), t)).transpose()?;
        if o.problem_type.is_none() && o.problem_cause.is_none() && priority.is_none() {
            return Err((format!("sla.overrides[{n}]"), "name problem_type, problem_cause or priority".into()));
        }
        overrides.push(ParsedOverride {
            problem_type: o.problem_type.clone(),
            problem_cause: o.problem_cause.clone(),
            priority,
            response,
            resolution,
        });
    }
    Ok(SlaTable {
        warn_at_percent: s.warn_at_percent,
        acknowledge: target("sla.acknowledge".into(), &s.acknowledge)?,
        result_notice: target("sla.result_notice".into(), &s.result_notice)?,
        follow_up: target("sla.follow_up".into(), &s.follow_up)?,
        progress_update: target("sla.progress_update".into(), &s.progress_update)?,
        levels,
        overrides,
    })
}

fn check_placeholders(text: &str) -> Result<(), String> {
    render(text, &BTreeMap::from(TEMPLATE_PARAMS.map(|p| (p, String::new())))).map(|_| ())
}

/// Fills `{name}` placeholders; `{{` and `}}` are literal braces. An
/// unknown or unclosed placeholder is an error naming it.
pub fn render(template: &str, params: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => return Err(format!("placeholder {{{name} is not closed")),
                    }
                }
                let value = params.get(name.as_str()).ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
                out.push_str(value);
            }
            '}' => return Err("a lone } (write }} for a literal brace)".into()),
            _ => out.push(c),
        }
    }
    Ok(out)
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
        let e = Policy::from_toml(Some("[templates.acknowledgement.zh]\nsms = \"{nope}\"\n"), "t").unwrap_err();
        assert_eq!(e.key, "templates.acknowledgement.zh.sms");
    }

    #[test]
    fn renders_placeholders() {
        let params = BTreeMap::from([("feedback_number", "FB202310010001".to_string())]);
        assert_eq!(render("编号{feedback_number} {{x}}", &params).unwrap(), "编号FB202310010001 {x}");
        assert!(render("{missing}", &params).is_err());
        assert!(render("{feedback_number", &params).is_err());
    }
}
