//! `GET /api/history`: any past window of data time, answered from the history: aggregates
//! over the window and its hits, paged by sequence number.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use history::range::{RangeSummary, TimeRange};
use history::{Located, StoredEvent};
use serde::Serialize;
use traffic::Event;

use crate::AppState;
use crate::error::ApiError;

/// Hits per page when `limit` is not given.
const DEFAULT_LIMIT: usize = 1000;
/// Most hits per page.
const MAX_LIMIT: usize = 10_000;

/// The answer.
#[derive(Debug, Serialize)]
pub struct History {
    /// The window asked for (null: open).
    from: Option<f64>,
    /// Its exclusive end (null: open).
    to: Option<f64>,
    /// Aggregates over the whole window.
    summary: RangeSummary,
    /// Hits of the window with `seq > after`, in sequence order, at most `limit`.
    hits: Vec<PastHit>,
    /// Pass as `after` for the next page; null when this page is the last.
    next_after: Option<u64>,
}

/// A stored hit: its id, the event's fields, when it arrived and where it was placed.
#[derive(Debug, Serialize)]
struct PastHit {
    seq: u64,
    #[serde(flatten)]
    event: Event,
    /// Server wall clock at receipt, unix milliseconds.
    received: u64,
    /// `"event"`, `"ip"`, or null (then `unlocated` says why).
    located: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unlocated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    place_key: Option<u64>,
}

impl From<StoredEvent> for PastHit {
    fn from(stored: StoredEvent) -> Self {
        let (located, place_key, unlocated) = match stored.located {
            Located::Event(key) => (Some("event"), Some(key), None),
            Located::Ip { place, .. } => (Some("ip"), Some(place), None),
            Located::Unlocated(reason) => (None, None, Some(reason)),
        };
        Self {
            seq: stored.seq,
            event: stored.event,
            received: stored.received_ms,
            located,
            unlocated,
            place_key,
        }
    }
}

/// `GET /api/history?from=&to=&after=&limit=&top=`: `from`/`to` in unix seconds of data
/// time (`from <= timestamp < to`, either may be left out), `after` a seq (0), `limit` hits
/// per page (1..=10000, 1000), `top` places and countries (0..=1000, `--top`).
pub async fn history(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<History>, ApiError> {
    let readers = state.readers.clone().ok_or(ApiError::NoHistory)?;
    let number = |name: &str| -> Result<Option<f64>, ApiError> {
        query
            .get(name)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        ApiError::BadQuery(format!("{name}: {v:?} is not a finite number"))
                    })
            })
            .transpose()
    };
    let whole = |name: &str, default: usize, max: usize, min: usize| -> Result<usize, ApiError> {
        query.get(name).map_or(Ok(default), |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::BadQuery(format!("{name} must be in {min}..={max}, got {v:?}"))
                })
        })
    };
    let range = TimeRange {
        from: number("from")?,
        to: number("to")?,
    };
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from > to
    {
        return Err(ApiError::BadQuery(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    let after = match query.get("after") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::BadQuery(format!("after: {v:?} is not a sequence number")))?,
    };
    let limit = whole("limit", DEFAULT_LIMIT, MAX_LIMIT, 1)?;
    let top = whole("top", state.config.top, 1000, 0)?;
    let (summary, hits) = tokio::task::spawn_blocking(move || -> history::Result<_> {
        let reader = readers.open_reader()?;
        Ok((
            reader.summary(range, top)?,
            reader.events(range, after, limit)?,
        ))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("while asking the history")))?
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("while asking the history")))?;
    let next_after = (hits.len() == limit)
        .then(|| hits.last().map(|h| h.seq))
        .flatten();
    Ok(Json(History {
        from: range.from,
        to: range.to,
        summary,
        hits: hits.into_iter().map(PastHit::from).collect(),
        next_after,
    }))
}
