//! `GET /api/stream`: Server-Sent Events.
//!
//! A stream starts with a snapshot (or, given `Last-Event-ID`, the hits missed since), then
//! relays the hub's frames. Frames arrive pre-serialized and shared, and are handed to hyper
//! as they are (never copied into a per-client buffer: with thousands of slow clients such
//! copies were what filled memory), so a client costs a broadcast receiver and a socket.
//! Snapshots and resumes are lists of chunks too, most of them slices of the hub's shared
//! frames (see [`crate::hub`]). hyper writes the chunks queued for a connection with one
//! vectored write. At most `--max-streams` streams are open at once; beyond that a new one
//! is refused with 503 and `Retry-After`. Streams end when the server shuts down.
//!
//! A snapshot's chunks keep the frames they slice alive. So that a client that stops reading
//! cannot keep a whole ring's worth of old frames alive for as long as it likes, a watchdog
//! drops what is left of a snapshot (or resume) that was not taken within
//! `--snapshot-timeout-secs`, and the stream ends; the browser reconnects for a fresh one.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, Sleep, sleep};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::hub::{Frame, FrameKind, Hub};
use crate::metrics::Metrics;

/// Seconds a refused client is asked to wait before trying again.
const RETRY_AFTER_SECS: u64 = 5;

/// Tells the browser how soon to reconnect after a drop.
const PREAMBLE: &[u8] = b"retry: 1000\n: traffic-globe stream\n\n";

/// Query of `GET /api/stream`.
#[derive(Debug, serde::Deserialize)]
pub struct StreamQuery {
    /// Where to resume when the client cannot send a `Last-Event-ID` header (a new
    /// `EventSource` can't); the header wins when both are present.
    last_event_id: Option<String>,
}

/// `GET /api/stream`.
pub async fn stream(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(guard) = ConnectedGuard::try_new(&state.metrics, state.config.max_streams) else {
        return too_many_streams(state.config.max_streams);
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(query.last_event_id.as_deref());
    let client = Client::new(&state, guard, last_event_id);
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

/// 503 with `Retry-After` and the API's error body.
fn too_many_streams(max: usize) -> Response {
    let body = serde_json::json!({
        "error": "too_many_streams",
        "message": format!(
            "the server already serves its maximum of {max} streams (--max-streams); retry in {RETRY_AFTER_SECS} s"
        ),
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS))],
        Json(body),
    )
        .into_response()
}

struct Client {
    hub: Arc<Hub>,
    _guard: ConnectedGuard,
    frames: tokio::sync::broadcast::Receiver<Frame>,
    /// Newest event id this client has been sent (directly or inside a snapshot).
    seq: u64,
    backlog: Arc<Mutex<Backlog>>,
    snapshot_timeout: Duration,
    metrics: Arc<Metrics>,
    /// A keep-alive comment goes out when nothing else did for this long.
    keep_alive_after: Duration,
    keep_alive: Pin<Box<Sleep>>,
    shutdown: CancellationToken,
}

impl Client {
    fn new(state: &AppState, guard: ConnectedGuard, last_event_id: Option<&str>) -> Self {
        let start = state.hub.start(last_event_id);
        let keep_alive_after = Duration::from_secs(state.config.keep_alive_secs);
        let mut client = Client {
            hub: Arc::clone(&state.hub),
            _guard: guard,
            frames: start.frames,
            seq: start.seq,
            backlog: Arc::default(),
            snapshot_timeout: Duration::from_secs(state.config.snapshot_timeout_secs),
            metrics: Arc::clone(&state.metrics),
            keep_alive_after,
            keep_alive: Box::pin(sleep(keep_alive_after)),
            shutdown: state.shutdown.clone(),
        };
        let initial = std::iter::once(Bytes::from_static(PREAMBLE)).chain(start.initial);
        client.load(initial);
        client
    }

    /// Queues `chunks` to be written before any live frame, under a watchdog.
    fn load(&mut self, chunks: impl IntoIterator<Item = Bytes>) {
        let mut backlog = lock(&self.backlog);
        backlog.chunks.extend(chunks);
        backlog.generation += 1;
        let generation = backlog.generation;
        drop(backlog);
        let backlog = Arc::downgrade(&self.backlog);
        let (timeout, metrics) = (self.snapshot_timeout, Arc::clone(&self.metrics));
        tokio::spawn(async move {
            sleep(timeout).await;
            Backlog::expire(&backlog, generation, &metrics);
        });
    }

    /// The next bytes to write, or `None` to end the stream. Whatever is written restarts
    /// the keep-alive wait, so keep-alives go out only on streams that are otherwise silent.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let chunk = self.next_chunk_unkept().await?;
        let deadline = Instant::now() + self.keep_alive_after;
        self.keep_alive.as_mut().reset(deadline);
        Some(chunk)
    }

    async fn next_chunk_unkept(&mut self) -> Option<Bytes> {
        {
            let mut backlog = lock(&self.backlog);
            if backlog.expired {
                return None;
            }
            if let Some(first) = backlog.chunks.pop_front() {
                return Some(first);
            }
        }
        loop {
            let received = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                received = self.frames.recv() => received,
                () = self.keep_alive.as_mut() => return Some(Bytes::from_static(b": keep-alive\n\n")),
            };
            match received {
                Ok(frame) => {
                    let Some(first) = self.accept(frame) else {
                        continue;
                    };
                    return Some(first);
                }
                Err(RecvError::Lagged(_)) => return self.resync(),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Passes a frame unless it is already covered by what the client has.
    fn accept(&mut self, frame: Frame) -> Option<Bytes> {
        let fresh = match frame.kind {
            FrameKind::Hits => frame.seq > self.seq,
            FrameKind::Stats | FrameKind::Analytics | FrameKind::Alert => frame.seq >= self.seq,
        };
        if fresh {
            self.seq = frame.seq;
            Some(frame.bytes)
        } else {
            None
        }
    }

    fn resync(&mut self) -> Option<Bytes> {
        let (snapshot, seq) = self.hub.resync(&mut self.frames);
        tracing::debug!(seq, "stream client lagged; sent a fresh snapshot");
        self.seq = seq;
        self.load(snapshot);
        lock(&self.backlog).chunks.pop_front()
    }
}

/// What a stream must write before live frames: a snapshot or the hits missed since
/// `Last-Event-ID`, as chunks.
#[derive(Default)]
struct Backlog {
    chunks: VecDeque<Bytes>,
    /// Bumped for each new load, so the watchdog of an earlier one leaves it alone.
    generation: u64,
    /// A watchdog dropped what was left: the stream ends.
    expired: bool,
}

impl Backlog {
    /// Drops the rest of load `generation` if the client has not taken it all yet (without
    /// waiting for the client: a stalled one is never polled).
    fn expire(backlog: &Weak<Mutex<Self>>, generation: u64, metrics: &Metrics) {
        let Some(backlog) = backlog.upgrade() else {
            return;
        };
        let mut backlog = lock(&backlog);
        if backlog.generation == generation && !backlog.chunks.is_empty() {
            backlog.chunks = VecDeque::new();
            backlog.expired = true;
            metrics.snapshot_timeouts.fetch_add(1, Relaxed);
            tracing::debug!("stream client did not take its snapshot in time; ending it");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing can panic while the backlog is locked; a poisoned lock still guards good data.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A place among the open streams; keeps the connected-clients gauge right however a
/// stream ends.
struct ConnectedGuard(Arc<Metrics>);

impl ConnectedGuard {
    /// Takes a place if fewer than `max` streams are open.
    fn try_new(metrics: &Arc<Metrics>, max: usize) -> Option<Self> {
        let taken = metrics
            .clients_connected
            .fetch_update(Relaxed, Relaxed, |open| {
                (open < max as u64).then_some(open + 1)
            });
        if taken.is_err() {
            metrics.streams_refused.fetch_add(1, Relaxed);
            return None;
        }
        metrics.clients_total.fetch_add(1, Relaxed);
        Some(Self(Arc::clone(metrics)))
    }
}

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.clients_connected.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tokio_util::sync::CancellationToken;
    use traffic::Event;

    use super::*;
    use crate::hub::{Pending, unix_ms};
    use crate::{Config, Geocoder};

    fn state(client_buffer: usize) -> AppState {
        let mut config = Config::default_for_tests();
        config.client_buffer = client_buffer;
        AppState::new(config, Geocoder::shared(), CancellationToken::new())
    }

    fn publish_one(state: &AppState, i: u8) {
        let event = Event::at(
            std::net::IpAddr::from([192, 0, 2, i]),
            1.0,
            2.0,
            1_736_919_120.0,
            false,
        );
        let place = crate::geo::Placed::Event(state.geo.locate(1.0, 2.0));
        state.hub.push(Pending::batch(
            vec![(event, place)],
            unix_ms(SystemTime::now()),
        ));
        state.hub.publish();
    }

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    fn client(state: &AppState) -> Client {
        let guard = ConnectedGuard::try_new(&state.metrics, state.config.max_streams).unwrap();
        Client::new(state, guard, None)
    }

    /// The chunks of the next whole SSE message (or the preamble), joined.
    async fn next_message(client: &mut Client) -> Bytes {
        let mut message = Vec::new();
        while !message.ends_with(b"\n\n") {
            message.extend_from_slice(&client.next_chunk().await.unwrap());
        }
        Bytes::from(message)
    }

    #[tokio::test]
    async fn frames_are_passed_on_in_order_as_the_shared_bytes_the_hub_published() {
        let state = state(16);
        let mut client = client(&state);
        let mut other = state.hub.start(None).frames;
        assert!(text(&client.next_chunk().await.unwrap()).starts_with("retry: "));
        assert!(text(&next_message(&mut client).await).contains("event: snapshot"));
        for i in 1..=3 {
            publish_one(&state, i);
        }
        for i in 1..=3 {
            let chunk = client.next_chunk().await.unwrap();
            assert!(text(&chunk).starts_with("id: "));
            assert!(
                text(&chunk).contains(&format!("-{i}\nevent: hits")),
                "{}",
                text(&chunk)
            );
            let published = other.try_recv().unwrap().bytes;
            assert_eq!(chunk.as_ptr(), published.as_ptr(), "not a per-client copy");
        }
    }

    #[tokio::test]
    async fn a_client_that_fell_behind_gets_a_fresh_snapshot_then_only_newer_frames() {
        let state = state(2);
        let mut client = client(&state);
        next_message(&mut client).await; // preamble
        next_message(&mut client).await; // first snapshot
        for i in 1..=5 {
            publish_one(&state, i);
        }
        let resync = next_message(&mut client).await;
        assert!(
            text(&resync).contains("event: snapshot"),
            "{}",
            text(&resync)
        );
        assert!(text(&resync).contains(r#""total":5"#));
        assert_eq!(
            text(&resync).matches("192.0.2.").count(),
            5,
            "all five hits"
        );
        publish_one(&state, 6);
        let next = client.next_chunk().await.unwrap();
        assert!(
            text(&next).starts_with("id: ") && text(&next).contains("-6\nevent: hits"),
            "{}",
            text(&next)
        );
        assert_eq!(state.metrics.lag_resyncs.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn the_connected_gauge_follows_clients_coming_and_going() {
        let state = state(4);
        let a = client(&state);
        let b = client(&state);
        assert_eq!(state.metrics.clients_connected(), 2);
        drop(a);
        drop(b);
        assert_eq!(state.metrics.clients_connected(), 0);
    }

    #[tokio::test]
    async fn streams_beyond_the_cap_get_503_with_retry_after_until_one_closes() {
        use axum::http::Request;
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let mut config = Config::default_for_tests();
        config.max_streams = 2;
        let state = AppState::new(config, Geocoder::shared(), CancellationToken::new());
        let open = || async {
            crate::app(state.clone())
                .oneshot(crate::from_loopback(
                    Request::get("/api/stream").body(Body::empty()).unwrap(),
                ))
                .await
                .unwrap()
        };
        let first = open().await;
        let second = open().await;
        assert_eq!(
            (first.status(), second.status()),
            (StatusCode::OK, StatusCode::OK)
        );
        let refused = open().await;
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "5");
        let body = refused.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "too_many_streams");
        assert!(json["message"].as_str().unwrap().contains("--max-streams"));
        assert_eq!(state.metrics.clients_connected(), 2);
        assert_eq!(state.metrics.streams_refused.load(Relaxed), 1);
        drop(first);
        assert_eq!(state.metrics.clients_connected(), 1);
        assert_eq!(open().await.status(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_goes_out_only_after_keep_alive_secs_without_anything_else() {
        let state = state(16);
        let mut client = client(&state);
        next_message(&mut client).await; // preamble
        next_message(&mut client).await; // snapshot
        tokio::time::advance(Duration::from_secs(10)).await;
        publish_one(&state, 1);
        assert!(text(&next_message(&mut client).await).contains("event: hits"));
        let sent = Instant::now();
        let quiet = tokio::time::timeout(Duration::from_secs(14), client.next_chunk()).await;
        assert!(
            quiet.is_err(),
            "no keep-alive 14 s after a frame: {quiet:?}"
        );
        let keep_alive = client.next_chunk().await.unwrap();
        assert_eq!(text(&keep_alive), ": keep-alive\n\n");
        assert_eq!(
            sent.elapsed(),
            Duration::from_secs(state.config.keep_alive_secs)
        );
        let next = tokio::time::timeout(Duration::from_secs(15), client.next_chunk()).await;
        assert_eq!(
            text(&next.unwrap().unwrap()),
            ": keep-alive\n\n",
            "then every 15 s"
        );
        assert_eq!(sent.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_not_taken_in_time_is_let_go_without_the_client_and_the_stream_ends() {
        let state = state(16);
        for i in 0..50 {
            publish_one(&state, i);
        }
        let mut stalled = client(&state);
        let mut reader = client(&state);
        next_message(&mut reader).await; // preamble
        assert!(text(&next_message(&mut reader).await).contains("event: snapshot"));
        assert!(!lock(&stalled.backlog).chunks.is_empty());
        let timeout = Duration::from_secs(state.config.snapshot_timeout_secs);
        tokio::time::sleep(timeout - Duration::from_secs(1)).await;
        assert!(!lock(&stalled.backlog).chunks.is_empty(), "not yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            lock(&stalled.backlog).chunks.is_empty(),
            "the shared frames are let go while the client is still not reading"
        );
        assert_eq!(state.metrics.snapshot_timeouts.load(Relaxed), 1);
        assert!(stalled.next_chunk().await.is_none(), "its stream ends");
        publish_one(&state, 51);
        assert!(
            text(&next_message(&mut reader).await).contains("event: hits"),
            "a client that took its snapshot in time goes on"
        );
    }
}
