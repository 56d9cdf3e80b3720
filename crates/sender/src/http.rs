//! The HTTP transport: JSON POSTs to `{url}/api/events` over one keep-alive client, with the
//! server's answers sorted into [`PostError`] kinds.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use traffic::Event;

use crate::transport::{PostError, Transport};

/// Posts events to a traffic-globe server.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client,
    endpoint: Url,
}

/// The HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl HttpTransport {
    /// A transport posting to `{base}/api/events`, each request limited to `timeout`.
    pub fn new(base: &Url, timeout: Duration) -> Result<Self, ClientError> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirected POST would silently turn into a GET: treat it as an answer instead.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            client,
            endpoint: events_endpoint(base),
        })
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

impl Transport for HttpTransport {
    async fn post(&mut self, events: &[Event]) -> Result<u64, PostError> {
        let body = match events {
            [one] => serde_json::to_vec(one),
            many => serde_json::to_vec(many),
        }
        .map_err(|e| PostError::Fatal(format!("cannot encode events as JSON: {e}")))?;
        let response = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| PostError::Transient(error_chain(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| PostError::Transient(error_chain(&e)))?;
        classify(status, &body, events.len())
    }
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
fn classify(status: StatusCode, body: &[u8], sent: usize) -> Result<u64, PostError> {
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
        StatusCode::PAYLOAD_TOO_LARGE => Err(PostError::TooLarge),
        StatusCode::UNPROCESSABLE_ENTITY if parsed.item.is_some() || sent == 1 => {
            Err(PostError::Invalid {
                item: parsed.item.or(Some(0)),
                field: parsed.field,
                reason: parsed.reason.unwrap_or(message),
            })
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            Err(PostError::Transient(described))
        }
        s if s.is_server_error() => Err(PostError::Transient(described)),
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
            classify(StatusCode::ACCEPTED, br#"{"accepted":3}"#, 3),
            Ok(3)
        );
        assert_eq!(classify(StatusCode::OK, b"", 2), Ok(2));
        assert_eq!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, b"", 9),
            Err(PostError::TooLarge)
        );
        let invalid = br#"{"error":"invalid_event","message":"item 2: latitude out of range","item":2,"field":"latitude","reason":"91 is out of range"}"#;
        assert_eq!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, invalid, 5),
            Err(PostError::Invalid {
                item: Some(2),
                field: Some("latitude".into()),
                reason: "91 is out of range".into(),
            })
        );
        for status in [503, 500, 429, 408] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(
                classify(status, b"busy", 1),
                Err(PostError::Transient(_))
            ));
        }
        for status in [404, 415, 400, 301] {
            let status = StatusCode::from_u16(status).unwrap();
            let Err(PostError::Fatal(message)) =
                classify(status, br#"{"error":"x","message":"no such route"}"#, 1)
            else {
                panic!("{status} should be fatal");
            };
            assert!(message.contains("no such route"), "{message}");
        }
    }
}
