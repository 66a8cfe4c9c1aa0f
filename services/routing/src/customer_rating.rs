//! Customers rate through channel adapters: a core NATS request of
//! `CustomerRating` on `ticket.rate.<channel>` is answered with a
//! `CustomerRatingResponse`. The survey's token
//! (`ContactKey::rating_token(ticket_id, survey_round)`) proves the rating
//! is for this ticket's current survey, so nobody rates someone else's
//! ticket; a bad or reused token (or a bad score) is refused and the
//! attempt kept, as sent, in `rejected_ratings`. Replicas share the work
//! through the queue group.

use std::sync::Arc;

use async_nats::HeaderMap;
use futures::StreamExt;
use kesu_bus::UnitOfWork;
use kesu_bus::publish::{CONTENT_TYPE_PROTOBUF, HEADER_CONTENT_TYPE};
use kesu_domain::ContactKey;
use kesu_domain::time::to_millis;
use kesu_proto::v1::{CustomerRating, CustomerRatingResponse, RejectedRating, TicketRef};
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::lifecycle::{Caller, Context, Session, rating, retrying};

/// `ticket.rate.<channel>` (contract: Routing 0.5).
pub const RATE_PREFIX: &str = "ticket.rate";

/// Answers rating requests until shutdown.
pub async fn serve(
    client: async_nats::Client,
    ctx: Arc<Context>,
    key: Arc<ContactKey>,
    mut subscriber: async_nats::Subscriber,
    shutdown: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = subscriber.next() => msg,
        };
        let Some(msg) = msg else {
            tracing::warn!("rating subscription ended");
            break;
        };
        let outcome = take(&ctx, &key, &msg.subject, &msg.payload).await;
        let Some(reply) = msg.reply else {
            tracing::warn!("rating request without a reply subject; handled, nobody told");
            continue;
        };
        let sent = match outcome {
            Ok(response) => {
                let mut headers = HeaderMap::new();
                headers.insert(HEADER_CONTENT_TYPE, CONTENT_TYPE_PROTOBUF);
                client.publish_with_headers(reply, headers, response.encode_to_vec().into()).await
            }
            Err(e) => {
                // Could not take it now: the adapter retries (nothing was kept).
                let message = kesu_runtime::status::report("rating", &e);
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Service-Error-Code", "503");
                headers.insert("Nats-Service-Error", message.as_str());
                client.publish_with_headers(reply, headers, bytes::Bytes::new()).await
            }
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "rating reply not sent");
        }
    }
    let _ = subscriber.unsubscribe().await;
}

fn refused(field: &str, message: &str) -> CustomerRatingResponse {
    CustomerRatingResponse { accepted: false, field: field.into(), message: message.into() }
}

/// Takes one rating: the answer, or an error when the database failed.
pub async fn take(
    ctx: &Context,
    key: &ContactKey,
    subject: &str,
    payload: &[u8],
) -> Result<CustomerRatingResponse, Error> {
    let channel = subject.strip_prefix(RATE_PREFIX).and_then(|s| s.strip_prefix('.')).unwrap_or("");
    let rating = match CustomerRating::decode(payload) {
        Ok(r) => r,
        Err(_) => {
            let response = refused("payload", "not a kesu.v1.CustomerRating");
            keep(ctx, channel, "", "", &response, payload).await?;
            return Ok(response);
        }
    };
    let response = match decide(ctx, key, &rating).await {
        Ok(()) => return Ok(CustomerRatingResponse { accepted: true, ..Default::default() }),
        Err(Error::InvalidArgument { field, message }) => refused(field, &message),
        Err(Error::NotFound(what)) => refused("ticket_id", what),
        Err(Error::FailedPrecondition(message)) => refused("ticket_id", &message),
        Err(e) => return Err(e),
    };
    keep(ctx, channel, &rating.ticket_id, &rating.external_id, &response, payload).await?;
    tracing::info!(field = %response.field, "customer rating refused and kept");
    Ok(response)
}

async fn decide(ctx: &Context, key: &ContactKey, r: &CustomerRating) -> Result<(), Error> {
    let satisfaction = rating::check(r.satisfaction.as_ref())?;
    if r.token.is_empty() {
        return Err(Error::InvalidArgument { field: "token", message: "required".into() });
    }
    let ticket = TicketRef { ticket_id: r.ticket_id.clone(), expected_version: 0 };
    retrying!(
        0,
        async {
            let mut s = Session::open(ctx, Caller::Customer, Some(&ticket)).await.map_err(|e| match e {
                Error::InvalidArgument { message, .. } => Error::InvalidArgument { field: "ticket_id", message },
                e => e,
            })?;
            if !key.check_rating_token(&s.ticket.ticket_id, s.ticket.survey_round, &r.token) {
                let message = "not the token of this ticket's current survey (wrong, or used already)".into();
                return Err(Error::InvalidArgument { field: "token", message });
            }
            if !rating::rate_in(&mut s, satisfaction.clone(), "customer").await? {
                return Err(Error::InvalidArgument {
                    field: "token",
                    message: "used already: this survey was rated".into(),
                });
            }
            s.commit().await.map(drop)
        }
        .await
    )
}

/// Keeps a refused attempt as it was sent.
async fn keep(
    ctx: &Context,
    channel: &str,
    ticket_id: &str,
    external_id: &str,
    response: &CustomerRatingResponse,
    original: &[u8],
) -> Result<(), Error> {
    let mut work = UnitOfWork::begin(&ctx.db).await?;
    sqlx::query(
        "INSERT INTO rejected_ratings (id, channel, ticket_id, external_id, field, reason, at, original)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(channel)
    .bind(ticket_id)
    .bind(external_id)
    .bind(&response.field)
    .bind(&response.message)
    .bind(to_millis(ctx.clock.now()))
    .bind(original)
    .execute(work.conn())
    .await?;
    work.commit(&ctx.outbox).await?;
    Ok(())
}

/// Refused ratings newest first, after the cursor `(at, id)`.
pub async fn rejected(
    pool: &sqlx::AnyPool,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<(i64, String, RejectedRating)>, Error> {
    let (before_at, before_id) = before.unwrap_or((i64::MAX, "\u{10FFFF}".into()));
    let rows: Vec<(i64, String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT at, id, channel, ticket_id, external_id, field, reason FROM rejected_ratings
         WHERE at < $1 OR (at = $1 AND id < $2) ORDER BY at DESC, id DESC LIMIT $3",
    )
    .bind(before_at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, id, channel, ticket_id, external_id, field, reason)| {
            let rating = RejectedRating {
                channel,
                ticket_id,
                external_id,
                field,
                reason,
                at: Some(kesu_domain::time::millis_to_timestamp(at)),
            };
            (at, id, rating)
        })
        .collect())
}
