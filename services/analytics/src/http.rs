//! analytics on its HTTP port: the JSON API (`/api/<table>`) and the CSV
//! export (`/api/export/<table>.csv`), each with a staff token
//! (`Authorization: Bearer <JWT>`) of a role that may read analytics; a
//! department manager gets their department only.
//!
//! The dashboard: `GET /dashboard` (the page asks for a staff token and
//! reads the JSON API with it; `#token=<JWT>` in the address logs in),
//! with Apache ECharts served from the binary (`/assets/echarts.min.js`).
//!
//! The weekly report: `GET /reports/weekly/<YYYY-Www>?locale=zh|en&format=html|md`
//! (a department manager's covers their department), and
//! `POST /api/reports/weekly/<YYYY-Www>/publish` (director, supervisor,
//! admin) to announce it now.
//!
//! Query parameters: `from`, `to` (local dates `YYYY-MM-DD`, `to`
//! inclusive, or RFC 3339 times), `group_by`, and the filters `channel`,
//! `type`, `cause`, `department`, `priority`, `region`, `tier`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kesu_auth::{Staff, Verifier};

use crate::api::Analytics;
use crate::error::Error;
use crate::query::{Filter, Range};
use crate::tables;

#[derive(Clone)]
pub struct HttpState {
    pub analytics: Analytics,
    pub verifier: Verifier,
    pub outbox: kesu_bus::OutboxWaker,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/api/tables", get(list))
        .route("/api/export/{file}", get(export))
        .route("/api/{table}", get(table))
        .route("/reports/weekly/{period}", get(weekly_report))
        .route("/dashboard", get(dashboard))
        .route("/assets/echarts.min.js", get(echarts))
        .route("/api/reports/weekly/{period}/publish", axum::routing::post(publish_report))
        .with_state(state)
}

/// A refusal on the HTTP port: status and JSON body.
pub struct Refusal(StatusCode, serde_json::Value);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        let (status, body) = e.http();
        Refusal(status, body)
    }
}

/// The staff a request's token names (401 saying what is wrong otherwise).
pub fn staff(state: &HttpState, headers: &HeaderMap) -> Result<Staff, Refusal> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    state
        .verifier
        .verify_header(value)
        .map_err(|e| Refusal(StatusCode::UNAUTHORIZED, serde_json::json!({ "error": e.to_string() })))
}

const PARAMS: [&str; 10] =
    ["from", "to", "group_by", "channel", "type", "cause", "department", "priority", "region", "tier"];

/// Range, scoped filter and grouping of a request.
pub fn parse(
    state: &HttpState,
    staff: &Staff,
    params: &HashMap<String, String>,
) -> Result<(Range, Filter, Option<String>), Error> {
    if let Some(unknown) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(Error::InvalidArgument {
            field: "query",
            message: format!("unknown parameter {unknown:?} (known: {})", PARAMS.join(", ")),
        });
    }
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let filter = Filter {
        channel: get("channel"),
        type_code: get("type"),
        cause_code: get("cause"),
        department: get("department"),
        priority: get("priority"),
        region: get("region"),
        tier: get("tier"),
    };
    let filter = state.analytics.scope(Some(staff), filter)?;
    let range =
        state.analytics.parse_range(params.get("from").map(String::as_str), params.get("to").map(String::as_str))?;
    Ok((range, filter, params.get("group_by").cloned()))
}

async fn list(State(state): State<HttpState>, headers: HeaderMap) -> Result<Response, Refusal> {
    let staff = staff(&state, &headers)?;
    state.analytics.scope(Some(&staff), Filter::default())?;
    let names: Vec<&str> = tables::TABLES.iter().map(|(n, _)| *n).collect();
    Ok(axum::Json(serde_json::json!({ "tables": names })).into_response())
}

async fn table(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let staff = staff(&state, &headers)?;
    let (range, filter, group_by) = parse(&state, &staff, &params)?;
    let t = tables::table(&state.analytics, &name, range, &filter, group_by.as_deref()).await?;
    Ok(axum::Json(t.to_json()).into_response())
}

async fn export(
    State(state): State<HttpState>,
    Path(file): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let staff = staff(&state, &headers)?;
    let Some(name) = file.strip_suffix(".csv") else {
        return Err(Error::InvalidArgument { field: "table", message: format!("{file:?}: ask for <table>.csv") }.into());
    };
    let (range, filter, group_by) = parse(&state, &staff, &params)?;
    let t = tables::table(&state.analytics, name, range, &filter, group_by.as_deref()).await?;
    tracing::info!(staff = %staff.id, role = %staff.role, table = name, rows = t.rows.len(), "analytics export");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"kesu-{name}.csv\"")),
        ],
        // A byte-order mark so spreadsheets read the Chinese text as UTF-8.
        format!("\u{feff}{}", t.to_csv()),
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

async fn weekly_report(
    State(state): State<HttpState>,
    Path(period): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ReportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Refusal> {
    let staff = staff(&state, &headers)?;
    let Query(params) = params.map_err(|e| {
        Refusal::from(Error::InvalidArgument { field: "query", message: format!("{e} (known: locale, format)") })
    })?;
    let filter = state.analytics.scope(Some(&staff), Filter::default())?;
    let week = crate::report::Week::parse(&period)?;
    let locale = params.locale.unwrap_or_else(|| "zh".into());
    let locale = match locale.as_str() {
        l if l.starts_with("zh") => "zh",
        l if l.starts_with("en") => "en",
        other => {
            return Err(Error::InvalidArgument { field: "locale", message: format!("{other:?}: zh or en") }.into());
        }
    };
    let format = params.format.unwrap_or_else(|| "html".into());
    let content_type = match format.as_str() {
        "html" => "text/html; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        other => {
            return Err(Error::InvalidArgument { field: "format", message: format!("{other:?}: html or md") }.into());
        }
    };
    let weekly = crate::report::weekly(&state.analytics, week, locale, &filter).await?;
    let body = crate::report::render(&weekly.data, locale, &format)?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Roles that may announce a report to management now.
const PUBLISHERS: [kesu_auth::Role; 3] =
    [kesu_auth::Role::Director, kesu_auth::Role::Supervisor, kesu_auth::Role::Admin];

async fn publish_report(
    State(state): State<HttpState>,
    Path(period): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let staff = staff(&state, &headers)?;
    if !PUBLISHERS.contains(&staff.role) {
        return Err(Error::PermissionDenied(format!(
            "role {} may not publish reports (director, supervisor, admin may)",
            staff.role
        ))
        .into());
    }
    let week = crate::report::Week::parse(&period)?;
    let report_id = crate::publish::publish(&state.analytics, &state.outbox, week, None).await?;
    tracing::info!(staff = %staff.id, week = week.name(), "weekly report published on demand");
    Ok(axum::Json(serde_json::json!({
        "report_id": report_id,
        "http_path": format!("/reports/weekly/{}", week.name()),
    }))
    .into_response())
}

/// The dashboard page (it holds no data: everything comes from the API).
async fn dashboard() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../assets/dashboard.html"),
    )
        .into_response()
}

/// Apache ECharts 5.6.0 (npm `echarts`, `dist/echarts.min.js`; see `assets/README.md`).
async fn echarts() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_bytes!("../assets/echarts-5.6.0.min.js").as_slice(),
    )
        .into_response()
}
