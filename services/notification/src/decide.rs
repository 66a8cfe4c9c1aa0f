//! The rules applied to a moment: who is told, on which channel, what, and
//! when. Customers get their preferred reachable channel (quiet hours hold
//! their SMS back); a customer who cannot be reached is recorded as
//! suppressed and, when the ticket has a handler, becomes a "call the
//! customer" task for that handler on the app channel. Staff are resolved
//! through the staff directory; a rule that resolves to nobody, or a person
//! without an address for the rule's channels, falls back and is recorded,
//! never silently dropped.

use chrono::{DateTime, Utc};
use kesu_domain::policy::{Audience, Rule, StaffMember, TemplateData};
use kesu_domain::{ContactKey, Policy};
use kesu_proto::v1::{NotificationPurpose, NotifyChannel, Recipient, RecipientKind};

use crate::labels;
use crate::moment::Moment;
use crate::notice::{Notice, Outcome};
use crate::recipients::{self, Destination, Unreachable};

/// The contact key does not open the customer's contacts (a configuration
/// error of this service: it must equal intake's).
#[derive(Debug)]
pub struct WrongKey;

/// Applies the rules at one instant.
pub struct Decider<'a> {
    pub policy: &'a Policy,
    pub key: &'a ContactKey,
    pub now: DateTime<Utc>,
}

/// `NotificationPurpose` of a template purpose ("sla_breached").
pub fn purpose_of(name: &str) -> NotificationPurpose {
    NotificationPurpose::from_str_name(&format!("NOTIFICATION_PURPOSE_{}", name.to_ascii_uppercase()))
        .unwrap_or_default()
}

/// The template purpose of a `NotificationPurpose`.
pub fn template_of(purpose: NotificationPurpose) -> &'static str {
    kesu_domain::policy::TEMPLATE_PURPOSES.into_iter().find(|p| purpose_of(p) == purpose).unwrap_or("acknowledgement")
}

impl Decider<'_> {
    /// The notices the rules give for `moment`.
    pub fn decide(&self, moment: &Moment) -> Result<Vec<Notice>, WrongKey> {
        let Some(trigger) = moment.trigger else { return Ok(Vec::new()) };
        let mut notices = Vec::new();
        for rule in self.policy.notification().rules_for(trigger) {
            if !rule.applies_to(moment.priority()) {
                continue;
            }
            if rule.for_customer() {
                self.customer(rule, moment, &mut notices)?;
            } else {
                self.staff(rule, moment, &mut notices);
            }
        }
        Ok(notices)
    }

    fn customer(&self, rule: &Rule, moment: &Moment, out: &mut Vec<Notice>) -> Result<(), WrongKey> {
        let customer = moment.customer.clone().unwrap_or_default();
        let order = &self.policy.notification().customer_channels;
        let purpose = purpose_of(rule.purpose);
        match recipients::customer(&customer, self.key, order, None) {
            Ok(destination) => {
                out.push(self.customer_notice(rule.purpose, moment, destination, rule.delay, ""));
                Ok(())
            }
            Err(Unreachable::WrongKey) => Err(WrongKey),
            Err(Unreachable::NoContact) => {
                let language = self.policy.template_language(&moment.locale);
                let reason = if moment.handler.is_empty() {
                    "no reachable contact (landline or 400 number only); the handler gets a call-the-customer task on assignment"
                } else {
                    "no reachable contact (landline or 400 number only); the handler is asked to call"
                };
                let recipient = Recipient {
                    kind: RecipientKind::Customer as i32,
                    masked_address: recipients::masked_contact(&customer),
                    display_name: customer.masked_name.clone(),
                    ..Default::default()
                };
                let data = moment.data(
                    self.policy,
                    self.key,
                    language,
                    moment.customer_zone(self.policy),
                    &customer.masked_name,
                );
                out.push(self.notice(
                    moment,
                    rule.purpose,
                    NotifyChannel::Unspecified,
                    recipient,
                    data,
                    format!("{}:{}:customer:none", moment.scope, rule.purpose),
                    Outcome::Suppress(reason.into()),
                ));
                if let Some(handler) = self.policy.staff().get(&moment.handler) {
                    let about = labels::call_about(purpose, &handler.language);
                    self.staff_member(
                        moment,
                        "call_customer",
                        handler,
                        "handler",
                        &[NotifyChannel::App],
                        about,
                        rule.delay,
                        out,
                    );
                }
                Ok(())
            }
        }
    }

    /// A "call the customer" task for the ticket's handler, when a notice
    /// to the customer failed for good (`scope`: what it is unique to).
    pub fn call_task(&self, moment: &Moment, purpose: NotificationPurpose) -> Vec<Notice> {
        let mut out = Vec::new();
        if let Some(handler) = self.policy.staff().get(&moment.handler) {
            let about = labels::call_about(purpose, &handler.language);
            let app = [NotifyChannel::App];
            self.staff_member(
                moment,
                "call_customer",
                handler,
                "handler",
                &app,
                about,
                chrono::Duration::zero(),
                &mut out,
            );
        }
        out
    }

    /// A notice to the customer at `destination` (quiet hours apply).
    pub fn customer_notice(
        &self,
        template: &'static str,
        moment: &Moment,
        destination: Destination,
        delay: chrono::Duration,
        resent_from: &str,
    ) -> Notice {
        let customer = moment.customer.clone().unwrap_or_default();
        let language = self.policy.template_language(&moment.locale);
        let zone = moment.customer_zone(self.policy);
        let data = moment.data(self.policy, self.key, language, zone, &customer.masked_name);
        let quiet = &self.policy.notification().quiet_hours;
        let at = self.now + delay;
        let held = quiet.holds(destination.channel, moment.priority()).then(|| quiet.window_end(at, zone)).flatten();
        let outcome = match held {
            Some(end) => Outcome::Defer(end),
            None if at > self.now => Outcome::Defer(at),
            None => Outcome::Send,
        };
        let channel = destination.channel;
        let recipient = Recipient {
            kind: RecipientKind::Customer as i32,
            address: destination.address,
            masked_address: destination.masked,
            display_name: customer.masked_name.clone(),
            ..Default::default()
        };
        let key = if resent_from.is_empty() {
            format!("{}:{template}:customer:{}", moment.scope, crate::deliveries::channel_name(channel as i32))
        } else {
            format!("resend:{resent_from}:{}", uuid::Uuid::now_v7())
        };
        let mut notice = self.notice(moment, template, channel, recipient, data, key, outcome);
        notice.resent_from = resent_from.to_string();
        notice
    }

    fn staff(&self, rule: &Rule, moment: &Moment, out: &mut Vec<Notice>) {
        let mut members = self.audience(&rule.to, moment);
        if members.is_empty() {
            members = self.audience(&rule.fallback_to, moment);
        }
        if members.is_empty() {
            let roles: Vec<&str> = rule.to.iter().chain(&rule.fallback_to).map(|a| a.name()).collect();
            let recipient =
                Recipient { kind: RecipientKind::Staff as i32, role: roles.join(","), ..Default::default() };
            let reason = format!(
                "nobody to tell: the staff directory resolves {} to nobody for department {:?}",
                roles.join(", "),
                moment.department
            );
            let data = moment.data(self.policy, self.key, "zh", self.policy.time_zone(), "");
            out.push(self.notice(
                moment,
                rule.purpose,
                NotifyChannel::Unspecified,
                recipient,
                data,
                format!("{}:{}:nobody", moment.scope, rule.purpose),
                Outcome::Suppress(reason),
            ));
            return;
        }
        for (member, role) in members {
            let about = labels::call_about(NotificationPurpose::Acknowledgement, &member.language);
            self.staff_member(moment, rule.purpose, member, role, &rule.channels, about, rule.delay, out);
        }
    }

    /// The notices to one member of staff on the rule's channels, or on the
    /// first channel the directory has an address for.
    #[allow(clippy::too_many_arguments)]
    fn staff_member(
        &self,
        moment: &Moment,
        template: &'static str,
        member: &StaffMember,
        role: &str,
        channels: &[NotifyChannel],
        call_about: &str,
        delay: chrono::Duration,
        out: &mut Vec<Notice>,
    ) {
        let recipient = |d: Option<&Destination>| Recipient {
            kind: RecipientKind::Staff as i32,
            staff_id: member.id.clone(),
            role: role.to_string(),
            address: d.map(|d| d.address.clone()).unwrap_or_default(),
            masked_address: d.map(|d| d.masked.clone()).unwrap_or_default(),
            display_name: member.name.clone(),
        };
        let mut data = moment.data(self.policy, self.key, &member.language, member.time_zone, &member.name);
        data.call_about = call_about.to_string();
        let key = |channel: NotifyChannel| {
            format!("{}:{template}:{}:{}", moment.scope, member.id, crate::deliveries::channel_name(channel as i32))
        };
        let mut destinations: Vec<Destination> = if member.active {
            channels.iter().filter_map(|c| recipients::staff(member, *c)).collect()
        } else {
            Vec::new()
        };
        if member.active && destinations.is_empty() {
            // The rule's channels have no address: the first one that does.
            destinations.extend(
                [NotifyChannel::App, NotifyChannel::Email, NotifyChannel::Sms]
                    .into_iter()
                    .filter(|c| self.policy.templates().supports(template, *c))
                    .find_map(|c| recipients::staff(member, c)),
            );
        }
        if destinations.is_empty() {
            let reason = if member.active {
                format!("{} has no sms, email or app address in the staff directory", member.id)
            } else {
                format!("{} is inactive in the staff directory", member.id)
            };
            out.push(self.notice(
                moment,
                template,
                NotifyChannel::Unspecified,
                recipient(None),
                data,
                key(NotifyChannel::Unspecified),
                Outcome::Suppress(reason),
            ));
            return;
        }
        let outcome = if delay > chrono::Duration::zero() { Outcome::Defer(self.now + delay) } else { Outcome::Send };
        for destination in destinations {
            let channel = destination.channel;
            out.push(self.notice(
                moment,
                template,
                channel,
                recipient(Some(&destination)),
                data.clone(),
                key(channel),
                outcome.clone(),
            ));
        }
    }

    /// The staff a rule's audience means for the moment, each once, with
    /// the role they are told as.
    fn audience<'p>(&'p self, to: &[Audience], moment: &Moment) -> Vec<(&'p StaffMember, &'p str)> {
        let staff = self.policy.staff();
        let mut found: Vec<(&StaffMember, &str)> = Vec::new();
        let mut add = |member: &'p StaffMember, role: &'p str| {
            if !found.iter().any(|(m, _)| m.id == member.id) {
                found.push((member, role));
            }
        };
        for audience in to {
            match audience {
                Audience::Customer => {}
                Audience::CoHandlers => {
                    for id in &moment.co_handlers {
                        if let Some(m) = staff.get(id) {
                            add(m, "co_handler");
                        }
                    }
                }
                Audience::EscalatedTo => {
                    if let Some(m) = staff.get(&moment.escalated_to) {
                        add(m, "escalated_to");
                    }
                }
                Audience::SlaRecipients => {
                    for role in &moment.sla_roles {
                        let role = ROLES.iter().find(|r| *r == role).copied().unwrap_or("unknown");
                        for m in staff.resolve_role(role, &moment.department, &moment.handler) {
                            add(m, role);
                        }
                    }
                }
                single => {
                    let role = single.role().unwrap_or("unknown");
                    for m in staff.resolve_role(role, &moment.department, &moment.handler) {
                        add(m, role);
                    }
                }
            }
        }
        found
    }

    /// Renders and assembles a notice; a template that fails to render is
    /// recorded as suppressed with the error (templates are checked at
    /// start, so this is a data problem).
    #[allow(clippy::too_many_arguments)]
    fn notice(
        &self,
        moment: &Moment,
        template: &'static str,
        channel: NotifyChannel,
        recipient: Recipient,
        data: TemplateData,
        dedup_key: String,
        outcome: Outcome,
    ) -> Notice {
        let language = if recipient.kind == RecipientKind::Staff as i32 {
            self.policy.staff().get(&recipient.staff_id).map_or("zh", |m| if m.language == "en" { "en" } else { "zh" })
        } else {
            self.policy.template_language(&moment.locale)
        };
        let mut outcome = outcome;
        let message = if channel == NotifyChannel::Unspecified {
            kesu_domain::policy::RenderedMessage { language, ..Default::default() }
        } else {
            match self.policy.templates().render(template, language, channel, &data) {
                Ok(message) => message,
                Err(e) => {
                    outcome = Outcome::Suppress(format!("template {template:?} could not be rendered: {e}"));
                    kesu_domain::policy::RenderedMessage { language, ..Default::default() }
                }
            }
        };
        Notice {
            request_id: uuid::Uuid::now_v7().to_string(),
            dedup_key,
            ticket_id: moment.ticket_id.clone(),
            feedback_id: moment.feedback_id.clone(),
            about: moment.about().to_string(),
            feedback_number: moment.feedback_number.clone(),
            purpose: purpose_of(template),
            template_id: template,
            channel,
            recipient,
            message,
            data,
            priority: moment.priority,
            outcome,
            source: moment.source.clone(),
            resent_from: String::new(),
        }
    }
}

/// The roles SLA events may name (the staff directory's `resolve_role`).
const ROLES: [&str; 5] = ["handler", "supervisor", "department_head", "director", "management"];
