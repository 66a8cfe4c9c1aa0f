//! The `[notification]` section: who is told what, when and on which
//! channel (the rules of DOMAIN.md's "Notifications" table), the order in
//! which a customer's channels are tried, quiet hours for customer SMS, and
//! the links put into messages.
//!
//! A rule names the moment it reacts to (`on`, one of [`Trigger`]), the
//! template purpose, the audience (`to`: customer or staff roles, resolved
//! through the staff directory) and, for staff, the channels. Customers are
//! reached on their preferred channel, falling back along
//! `customer_channels`. Every rule is checked against the templates at load:
//! a channel a rule may use without a template part stops the service.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use kesu_proto::v1::NotifyChannel;
use serde::Deserialize;

use super::templates::{TEMPLATE_PURPOSES, Templates};
use crate::priority::Priority;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationPolicy {
    /// Customer channels in the order tried after the preferred one.
    pub customer_channels: Vec<String>,
    /// A satisfaction score at or below this goes to the supervisor.
    pub low_score_max: u32,
    /// Link to a ticket for staff (template; `{{ ticket_id }}`, …); may be empty.
    #[serde(default)]
    pub ticket_link: String,
    /// Link of the satisfaction survey (template; `{{ rating_token }}`, …).
    #[serde(default)]
    pub survey_link: String,
    /// Prefix of report links: analytics' public URL (the report's path is appended).
    #[serde(default)]
    pub report_base_url: String,
    pub quiet_hours: QuietHoursPolicy,
    pub rules: Vec<RulePolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursPolicy {
    /// Local time ("21:00") in the customer's zone.
    pub start: String,
    pub end: String,
    /// Channels held back during quiet hours (customers only).
    pub channels: Vec<String>,
    /// Tickets of these priorities are never held back.
    #[serde(default)]
    pub except_priorities: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePolicy {
    /// The moment: one of [`Trigger::ALL`] by name ("sla.breached").
    pub on: String,
    /// The template purpose (and `NotificationPurpose`).
    pub purpose: String,
    /// "customer", or staff: "handler", "co_handlers", "supervisor",
    /// "department_head", "director", "management", "escalated_to" (the
    /// person an escalation names), "sla_recipients" (the roles an SLA event
    /// names).
    pub to: Vec<String>,
    /// Used when `to` resolves to nobody (an SLA event naming no roles, an
    /// escalation naming no person).
    #[serde(default)]
    pub fallback_to: Vec<String>,
    /// Staff channels ("sms", "email", "app"); customers: empty (preferred).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Only tickets of these priorities; empty: all.
    #[serde(default)]
    pub priorities: Vec<String>,
    /// Send this long after the moment ("2h"); absent: at once.
    #[serde(default)]
    pub delay: Option<String>,
}

/// The moments rules react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// `feedback.evt.accepted`.
    FeedbackAccepted,
    /// `feedback.evt.needs_info`.
    FeedbackNeedsInfo,
    /// A ticket created with a handler, or `ticket.evt.assigned`.
    TicketAssigned,
    /// A ticket gets a handler while its customer has no reachable contact.
    TicketNoReachableContact,
    /// `ticket.evt.escalated` to the department head (urgent ticket).
    TicketUrgentPage,
    /// `ticket.evt.progress` with `notify_customer`.
    TicketProgress,
    /// `ticket.evt.deadline_extended`.
    TicketDeadlineExtended,
    /// `ticket.evt.resolved` on its own.
    TicketResolved,
    /// `ticket.evt.resolved` together with its common issue.
    TicketCommonIssueResolved,
    /// Every `ticket.evt.resolved`: the follow-up (satisfaction survey).
    TicketFollowUp,
    /// `ticket.evt.rated` with a score at or below `low_score_max`.
    TicketRatedLow,
    SlaWarning,
    SlaBreached,
    SlaEscalated,
    SlaAckOverdue,
    SlaStale,
    SlaUpdateDue,
    /// `analytics.evt.report_published`.
    ReportPublished,
}

impl Trigger {
    pub const ALL: [Trigger; 18] = [
        Trigger::FeedbackAccepted,
        Trigger::FeedbackNeedsInfo,
        Trigger::TicketAssigned,
        Trigger::TicketNoReachableContact,
        Trigger::TicketUrgentPage,
        Trigger::TicketProgress,
        Trigger::TicketDeadlineExtended,
        Trigger::TicketResolved,
        Trigger::TicketCommonIssueResolved,
        Trigger::TicketFollowUp,
        Trigger::TicketRatedLow,
        Trigger::SlaWarning,
        Trigger::SlaBreached,
        Trigger::SlaEscalated,
        Trigger::SlaAckOverdue,
        Trigger::SlaStale,
        Trigger::SlaUpdateDue,
        Trigger::ReportPublished,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Trigger::FeedbackAccepted => "feedback.accepted",
            Trigger::FeedbackNeedsInfo => "feedback.needs_info",
            Trigger::TicketAssigned => "ticket.assigned",
            Trigger::TicketNoReachableContact => "ticket.no_reachable_contact",
            Trigger::TicketUrgentPage => "ticket.urgent_page",
            Trigger::TicketProgress => "ticket.progress",
            Trigger::TicketDeadlineExtended => "ticket.deadline_extended",
            Trigger::TicketResolved => "ticket.resolved",
            Trigger::TicketCommonIssueResolved => "ticket.common_issue_resolved",
            Trigger::TicketFollowUp => "ticket.follow_up",
            Trigger::TicketRatedLow => "ticket.rated_low",
            Trigger::SlaWarning => "sla.warning",
            Trigger::SlaBreached => "sla.breached",
            Trigger::SlaEscalated => "sla.escalated",
            Trigger::SlaAckOverdue => "sla.ack_overdue",
            Trigger::SlaStale => "sla.stale",
            Trigger::SlaUpdateDue => "sla.update_due",
            Trigger::ReportPublished => "analytics.report_published",
        }
    }

    /// Whether the moment concerns a customer who can be addressed.
    pub fn has_customer(self) -> bool {
        !matches!(self, Trigger::ReportPublished)
    }
}

/// Who a rule addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Audience {
    Customer,
    Handler,
    CoHandlers,
    Supervisor,
    DepartmentHead,
    Director,
    Management,
    /// The person an escalation names (`to_staff`).
    EscalatedTo,
    /// The roles an SLA event names (`recipient_roles`).
    SlaRecipients,
}

impl Audience {
    pub const ALL: [(&'static str, Audience); 9] = [
        ("customer", Audience::Customer),
        ("handler", Audience::Handler),
        ("co_handlers", Audience::CoHandlers),
        ("supervisor", Audience::Supervisor),
        ("department_head", Audience::DepartmentHead),
        ("director", Audience::Director),
        ("management", Audience::Management),
        ("escalated_to", Audience::EscalatedTo),
        ("sla_recipients", Audience::SlaRecipients),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, a)| *a == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// The staff directory's role name (`resolve_role`), for single roles.
    pub fn role(self) -> Option<&'static str> {
        match self {
            Audience::Handler => Some("handler"),
            Audience::Supervisor => Some("supervisor"),
            Audience::DepartmentHead => Some("department_head"),
            Audience::Director => Some("director"),
            Audience::Management => Some("management"),
            _ => None,
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub on: Trigger,
    pub purpose: &'static str,
    pub to: Vec<Audience>,
    pub fallback_to: Vec<Audience>,
    /// Staff channels; empty for the customer (preferred channel).
    pub channels: Vec<NotifyChannel>,
    /// Empty: every priority.
    pub priorities: Vec<Priority>,
    pub delay: Duration,
}

impl Rule {
    pub fn for_customer(&self) -> bool {
        self.to.contains(&Audience::Customer)
    }

    /// Whether a ticket of `priority` (None: not known) is concerned.
    pub fn applies_to(&self, priority: Option<Priority>) -> bool {
        self.priorities.is_empty() || priority.is_some_and(|p| self.priorities.contains(&p))
    }
}

/// Quiet hours, validated.
#[derive(Debug, Clone)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub channels: BTreeSet<NotifyChannel>,
    pub except: Vec<Priority>,
}

impl QuietHours {
    /// When the quiet window that `at` falls in ends, in zone `tz`; `None`
    /// when `at` is not inside quiet hours (or start equals end: none).
    pub fn window_end(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if self.start == self.end {
            return None;
        }
        let local = at.with_timezone(&tz);
        let t = local.time();
        let date = local.date_naive();
        let end_date = if self.start > self.end {
            // Over midnight (21:00–08:00).
            if t >= self.start {
                date.succ_opt()?
            } else if t < self.end {
                date
            } else {
                return None;
            }
        } else if t >= self.start && t < self.end {
            date
        } else {
            return None;
        };
        let end = end_date.and_time(self.end);
        // A gap (DST) has no such local time: take the first instant after it.
        tz.from_local_datetime(&end)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(end + Duration::hours(1))).earliest())
            .map(|d| d.with_timezone(&Utc))
    }

    /// Whether a customer message on `channel` about a ticket of `priority`
    /// is held back during quiet hours.
    pub fn holds(&self, channel: NotifyChannel, priority: Option<Priority>) -> bool {
        self.channels.contains(&channel) && !priority.is_some_and(|p| self.except.contains(&p))
    }
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct NotificationRules {
    pub customer_channels: Vec<NotifyChannel>,
    pub low_score_max: u32,
    pub report_base_url: String,
    pub quiet_hours: QuietHours,
    pub rules: Vec<Rule>,
}

/// Names of the link templates in [`Templates`].
pub const TICKET_LINK: &str = "notification.ticket_link";
pub const SURVEY_LINK: &str = "notification.survey_link";

impl NotificationRules {
    /// The rules reacting to `trigger`, in policy order.
    pub fn rules_for(&self, trigger: Trigger) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.on == trigger)
    }
}

/// "sms" → SMS, …
pub fn parse_channel(name: &str) -> Option<NotifyChannel> {
    match name {
        "sms" => Some(NotifyChannel::Sms),
        "email" => Some(NotifyChannel::Email),
        "app" => Some(NotifyChannel::App),
        _ => None,
    }
}

fn parse_time(text: &str, key: &str) -> Result<NaiveTime, (String, String)> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| (key.to_string(), format!("{text:?} is not a time (\"21:00\")")))
}

/// The link templates (policy key, source) to compile with the templates.
pub(super) fn link_templates(p: &NotificationPolicy) -> [(&'static str, &str); 2] {
    [(TICKET_LINK, p.ticket_link.as_str()), (SURVEY_LINK, p.survey_link.as_str())]
}

pub(super) fn build(p: &NotificationPolicy, templates: &Templates) -> Result<NotificationRules, (String, String)> {
    let mut customer_channels = Vec::new();
    for (n, name) in p.customer_channels.iter().enumerate() {
        let channel = parse_channel(name)
            .ok_or_else(|| (format!("notification.customer_channels[{n}]"), format!("{name:?}: sms, email or app")))?;
        if !customer_channels.contains(&channel) {
            customer_channels.push(channel);
        }
    }
    if customer_channels.is_empty() {
        return Err(("notification.customer_channels".into(), "name at least one channel".into()));
    }
    let q = &p.quiet_hours;
    let mut channels = BTreeSet::new();
    for (n, name) in q.channels.iter().enumerate() {
        channels.insert(parse_channel(name).ok_or_else(|| {
            (format!("notification.quiet_hours.channels[{n}]"), format!("{name:?}: sms, email or app"))
        })?);
    }
    let quiet_hours = QuietHours {
        start: parse_time(&q.start, "notification.quiet_hours.start")?,
        end: parse_time(&q.end, "notification.quiet_hours.end")?,
        channels,
        except: priorities(&q.except_priorities, "notification.quiet_hours.except_priorities")?,
    };
    let mut rules = Vec::new();
    for (n, r) in p.rules.iter().enumerate() {
        let key = |field: &str| format!("notification.rules[{n}].{field}");
        let on = Trigger::ALL.into_iter().find(|t| t.name() == r.on).ok_or_else(|| {
            (key("on"), format!("{:?} is not one of {}", r.on, Trigger::ALL.map(|t| t.name()).join(", ")))
        })?;
        let purpose = TEMPLATE_PURPOSES.into_iter().find(|p| *p == r.purpose).ok_or_else(|| {
            (key("purpose"), format!("{:?} is not one of {}", r.purpose, TEMPLATE_PURPOSES.join(", ")))
        })?;
        let audience = |names: &[String], field: &str| -> Result<Vec<Audience>, (String, String)> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    Audience::ALL.iter().find(|(n, _)| n == name).map(|(_, a)| *a).ok_or_else(|| {
                        (
                            format!("{}[{i}]", key(field)),
                            format!("{name:?} is not one of {}", Audience::ALL.map(|(n, _)| n).join(", ")),
                        )
                    })
                })
                .collect()
        };
        let to = audience(&r.to, "to")?;
        let fallback_to = audience(&r.fallback_to, "fallback_to")?;
        if to.is_empty() {
            return Err((key("to"), "name who is told".into()));
        }
        let customer = to.contains(&Audience::Customer);
        if customer && (to.len() > 1 || !fallback_to.is_empty()) {
            return Err((
                key("to"),
                "a customer rule addresses only the customer (make a second rule for staff)".into(),
            ));
        }
        if customer && !on.has_customer() {
            return Err((key("to"), format!("{} concerns no customer", on.name())));
        }
        let mut rule_channels = Vec::new();
        for (i, name) in r.channels.iter().enumerate() {
            let channel = parse_channel(name)
                .ok_or_else(|| (format!("{}[{i}]", key("channels")), format!("{name:?}: sms, email or app")))?;
            rule_channels.push(channel);
        }
        if customer && !rule_channels.is_empty() {
            return Err((key("channels"), "customers are reached on their preferred channel: leave it empty".into()));
        }
        if !customer && rule_channels.is_empty() {
            return Err((key("channels"), "name the staff channels (sms, email, app)".into()));
        }
        let usable = if customer { &customer_channels } else { &rule_channels };
        for channel in usable {
            if !templates.supports(purpose, *channel) {
                return Err((
                    key("purpose"),
                    format!("templates.{purpose} has no {} part in zh or en", channel_name(*channel)),
                ));
            }
        }
        let delay = match &r.delay {
            None => Duration::zero(),
            Some(text) => super::parse_duration(text, &key("delay"))?,
        };
        rules.push(Rule {
            on,
            purpose,
            to,
            fallback_to,
            channels: rule_channels,
            priorities: priorities(&r.priorities, &key("priorities"))?,
            delay,
        });
    }
    // Customers who cannot be reached become a task for the handler on the app channel.
    if !templates.supports("call_customer", NotifyChannel::App) {
        return Err(("templates.call_customer".into(), "needs an app part in zh or en".into()));
    }
    Ok(NotificationRules {
        customer_channels,
        low_score_max: p.low_score_max,
        report_base_url: p.report_base_url.trim_end_matches('/').to_string(),
        quiet_hours,
        rules,
    })
}

fn priorities(names: &[String], key: &str) -> Result<Vec<Priority>, (String, String)> {
    names.iter().enumerate().map(|(i, n)| n.parse::<Priority>().map_err(|m| (format!("{key}[{i}]"), m))).collect()
}

fn channel_name(channel: NotifyChannel) -> &'static str {
    match channel {
        NotifyChannel::Sms => "sms",
        NotifyChannel::Email => "email",
        NotifyChannel::App => "app",
        NotifyChannel::Unspecified => "unspecified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> QuietHours {
        QuietHours {
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            channels: BTreeSet::from([NotifyChannel::Sms]),
            except: vec![Priority::Urgent],
        }
    }

    #[test]
    fn quiet_hours_end_at_the_next_local_morning() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let at = |h, m| tz.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap().with_timezone(&Utc);
        let next_morning = tz.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap().with_timezone(&Utc);
        assert_eq!(quiet().window_end(at(22, 0), tz), Some(next_morning));
        assert_eq!(quiet().window_end(at(21, 0), tz), Some(next_morning));
        assert_eq!(quiet().window_end(at(7, 59), tz), Some(at(8, 0)));
        assert_eq!(quiet().window_end(at(8, 0), tz), None);
        assert_eq!(quiet().window_end(at(20, 59), tz), None);
        assert!(quiet().holds(NotifyChannel::Sms, Some(Priority::High)));
        assert!(quiet().holds(NotifyChannel::Sms, None));
        assert!(!quiet().holds(NotifyChannel::Sms, Some(Priority::Urgent)));
        assert!(!quiet().holds(NotifyChannel::Email, Some(Priority::Low)));
    }

    #[test]
    fn a_window_within_one_day_works_too() {
        let mut q = quiet();
        q.start = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        q.end = NaiveTime::from_hms_opt(14, 0, 0).unwrap();
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let at = |h| tz.with_ymd_and_hms(2026, 7, 1, h, 30, 0).unwrap().with_timezone(&Utc);
        assert_eq!(
            q.window_end(at(12), tz),
            Some(tz.with_ymd_and_hms(2026, 7, 1, 14, 0, 0).unwrap().with_timezone(&Utc))
        );
        assert_eq!(q.window_end(at(14), tz), None);
    }

    #[test]
    fn the_shipped_rules_cover_the_domain_table() {
        let policy = crate::Policy::default_policy();
        let n = policy.notification();
        let purposes = |t: Trigger| n.rules_for(t).map(|r| r.purpose).collect::<Vec<_>>();
        assert_eq!(purposes(Trigger::FeedbackAccepted), ["acknowledgement"]);
        assert_eq!(purposes(Trigger::TicketFollowUp), ["satisfaction_survey"]);
        let breached = n.rules_for(Trigger::SlaBreached).next().unwrap();
        assert_eq!(breached.channels, [NotifyChannel::Sms, NotifyChannel::Email]);
        assert_eq!(breached.fallback_to, [Audience::Supervisor, Audience::Handler]);
        for trigger in Trigger::ALL {
            assert!(n.rules_for(trigger).next().is_some(), "a rule reacts to {}", trigger.name());
        }
        assert_eq!(n.low_score_max, 3);
    }

    #[test]
    fn a_rule_without_templates_for_its_channel_is_named() {
        let mut table = crate::Policy::default_table();
        let rules = table["notification"]["rules"].as_array_mut().unwrap();
        rules[4].as_table_mut().unwrap().insert("purpose".into(), "layout".into());
        let text =
            toml::to_string(&toml::Table::from_iter([("notification".to_string(), table["notification"].clone())]))
                .unwrap();
        let e = crate::Policy::from_toml(Some(&text), "t").unwrap_err();
        assert_eq!(e.key, "notification.rules[4].purpose");
        let mut templates = crate::Policy::default_table()["templates"].as_table().unwrap().clone();
        templates["urgent_page"]["zh"].as_table_mut().unwrap().remove("sms");
        templates["urgent_page"]["en"].as_table_mut().unwrap().remove("sms");
        let text = toml::to_string(&toml::Table::from_iter([("templates".to_string(), toml::Value::Table(templates))]))
            .unwrap();
        let e = crate::Policy::from_toml(Some(&text), "t").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.message.as_str()),
            ("notification.rules[4].purpose", "templates.urgent_page has no sms part in zh or en")
        );
    }
}
