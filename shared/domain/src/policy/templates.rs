//! The `[templates]` section: what each notification says, per purpose and
//! language ("zh", "en"), with a part per channel (SMS text, email subject,
//! email text and HTML, app message). Templates are
//! [minijinja](https://docs.rs/minijinja) (Jinja2 syntax: `{{ feedback_number }}`,
//! `{% if reason %}…{% endif %}`) over [`TemplateData`].
//!
//! Every template is compiled and rendered with [`TemplateData::sample`]
//! when the policy is loaded, so a typo, an unknown variable or a bad tag
//! stops the service at start naming the template
//! (`templates.result_notice.en.sms: …`), never at send time. Variables are
//! strict: a name [`TemplateData`] does not have is an error.
//!
//! Email HTML: a template's `email_html` if it has one, otherwise its
//! `email_text` as HTML paragraphs, placed in the `layout` template's
//! `email_html` as `{{ body_html }}`. HTML parts are auto-escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kesu_proto::v1::NotifyChannel;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

/// One template in one language; each part is optional, but a rule that
/// sends a purpose on a channel needs that channel's part (checked at load).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub sms: Option<String>,
    pub email_subject: Option<String>,
    /// The plain-text part of an email (`email_body` is accepted too).
    #[serde(alias = "email_body")]
    pub email_text: Option<String>,
    /// The HTML part of an email; absent: the text part as paragraphs.
    pub email_html: Option<String>,
    pub app: Option<String>,
}

/// purpose → language → template.
pub type TemplatesPolicy = BTreeMap<String, BTreeMap<String, Template>>;

/// Template purposes: the snake-case names of `NotificationPurpose`, plus
/// [`LAYOUT`].
pub const TEMPLATE_PURPOSES: [&str; 17] = [
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
    "call_customer",
    "common_issue_resolved",
];

/// The wrapper of every HTML email (only `email_html`, with `{{ body_html }}`).
pub const LAYOUT: &str = "layout";

/// Template languages.
pub const TEMPLATE_LOCALES: [&str; 2] = ["zh", "en"];

/// A part of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Sms,
    EmailSubject,
    EmailText,
    EmailHtml,
    App,
}

impl Part {
    pub const ALL: [Part; 5] = [Part::Sms, Part::EmailSubject, Part::EmailText, Part::EmailHtml, Part::App];

    pub fn name(self) -> &'static str {
        match self {
            Part::Sms => "sms",
            Part::EmailSubject => "email_subject",
            Part::EmailText => "email_text",
            Part::EmailHtml => "email_html",
            Part::App => "app",
        }
    }

    fn of(self, t: &Template) -> Option<&String> {
        match self {
            Part::Sms => t.sms.as_ref(),
            Part::EmailSubject => t.email_subject.as_ref(),
            Part::EmailText => t.email_text.as_ref(),
            Part::EmailHtml => t.email_html.as_ref(),
            Part::App => t.app.as_ref(),
        }
    }

    /// The parts a channel needs (email's HTML part is optional).
    pub fn required_for(channel: NotifyChannel) -> &'static [Part] {
        match channel {
            NotifyChannel::Sms => &[Part::Sms],
            NotifyChannel::Email => &[Part::EmailSubject, Part::EmailText],
            NotifyChannel::App => &[Part::App],
            NotifyChannel::Unspecified => &[],
        }
    }
}

/// Everything a template may use. Fields that do not apply to a
/// notification are empty (or 0); names are masked (`张*`), deadlines are in
/// the recipient's local time, links are built from the `[notification]`
/// link templates.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TemplateData {
    pub feedback_number: String,
    pub ticket_id: String,
    /// The ticket's summary (its title).
    pub title: String,
    /// The customer's name, masked (`张*`).
    pub customer_name: String,
    /// Who the message is for: a staff member's name, or the customer's
    /// masked name.
    pub recipient_name: String,
    /// The priority in the recipient's language.
    pub priority: String,
    /// The department's name in the recipient's language.
    pub department: String,
    /// The handler's name.
    pub handler_name: String,
    /// The deadline the message is about, in the recipient's local time
    /// (`2026-11-24 17:30`).
    pub deadline: String,
    /// Which deadline: response, resolution, … in the recipient's language.
    pub clock: String,
    /// Why: the reason of an extension or escalation.
    pub reason: String,
    /// The progress stage in the recipient's language.
    pub stage: String,
    /// The progress note or the solution.
    pub note: String,
    /// The result (resolved / partially resolved / unresolved) in the
    /// recipient's language.
    pub result: String,
    pub solution: String,
    /// What the customer is asked to supplement.
    pub missing: Vec<String>,
    /// A satisfaction score (1–5) and the customer's comment.
    pub score: u32,
    pub comment: String,
    pub rating_token: String,
    pub survey_link: String,
    pub ticket_link: String,
    pub percent_elapsed: u32,
    pub level: u32,
    /// The number of this progress update (1, 2, …).
    pub sequence: u32,
    pub common_issue_id: String,
    /// For "call the customer": what the customer must be told, in the
    /// recipient's language, and their contact masked.
    pub call_about: String,
    pub customer_contact: String,
    pub report_title: String,
    pub report_text: String,
    pub report_html: String,
    pub report_link: String,
}

impl TemplateData {
    /// Every field filled: templates are rendered with it at load.
    pub fn sample() -> Self {
        Self {
            feedback_number: "FB202611240001".into(),
            ticket_id: "0193a1b2-0000-7000-8000-000000000001".into(),
            title: "扫地机器人开机无反应".into(),
            customer_name: "张*".into(),
            recipient_name: "李工".into(),
            priority: "高".into(),
            department: "售后部".into(),
            handler_name: "李工".into(),
            deadline: "2026-11-24 17:30".into(),
            clock: "解决时限".into(),
            reason: "配件缺货，到货后处理".into(),
            stage: "已联系客户".into(),
            note: "已安排工程师上门".into(),
            result: "已解决".into(),
            solution: "更换同型号新设备".into(),
            missing: vec!["联系方式".into(), "问题描述".into()],
            score: 2,
            comment: "处理太慢".into(),
            rating_token: "q2VjcmV0LXJhdGluZy10b2s".into(),
            survey_link: "https://service.example.com/rate?token=q2VjcmV0LXJhdGluZy10b2s".into(),
            ticket_link: "https://service.example.com/tickets/0193a1b2".into(),
            percent_elapsed: 80,
            level: 2,
            sequence: 1,
            common_issue_id: "CI-0001".into(),
            call_about: "处理结果".into(),
            customer_contact: "010****5678".into(),
            report_title: "问题分析报告 2026-W48".into(),
            report_text: "# 本周概况".into(),
            report_html: "<h1>本周概况</h1>".into(),
            report_link: "https://analytics.example.com/reports/weekly/2026-W48".into(),
        }
    }
}

/// A message rendered for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderedMessage {
    /// The language actually used ("zh" or "en").
    pub language: &'static str,
    /// Email only.
    pub subject: String,
    /// The SMS, app or email text.
    pub text: String,
    /// Email only.
    pub html: String,
}

/// The compiled templates.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    /// (purpose, language, part) that exist.
    parts: BTreeSet<(String, &'static str, Part)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("parts", &self.parts.len()).finish()
    }
}

fn template_name(purpose: &str, language: &str, part: Part) -> String {
    let ext = if part == Part::EmailHtml { "html" } else { "txt" };
    format!("{purpose}.{language}.{}.{ext}", part.name())
}

fn key_of(purpose: &str, language: &str, part: Part) -> String {
    format!("templates.{purpose}.{language}.{}", part.name())
}

impl Templates {
    /// Compiles every template and the `extra` named templates (links, as
    /// `(policy key, source)`), and renders each with [`TemplateData::sample`].
    pub(super) fn compile(policy: &TemplatesPolicy, extra: &[(&str, &str)]) -> Result<Self, (String, String)> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        });
        env.set_keep_trailing_newline(true);
        let mut parts = BTreeSet::new();
        for (purpose, languages) in policy {
            if purpose != LAYOUT && !TEMPLATE_PURPOSES.contains(&purpose.as_str()) {
                return Err((
                    format!("templates.{purpose}"),
                    format!("unknown purpose (known: {}, {LAYOUT})", TEMPLATE_PURPOSES.join(", ")),
                ));
            }
            for (language, template) in languages {
                let Some(language) = TEMPLATE_LOCALES.into_iter().find(|l| l == language) else {
                    return Err((format!("templates.{purpose}.{language}"), "the language must be zh or en".into()));
                };
                for part in Part::ALL {
                    let Some(source) = part.of(template) else { continue };
                    if purpose == LAYOUT && part != Part::EmailHtml {
                        return Err((key_of(purpose, language, part), "the layout has only email_html".into()));
                    }
                    let name = template_name(purpose, language, part);
                    env.add_template_owned(name.clone(), source.clone())
                        .map_err(|e| (key_of(purpose, language, part), describe(&e)))?;
                    let extra: &[&str] = if purpose == LAYOUT { &["body_html"] } else { &[] };
                    known_variables(&env, &name, extra).map_err(|m| (key_of(purpose, language, part), m))?;
                    parts.insert((purpose.clone(), language, part));
                }
            }
        }
        for (key, source) in extra {
            env.add_template_owned(key.to_string(), source.to_string()).map_err(|e| (key.to_string(), describe(&e)))?;
            known_variables(&env, key, &[]).map_err(|m| (key.to_string(), m))?;
        }
        let templates = Self { env: Arc::new(env), parts };
        let sample = TemplateData::sample();
        for (purpose, language, part) in &templates.parts {
            let rendered = if *part == Part::EmailHtml {
                templates.render_html(purpose, language, &sample, "")
            } else {
                templates.render_part(purpose, language, *part, &sample)
            };
            rendered.map_err(|e| (key_of(purpose, language, *part), e))?;
        }
        for (key, _) in extra {
            templates.render_named(key, &sample).map_err(|e| (key.to_string(), e))?;
        }
        Ok(templates)
    }

    /// Whether some language has every part `channel` needs for `purpose`.
    pub fn supports(&self, purpose: &str, channel: NotifyChannel) -> bool {
        let needed = Part::required_for(channel);
        !needed.is_empty()
            && TEMPLATE_LOCALES
                .iter()
                .any(|l| needed.iter().all(|p| self.parts.contains(&(purpose.to_string(), *l, *p))))
    }

    /// The purposes that have templates (for listing and previews).
    pub fn purposes(&self) -> BTreeSet<&str> {
        self.parts.iter().map(|(p, _, _)| p.as_str()).filter(|p| *p != LAYOUT).collect()
    }

    /// Renders `purpose` for `channel` in `language` ("zh"/"en"), falling
    /// back to the other language when this one lacks the channel's parts.
    pub fn render(
        &self,
        purpose: &str,
        language: &str,
        channel: NotifyChannel,
        data: &TemplateData,
    ) -> Result<RenderedMessage, String> {
        let needed = Part::required_for(channel);
        if needed.is_empty() {
            return Err("the channel is unspecified".into());
        }
        let has = |l: &str| needed.iter().all(|p| self.parts.contains(&(purpose.to_string(), l, *p)));
        let language = TEMPLATE_LOCALES
            .into_iter()
            .find(|l| *l == language && has(l))
            .or_else(|| TEMPLATE_LOCALES.into_iter().find(|l| has(l)))
            .ok_or_else(|| format!("no template {purpose:?} for {}", channel_name(channel)))?;
        let mut message = RenderedMessage { language, ..Default::default() };
        match channel {
            NotifyChannel::Sms => message.text = self.render_part(purpose, language, Part::Sms, data)?,
            NotifyChannel::App => message.text = self.render_part(purpose, language, Part::App, data)?,
            NotifyChannel::Email => {
                message.subject = self.render_part(purpose, language, Part::EmailSubject, data)?.trim().to_string();
                message.text = self.render_part(purpose, language, Part::EmailText, data)?;
                message.html = self.render_html(purpose, language, data, &message.text)?;
            }
            NotifyChannel::Unspecified => {}
        }
        Ok(message)
    }

    /// Renders one of the extra named templates (a link).
    pub fn render_named(&self, name: &str, data: &TemplateData) -> Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| describe(&e))?;
        template.render(data).map_err(|e| describe(&e))
    }

    fn render_part(&self, purpose: &str, language: &str, part: Part, data: &TemplateData) -> Result<String, String> {
        self.render_named(&template_name(purpose, language, part), data)
    }

    /// The HTML part: the template's own or its text as paragraphs, inside
    /// the layout of the language (if there is one).
    fn render_html(&self, purpose: &str, language: &str, data: &TemplateData, text: &str) -> Result<String, String> {
        let body = if purpose != LAYOUT && self.parts.contains(&(purpose.to_string(), language, Part::EmailHtml)) {
            self.render_part(purpose, language, Part::EmailHtml, data)?
        } else {
            paragraphs(text)
        };
        if !self.parts.contains(&(LAYOUT.to_string(), language, Part::EmailHtml)) {
            return Ok(body);
        }
        let layout =
            self.env.get_template(&template_name(LAYOUT, language, Part::EmailHtml)).map_err(|e| describe(&e))?;
        let ctx = minijinja::context! { body_html => Value::from_safe_string(body), ..Value::from_serialize(data) };
        layout.render(ctx).map_err(|e| describe(&e))
    }
}

/// Plain text as HTML: escaped, blank lines separate paragraphs, single
/// newlines become `<br>`.
pub fn paragraphs(text: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
    };
    text.trim()
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape(p.trim()).replace('\n', "<br>\n")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn channel_name(channel: NotifyChannel) -> &'static str {
    match channel {
        NotifyChannel::Sms => "sms",
        NotifyChannel::Email => "email",
        NotifyChannel::App => "app",
        NotifyChannel::Unspecified => "an unspecified channel",
    }
}

/// Names a variable the template uses that [`TemplateData`] (or `extra`)
/// does not have.
fn known_variables(env: &Environment<'static>, name: &str, extra: &[&str]) -> Result<(), String> {
    let template = env.get_template(name).map_err(|e| describe(&e))?;
    let sample = Value::from_serialize(TemplateData::sample());
    let unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !extra.contains(&v.as_str()) && sample.get_attr(v).is_ok_and(|x| x.is_undefined()))
        .collect();
    if unknown.is_empty() { Ok(()) } else { Err(format!("unknown variable {} (see TemplateData)", unknown.join(", "))) }
}

/// A minijinja error with its line and the cause chain, on one line.
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.line() {
        Some(line) => format!("line {line}: {}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(toml_text: &str) -> Result<Templates, (String, String)> {
        let policy: TemplatesPolicy = toml::from_str(toml_text).unwrap();
        Templates::compile(&policy, &[])
    }

    #[test]
    fn renders_each_part_with_variables_and_escapes_html() {
        let t = compile(
            "[acknowledgement.zh]\nsms = \"编号{{ feedback_number }}\"\nemail_subject = \"受理 {{ feedback_number }}\"\n\
             email_text = \"{{ customer_name }}您好：\\n\\n<b>已受理</b>\"\n\
             [layout.zh]\nemail_html = \"<html><body>{{ body_html }}<p>{{ title }}</p></body></html>\"\n",
        )
        .unwrap();
        let mut data = TemplateData::sample();
        data.title = "<script>".into();
        let sms = t.render("acknowledgement", "zh", NotifyChannel::Sms, &data).unwrap();
        assert_eq!(sms.text, "编号FB202611240001");
        let email = t.render("acknowledgement", "en", NotifyChannel::Email, &data).unwrap();
        assert_eq!(email.language, "zh", "falls back to the language that has the template");
        assert_eq!(email.subject, "受理 FB202611240001");
        assert!(email.html.contains("<p>张*您好：</p>\n<p>&lt;b&gt;已受理&lt;/b&gt;</p>"), "{}", email.html);
        assert!(email.html.contains("<p>&lt;script&gt;</p>"), "variables are escaped in HTML: {}", email.html);
        assert!(t.supports("acknowledgement", NotifyChannel::Email));
        assert!(!t.supports("acknowledgement", NotifyChannel::App));
        assert!(t.render("acknowledgement", "zh", NotifyChannel::App, &data).is_err());
    }

    #[test]
    fn errors_name_the_template_at_compile_time() {
        let e = compile("[result_notice.en]\nsms = \"{{ feedbak_number }}\"\n").err().unwrap();
        assert_eq!(e.0, "templates.result_notice.en.sms");
        assert!(e.1.contains("unknown variable feedbak_number"), "{}", e.1);
        let e = compile("[result_notice.en]\nsms = \"{% if %}\"\n").err().unwrap();
        assert_eq!(e.0, "templates.result_notice.en.sms");
        assert!(e.1.contains("line 1"), "{}", e.1);
        assert_eq!(compile("[nope.en]\nsms = \"x\"\n").err().unwrap().0, "templates.nope");
        assert_eq!(compile("[report.fr]\nsms = \"x\"\n").err().unwrap().0, "templates.report.fr");
        assert_eq!(compile("[layout.en]\nsms = \"x\"\n").err().unwrap().0, "templates.layout.en.sms");
    }

    #[test]
    fn text_becomes_paragraphs() {
        assert_eq!(paragraphs("a\nb\n\n<c>"), "<p>a<br>\nb</p>\n<p>&lt;c&gt;</p>");
    }
}
