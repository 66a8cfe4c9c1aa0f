//! The one enforcement point: a tower layer on the gRPC server that lets
//! health and reflection through, verifies the bearer token of every other
//! call, checks the caller's role against the service's role table (deny by
//! default), records audited calls, and hands the verified [`Staff`](crate::Staff) to the
//! handler in the request extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use kesu_storage::Database;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use tonic::Status;
use tonic::body::Body;

use crate::table::contract;
use crate::{Audit, RoleTable, Rpc, Verifier};

/// Largest request body read to find an audited call's subject.
const MAX_AUDITED_BODY: usize = 4 * 1024 * 1024;

/// Services that answer without a token.
fn is_open(service: &str) -> bool {
    service == "grpc.health.v1.Health" || service.starts_with("grpc.reflection.")
}

struct Guard {
    verifier: Verifier,
    tables: Vec<&'static RoleTable>,
    audit: Database,
}

impl Guard {
    fn rpc(&self, service: &str, method: &str) -> Option<&'static Rpc> {
        self.tables.iter().find(|t| t.service == service).and_then(|t| t.rpc(method))
    }
}

/// Layer for `tonic::transport::Server::layer`.
#[derive(Clone)]
pub struct AuthLayer {
    guard: Arc<Guard>,
}

impl AuthLayer {
    /// Enforces `tables` with tokens checked by `verifier`; audit rows go to `audit`.
    pub fn new(verifier: Verifier, tables: &[&'static RoleTable], audit: Database) -> Self {
        Self { guard: Arc::new(Guard { verifier, tables: tables.to_vec(), audit }) }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, guard: self.guard.clone() }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    guard: Arc<Guard>,
}

type Request = http::Request<Body>;
type Response = http::Response<Body>;

impl<S> tower_service::Service<Request> for AuthService<S>
where
    S: tower_service::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The ready service goes with this call; a fresh clone stays behind.
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let guard = self.guard.clone();
        Box::pin(async move { guarded(guard, inner, request).await })
    }
}

async fn guarded<S>(guard: Arc<Guard>, mut inner: S, mut request: Request) -> Result<Response, S::Error>
where
    S: tower_service::Service<Request, Response = Response>,
{
    let path = request.uri().path().to_string();
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path.as_str(), ""));
    if is_open(service) {
        return inner.call(request).await;
    }
    let authorization = request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let staff = match guard.verifier.verify_header(authorization) {
        Ok(staff) => staff,
        Err(e) => {
            tracing::debug!(rpc = %path, error = %e, "unauthenticated call refused");
            return Ok(Status::unauthenticated(e.to_string()).into_http());
        }
    };
    let rpc = match guard.rpc(service, method) {
        Some(rpc) if rpc.allows(staff.role) => rpc,
        Some(rpc) => {
            tracing::debug!(rpc = %path, staff = %staff.id, role = %staff.role, "call refused: role");
            return Ok(Status::permission_denied(format!(
                "{service}/{method} needs the role {}; the token's role is {}",
                rpc.roles_text(),
                staff.role
            ))
            .into_http());
        }
        None => {
            return Ok(Status::permission_denied(format!("{service}/{method} is open to no role")).into_http());
        }
    };
    let audit_id = if rpc.audit == Audit::No {
        None
    } else {
        let (subject, rebuilt) = match subject_of(service, rpc, request).await {
            Ok(found) => found,
            Err(status) => return Ok(status.into_http()),
        };
        request = rebuilt;
        let action = format!("{service}/{method}");
        match crate::audit::record(&guard.audit, &staff, &action, rpc.audit, &subject).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(rpc = %path, error = %e, "audit log unavailable: call refused");
                return Ok(Status::unavailable("the audit log cannot record this call; try again").into_http());
            }
        }
    };
    request.extensions_mut().insert(staff);
    let response = inner.call(request).await?;
    if let Some(id) = audit_id {
        let outcome = match response.headers().get("grpc-status").and_then(|v| v.to_str().ok()) {
            None | Some("0") => "OK".to_string(),
            Some(code) => format!("{:?}", tonic::Code::from_bytes(code.as_bytes())),
        };
        if let Err(e) = crate::audit::complete(&guard.audit, &id, &outcome).await {
            tracing::warn!(rpc = %path, error = %e, "audit outcome not recorded");
        }
    }
    Ok(response)
}

/// The value of the rpc's subject field in a unary request, and the request
/// rebuilt around the bytes read. Streaming requests name no subject.
async fn subject_of(service: &str, rpc: &Rpc, request: Request) -> Result<(String, Request), Status> {
    let input = contract()
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == rpc.method))
        .filter(|m| !m.is_client_streaming())
        .map(|m| m.input());
    let (Some(input), false) = (input, rpc.subject.is_empty()) else {
        return Ok((String::new(), request));
    };
    let (parts, body) = request.into_parts();
    let bytes = Limited::new(body, MAX_AUDITED_BODY)
        .collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the request: {e}")))?
        .to_bytes();
    let subject = decode_subject(&bytes, input, rpc.subject).unwrap_or_default();
    Ok((subject, http::Request::from_parts(parts, Body::new(Full::new(bytes)))))
}

/// Reads a dotted string field path from one uncompressed gRPC frame.
fn decode_subject(frame: &Bytes, input: MessageDescriptor, path: &str) -> Option<String> {
    let (&compressed, rest) = frame.split_first()?;
    if compressed != 0 || rest.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
    let message = DynamicMessage::decode(input, rest.get(4..4 + len)?).ok()?;
    let mut parts = path.split('.').peekable();
    let mut current = message;
    while let Some(part) = parts.next() {
        let value = current.get_field_by_name(part)?.into_owned();
        match (parts.peek(), value) {
            (None, Value::String(s)) => return Some(s),
            (Some(_), Value::Message(m)) => current = m,
            _ => return None,
        }
    }
    None
}
