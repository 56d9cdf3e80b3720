//! traffic-globe server: validates ingested events, enriches them with a place, keeps live
//! aggregates and fans everything out to browsers over Server-Sent Events.
//!
//! [`app`] builds the router (handler tests drive it with `oneshot`); [`serve`] runs it on a
//! listener with the background tasks and graceful shutdown; [`run`] is what `main` calls.

mod analytics;
mod api;
pub mod auth;
pub mod capture;
pub mod cli;
mod config;
mod error;
mod generator;
pub mod geo;
mod housekeeping;
pub mod hub;
pub mod idempotency;
mod import;
pub mod jobs;
pub mod lock;
mod metrics;
mod past;
pub mod persist;
pub mod reqlog;
pub mod routes;
pub mod settings;
mod stream;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::{Config, DatabaseUrl};
pub use error::ApiError;
pub use geo::Geocoder;
pub use hub::Hub;
pub use metrics::Metrics;

/// Everything the handlers share, behind one `Arc`: axum clones the state for every request
/// (routing, then the `State` extractor), and a clone is then one atomic increment instead
/// of one per field plus a lock in the cancellation token's tree. Fields are reached through
/// `Deref` (`state.hub`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
#[derive(Clone)]
pub struct Shared {
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
    /// Users, tokens, sessions, the audit log and when credentials are needed.
    pub auth: Arc<auth::Auth>,
    /// The history's writer (`None` with `--store memory`): events are stored before they
    /// are published.
    pub history: Option<Arc<persist::Writer>>,
    /// Read-only access to the history for `/api/history` (`None` with `--store memory`).
    pub readers: Option<Arc<dyn history::range::OpenReader>>,
    /// The built-in traffic generator (`/api/generator`).
    pub generator: Arc<generator::Generator>,
    /// The housekeeping jobs (`/api/jobs`); [`serve`] starts them.
    pub jobs: Arc<jobs::Jobs>,
    /// The retention setting and the daily summaries.
    pub housekeeping: Arc<housekeeping::Housekeeping>,
    /// The server's own request log (`--request-log`), when kept.
    pub requests: Option<Arc<reqlog::RequestLog>>,
    /// Held while a CSV import runs (`POST /api/import`): one at a time.
    pub imports: Arc<tokio::sync::Mutex<()>>,
    /// Where runtime changes of the alert rules and analytics settings are saved (`None`:
    /// they last until the process ends, as in tests).
    pub settings: Option<Arc<settings::Settings>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State for `config` with its history (`--store`): opens the store, rebuilds the
    /// aggregates, the ring of recent hits, the sequence and the idempotency keys from it,
    /// and starts its writer. With `--store memory`, the same as [`AppState::new`].
    pub async fn open(
        config: Config,
        geo: Arc<Geocoder>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let opened = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let Some(store) = persist::open(&config)? else {
                    return Ok(None);
                };
                let started = std::time::Instant::now();
                let metrics = Arc::new(Metrics::default());
                let hub =
                    Hub::with_epoch(config.hub(), Arc::clone(&metrics), store.epoch().to_owned());
                config.apply_alert_rules(&hub);
                let keys_max_age = Duration::from_secs(config.idempotency_secs);
                let idempotency = idempotency::Store::with_secret(
                    config.idempotency_keys,
                    keys_max_age,
                    store.secret(),
                );
                let last = persist::restore(&hub, &idempotency, keys_max_age, &*store)?;
                tracing::info!(
                    events = last,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    store = %persist::location(&config),
                    "history restored"
                );
                Ok(Some((store, hub, metrics, idempotency)))
            })
            .await
            .context("while restoring the history")??
        };
        let Some((store, hub, metrics, idempotency)) = opened else {
            return Ok(Self::new(config, geo, shutdown));
        };
        let hub = Arc::new(hub);
        let readers: Arc<dyn history::range::OpenReader> = Arc::from(store.readers());
        let writer = persist::spawn(
            store,
            Arc::clone(&hub),
            config.durable,
            Duration::from_secs(config.idempotency_secs),
        )?;
        let mut state = Self::new(config, geo, shutdown);
        let shared = state.shared_mut();
        shared.hub = hub;
        shared.metrics = metrics;
        shared.idempotency = idempotency;
        shared.history = Some(Arc::new(writer));
        shared.readers = Some(readers);
        shared.housekeeping = Arc::new(housekeeping::Housekeeping::in_dir(
            shared.config.retention().ok().flatten(),
            &shared.config.data_dir,
        ));
        Ok(state)
    }

    /// State for `config` with nothing stored (as `--store memory`), sharing the
    /// process-wide geocoder, with the auth state in memory only ([`AppState::with_auth`]
    /// sets the one from `--data-dir`).
    pub fn new(config: Config, geo: Arc<Geocoder>, shutdown: CancellationToken) -> Self {
        let auth = auth::Auth::open(
            None,
            config.policy(),
            config.audit_max_bytes,
            shutdown.clone(),
        )
        // A fresh state in memory touches no file and cannot fail.
        .unwrap_or_else(|e| unreachable!("{e}"));
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(config.hub(), Arc::clone(&metrics)));
        config.apply_alert_rules(&hub);
        // Validated before serving; a state built from an unchecked config has none.
        let retain = config.retention().ok().flatten();
        let idempotency = idempotency::Store::new(
            config.idempotency_keys,
            Duration::from_secs(config.idempotency_secs),
        );
        Self(Arc::new(Shared {
            config: Arc::new(config),
            geo,
            locator: Arc::new(geo::NoDatabase),
            databases: Arc::new([]),
            asn: None,
            hub,
            metrics,
            shutdown,
            idempotency,
            auth: Arc::new(auth),
            history: None,
            readers: None,
            generator: Arc::default(),
            jobs: Arc::new(housekeeping_jobs()),
            housekeeping: Arc::new(housekeeping::Housekeeping::new(retain)),
            requests: None,
            imports: Arc::default(),
            settings: None,
        }))
    }

    /// The shared fields, to change before serving (copied if already shared).
    pub(crate) fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// The same state, writing every request to `log`.
    pub fn with_request_log(mut self, log: Option<Arc<reqlog::RequestLog>>) -> Self {
        self.shared_mut().requests = log;
        self
    }

    /// The same state with `auth` (loaded from `--data-dir`).
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.shared_mut().auth = Arc::new(auth);
        self
    }

    /// The same state, saving runtime changes of rules and analytics settings in `settings`.
    pub fn with_settings(mut self, settings: Arc<settings::Settings>) -> Self {
        self.shared_mut().settings = Some(settings);
        self
    }

    /// The same state, placing events without coordinates by `locator`.
    pub fn with_locator(mut self, locator: Arc<dyn geo::Locate>) -> Self {
        self.shared_mut().locator = locator;
        self
    }

    /// The same state, naming each event's network from `asn`.
    pub fn with_asn(mut self, asn: Option<Arc<geoip::AsnDb>>) -> Self {
        self.shared_mut().asn = asn;
        self
    }

    /// The same state, saying on `/api/info` that `databases` were loaded.
    pub fn with_databases(mut self, databases: Vec<geoip::DatabaseInfo>) -> Self {
        self.shared_mut().databases = databases.into();
        self
    }

    /// Starts the publisher and the stats ticker (and webhook delivery, when configured);
    /// they stop when `stop` is cancelled, after publishing (with a history: storing)
    /// everything pushed before. [`serve`] cancels it only once HTTP has drained, so a
    /// request still in flight at shutdown is stored too.
    pub fn spawn_background(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        if let Some(delivery) = self.config.delivery() {
            self.hub
                .deliver_alerts_to(webhooks::Webhooks::start(delivery, self.shutdown.clone()));
        }
        let publisher = {
            let hub = Arc::clone(&self.hub);
            let history = self.history.clone();
            // With --durable, answers wait for the commit: no throttle before handing
            // batches to the writer, whose commits (each an fsync) group them instead.
            let interval = if self.history.as_ref().is_some_and(|w| w.durable) {
                Duration::ZERO
            } else {
                Duration::from_millis(self.config.publish_interval_ms)
            };
            let shutdown = stop.clone();
            // Without a history, publish at once; with one, hand the batch to the writer,
            // which publishes it once stored.
            let publish = move || {
                let hub = Arc::clone(&hub);
                let history = history.clone();
                async move {
                    match &history {
                        None => {
                            hub.publish();
                        }
                        Some(writer) => {
                            if let Some(taken) = hub.take() {
                                writer.send(taken).await;
                            }
                        }
                    }
                }
            };
            let hub = Arc::clone(&self.hub);
            let history = self.history.clone();
            async move {
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = hub.wait_for_pending() => {}
                    }
                    publish().await;
                    // Throttle: what arrives meanwhile goes out together in the next frame.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(interval) => {}
                    }
                }
                publish().await;
                if let Some(writer) = history {
                    writer.stop().await;
                }
            }
        };
        let ticker = {
            let hub = Arc::clone(&self.hub);
            let every = Duration::from_millis(self.config.stats_interval_ms);
            let shutdown = stop;
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

/// The router: every route of [`routes::table`], each behind [`auth::guard`] with its
/// access rule; anything else is a 404.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes::table() {
        let guard = axum::middleware::from_fn_with_state(
            (Arc::clone(&state.auth), route.access),
            auth::guard,
        );
        router = router.route(route.path, route.handler.route_layer(guard));
    }
    let log = state.requests.clone();
    let router = router
        .fallback(api::not_found)
        .layer(TraceLayer::new_for_http());
    match log {
        Some(log) => router
            .layer(axum::middleware::from_fn_with_state(log, reqlog::record))
            .with_state(state),
        None => router.with_state(state),
    }
}

/// The housekeeping jobs, as `GET /api/jobs` lists them: (name, first run after start,
/// interval).
const JOBS: [(&str, Duration, Duration); 3] = [
    (
        "retention",
        Duration::from_secs(60),
        Duration::from_secs(600),
    ),
    (
        "daily-summary",
        Duration::from_secs(60),
        Duration::from_secs(3600),
    ),
    (
        "request-log-rotation",
        Duration::from_secs(60),
        Duration::from_secs(60),
    ),
];

fn housekeeping_jobs() -> jobs::Jobs {
    let mut jobs = jobs::Jobs::default();
    for (name, first, every) in JOBS {
        jobs.add(name, first, every);
    }
    jobs
}

/// The work of the job `name` on `state`.
fn job_work(state: &AppState, name: &str) -> Option<jobs::Work> {
    let state = state.clone();
    Some(match name {
        "retention" => Arc::new(move || housekeeping::run_retention(&state)),
        "daily-summary" => Arc::new(move || housekeeping::run_daily(&state)),
        "request-log-rotation" => {
            let max_age = state.config.request_log_age().ok()?;
            Arc::new(move || match &state.requests {
                Some(log) => log.rotate_older_than(max_age),
                None => Ok("the request log is off (--request-log false)".to_owned()),
            })
        }
        _ => return None,
    })
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
        state.shared_mut().config = Arc::new(config);
    }
    let loopback = listener.local_addr()?.ip().is_loopback();
    state
        .auth
        .policy
        .loopback_listener
        .store(loopback, std::sync::atomic::Ordering::Relaxed);
    let stop = CancellationToken::new();
    let background = state.spawn_background(stop.clone());
    let reload = auth_reloader(&state);
    let shutdown = state.shutdown.clone();
    let generator = Arc::clone(&state.generator);
    let jobs = state
        .jobs
        .spawn(shutdown.clone(), |name| job_work(&state, name));
    let requests = state.requests.clone();
    let served = traffic::service::serve(listener, app(state), limits, shutdown).await;
    // The built-in generator stops on shutdown too: its last events go in with the rest.
    generator.finished().await;
    // A job still running finishes (retention with the writer, which is still there).
    jobs.await.context("while stopping the housekeeping jobs")?;
    // Every request has been answered: publish and store the last of what they brought.
    stop.cancel();
    background
        .await
        .context("while stopping background tasks")?;
    reload.await.context("while stopping the auth reloader")?;
    if let Some(log) = requests {
        tokio::task::spawn_blocking(move || log.flush())
            .await
            .context("while flushing the request log")?;
    }
    served.context("while serving HTTP")?;
    Ok(())
}

/// How often the server looks for changes the CLI made to the auth state.
pub const AUTH_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Re-reads `auth.json` when the CLI changed it (a revoked token stops working within
/// [`AUTH_RELOAD_INTERVAL`]), until shutdown.
fn auth_reloader(state: &AppState) -> tokio::task::JoinHandle<()> {
    let auth = Arc::clone(&state.auth);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(AUTH_RELOAD_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let auth = Arc::clone(&auth);
            match tokio::task::spawn_blocking(move || auth.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!("auth state reloaded (changed on disk)"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot reload the auth state; keeping the last one"
                ),
                Err(e) => tracing::warn!(error = %e, "auth reload task failed"),
            }
        }
    })
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
    // Before anything in the data directory is opened; held until serving ends.
    let _data_dir = lock::DataDirLock::acquire(&config.data_dir)?;
    let started = std::time::Instant::now();
    let geo = tokio::task::spawn_blocking(Geocoder::shared)
        .await
        .context("while loading the bundled geodata")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "geodata loaded"
    );
    let (locator, databases) = open_geoip(&config).await?;
    let auth = auth::Auth::open(
        Some(&config.data_dir),
        config.policy(),
        config.audit_max_bytes,
        shutdown.clone(),
    )
    .with_context(|| {
        format!(
            "while opening the auth state in {} (--data-dir)",
            config.data_dir.display()
        )
    })?;
    let asn = open_asn(&config).await?;
    let requests = config
        .request_log
        .then(|| {
            reqlog::RequestLog::open(
                reqlog::Rotation {
                    dir: config.data_dir.clone(),
                    max_bytes: config.request_log_max_bytes,
                    keep: config.request_log_keep,
                },
                Arc::from(config.trusted_proxies.as_slice()),
            )
        })
        .transpose()
        .context("while opening the request log (--request-log)")?;
    let settings = Arc::new(settings::Settings::load(&config)?);
    // The history is restored before binding: once the port accepts, the counts are back.
    let state = AppState::open(config, geo, shutdown).await?;
    settings.apply(&state);
    let listen = state.config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("while binding {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    announce_access(&state.config, &auth, address);
    serve(
        listener,
        state
            .with_locator(locator)
            .with_databases(databases)
            .with_auth(auth)
            .with_asn(asn)
            .with_request_log(requests)
            .with_settings(settings),
    )
    .await
}

/// Says in the log who may do what, and, while there is no admin, how to create one.
fn announce_access(config: &Config, auth: &auth::Auth, address: std::net::SocketAddr) {
    if config.open {
        tracing::warn!(
            %address,
            "--open: ANYONE who can reach this address may send events and watch all traffic \
             without credentials (admin endpoints still need an admin)"
        );
    } else if config.require_auth {
        tracing::info!("credentials required for ingest and viewing (--require-auth)");
    } else if address.ip().is_loopback() {
        tracing::info!(
            "ingest and viewing open to this machine only (loopback); others need credentials"
        );
    } else {
        tracing::info!("ingest needs a token and viewing a login (not on loopback, no --open)");
    }
    if let Some(secret) = auth.begin_setup() {
        // The one-time secret is the whole point of this line: it creates the first admin
        // and is useless once one exists (or when this process ends).
        tracing::warn!(
            setup_link = %format!("http://localhost:8080/#setup={secret}"),
            "no admin yet: open the page with this link (or POST /api/setup with this token) \
             to create one; or run `server user add NAME --role admin`"
        );
    }
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

/// `request` as if it came over a socket from 127.0.0.1 (in-process tests; without a peer
/// address a request counts as remote).
#[cfg(test)]
pub(crate) fn from_loopback<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

/// `request` from loopback with the session cookie of an admin (created in `state` if
/// there is none yet), for in-process tests of admin routes.
#[cfg(test)]
pub(crate) fn as_admin<B>(
    state: &AppState,
    mut request: axum::http::Request<B>,
) -> axum::http::Request<B> {
    use auth::session::{self, Claims};
    const ADMIN: &str = "test-admin";
    let key = state
        .auth
        .update(|f| {
            f.set_user(ADMIN, auth::Role::Admin, "test admin password")?;
            f.session_key()
        })
        .expect("an admin in the test's auth state");
    let claims = Claims {
        sid: auth::store::random_token(),
        user: ADMIN.into(),
        exp: auth::store::now_unix() + 3600,
    };
    let cookie = format!("{}={}", session::COOKIE, session::sign(&key, &claims));
    let value = axum::http::HeaderValue::from_str(&cookie).expect("a cookie is ASCII");
    request
        .headers_mut()
        .insert(axum::http::header::COOKIE, value);
    from_loopback(request)
}

/// Sends `body` (JSON) to `method path` through the app and reads the JSON answer: reading
/// (`GET`) as a viewer on loopback, anything else as an admin (in-process tests).
#[cfg(test)]
pub(crate) async fn call_json(
    state: &AppState,
    method: &str,
    path: &str,
    body: &str,
) -> (axum::http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .expect("a valid request");
    let request = if method == "GET" {
        from_loopback(request)
    } else {
        as_admin(state, request)
    };
    let response = app(state.clone())
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is read")
        .to_bytes();
    let json =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"));
    (status, json)
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
