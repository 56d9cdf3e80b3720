//! The built-in generator: synthetic traffic made inside the server by
//! `traffic::generate::LiveGenerator` and handed to the same ingest path as POSTed events
//! (placed, counted, stored, streamed). Steered at runtime through `GET`/`PUT
//! /api/generator` (settings), `POST /api/generator/start`, `/stop` and `/burst`.
//!
//! While it runs, a task wakes every [`TICK`] on an absolute schedule and takes the events
//! due by then; a change of settings takes effect at the next tick. Stopped, it makes
//! nothing; started again, it starts over from event 0 of its seed (so the same seed and
//! settings give the same traffic). It stops with the server.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use traffic::generate::ScriptedBurst;
use traffic::generate::live::{self, LiveConfig, LiveGenerator};

use crate::AppState;
use crate::analytics::parse;
use crate::api::{check_json_content_type, ingest_events};
use crate::error::ApiError;

/// How often a running generator hands its due events to ingest.
pub const TICK: Duration = Duration::from_millis(100);
/// Most events handed over per tick; more stay due for the next ticks (the catch-up after a
/// stall is spread out rather than one huge batch).
const MAX_PER_TICK: usize = 20_000;
/// Largest settings body read, in bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A burst from the burst button when the request names nothing: from this network...
pub const DEFAULT_BURST_NETWORK: [u8; 3] = [203, 0, 113];
/// ...with this share of all traffic...
pub const DEFAULT_BURST_SHARE: f64 = 0.3;
/// ...for this many seconds.
pub const DEFAULT_BURST_SECS: u64 = 30;
/// Longest burst from `POST /api/generator/burst`, seconds.
pub const MAX_BURST_SECS: u64 = 3600;

/// The generator's settings and, while it runs, its run.
pub struct Generator {
    inner: Mutex<Inner>,
    /// The runs' tasks, so that a shutdown can wait until the last events are handed over.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct Inner {
    /// The settings in force, kept across stop and start.
    config: LiveConfig,
    run: Option<Run>,
    /// Events made by the runs that ended.
    made_before: u64,
}

struct Run {
    engine: LiveGenerator,
    /// When it started, on tokio's clock (paused in tests) ...
    started: Instant,
    /// ... and in unix seconds: the first event's timestamp.
    start_unix: f64,
    stop: CancellationToken,
}

impl Default for Generator {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                config: LiveConfig::default(),
                run: None,
                made_before: 0,
            }),
            tasks: Mutex::default(),
        }
    }
}

impl Generator {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `GET /api/generator` shows.
    pub fn view(&self) -> GeneratorView {
        let inner = self.lock();
        let run = inner.run.as_ref();
        GeneratorView {
            running: run.is_some(),
            started_at: run.map(|r| r.start_unix),
            elapsed_secs: run.map(|r| r.started.elapsed().as_secs_f64()),
            generated: run.map_or(0, |r| r.engine.generated()),
            generated_total: inner.made_before + run.map_or(0, |r| r.engine.generated()),
            config: inner.config.clone(),
            limits: Limits {
                max_rate: live::MAX_RATE,
                max_places: live::max_places(),
                max_bursts: live::MAX_BURSTS,
                max_burst_secs: MAX_BURST_SECS,
            },
        }
    }

    /// Replaces the settings (and those of the running generator, from its next tick).
    fn set_config(&self, config: LiveConfig) -> Result<(), live::LiveConfigError> {
        let mut inner = self.lock();
        match &mut inner.run {
            Some(run) => run.engine.reconfigure(config.clone())?,
            None => config.validate()?,
        }
        inner.config = config;
        Ok(())
    }

    /// Starts a run with the settings in force, unless one is running; returns its stop
    /// token when it started one.
    fn start(&self, shutdown: &CancellationToken) -> Result<Option<CancellationToken>, ApiError> {
        let mut inner = self.lock();
        if inner.run.is_some() {
            return Ok(None);
        }
        let engine = LiveGenerator::new(inner.config.clone()).map_err(invalid)?;
        let stop = shutdown.child_token();
        let start_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        inner.run = Some(Run {
            engine,
            started: Instant::now(),
            start_unix,
            stop: stop.clone(),
        });
        Ok(Some(stop))
    }

    /// Keeps a run's task (forgetting those that have ended).
    fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Waits until every run's task has ended (they end on shutdown), so that what they
    /// made is in the hub before its last publication and store.
    pub(crate) async fn finished(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "generator task failed");
            }
        }
    }

    /// Ends the run, if any.
    fn stop(&self) {
        let mut inner = self.lock();
        if let Some(run) = inner.run.take() {
            run.stop.cancel();
            inner.made_before += run.engine.generated();
        }
    }

    /// The events due now, or `None` when the run `stop` belongs to has ended.
    fn take_due(&self, stop: &CancellationToken) -> Option<Vec<traffic::Event>> {
        if stop.is_cancelled() {
            // This task's run has ended (another may have started since: not ours).
            return None;
        }
        let mut inner = self.lock();
        let run = inner.run.as_mut()?;
        let elapsed = run.started.elapsed().as_secs_f64();
        Some(run.engine.due(elapsed, run.start_unix, MAX_PER_TICK))
    }

    /// Adds `burst` to the settings in force, from the running generator's next whole second
    /// for `secs` seconds; bursts that have ended make room.
    fn add_burst(&self, request: &BurstRequest) -> Result<(), ApiError> {
        let mut inner = self.lock();
        let Some(run) = &inner.run else {
            return Err(ApiError::Conflict(
                "the generator is not running: start it first (POST /api/generator/start)".into(),
            ));
        };
        let now = run.started.elapsed().as_secs_f64();
        let from = now.ceil() as u64;
        let mut config = inner.config.clone();
        config.bursts.retain(|b| (b.to_secs as f64) > now);
        config.bursts.push(ScriptedBurst {
            network: request.network_octets()?,
            share: request.share,
            from_secs: from,
            to_secs: from + request.secs,
        });
        if let Some(run) = &mut inner.run {
            run.engine.reconfigure(config.clone()).map_err(invalid)?;
        }
        inner.config = config;
        Ok(())
    }
}

/// The body of `GET /api/generator` (and of every change's answer).
#[derive(Debug, Serialize)]
pub struct GeneratorView {
    /// Whether it runs.
    running: bool,
    /// Unix seconds of the run's start (its first event's timestamp); null when stopped.
    started_at: Option<f64>,
    /// Seconds since the run's start (bursts count from it); null when stopped.
    elapsed_secs: Option<f64>,
    /// Events made by this run.
    generated: u64,
    /// Events made by every run since the server started.
    generated_total: u64,
    /// The settings in force.
    config: LiveConfig,
    /// What the settings may be.
    limits: Limits,
}

/// Bounds of the settings, for the page.
#[derive(Debug, Serialize)]
struct Limits {
    max_rate: f64,
    max_places: u32,
    max_bursts: usize,
    max_burst_secs: u64,
}

/// The body of `PUT /api/generator`: the settings to change; the others stay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    rate: Option<f64>,
    seed: Option<u64>,
    sources: Option<u32>,
    networks: Option<u32>,
    places: Option<u32>,
    protocols: Option<std::collections::BTreeMap<String, f64>>,
    bytes: Option<std::collections::BTreeMap<u64, f64>>,
    bytes_by_protocol:
        Option<std::collections::BTreeMap<String, std::collections::BTreeMap<u64, f64>>>,
    suspicious_share: Option<f64>,
    bursts: Option<Vec<ScriptedBurst>>,
}

impl Update {
    fn applied_to(self, mut config: LiveConfig) -> LiveConfig {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(value) = self.$field {
                    config.$field = value;
                }
            )*};
        }
        set!(
            rate,
            seed,
            sources,
            networks,
            places,
            protocols,
            bytes,
            bytes_by_protocol,
            suspicious_share,
            bursts
        );
        config
    }
}

/// The body of `POST /api/generator/burst` (every field optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BurstRequest {
    /// `A.B.C.0/24`.
    network: String,
    /// Share of all traffic, 0 to 1.
    share: f64,
    /// How long, seconds.
    secs: u64,
}

impl Default for BurstRequest {
    fn default() -> Self {
        let [a, b, c] = DEFAULT_BURST_NETWORK;
        Self {
            network: format!("{a}.{b}.{c}.0/24"),
            share: DEFAULT_BURST_SHARE,
            secs: DEFAULT_BURST_SECS,
        }
    }
}

impl BurstRequest {
    /// Checks the request; the network's first three octets.
    fn network_octets(&self) -> Result<[u8; 3], ApiError> {
        let bad = |field: &str, message: String| ApiError::InvalidSetting {
            message: format!("{field}: {message}"),
            field: field.to_owned(),
        };
        if !(0.0..=1.0).contains(&self.share) {
            return Err(bad(
                "share",
                format!("{} is out of range 0..=1", self.share),
            ));
        }
        if !(1..=MAX_BURST_SECS).contains(&self.secs) {
            return Err(bad(
                "secs",
                format!("{} is out of range 1..={MAX_BURST_SECS}", self.secs),
            ));
        }
        // The burst syntax checks the network.
        format!("{}:0:0-1", self.network.trim())
            .parse::<ScriptedBurst>()
            .map(|b| b.network)
            .map_err(|_| {
                bad(
                    "network",
                    format!(
                        "{:?} is not a /24 network like 203.0.113.0/24",
                        self.network
                    ),
                )
            })
    }
}

fn invalid(e: live::LiveConfigError) -> ApiError {
    ApiError::InvalidSetting {
        message: e.to_string(),
        field: e.field,
    }
}

/// Reads a small JSON body; an empty one is `T::default()`.
fn read<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    check_json_content_type(headers)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    parse(body)
}

/// `GET /api/generator`: whether it runs, its settings and limits.
pub async fn show(State(state): State<AppState>) -> Json<GeneratorView> {
    Json(state.generator.view())
}

/// `PUT /api/generator`: changes the settings it names (the others stay), taking effect at
/// the running generator's next tick; a setting out of range, of the wrong type or unknown is
/// a 422 naming it, and changes nothing.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<GeneratorView>, ApiError> {
    let update: Update = read(&headers, &body)?;
    let config = update.applied_to(state.generator.view().config);
    state.generator.set_config(config).map_err(invalid)?;
    tracing::info!(config = ?state.generator.view().config, "generator settings changed");
    Ok(Json(state.generator.view()))
}

/// `POST /api/generator/start`: starts it with the settings in force (running already: no
/// change).
pub async fn start(State(state): State<AppState>) -> Result<Json<GeneratorView>, ApiError> {
    if let Some(stop) = state.generator.start(&state.shutdown)? {
        tracing::info!("generator started");
        state
            .generator
            .track(tokio::spawn(run(state.clone(), stop)));
    }
    Ok(Json(state.generator.view()))
}

/// `POST /api/generator/stop`: stops it (stopped already: no change).
pub async fn stop(State(state): State<AppState>) -> Json<GeneratorView> {
    state.generator.stop();
    tracing::info!("generator stopped");
    Json(state.generator.view())
}

/// `POST /api/generator/burst`: a burst from now on (`{"network", "share", "secs"}`, each
/// optional); 409 when the generator is not running.
pub async fn burst(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<GeneratorView>, ApiError> {
    let request: BurstRequest = read(&headers, &body)?;
    state.generator.add_burst(&request)?;
    tracing::info!(?request, "generator burst added");
    Ok(Json(state.generator.view()))
}

/// The run's task: every tick, the due events into ingest, until the run is stopped or the
/// server shuts down.
async fn run(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Some(events) = state.generator.take_due(&stop) else {
            break;
        };
        if !events.is_empty() {
            ingest_events(&state, events).await;
        }
    }
    // A shutdown ends the run too: say so on GET (harmless if stopped already).
    if state.shutdown.is_cancelled() {
        state.generator.stop();
    }
}

#[cfg(test)]
mod tests;
