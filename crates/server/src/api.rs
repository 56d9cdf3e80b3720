//! The request/response endpoints: ingest, stats, health and metrics.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::hub::{Pending, Stats, unix_ms};

/// The answer to an accepted POST.
#[derive(Debug, Serialize)]
pub struct Accepted {
    /// Events accepted.
    pub accepted: usize,
}

/// `POST /api/events`: one event object or an array of them.
pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let result = accept(&state, &headers, body);
    let counter = match &result {
        Ok(_) => &state.metrics.requests_accepted,
        Err(ApiError::Malformed(_)) => &state.metrics.requests_malformed,
        Err(ApiError::TooLarge(_)) => &state.metrics.requests_too_large,
        Err(ApiError::UnsupportedMediaType(_)) => &state.metrics.requests_wrong_type,
        Err(_) => &state.metrics.requests_invalid,
    };
    counter.fetch_add(1, Relaxed);
    if let Err(e) = &result {
        tracing::debug!(error = %e, "ingest refused");
    }
    let accepted = result?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}

fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<usize, ApiError> {
    check_json_content_type(headers)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "the body is larger than {} bytes",
                state.config.max_body_bytes
            ))
        } else {
            ApiError::Malformed(rejection.body_text())
        }
    })?;
    let events = traffic::ingest::parse_body(&body, state.config.max_batch)?;
    let received = unix_ms(SystemTime::now());
    let batch: Vec<Pending> = events
        .into_iter()
        .map(|event| {
            let place = state.geo.locate(event.latitude, event.longitude);
            Pending::new(event, place, received)
        })
        .collect();
    let accepted = batch.len();
    state
        .metrics
        .events_accepted
        .fetch_add(accepted as u64, Relaxed);
    state.hub.push(batch);
    Ok(accepted)
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"))
        .unwrap_or("(none)");
    let essence = value.split(';').next().unwrap_or_default().trim();
    let is_json = essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
            kind.to_ascii_lowercase().starts_with("application/")
                && suffix.eq_ignore_ascii_case("json")
        });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(value.to_owned()))
    }
}

/// `GET /api/stats`: the aggregates as JSON.
pub async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.hub.stats())
}

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (published, recent) = state.hub.published();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(published, recent),
    )
}

/// Any other path.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}
