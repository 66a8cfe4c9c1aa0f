//! Where a message can reach someone: the customer through the sealed
//! contacts on the bus (their preferred channel, falling back along the
//! policy's order), staff through the staff directory of the policy.

use kesu_domain::policy::StaffMember;
use kesu_domain::{ContactKey, PhoneNumber};
use kesu_proto::v1::{ContactKind, CustomerRef, NotifyChannel};

/// Where a message goes.
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    pub channel: NotifyChannel,
    /// In clear: only ever put into the request for the sender (and kept in
    /// the delivery record for the configured retention).
    pub address: String,
    pub masked: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination").field("channel", &self.channel).field("masked", &self.masked).finish()
    }
}

/// Why a customer cannot be reached.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// No contact usable on any channel (a landline or 400 number only).
    NoContact,
    /// A sealed contact does not open with this service's key: a
    /// configuration error (CONTACT_KEY differs from intake's).
    WrongKey,
}

/// The customer's preferred channel if a reachable contact serves it,
/// otherwise the first of `order` that one does. `only`: that channel or
/// nothing (a resend on a chosen channel).
pub fn customer(
    customer: &CustomerRef,
    key: &ContactKey,
    order: &[NotifyChannel],
    only: Option<NotifyChannel>,
) -> Result<Destination, Unreachable> {
    let mut channels = Vec::with_capacity(4);
    match only {
        Some(channel) => channels.push(channel),
        None => {
            if let Ok(preferred) = NotifyChannel::try_from(customer.preferred_channel)
                && preferred != NotifyChannel::Unspecified
            {
                channels.push(preferred);
            }
            for channel in order {
                if !channels.contains(channel) {
                    channels.push(*channel);
                }
            }
        }
    }
    for channel in channels {
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

/// The customer's first contact, masked (what a handler calls).
pub fn masked_contact(customer: &CustomerRef) -> String {
    customer
        .contacts
        .iter()
        .find(|c| ContactKind::try_from(c.kind).unwrap_or_default() == ContactKind::Phone)
        .or_else(|| customer.contacts.first())
        .map(|c| c.masked.clone())
        .unwrap_or_default()
}

/// A staff member's work address on `channel`, if the directory has one.
pub fn staff(member: &StaffMember, channel: NotifyChannel) -> Option<Destination> {
    let (address, masked) = match channel {
        NotifyChannel::Sms => {
            member.phone.as_ref().filter(|p| p.can_receive_sms()).map(|p| (p.expose().to_string(), p.masked()))?
        }
        NotifyChannel::Email => member.email.as_ref().map(|e| (e.expose().to_string(), e.masked()))?,
        NotifyChannel::App => member.app_account.as_ref().map(|a| (a.clone(), kesu_domain::mask::mask_opaque(a)))?,
        NotifyChannel::Unspecified => return None,
    };
    Some(Destination { channel, address, masked })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::ContactPoint;

    const ORDER: [NotifyChannel; 3] = [NotifyChannel::Sms, NotifyChannel::Email, NotifyChannel::App];

    fn key() -> ContactKey {
        ContactKey::from_bytes([3; 32])
    }

    fn point(kind: ContactKind, value: &str, reachable: bool) -> ContactPoint {
        ContactPoint { kind: kind as i32, masked: "m".into(), sealed: key().seal(value), reachable }
    }

    #[test]
    fn the_preferred_channel_wins_when_reachable() {
        let c = CustomerRef {
            contacts: vec![point(ContactKind::Phone, "13812345678", true), point(ContactKind::Email, "a@b.cn", true)],
            preferred_channel: NotifyChannel::Email as i32,
            ..Default::default()
        };
        let d = customer(&c, &key(), &ORDER, None).unwrap();
        assert_eq!((d.channel, d.address.as_str()), (NotifyChannel::Email, "a@b.cn"));
        let d = customer(&c, &key(), &ORDER, Some(NotifyChannel::Sms)).unwrap();
        assert_eq!(d.channel, NotifyChannel::Sms);
        assert_eq!(customer(&c, &key(), &ORDER, Some(NotifyChannel::App)).err(), Some(Unreachable::NoContact));
    }

    #[test]
    fn sms_needs_a_mobile_number() {
        let c = CustomerRef {
            contacts: vec![point(ContactKind::Phone, "010-12345678", true), point(ContactKind::Email, "a@b.cn", true)],
            ..Default::default()
        };
        assert_eq!(customer(&c, &key(), &ORDER, None).unwrap().channel, NotifyChannel::Email);
        let landline =
            CustomerRef { contacts: vec![point(ContactKind::Phone, "4001234567", true)], ..Default::default() };
        assert_eq!(customer(&landline, &key(), &ORDER, None).err(), Some(Unreachable::NoContact));
        let other_key = CustomerRef {
            contacts: vec![ContactPoint {
                kind: ContactKind::Email as i32,
                masked: "m".into(),
                sealed: ContactKey::from_bytes([4; 32]).seal("a@b.cn"),
                reachable: true,
            }],
            ..Default::default()
        };
        assert_eq!(customer(&other_key, &key(), &ORDER, None).err(), Some(Unreachable::WrongKey));
    }
}
