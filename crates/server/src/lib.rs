//! traffic-globe server: validates ingested events, enriches them with a place, keeps live
//! aggregates and fans everything out to browsers over Server-Sent Events.
//!
//! [`app`] builds the router (handler tests drive it with `oneshot`); [`serve`] runs it on a
//! listener with the background tasks and graceful shutdown; [`run`] is what `main` calls.

mod api;
mod config;
mod error;
pub mod geo;
pub mod hub;
pub mod idempotency;
mod metrics;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use error::ApiError;
pub use geo::Geocoder;
pub use hub::Hub;
pub use metrics::Metrics;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Coordinates to places.
    pub geo: Arc<Geocoder>,
    /// IP addresses to coordinates, for events without them ([`geo::NoDatabase`] unless
    /// [`AppState::with_locator`] sets one).
    pub locator: Arc<dyn geo::Locate>,
    /// What `locator` was loaded from, for `/api/info` (empty: no IP database).
    pub databases: Arc<[geoip::DatabaseInfo]>,
    /// AS data (`--asn`), if loaded: hits then carry `asn`/`as_name`, stats list networks.
    pub asn: Option<Arc<geoip::AsnDb>>,
    /// Sequencing, aggregates, fan-out.
    pub hub: Arc<Hub>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Cancelled on shutdown; ends open streams.
    pub shutdown: CancellationToken,
    /// Recent `Idempotency-Key`s of ingest requests and their answers.
    pub idempotency: Arc<idempotency::Store>,
}

impl AppState {
    /// State for `config`, sharing the process-wide geocoder.
    pub fn new(config: Config, geo: Arc<Geocoder>, shutdown: CancellationToken) -> Self {
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(config.hub(), Arc::clone(&metrics)));
        let idempotency = idempotency::Store::new(
            config.idempotency_keys,
            Duration::from_secs(config.idempotency_secs),
        );
        Self {
            config: Arc::new(config),
            geo,
            locator: Arc::new(geo::NoDatabase),
            databases: Arc::new([]),
            asn: None,
            hub,
            metrics,
            shutdown,
            idempotency,
        }
    }

    /// The same state, placing events without coordinates by `locator`.
    pub fn with_locator(mut self, locator: Arc<dyn geo::Locate>) -> Self {
        self.locator = locator;
        self
    }

    /// The same state, naming each event's network from `asn`.
    pub fn with_asn(mut self, asn: Option<Arc<geoip::AsnDb>>) -> Self {
        self.asn = asn;
        self
    }

    /// The same state, saying on `/api/info` that `databases` were loaded.
    pub fn with_databases(mut self, databases: Vec<geoip::DatabaseInfo>) -> Self {
        self.databases = databases.into();
        self
    }

    /// Starts the publisher and the stats ticker; they stop when `shutdown` is cancelled.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let publisher = {
            let hub = Arc::clone(&self.hub);
            let interval = Duration::from_millis(self.config.publish_interval_ms);
            let shutdown = self.shutdown.clone();
            async move {
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = hub.wait_for_pending() => {}
                    }
                    hub.publish();
                    // Throttle: what arrives meanwhile goes out together in the next frame.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(interval) => {}
                    }
                }
                hub.publish();
            }
        };
        let ticker = {
            let hub = Arc::clone(&self.hub);
            let every = Duration::from_millis(self.config.stats_interval_ms);
            let shutdown = self.shutdown.clone();
            async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        _ = tick.tick() => hub.publish_stats(),
                    }
                }
            }
        };
        tokio::spawn(async move {
            tokio::join!(publisher, ticker);
        })
    }
}

/// The router: the API under `/api`, plus `/healthz` and `/metrics`.
pub fn app(state: AppState) -> Router {
    Router::new()
        // The body limit is applied by the handler itself (it also refuses a declared
        // Content-Length over the limit before reading).
        .route("/api/events", post(api::ingest))
        .route("/api/stream", get(stream::stream))
        .route("/api/stats", get(api::stats))
        .route("/api/info", get(api::info))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `state` on `listener` until `state.shutdown` is cancelled, then drains.
pub async fn serve(listener: TcpListener, mut state: AppState) -> anyhow::Result<()> {
    // Keep descriptors for the geodata, the logs and the odd file.
    let limits = state.config.serve_limits().within_open_file_limit(64, 1);
    // Streams must never take every connection, or a sender could not get in: when the
    // open-file limit lowered the connection cap, the stream cap follows it.
    if state.config.max_streams >= limits.max_connections {
        let streams = (limits.max_connections * 9 / 10).max(1);
        tracing::warn!(
            configured = state.config.max_streams,
            lowered = streams,
            max_connections = limits.max_connections,
            "--max-streams lowered to stay below the connection cap"
        );
        let mut config = Config::clone(&state.config);
        config.max_streams = streams;
        state.config = Arc::new(config);
    }
    let background = state.spawn_background();
    let shutdown = state.shutdown.clone();
    traffic::service::serve(listener, app(state), limits, shutdown)
        .await
        .context("while serving HTTP")?;
    background
        .await
        .context("while stopping background tasks")?;
    Ok(())
}

/// Asks a running server at `address` (`host:port`) whether it is healthy: `GET /healthz`
/// must answer 200 within `timeout`.
pub async fn probe(address: &str, timeout: Duration) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .with_context(|| format!("while connecting to {address}"))?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .context("while sending the probe")?;
        let mut head = [0u8; 12];
        stream
            .read_exact(&mut head)
            .await
            .context("while reading the answer")?;
        anyhow::ensure!(
            head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"),
            "{address} answered {:?}",
            String::from_utf8_lossy(&head)
        );
        Ok(())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("no answer from {address} within {timeout:?}"))?
}

/// Loads the geocoder, binds `config.listen` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate()?;
    let started = std::time::Instant::now();
    let geo = tokio::task::spawn_blocking(Geocoder::shared)
        .await
        .context("while loading the bundled geodata")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "geodata loaded"
    );
    let (locator, databases) = open_geoip(&config).await?;
    let asn = open_asn(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    serve(
        listener,
        AppState::new(config, geo, shutdown)
            .with_locator(locator)
            .with_databases(databases)
            .with_asn(asn),
    )
    .await
}

/// Loads the AS data named by `--asn`, if any, logging its size and load time.
async fn open_asn(config: &Config) -> anyhow::Result<Option<Arc<geoip::AsnDb>>> {
    let Some(path) = config.asn.clone() else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let db = tokio::task::spawn_blocking(move || geoip::AsnDb::open(&[path]))
        .await
        .context("while loading the AS data")?
        .context("while loading the AS data (--asn)")?;
    let (v4, v6) = db.ranges();
    tracing::info!(
        ipv4_ranges = v4,
        ipv6_ranges = v6,
        networks = db.networks(),
        memory_mb = db.memory_bytes() / (1 << 20),
        elapsed_ms = started.elapsed().as_millis() as u64,
        attribution = geoip::ASN_ATTRIBUTION,
        "AS data loaded"
    );
    Ok(Some(Arc::new(db)))
}

/// Opens the IP databases named by `--geoip`, or else the default ones in `--geoip-dir` if
/// they are there; with none, events without coordinates are unlocated (`no_database`), and
/// the log says how to get a database. A named file that cannot be opened is an error.
/// Returns the locator and what it was loaded from.
async fn open_geoip(
    config: &Config,
) -> anyhow::Result<(Arc<dyn geo::Locate>, Vec<geoip::DatabaseInfo>)> {
    let named = !config.geoip.is_empty();
    let paths = if named {
        config.geoip.clone()
    } else {
        geoip::GeoIp::default_files(&config.geoip_dir)
    };
    if paths.is_empty() {
        tracing::warn!(dir = %config.geoip_dir.display(), "{}", geoip::NO_DATABASE_HINT);
        return Ok((Arc::new(geo::NoDatabase), Vec::new()));
    }
    let db = tokio::task::spawn_blocking(move || geoip::GeoIp::open(&paths))
        .await
        .context("while opening the IP geolocation database")?
        .context("while opening the IP geolocation database (--geoip)")?;
    for info in db.databases() {
        tracing::info!(
            path = %info.path.display(),
            database_type = %info.database_type,
            ip_version = info.ip_version,
            build_epoch = info.build_epoch,
            attribution = info.attribution.as_deref().unwrap_or(""),
            "IP geolocation database"
        );
    }
    let databases = db.databases().to_vec();
    Ok((Arc::new(db), databases))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_named_database_that_cannot_be_opened_stops_the_start_naming_it() {
        let mut config = Config::default_for_tests();
        config.geoip = vec!["/nonexistent/city.mmdb".into()];
        let error = open_geoip(&config).await.err().expect("an error");
        let text = format!("{error:#}");
        assert!(text.contains("/nonexistent/city.mmdb"), "{text}");
    }

    #[tokio::test]
    async fn the_default_databases_are_reported_with_their_attribution() {
        // scripts/fetch-geoip puts DB-IP City Lite here; the test command runs it first.
        let mut config = Config::default_for_tests();
        config.geoip_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/geoip");
        if geoip::GeoIp::default_files(&config.geoip_dir).len() < 2 {
            eprintln!("skipped: no DB-IP files (run scripts/fetch-geoip)");
            return;
        }
        let (_, databases) = open_geoip(&config).await.unwrap();
        assert_eq!(databases.len(), 2);
        for info in &databases {
            assert_eq!(info.attribution.as_deref(), Some(geoip::DBIP_ATTRIBUTION));
            assert!(info.build_epoch > 1_700_000_000, "{info:?}");
        }
    }

    #[tokio::test]
    async fn without_any_database_ip_only_events_are_unlocated_as_no_database() {
        let mut config = Config::default_for_tests();
        config.geoip_dir = "/nonexistent-geoip-dir".into();
        let (locator, databases) = open_geoip(&config).await.unwrap();
        assert!(databases.is_empty());
        let ip = "8.8.8.8".parse().unwrap();
        assert_eq!(locator.locate(ip), Err(geo::Unlocated::NoDatabase));
    }
}
