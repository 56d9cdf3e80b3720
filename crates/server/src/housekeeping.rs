//! Retention and daily summaries: the work of the `retention` and `daily-summary` jobs, the
//! retention setting an admin changes at runtime (`GET`/`PUT /api/retention`), and the daily
//! summaries (`GET /api/history/daily`).
//!
//! Retention deletes stored events whose data time is older than the setting, measured back
//! from the newest stored data time or now, whichever is earlier (a replayed file from last
//! year keeps its last days; one event stamped far in the future deletes nothing extra).
//! The store keeps the hour rollups ([`history::Store::delete_before`]); the live aggregates
//! are then rebuilt from what is stored, so the totals on the page equal what a restart
//! would rebuild.
//!
//! Daily summaries are derived from the hour rollups (a whole UTC day of data time answers
//! from them alone, before or after retention) and kept in `daily-summaries.json` in the
//! data directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use history::StoredEvent;
use history::range::{Filter, TimeRange};
use serde::{Deserialize, Serialize};
use traffic::{Aggregates, Place};

use crate::AppState;
use crate::error::ApiError;
use crate::geo::{Placed, Unlocated};
use crate::hub::{Hub, unix_ms};

/// Shortest and longest retention (and request-log age).
const SPAN: std::ops::RangeInclusive<u64> = 60..=36_500 * 86_400;
/// The file of the daily summaries in the data directory.
pub const DAILY_FILE: &str = "daily-summaries.json";
/// Days summarised per run at most (the rest in later runs), newest first.
const DAYS_PER_RUN: usize = 400;
/// Days at the end of the data recomputed on every run (they may still grow).
const OPEN_DAYS: i64 = 2;
/// Countries kept per day.
const DAY_COUNTRIES: usize = 5;
/// Stored events read per step when the live aggregates are rebuilt.
const REBUILD_PAGE: usize = 20_000;
const DAY: f64 = 86_400.0;

/// Reads a span `<number><unit>`, unit `s`, `m`, `h` or `d` (`30d`), within 1m..=36500d;
/// errors name `flag`.
///
/// # Errors
/// Anything else.
pub fn parse_span(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let unit = match text.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => anyhow::bail!(
            "{flag} must be a whole number with a unit s, m, h or d (e.g. 30d), got {text:?}"
        ),
    };
    let number: u64 = text[..text.len() - 1].parse().map_err(|_| {
        anyhow::anyhow!(
            "{flag} must be a whole number with a unit s, m, h or d (e.g. 30d), got {text:?}"
        )
    })?;
    let secs = number.saturating_mul(unit);
    anyhow::ensure!(
        SPAN.contains(&secs),
        "{flag} must be between 1m and 36500d, got {text:?}"
    );
    Ok(Duration::from_secs(secs))
}

/// A span in its largest whole unit (`2592000` s is `30d`).
pub fn format_span(span: Duration) -> String {
    let secs = span.as_secs();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm')] {
        if secs >= unit && secs.is_multiple_of(unit) {
            return format!("{}{name}", secs / unit);
        }
    }
    format!("{secs}s")
}

/// One UTC day of data time, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaySummary {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Its start, unix seconds.
    pub start: i64,
    /// Events that day.
    pub events: u64,
    /// Of which suspicious.
    pub suspicious: u64,
    /// The busiest countries, most events first.
    pub top_countries: Vec<DayCountry>,
}

/// A country's count in a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayCountry {
    /// ISO code.
    pub country_code: String,
    /// English name.
    pub country: String,
    /// Events.
    pub count: u64,
    /// Of which suspicious.
    pub suspicious: u64,
}

/// The retention setting and the daily summaries.
#[derive(Debug, Default)]
pub struct Housekeeping {
    retain: Mutex<Option<Duration>>,
    /// By day start; days without events are kept too (so they are not asked again).
    daily: Mutex<HashMap<i64, DaySummary>>,
    /// Where the summaries are saved (none without a history).
    daily_path: Option<PathBuf>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Housekeeping {
    /// Retention `retain` (none: off), summaries kept in memory only.
    pub fn new(retain: Option<Duration>) -> Self {
        Self {
            retain: Mutex::new(retain),
            ..Self::default()
        }
    }

    /// The same, with the summaries saved in (and loaded from) `dir`'s [`DAILY_FILE`]. A
    /// damaged file is logged and started afresh (the summaries are derived data).
    pub fn in_dir(retain: Option<Duration>, dir: &std::path::Path) -> Self {
        let path = dir.join(DAILY_FILE);
        let daily = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<DaySummary>>(&bytes) {
                Ok(days) => days.into_iter().map(|d| (d.start, d)).collect(),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "daily summaries unreadable; recomputed");
                    HashMap::new()
                }
            },
            Err(_) => HashMap::new(),
        };
        Self {
            retain: Mutex::new(retain),
            daily: Mutex::new(daily),
            daily_path: Some(path),
        }
    }

    /// The retention now (none: off).
    pub fn retain(&self) -> Option<Duration> {
        *lock(&self.retain)
    }

    /// Changes the retention (none: off); `PUT /api/retention` also saves it.
    pub fn set_retain(&self, retain: Option<Duration>) {
        *lock(&self.retain) = retain;
    }

    /// The days with events, newest first.
    pub fn days(&self) -> Vec<DaySummary> {
        let mut days: Vec<DaySummary> = lock(&self.daily)
            .values()
            .filter(|d| d.events > 0)
            .cloned()
            .collect();
        days.sort_by_key(|d| std::cmp::Reverse(d.start));
        days
    }
}

/// The `retention` job: deletes what is older than the setting, then rebuilds the live
/// aggregates from what is left. Says what it deleted.
///
/// # Errors
/// The store failed, or the writer has stopped.
pub fn run_retention(state: &AppState) -> anyhow::Result<String> {
    let Some(retain) = state.housekeeping.retain() else {
        return Ok("retention is off (no --retain)".to_owned());
    };
    let (Some(writer), Some(readers)) = (state.history.clone(), state.readers.clone()) else {
        return Ok("nothing to do: no history (--store memory)".to_owned());
    };
    let newest = readers
        .open_reader()?
        .summary(TimeRange::default(), &Filter::default(), 0)
        .context("while finding the newest data time")?
        .latest_timestamp;
    let Some(newest) = newest else {
        return Ok("nothing stored".to_owned());
    };
    let now = unix_ms(SystemTime::now()) as f64 / 1000.0;
    let cutoff = newest.min(now) - retain.as_secs_f64();
    let (deleted, through) = writer.maintain_blocking(move |store| -> history::Result<_> {
        let deleted = store.delete_before(cutoff)?;
        Ok((deleted, store.last_seq()?))
    })??;
    let when = chrono::DateTime::from_timestamp(cutoff.floor() as i64, 0)
        .map_or_else(|| cutoff.to_string(), |t| t.to_rfc3339());
    if deleted == 0 {
        return Ok(format!("deleted 0 events (none older than {when})"));
    }
    let rebuilt = rebuild_live(state, &writer, &*readers, through)?;
    Ok(format!(
        "deleted {deleted} events older than {when}{}",
        if rebuilt {
            "; live totals rebuilt from the store"
        } else {
            "; live totals not rebuilt (the publisher fell behind), a restart will"
        }
    ))
}

/// Counts `stored` into `aggregates` as a restart would.
fn count(
    aggregates: &mut Aggregates,
    places: &HashMap<u64, Arc<Place>>,
    stored: StoredEvent,
    (now, now_ms): (std::time::Instant, u64),
) {
    let placed = crate::persist::placed(places, stored.located)
        .unwrap_or(Placed::Unlocated(Unlocated::NotFound));
    let received = now
        .checked_sub(Duration::from_millis(
            now_ms.saturating_sub(stored.received_ms),
        ))
        .unwrap_or(now);
    aggregates.record(&stored.event, placed.location(), received);
    if let Some((asn, name)) = &stored.network {
        aggregates.record_network(*asn, name, &stored.event);
    }
}

fn place_map(places: Vec<Place>) -> HashMap<u64, Arc<Place>> {
    places.into_iter().map(|p| (p.key, Arc::new(p))).collect()
}

/// Rebuilds the hub's aggregates from the store after a deletion: the events up to
/// `through` from a read-only handle (commits go on meanwhile), then, on the writer (so
/// nothing commits while it runs), the few committed since, and the swap once everything
/// committed is published. Returns whether the swap happened.
fn rebuild_live(
    state: &AppState,
    writer: &crate::persist::Writer,
    readers: &dyn history::range::OpenReader,
    through: u64,
) -> anyhow::Result<bool> {
    let hub: Arc<Hub> = Arc::clone(&state.hub);
    let mut aggregates = hub.new_aggregates();
    let clock = (std::time::Instant::now(), unix_ms(SystemTime::now()));
    let reader = readers.open_reader()?;
    let places = place_map(writer.maintain_blocking(|store| store.places())??);
    let mut after = 0;
    'pages: loop {
        let page = reader.events(
            TimeRange::default(),
            &Filter::default(),
            after,
            REBUILD_PAGE,
        )?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for stored in page {
            if stored.seq > through {
                break 'pages;
            }
            count(&mut aggregates, &places, stored, clock);
        }
        after = last;
    }
    drop(reader);
    writer
        .maintain_blocking(move |store| -> history::Result<bool> {
            let last = store.last_seq()?;
            // Commits are published by another thread, in order: wait (bounded) until it has
            // published everything committed, so the swap counts nothing twice.
            for _ in 0..5_000 {
                if hub.published().0 >= last {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if last > through {
                let places = place_map(store.places()?);
                store.scan(through, &mut |stored| {
                    if stored.seq <= last {
                        count(&mut aggregates, &places, stored, clock);
                    }
                })?;
            }
            Ok(hub.replace_aggregates(aggregates, last))
        })?
        .map_err(Into::into)
}

/// The `daily-summary` job: summarises the days of stored data time not summarised yet and
/// the last [`OPEN_DAYS`] (newest first, at most [`DAYS_PER_RUN`] a run), and saves them.
///
/// # Errors
/// The store failed, or the file could not be written.
pub fn run_daily(state: &AppState) -> anyhow::Result<String> {
    let Some(readers) = state.readers.clone() else {
        return Ok("nothing to do: no history (--store memory)".to_owned());
    };
    let reader = readers.open_reader()?;
    let all = reader.summary(TimeRange::default(), &Filter::default(), 0)?;
    let (Some(first), Some(latest)) = (all.first_timestamp, all.latest_timestamp) else {
        return Ok("nothing stored".to_owned());
    };
    let (first_day, last_day) = ((first / DAY).floor() as i64, (latest / DAY).floor() as i64);
    let hk = &state.housekeeping;
    let wanted: Vec<i64> = {
        let known = lock(&hk.daily);
        (first_day..=last_day)
            .rev()
            .filter(|&d| d > last_day - OPEN_DAYS || !known.contains_key(&(d * 86_400)))
            .collect()
    };
    let mut done = 0;
    for &day in wanted.iter().take(DAYS_PER_RUN) {
        let start = day * 86_400;
        let range = TimeRange {
            from: Some(start as f64),
            to: Some(start as f64 + DAY),
        };
        let summary = reader.summary(range, &Filter::default(), DAY_COUNTRIES)?;
        let name = chrono::DateTime::from_timestamp(start, 0)
            .map_or_else(|| start.to_string(), |t| t.format("%Y-%m-%d").to_string());
        let summary = DaySummary {
            day: name,
            start,
            events: summary.total,
            suspicious: summary.suspicious,
            top_countries: summary
                .top_countries
                .into_iter()
                .map(|c| DayCountry {
                    country_code: c.country_code,
                    country: c.country,
                    count: c.count,
                    suspicious: c.suspicious,
                })
                .collect(),
        };
        lock(&hk.daily).insert(start, summary);
        done += 1;
    }
    if let Some(path) = &hk.daily_path {
        let mut days: Vec<DaySummary> = lock(&hk.daily).values().cloned().collect();
        days.sort_by_key(|d| d.start);
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, serde_json::to_vec(&days)?)
            .with_context(|| format!("while writing {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("while replacing {}", path.display()))?;
    }
    let left = wanted.len().saturating_sub(done);
    Ok(if left > 0 {
        format!("summarised {done} days ({left} more in the next runs)")
    } else {
        format!("summarised {done} days")
    })
}

/// The retention setting, as the API shows and takes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Retention {
    /// `30d`, `12h`, ...; null: off.
    pub retain: Option<String>,
    /// The same in seconds (null: off); ignored in a `PUT`.
    #[serde(default)]
    pub retain_secs: Option<u64>,
}

fn retention_view(state: &AppState) -> Retention {
    let retain = state.housekeeping.retain();
    Retention {
        retain: retain.map(format_span),
        retain_secs: retain.map(|d| d.as_secs()),
    }
}

/// `GET /api/retention` (admin): the retention now.
pub async fn retention(State(state): State<AppState>) -> Json<Retention> {
    Json(retention_view(&state))
}

/// `PUT /api/retention` (admin): `{"retain": "30d"}`, or `{"retain": null}` for off; saved
/// in `settings.json` and in force after a restart while `--retain` is unchanged. Takes
/// effect at the retention job's next run (or `POST /api/jobs/retention/run`).
pub async fn set_retention(
    State(state): State<AppState>,
    body: Result<Json<Retention>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Retention>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let retain = body
        .retain
        .as_deref()
        .map(|text| parse_span("retain", text))
        .transpose()
        .map_err(|e| ApiError::InvalidSetting {
            message: format!("{e:#}"),
            field: "retain".to_owned(),
        })?;
    let _changing = match &state.settings {
        Some(settings) => Some(settings.changing().await),
        None => None,
    };
    state.housekeeping.set_retain(retain);
    tracing::info!(retain = ?retain.map(format_span), "retention changed");
    if let Some(settings) = &state.settings {
        settings.save_retention(retain).await.map_err(|e| {
            ApiError::Internal(
                e.context("the retention is in force, but could not be saved for the next start"),
            )
        })?;
    }
    Ok(Json(retention_view(&state)))
}

/// The answer of `GET /api/history/daily`.
#[derive(Serialize)]
pub struct Daily {
    /// Days with events, newest first.
    days: Vec<DaySummary>,
}

/// `GET /api/history/daily` (viewer): the daily summaries, newest first.
pub async fn daily(State(state): State<AppState>) -> Result<Json<Daily>, ApiError> {
    if state.readers.is_none() {
        return Err(ApiError::NoHistory);
    }
    Ok(Json(Daily {
        days: state.housekeeping.days(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Geocoder, call_json};
    use tokio_util::sync::CancellationToken;

    /// A midnight (UTC) of the data's clock.
    const BASE: f64 = 1_736_899_200.0;

    async fn stored_state(name: &str) -> (AppState, PathBuf, CancellationToken) {
        let dir = std::env::temp_dir().join(format!("housekeeping-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = Config::default_for_tests();
        config.store = crate::persist::StoreKind::Sqlite;
        config.data_dir = dir.clone();
        let state = AppState::open(config, Geocoder::shared(), CancellationToken::new())
            .await
            .unwrap();
        let stop = CancellationToken::new();
        state.spawn_background(stop.clone());
        (state, dir, stop)
    }

    /// Posts `count` events at `at + i * step` (Paris, every third suspicious).
    async fn post(state: &AppState, count: usize, at: f64, step: f64) {
        let events: Vec<String> = (0..count)
            .map(|i| {
                format!(
                    r#"{{"ip":"192.0.2.{}","latitude":48.8566,"longitude":2.3522,"timestamp":{},"suspicious":{}}}"#,
                    i % 250,
                    at + i as f64 * step,
                    i % 3 == 0
                )
            })
            .collect();
        let request = crate::from_loopback(
            axum::http::Request::post("/api/events")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(format!("[{}]", events.join(","))))
                .unwrap(),
        );
        let response = tower::ServiceExt::oneshot(crate::app(state.clone()), request)
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }

    async fn published(state: &AppState, seq: u64) {
        for _ in 0..2000 {
            if state.hub.published().0 >= seq {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("seq {seq} never published");
    }

    async fn in_blocking<T: Send + 'static>(
        state: &AppState,
        job: fn(&AppState) -> anyhow::Result<T>,
    ) -> T {
        let state = state.clone();
        tokio::task::spawn_blocking(move || job(&state))
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn retention_deletes_the_older_days_and_the_live_totals_then_equal_what_is_stored() {
        let (state, dir, stop) = stored_state("retention").await;
        // Day 0: 300 events over two hours; day 3: 200 events.
        post(&state, 300, BASE + 600.0, 20.0).await;
        post(&state, 200, BASE + 3.0 * DAY + 60.0, 30.0).await;
        published(&state, 500).await;
        assert_eq!(
            in_blocking(&state, run_retention).await,
            "retention is off (no --retain)"
        );
        state
            .housekeeping
            .set_retain(Some(Duration::from_secs(2 * 86_400)));
        let said = in_blocking(&state, run_retention).await;
        assert!(
            said.starts_with("deleted 300 events older than 2025-01-16T")
                && said.ends_with("live totals rebuilt from the store"),
            "{said}"
        );
        let (_, stats) = call_json(&state, "GET", "/api/stats", "").await;
        assert_eq!(stats["total"], 200, "the live totals are what is stored");
        let suspicious = (0..200).filter(|i| i % 3 == 0).count();
        assert_eq!(stats["suspicious"], suspicious);
        let (_, past) = call_json(&state, "GET", "/api/history?limit=1", "").await;
        assert_eq!(past["summary"]["total"], 500, "whole hours still count");
        let from = BASE + 3.0 * DAY;
        let (_, kept) = call_json(&state, "GET", &format!("/api/history?from={from}"), "").await;
        assert_eq!(kept["summary"]["total"], 200);
        // Nothing more to delete; new events go on from seq 501.
        assert!(
            in_blocking(&state, run_retention)
                .await
                .starts_with("deleted 0 events")
        );
        post(&state, 5, BASE + 3.0 * DAY + 7000.0, 1.0).await;
        published(&state, 505).await;
        let (_, stats) = call_json(&state, "GET", "/api/stats", "").await;
        assert_eq!(
            (stats["total"].as_u64(), stats["seq"].as_u64()),
            (Some(205), Some(505))
        );
        stop.cancel();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn daily_summaries_count_each_day_from_the_hour_rollups_and_outlive_retention() {
        let (state, dir, stop) = stored_state("daily").await;
        post(&state, 300, BASE + 600.0, 20.0).await;
        post(&state, 200, BASE + 3.0 * DAY + 60.0, 30.0).await;
        post(&state, 40, BASE + 4.0 * DAY - 20.0, 1.0).await;
        published(&state, 540).await;
        state
            .housekeeping
            .set_retain(Some(Duration::from_secs(86_400)));
        in_blocking(&state, run_retention).await;
        assert_eq!(in_blocking(&state, run_daily).await, "summarised 5 days");
        let (status, daily) = call_json(&state, "GET", "/api/history/daily", "").await;
        assert_eq!(status, 200);
        let days: Vec<(String, u64, u64)> = daily["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["day"].as_str().unwrap().to_owned(),
                    d["events"].as_u64().unwrap(),
                    d["suspicious"].as_u64().unwrap(),
                )
            })
            .collect();
        let s = |n: usize| (0..n).filter(|i| i % 3 == 0).count() as u64;
        assert_eq!(
            days,
            [
                ("2025-01-19".to_owned(), 20, s(40) - s(20)),
                ("2025-01-18".to_owned(), 220, s(200) + s(20)),
                ("2025-01-15".to_owned(), 300, s(300)),
            ],
            "newest first; day 0 deleted by retention and still summarised"
        );
        assert_eq!(daily["days"][2]["top_countries"][0]["country_code"], "FR");
        // Saved: a new state on the same directory lists them before any run.
        let saved = Housekeeping::in_dir(None, &dir);
        assert_eq!(saved.days().len(), 3);
        // Closed days are not summarised again; the last two always are.
        assert_eq!(in_blocking(&state, run_daily).await, "summarised 2 days");
        stop.cancel();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_admin_lists_pauses_resumes_and_runs_jobs_and_sets_retention_by_the_api() {
        let state = AppState::new(
            Config::default_for_tests(),
            Geocoder::shared(),
            CancellationToken::new(),
        );
        let (status, list) = crate::call_json(&state, "GET", "/api/jobs", "").await;
        // GET goes without credentials in call_json: the jobs are an admin's.
        assert_eq!(status, 401, "{list}");
        let names: Vec<String> = state
            .jobs
            .list()
            .iter()
            .map(|j| j.name.to_owned())
            .collect();
        assert_eq!(
            names,
            ["retention", "daily-summary", "request-log-rotation"]
        );
        let (status, job) = call_json(&state, "POST", "/api/jobs/retention/pause", "").await;
        assert_eq!(
            (status.as_u16(), job["paused"].as_bool()),
            (200, Some(true))
        );
        assert!(state.jobs.get("retention").unwrap().paused);
        let (status, job) = call_json(&state, "POST", "/api/jobs/retention/resume", "").await;
        assert_eq!(
            (status.as_u16(), job["paused"].as_bool()),
            (200, Some(false))
        );
        let (status, job) = call_json(&state, "POST", "/api/jobs/daily-summary/run", "").await;
        assert_eq!(
            (status.as_u16(), job["name"].as_str()),
            (200, Some("daily-summary"))
        );
        let (status, error) = call_json(&state, "POST", "/api/jobs/nope/pause", "").await;
        assert_eq!(status, 404, "{error}");
        let (status, set) = call_json(&state, "PUT", "/api/retention", r#"{"retain":"30d"}"#).await;
        assert_eq!(status, 200);
        assert_eq!(
            (set["retain"].as_str(), set["retain_secs"].as_u64()),
            (Some("30d"), Some(2_592_000))
        );
        assert_eq!(
            state.housekeeping.retain(),
            Some(Duration::from_secs(2_592_000))
        );
        let (status, error) =
            call_json(&state, "PUT", "/api/retention", r#"{"retain":"30 days"}"#).await;
        assert_eq!(
            (status.as_u16(), error["field"].as_str()),
            (422, Some("retain"))
        );
        assert_eq!(
            state.housekeeping.retain(),
            Some(Duration::from_secs(2_592_000)),
            "unchanged"
        );
        let (status, set) = call_json(&state, "PUT", "/api/retention", r#"{"retain":null}"#).await;
        assert_eq!((status.as_u16(), set["retain"].is_null()), (200, true));
        assert_eq!(state.housekeeping.retain(), None);
        let (status, _) = call_json(&state, "GET", "/api/history/daily", "").await;
        assert_eq!(status, 404, "no history with --store memory");
    }

    #[test]
    fn spans_take_a_whole_number_and_a_unit_and_errors_name_the_flag() {
        for (text, secs) in [
            ("30d", 30 * 86_400),
            ("12h", 43_200),
            ("90m", 5400),
            ("60s", 60),
        ] {
            assert_eq!(parse_span("--retain", text).unwrap().as_secs(), secs);
        }
        for bad in ["30", "d", "1.5d", "-1d", "30w", "59s", "36501d", ""] {
            let e = parse_span("--retain", bad).unwrap_err().to_string();
            assert!(e.starts_with("--retain must be"), "{bad}: {e}");
        }
        assert_eq!(format_span(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_span(Duration::from_secs(5400)), "90m");
        assert_eq!(format_span(Duration::from_secs(61)), "61s");
    }
}
