//! The `[templates]` section: notification texts per purpose and language.

use std::collections::BTreeMap;

use serde::Deserialize;

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

pub(super) fn validate(templates: &BTreeMap<String, BTreeMap<String, Template>>) -> Result<(), (String, String)> {
    for (purpose, locales) in templates {
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
    Ok(())
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
    fn renders_placeholders() {
        let params = BTreeMap::from([("feedback_number", "FB202310010001".to_string())]);
        assert_eq!(render("编号{feedback_number} {{x}}", &params).unwrap(), "编号FB202310010001 {x}");
        assert!(render("{missing}", &params).is_err());
        assert!(render("{feedback_number", &params).is_err());
    }
}
