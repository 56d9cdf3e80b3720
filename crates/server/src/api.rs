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
    let places = state.geo.locate_all(&events);
    let batch = Pending::batch(events.into_iter().zip(places).collect(), received);
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use crate::{AppState, Config, Geocoder, app};

    const GOOD: &str = r#"{"ip":"173.198.105.40","latitude":35.3696,"longitude":-119.0105,"timestamp":1736919120,"suspicious":1.0}"#;

    fn state_with(config: Config) -> AppState {
        AppState::new(config, Geocoder::shared(), CancellationToken::new())
    }

    async fn post(
        state: &AppState,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::post("/api/events");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = app(state.clone())
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {bytes:?}"));
        (status, json)
    }

    async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
        let response = app(state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn stats(state: &AppState) -> serde_json::Value {
        state.hub.publish();
        let (status, body) = get(state, "/api/stats").await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_str(&body).unwrap()
    }

    #[tokio::test]
    async fn one_event_or_an_array_is_accepted_with_its_count() {
        let state = state_with(Config::default_for_tests());
        let (status, body) = post(&state, Some("application/json"), GOOD).await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (StatusCode::ACCEPTED, Some(1))
        );
        let array = format!("[{GOOD},{GOOD},{GOOD}]");
        let (status, body) = post(&state, Some("application/json; charset=utf-8"), array).await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (StatusCode::ACCEPTED, Some(3))
        );
        let stats = stats(&state).await;
        assert_eq!(stats["total"], 4);
        assert_eq!(stats["suspicious"], 4);
        assert_eq!(stats["top_places"][0]["city"], "Bakersfield");
    }

    #[tokio::test]
    async fn malformed_json_is_400() {
        let state = state_with(Config::default_for_tests());
        for body in ["{\"ip\":", "not json", ""] {
            let (status, json) = post(&state, Some("application/json"), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
            assert_eq!(json["error"], "malformed_json");
            assert!(!json["message"].as_str().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_wrong_or_missing_content_type_is_415() {
        let state = state_with(Config::default_for_tests());
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (status, json) = post(&state, content_type, GOOD).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert_eq!(json["error"], "unsupported_media_type");
        }
        let (status, _) = post(&state, Some("application/vnd.traffic+json"), GOOD).await;
        assert_eq!(status, StatusCode::ACCEPTED, "a +json media type is JSON");
    }

    #[tokio::test]
    async fn a_body_or_batch_over_the_limits_is_413() {
        let mut config = Config::default_for_tests();
        config.max_body_bytes = 1024;
        config.max_batch = 2;
        let state = state_with(config);
        let big = format!("[{}]", vec![GOOD; 20].join(","));
        let (status, json) = post(&state, Some("application/json"), big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json["error"], "too_large");
        let three = format!("[{GOOD},{GOOD},{GOOD}]");
        let (status, json) = post(&state, Some("application/json"), three).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(json["message"].as_str().unwrap().contains("at most 2"));
    }

    #[tokio::test]
    async fn an_invalid_value_is_422_naming_item_field_and_reason() {
        let state = state_with(Config::default_for_tests());
        let bad = r#"{"ip":"1.2.3.4","latitude":35,"longitude":200,"timestamp":1736919120}"#;
        let (status, json) =
            post(&state, Some("application/json"), format!("[{GOOD},{bad}]")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["error"], "invalid_event");
        assert_eq!(json["item"], 1);
        assert_eq!(json["field"], "longitude");
        assert!(json["reason"].as_str().unwrap().contains("out of range"));
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .starts_with("item 1: longitude:")
        );
    }

    #[tokio::test]
    async fn refused_requests_change_nothing_and_the_server_keeps_serving() {
        let state = state_with(Config::default_for_tests());
        let bad = r#"{"ip":"1.2.3.4","latitude":35,"longitude":1,"timestamp":"soon"}"#;
        let (status, _) = post(&state, Some("application/json"), format!("[{GOOD},{bad}]")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        post(&state, Some("application/json"), "[").await;
        let (status, _) = post(&state, Some("application/json"), GOOD).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let stats = stats(&state).await;
        assert_eq!(
            stats["total"], 1,
            "the good half of a refused batch is not counted"
        );
        assert_eq!(stats["rejected_requests"], 2);
    }

    #[tokio::test]
    async fn health_metrics_and_unknown_paths_answer() {
        let state = state_with(Config::default_for_tests());
        assert_eq!(
            get(&state, "/healthz").await,
            (StatusCode::OK, "ok\n".to_owned())
        );
        post(&state, Some("application/json"), GOOD).await;
        let (status, text) = get(&state, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("traffic_events_accepted_total 1\n"), "{text}");
        let (status, text) = get(&state, "/api/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(text.contains("not_found"));
    }
}
