//! Delivery of alerts to webhooks: a generic JSON POST (the alert object), or Slack- and
//! Discord-compatible bodies (`{"text": ...}`, `{"content": ...}`), with retries and a
//! bounded queue, over http or https (rustls: the system's CA certificates, plus those of
//! `--alert-webhook-ca`; no OpenSSL). The hub hands each alert that fires or resolves to [`Webhooks::offer`],
//! which never waits: when the queue is full the alert is dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;
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
    /// CA certificates trusted for https besides the system's.
    pub roots: Vec<reqwest::Certificate>,
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
        let client = reqwest::Client::builder()
            .timeout(delivery.timeout)
            .tls_certs_merge(delivery.roots.iter().cloned())
            .build()
            .or_else(|e| {
                // Without any system CA certificate the platform verifier refuses to start:
                // trust only the extra ones then (plain http works either way).
                tracing::error!(error = %e, "no system CA certificates: https webhooks trust only --alert-webhook-ca");
                reqwest::Client::builder()
                    .timeout(delivery.timeout)
                    .tls_certs_only(delivery.roots.iter().cloned())
                    .build()
            })
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "webhook client with default settings");
                reqwest::Client::default()
            });
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
async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    alert: &Alert,
    delivery: &Delivery,
) -> bool {
    let body = body(target.format, alert);
    let mut wait = delivery.backoff;
    for attempt in 0..=delivery.retries {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        match client.post(&target.url).json(&body).send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => {
                tracing::warn!(url = %target.url, status = %response.status(), attempt, "webhook refused the alert");
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
