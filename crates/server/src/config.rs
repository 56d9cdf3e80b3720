//! The server's configuration: command-line flags, each with an environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use traffic::AggregatesConfig;
use traffic::service::ServeLimits;

use crate::hub::HubConfig;

/// traffic-globe server: takes events on POST /api/events, keeps live aggregates and streams
/// them to browsers on GET /api/stream (Server-Sent Events).
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "SERVER_LISTEN", default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,

    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, env = "SERVER_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most events accepted in one POST (more: 413).
    #[arg(long, env = "SERVER_MAX_BATCH", default_value_t = 100_000)]
    pub max_batch: usize,

    /// Recent events kept in memory, so a reconnecting client can resume by Last-Event-ID
    /// and a new one gets the hits still visible.
    #[arg(long, env = "SERVER_RING_CAPACITY", default_value_t = 100_000)]
    pub ring_capacity: usize,

    /// Seconds a hit stays visible: snapshots include hits younger than this.
    #[arg(long, env = "SERVER_VISIBLE_SECS", default_value_t = 60.0)]
    pub visible_secs: f64,

    /// Length of the activity timeline, in seconds of the data's own clock.
    #[arg(long, env = "SERVER_TIMELINE_SECS", default_value_t = 600)]
    pub timeline_secs: u32,

    /// How many top places and countries the stats list.
    #[arg(long, env = "SERVER_TOP", default_value_t = 20)]
    pub top: usize,

    /// Most distinct places tracked in the aggregates (further ones count as "other").
    #[arg(long, env = "SERVER_MAX_PLACES", default_value_t = 200_000)]
    pub max_places: usize,

    /// Shortest time between two published batches of hits, in milliseconds. At high rates
    /// hits are grouped into one message per interval; when quiet, a hit goes out at once.
    #[arg(long, env = "SERVER_PUBLISH_INTERVAL_MS", default_value_t = 10)]
    pub publish_interval_ms: u64,

    /// How often stats (counters, top places, timeline) are sent to clients, in milliseconds.
    #[arg(long, env = "SERVER_STATS_INTERVAL_MS", default_value_t = 1000)]
    pub stats_interval_ms: u64,

    /// Seconds between keep-alive comments on idle streams.
    #[arg(long, env = "SERVER_KEEP_ALIVE_SECS", default_value_t = 15)]
    pub keep_alive_secs: u64,

    /// Messages buffered for each client; a client further behind gets a fresh snapshot.
    #[arg(long, env = "SERVER_CLIENT_BUFFER", default_value_t = 1024)]
    pub client_buffer: usize,

    /// Most hits in one stream message.
    #[arg(long, env = "SERVER_FRAME_MAX_EVENTS", default_value_t = 1000)]
    pub frame_max_events: usize,

    /// Idempotency keys remembered (the most recent ones): a POST repeated with the same
    /// `Idempotency-Key` within this many keys is answered again, not counted again. 0 turns
    /// idempotency off.
    #[arg(long, env = "SERVER_IDEMPOTENCY_KEYS", default_value_t = 100_000)]
    pub idempotency_keys: usize,

    /// Seconds an idempotency key is remembered.
    #[arg(long, env = "SERVER_IDEMPOTENCY_SECS", default_value_t = 600)]
    pub idempotency_secs: u64,

    /// Seconds a client has to send a request's head (request line and headers), counted
    /// from when the connection is ready for one; a keep-alive connection with no next
    /// request is closed after this too.
    #[arg(long, env = "SERVER_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a connection may go without a byte read or written before it is closed (a
    /// stalled upload, a client that stopped reading). Must exceed --keep-alive-secs, so a
    /// healthy idle stream is never cut.
    #[arg(long, env = "SERVER_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Most connections open at once (lowered to fit the open-file limit); beyond it new
    /// connections wait to be accepted until one closes.
    #[arg(long, env = "SERVER_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Instead of serving, check a running server: GET /healthz at this HOST:PORT and exit 0
    /// if it answers 200, 1 otherwise (for container health checks; no curl needed).
    #[arg(long, value_name = "HOST:PORT")]
    pub probe: Option<String>,
}

impl Config {
    /// The defaults, as if started with no flags and no environment (for tests).
    pub fn default_for_tests() -> Self {
        Self::parse_from(["server"])
    }

    /// Checks values clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.visible_secs.is_finite() && self.visible_secs >= 0.0,
            "--visible-secs must be a non-negative number"
        );
        anyhow::ensure!(self.timeline_secs > 0, "--timeline-secs must be at least 1");
        anyhow::ensure!(
            self.frame_max_events > 0,
            "--frame-max-events must be at least 1"
        );
        anyhow::ensure!(self.client_buffer > 0, "--client-buffer must be at least 1");
        anyhow::ensure!(self.max_batch > 0, "--max-batch must be at least 1");
        anyhow::ensure!(
            self.stats_interval_ms > 0,
            "--stats-interval-ms must be at least 1"
        );
        anyhow::ensure!(
            self.keep_alive_secs > 0,
            "--keep-alive-secs must be at least 1"
        );
        self.serve_limits().validate()?;
        anyhow::ensure!(
            self.idle_timeout_secs > self.keep_alive_secs,
            "--idle-timeout-secs ({}) must exceed --keep-alive-secs ({}), or idle streams are cut",
            self.idle_timeout_secs,
            self.keep_alive_secs
        );
        Ok(())
    }

    /// The connection limits for the serving loop.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
        }
    }

    pub(crate) fn hub(&self) -> HubConfig {
        HubConfig {
            ring_capacity: self.ring_capacity,
            visible: Duration::from_secs_f64(self.visible_secs),
            top: self.top,
            frame_max_events: self.frame_max_events,
            client_buffer_frames: self.client_buffer,
            aggregates: AggregatesConfig {
                timeline_secs: self.timeline_secs,
                max_places: self.max_places,
            },
        }
    }
}
