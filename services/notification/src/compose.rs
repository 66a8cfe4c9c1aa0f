//! Choosing where to reach a customer and rendering the message.

use std::collections::BTreeMap;

use kesu_domain::policy::{TEMPLATE_PARAMS, render};
use kesu_domain::{ContactKey, PhoneNumber, Policy};
use kesu_proto::v1::{ContactKind, CustomerRef, NotifyChannel};

/// Where a message goes.
pub struct Destination {
    pub channel: NotifyChannel,
    /// In clear: only ever put into the request for the sender.
    pub address: String,
    pub masked: String,
}

/// Why a customer cannot be reached.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// No contact usable on any channel: the notification is suppressed.
    NoContact,
    /// A sealed contact does not open with this service's key: a
    /// configuration error (CONTACT_KEY differs from intake's).
    WrongKey,
}

/// The customer's preferred channel if a reachable contact serves it,
/// otherwise SMS, email, app in that order.
pub fn destination(customer: &CustomerRef, key: &ContactKey) -> Result<Destination, Unreachable> {
    let mut order = Vec::with_capacity(4);
    if let Ok(preferred) = NotifyChannel::try_from(customer.preferred_channel)
        && preferred != NotifyChannel::Unspecified
    {
        order.push(preferred);
    }
    for ch in [NotifyChannel::Sms, NotifyChannel::Email, NotifyChannel::App] {
        if !order.contains(&ch) {
            order.push(ch);
        }
    }
    for channel in order {
        for contact in customer.contacts.iter().filter(|c| c.reachable && !c.sealed.is_empty()) {
            let kind = ContactKind::try_from(contact.kind).unwrap_or_default();
            let serves = match channel {
                NotifyChannel::Sms => kind == ContactKind::Phone,
                NotifyChannel::Email => kind == ContactKind::Email,
                NotifyChannel::App => matches!(kind, ContactKind::AppAccount | ContactKind::Wechat),
                NotifyChannel::Unspecified => false,
            };
            if !serves {
                continue;
            }
            let address = key.open(&contact.sealed).map_err(|_| Unreachable::WrongKey)?;
            if channel == NotifyChannel::Sms && !PhoneNumber::parse(&address).is_ok_and(|p| p.can_receive_sms()) {
                continue;
            }
            return Ok(Destination { channel, address, masked: contact.masked.clone() });
        }
    }
    Err(Unreachable::NoContact)
}

/// A rendered message.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub language: &'static str,
    pub subject: String,
    pub body: String,
}

/// Renders a template for a channel; every known placeholder defaults to "".
pub fn message(
    policy: &Policy,
    template_id: &str,
    channel: NotifyChannel,
    locale: &str,
    params: &BTreeMap<&str, String>,
) -> Result<Message, String> {
    let (language, template) =
        policy.template(template_id, locale).ok_or_else(|| format!("no template {template_id:?}"))?;
    let mut all: BTreeMap<&str, String> = TEMPLATE_PARAMS.iter().map(|p| (*p, String::new())).collect();
    for (k, v) in params {
        if !TEMPLATE_PARAMS.contains(k) {
            return Err(format!("unknown template parameter {k:?}"));
        }
        all.insert(k, v.clone());
    }
    let missing = |part: &str| format!("template {template_id:?} ({language}) has no {part} text");
    let (subject, body) = match channel {
        NotifyChannel::Sms => (None, template.sms.as_ref().ok_or_else(|| missing("sms"))?),
        NotifyChannel::Email => (
            Some(template.email_subject.as_ref().ok_or_else(|| missing("email_subject"))?),
            template.email_body.as_ref().ok_or_else(|| missing("email_body"))?,
        ),
        NotifyChannel::App => (None, template.app.as_ref().ok_or_else(|| missing("app"))?),
        NotifyChannel::Unspecified => return Err("channel is unspecified".into()),
    };
    Ok(Message {
        language,
        subject: subject.map(|s| render(s, &all)).transpose()?.unwrap_or_default(),
        body: render(body, &all)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::ContactPoint;

    fn key() -> ContactKey {
        ContactKey::from_bytes([3; 32])
    }

    fn point(kind: ContactKind, value: &str, reachable: bool) -> ContactPoint {
        ContactPoint { kind: kind as i32, masked: "m".into(), sealed: key().seal(value), reachable }
    }

    #[test]
    fn the_preferred_channel_wins_when_reachable() {
        let customer = CustomerRef {
            contacts: vec![point(ContactKind::Phone, "13812345678", true), point(ContactKind::Email, "a@b.cn", true)],
            preferred_channel: NotifyChannel::Email as i32,
            ..Default::default()
        };
        let d = destination(&customer, &key()).unwrap();
        assert_eq!((d.channel, d.address.as_str()), (NotifyChannel::Email, "a@b.cn"));
    }

    #[test]
    fn sms_needs_a_mobile_number() {
        let customer = CustomerRef {
            contacts: vec![point(ContactKind::Phone, "010-12345678", true), point(ContactKind::Email, "a@b.cn", true)],
            ..Default::default()
        };
        assert_eq!(destination(&customer, &key()).unwrap().channel, NotifyChannel::Email);
        let unreachable = CustomerRef { contacts: vec![point(ContactKind::Phone, "x", false)], ..Default::default() };
        assert_eq!(destination(&unreachable, &key()).err(), Some(Unreachable::NoContact));
        let other_key = CustomerRef {
            contacts: vec![ContactPoint {
                kind: ContactKind::Email as i32,
                masked: "m".into(),
                sealed: ContactKey::from_bytes([4; 32]).seal("a@b.cn"),
                reachable: true,
            }],
            ..Default::default()
        };
        assert_eq!(destination(&other_key, &key()).err(), Some(Unreachable::WrongKey));
    }

    #[test]
    fn renders_in_the_customers_language() {
        let policy = Policy::default_policy();
        let params = BTreeMap::from([("feedback_number", "FB202611230001".to_string())]);
        let zh = message(&policy, "acknowledgement", NotifyChannel::Sms, "zh-CN", &params).unwrap();
        assert!(zh.body.contains("编号FB202611230001"), "{}", zh.body);
        let en = message(&policy, "acknowledgement", NotifyChannel::Email, "en-US", &params).unwrap();
        assert_eq!(en.language, "en");
        assert!(en.subject.contains("FB202611230001"));
        assert!(
            message(&policy, "acknowledgement", NotifyChannel::Sms, "zh", &BTreeMap::from([("x", String::new())]))
                .is_err()
        );
        assert!(message(&policy, "nope", NotifyChannel::Sms, "zh", &params).is_err());
    }
}
