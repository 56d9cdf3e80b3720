//! Delivery of alerts to webhooks: a generic JSON POST (the alert object), or Slack- and
//! Discord-compatible bodies (`{"text": ...}`, `{"content": ...}`), with retries and a
//! bounded queue, over http or https. The client is a small one of its own (hyper's HTTP/1
//! connection over TCP, or over rustls for https: the system's CA certificates plus those of
//! `--alert-webhook-ca`; no OpenSSL), so TLS stays in the server: the workspace's other
//! HTTP clients (sender, web) are plain http and need no CA certificates to start. The hub hands each alert that fires or resolves to [`Webhooks::offer`],
//! which never waits: when the queue is full the alert is dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::http::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;
use traffic::analytics::alerts::Alert;

/// The body a webhook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The alert object as JSON.
    Generic,
    /// `{"text": "<summary>"}` (Slack incoming webhooks).
    Slack,
    /// `{"content": "<summary>"}` (Discord webhooks).
    Discord,
}

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The body it takes.
    pub format: Format,
    /// Its URL (`http://` or `https://`).
    pub url: String,
}

impl std::str::FromStr for Target {
    type Err = String;

    /// `URL` (generic), `slack=URL` or `discord=URL`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (format, url) = match text.split_once('=') {
            Some(("slack", url)) => (Format::Slack, url),
            Some(("discord", url)) => (Format::Discord, url),
            Some(("generic", url)) => (Format::Generic, url),
            _ => (Format::Generic, text),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(str::is_empty) {
            return Err(format!(
                "{text}: expected URL, slack=URL or discord=URL with an http:// or https:// URL"
            ));
        }
        Ok(Self {
            format,
            url: url.to_owned(),
        })
    }
}

/// The body of `alert` for `format`.
pub fn body(format: Format, alert: &Alert) -> serde_json::Value {
    match format {
        Format::Generic => serde_json::to_value(alert).unwrap_or_default(),
        Format::Slack => serde_json::json!({ "text": alert.summary() }),
        Format::Discord => serde_json::json!({ "content": alert.summary() }),
    }
}

/// The sending side of the delivery queue.
#[derive(Debug)]
pub struct Webhooks {
    queue: mpsc::Sender<Alert>,
    /// Alerts dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Deliveries that failed after every retry.
    pub failed: Arc<AtomicU64>,
}

/// How delivery behaves.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Where to.
    pub targets: Vec<Target>,
    /// Alerts waiting at most.
    pub queue: usize,
    /// Attempts after the first failed one.
    pub retries: u32,
    /// Wait before the first retry; doubled before each next one.
    pub backoff: Duration,
    /// Longest wait for one attempt.
    pub timeout: Duration,
    /// CA certificates trusted for https besides the system's (DER).
    pub roots: Vec<CertificateDer<'static>>,
}

/// Posts JSON bodies to webhook URLs: one connection per delivery (alerts are rare).
struct Client {
    tls: TlsConnector,
    timeout: Duration,
}

impl Client {
    /// A client trusting the system's CA certificates (none is fine: then only `roots`)
    /// and `roots`.
    fn new(roots: &[CertificateDer<'static>], timeout: Duration) -> Self {
        let mut store = RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        let (added, _) = store.add_parsable_certificates(system.certs);
        let (extra, ignored) = store.add_parsable_certificates(roots.iter().cloned());
        if ignored > 0 {
            tracing::warn!(ignored, "webhook CA certificates that could not be used");
        }
        tracing::debug!(system = added, extra, "webhook CA certificates loaded");
        let config = ClientConfig::builder()
            .with_root_certificates(store)
            .with_no_client_auth();
        Self {
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
        }
    }

    /// POSTs `body` (JSON) to `url`; the answer's status.
    async fn post(&self, url: &str, body: Bytes) -> Result<StatusCode, String> {
        tokio::time::timeout(self.timeout, self.post_now(url, body))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }

    async fn post_now(&self, url: &str, body: Bytes) -> Result<StatusCode, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let https = uri.scheme_str() == Some("https");
        let authority = uri.authority().ok_or("the URL has no host")?.clone();
        // `[::1]` in a URL is `::1` to connect to and to name in TLS.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::post(path)
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "traffic-globe")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if !https {
            return send(tcp, request).await;
        }
        let name = ServerName::try_from(host).map_err(|e| format!("TLS name: {e}"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        send(tls, request).await
    }
}

/// Sends `request` over `io` (HTTP/1.1) and returns the answer's status.
async fn send(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    request: Request<Full<Bytes>>,
) -> Result<StatusCode, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection runs beside the request and ends with it (or with the timeout).
    let connection = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    connection.abort();
    answer
        .map(|response| response.status())
        .map_err(|e| format!("HTTP: {e}"))
}

impl Webhooks {
    /// Starts the delivery task; it ends when `shutdown` is cancelled.
    pub fn start(delivery: Delivery, shutdown: CancellationToken) -> Arc<Self> {
        let (queue, mut alerts) = mpsc::channel::<Alert>(delivery.queue.max(1));
        let failed = Arc::new(AtomicU64::new(0));
        let webhooks = Arc::new(Self {
            queue,
            dropped: AtomicU64::new(0),
            failed: Arc::clone(&failed),
        });
        let client = Client::new(&delivery.roots, delivery.timeout);
        tokio::spawn(async move {
            loop {
                let alert = tokio::select! {
                    () = shutdown.cancelled() => break,
                    alert = alerts.recv() => match alert {
                        Some(alert) => alert,
                        None => break,
                    },
                };
                for target in &delivery.targets {
                    let delivered = tokio::select! {
                        () = shutdown.cancelled() => return,
                        ok = deliver(&client, target, &alert, &delivery) => ok,
                    };
                    if !delivered {
                        failed.fetch_add(1, Relaxed);
                    }
                }
            }
        });
        webhooks
    }

    /// Queues `alert` for delivery, or drops it (counted and logged) if the queue is full.
    pub fn offer(&self, alert: &Alert) {
        if self.queue.try_send(alert.clone()).is_err() {
            self.dropped.fetch_add(1, Relaxed);
            tracing::warn!(alert = alert.id, "webhook queue full: alert not delivered");
        }
    }
}

/// Posts `alert` to `target`, retrying with doubling waits; whether it was taken (2xx).
async fn deliver(client: &Client, target: &Target, alert: &Alert, delivery: &Delivery) -> bool {
    // Serializing plain values into memory cannot fail.
    let body = Bytes::from(serde_json::to_vec(&body(target.format, alert)).unwrap_or_default());
    let mut wait = delivery.backoff;
    for attempt in 0..=delivery.retries {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        match client.post(&target.url, body.clone()).await {
            Ok(status) if status.is_success() => return true,
            Ok(status) => {
                tracing::warn!(url = %target.url, %status, attempt, "webhook refused the alert");
            }
            Err(e) => {
                tracing::warn!(url = %target.url, error = %e, attempt, "webhook unreachable");
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_their_format_and_must_be_http_or_https() {
        let slack: Target = "slack=http://127.0.0.1:9/hook".parse().unwrap();
        assert_eq!(slack.format, Format::Slack);
        assert_eq!(slack.url, "http://127.0.0.1:9/hook");
        let plain: Target = "http://hooks.local/a=b".parse().unwrap();
        assert_eq!(plain.format, Format::Generic);
        assert_eq!(plain.url, "http://hooks.local/a=b");
        let https: Target = "slack=https://hooks.slack.com/x".parse().unwrap();
        assert_eq!(https.url, "https://hooks.slack.com/x");
        assert!("discord=ftp://x".parse::<Target>().is_err());
        assert!("https://".parse::<Target>().is_err());
    }
}
