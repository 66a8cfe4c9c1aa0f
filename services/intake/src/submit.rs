//! Request/reply submit for adapters that must tell their customer the
//! feedback number at once: a core NATS request of `RawFeedback` on
//! `feedback.submit.<channel>` is answered with a `SubmitFeedbackResponse`;
//! so is a `SupplementFeedbackRequest` on `feedback.supplement.<channel>`
//! (the customer's answer to a needs-info request). Replicas share the work
//! through the queue group.
//!
//! If intake cannot take the submission right now (database unavailable)
//! the reply has no body and the headers `Nats-Service-Error-Code: 503`
//! and `Nats-Service-Error` (a generic text with an error id, never the
//! database's words); the adapter retries with the same external id, which
//! is never numbered twice.

use std::sync::Arc;

use async_nats::HeaderMap;
use futures::StreamExt;
use kesu_bus::publish::{CONTENT_TYPE_PROTOBUF, HEADER_CONTENT_TYPE, HEADER_TRACEPARENT, HEADER_TYPE};
use kesu_proto::type_names;
use kesu_proto::v1::{RawFeedback, SupplementFeedbackRequest};
use prost::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::{Intake, Path, Submission};
use crate::supplement::Supplement;

/// Answers submit requests until shutdown, then finishes those in flight.
pub async fn serve(
    client: async_nats::Client,
    intake: Arc<Intake>,
    queue_group: String,
    concurrency: usize,
    subscribers: Vec<async_nats::Subscriber>,
    shutdown: CancellationToken,
) {
    let mut subscriber = futures::stream::select_all(subscribers);
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = subscriber.next() => msg,
        };
        let Some(msg) = msg else {
            tracing::warn!(queue_group, "submit subscription ended");
            break;
        };
        let permit = semaphore.clone().acquire_owned().await.expect("semaphore is never closed");
        let (client, intake) = (client.clone(), intake.clone());
        tasks.spawn(async move {
            answer(&client, &intake, msg).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    for s in subscriber.iter_mut() {
        let _ = s.unsubscribe().await;
    }
    while tasks.join_next().await.is_some() {}
}

async fn answer(client: &async_nats::Client, intake: &Intake, msg: async_nats::Message) {
    let span = tracing::info_span!("submit", subject = %msg.subject);
    if let Some(tp) = msg.headers.as_ref().and_then(|h| h.get(HEADER_TRACEPARENT)) {
        kesu_telemetry::set_parent_from_traceparent(&span, tp.as_str());
    }
    async {
        let result = if msg.subject.starts_with("feedback.supplement.") {
            let request = SupplementFeedbackRequest::decode(msg.payload.as_ref()).map_err(|e| e.to_string());
            let supplement =
                Supplement { subject: msg.subject.as_str(), original: msg.payload.as_ref(), request, actor: "adapter" };
            intake.supplement(supplement).await.map(Some)
        } else {
            let raw = RawFeedback::decode(msg.payload.as_ref()).map_err(|e| e.to_string());
            let submission = Submission {
                subject: msg.subject.as_str(),
                original: msg.payload.as_ref(),
                raw,
                inbox: None,
                causation: "",
                path: Path::Request,
            };
            intake.submit(submission).await
        };
        let Some(reply) = msg.reply else {
            tracing::warn!(
                "submit request without a reply subject (use feedback.raw.<channel> to publish without waiting)"
            );
            return;
        };
        let mut headers = HeaderMap::new();
        let payload = match result {
            Ok(Some(response)) => {
                headers.insert(HEADER_CONTENT_TYPE, CONTENT_TYPE_PROTOBUF);
                headers.insert(HEADER_TYPE, type_names::SUBMIT_FEEDBACK_RESPONSE);
                response.encode_to_vec().into()
            }
            Ok(None) => unreachable!("request/reply submissions do not use the inbox"),
            Err(e) => {
                // The adapter learns only that it may retry, and an id to
                // quote; the detail stays in the log.
                let id = kesu_runtime::status::report("submission could not be taken now", &e);
                headers.insert("Nats-Service-Error-Code", "503");
                headers.insert(
                    "Nats-Service-Error",
                    format!("temporarily unavailable, retry (id {id}); see the service log").as_str(),
                );
                bytes::Bytes::new()
            }
        };
        if let Some(tp) = kesu_telemetry::current_traceparent() {
            headers.insert(HEADER_TRACEPARENT, tp.as_str());
        }
        if let Err(e) = client.publish_with_headers(reply, headers, payload).await {
            tracing::warn!(error = %e, "could not send the submit reply");
        }
    }
    .instrument(span)
    .await;
}
