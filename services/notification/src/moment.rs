//! A moment the rules react to (`feedback.evt.accepted`, `sla.evt.breached`,
//! …) with what the messages about it may say, taken from the event and,
//! where the event is thin (SLA events), from the ticket projection.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kesu_domain::policy::notification::{SURVEY_LINK, TICKET_LINK};
use kesu_domain::policy::{TemplateData, Trigger};
use kesu_domain::time::from_timestamp;
use kesu_domain::{ContactKey, Policy};
use kesu_proto::v1::{CustomerRef, EventMeta, FieldError, ReportPublished, Ticket};

use crate::labels;

/// The event a moment comes from: notices are caused by it, continue its
/// trace and are unique per event, recipient and channel.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub event_id: String,
    pub correlation_id: String,
    pub traceparent: Option<String>,
}

impl Source {
    pub fn of(meta: Option<&EventMeta>, traceparent: Option<&str>) -> Self {
        let meta = meta.cloned().unwrap_or_default();
        let traceparent =
            traceparent.map(str::to_string).or_else(|| Some(meta.traceparent.clone()).filter(|t| !t.is_empty()));
        Self { event_id: meta.event_id, correlation_id: meta.correlation_id, traceparent }
    }
}

/// What the message may say beyond the ticket: the facts of the event.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub stage: i32,
    pub note: String,
    pub result: i32,
    pub solution: String,
    pub reason: String,
    pub clock: i32,
    pub missing: Vec<FieldError>,
    pub score: u32,
    pub comment: String,
    pub percent_elapsed: u32,
    pub level: u32,
    pub sequence: u32,
    pub common_issue_id: String,
    pub report: Option<ReportPublished>,
}

/// One moment, ready for the rules.
#[derive(Debug, Clone, Default)]
pub struct Moment {
    pub trigger: Option<Trigger>,
    pub source: Source,
    /// What makes a notice of this moment unique besides recipient and
    /// channel (the event id, or a domain key such as the feedback id of an
    /// acknowledgement).
    pub scope: String,
    pub ticket_id: String,
    pub feedback_id: String,
    /// A report's id (reports concern no ticket).
    pub report_id: String,
    pub feedback_number: String,
    pub title: String,
    pub customer: Option<CustomerRef>,
    pub locale: String,
    pub time_zone: String,
    pub priority: i32,
    pub department: String,
    pub handler: String,
    pub co_handlers: Vec<String>,
    pub survey_round: u32,
    /// The roles an SLA event names.
    pub sla_roles: Vec<String>,
    /// The person an escalation names.
    pub escalated_to: String,
    pub deadline: Option<DateTime<Utc>>,
    pub facts: Facts,
}

impl Moment {
    /// A moment about a ticket, with the ticket as the event carries it.
    pub fn of_ticket(trigger: Trigger, source: Source, ticket: &Ticket) -> Self {
        Self {
            trigger: Some(trigger),
            scope: source.event_id.clone(),
            source,
            ticket_id: ticket.ticket_id.clone(),
            feedback_id: ticket.feedback_id.clone(),
            feedback_number: ticket.feedback_number.clone(),
            title: ticket.title.clone(),
            customer: ticket.customer.clone(),
            locale: ticket.locale.clone(),
            time_zone: ticket.time_zone.clone(),
            priority: ticket.priority,
            department: ticket.department.clone(),
            handler: ticket.handler.clone(),
            co_handlers: ticket.co_handlers.clone(),
            survey_round: ticket.survey_round,
            ..Default::default()
        }
    }

    /// The key of the moment's ticket, or of its feedback before there is one.
    pub fn about(&self) -> &str {
        [&self.ticket_id, &self.feedback_id, &self.report_id].into_iter().find(|s| !s.is_empty()).map_or("", |s| s)
    }

    pub fn priority(&self) -> Option<kesu_domain::Priority> {
        kesu_domain::Priority::from_proto(self.priority)
    }

    /// The customer's zone (the deployment's when the ticket names none).
    pub fn customer_zone(&self, policy: &Policy) -> Tz {
        self.time_zone.parse().unwrap_or_else(|_| policy.time_zone())
    }

    /// What templates get for a recipient reading `language` in `zone`.
    pub fn data(
        &self,
        policy: &Policy,
        key: &ContactKey,
        language: &str,
        zone: Tz,
        recipient_name: &str,
    ) -> TemplateData {
        let f = &self.facts;
        let customer = self.customer.clone().unwrap_or_default();
        let handler_name =
            policy.staff().get(&self.handler).map(|m| m.name.clone()).unwrap_or_else(|| self.handler.clone());
        let mut data = TemplateData {
            feedback_number: self.feedback_number.clone(),
            ticket_id: self.ticket_id.clone(),
            title: self.title.clone(),
            customer_name: customer.masked_name.clone(),
            recipient_name: recipient_name.to_string(),
            priority: labels::priority(self.priority, language).to_string(),
            department: labels::department(policy, &self.department, language),
            handler_name,
            deadline: self
                .deadline
                .map(|d| d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            clock: labels::clock(f.clock, language).to_string(),
            reason: f.reason.clone(),
            stage: labels::stage(f.stage, language).to_string(),
            note: f.note.clone(),
            result: labels::result(f.result, language).to_string(),
            solution: f.solution.clone(),
            missing: f.missing.iter().map(|m| labels::missing_field(&m.field, &m.message, language)).collect(),
            score: f.score,
            comment: f.comment.clone(),
            percent_elapsed: f.percent_elapsed,
            level: f.level,
            sequence: f.sequence,
            common_issue_id: f.common_issue_id.clone(),
            customer_contact: crate::recipients::masked_contact(&customer),
            ..Default::default()
        };
        if let Some(report) = &f.report {
            let en = language == "en";
            let pick = |zh: &String, en_text: &String| {
                if en && !en_text.is_empty() || zh.is_empty() { en_text.clone() } else { zh.clone() }
            };
            data.report_title = pick(&report.title_zh, &report.title_en);
            data.report_text = pick(&report.markdown_zh, &report.markdown_en);
            data.report_html = pick(&report.html_zh, &report.html_en);
            let base = &policy.notification().report_base_url;
            if !base.is_empty() && !report.http_path.is_empty() {
                data.report_link = format!("{base}{}", report.http_path);
            }
        }
        if !self.ticket_id.is_empty() {
            data.rating_token = key.rating_token(&self.ticket_id, self.survey_round);
            let templates = policy.templates();
            data.ticket_link = templates.render_named(TICKET_LINK, &data).unwrap_or_default();
            data.survey_link = templates.render_named(SURVEY_LINK, &data).unwrap_or_default();
        }
        data
    }
}

/// The instant of a protobuf timestamp, if set and valid.
pub fn instant(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(from_timestamp)
}
