//! The hub between ingest and the stream: it numbers events, keeps the aggregates and a ring
//! of recent hits, and publishes ready-made SSE messages ("frames") to every client.
//!
//! Ingest handlers only append to a pending list (short lock, no serialization under it).
//! One publisher task drains that list: it gives the events their sequence numbers, counts
//! them in the aggregates, remembers them in the ring and broadcasts one frame per batch, all
//! under one lock, so a client that subscribes under the same lock sees every event exactly
//! once: either in its starting point (snapshot or resume) or in a later frame.
//!
//! Each hit is serialized once, in the ingest handler, and copied once more into the `hits`
//! frame that publishes it; frames are `Bytes` shared by all clients. The ring of recent hits
//! keeps slices of those frames, so snapshots and resumes are lists of shared slices (a small
//! header of their own, then runs of hits as they lie in the frames): under the lock a new
//! client costs reference counts, not a copy of every visible hit. A client that falls
//! behind the broadcast buffer is sent a fresh snapshot rather than holding anything up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use traffic::analytics::alerts::{Alert, Alerts, AlertsConfig, RuleStatus};
use traffic::analytics::rules::{RuleError, RuleSet};
use traffic::{
    Aggregates, AggregatesConfig, Analytics, AnalyticsConfig, AnalyticsReport, Event, Summary,
};

use crate::geo::Placed;
use crate::metrics::Metrics;
use crate::webhooks::Webhooks;

/// Limits of the hub.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Recent hits kept for resumes and snapshots.
    pub ring_capacity: usize,
    /// Hits younger than this are "still visible" and go into snapshots.
    pub visible: Duration,
    /// Places and countries listed in stats.
    pub top: usize,
    /// Most hits in one frame.
    pub frame_max_events: usize,
    /// Frames buffered for clients; a client further behind is resynchronised.
    pub client_buffer_frames: usize,
    /// The aggregates' limits.
    pub aggregates: AggregatesConfig,
    /// The windowed analytics' settings at start.
    pub analytics: AnalyticsConfig,
    /// Past this many events accepted and not yet published (with a history: committed),
    /// an ingest answer waits until its events are: the backlog's memory stays bounded when
    /// senders outrun the publisher, and so does what a kill -9 can lose.
    pub max_backlog: u64,
}

/// The default [`HubConfig::max_backlog`].
pub const MAX_BACKLOG_EVENTS: u64 = 100_000;

/// What kind of message a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// New hits, `seq` being the last one's.
    Hits,
    /// Aggregates as of `seq`.
    Stats,
    /// Windowed analytics as of `seq`.
    Analytics,
    /// An alert that fired or resolved, as of `seq`.
    Alert,
}

/// One SSE message, ready to write.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The newest event sequence number the frame covers.
    pub seq: u64,
    /// Hits or stats.
    pub kind: FrameKind,
    /// `id: ...\nevent: ...\ndata: ...\n\n`.
    pub bytes: Bytes,
}

/// An accepted event on its way to the publisher.
pub struct Pending {
    event: Event,
    placed: Placed,
    network: Option<geoip::Network>,
    received: Instant,
    received_ms: u64,
    json: Bytes,
    /// Live traffic (the default), fed to the windowed analytics and the alert rules; an
    /// imported event is history: counted, kept, stored and streamed, but alerts nobody.
    live: bool,
}

impl Pending {
    /// Serializes a request's hits as clients will see them: once, here in the ingest
    /// handler, into one buffer that the hits then share as slices.
    pub fn batch(
        events: impl IntoIterator<Item = (Event, Placed)>,
        received_ms: u64,
    ) -> Vec<Pending> {
        Self::batch_with_networks(
            events
                .into_iter()
                .map(|(event, placed)| (event, placed, None)),
            received_ms,
        )
    }

    /// [`Pending::batch`], each event with the network (AS) its address belongs to, if known.
    pub fn batch_with_networks(
        events: impl IntoIterator<Item = (Event, Placed, Option<geoip::Network>)>,
        received_ms: u64,
    ) -> Vec<Pending> {
        let received = Instant::now();
        Self::build(
            events
                .into_iter()
                .map(|(event, placed, network)| (event, placed, network, received_ms, received)),
        )
    }

    /// Events read back from the history, each with its own arrival time and the network
    /// it was stored with.
    pub(crate) fn restored(
        events: impl IntoIterator<Item = (Event, Placed, Option<geoip::Network>, u64, Instant)>,
    ) -> Vec<Pending> {
        Self::build(events.into_iter())
    }

    /// Marks `batch` as imported history: the windowed analytics and the alert rules leave
    /// it out (a year-old log must not page anyone, nor look like a burst now).
    pub(crate) fn imported(mut batch: Vec<Pending>) -> Vec<Pending> {
        for pending in &mut batch {
            pending.live = false;
        }
        batch
    }

    /// The event as the history stores it.
    pub(crate) fn to_store(&self, seq: u64) -> history::NewEvent<'_> {
        history::NewEvent {
            seq,
            received_ms: self.received_ms,
            event: &self.event,
            located: match &self.placed {
                Placed::Event(place) => history::Located::Event(&**place),
                Placed::Ip { place, at } => history::Located::Ip {
                    place: &**place,
                    latitude: at.latitude,
                    longitude: at.longitude,
                },
                Placed::Unlocated(reason) => {
                    history::Located::Unlocated(reason.as_str().to_owned())
                }
            },
            network: self.network.as_ref().map(|n| history::Network {
                asn: n.asn,
                name: &n.name,
            }),
        }
    }

    fn build(
        events: impl Iterator<Item = (Event, Placed, Option<geoip::Network>, u64, Instant)>,
    ) -> Vec<Pending> {
        let len = events.size_hint().0;
        // A hit with a place and an access log's fields is about 300 bytes; room for 400
        // each spares growing the buffer (a copy onto fresh pages) and costs nothing where
        // it is not written (untouched pages are not resident).
        let mut buffer = Vec::with_capacity(len * 400);
        let mut ends = Vec::with_capacity(len);
        // Each event is moved once, straight into its `Pending` (events are a few hundred
        // bytes: copying them through intermediate vectors showed up as memmove).
        let mut batch = Vec::with_capacity(len);
        for (event, placed, network, received_ms, received) in events {
            let (coordinates, place, located, unlocated) = match &placed {
                Placed::Event(place) => (event.coordinates(), Some(place), Some("event"), None),
                Placed::Ip { place, at } => (
                    Some((at.latitude, at.longitude)),
                    Some(place),
                    Some("ip"),
                    None,
                ),
                Placed::Unlocated(reason) => (None, None, None, Some(reason.as_str())),
            };
            let hit = HitJson {
                ip: event.ip,
                latitude: coordinates.map(|c| c.0),
                longitude: coordinates.map(|c| c.1),
                timestamp: event.timestamp,
                suspicious: event.suspicious,
                received: received_ms,
                located,
                unlocated,
                place_key: place.map(|p| p.key),
                city: place.map(|p| p.city.as_str()),
                country_code: place.map(|p| p.country_code.as_str()),
                country: place.map(|p| p.country.as_str()),
                bytes: event.bytes,
                protocol: event.protocol.as_deref(),
                status: event.status,
                method: event.method.as_deref(),
                path: event.path.as_deref(),
                dest_ip: event.dest_ip,
                src_port: event.src_port,
                dest_port: event.dest_port,
                packets: event.packets,
                asn: network.as_ref().map(|n| n.asn),
                as_name: network.as_ref().map(|n| &*n.name),
            };
            hit.write(&mut buffer);
            ends.push(buffer.len());
            batch.push(Pending {
                event,
                placed,
                network,
                received,
                received_ms,
                json: Bytes::new(),
                live: true,
            });
        }
        let buffer = Bytes::from(buffer);
        let mut start = 0;
        for (pending, end) in batch.iter_mut().zip(ends) {
            pending.json = buffer.slice(start..end);
            start = end;
        }
        batch
    }
}

/// A hit as the stream sends it. An unlocated hit has `located: null`, `unlocated` set and
/// no coordinates or place; optional request fields are left out when absent.
#[derive(Serialize)]
struct HitJson<'a> {
    ip: std::net::IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    longitude: Option<f64>,
    timestamp: f64,
    suspicious: bool,
    /// Server wall clock at receipt, unix milliseconds (lets a client age snapshot hits).
    received: u64,
    /// Where the place came from: `"event"` (its coordinates), `"ip"`, or null.
    located: Option<&'static str>,
    /// Why the hit has no place (`loopback`, `private`, `reserved`, `not_found`,
    /// `no_database`), only when `located` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    unlocated: Option<&'static str>,
    /// The place's key, as `key` in the stats' places: names are not unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    place_key: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    /// Packets the hit stands for (a captured flow's count).
    #[serde(skip_serializing_if = "Option::is_none")]
    packets: Option<u64>,
    /// The network (AS number) of `ip`, when the server has AS data (`--asn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    /// That network's holder.
    #[serde(skip_serializing_if = "Option::is_none")]
    as_name: Option<&'a str>,
}

impl HitJson<'_> {
    /// Appends the hit's JSON to `out`: the same text as `serde_json::to_writer` of the
    /// derived `Serialize` (a test holds the two together), with the keys written as the
    /// literal bytes they are instead of escaped one character at a time for every hit.
    fn write(&self, out: &mut Vec<u8>) {
        use traffic::json::{
            write_f64_field, write_ip_field, write_ip_str, write_str_field, write_u64,
            write_u64_field,
        };
        out.extend_from_slice(b"{\"ip\":");
        write_ip_str(out, self.ip);
        write_f64_field(out, b",\"latitude\":", self.latitude);
        write_f64_field(out, b",\"longitude\":", self.longitude);
        write_f64_field(out, b",\"timestamp\":", Some(self.timestamp));
        out.extend_from_slice(if self.suspicious {
            b",\"suspicious\":true,\"received\":"
        } else {
            b",\"suspicious\":false,\"received\":"
        });
        write_u64(out, self.received);
        match self.located {
            Some(located) => write_str_field(out, b",\"located\":", Some(located)),
            None => out.extend_from_slice(b",\"located\":null"),
        }
        write_str_field(out, b",\"unlocated\":", self.unlocated);
        write_u64_field(out, b",\"place_key\":", self.place_key);
        write_str_field(out, b",\"city\":", self.city);
        write_str_field(out, b",\"country_code\":", self.country_code);
        write_str_field(out, b",\"country\":", self.country);
        write_u64_field(out, b",\"bytes\":", self.bytes);
        write_str_field(out, b",\"protocol\":", self.protocol);
        write_u64_field(out, b",\"status\":", self.status.map(u64::from));
        write_str_field(out, b",\"method\":", self.method);
        write_str_field(out, b",\"path\":", self.path);
        write_ip_field(out, b",\"dest_ip\":", self.dest_ip);
        write_u64_field(out, b",\"src_port\":", self.src_port.map(u64::from));
        write_u64_field(out, b",\"dest_port\":", self.dest_port.map(u64::from));
        write_u64_field(out, b",\"packets\":", self.packets);
        write_u64_field(out, b",\"asn\":", self.asn.map(u64::from));
        write_str_field(out, b",\"as_name\":", self.as_name);
        out.push(b'}');
    }
}

/// A hit in the ring. Its JSON is not stored apart: it is `frame[start..end]`, inside the
/// `hits` frame that published it (hits of one frame are separated by one comma), so the ring
/// shares the frames' buffers with the broadcast, snapshots and resumes.
struct Recent {
    seq: u64,
    received: Instant,
    frame: Bytes,
    start: u32,
    end: u32,
}

/// The published state, guarded by one lock.
struct Published {
    /// Sequence number of the newest published event (0: none yet; ids start at 1).
    seq: u64,
    aggregates: Aggregates,
    analytics: Analytics,
    /// Whether anything reached the analytics (events, settings) since the last report.
    analytics_dirty: bool,
    /// The last `analytics` message's results, and its data (what a snapshot includes).
    analytics_last: Option<(AnalyticsReport, Bytes)>,
    /// The alert rules' state, checked at each new report.
    alerts: Alerts,
    recent: VecDeque<Recent>,
    /// Wall-clock rate samples: (when, total), one per stats tick.
    rate_samples: VecDeque<(Instant, u64)>,
    events_per_second: f64,
    /// What the last `stats` frame said: (seq, events per second, rejected requests).
    last_stats: Option<(u64, f64, u64, u64)>,
    /// Hits pushed out of the ring while possibly still visible, counted per 100 ms of
    /// their receipt (oldest first, pruned past the visibility window): what a snapshot
    /// cannot include.
    evicted: VecDeque<(u64, u64)>,
}

/// The hub. Shared by handlers and background tasks through [`crate::AppState`].
pub struct Hub {
    config: HubConfig,
    /// Names the sequence in event ids: this run's start time without a history (an id from
    /// before a restart is never mistaken for a position in this run's sequence), the
    /// store's epoch with one (the sequence continues across restarts, and so do resumes).
    boot: String,
    /// When the hub started: the origin of eviction time slots.
    started: Instant,
    pending: Mutex<Queue>,
    wake: Notify,
    /// The newest ticket (see [`Hub::push`]) whose events are stored and published.
    committed: watch::Sender<u64>,
    /// Events pushed and not yet published (with a history: not yet committed).
    uncommitted: AtomicU64,
    published: Mutex<Published>,
    frames: broadcast::Sender<Frame>,
    metrics: Arc<Metrics>,
    /// Where alerts also go, when webhooks are configured.
    webhooks: std::sync::OnceLock<Arc<Webhooks>>,
    /// Live-capture counters reported by senders, shown in the stats.
    pub capture: crate::capture::Sensors,
}

/// Accepted events not yet taken by the publisher.
#[derive(Default)]
struct Queue {
    /// The pushed batches, in order: kept apart rather than appended into one vector,
    /// which grew by copying every pending event onto fresh pages (in an access log's
    /// import, a fifth of the server's page faults).
    events: Vec<Vec<Pending>>,
    /// Idempotency keys of the requests that brought `events`, stored with them.
    keys: Vec<history::KeyRecord>,
    /// Tickets handed out: one per push.
    pushed: u64,
    /// The newest sequence number given to a taken event.
    assigned: u64,
}

/// Events taken from the queue and numbered, on their way to the store and then to clients.
pub struct Taken {
    /// The first event's sequence number (the others follow one by one).
    pub first_seq: u64,
    /// The events, in the batches they were pushed in.
    pub events: Vec<Vec<Pending>>,
    /// Idempotency keys to store in the same transaction.
    pub keys: Vec<history::KeyRecord>,
    /// The newest push ticket included.
    pub ticket: u64,
}

/// Where a new stream starts.
pub struct Start {
    /// What to send first, as chunks to write one after the other: a snapshot, or the hits
    /// missed since `Last-Event-ID`. Most chunks are slices of published frames.
    pub initial: Vec<Bytes>,
    /// The newest event id the initial frames cover.
    pub seq: u64,
    /// Live frames after that.
    pub frames: broadcast::Receiver<Frame>,
}

/// Aggregates plus the server's own view, as `/api/stats` and stream messages show them.
#[derive(Serialize)]
pub struct Stats {
    /// Id of the newest event counted.
    pub seq: u64,
    /// Server wall clock, unix milliseconds.
    pub server_time: u64,
    /// Events per second over the last few seconds of wall clock.
    pub events_per_second: f64,
    /// Ingest requests refused (malformed, invalid, too large, wrong content type).
    pub rejected_requests: u64,
    /// Clients connected to the stream.
    pub clients: u64,
    /// Live-capture counters reported by senders (absent until one reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<crate::capture::CaptureStats>,
    /// The aggregates.
    #[serde(flatten)]
    pub summary: Summary,
}

impl Hub {
    /// A new hub with nothing published.
    pub fn new(config: HubConfig, metrics: Arc<Metrics>) -> Self {
        let boot = unix_ms(SystemTime::now());
        Self::with_epoch(config, metrics, format!("{boot:x}"))
    }

    /// A new hub whose event ids are `<epoch>-<seq>` (the history's epoch, so ids survive a
    /// restart). `epoch` must not contain `-`.
    pub fn with_epoch(config: HubConfig, metrics: Arc<Metrics>, epoch: String) -> Self {
        let (frames, _) = broadcast::channel(config.client_buffer_frames.max(1));
        Self {
            config,
            boot: epoch,
            started: Instant::now(),
            pending: Mutex::new(Queue::default()),
            wake: Notify::new(),
            committed: watch::Sender::new(0),
            uncommitted: AtomicU64::new(0),
            published: Mutex::new(Published {
                seq: 0,
                aggregates: Aggregates::new(config.aggregates),
                analytics: Analytics::new(config.analytics),
                analytics_dirty: true,
                analytics_last: None,
                alerts: Alerts::new(AlertsConfig::default()),
                recent: VecDeque::with_capacity(config.ring_capacity.min(1 << 16)),
                rate_samples: VecDeque::new(),
                events_per_second: 0.0,
                last_stats: None,
                evicted: VecDeque::new(),
            }),
            frames,
            metrics,
            webhooks: std::sync::OnceLock::new(),
            capture: crate::capture::Sensors::default(),
        }
    }

    /// Hands every alert that fires or resolves from now on to `webhooks` too (once).
    pub fn deliver_alerts_to(&self, webhooks: Arc<Webhooks>) {
        let _ = self.webhooks.set(webhooks);
    }

    /// Queues accepted events for the publisher; returns a ticket that
    /// [`Hub::wait_committed`] waits for.
    pub fn push(&self, batch: Vec<Pending>) -> u64 {
        self.push_with_key(batch, None)
    }

    /// Queues accepted events and the idempotency key of the request that brought them, to
    /// be stored in the same transaction; returns the ticket.
    pub fn push_with_key(&self, batch: Vec<Pending>, key: Option<history::KeyRecord>) -> u64 {
        if batch.is_empty() && key.is_none() {
            return 0;
        }
        self.uncommitted.fetch_add(batch.len() as u64, Relaxed);
        let mut pending = lock(&self.pending);
        if !batch.is_empty() {
            pending.events.push(batch);
        }
        pending.keys.extend(key);
        pending.pushed += 1;
        let ticket = pending.pushed;
        drop(pending);
        self.wake.notify_one();
        ticket
    }

    /// Events accepted and not yet published (with a history: not yet committed).
    pub fn uncommitted(&self) -> u64 {
        self.uncommitted.load(Relaxed)
    }

    /// See [`HubConfig::max_backlog`].
    pub fn max_backlog(&self) -> u64 {
        self.config.max_backlog
    }

    /// Waits until the events of push `ticket` (and all before) are stored and published.
    pub async fn wait_committed(&self, ticket: u64) {
        let mut committed = self.committed.subscribe();
        // The sender lives as long as the hub.
        let _ = committed.wait_for(|&done| done >= ticket).await;
    }

    /// Says that everything up to push `ticket` is stored and published.
    pub fn mark_committed(&self, ticket: u64) {
        self.committed.send_if_modified(|done| {
            let newer = ticket > *done;
            *done = (*done).max(ticket);
            newer
        });
    }

    /// Takes everything pending and numbers it, continuing the sequence.
    pub fn take(&self) -> Option<Taken> {
        let mut pending = lock(&self.pending);
        if pending.events.is_empty() && pending.keys.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut pending.events);
        let first_seq = pending.assigned + 1;
        pending.assigned += events.iter().map(Vec::len).sum::<usize>() as u64;
        Some(Taken {
            first_seq,
            events,
            keys: std::mem::take(&mut pending.keys),
            ticket: pending.pushed,
        })
    }

    /// Waits until something is pending.
    pub async fn wait_for_pending(&self) {
        self.wake.notified().await;
    }

    /// Publishes everything pending: numbers it, counts it, broadcasts it. Returns how many
    /// events were published.
    pub fn publish(&self) -> usize {
        let Some(taken) = self.take() else {
            return 0;
        };
        let published = self.publish_taken(taken.first_seq, &taken.events);
        self.mark_committed(taken.ticket);
        published
    }

    /// Publishes taken events (counts them, keeps them in the ring, broadcasts them), in the
    /// order they were taken. Returns how many.
    pub fn publish_taken(&self, first_seq: u64, batches: &[Vec<Pending>]) -> usize {
        let batch: Vec<&Pending> = batches.iter().flatten().collect();
        let mut published = lock(&self.published);
        debug_assert_eq!(
            first_seq,
            published.seq + 1,
            "taken batches publish in order"
        );
        self.publish_locked(&mut published, &batch, true);
        self.uncommitted.fetch_sub(batch.len() as u64, Relaxed);
        batch.len()
    }

    /// Counts `batch` in the aggregates and the ring as the events after `published.seq`,
    /// and broadcasts their frames if `broadcast`.
    fn publish_locked<P: std::borrow::Borrow<Pending>>(
        &self,
        published: &mut Published,
        batch: &[P],
        broadcast: bool,
    ) {
        for chunk in batch.chunks(self.config.frame_max_events.max(1)) {
            let first = published.seq + 1;
            let last = published.seq + chunk.len() as u64;
            let header = self.message_header(last, "hits", &format!(r#"{{"seq":{first},"hits":["#));
            let mut data = BytesMut::with_capacity(
                header.len()
                    + chunk
                        .iter()
                        .map(|p| p.borrow().json.len() + 1)
                        .sum::<usize>()
                    + 4,
            );
            data.extend_from_slice(header.as_bytes());
            let mut spans = Vec::with_capacity(chunk.len());
            for (i, p) in chunk.iter().enumerate() {
                let p: &Pending = p.borrow();
                if i > 0 {
                    data.put_u8(b',');
                }
                let start = data.len();
                data.extend_from_slice(&p.json);
                // A frame holds at most `frame_max_events` (validated <= 1,000,000) hits of a
                // few hundred bytes each: far below 4 GiB.
                spans.push((start as u32, data.len() as u32));
                let location = p.placed.location();
                let published = &mut *published;
                published
                    .aggregates
                    .record(&p.event, location, p.received.into_std());
                if let Some(network) = &p.network {
                    published
                        .aggregates
                        .record_network(network.asn, &network.name, &p.event);
                }
                if let Some(clock) = published.aggregates.clock()
                    && p.live
                {
                    published
                        .analytics
                        .record(&p.event, location.place(), clock);
                    // Restored events (not broadcast) fired their alerts in the run before.
                    if broadcast {
                        published.alerts.observe(
                            &p.event,
                            location.place(),
                            p.network.as_ref().map(|n| n.asn),
                            clock,
                        );
                    }
                }
            }
            published.analytics_dirty = true;
            data.extend_from_slice(FOOTER);
            let bytes = data.freeze();
            for (i, (p, (start, end))) in chunk.iter().zip(spans).enumerate() {
                let p: &Pending = p.borrow();
                if published.recent.len() == self.config.ring_capacity
                    && let Some(old) = published.recent.pop_front()
                {
                    let slot = self.slot_of(old.received);
                    match published.evicted.back_mut() {
                        Some((last, count)) if *last == slot => *count += 1,
                        _ => published.evicted.push_back((slot, 1)),
                    }
                }
                if self.config.ring_capacity > 0 {
                    published.recent.push_back(Recent {
                        seq: first + i as u64,
                        received: p.received,
                        frame: bytes.clone(),
                        start,
                        end,
                    });
                }
            }
            published.seq = last;
            if broadcast {
                self.broadcast(Frame {
                    seq: last,
                    kind: FrameKind::Hits,
                    bytes,
                });
                for alert in published.alerts.take_fired() {
                    self.send_alert(last, &alert);
                }
            }
        }
    }

    /// Rebuilds the aggregates, the ring and the sequence from stored events: `feed` calls
    /// its argument once per stored event, in sequence order from 1, with its seq, arrival
    /// time (unix ms), the event and its place. Call before anything is pushed. Returns the
    /// newest seq.
    pub fn restore<E>(
        &self,
        feed: impl FnOnce(
            &mut dyn FnMut(u64, u64, Event, Placed, Option<geoip::Network>),
        ) -> Result<(), E>,
    ) -> Result<u64, E> {
        let now = Instant::now();
        let now_ms = unix_ms(SystemTime::now());
        // An arrival time as an instant of this run (the aggregates and the ring age hits by
        // it); one from before this machine's monotonic clock began is put just out of sight.
        let long_ago = now
            .checked_sub(self.config.visible + Duration::from_secs(1))
            .unwrap_or(now);
        let instant = |received_ms: u64| {
            now.checked_sub(Duration::from_millis(now_ms.saturating_sub(received_ms)))
                .unwrap_or(long_ago)
        };
        let mut published = lock(&self.published);
        let mut tail: VecDeque<(Event, Placed, Option<geoip::Network>, u64, Instant)> =
            VecDeque::new();
        let mut last = 0;
        let capacity = self.config.ring_capacity;
        feed(&mut |seq, received_ms, event, placed, network| {
            let received = instant(received_ms);
            published
                .aggregates
                .record(&event, placed.location(), received.into_std());
            if let Some(network) = &network {
                published
                    .aggregates
                    .record_network(network.asn, &network.name, &event);
            }
            last = seq;
            if capacity == 0 {
                return;
            }
            if tail.len() == capacity
                && let Some((_, _, _, _, old)) = tail.pop_front()
                && now.duration_since(old) <= self.config.visible
            {
                let slot = self.slot_of(old);
                match published.evicted.back_mut() {
                    Some((last, count)) if *last == slot => *count += 1,
                    _ => published.evicted.push_back((slot, 1)),
                }
            }
            tail.push_back((event, placed, network, received_ms, received));
        })?;
        let ring = Pending::restored(tail);
        let first_in_ring = last + 1 - ring.len() as u64;
        // The ring's frames are built as publishing would (counting nothing twice: the
        // aggregates already have every event).
        let aggregates = std::mem::replace(
            &mut published.aggregates,
            Aggregates::new(self.config.aggregates),
        );
        published.seq = first_in_ring - 1;
        self.publish_locked(&mut published, &ring, false);
        published.aggregates = aggregates;
        published.seq = last;
        lock(&self.pending).assigned = last;
        Ok(last)
    }

    /// Samples the event rate and publishes a `stats` frame if anything changed since the
    /// last one. Call once per stats interval.
    pub fn publish_stats(&self) {
        let mut published = lock(&self.published);
        let now = Instant::now();
        let total = published.aggregates.total();
        published.rate_samples.push_back((now, total));
        while published.rate_samples.len() > 6 {
            published.rate_samples.pop_front();
        }
        let (then, before) = published.rate_samples[0];
        let elapsed = now.duration_since(then).as_secs_f64();
        published.events_per_second = if elapsed > 0.0 {
            total.saturating_sub(before) as f64 / elapsed
        } else {
            0.0
        };
        let horizon = self.slot_of(now.checked_sub(self.config.visible).unwrap_or(self.started));
        while published
            .evicted
            .front()
            .is_some_and(|(slot, _)| *slot < horizon)
        {
            published.evicted.pop_front();
        }
        self.publish_analytics_locked(&mut published);
        let said = (
            published.seq,
            published.events_per_second,
            self.metrics.requests_rejected(),
            self.capture.version(),
        );
        if published.last_stats == Some(said) {
            return;
        }
        published.last_stats = Some(said);
        let stats = self.stats_locked(&published);
        let mut data = self.message_header(published.seq, "stats", "").into_bytes();
        // Serializing plain structs into memory cannot fail.
        let _ = serde_json::to_writer(&mut data, &stats);
        data.extend_from_slice(b"\n\n");
        let bytes = Bytes::from(data);
        self.broadcast(Frame {
            seq: published.seq,
            kind: FrameKind::Stats,
            bytes,
        });
    }

    /// Publishes an `analytics` frame if the results changed since the last one.
    fn publish_analytics_locked(&self, published: &mut Published) {
        if !published.analytics_dirty {
            return;
        }
        published.analytics_dirty = false;
        let report = published.analytics.report();
        if published
            .analytics_last
            .as_ref()
            .is_some_and(|(last, _)| *last == report)
        {
            return;
        }
        let json = analytics_json(published.seq, report.clone());
        for alert in published.alerts.evaluate(&report) {
            self.send_alert(published.seq, &alert);
        }
        published.analytics_last = Some((report, json.clone()));
        let mut data = BytesMut::from(
            self.message_header(published.seq, "analytics", "")
                .as_bytes(),
        );
        data.extend_from_slice(&json);
        data.extend_from_slice(b"\n\n");
        self.broadcast(Frame {
            seq: published.seq,
            kind: FrameKind::Analytics,
            bytes: data.freeze(),
        });
    }

    /// Pushes `alert` (fired or resolved) on the stream as of `seq`, and to the webhooks.
    fn send_alert(&self, seq: u64, alert: &Alert) {
        if let Some(webhooks) = self.webhooks.get() {
            webhooks.offer(alert);
        }
        let mut data = BytesMut::from(self.message_header(seq, "alert", "").as_bytes());
        // Serializing a plain struct into memory cannot fail.
        let _ = serde_json::to_writer((&mut data).writer(), alert);
        data.extend_from_slice(b"\n\n");
        self.broadcast(Frame {
            seq,
            kind: FrameKind::Alert,
            bytes: data.freeze(),
        });
    }

    /// The alert rules in force, and what each has done.
    pub fn alert_rules(&self) -> (RuleSet, Vec<RuleStatus>) {
        let published = lock(&self.published);
        (published.alerts.rules().clone(), published.alerts.status())
    }

    /// Puts `rules` in force if they are valid (else nothing changes); the alerts of rules
    /// that changed or went resolve at once (on the stream and at the webhooks).
    pub fn set_alert_rules(&self, rules: RuleSet) -> Result<(), RuleError> {
        let mut published = lock(&self.published);
        let resolved = published.alerts.set_rules(rules)?;
        for alert in &resolved {
            self.send_alert(published.seq, alert);
        }
        Ok(())
    }

    /// The windowed analytics now, and the id of the newest event they count.
    pub fn analytics(&self) -> (u64, AnalyticsReport) {
        let mut published = lock(&self.published);
        (published.seq, published.analytics.report())
    }

    /// The most recent alerts, newest first.
    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.published).alerts.recent()
    }

    /// The analytics settings in force.
    pub fn analytics_config(&self) -> AnalyticsConfig {
        *lock(&self.published).analytics.config()
    }

    /// Puts valid analytics settings in force: the next report (and `analytics` message) uses
    /// them.
    pub fn set_analytics_config(&self, config: AnalyticsConfig) {
        let mut published = lock(&self.published);
        published.analytics.set_config(config);
        published.analytics_dirty = true;
    }

    /// The current stats.
    pub fn stats(&self) -> Stats {
        self.stats_locked(&lock(&self.published))
    }

    /// Empty aggregates configured as this hub's (to rebuild them with, see
    /// [`Hub::replace_aggregates`]).
    pub fn new_aggregates(&self) -> Aggregates {
        Aggregates::new(self.config.aggregates)
    }

    /// Puts `aggregates` (counting exactly the events up to seq `through`) in place of the
    /// live ones, if `through` is the newest published event; otherwise changes nothing and
    /// returns false. Retention uses it so the live totals equal what is stored.
    pub fn replace_aggregates(&self, aggregates: Aggregates, through: u64) -> bool {
        let mut published = lock(&self.published);
        if published.seq != through {
            return false;
        }
        // The rate compares totals over time: the samples lose what the new totals lost.
        let lost = published
            .aggregates
            .total()
            .saturating_sub(aggregates.total());
        for sample in &mut published.rate_samples {
            sample.1 = sample.1.saturating_sub(lost);
        }
        published.aggregates = aggregates;
        // Said at the next stats tick even though no event came since.
        published.last_stats = None;
        true
    }

    /// Id of the newest published event, and how many events the ring holds.
    pub fn published(&self) -> (u64, usize) {
        let published = lock(&self.published);
        (published.seq, published.recent.len())
    }

    /// Starts a stream: from just after `last_event_id` if the ring still holds what came
    /// after it, otherwise from a snapshot.
    pub fn start(&self, last_event_id: Option<&str>) -> Start {
        let published = lock(&self.published);
        let frames = self.frames.subscribe();
        let resume_from = last_event_id
            .and_then(|id| self.parse_id(id))
            .filter(|&seq| {
                let oldest = published
                    .recent
                    .front()
                    .map_or(published.seq + 1, |r| r.seq);
                seq <= published.seq && seq + 1 >= oldest
            });
        let initial = match resume_from {
            Some(seq) => {
                self.metrics.resumes.fetch_add(1, Relaxed);
                self.missed_frames(&published, seq)
            }
            None => {
                self.metrics.snapshots.fetch_add(1, Relaxed);
                self.snapshot_locked(&published)
            }
        };
        Start {
            initial,
            seq: published.seq,
            frames,
        }
    }

    /// A fresh snapshot (as chunks) for a client that fell behind, and the id it covers.
    /// `frames` is moved to the live end of the broadcast (under the same lock, so nothing
    /// published after the snapshot is missed and nothing older is sent again).
    pub fn resync(&self, frames: &mut broadcast::Receiver<Frame>) -> (Vec<Bytes>, u64) {
        self.metrics.lag_resyncs.fetch_add(1, Relaxed);
        let published = lock(&self.published);
        *frames = self.frames.subscribe();
        (self.snapshot_locked(&published), published.seq)
    }

    /// The hits after `after` as `hits` messages of at most `frame_max_events` hits, built
    /// from the ring's shared slices.
    fn missed_frames(&self, published: &Published, after: u64) -> Vec<Bytes> {
        let skip = published.recent.partition_point(|r| r.seq <= after);
        let max = self.config.frame_max_events.max(1);
        let mut chunks = Vec::new();
        let mut missed = published.recent.range(skip..).peekable();
        while let Some(first) = missed.peek().map(|r| r.seq) {
            let group: Vec<&Recent> = missed.by_ref().take(max).collect();
            let last = first + group.len() as u64 - 1;
            let header = self.message_header(last, "hits", &format!(r#"{{"seq":{first},"hits":["#));
            chunks.push(Bytes::from(header));
            push_hits(&mut chunks, group);
            chunks.push(Bytes::from_static(FOOTER));
        }
        chunks
    }

    /// `{"stats":{..},"visible_secs":..,"first_seq":..,"hits_truncated":..,"hits":[..]}` as
    /// a header of its own followed by the visible hits as shared slices of the ring.
    fn snapshot_locked(&self, published: &Published) -> Vec<Bytes> {
        let stats = self.stats_locked(published);
        let now = Instant::now();
        let visible = published
            .recent
            .partition_point(|r| now.duration_since(r.received) > self.config.visible);
        let first_seq = published
            .recent
            .get(visible)
            .map_or(published.seq + 1, |r| r.seq);
        // Visible hits that the ring could not hold (to within 100 ms of the horizon).
        let horizon = self.slot_of(now.checked_sub(self.config.visible).unwrap_or(self.started));
        let hits_truncated: u64 = published
            .evicted
            .iter()
            .filter(|(slot, _)| *slot >= horizon)
            .map(|(_, count)| count)
            .sum();
        let mut header = self
            .message_header(published.seq, "snapshot", r#"{"stats":"#)
            .into_bytes();
        // Serializing plain structs into memory cannot fail.
        let _ = serde_json::to_writer(&mut header, &stats);
        header.extend_from_slice(b",\"analytics\":");
        match &published.analytics_last {
            Some((_, json)) => header.extend_from_slice(json),
            None => header.extend_from_slice(b"null"),
        }
        header.extend_from_slice(
            format!(
                r#","visible_secs":{},"first_seq":{first_seq},"hits_truncated":{hits_truncated},"hits":["#,
                self.config.visible.as_secs_f64()
            )
            .as_bytes(),
        );
        let mut chunks = vec![Bytes::from(header)];
        push_hits(&mut chunks, published.recent.range(visible..));
        chunks.push(Bytes::from_static(FOOTER));
        chunks
    }

    fn stats_locked(&self, published: &Published) -> Stats {
        Stats {
            seq: published.seq,
            server_time: unix_ms(SystemTime::now()),
            events_per_second: published.events_per_second,
            rejected_requests: self.metrics.requests_rejected(),
            clients: self.metrics.clients_connected(),
            capture: self.capture.stats(),
            summary: published.aggregates.summary(self.config.top),
        }
    }

    /// The 100 ms slot (since the hub started) an instant falls in.
    fn slot_of(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.started).as_millis() / 100) as u64
    }

    fn broadcast(&self, frame: Frame) {
        self.metrics.frames_published.fetch_add(1, Relaxed);
        // No receivers is fine: nobody is watching yet.
        let _ = self.frames.send(frame);
    }

    /// `id: <run>-<seq>\nevent: <event>\ndata: <data>`: the start of an SSE message. serde_json
    /// never writes a raw newline (they are escaped in strings), so the payload that follows
    /// is a single SSE data line, ended by [`FOOTER`] or a blank line.
    fn message_header(&self, seq: u64, event: &str, data: &str) -> String {
        format!("id: {}-{seq}\nevent: {event}\ndata: {data}", self.boot)
    }

    /// The sequence number in an event id of this run, if it is one.
    fn parse_id(&self, id: &str) -> Option<u64> {
        let (boot, seq) = id.trim().split_once('-')?;
        (boot == self.boot).then(|| seq.parse().ok()).flatten()
    }
}

/// The analytics as `GET /api/analytics` and `analytics` messages show them: the report
/// with the id of the newest event it counts.
#[derive(Serialize)]
pub struct AnalyticsView {
    /// Id of the newest event counted.
    pub seq: u64,
    /// The results.
    #[serde(flatten)]
    pub report: AnalyticsReport,
}

fn analytics_json(seq: u64, report: AnalyticsReport) -> Bytes {
    // Serializing plain structs into memory cannot fail.
    Bytes::from(serde_json::to_vec(&AnalyticsView { seq, report }).unwrap_or_default())
}

/// The end of a `hits` or `snapshot` message: closes the hits array, the object, the message.
const FOOTER: &[u8] = b"]}\n\n";

/// Appends `hits` (consecutive in the ring) to `chunks`, comma-separated, as slices of the
/// frames that hold them: one slice per run of hits that lie side by side in one frame. The
/// chunks count is bounded by the frames the hits span, not by the hits.
fn push_hits<'a>(chunks: &mut Vec<Bytes>, hits: impl IntoIterator<Item = &'a Recent>) {
    let mut run: Option<(&Bytes, u32, u32)> = None;
    let mut first = true;
    let mut flush = |chunks: &mut Vec<Bytes>, (frame, start, end): (&Bytes, u32, u32)| {
        if !first {
            chunks.push(Bytes::from_static(b","));
        }
        first = false;
        chunks.push(frame.slice(start as usize..end as usize));
    };
    for hit in hits {
        match &mut run {
            // Same frame (both alive, so the same address means the same buffer) and the
            // next hit in it: extend the run over the comma between them.
            Some((frame, _, end))
                if frame.as_ptr() == hit.frame.as_ptr() && hit.start == *end + 1 =>
            {
                *end = hit.end;
            }
            _ => {
                if let Some(done) = run.take() {
                    flush(chunks, done);
                }
                run = Some((&hit.frame, hit.start, hit.end));
            }
        }
    }
    if let Some(done) = run {
        flush(chunks, done);
    }
}

/// Unix milliseconds of a wall-clock time (0 before 1970, which a sane clock never shows).
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves the data consistent before anything that could
    // panic, so a poisoned lock still guards good data; keep serving rather than crash.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Geocoder;

    fn hub(ring: usize, buffer: usize) -> Hub {
        Hub::new(
            HubConfig {
                ring_capacity: ring,
                visible: Duration::from_secs(60),
                top: 5,
                frame_max_events: 3,
                client_buffer_frames: buffer,
                aggregates: AggregatesConfig::default(),
                analytics: AnalyticsConfig::default(),
                max_backlog: MAX_BACKLOG_EVENTS,
            },
            Arc::new(Metrics::default()),
        )
    }

    fn pending(n: usize) -> Vec<Pending> {
        let geo = Geocoder::shared();
        let events = (0..n)
            .map(|i| {
                let event = Event::at(
                    format!("192.0.2.{i}").parse().unwrap(),
                    48.8566,
                    2.3522,
                    1_736_919_120.0 + i as f64,
                    i % 2 == 0,
                );
                (event, Placed::Event(geo.locate(48.8566, 2.3522)))
            })
            .collect::<Vec<_>>();
        Pending::batch(events, 0)
    }

    fn data(frame: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(frame).unwrap();
        let line = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(line).unwrap()
    }

    /// The SSE messages that `chunks`, written one after the other, make.
    fn messages(chunks: &[Bytes]) -> Vec<Vec<u8>> {
        let all: Vec<u8> = chunks.concat();
        let text = std::str::from_utf8(&all).unwrap();
        assert!(text.is_empty() || text.ends_with("\n\n"), "whole messages");
        text.split_terminator("\n\n")
            .map(|m| format!("{m}\n\n").into_bytes())
            .collect()
    }

    /// The single message that `chunks` make.
    fn message(chunks: &[Bytes]) -> Vec<u8> {
        let mut all = messages(chunks);
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    fn id(frame: &[u8]) -> String {
        let text = std::str::from_utf8(frame).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .to_owned()
    }

    #[test]
    fn publishing_numbers_events_in_order_and_splits_large_batches_into_frames() {
        let hub = hub(100, 16);
        let mut start = hub.start(None);
        hub.push(pending(5));
        assert_eq!(hub.publish(), 5);
        let first = start.frames.try_recv().unwrap();
        let second = start.frames.try_recv().unwrap();
        assert_eq!((first.seq, second.seq), (3, 5));
        assert_eq!(data(&first.bytes)["seq"], 1);
        assert_eq!(data(&first.bytes)["hits"].as_array().unwrap().len(), 3);
        assert_eq!(data(&second.bytes)["hits"][1]["ip"], "192.0.2.4");
        assert_eq!(data(&second.bytes)["hits"][1]["city"], "Paris");
        assert!(id(&second.bytes).ends_with("-5"));
        assert_eq!(hub.stats().summary.total, 5);
    }

    #[test]
    fn replaced_aggregates_take_effect_only_at_the_published_seq_and_keep_the_rate_sane() {
        let hub = hub(100, 16);
        hub.push(pending(5));
        hub.publish();
        hub.publish_stats();
        let fewer = {
            let mut aggregates = hub.new_aggregates();
            let geo = Geocoder::shared();
            let place = geo.locate(48.8566, 2.3522);
            let event = Event::at("192.0.2.9".parse().unwrap(), 48.8566, 2.3522, 1.0, true);
            aggregates.record(
                &event,
                traffic::Location::Event(&place),
                Instant::now().into_std(),
            );
            aggregates
        };
        assert!(
            !hub.replace_aggregates(hub.new_aggregates(), 4),
            "not the published seq"
        );
        assert_eq!(hub.stats().summary.total, 5);
        let mut start = hub.start(None);
        hub.publish_stats();
        assert!(
            start.frames.try_recv().is_err(),
            "nothing changed, nothing said"
        );
        assert!(hub.replace_aggregates(fewer, 5));
        assert_eq!(hub.stats().summary.total, 1);
        // The rate's samples lost the same 4: no negative (or wrapped) rate.
        hub.publish_stats();
        let said = start.frames.try_recv().expect("the new totals are said");
        assert_eq!(data(&said.bytes)["total"], 1);
        let rate = hub.stats().events_per_second;
        assert!((0.0..1e6).contains(&rate), "{rate}");
    }

    #[test]
    fn events_count_as_uncommitted_from_push_until_published_in_order() {
        let hub = hub(100, 16);
        let first = hub.push(pending(3));
        let second = hub.push_with_key(pending(2), None);
        assert_eq!((first, second), (1, 2));
        assert_eq!(hub.uncommitted(), 5);
        let taken = hub.take().unwrap();
        let sizes: Vec<usize> = taken.events.iter().map(Vec::len).collect();
        assert_eq!((taken.first_seq, sizes, taken.ticket), (1, vec![3, 2], 2));
        assert_eq!(hub.uncommitted(), 5, "taken is not yet published");
        hub.push(pending(4));
        hub.publish_taken(taken.first_seq, &taken.events);
        assert_eq!(hub.uncommitted(), 4);
        let next = hub.take().unwrap();
        assert_eq!(next.first_seq, 6, "the sequence continues");
    }

    #[test]
    fn hits_and_stats_carry_the_place_key_so_same_named_places_stay_apart() {
        let hub = hub(100, 16);
        let mut start = hub.start(None);
        let geo = Geocoder::shared();
        // Springfield, Illinois and Springfield, Missouri.
        let events: Vec<_> = [(39.7817, -89.6501), (37.2090, -93.2923)]
            .into_iter()
            .map(|(latitude, longitude)| {
                let event = Event::at(
                    "192.0.2.1".parse().unwrap(),
                    latitude,
                    longitude,
                    1_736_919_120.0,
                    false,
                );
                (event, Placed::Event(geo.locate(latitude, longitude)))
            })
            .collect();
        hub.push(Pending::batch(events, 0));
        hub.publish();
        let hits = data(&start.frames.try_recv().unwrap().bytes)["hits"].clone();
        assert_eq!(hits[0]["city"], "Springfield");
        assert_eq!(hits[1]["city"], "Springfield");
        assert_eq!(hits[0]["country_code"], hits[1]["country_code"]);
        let keys: Vec<u64> = (0..2)
            .map(|i| hits[i]["place_key"].as_u64().unwrap())
            .collect();
        assert_ne!(keys[0], keys[1]);
        let snap = data(&message(&hub.start(None).initial));
        let mut listed: Vec<u64> = snap["stats"]["top_places"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["key"].as_u64().unwrap())
            .collect();
        listed.sort_unstable();
        let mut expected = keys.clone();
        expected.sort_unstable();
        assert_eq!(
            listed, expected,
            "the stats name the same places by the same keys"
        );
        assert_eq!(snap["hits"][0]["place_key"], keys[0]);
    }

    #[test]
    fn a_resume_gets_exactly_the_missed_hits_and_a_stale_id_gets_a_snapshot() {
        let hub = hub(100, 16);
        hub.push(pending(4));
        hub.publish();
        let after_two = format!("{}-2", hub.boot);
        let start = hub.start(Some(&after_two));
        assert_eq!(start.seq, 4);
        assert_eq!(messages(&start.initial).len(), 1);
        let missed = data(&message(&start.initial));
        assert_eq!(missed["seq"], 3);
        let ips: Vec<_> = missed["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["ip"].clone())
            .collect();
        assert_eq!(ips, ["192.0.2.2", "192.0.2.3"]);

        for stale in ["0123-2", "garbage", &format!("{}-99", hub.boot)] {
            let start = hub.start(Some(stale));
            assert!(
                std::str::from_utf8(&message(&start.initial))
                    .unwrap()
                    .contains("event: snapshot"),
                "{stale}"
            );
        }
        // Up to date: nothing to send first.
        assert!(
            hub.start(Some(&format!("{}-4", hub.boot)))
                .initial
                .is_empty()
        );
    }

    #[test]
    fn an_id_older_than_the_ring_falls_back_to_a_snapshot() {
        let hub = hub(3, 16);
        hub.push(pending(6));
        hub.publish();
        let start = hub.start(Some(&format!("{}-1", hub.boot)));
        assert!(
            std::str::from_utf8(&message(&start.initial))
                .unwrap()
                .contains("event: snapshot")
        );
        let start = hub.start(Some(&format!("{}-3", hub.boot)));
        assert_eq!(
            data(&message(&start.initial))["seq"],
            4,
            "seq 4..6 are still in the ring"
        );
    }

    #[test]
    fn a_snapshot_counts_the_visible_hits_the_ring_could_not_hold() {
        let small = hub(3, 16);
        small.push(pending(5));
        small.publish();
        let snap = data(&message(&small.start(None).initial));
        assert_eq!(snap["hits"].as_array().unwrap().len(), 3);
        assert_eq!(snap["first_seq"], 3);
        assert_eq!(snap["hits_truncated"], 2, "seq 1 and 2 were still visible");
        let roomy = hub(100, 16);
        roomy.push(pending(5));
        roomy.publish();
        assert_eq!(
            data(&message(&roomy.start(None).initial))["hits_truncated"],
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hits_that_would_have_faded_anyway_are_not_counted_as_left_out() {
        let hub = hub(3, 16);
        hub.push(pending(5));
        hub.publish();
        tokio::time::advance(Duration::from_secs(61)).await;
        hub.publish_stats();
        let snap = data(&message(&hub.start(None).initial));
        assert_eq!(snap["hits"].as_array().unwrap().len(), 0, "all faded");
        assert_eq!(snap["hits_truncated"], 0);
    }

    /// Bytes of `chunks` that lie in none of `frames` and are not static separators: what a
    /// new client costs beyond reference counts.
    fn own_bytes(chunks: &[Bytes], frames: &[Bytes]) -> usize {
        let inside = |chunk: &Bytes| {
            let (start, end) = (
                chunk.as_ptr() as usize,
                chunk.as_ptr() as usize + chunk.len(),
            );
            frames.iter().any(|f| {
                let base = f.as_ptr() as usize;
                start >= base && end <= base + f.len()
            })
        };
        chunks
            .iter()
            .filter(|c| !inside(c) && c.as_ref() != b"," && c.as_ref() != FOOTER)
            .map(Bytes::len)
            .sum()
    }

    #[test]
    fn snapshots_and_resumes_share_the_published_frames_instead_of_copying_hits() {
        let hub = hub(10_000, 2_000);
        let mut live = hub.start(None).frames;
        for _ in 0..150 {
            hub.push(pending(7));
            hub.publish();
        }
        let mut frames = Vec::new();
        while let Ok(frame) = live.try_recv() {
            frames.push(frame.bytes);
        }
        assert_eq!(frames.len(), 150 * 3, "7 hits in frames of at most 3");

        let snapshot = hub.start(None).initial;
        let snap = data(&message(&snapshot));
        assert_eq!(snap["hits"].as_array().unwrap().len(), 1050);
        let total: usize = snapshot.iter().map(Bytes::len).sum();
        let own = own_bytes(&snapshot, &frames);
        assert!(total > 150_000, "{total}");
        assert!(
            own < 4_096,
            "the snapshot copied {own} of its {total} bytes"
        );
        assert!(
            snapshot.len() <= 2 * frames.len() + 2,
            "one slice per run of hits in a frame"
        );

        let resume = hub.start(Some(&format!("{}-10", hub.boot))).initial;
        let missed: usize = messages(&resume)
            .iter()
            .map(|m| data(m)["hits"].as_array().unwrap().len())
            .sum();
        assert_eq!(missed, 1040);
        let own = own_bytes(&resume, &frames);
        assert!(own < 100 * messages(&resume).len(), "only headers: {own}");
    }

    #[test]
    fn an_outlier_shows_in_stats_frames_and_snapshots_and_is_still_drawn() {
        let hub = hub(10_000, 64);
        let mut live = hub.start(None).frames;
        let year_2199 = 7_226_582_400.0;
        let mut batch = pending(20);
        batch.extend(Pending::batch(
            vec![{
                let event = Event {
                    timestamp: year_2199,
                    ..batch[0].event.clone()
                };
                (event, batch[0].placed.clone())
            }],
            0,
        ));
        batch.extend(pending(30));
        hub.push(batch);
        hub.publish();
        hub.publish_stats();
        let stats = std::iter::from_fn(|| live.try_recv().ok())
            .find(|f| f.kind == FrameKind::Stats)
            .unwrap();
        let snapshot = data(&message(&hub.start(None).initial));
        for stats in [data(&stats.bytes), snapshot["stats"].clone()] {
            assert_eq!(stats["total"], 51);
            assert_eq!(stats["latest_timestamp"], 1_736_919_120.0 + 29.0);
            assert_eq!(stats["timeline"]["outliers"], 1);
            assert_eq!(stats["timeline"]["last_outlier"], year_2199);
            assert_eq!(stats["timeline"]["too_old"], 0);
            assert_eq!(stats["timeline"]["pending"], 0);
            assert_eq!(stats["timeline"]["clock_jumps"], 0);
        }
        let hits = snapshot["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 51);
        assert_eq!(hits[20]["timestamp"], year_2199, "the outlier is drawn");
    }

    #[test]
    fn a_snapshot_holds_the_aggregates_and_the_visible_hits() {
        let hub = hub(100, 16);
        hub.push(pending(4));
        hub.publish();
        let start = hub.start(None);
        let snap = data(&message(&start.initial));
        assert_eq!(snap["stats"]["total"], 4);
        assert_eq!(snap["stats"]["suspicious"], 2);
        assert_eq!(snap["stats"]["seq"], 4);
        assert_eq!(snap["first_seq"], 1);
        assert_eq!(snap["hits"].as_array().unwrap().len(), 4);
        assert_eq!(snap["stats"]["top_places"][0]["city"], "Paris");
        assert_eq!(snap["stats"]["top_places"][0]["count"], 4);
    }

    #[test]
    fn a_client_that_falls_behind_is_told_it_lagged_and_memory_stays_bounded() {
        let hub = hub(100, 2);
        let mut start = hub.start(None);
        for _ in 0..5 {
            hub.push(pending(1));
            hub.publish();
        }
        assert!(matches!(
            start.frames.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        assert_eq!(hub.frames.len(), 2, "the buffer holds at most its capacity");
        let (snapshot, seq) = hub.resync(&mut start.frames);
        assert_eq!(seq, 5);
        assert!(
            start.frames.try_recv().is_err(),
            "the receiver now waits at the live end"
        );
        assert_eq!(data(&message(&snapshot))["stats"]["total"], 5);
    }

    /// The hits a stream shows: every field present, every optional one absent, and text
    /// that needs escaping (quotes, backslashes, control characters, non-ASCII).
    fn hits_of_every_shape() -> Vec<HitJson<'static>> {
        let full = HitJson {
            ip: "2001:db8::1".parse().unwrap(),
            latitude: Some(-33.8688),
            longitude: Some(151.2093),
            timestamp: 1_736_919_120.25,
            suspicious: true,
            received: 1_764_460_000_123,
            located: Some("ip"),
            unlocated: None,
            place_key: Some(u64::MAX),
            city: Some("S\u{e3}o Paulo \"centro\""),
            country_code: Some("BR"),
            country: Some("Brazil\\South"),
            bytes: Some(0),
            protocol: Some("HTTP/1.1"),
            status: Some(404),
            method: Some("GET"),
            path: Some("/a?b=\"c\"&d=\u{1}\n\t\u{7f}\u{2028}\u{1f600}"),
            dest_ip: Some("::ffff:192.0.2.1".parse().unwrap()),
            src_port: Some(65535),
            dest_port: Some(443),
            packets: Some(7),
            asn: Some(15169),
            as_name: Some("Google LLC"),
        };
        let bare = HitJson {
            ip: "192.0.2.1".parse().unwrap(),
            latitude: None,
            longitude: None,
            timestamp: 1_736_919_120.0,
            suspicious: false,
            received: 0,
            located: None,
            unlocated: Some("private"),
            place_key: None,
            city: None,
            country_code: None,
            country: None,
            bytes: None,
            protocol: None,
            status: None,
            method: None,
            path: None,
            dest_ip: None,
            src_port: None,
            dest_port: None,
            packets: None,
            asn: None,
            as_name: None,
        };
        let by_event = HitJson {
            latitude: Some(0.0),
            longitude: Some(-0.5),
            timestamp: 1e-7,
            located: Some("event"),
            unlocated: None,
            place_key: Some(1),
            city: Some(""),
            country_code: Some(""),
            country: Some(""),
            path: Some(""),
            ..bare
        };
        vec![full, bare, by_event]
    }

    #[test]
    fn a_hit_is_written_as_serde_would_write_it() {
        for hit in hits_of_every_shape() {
            let mut written = Vec::new();
            hit.write(&mut written);
            let expected = serde_json::to_vec(&hit).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
