//! SMS over an HTTP gateway whose request shape is configured: URL, method,
//! a JSON body template (minijinja: `{{ to | tojson }}`, `{{ text | tojson }}`,
//! `{{ request_id | tojson }}`, `{{ params.feedback_number | tojson }}`, …),
//! an auth header, and an idempotency key header carrying the request id,
//! so a gateway that de-duplicates sends a request once however often it is
//! posted. 2xx is sent (the provider's id read from the response with a
//! JSON pointer); 408, 429, 5xx, timeouts and connection errors are
//! retried; other statuses fail at once.

use std::time::Duration;

use kesu_config::{ConfigError, Env, Secret};
use kesu_proto::v1::NotificationRequest;
use minijinja::Environment;
use reqwest::header::{HeaderName, HeaderValue};

use super::retry::Rate;
use super::{SendError, Sent};

pub const DEFAULT_BODY: &str =
    r#"{"to": {{ to | tojson }}, "text": {{ text | tojson }}, "id": {{ request_id | tojson }}}"#;

/// `SMS_*` settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub url: reqwest::Url,
    pub method: reqwest::Method,
    pub body: String,
    /// "Name: value" (a secret: it usually holds a key).
    pub auth_header: Option<Secret>,
    pub idempotency_header: String,
    /// JSON pointer to the provider's message id in a 2xx answer ("" none).
    pub message_id_pointer: String,
    pub timeout: Duration,
    pub rate: Rate,
    pub callback: Option<super::callback::CallbackSettings>,
}

impl GatewaySettings {
    /// `None` when `SMS_URL` is not set (no built-in SMS sender).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let url: Option<String> = env.optional("SMS_URL")?;
        let method = env.string("SMS_METHOD", "POST")?;
        let body = env.string("SMS_BODY", DEFAULT_BODY)?;
        let auth_header = env.secret("SMS_AUTH_HEADER")?;
        let idempotency_header = env.string("SMS_IDEMPOTENCY_HEADER", "Idempotency-Key")?;
        let message_id_pointer = env.string("SMS_MESSAGE_ID_POINTER", "/message_id")?;
        let timeout = env.duration("SMS_TIMEOUT", Duration::from_secs(10))?;
        let rate: Rate = env.get("SMS_RATE", "10/s".parse().expect("a valid rate"))?;
        let callback = super::callback::CallbackSettings::from_env(env)?;
        let Some(url) = url else { return Ok(None) };
        let key = |k: &str| env.name_of(k);
        let bad = |k: &str, message: String| ConfigError { key: key(k), message };
        let url: reqwest::Url = url.parse().map_err(|e| bad("SMS_URL", format!("not a URL: {e}")))?;
        let method: reqwest::Method = method
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| bad("SMS_METHOD", format!("{method:?} is not an HTTP method")))?;
        if HeaderName::try_from(idempotency_header.as_str()).is_err() {
            return Err(bad("SMS_IDEMPOTENCY_HEADER", "not a header name".into()));
        }
        if let Some(h) = &auth_header {
            header(h.expose()).map_err(|m| bad("SMS_AUTH_HEADER", m))?;
        }
        if !message_id_pointer.is_empty() && !message_id_pointer.starts_with('/') {
            return Err(bad("SMS_MESSAGE_ID_POINTER", "a JSON pointer starts with / (e.g. /message_id)".into()));
        }
        let settings =
            Self { url, method, body, auth_header, idempotency_header, message_id_pointer, timeout, rate, callback };
        // The body template must compile and give JSON for a sample request.
        let gateway = HttpGateway::new(&settings).map_err(|m| bad("SMS_BODY", m))?;
        let sample = NotificationRequest {
            request_id: "0193a1b2-0000-7000-8000-000000000001".into(),
            body: "【客服中心】您的反馈已受理，编号FB202611240001。\"quoted\"".into(),
            recipient: Some(kesu_proto::v1::Recipient { address: "13812345678".into(), ..Default::default() }),
            params: [("feedback_number".to_string(), "FB202611240001".to_string())].into(),
            ..Default::default()
        };
        let rendered = gateway.body(&sample).map_err(|m| bad("SMS_BODY", m))?;
        serde_json::from_str::<serde_json::Value>(&rendered)
            .map_err(|e| bad("SMS_BODY", format!("does not render to JSON ({e}): {rendered}")))?;
        Ok(Some(settings))
    }
}

/// "Name: value" as a header.
fn header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text.split_once(':').ok_or("write it as \"Name: value\"")?;
    let name = HeaderName::try_from(name.trim()).map_err(|_| "not a header name".to_string())?;
    let mut value = HeaderValue::try_from(value.trim()).map_err(|_| "not a header value".to_string())?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// The HTTP gateway sender.
pub struct HttpGateway {
    client: reqwest::Client,
    settings: GatewaySettings,
    templates: Environment<'static>,
}

impl HttpGateway {
    pub fn new(settings: &GatewaySettings) -> Result<Self, String> {
        let mut templates = Environment::new();
        templates.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        templates.add_template_owned("body", settings.body.clone()).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder().timeout(settings.timeout).build().map_err(|e| e.to_string())?;
        Ok(Self { client, settings: settings.clone(), templates })
    }

    fn body(&self, request: &NotificationRequest) -> Result<String, String> {
        let recipient = request.recipient.clone().unwrap_or_default();
        let ctx = minijinja::context! {
            to => recipient.address,
            text => request.body,
            subject => request.subject,
            request_id => request.request_id,
            locale => request.locale,
            template_id => request.template_id,
            feedback_number => request.feedback_number,
            params => request.params,
        };
        self.templates.get_template("body").and_then(|t| t.render(ctx)).map_err(|e| e.to_string())
    }

    pub async fn send(&self, request: &NotificationRequest) -> Result<Sent, SendError> {
        let body = self.body(request).map_err(|e| SendError::Permanent(format!("SMS_BODY does not render: {e}")))?;
        let mut call = self
            .client
            .request(self.settings.method.clone(), self.settings.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(self.settings.idempotency_header.as_str(), request.request_id.as_str())
            .body(body);
        if let Some(h) = &self.settings.auth_header
            && let Ok((name, value)) = header(h.expose())
        {
            call = call.header(name, value);
        }
        let response = match call.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(SendError::Transient("gateway timeout".into())),
            Err(_) => return Err(SendError::Transient("gateway unreachable".into())),
        };
        let status = response.status();
        if status.is_success() {
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            let provider_id = answer
                .pointer(&self.settings.message_id_pointer)
                .and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string())))
                .unwrap_or_else(|| request.request_id.clone());
            return Ok(Sent { provider_id });
        }
        let reason = format!("gateway answered HTTP {}", status.as_u16());
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(SendError::Transient(reason))
        } else {
            Err(SendError::Permanent(reason))
        }
    }
}
