//! `GET /api/stream`: Server-Sent Events.
//!
//! A stream starts with a snapshot (or, given `Last-Event-ID`, the hits missed since), then
//! relays the hub's frames. Frames arrive pre-serialized and shared, so a client costs a
//! broadcast receiver and a socket, nothing per event. Several ready frames are written as
//! one chunk. Streams end when the server shuts down.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::{Interval, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::hub::{Frame, FrameKind, Hub};
use crate::metrics::Metrics;

/// Tells the browser how soon to reconnect after a drop.
const PREAMBLE: &[u8] = b"retry: 1000\n: traffic-globe stream\n\n";
/// Most bytes written in one chunk when several frames are ready.
const CHUNK_LIMIT: usize = 256 * 1024;

/// `GET /api/stream`.
pub async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let start = state.hub.start(last_event_id);
    state.metrics.clients_connected.fetch_add(1, Relaxed);
    state.metrics.clients_total.fetch_add(1, Relaxed);
    let keep_alive = Duration::from_secs(state.config.keep_alive_secs);
    let mut keep_alive = interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut initial: VecDeque<Bytes> = start.initial.into();
    initial.push_front(Bytes::from_static(PREAMBLE));
    let client = Client {
        hub: Arc::clone(&state.hub),
        _guard: ConnectedGuard(Arc::clone(&state.metrics)),
        frames: start.frames,
        seq: start.seq,
        initial,
        keep_alive,
        shutdown: state.shutdown.clone(),
    };
    let body = futures_util::stream::unfold(client, |mut client| async move {
        let chunk = client.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), client))
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Ask proxies (nginx and friends) not to buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

struct Client {
    hub: Arc<Hub>,
    _guard: ConnectedGuard,
    frames: tokio::sync::broadcast::Receiver<Frame>,
    /// Newest event id this client has been sent (directly or inside a snapshot).
    seq: u64,
    initial: VecDeque<Bytes>,
    keep_alive: Interval,
    shutdown: CancellationToken,
}

impl Client {
    /// The next bytes to write, or `None` to end the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(first) = self.initial.pop_front() {
            return Some(first);
        }
        loop {
            let received = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                received = self.frames.recv() => received,
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(b": keep-alive\n\n")),
            };
            match received {
                Ok(frame) => {
                    let Some(first) = self.accept(frame) else {
                        continue;
                    };
                    return Some(self.gather(first));
                }
                Err(RecvError::Lagged(_)) => return Some(self.resync()),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Passes a frame unless it is already covered by what the client has.
    fn accept(&mut self, frame: Frame) -> Option<Bytes> {
        let fresh = match frame.kind {
            FrameKind::Hits => frame.seq > self.seq,
            FrameKind::Stats => frame.seq >= self.seq,
        };
        if fresh {
            self.seq = frame.seq;
            Some(frame.bytes)
        } else {
            None
        }
    }

    /// Appends any frames that are already waiting, so a busy stream costs fewer writes.
    fn gather(&mut self, first: Bytes) -> Bytes {
        let mut chunk: Option<BytesMut> = None;
        loop {
            let size = chunk.as_ref().map_or(first.len(), BytesMut::len);
            if size >= CHUNK_LIMIT {
                break;
            }
            match self.frames.try_recv() {
                Ok(frame) => {
                    if let Some(bytes) = self.accept(frame) {
                        chunk
                            .get_or_insert_with(|| BytesMut::from(first.as_ref()))
                            .extend_from_slice(&bytes);
                    }
                }
                Err(TryRecvError::Lagged(_)) => return self.resync(),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        chunk.map_or(first, BytesMut::freeze)
    }

    fn resync(&mut self) -> Bytes {
        let (snapshot, seq) = self.hub.resync();
        tracing::debug!(seq, "stream client lagged; sent a fresh snapshot");
        self.seq = seq;
        snapshot
    }
}

/// Keeps the connected-clients gauge right however a stream ends.
struct ConnectedGuard(Arc<Metrics>);

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.clients_connected.fetch_sub(1, Relaxed);
    }
}
