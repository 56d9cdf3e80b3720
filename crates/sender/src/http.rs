//! The HTTP transport: POSTs to `{url}/api/events` over one keep-alive client, each with an
//! `Idempotency-Key` header, and the server's answers sorted into [`PostError`] kinds. Bodies
//! are the compact binary layout by default ([`traffic::ingest::binary`]: a fraction of
//! JSON's cost to write and for the server to read), or JSON.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use tracing::info;
use traffic::Event;
use traffic::ingest::{BodyFormat, binary};

use crate::transport::{CaptureReport, PostError, Transport};

/// Posts events to a traffic-globe server.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client,
    endpoint: Url,
    capture_endpoint: Url,
    format: BodyFormat,
}

/// The HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl HttpTransport {
    /// A transport posting to `{base}/api/events`, each request limited to `timeout`,
    /// with `Authorization: Bearer {token}` when a token is given.
    pub fn new(base: &Url, timeout: Duration, token: Option<&str>) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(token) = token
            && let Ok(mut value) =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        {
            // Kept out of debug output.
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirected POST would silently turn into a GET: treat it as an answer instead.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        let mut capture_endpoint = base.clone();
        capture_endpoint.set_path(&format!(
            "{}/api/capture",
            base.path().trim_end_matches('/')
        ));
        Ok(Self {
            client,
            endpoint: events_endpoint(base),
            capture_endpoint,
            format: BodyFormat::Binary,
        })
    }

    /// Posts bodies in `format` (the binary layout unless told otherwise).
    pub fn with_format(mut self, format: BodyFormat) -> Self {
        self.format = format;
        self
    }

    /// Where the events go.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }
}

/// `{base}/api/events`, keeping any path prefix of the base URL.
pub fn events_endpoint(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}/api/events", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// The request header carrying a batch's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header marking the stored answer to a key seen before.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Wait before retrying a 409 that names no `Retry-After`.
const CONFLICT_RETRY: Duration = Duration::from_secs(1);

impl Transport for HttpTransport {
    async fn post(&mut self, key: &str, events: &[Event]) -> Result<u64, PostError> {
        let (body, content_type) = match self.format {
            BodyFormat::Binary => (binary::encode(events), binary::CONTENT_TYPE),
            BodyFormat::Json => (traffic::json::events_body(events), "application/json"),
        };
        let response = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, content_type)
            .header(IDEMPOTENCY_KEY, key)
            .body(body)
            .send()
            .await
            .map_err(|e| PostError::Transient(error_chain(&e)))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        if response
            .headers()
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        {
            info!(
                key,
                %status,
                "the server had already taken this batch (an earlier answer was lost); not counted twice"
            );
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| PostError::Transient(error_chain(&e)))?;
        classify(status, retry_after, &body, events.len())
    }

    async fn report_capture(&mut self, report: &CaptureReport) -> Result<(), PostError> {
        let response = self
            .client
            .post(self.capture_endpoint.clone())
            .json(report)
            .send()
            .await
            .map_err(|e| PostError::Transient(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let message = format!("POST {}: {status}: {body}", self.capture_endpoint);
        Err(match status.as_u16() {
            401 | 403 => PostError::Unauthorized(message),
            s if s >= 500 || s == 429 => PostError::Transient(message),
            _ => PostError::Fatal(message),
        })
    }
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by our server).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// The server's success answer.
#[derive(Deserialize)]
struct AcceptedBody {
    accepted: u64,
}

/// The server's error answer; every field optional so odd servers still give a message.
#[derive(Deserialize, Default)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
    item: Option<usize>,
    field: Option<String>,
    reason: Option<String>,
}

/// Sorts a response into success or a [`PostError`].
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    sent: usize,
) -> Result<u64, PostError> {
    if status.is_success() {
        // A 2xx without the count still means the batch was taken.
        return Ok(serde_json::from_slice::<AcceptedBody>(body).map_or(sent as u64, |b| b.accepted));
    }
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    let message = parsed
        .message
        .clone()
        .or_else(|| parsed.reason.clone())
        .or_else(|| parsed.error.clone())
        .unwrap_or_else(|| text.chars().take(200).collect());
    let described = format!("server answered {status}: {message}");
    match status {
        StatusCode::UNAUTHORIZED => Err(PostError::Unauthorized(format!(
            "{described}; fix: pass an ingest token with --token or SENDER_TOKEN (an admin \
             makes one with `server token add NAME`)"
        ))),
        StatusCode::FORBIDDEN => Err(PostError::Unauthorized(format!(
            "{described}; fix: use an ingest token (`server token add NAME`)"
        ))),
        StatusCode::PAYLOAD_TOO_LARGE => Err(PostError::TooLarge),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(PostError::Fatal(format!(
            "{described}; fix: a server older than the binary body takes JSON: pass --body json \
             (SENDER_BODY=json)"
        ))),
        StatusCode::UNPROCESSABLE_ENTITY if parsed.item.is_some() || sent == 1 => {
            Err(PostError::Invalid {
                item: parsed.item.or(Some(0)),
                field: parsed.field,
                reason: parsed.reason.unwrap_or(message),
            })
        }
        // The same key is still being processed: ask again later, with the same key.
        StatusCode::CONFLICT => Err(PostError::RetryAfter {
            reason: described,
            after: retry_after.unwrap_or(CONFLICT_RETRY),
        }),
        s if s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS
            || s.is_server_error() =>
        {
            match retry_after {
                Some(after) => Err(PostError::RetryAfter {
                    reason: described,
                    after,
                }),
                None => Err(PostError::Transient(described)),
            }
        }
        _ => Err(PostError::Fatal(described)),
    }
}

/// An error with its sources, `a: b: c`, since reqwest's own message hides the cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_keeps_a_path_prefix() {
        let at = |base: &str| events_endpoint(&Url::parse(base).unwrap()).to_string();
        assert_eq!(at("http://h:3000"), "http://h:3000/api/events");
        assert_eq!(at("http://h/globe/"), "http://h/globe/api/events");
    }

    #[test]
    fn answers_are_sorted_by_status() {
        assert_eq!(
            classify(StatusCode::ACCEPTED, None, br#"{"accepted":3}"#, 3),
            Ok(3)
        );
        assert_eq!(classify(StatusCode::OK, None, b"", 2), Ok(2));
        assert_eq!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, None, b"", 9),
            Err(PostError::TooLarge)
        );
        let invalid = br#"{"error":"invalid_event","message":"item 2: latitude out of range","item":2,"field":"latitude","reason":"91 is out of range"}"#;
        assert_eq!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, None, invalid, 5),
            Err(PostError::Invalid {
                item: Some(2),
                field: Some("latitude".into()),
                reason: "91 is out of range".into(),
            })
        );
        for status in [503, 500, 429, 408] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(
                classify(status, None, b"busy", 1),
                Err(PostError::Transient(_))
            ));
        }
        for status in [401, 403] {
            let status = StatusCode::from_u16(status).unwrap();
            let Err(PostError::Unauthorized(message)) = classify(
                status,
                None,
                br#"{"error":"unauthorized","message":"unknown or revoked token"}"#,
                1,
            ) else {
                panic!("{status} should stop the sender as unauthorized");
            };
            assert!(message.contains("unknown or revoked token"), "{message}");
            assert!(message.contains("server token add"), "{message}");
        }
        for status in [404, 415, 400, 301] {
            let status = StatusCode::from_u16(status).unwrap();
            let Err(PostError::Fatal(message)) = classify(
                status,
                None,
                br#"{"error":"x","message":"no such route"}"#,
                1,
            ) else {
                panic!("{status} should be fatal");
            };
            assert!(message.contains("no such route"), "{message}");
        }
        let Err(PostError::Fatal(message)) = classify(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            br#"{"error":"unsupported_media_type","message":"Content-Type must be application/json"}"#,
            1,
        ) else {
            panic!("a 415 should be fatal");
        };
        assert!(message.contains("--body json"), "{message}");
    }

    #[test]
    fn a_409_and_answers_with_retry_after_ask_for_the_same_batch_later() {
        let in_flight =
            br#"{"error":"in_flight","message":"a request with this key is being processed"}"#;
        let Err(PostError::RetryAfter { reason, after }) = classify(
            StatusCode::CONFLICT,
            Some(Duration::from_secs(1)),
            in_flight,
            2,
        ) else {
            panic!("409 must be retried");
        };
        assert_eq!(after, Duration::from_secs(1));
        assert!(reason.contains("being processed"), "{reason}");
        assert!(matches!(
            classify(StatusCode::CONFLICT, None, b"", 2),
            Err(PostError::RetryAfter { after, .. }) if after == CONFLICT_RETRY
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(7)), b"", 2),
            Err(PostError::RetryAfter { after, .. }) if after == Duration::from_secs(7)
        ));
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, " 3 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
