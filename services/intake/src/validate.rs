//! Checking a raw feedback against the contract and the policy.
//!
//! Four verdicts: accept; accept but ask the customer for what is missing
//! (needs info, see [`crate::needs_info`]); accept into the manual review
//! queue (malformed data a person should look at, such as a contact in a
//! bad format); or reject (cannot be taken: a required field of the
//! contract missing, an unknown enum value, text too long). Every problem
//! names its field path.

use chrono::{DateTime, Duration, Utc};
use kesu_domain::contact::ContactValue;
use kesu_domain::mask;
use kesu_domain::time::from_timestamp;
use kesu_domain::{ContactKey, Policy, channel_token};

use crate::free_text;
use kesu_proto::v1::{
    AttachmentKind, Channel, ContactKind, ContactPoint, CustomerRef, CustomerRequestKind, Feedback, FeedbackStatus,
    FieldError, NotifyChannel, Priority, RawFeedback, RequestNature, occurred_at,
};

/// The largest feedback record intake takes, encoded: the record and the
/// ticket made from it must fit well inside the broker's max payload.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// What to do with a submission.
#[derive(Debug)]
pub enum Verdict {
    /// Valid: the record, without id and number yet.
    Accept(Box<Feedback>),
    /// Taken, but the customer must first supply what is missing.
    NeedsInfo(Box<Feedback>, Vec<FieldError>),
    /// Taken, but a person must review these problems first.
    Review(Box<Feedback>, Vec<FieldError>),
    /// Not taken; the original is kept with these errors.
    Reject(Vec<FieldError>),
}

pub(crate) fn field_error(field: impl Into<String>, code: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), code: code.to_string(), message: message.into() }
}

#[derive(Default)]
struct Problems {
    reject: Vec<FieldError>,
    review: Vec<FieldError>,
}

impl Problems {
    fn reject(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.reject.push(field_error(field, code, message));
    }

    /// Checks free text: required or not, length in characters, no control
    /// characters other than line breaks and tabs (NUL cannot be stored).
    fn text(&mut self, field: &str, value: &str, max: usize, required: bool) {
        if value.trim().is_empty() {
            if required {
                self.reject(field, "required", format!("{field} is required"));
            }
            return;
        }
        let chars = value.chars().count();
        if chars > max {
            self.reject(field, "too_long", format!("{field} has {chars} characters; at most {max} are allowed"));
        }
        if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            self.reject(field, "invalid_format", format!("{field} contains control characters"));
        }
    }

    /// An enum field must hold a value this contract version defines.
    fn known<E: TryFrom<i32>>(&mut self, field: &str, value: i32, type_name: &str) {
        if E::try_from(value).is_err() {
            self.reject(field, "unknown_value", format!("{field}: {value} is not a known {type_name} value"));
        }
    }

    fn timestamp(&mut self, field: &str, ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
        let parsed = from_timestamp(ts);
        if parsed.is_none() {
            self.reject(field, "invalid_format", format!("{field} is not a valid timestamp"));
        }
        parsed
    }
}

/// Everything `check` needs besides the submission.
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub key: &'a ContactKey,
    pub now: DateTime<Utc>,
}

/// Resolves the channel from the field and the subject token.
fn resolve_channel(raw: &RawFeedback, subject_channel: Option<Channel>, p: &mut Problems) -> Channel {
    match Channel::try_from(raw.channel) {
        Err(_) => {
            p.reject("channel", "unknown_value", format!("channel: {} is not a known Channel value", raw.channel));
            Channel::Unspecified
        }
        Ok(Channel::Unspecified) => match subject_channel {
            Some(c) => c,
            None => {
                p.reject(
                    "channel",
                    "required",
                    "channel is required: set the field or publish on feedback.raw.<channel>",
                );
                Channel::Unspecified
            }
        },
        Ok(c) => {
            if let Some(s) = subject_channel
                && s != c
            {
                p.reject(
                    "channel",
                    "conflict",
                    format!(
                        "channel {} does not match the subject's channel {}",
                        channel_token(c).unwrap_or("?"),
                        channel_token(s).unwrap_or("?")
                    ),
                );
            }
            c
        }
    }
}

/// Checks `raw` and builds the record intake keeps and announces.
pub fn check(raw: &RawFeedback, subject_channel: Option<Channel>, ctx: &Context<'_>) -> (Channel, Verdict) {
    let limits = &ctx.policy.doc.intake;
    let mut p = Problems::default();
    let channel = resolve_channel(raw, subject_channel, &mut p);

    p.text("external_id", &raw.external_id, 128, true);
    // An empty description is not a rejection: the customer is asked (needs info).
    p.text("description", &raw.description, limits.max_description_chars, false);
    p.text("title", &raw.title, limits.max_title_chars, false);
    p.text("product", &raw.product, 200, false);
    p.text("order_number", &raw.order_number, 100, false);
    p.text("problem_type", &raw.problem_type, 64, false);
    p.text("problem_cause", &raw.problem_cause, 64, false);
    p.text("region", &raw.region, 100, false);
    p.text("entered_by", &raw.entered_by, 64, false);
    p.known::<RequestNature>("request_nature", raw.request_nature, "RequestNature");
    p.known::<Priority>("urgency", raw.urgency, "Priority");

    // No locale stated: the language of the text, else the deployment's.
    let locale = if raw.locale.is_empty() {
        crate::language::detect(&[&raw.title, &raw.description])
            .map(str::to_string)
            .unwrap_or_else(|| ctx.policy.doc.deployment.default_locale.clone())
    } else {
        raw.locale.clone()
    };
    if locale.len() > 35 || !locale.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        p.reject("locale", "invalid_format", "locale must be a language tag such as zh-CN or en");
    }
    let time_zone = if raw.time_zone.is_empty() {
        ctx.policy.doc.deployment.time_zone.clone()
    } else {
        if raw.time_zone.parse::<chrono_tz::Tz>().is_err() {
            p.reject("time_zone", "unknown_value", "time_zone must be an IANA zone such as Asia/Shanghai");
        }
        raw.time_zone.clone()
    };

    let submitted_at = match &raw.submitted_at {
        None => Some(ctx.now),
        Some(ts) => p.timestamp("submitted_at", ts),
    };
    if let Some(at) = submitted_at
        && at > ctx.now + Duration::days(1)
    {
        p.reject("submitted_at", "invalid_format", "submitted_at is more than a day in the future");
    }

    if let Some(occurred) = &raw.occurred_at {
        match &occurred.when {
            Some(occurred_at::When::Exact(ts)) => {
                p.timestamp("occurred_at.exact", ts);
            }
            Some(occurred_at::When::Approximate(approx)) => {
                p.text("occurred_at.approximate.text", &approx.text, 200, false);
                let earliest =
                    approx.earliest.as_ref().and_then(|t| p.timestamp("occurred_at.approximate.earliest", t));
                let latest = approx.latest.as_ref().and_then(|t| p.timestamp("occurred_at.approximate.latest", t));
                if let (Some(a), Some(b)) = (earliest, latest)
                    && a > b
                {
                    p.reject("occurred_at.approximate", "invalid_format", "earliest is after latest");
                }
            }
            Some(occurred_at::When::Unknown(_)) | None => {}
        }
    }

    if let Some(request) = &raw.customer_request {
        p.known::<CustomerRequestKind>("customer_request.kind", request.kind, "CustomerRequestKind");
        p.text("customer_request.detail", &request.detail, 1000, false);
    }

    if raw.attachments.len() > limits.max_attachments {
        p.reject("attachments", "too_many", format!("at most {} attachments are allowed", limits.max_attachments));
    }
    for (i, a) in raw.attachments.iter().enumerate() {
        p.text(&format!("attachments[{i}].name"), &a.name, 255, true);
        p.text(&format!("attachments[{i}].uri"), &a.uri, 2048, true);
        p.text(&format!("attachments[{i}].media_type"), &a.media_type, 255, false);
        p.known::<AttachmentKind>(&format!("attachments[{i}].kind"), a.kind, "AttachmentKind");
    }

    if raw.custom_fields.len() > limits.max_custom_fields {
        p.reject(
            "custom_fields",
            "too_many",
            format!("at most {} custom fields are allowed", limits.max_custom_fields),
        );
    }
    let mut keys: Vec<&String> = raw.custom_fields.keys().collect();
    keys.sort();
    for k in keys {
        p.text(&format!("custom_fields[{k:?}]"), k, 64, true);
        p.text(&format!("custom_fields[{k:?}]"), &raw.custom_fields[k], limits.max_custom_field_chars, false);
    }

    p.review.extend(crate::review::text_problems("description", &raw.description));
    let (customer, messageable) = check_customer(raw, channel, ctx, &mut p);
    let missing = crate::needs_info::missing(raw);

    if !p.reject.is_empty() {
        // What is missing is named too, unless that field is wrong already.
        let mut errors = p.reject;
        let more: Vec<FieldError> =
            missing.into_iter().filter(|m| !errors.iter().any(|e| e.field == m.field)).collect();
        errors.extend(more);
        return (channel, Verdict::Reject(errors));
    }
    // Phones and emails typed into free text leave intake masked; the
    // description as typed travels sealed (national ids are gone already).
    let description = free_text::masked(&raw.description);
    let sealed_description = if description == raw.description { Vec::new() } else { ctx.key.seal(&raw.description) };
    let title =
        if raw.title.trim().is_empty() { derive_title(&description) } else { free_text::masked(raw.title.trim()) };
    let customer_request = raw.customer_request.clone().map(|mut r| {
        r.detail = free_text::masked(&r.detail);
        r
    });
    let custom_fields = raw.custom_fields.iter().map(|(k, v)| (k.clone(), free_text::masked(v))).collect();
    let status = if !missing.is_empty() {
        FeedbackStatus::NeedsInfo
    } else if p.review.is_empty() {
        FeedbackStatus::Accepted
    } else {
        FeedbackStatus::PendingReview
    };
    let issues: Vec<FieldError> = missing.iter().chain(&p.review).cloned().collect();
    let record = Feedback {
        feedback_id: String::new(),
        feedback_number: String::new(),
        channel: channel as i32,
        external_id: raw.external_id.trim().to_string(),
        status: status as i32,
        submitted_at: submitted_at.map(kesu_domain::time::to_timestamp),
        received_at: Some(kesu_domain::time::to_timestamp(ctx.now)),
        time_zone,
        locale,
        customer: Some(customer),
        product: raw.product.clone(),
        order_number: raw.order_number.clone(),
        occurred_at: raw.occurred_at.clone(),
        problem_type: raw.problem_type.trim().to_string(),
        problem_cause: raw.problem_cause.trim().to_string(),
        request_nature: raw.request_nature,
        title,
        description,
        customer_request,
        urgency: raw.urgency,
        attachments: raw.attachments.clone(),
        custom_fields,
        region: raw.region.clone(),
        entered_by: raw.entered_by.clone(),
        affected_customers: raw.affected_customers,
        issues,
        // Landline / 400-only customers (or none at all): call them.
        no_reachable_contact: !messageable,
        sealed_description,
    };
    let size = prost::Message::encoded_len(&record);
    if size > MAX_RECORD_BYTES {
        let error = field_error(
            "payload",
            "too_long",
            format!(
                "the feedback is {size} bytes once recorded; at most {MAX_RECORD_BYTES} are allowed (attachments go by reference)"
            ),
        );
        return (channel, Verdict::Reject(vec![error]));
    }
    if !missing.is_empty() {
        (channel, Verdict::NeedsInfo(Box::new(record), missing))
    } else if p.review.is_empty() {
        (channel, Verdict::Accept(Box::new(record)))
    } else {
        (channel, Verdict::Review(Box::new(record), p.review))
    }
}

/// The customer as recorded, and whether any contact can receive an SMS,
/// email or app message (a mobile, an email, an app account or WeChat id
/// given in clear and valid).
fn check_customer(raw: &RawFeedback, channel: Channel, ctx: &Context<'_>, p: &mut Problems) -> (CustomerRef, bool) {
    let limits = &ctx.policy.doc.intake;
    let Some(c) = &raw.customer else {
        p.reject("customer", "required", "customer is required (at least a contact or a customer number)");
        return (CustomerRef::default(), false);
    };
    let mut messageable = false;
    p.text("customer.name", &c.name, limits.max_name_chars, false);
    p.text("customer.company", &c.company, limits.max_name_chars, false);
    p.text("customer.customer_number", &c.customer_number, 64, false);
    p.text("customer.industry", &c.industry, 100, false);
    p.known::<NotifyChannel>("customer.preferred_channel", c.preferred_channel, "NotifyChannel");
    let tier = if c.tier.trim().is_empty() { limits.default_tier.clone() } else { c.tier.trim().to_lowercase() };
    if !limits.customer_tiers.contains(&tier) {
        p.reject(
            "customer.tier",
            "unknown_value",
            format!("customer.tier must be one of: {}", limits.customer_tiers.join(", ")),
        );
    }
    if c.contacts.is_empty() && c.customer_number.trim().is_empty() {
        p.reject(
            "customer.contacts",
            "required",
            "give at least one contact (or a customer number) so the customer can be reached",
        );
    }
    if c.contacts.len() > limits.max_contacts {
        p.reject("customer.contacts", "too_many", format!("at most {} contacts are allowed", limits.max_contacts));
    }
    let mut contacts = Vec::with_capacity(c.contacts.len());
    let mut identity = None;
    for (i, contact) in c.contacts.iter().enumerate() {
        let field = format!("customer.contacts[{i}]");
        let kind = match ContactKind::try_from(contact.kind) {
            Ok(ContactKind::Unspecified) => {
                p.reject(format!("{field}.kind"), "required", format!("{field}.kind is required"));
                continue;
            }
            Ok(kind) => kind,
            Err(_) => {
                p.reject(
                    format!("{field}.kind"),
                    "unknown_value",
                    format!("{field}.kind: {} is not a known ContactKind value", contact.kind),
                );
                continue;
            }
        };
        p.text(&format!("{field}.value"), &contact.value, 320, true);
        if contact.value.trim().is_empty() || contact.value.chars().count() > 320 {
            continue;
        }
        if contact.masked {
            // Trust, but verify: a value without a mask character is masked
            // here, so a clear number can never ride on the flag.
            let value = contact.value.trim();
            let masked = if value.contains('*') {
                value.to_string()
            } else {
                ContactValue::parse(kind, value).map(|v| v.masked()).unwrap_or_else(|_| mask::mask_opaque(value))
            };
            contacts.push(ContactPoint { kind: kind as i32, masked, sealed: Vec::new(), reachable: false });
            continue;
        }
        match ContactValue::parse(kind, &contact.value) {
            Ok(value) => {
                identity.get_or_insert_with(|| value.identity());
                messageable |= match &value {
                    ContactValue::Phone(phone) => phone.can_receive_sms(),
                    ContactValue::Email(_) | ContactValue::AppAccount(_) | ContactValue::Wechat(_) => true,
                };
                contacts.push(ContactPoint {
                    kind: kind as i32,
                    masked: value.masked(),
                    sealed: ctx.key.seal(value.expose()),
                    reachable: true,
                });
            }
            Err(reason) => {
                p.review.push(field_error(format!("{field}.value"), "invalid_format", reason));
                contacts.push(ContactPoint {
                    kind: kind as i32,
                    masked: mask::mask_opaque(contact.value.trim()),
                    sealed: ctx.key.seal(contact.value.trim()),
                    reachable: false,
                });
            }
        }
    }
    let identity = if !c.customer_number.trim().is_empty() {
        format!("number:{}", c.customer_number.trim())
    } else {
        identity.unwrap_or_else(|| {
            format!("anonymous:{}:{}", channel_token(channel).unwrap_or("unknown"), raw.external_id.trim())
        })
    };
    let seal = |s: &str| if s.trim().is_empty() { Vec::new() } else { ctx.key.seal(s.trim()) };
    let customer = CustomerRef {
        customer_key: ctx.key.pseudonym(&identity),
        masked_name: mask::mask_person_name(&c.name),
        sealed_name: seal(&c.name),
        masked_company: mask::mask_company_name(&c.company),
        sealed_company: seal(&c.company),
        customer_number: c.customer_number.trim().to_string(),
        tier,
        industry: c.industry.clone(),
        contacts,
        preferred_channel: c.preferred_channel,
    };
    (customer, messageable)
}

/// A title from the first line of the description, at most 40 characters.
fn derive_title(description: &str) -> String {
    let line = description.trim().lines().next().unwrap_or_default().trim();
    let mut title: String = line.chars().take(40).collect();
    if line.chars().count() > 40 {
        title.push('…');
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::{Contact, Customer};

    fn ctx_parts() -> (Policy, ContactKey) {
        (Policy::default_policy(), ContactKey::from_bytes([1; 32]))
    }

    fn valid() -> RawFeedback {
        RawFeedback {
            external_id: "web-1".into(),
            description: "购买的产品A开机无反应，使用时间1周".into(),
            customer: Some(Customer {
                name: "张三".into(),
                contacts: vec![Contact { kind: ContactKind::Phone as i32, value: "13812345678".into(), masked: false }],
                ..Default::default()
            }),
            customer_request: Some(kesu_proto::v1::CustomerRequest {
                kind: CustomerRequestKind::Repair as i32,
                detail: String::new(),
            }),
            ..Default::default()
        }
    }

    fn run(raw: &RawFeedback, subject: Option<Channel>) -> (Channel, Verdict) {
        let (policy, key) = ctx_parts();
        check(raw, subject, &Context { policy: &policy, key: &key, now: Utc::now() })
    }

    fn rejected_fields(v: Verdict) -> Vec<String> {
        match v {
            Verdict::Reject(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_submission_is_accepted_with_personal_data_sealed() {
        let (channel, verdict) = run(&valid(), Some(Channel::Web));
        assert_eq!(channel, Channel::Web);
        let Verdict::Accept(record) = verdict else { panic!("not accepted") };
        let customer = record.customer.unwrap();
        assert_eq!(customer.masked_name, "张*");
        assert_eq!(customer.contacts[0].masked, "138****5678");
        assert!(customer.contacts[0].reachable);
        let key = ContactKey::from_bytes([1; 32]);
        assert_eq!(key.open(&customer.contacts[0].sealed).unwrap(), "13812345678");
        assert_eq!(customer.tier, "normal");
        assert_eq!(record.locale, "zh-CN");
        assert_eq!(record.title, "购买的产品A开机无反应，使用时间1周");
    }

    #[test]
    fn missing_required_fields_are_named() {
        let mut raw = valid();
        raw.description = "  ".into();
        raw.external_id.clear();
        assert_eq!(rejected_fields(run(&raw, Some(Channel::Web)).1), ["external_id", "description"]);
        let mut raw = valid();
        raw.customer = None;
        assert_eq!(rejected_fields(run(&raw, Some(Channel::Web)).1), ["customer"]);
        let mut raw = valid();
        raw.customer.as_mut().unwrap().contacts.clear();
        assert_eq!(rejected_fields(run(&raw, Some(Channel::Web)).1), ["customer.contacts"]);
    }

    #[test]
    fn channel_comes_from_field_or_subject_and_must_agree() {
        assert_eq!(rejected_fields(run(&valid(), None).1), ["channel"]);
        let mut raw = valid();
        raw.channel = Channel::App as i32;
        assert_eq!(run(&raw, None).0, Channel::App);
        assert_eq!(rejected_fields(run(&raw, Some(Channel::Web)).1), ["channel"]);
        raw.channel = 77;
        assert_eq!(rejected_fields(run(&raw, Some(Channel::Web)).1), ["channel"]);
    }

    #[test]
    fn unknown_enum_values_and_oversized_text_are_named() {
        let mut raw = valid();
        raw.urgency = 9;
        raw.description = "x".repeat(5001);
        raw.customer.as_mut().unwrap().contacts[0].kind = 42;
        let fields = rejected_fields(run(&raw, Some(Channel::Web)).1);
        assert_eq!(fields, ["description", "urgency", "customer.contacts[0].kind"]);
    }

    #[test]
    fn a_bad_contact_format_goes_to_review_not_rejection() {
        let mut raw = valid();
        raw.customer.as_mut().unwrap().contacts[0].value = "12345".into();
        let Verdict::Review(record, problems) = run(&raw, Some(Channel::Web)).1 else { panic!("not review") };
        assert_eq!(problems[0].field, "customer.contacts[0].value");
        assert_eq!(problems[0].code, "invalid_format");
        assert!(!record.customer.unwrap().contacts[0].reachable);
        assert_eq!(record.status, FeedbackStatus::PendingReview as i32);
    }

    #[test]
    fn masked_contacts_are_kept_but_not_reachable() {
        let mut raw = valid();
        raw.customer.as_mut().unwrap().contacts[0] =
            Contact { kind: ContactKind::Phone as i32, value: "138****5678".into(), masked: true };
        raw.customer.as_mut().unwrap().customer_number = "M001".into();
        let Verdict::Accept(record) = run(&raw, Some(Channel::Phone)).1 else { panic!("not accepted") };
        let c = record.customer.unwrap();
        assert_eq!(c.contacts[0].masked, "138****5678");
        assert!(c.contacts[0].sealed.is_empty() && !c.contacts[0].reachable);
    }

    #[test]
    fn a_clear_value_flagged_masked_is_masked_anyway() {
        let mut raw = valid();
        raw.customer.as_mut().unwrap().contacts[0].masked = true;
        let Verdict::Accept(record) = run(&raw, Some(Channel::Web)).1 else { panic!("not accepted") };
        assert_eq!(record.customer.unwrap().contacts[0].masked, "138****5678");
    }

    #[test]
    fn a_record_too_large_for_the_bus_is_rejected() {
        // Per-field limits raised as far as policy allows; the whole is too large.
        let overlay = "[intake]\nnumber_prefix = \"FB\"\nmax_title_chars = 200\nmax_description_chars = 50000\n\
                       max_name_chars = 100\nmax_contacts = 5\nmax_attachments = 20\nmax_custom_fields = 50\n\
                       max_custom_field_chars = 10000\ncustomer_tiers = [\"normal\"]\ndefault_tier = \"normal\"\n\
                       dedup_window = \"10m\"\n";
        let policy = Policy::from_toml(Some(overlay), "test").unwrap();
        let key = ContactKey::from_bytes([1; 32]);
        let mut raw = valid();
        for i in 0..10 {
            raw.custom_fields.insert(format!("k{i}"), "😀".repeat(10_000));
        }
        let (_, verdict) = check(&raw, Some(Channel::Web), &Context { policy: &policy, key: &key, now: Utc::now() });
        let Verdict::Reject(errors) = verdict else { panic!("a record over {MAX_RECORD_BYTES} bytes was taken") };
        assert_eq!((errors[0].field.as_str(), errors[0].code.as_str()), ("payload", "too_long"));
    }

    #[test]
    fn the_language_is_detected_when_no_locale_is_stated() {
        let mut raw = valid();
        raw.description = "My order has not arrived two weeks after dispatch.".into();
        let Verdict::Accept(record) = run(&raw, Some(Channel::Web)).1 else { panic!("not accepted") };
        assert_eq!(record.locale, "en");
        raw.locale = "en-GB".into();
        raw.description = "购买的产品A开机无反应".into();
        let Verdict::Accept(record) = run(&raw, Some(Channel::Web)).1 else { panic!("not accepted") };
        assert_eq!(record.locale, "en-GB", "a stated locale stands");
        raw.locale.clear();
        raw.description = "1234 5678 !!! ??? 9999 0000".into();
        let (_, verdict) = run(&raw, Some(Channel::Web));
        let (Verdict::Accept(record) | Verdict::NeedsInfo(record, _)) = verdict else { panic!("not taken") };
        assert_eq!(record.locale, "zh-CN", "the deployment's default");
    }

    #[test]
    fn contacts_in_free_text_are_masked_and_the_description_sealed() {
        let mut raw = valid();
        raw.description = "扫地机器人坏了，请打13812345678或发邮件到zhang.san@example.com".into();
        raw.customer_request.as_mut().unwrap().detail = "上门前打 139-8765-4321".into();
        raw.custom_fields.insert("备注".into(), "座机 021-61234567".into());
        let Verdict::Accept(record) = run(&raw, Some(Channel::Web)).1 else { panic!("not accepted") };
        assert_eq!(record.description, "扫地机器人坏了，请打138****5678或发邮件到z***@example.com");
        assert!(record.title.starts_with("扫地机器人坏了，请打138****5678"), "{}", record.title);
        assert_eq!(record.customer_request.unwrap().detail, "上门前打 139****4321");
        assert_eq!(record.custom_fields["备注"], "座机 021****4567");
        let key = ContactKey::from_bytes([1; 32]);
        assert_eq!(key.open(&record.sealed_description).unwrap(), raw.description);
        let Verdict::Accept(plain) = run(&valid(), Some(Channel::Web)).1 else { panic!("not accepted") };
        assert!(plain.sealed_description.is_empty(), "nothing to seal when nothing was masked");
    }

    #[test]
    fn a_customer_with_only_a_landline_or_a_400_number_has_no_reachable_contact() {
        let (_, Verdict::Accept(record)) = run(&valid(), Some(Channel::Web)) else { panic!("not accepted") };
        assert!(!record.no_reachable_contact, "a mobile gets SMS");
        for (kind, value, reachable) in [
            (ContactKind::Phone, "010-62345678", false),
            (ContactKind::Phone, "400-123-4567", false),
            (ContactKind::Email, "zhang@example.com", true),
            (ContactKind::Wechat, "oABCDEF123456", true),
        ] {
            let mut raw = valid();
            raw.customer.as_mut().unwrap().contacts =
                vec![Contact { kind: kind as i32, value: value.into(), masked: false }];
            let (_, Verdict::Accept(record)) = run(&raw, Some(Channel::Phone)) else { panic!("not accepted") };
            assert_eq!(record.no_reachable_contact, !reachable, "{value}");
        }
        let mut raw = valid();
        raw.customer.as_mut().unwrap().contacts =
            vec![Contact { kind: ContactKind::Phone as i32, value: "138****5678".into(), masked: true }];
        raw.customer.as_mut().unwrap().customer_number = "M001".into();
        let (_, Verdict::Accept(record)) = run(&raw, Some(Channel::Phone)) else { panic!("not accepted") };
        assert!(record.no_reachable_contact, "a masked number cannot be sent to");
    }

    #[test]
    fn nul_characters_are_refused() {
        let mut raw = valid();
        raw.description = "bad\0text".into();
        assert_eq!(rejected_fields(run(&raw, Some(Channel::Web)).1), ["description"]);
    }
}
