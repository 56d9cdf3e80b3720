//! The server's configuration: command-line flags, each with an environment fallback.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clap::builder::BoolishValueParser;
use traffic::AggregatesConfig;
use traffic::analytics::rules::{Format, RuleSet};
use traffic::analytics::{self, AnalyticsConfig, Thresholds};
use traffic::service::ServeLimits;

use crate::hub::HubConfig;
pub use crate::persist::StoreKind;

/// traffic-globe server: takes events on POST /api/events, keeps live aggregates and streams
/// them to browsers on GET /api/stream (Server-Sent Events).
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    /// Address and port to listen on.
    /// Ingest and viewing are open without credentials only on a loopback address (see
    /// --open); on any other they need a token or a login.
    #[arg(long, env = "SERVER_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Largest accepted request body, in bytes (larger: 413). 1..=1073741824.
    #[arg(long, env = "SERVER_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest CSV file accepted by POST /api/import, in bytes (larger: 413; the body is
    /// streamed, so this bounds time and disk, not memory). 1..=1099511627776.
    #[arg(long, env = "SERVER_MAX_IMPORT_BYTES", default_value_t = 1 << 30)]
    pub max_import_bytes: u64,

    /// Most events accepted in one POST (more: 413). 1..=10000000.
    #[arg(long, env = "SERVER_MAX_BATCH", default_value_t = 100_000)]
    pub max_batch: usize,

    /// Recent events kept in memory, so a reconnecting client can resume by Last-Event-ID
    /// and a new one gets the hits still visible. 0..=10000000.
    #[arg(long, env = "SERVER_RING_CAPACITY", default_value_t = 100_000)]
    pub ring_capacity: usize,

    /// Seconds a hit stays visible: snapshots include hits younger than this. 0..=86400.
    #[arg(long, env = "SERVER_VISIBLE_SECS", default_value_t = 60.0)]
    pub visible_secs: f64,

    /// Length of the activity timeline, in seconds of the data's own clock. 1..=86400.
    #[arg(long, env = "SERVER_TIMELINE_SECS", default_value_t = 600)]
    pub timeline_secs: u32,

    /// How many top places and countries the stats list. 0..=1000.
    #[arg(long, env = "SERVER_TOP", default_value_t = 20)]
    pub top: usize,

    /// Most distinct places tracked in the aggregates (further ones count as "other").
    /// 0..=10000000.
    #[arg(long, env = "SERVER_MAX_PLACES", default_value_t = 200_000)]
    pub max_places: usize,

    /// Shortest time between two published batches of hits, in milliseconds. At high rates
    /// hits are grouped into one message per interval; when quiet, a hit goes out at once.
    /// 0..=60000.
    #[arg(long, env = "SERVER_PUBLISH_INTERVAL_MS", default_value_t = 10)]
    pub publish_interval_ms: u64,

    /// How often stats (counters, top places, timeline) are sent to clients, in milliseconds.
    /// 1..=3600000.
    #[arg(long, env = "SERVER_STATS_INTERVAL_MS", default_value_t = 1000)]
    pub stats_interval_ms: u64,

    /// Seconds without any message after which a stream gets a keep-alive comment (again
    /// every as many seconds while it stays silent). 1..=86400.
    #[arg(long, env = "SERVER_KEEP_ALIVE_SECS", default_value_t = 15)]
    pub keep_alive_secs: u64,

    /// Messages buffered for each client; a client further behind gets a fresh snapshot.
    /// 1..=100000.
    #[arg(long, env = "SERVER_CLIENT_BUFFER", default_value_t = 1024)]
    pub client_buffer: usize,

    /// Most streams (GET /api/stream) open at once; a client beyond it gets 503 with
    /// Retry-After. 1..=1000000, and below --max-connections so that senders always find a
    /// connection (lowered with it when the open-file limit lowers that).
    #[arg(long, env = "SERVER_MAX_STREAMS", default_value_t = 8_000)]
    pub max_streams: usize,

    /// Seconds a new stream has to take its snapshot (or the hits it missed); a client still
    /// not done by then is disconnected, so it cannot keep old hits in memory. 1..=3600.
    #[arg(long, env = "SERVER_SNAPSHOT_TIMEOUT_SECS", default_value_t = 60)]
    pub snapshot_timeout_secs: u64,

    /// Most hits in one stream message. 1..=100000.
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

    /// Threads that accept and serve connections, each with its own single-threaded
    /// runtime, so a connection's work never wakes another thread (0: one per core).
    #[arg(long, env = "SERVER_SERVE_THREADS", default_value_t = 0)]
    pub serve_threads: usize,

    /// An IP geolocation database (MaxMind format: GeoIP2/GeoLite2 City or an ip-location-db
    /// file) that places events sent without coordinates. Repeatable (e.g. one IPv4 and one
    /// IPv6 file; IPv4 addresses are looked up in the IPv4 file); the env var takes a
    /// comma-separated list. Without it, the DB-IP files in --geoip-dir are used if present.
    #[arg(
        long = "geoip",
        env = "SERVER_GEOIP",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub geoip: Vec<PathBuf>,

    /// Where to look for the default database (DB-IP City Lite, fetched by
    /// scripts/fetch-geoip) when no --geoip is given. Without any database, events with only
    /// an IP address are counted as unlocated (no_database).
    #[arg(long, env = "SERVER_GEOIP_DIR", default_value = geoip::DEFAULT_DIR)]
    pub geoip_dir: PathBuf,

    /// An ingest token accepted besides those in --data-dir (named `env` in the audit log),
    /// e.g. shared with the sender through compose's `.env`. At least 32 characters.
    #[arg(long, env = "SERVER_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<crate::auth::Secret>,

    /// Networks of reverse proxies (e.g. web in another container) whose `X-Forwarded-For`
    /// names the client, for login limits and the audit log (loopback always counts).
    /// Never decides what is open. Comma-separated CIDRs.
    #[arg(
        long,
        env = "SERVER_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Let anyone, from any address, send events and watch without credentials (admin
    /// endpoints still need an admin). Logged loudly at start.
    #[arg(long, env = "SERVER_OPEN", value_parser = BoolishValueParser::new())]
    pub open: bool,

    /// Require credentials for ingest and viewing even from this machine on loopback.
    #[arg(long, env = "SERVER_REQUIRE_AUTH", value_parser = BoolishValueParser::new())]
    pub require_auth: bool,

    /// Seconds a login session lasts. 60..=2592000 (30 days).
    #[arg(long, env = "SERVER_SESSION_SECS", default_value_t = 12 * 3600)]
    pub session_secs: i64,

    /// Mark the session cookie `Secure` (only sent over HTTPS): set it when a TLS proxy is
    /// in front.
    #[arg(long, env = "SERVER_SECURE_COOKIES", value_parser = BoolishValueParser::new())]
    pub secure_cookies: bool,

    /// Size in bytes past which the audit log is rotated (3 old files kept). 1024..=1073741824.
    #[arg(long, env = "SERVER_AUDIT_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub audit_max_bytes: u64,

    /// Administration instead of serving (users, tokens); without one, serve.
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,
    /// Analytics window T, in seconds of the data's clock, for every key kind (change it at
    /// runtime per kind with PUT /api/analytics/config). 1..=3600.
    #[arg(long, env = "SERVER_ANALYTICS_WINDOW_SECS", default_value_t = 60)]
    pub analytics_window_secs: u32,

    /// Analytics k: keys listed in each top k, for every key kind. 1..=100.
    #[arg(long, env = "SERVER_ANALYTICS_TOP_K", default_value_t = 10)]
    pub analytics_top_k: usize,

    /// Analytics H: a heavy hitter has more than this percent of the window's total, for every
    /// key kind. 0.1..=100.
    #[arg(
        long,
        env = "SERVER_ANALYTICS_HEAVY_HITTER_PERCENT",
        default_value_t = 5.0
    )]
    pub analytics_heavy_hitter_percent: f64,

    /// Analytics X: an outlier's rate is more than this many standard deviations above the
    /// mean rate of the window's keys, for every key kind. 0.1..=100.
    #[arg(long, env = "SERVER_ANALYTICS_OUTLIER_STDDEVS", default_value_t = 3.0)]
    pub analytics_outlier_stddevs: f64,

    /// Distinct keys of a kind per second held exactly by the analytics; beyond it a bounded
    /// summary whose error bound the results state. Memory is at most about 6 kinds x window
    /// seconds x this x 100 bytes. 16..=1000000.
    #[arg(long, env = "SERVER_ANALYTICS_BUDGET", default_value_t = 4096)]
    pub analytics_budget: usize,

    /// Where alerts are delivered as they fire and resolve: `URL` (the alert as JSON),
    /// `slack=URL` (`{"text": ...}`) or `discord=URL` (`{"content": ...}`); http:// or https://
    /// (checked against the system's CA certificates and --alert-webhook-ca).
    /// Repeatable; the env var takes a comma-separated list.
    #[arg(
        long = "alert-webhook",
        env = "SERVER_ALERT_WEBHOOK",
        value_name = "[FORMAT=]URL",
        value_delimiter = ','
    )]
    pub alert_webhooks: Vec<crate::webhooks::Target>,

    /// PEM file of CA certificates trusted for https:// webhooks besides the system's (an
    /// internal CA, or a receiver's self-signed certificate).
    #[arg(long, env = "SERVER_ALERT_WEBHOOK_CA", value_name = "PEM_FILE")]
    pub alert_webhook_ca: Option<PathBuf>,

    /// Rules file of the alerts (JSON, or TOML for a `.toml` file): windowed and event rules,
    /// shaped as README "Alert rules" says (docs/alert-rules.toml is an example). Without it
    /// the built-in rules apply; `PUT /api/alerts/rules` replaces them at runtime.
    #[arg(long, env = "SERVER_ALERT_RULES", value_name = "FILE")]
    pub alert_rules: Option<PathBuf>,

    /// Alerts waiting for webhook delivery at most; more are dropped (and logged). 1..=100000.
    #[arg(long, env = "SERVER_ALERT_WEBHOOK_QUEUE", default_value_t = 1000)]
    pub alert_webhook_queue: usize,

    /// Retries of a failed webhook delivery (after 1 s, then twice as long each time).
    /// 0..=10.
    #[arg(long, env = "SERVER_ALERT_WEBHOOK_RETRIES", default_value_t = 3)]
    pub alert_webhook_retries: u32,

    /// Directory of the server's own data, created if missing: users, ingest tokens and the
    /// session key (auth.json, mode 0600), the audit log (audit.log), the alert rules and
    /// analytics settings changed through the API (settings.json) and, with --store
    /// sqlite, the history (history.sqlite3).
    #[arg(long, env = "SERVER_DATA_DIR", default_value = "data/server")]
    pub data_dir: PathBuf,

    /// Where every accepted event is kept: `sqlite` (in --data-dir; a restart rebuilds
    /// counts, timeline and recent hits from it and continues the sequence), `postgres`
    /// (the same, in the PostgreSQL database of --database; the default when --database is
    /// given) or `memory` (nothing kept: a restart starts from zero).
    #[arg(
        long,
        env = "SERVER_STORE",
        value_enum,
        default_value = "sqlite",
        default_value_if("database", clap::builder::ArgPredicate::IsPresent, "postgres")
    )]
    pub store: StoreKind,

    /// The PostgreSQL database that keeps the history, as a URL:
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE (parameters such as
    /// ?options=-c%20search_path%3Dglobe may follow; no TLS: a local or trusted network).
    /// Implies --store postgres. Tables are created and migrated on start. The password is
    /// never logged.
    #[arg(long, env = "SERVER_DATABASE", value_name = "URL")]
    pub database: Option<DatabaseUrl>,

    /// A 202 waits until its events are committed and on disk (SQLite: fsync; PostgreSQL:
    /// synchronous_commit on), so it survives a crash or power loss. Without it a 202
    /// returns at once and the writer commits within milliseconds without waiting for the
    /// disk: a kill -9 of the server can lose the events accepted but not yet committed,
    /// and with PostgreSQL a crash of the database server can also lose its last commits
    /// (see README). Needs --store sqlite or postgres.
    #[arg(long, env = "SERVER_DURABLE", value_parser = BoolishValueParser::new())]
    pub durable: bool,
    /// Optional AS data (which network an address belongs to, for the "top networks"
    /// list): a CSV file of ranges (first_ip,last_ip,as_number,as_name), or a directory
    /// holding asn-ipv4.csv and/or asn-ipv6.csv as scripts/fetch-asn puts them in data/asn.
    /// Without it, hits carry no asn and the stats list no networks.
    #[arg(long, env = "SERVER_ASN")]
    pub asn: Option<PathBuf>,

    /// The server's own place, "LAT,LON" in degrees (e.g. "52.52,13.405"), sent to pages in
    /// /api/info: the page can draw arcs from each hit to it.
    #[arg(long, env = "SERVER_HOME", value_name = "LAT,LON")]
    pub home: Option<String>,

    /// Retention: delete stored events whose data time is older than this (`30d`, `12h`,
    /// `90m`, `3600s`; 1m..=36500d), measured back from the newest stored data time or now,
    /// whichever is earlier. Their minute rollups go too; hour rollups and daily summaries
    /// are kept. Off by default; an admin can change it at runtime (PUT /api/retention, saved
    /// in settings.json and kept across restarts while this flag is unchanged).
    #[arg(long, env = "SERVER_RETAIN", value_name = "DURATION")]
    pub retain: Option<String>,

    /// Keep the server's own request log (JSON lines in --data-dir/requests.log):
    /// `true` or `false`.
    #[arg(
        long,
        env = "SERVER_REQUEST_LOG",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub request_log: bool,

    /// Size in bytes past which the request log is rotated. 4096..=1099511627776.
    #[arg(long, env = "SERVER_REQUEST_LOG_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub request_log_max_bytes: u64,

    /// Age past which the request log is rotated by the request-log-rotation job, even if
    /// small (`1d`, `12h`, ...; 1m..=36500d).
    #[arg(
        long,
        env = "SERVER_REQUEST_LOG_MAX_AGE",
        default_value = "1d",
        value_name = "DURATION"
    )]
    pub request_log_max_age: String,

    /// Rotated request logs kept (requests.log.1 is the newest); older ones are deleted.
    /// 1..=1000.
    #[arg(long, env = "SERVER_REQUEST_LOG_KEEP", default_value_t = 5)]
    pub request_log_keep: usize,

    /// Instead of serving, check a running server: GET /healthz at this HOST:PORT and exit 0
    /// if it answers 200, 1 otherwise (for container health checks; no curl needed).
    #[arg(long, value_name = "HOST:PORT")]
    pub probe: Option<String>,
}

/// The PostgreSQL URL of `--database`: shown (`Debug`, `Display`) with its password masked,
/// so printing a [`Config`] never reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL as given, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.to_owned()))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&history::postgres::redact(&self.0))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

impl Config {
    /// The defaults, as if started with no flags and no environment (for tests).
    pub fn default_for_tests() -> Self {
        Self::parse_from(["server", "--store", "memory"])
    }

    /// Parses the command line and environment, and exits with a usage error (status 2,
    /// naming the flag and its range) if a value is out of range.
    pub fn parse_valid() -> Self {
        let config = Self::parse();
        if let Err(e) = config.validate() {
            <Self as clap::CommandFactory>::command()
                .error(clap::error::ErrorKind::ValueValidation, format!("{e:#}"))
                .exit();
        }
        config
    }

    /// Checks every setting against its range (stated in `--help`), so that no value can
    /// panic or exhaust memory later.
    pub fn validate(&self) -> anyhow::Result<()> {
        in_range("--max-body-bytes", self.max_body_bytes, 1..=1 << 30)?;
        in_range("--max-batch", self.max_batch, 1..=10_000_000)?;
        in_range("--max-import-bytes", self.max_import_bytes, 1..=1 << 40)?;
        in_range("--ring-capacity", self.ring_capacity, 0..=10_000_000)?;
        in_range("--visible-secs", self.visible_secs, 0.0..=86_400.0)?;
        in_range("--timeline-secs", self.timeline_secs, 1..=86_400)?;
        in_range("--top", self.top, 0..=1000)?;
        in_range("--max-places", self.max_places, 0..=10_000_000)?;
        in_range(
            "--publish-interval-ms",
            self.publish_interval_ms,
            0..=60_000,
        )?;
        in_range("--stats-interval-ms", self.stats_interval_ms, 1..=3_600_000)?;
        in_range("--keep-alive-secs", self.keep_alive_secs, 1..=86_400)?;
        in_range("--client-buffer", self.client_buffer, 1..=100_000)?;
        in_range("--frame-max-events", self.frame_max_events, 1..=100_000)?;
        in_range("--max-streams", self.max_streams, 1..=1_000_000)?;
        in_range(
            "--snapshot-timeout-secs",
            self.snapshot_timeout_secs,
            1..=3600,
        )?;
        in_range("--idempotency-keys", self.idempotency_keys, 0..=10_000_000)?;
        in_range("--idempotency-secs", self.idempotency_secs, 1..=7 * 86_400)?;
        in_range("--header-timeout-secs", self.header_timeout_secs, 1..=3600)?;
        in_range("--idle-timeout-secs", self.idle_timeout_secs, 1..=86_400)?;
        in_range("--session-secs", self.session_secs, 60..=30 * 86_400)?;
        if let Some(token) = &self.ingest_token {
            anyhow::ensure!(
                token.0.len() >= 32,
                "--ingest-token must be at least 32 characters (e.g. `openssl rand -hex 24`)"
            );
        }
        in_range("--audit-max-bytes", self.audit_max_bytes, 1024..=1 << 30)?;
        in_range(
            "--analytics-window-secs",
            self.analytics_window_secs,
            analytics::WINDOW_SECS,
        )?;
        in_range("--analytics-top-k", self.analytics_top_k, analytics::TOP_K)?;
        in_range(
            "--analytics-heavy-hitter-percent",
            self.analytics_heavy_hitter_percent,
            analytics::HEAVY_HITTER_PERCENT,
        )?;
        in_range(
            "--analytics-outlier-stddevs",
            self.analytics_outlier_stddevs,
            analytics::OUTLIER_STDDEVS,
        )?;
        in_range(
            "--analytics-budget",
            self.analytics_budget,
            analytics::BUDGET,
        )?;
        in_range(
            "--alert-webhook-queue",
            self.alert_webhook_queue,
            1..=100_000,
        )?;
        in_range(
            "--alert-webhook-retries",
            self.alert_webhook_retries,
            0..=10,
        )?;
        self.alert_rule_set()?;
        self.webhook_roots()?;
        self.serve_limits().validate()?;
        self.home_position()?;
        self.retention()?;
        self.request_log_age()?;
        in_range(
            "--request-log-max-bytes",
            self.request_log_max_bytes,
            4096..=1 << 40,
        )?;
        in_range("--request-log-keep", self.request_log_keep, 1..=1000)?;
        if let Some(asn) = &self.asn {
            anyhow::ensure!(
                asn.exists(),
                "--asn {}: no such file or directory (run scripts/fetch-asn, or leave --asn out)",
                asn.display()
            );
        }
        anyhow::ensure!(
            !self.durable || self.store != StoreKind::Memory,
            "--durable needs a store that writes to disk (--store sqlite or postgres), not \
             --store memory"
        );
        match (&self.database, self.store) {
            (None, StoreKind::Postgres) => anyhow::bail!(
                "--store postgres needs --database postgres://USER:PASSWORD@HOST/DATABASE"
            ),
            (Some(url), StoreKind::Postgres) => history::postgres::check_url(url.expose())
                .map_err(|e| anyhow::anyhow!("--database: {e}"))?,
            (Some(_), other) => anyhow::bail!(
                "--database is the PostgreSQL store's; it cannot go with --store {}",
                clap::ValueEnum::to_possible_value(&other)
                    .map_or_else(|| format!("{other:?}"), |v| v.get_name().to_owned())
            ),
            (None, _) => {}
        }
        anyhow::ensure!(
            self.idle_timeout_secs > self.keep_alive_secs,
            "--idle-timeout-secs ({}) must exceed --keep-alive-secs ({}), or idle streams are cut",
            self.idle_timeout_secs,
            self.keep_alive_secs
        );
        anyhow::ensure!(
            self.max_streams < self.max_connections,
            "--max-streams ({}) must be below --max-connections ({}), or open streams could \
             take every connection and lock senders out",
            self.max_streams,
            self.max_connections
        );
        // Checked here rather than by clap, which counts a variable set to off
        // (`SERVER_OPEN=0`) as the flag given.
        anyhow::ensure!(
            !(self.open && self.require_auth),
            "--open and --require-auth contradict each other: open lets anyone ingest and \
             view without credentials, require-auth asks everyone for them; choose one"
        );
        Ok(())
    }

    /// `--retain` as a duration (`None`: off).
    ///
    /// # Errors
    /// Not a number with a unit s/m/h/d, or out of 1m..=36500d.
    pub fn retention(&self) -> anyhow::Result<Option<Duration>> {
        self.retain
            .as_deref()
            .map(|text| crate::housekeeping::parse_span("--retain", text))
            .transpose()
    }

    /// `--request-log-max-age` as a duration.
    ///
    /// # Errors
    /// Not a number with a unit s/m/h/d, or out of 1m..=36500d.
    pub fn request_log_age(&self) -> anyhow::Result<Duration> {
        crate::housekeeping::parse_span("--request-log-max-age", &self.request_log_max_age)
    }

    /// `--home` as (latitude, longitude), if given.
    ///
    /// # Errors
    /// Not two numbers separated by a comma, or out of -90..=90 / -180..=180.
    pub fn home_position(&self) -> anyhow::Result<Option<(f64, f64)>> {
        let Some(home) = &self.home else {
            return Ok(None);
        };
        let parsed = home.split_once(',').and_then(|(lat, lon)| {
            Some((
                lat.trim().parse::<f64>().ok()?,
                lon.trim().parse::<f64>().ok()?,
            ))
        });
        let Some((latitude, longitude)) = parsed else {
            anyhow::bail!("--home must be LAT,LON in degrees (e.g. 52.52,13.405), got {home:?}");
        };
        in_range("--home latitude", latitude, -90.0..=90.0)?;
        in_range("--home longitude", longitude, -180.0..=180.0)?;
        Ok(Some((latitude, longitude)))
    }

    /// The connection limits for the serving loop.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
            threads: self.serve_threads,
        }
    }

    /// When requests without credentials are let in (the listener's side is set once bound).
    pub(crate) fn policy(&self) -> crate::auth::Policy {
        crate::auth::Policy {
            open: self.open,
            require_auth: self.require_auth,
            loopback_listener: self.listen.ip().is_loopback().into(),
            session_secs: self.session_secs,
            secure_cookies: self.secure_cookies,
            ingest_token: self.ingest_token.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
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
                ..AggregatesConfig::default()
            },
            analytics: self.analytics(),
            max_backlog: crate::hub::MAX_BACKLOG_EVENTS,
        }
    }

    /// The rules of `--alert-rules`, read and checked; `None` without the flag.
    pub fn alert_rule_set(&self) -> anyhow::Result<Option<RuleSet>> {
        let Some(path) = &self.alert_rules else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--alert-rules {}: cannot read it", path.display()))?;
        let rules = RuleSet::parse(&text, Format::of_path(path))
            .and_then(|rules| rules.compile().map(|_| rules))
            .map_err(|e| anyhow::anyhow!("--alert-rules {}: {e}", path.display()))?;
        Ok(Some(rules))
    }

    /// Puts the rules of `--alert-rules` in force in `hub` (checked by [`Config::validate`];
    /// a file changed since into one that cannot be used leaves the built-in rules, logged).
    pub(crate) fn apply_alert_rules(&self, hub: &crate::Hub) {
        match self.alert_rule_set() {
            Ok(None) => {}
            Ok(Some(rules)) => {
                let count = rules.rules.len();
                match hub.set_alert_rules(rules) {
                    Ok(()) => tracing::info!(rules = count, "alert rules loaded"),
                    Err(e) => tracing::error!(error = %e, "alert rules not loaded"),
                }
            }
            Err(e) => tracing::error!(error = %e, "alert rules not loaded"),
        }
    }

    /// The certificates of `--alert-webhook-ca` (none without the flag).
    pub(crate) fn webhook_roots(
        &self,
    ) -> anyhow::Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>> {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let Some(path) = &self.alert_webhook_ca else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("--alert-webhook-ca {}: cannot read it", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                anyhow::anyhow!(
                    "--alert-webhook-ca {}: not PEM certificates: {e}",
                    path.display()
                )
            })?;
        anyhow::ensure!(
            !certs.is_empty(),
            "--alert-webhook-ca {}: holds no certificate",
            path.display()
        );
        Ok(certs)
    }

    /// How alerts reach the webhooks, if any are configured.
    pub(crate) fn delivery(&self) -> Option<crate::webhooks::Delivery> {
        (!self.alert_webhooks.is_empty()).then(|| crate::webhooks::Delivery {
            roots: self.webhook_roots().unwrap_or_else(|e| {
                tracing::error!(error = %e, "webhook CA certificates not loaded");
                Vec::new()
            }),
            targets: self.alert_webhooks.clone(),
            queue: self.alert_webhook_queue,
            retries: self.alert_webhook_retries,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        })
    }

    /// The analytics settings at start: the same thresholds for every key kind.
    pub(crate) fn analytics(&self) -> AnalyticsConfig {
        AnalyticsConfig::uniform(
            self.analytics_budget,
            Thresholds {
                window_secs: self.analytics_window_secs,
                top_k: self.analytics_top_k,
                heavy_hitter_percent: self.analytics_heavy_hitter_percent,
                outlier_stddevs: self.analytics_outlier_stddevs,
            },
        )
    }
}

/// `Ok` if `value` lies in `range` (a NaN lies nowhere).
fn in_range<T: PartialOrd + Debug>(
    flag: &str,
    value: T,
    range: RangeInclusive<T>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        range.contains(&value),
        "{flag} must be in {:?}..={:?}, got {value:?}",
        range.start(),
        range.end()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(flag: &str, value: &str) -> anyhow::Result<()> {
        Config::parse_from(["server".to_owned(), format!("{flag}={value}")]).validate()
    }

    #[test]
    fn retention_and_the_request_log_take_spans_and_bounds_and_errors_name_the_flag() {
        assert!(
            Config::default_for_tests().retention().unwrap().is_none(),
            "off by default"
        );
        assert!(Config::default_for_tests().request_log, "on by default");
        let config = Config::parse_from(["server", "--retain", "30d", "--request-log", "false"]);
        assert_eq!(
            config.retention().unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert!(!config.request_log);
        for (flag, value) in [
            ("--retain", "30"),
            ("--retain", "0d"),
            ("--request-log-max-age", "1y"),
            ("--request-log-max-bytes", "100"),
            ("--request-log-keep", "0"),
        ] {
            let e = with(flag, value).unwrap_err().to_string();
            assert!(e.starts_with(flag), "{flag}={value}: {e}");
        }
        with("--retain", "12h").unwrap();
    }

    #[test]
    fn a_webhook_that_is_not_http_stops_the_start_naming_the_flag() {
        let error = Config::try_parse_from(["server", "--alert-webhook=slack=ftp://x"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--alert-webhook"), "{error}");
        assert!(error.contains("http:// or https://"), "{error}");
        let https = Config::try_parse_from(["server", "--alert-webhook=slack=https://x"]).unwrap();
        assert_eq!(https.alert_webhooks[0].url, "https://x");
    }

    #[test]
    fn a_rules_file_that_cannot_be_used_stops_the_start_naming_the_flag_and_the_rule() {
        let dir = std::env::temp_dir().join(format!("rules-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("rules.toml");
        std::fs::write(
            &bad,
            "[[rules]]\nname = \"big\"\ntype = \"event\"\nwhen = { field = \"bytes\", op = \">\", value = \"x\" }\n",
        )
        .unwrap();
        let config = |path: &std::path::Path| Config {
            alert_rules: Some(path.to_owned()),
            ..Config::default_for_tests()
        };
        let error = config(&bad).validate().unwrap_err().to_string();
        assert!(error.contains("--alert-rules"), "{error}");
        assert!(error.contains("rules[0].when.value"), "{error}");
        assert!(error.contains("\"big\""), "{error}");
        let missing = config(&dir.join("absent.json")).validate().unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
        let good = dir.join("rules.json");
        std::fs::write(&good, r#"{"rules": [{"name": "k", "type": "rate_jump"}]}"#).unwrap();
        let rules = config(&good).alert_rule_set().unwrap().unwrap();
        assert_eq!(rules.rules[0].name, "k");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_defaults_are_valid() {
        Config::default_for_tests().validate().unwrap();
    }

    #[test]
    fn every_setting_out_of_range_is_refused_naming_the_flag_and_its_range() {
        for (flag, bad, good) in [
            ("--max-body-bytes", "0", "1073741824"),
            ("--max-batch", "10000001", "1"),
            ("--ring-capacity", "10000001", "0"),
            ("--visible-secs", "1e30", "86400"),
            ("--visible-secs", "-1", "0"),
            ("--visible-secs", "NaN", "0.5"),
            ("--visible-secs", "inf", "60"),
            ("--timeline-secs", "4000000000", "86400"),
            ("--timeline-secs", "0", "1"),
            ("--top", "1001", "0"),
            ("--max-import-bytes", "0", "1099511627776"),
            ("--max-import-bytes", "1099511627777", "1"),
            ("--max-places", "10000001", "10000000"),
            ("--publish-interval-ms", "60001", "0"),
            ("--stats-interval-ms", "0", "3600000"),
            ("--keep-alive-secs", "0", "59"),
            ("--client-buffer", "0", "100000"),
            ("--client-buffer", "100001", "1"),
            ("--frame-max-events", "0", "100000"),
            ("--max-streams", "0", "9999"),
            ("--snapshot-timeout-secs", "0", "3600"),
            ("--idempotency-keys", "10000001", "0"),
            ("--idempotency-secs", "0", "604800"),
            ("--idempotency-secs", "18446744073709551615", "1"),
            ("--header-timeout-secs", "0", "3600"),
            ("--header-timeout-secs", "18446744073709551615", "1"),
            ("--idle-timeout-secs", "86401", "86400"),
            ("--session-secs", "59", "60"),
            ("--session-secs", "2592001", "2592000"),
            ("--audit-max-bytes", "1023", "1024"),
            ("--analytics-window-secs", "0", "3600"),
            ("--analytics-window-secs", "3601", "1"),
            ("--analytics-top-k", "0", "100"),
            ("--analytics-heavy-hitter-percent", "0", "0.1"),
            ("--analytics-heavy-hitter-percent", "NaN", "100"),
            ("--analytics-outlier-stddevs", "0", "100"),
            ("--analytics-budget", "15", "16"),
            ("--analytics-budget", "1000001", "1000000"),
            ("--alert-webhook-queue", "0", "100000"),
            ("--alert-webhook-retries", "11", "0"),
        ] {
            let error = with(flag, bad).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{flag} must be in ")), "{error}");
            assert!(
                error.contains(&format!("got {bad}"))
                    || flag == "--visible-secs"
                    || flag.ends_with("percent")
                    || flag.ends_with("stddevs"),
                "{error}"
            );
            with(flag, good).unwrap_or_else(|e| panic!("{flag} {good}: {e}"));
        }
        let error = with("--visible-secs", "1e30").unwrap_err().to_string();
        assert_eq!(error, "--visible-secs must be in 0.0..=86400.0, got 1e30");
    }

    #[test]
    fn streams_must_leave_connections_for_senders_and_idle_must_outlast_keep_alives() {
        let mut config = Config::default_for_tests();
        config.max_streams = config.max_connections;
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.starts_with("--max-streams (10000) must be below --max-connections (10000)"),
            "{error}"
        );
        let mut config = Config::default_for_tests();
        config.keep_alive_secs = config.idle_timeout_secs;
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.starts_with("--idle-timeout-secs (60) must exceed"),
            "{error}"
        );
    }

    #[test]
    fn the_history_defaults_to_sqlite_in_data_server_and_durable_refuses_memory() {
        let config = Config::parse_from(["server"]);
        assert_eq!(config.store, StoreKind::Sqlite);
        assert_eq!(config.data_dir, PathBuf::from("data/server"));
        assert!(!config.durable);
        config.validate().unwrap();
        let error = Config::parse_from(["server", "--store", "memory", "--durable"])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--durable needs"), "{error}");
        Config::parse_from(["server", "--durable"])
            .validate()
            .unwrap();
    }

    #[test]
    fn database_selects_postgres_and_is_checked_naming_the_flag() {
        let url = "postgres://globe:s3cr3t@127.0.0.1:5432/history";
        let config = Config::parse_from(["server", "--database", url]);
        assert_eq!(config.store, StoreKind::Postgres, "implied by --database");
        config.validate().unwrap();
        let explicit = Config::parse_from(["server", "--store", "postgres", "--database", url]);
        explicit.validate().unwrap();
        for (args, expected) in [
            (
                &["--store", "postgres"][..],
                "--store postgres needs --database",
            ),
            (
                &["--store", "sqlite", "--database", url][..],
                "--database is the PostgreSQL store's; it cannot go with --store sqlite",
            ),
            (
                &["--store", "memory", "--database", url][..],
                "--database is the PostgreSQL store's; it cannot go with --store memory",
            ),
            (
                &["--database", "mysql://root:s3cr3t@localhost/x"][..],
                "--database: mysql://root:***@localhost/x is not a postgres:// URL",
            ),
            (
                &["--database", "postgres://globe:s3cr3t@localhost:port/db"][..],
                "--database: ",
            ),
        ] {
            let error = Config::parse_from(std::iter::once("server").chain(args.iter().copied()))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(expected), "{args:?}: {error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
        let durable = Config::parse_from(["server", "--database", url, "--durable"]);
        durable.validate().unwrap();
        let printed = format!("{durable:?}");
        assert!(
            printed.contains("postgres://globe:***@127.0.0.1:5432/history"),
            "{printed}"
        );
        assert!(!printed.contains("s3cr3t"), "the password never shows");
    }

    #[test]
    fn every_valid_config_builds_a_hub_config_without_panicking() {
        let mut config = Config::default_for_tests();
        config.visible_secs = 86_400.0;
        config.timeline_secs = 86_400;
        config.validate().unwrap();
        let hub = config.hub();
        assert_eq!(hub.visible, Duration::from_secs(86_400));
    }
}
