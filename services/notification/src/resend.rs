//! Resending a notification: a new request (new request id) to the same
//! recipient on the same or another channel, with the data the original was
//! rendered with. The address is the one kept with the original while its
//! retention lasts; after that (or on another channel) the customer's
//! contacts from the ticket view or the staff directory. Quiet hours apply
//! to customer SMS as always. The call is audited by the auth layer.

use kesu_bus::{OutboxWaker, UnitOfWork};
use kesu_domain::policy::TemplateData;
use kesu_proto::v1::{Delivery, NotificationPurpose, NotifyChannel, Recipient, RecipientKind};
use kesu_storage::Database;

use crate::decide::template_of;
use crate::error::Error;
use crate::events::Context;
use crate::moment::Source;
use crate::notice::{self, Notice, Outcome};
use crate::recipients::{self, Destination, Unreachable};
use crate::{deliveries, projection};

pub async fn resend(
    db: &Database,
    ctx: &Context,
    outbox: &OutboxWaker,
    request_id: &str,
    channel: NotifyChannel,
) -> Result<Delivery, Error> {
    let stored =
        deliveries::get(db.pool(), request_id).await?.ok_or(Error::NotFound("no delivery with this request_id"))?;
    let original = &stored.delivery;
    let original_channel = NotifyChannel::try_from(original.channel).unwrap_or_default();
    let wanted = if channel == NotifyChannel::Unspecified { original_channel } else { channel };
    let purpose = NotificationPurpose::try_from(original.purpose).unwrap_or_default();
    let template = template_of(purpose);
    let data: TemplateData = serde_json::from_str(&stored.data).unwrap_or_default();
    let ticket = if !original.ticket_id.is_empty() {
        projection::get(db.pool(), &original.ticket_id).await?
    } else if !stored.feedback_id.is_empty() {
        projection::find_by_feedback(db.pool(), &stored.feedback_id).await?
    } else {
        None
    };
    let policy = &ctx.policy;
    let customer = original.recipient_kind == RecipientKind::Customer as i32;
    let (destination, language, zone) = if customer {
        let kept =
            stored.address.clone().filter(|_| wanted == original_channel && wanted != NotifyChannel::Unspecified);
        let destination = match kept {
            Some(address) => Destination { channel: wanted, address, masked: original.masked_address.clone() },
            None => {
                let view = ticket.as_ref().and_then(|t| t.customer.as_ref()).ok_or(Error::FailedPrecondition(
                    "the customer's contacts are no longer kept for this notification and its ticket is not known",
                ))?;
                let only = (wanted != NotifyChannel::Unspecified).then_some(wanted);
                recipients::customer(view, &ctx.key, &policy.notification().customer_channels, only).map_err(|e| {
                    match e {
                        Unreachable::NoContact => {
                            Error::FailedPrecondition("the customer has no reachable contact on that channel")
                        }
                        Unreachable::WrongKey => {
                            Error::FailedPrecondition("the customer's contacts do not open with this CONTACT_KEY")
                        }
                    }
                })?
            }
        };
        let locale = ticket.as_ref().map(|t| t.locale.as_str()).unwrap_or(original.locale.as_str());
        let zone = ticket.as_ref().and_then(|t| t.time_zone.parse().ok()).unwrap_or_else(|| policy.time_zone());
        (destination, policy.template_language(locale), zone)
    } else {
        let member = policy
            .staff()
            .get(&stored.recipient)
            .ok_or(Error::NotFound("the staff member is no longer in the staff directory"))?;
        let destination = recipients::staff(member, wanted).ok_or(Error::FailedPrecondition(
            "the staff member has no address on that channel in the staff directory",
        ))?;
        (destination, if member.language == "en" { "en" } else { "zh" }, member.time_zone)
    };
    let message = policy
        .templates()
        .render(template, language, destination.channel, &data)
        .map_err(|message| Error::InvalidArgument { field: "channel", message })?;
    let now = ctx.clock.now();
    let priority = ticket.as_ref().map_or(0, |t| t.priority);
    let quiet = &policy.notification().quiet_hours;
    let outcome = match quiet.holds(destination.channel, kesu_domain::Priority::from_proto(priority)) {
        true if customer => quiet.window_end(now, zone).map_or(Outcome::Send, Outcome::Defer),
        _ => Outcome::Send,
    };
    let new_id = uuid::Uuid::now_v7().to_string();
    let notice = Notice {
        dedup_key: format!("resend:{request_id}:{new_id}"),
        request_id: new_id,
        ticket_id: original.ticket_id.clone(),
        feedback_id: stored.feedback_id.clone(),
        about: stored.about.clone(),
        feedback_number: original.feedback_number.clone(),
        purpose,
        template_id: template,
        channel: destination.channel,
        recipient: Recipient {
            kind: original.recipient_kind,
            staff_id: original.staff_id.clone(),
            role: original.recipient_role.clone(),
            address: destination.address,
            masked_address: destination.masked,
            display_name: data.recipient_name.clone(),
        },
        message,
        data,
        priority,
        outcome,
        source: Source::default(),
        resent_from: request_id.to_string(),
    };
    let mut work = UnitOfWork::begin(db).await?;
    let recorded = notice::record(&mut work, vec![notice], now, ctx.address_retention, &ctx.timers).await?;
    work.commit(outbox).await?;
    recorded.into_iter().next().ok_or(Error::NotFound("the resend was not recorded"))
}
