//! The SMS gateway's delivery receipts: `POST /callbacks/sms?token=…` on
//! the HTTP port of the process running the SMS sender (or the token in
//! the `X-Kesu-Callback-Token` header). The body is one JSON object or an
//! array of them; the message id, status and error are read with
//! configurable JSON pointers, the id being the gateway's message id or our
//! request id (the idempotency key). Each receipt becomes a delivery report
//! (`delivered`, or `failed` with the gateway's status code as reason).
//! Unknown ids are counted in the answer and otherwise ignored, so a
//! gateway does not retry them forever.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use kesu_config::{ConfigError, Env, Secret};
use kesu_proto::v1::DeliveryReportKind;

use super::{ChannelSender, claims};

/// `SMS_CALLBACK_*` settings.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    pub token: Secret,
    pub id_pointer: String,
    pub status_pointer: String,
    pub error_pointer: String,
    pub delivered: Vec<String>,
    pub failed: Vec<String>,
}

impl CallbackSettings {
    /// `None` when `SMS_CALLBACK_TOKEN` is not set (no callback route).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let token = env.secret("SMS_CALLBACK_TOKEN")?;
        let id_pointer = env.string("SMS_CALLBACK_ID_POINTER", "/message_id")?;
        let status_pointer = env.string("SMS_CALLBACK_STATUS_POINTER", "/status")?;
        let error_pointer = env.string("SMS_CALLBACK_ERROR_POINTER", "/error")?;
        let list = |s: String| s.split(',').map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()).collect();
        let delivered = list(env.string("SMS_CALLBACK_DELIVERED", "delivered,delivrd,success")?);
        let failed = list(env.string("SMS_CALLBACK_FAILED", "failed,undeliv,rejectd,expired,undelivered")?);
        let Some(token) = token else { return Ok(None) };
        if token.expose().len() < 16 {
            let key = env.raw("SMS_CALLBACK_TOKEN").map(|(k, _)| k).unwrap_or_default();
            return Err(ConfigError { key, message: "use at least 16 characters".into() });
        }
        Ok(Some(Self { token, id_pointer, status_pointer, error_pointer, delivered, failed }))
    }
}

struct Callback {
    sender: Arc<ChannelSender>,
    settings: CallbackSettings,
}

/// The route, for the HTTP port.
pub fn router(sender: Arc<ChannelSender>, settings: CallbackSettings) -> Router {
    Router::new().route("/callbacks/sms", post(receive)).with_state(Arc::new(Callback { sender, settings }))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(
    State(cb): State<Arc<Callback>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> impl IntoResponse {
    let given = query
        .get("token")
        .map(String::as_str)
        .or_else(|| headers.get("x-kesu-callback-token").and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    if !same(given, cb.settings.token.expose()) {
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "bad or missing callback token"})));
    }
    let items = match body {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    let text = |v: &serde_json::Value, pointer: &str| {
        v.pointer(pointer).and_then(|x| x.as_str().map(str::to_string).or_else(|| x.as_i64().map(|n| n.to_string())))
    };
    let (mut accepted, mut unknown, mut ignored) = (0, 0, 0);
    for item in &items {
        let (Some(id), Some(status)) = (text(item, &cb.settings.id_pointer), text(item, &cb.settings.status_pointer))
        else {
            ignored += 1;
            continue;
        };
        let status_lower = status.to_ascii_lowercase();
        let kind = if cb.settings.delivered.contains(&status_lower) {
            DeliveryReportKind::Delivered
        } else if cb.settings.failed.contains(&status_lower) {
            DeliveryReportKind::Failed
        } else {
            ignored += 1;
            continue;
        };
        let found = match claims::find(cb.sender.db.pool(), &id).await {
            Ok(found) => found,
            Err(e) => {
                let error_id = uuid::Uuid::now_v7();
                tracing::error!(%error_id, error = %e, "SMS callback: database");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({"error": "retry later", "error_id": error_id.to_string()})),
                );
            }
        };
        let Some((request_id, _channel, attempts)) = found else {
            unknown += 1;
            continue;
        };
        // The gateway's code, never its free text (it may quote the number).
        let code: String = text(item, &cb.settings.error_pointer)
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(40)
            .collect();
        let reason = if kind == DeliveryReportKind::Failed {
            format!("gateway receipt {status}{}", if code.is_empty() { String::new() } else { format!(" ({code})") })
        } else {
            String::new()
        };
        let report = super::Report {
            kind,
            provider_id: String::new(),
            reason,
            retryable: false,
            attempt: attempts.max(1) as u32,
        };
        if let Err(e) = cb.sender.report(&request_id, &report).await {
            let error_id = uuid::Uuid::now_v7();
            tracing::error!(%error_id, error = %e, "SMS callback: recording the receipt");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "retry later", "error_id": error_id.to_string()})),
            );
        }
        accepted += 1;
    }
    (StatusCode::OK, Json(serde_json::json!({"accepted": accepted, "unknown": unknown, "ignored": ignored})))
}
