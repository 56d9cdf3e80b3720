//! Shared helpers for the server's socket-level tests: a server on 127.0.0.1:0 and a small
//! Server-Sent Events client.

#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use server::{AppState, Config, Geocoder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_with(config, |state| state).await
    }

    /// A server whose state `with` adjusts first (e.g. AS data).
    pub async fn start_with(config: Config, with: impl FnOnce(AppState) -> AppState) -> Self {
        let shutdown = CancellationToken::new();
        let state = with(AppState::new(config, Geocoder::shared(), shutdown.clone()));
        Self::serve(state, shutdown).await
    }

    async fn serve(state: AppState, shutdown: CancellationToken) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(server::serve(listener, state.clone()));
        Self {
            addr,
            state,
            shutdown,
            task,
        }
    }

    /// A server with its history (`config.store`), restored from `config.data_dir`.
    pub async fn start_with_history(config: Config) -> Self {
        Self::start_with_history_and(config, |state| state).await
    }

    /// [`TestServer::start_with_history`], its state adjusted by `with` (e.g. AS data).
    #[allow(dead_code)]
    pub async fn start_with_history_and(
        config: Config,
        with: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let state = AppState::open(config, Geocoder::shared(), shutdown.clone())
            .await
            .unwrap();
        Self::serve(with(state), shutdown).await
    }

    /// Shuts the server down as SIGTERM would and waits until it has stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Waits until the server has published `seq` events (so a new stream starts after them).
    pub async fn wait_published(&self, seq: u64) {
        for _ in 0..500 {
            if self.stats().await["seq"].as_u64() == Some(seq) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not publish {seq} events within 5 s");
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post(&self, body: String) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/api/events"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn stats(&self) -> serde_json::Value {
        reqwest::get(self.url("/api/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn stream(&self, last_event_id: Option<&str>) -> SseClient {
        SseClient::connect(&self.url("/api/stream"), last_event_id).await
    }
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

pub struct SseClient {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseClient {
    pub async fn connect(url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseClient {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next message with data (comments and `retry:` are skipped); `None` when the
    /// stream ends. Panics after 10 s of silence.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                    }
                }
                if !event.data.is_empty() {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no stream message within 10 s")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.ok()?).unwrap());
        }
    }

    /// The next message of kind `event`, skipping others.
    pub async fn next_of(&mut self, event: &str) -> SseEvent {
        loop {
            let next = self.next().await.expect("stream ended");
            if next.event == event {
                return next;
            }
        }
    }
}

/// An event whose IP encodes `i`, so order and identity can be checked on the other side.
pub fn event_json(i: u32, suspicious: bool) -> String {
    let coordinates = [
        (48.8566, 2.3522),
        (35.3696, -119.0105),
        (-33.8688, 151.2093),
    ];
    let (lat, lon) = coordinates[i as usize % coordinates.len()];
    format!(
        r#"{{"ip":"{}","latitude":{lat},"longitude":{lon},"timestamp":{},"suspicious":{suspicious}}}"#,
        ip_of(i),
        1_736_919_120 + i / 10
    )
}

pub fn ip_of(i: u32) -> String {
    format!("1.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// Sequence number from an event id `<boot>-<seq>`.
pub fn seq_of(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

/// IPs of the hits in a `hits` message, with the id of the first.
pub fn hits_of(event: &SseEvent) -> (u64, Vec<String>) {
    let json = event.json();
    let ips = json["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].as_str().unwrap().to_owned())
        .collect();
    (json["seq"].as_u64().unwrap(), ips)
}
