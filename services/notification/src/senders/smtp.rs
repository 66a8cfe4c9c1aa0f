//! Email over SMTP with lettre: STARTTLS (default), implicit TLS or plain,
//! optional AUTH, a text and an HTML part, subjects in any language (lettre
//! encodes non-ASCII headers as RFC 2047 encoded words), and a Message-ID
//! derived from the request id (`<request_id@from-domain>`), so a message
//! sent again after a crash is recognisably the same message.

use std::path::PathBuf;
use std::time::Duration;

use kesu_config::{ConfigError, Env, Secret};
use kesu_proto::v1::NotificationRequest;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::retry::Rate;
use super::{SendError, Sent};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on the same host or network only).
    None,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" | "plain" => Ok(Self::None),
            other => Err(format!("{other:?}: starttls, tls or none")),
        }
    }
}

/// `SMTP_*` settings.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub rate: Rate,
}

impl SmtpSettings {
    /// `None` when `SMTP_HOST` is not set (no built-in email sender).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let host: Option<String> = env.optional("SMTP_HOST")?;
        let security: SmtpSecurity = env.get("SMTP_SECURITY", SmtpSecurity::StartTls)?;
        let port: Option<u16> = env.optional("SMTP_PORT")?;
        let user: Option<String> = env.optional("SMTP_USER")?;
        let password = env.secret("SMTP_PASSWORD")?;
        let from: Option<String> = env.optional("SMTP_FROM")?;
        let ca_file: Option<PathBuf> = env.optional("SMTP_CA_FILE")?;
        let timeout = env.duration("SMTP_TIMEOUT", Duration::from_secs(30))?;
        let rate: Rate = env.get("SMTP_RATE", "20/s".parse().expect("a valid rate"))?;
        let Some(host) = host else { return Ok(None) };
        let key = |k: &str| env.name_of(k);
        let from = from.ok_or_else(|| ConfigError {
            key: key("SMTP_FROM"),
            message: "is required with SMTP_HOST: the sender address, e.g. \"客服中心 <service@example.com>\"".into(),
        })?;
        let from: Mailbox =
            from.parse().map_err(|e| ConfigError { key: key("SMTP_FROM"), message: format!("not a mailbox: {e}") })?;
        if user.is_some() != password.is_some() {
            return Err(ConfigError {
                key: key("SMTP_PASSWORD"),
                message: "SMTP_USER and SMTP_PASSWORD go together".into(),
            });
        }
        if let Some(path) = &ca_file
            && !path.is_file()
        {
            return Err(ConfigError { key: key("SMTP_CA_FILE"), message: format!("{} is not a file", path.display()) });
        }
        let port = port.unwrap_or(match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        Ok(Some(Self { host, port, security, user, password, from, ca_file, timeout, rate }))
    }
}

/// The SMTP sender (a pooled lettre transport).
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl SmtpSender {
    pub fn new(s: &SmtpSettings) -> Result<Self, String> {
        let tls = |host: &str| -> Result<TlsParameters, String> {
            let mut builder = TlsParameters::builder(host.to_string());
            if let Some(path) = &s.ca_file {
                let pem = std::fs::read(path).map_err(|e| format!("SMTP_CA_FILE {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("SMTP_CA_FILE {}: {e}", path.display()))?;
                builder = builder.add_root_certificate(cert);
            }
            builder.build().map_err(|e| format!("TLS for {host}: {e}"))
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host).port(s.port).timeout(Some(s.timeout));
        builder = match s.security {
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls(&s.host)?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls(&s.host)?)),
            SmtpSecurity::None => builder.tls(Tls::None),
        };
        if let (Some(user), Some(password)) = (&s.user, &s.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        let domain = s.from.email.domain().to_string();
        Ok(Self { transport: builder.build(), from: s.from.clone(), domain })
    }

    /// The Message-ID of a request: the same for every attempt.
    pub fn message_id(&self, request_id: &str) -> String {
        format!("<{request_id}@{}>", self.domain)
    }

    pub async fn send(&self, request: &NotificationRequest) -> Result<Sent, SendError> {
        let recipient = request.recipient.clone().unwrap_or_default();
        let address = recipient
            .address
            .parse()
            .map_err(|_| SendError::Permanent("the recipient is not a valid email address".into()))?;
        let name = Some(recipient.display_name.clone()).filter(|n| !n.is_empty());
        let message_id = self.message_id(&request.request_id);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(request.subject.clone())
            .message_id(Some(message_id.clone()));
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(request.body.clone());
        let message = if request.html_body.is_empty() {
            builder.singlepart(text)
        } else {
            let html = SinglePart::builder().header(ContentType::TEXT_HTML).body(request.html_body.clone());
            builder.multipart(MultiPart::alternative().singlepart(text).singlepart(html))
        }
        .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(Sent { provider_id: message_id }),
            // Server texts may quote the address: only the code is reported.
            Err(e) => {
                let code = e.status().map(|c| format!("SMTP {c}")).unwrap_or_else(|| {
                    if e.is_timeout() {
                        "SMTP timeout".into()
                    } else if e.is_tls() {
                        "SMTP TLS failure".into()
                    } else {
                        "SMTP connection failed".into()
                    }
                });
                if e.is_permanent() {
                    Err(SendError::Permanent(format!("{code}: rejected permanently")))
                } else {
                    Err(SendError::Transient(format!("{code}: temporary failure")))
                }
            }
        }
    }
}
