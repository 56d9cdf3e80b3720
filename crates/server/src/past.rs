//! `GET /api/history`: any past window of data time, answered from the history: aggregates
//! over the window and its hits, paged by sequence number.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use history::range::{Filter, RangeSummary, TimeRange};
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
    /// The network (AS number) of `ip`, when it was known as the event arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    /// That network's holder.
    #[serde(skip_serializing_if = "Option::is_none")]
    as_name: Option<String>,
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
            asn: stored.network.as_ref().map(|n| n.0),
            as_name: stored.network.map(|n| n.1),
        }
    }
}

/// `GET /api/history?from=&to=&after=&limit=&top=`: `from`/`to` in unix seconds of data
/// time (`from <= timestamp < to`, either may be left out), `after` a seq (0), `limit` hits
/// per page (1..=10000, 1000), `top` places and countries (0..=1000, `--top`), and the
/// filters of [`filter`] (summary and hits alike).
pub async fn history(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<History>, ApiError> {
    let readers = state.readers.clone().ok_or(ApiError::NoHistory)?;
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
    let range = time_range(&query)?;
    let filter = filter(&query)?;
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
            reader.summary(range, &filter, top)?,
            reader.events(range, &filter, after, limit)?,
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

/// The filters of a query, as the page has them: `suspicious=true|false`, `country=FR`
/// (ISO code), `protocol=TCP`, `status=4xx` (a status class, `1xx`..`9xx`).
fn filter(query: &HashMap<String, String>) -> Result<Filter, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match query.get(name) {
            None => Ok(None),
            Some(v) if v.is_empty() || v.len() > 64 => Err(ApiError::BadQuery(format!(
                "{name} must be 1 to 64 characters, got {v:?}"
            ))),
            Some(v) => Ok(Some(v.clone())),
        }
    };
    let suspicious = match query.get("suspicious").map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::BadQuery(format!(
                "suspicious must be true or false, got {other:?}"
            )));
        }
    };
    let status_class = match query.get("status") {
        None => None,
        Some(v) => {
            let class = v
                .strip_suffix("xx")
                .and_then(|d| d.parse::<u16>().ok())
                .filter(|d| (1..=9).contains(d) && v.len() == 3);
            Some(class.ok_or_else(|| {
                ApiError::BadQuery(format!("status must be a class like 4xx, got {v:?}"))
            })?)
        }
    };
    Ok(Filter {
        suspicious,
        country: text("country")?,
        protocol: text("protocol")?,
        status_class,
    })
}

/// `from` and `to` of a query: finite numbers, `from` not after `to`, either left out.
fn time_range(query: &HashMap<String, String>) -> Result<TimeRange, ApiError> {
    let bound = |name: &str| -> Result<Option<f64>, ApiError> {
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
    let range = TimeRange {
        from: bound("from")?,
        to: bound("to")?,
    };
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from > to
    {
        return Err(ApiError::BadQuery(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    Ok(range)
}

/// Events read from the store per step of an export (bounds its memory).
const EXPORT_PAGE: usize = 5_000;

/// The CSV header of an export: the course's columns, then the optional ones (what our own
/// sender reads).
pub const EXPORT_CSV_HEADER: &str =
    "ip,latitude,longitude,timestamp,suspicious,bytes,protocol,status,method,path,dest_ip\n";

/// `GET /api/history/export?from=&to=&format=csv|jsonl` (and the filters of [`filter`]):
/// every stored event of the window that passes them
/// in sequence order, streamed page by page (constant memory whatever the window). CSV
/// (default) has [`EXPORT_CSV_HEADER`]'s columns and is read by the sender as it is; JSON
/// lines has one hit per line as `/api/history` lists them.
pub async fn export(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let readers = state.readers.clone().ok_or(ApiError::NoHistory)?;
    let range = time_range(&query)?;
    let filter = filter(&query)?;
    let csv = match query.get("format").map(String::as_str) {
        None | Some("csv") => true,
        Some("jsonl") => false,
        Some(other) => {
            return Err(ApiError::BadQuery(format!(
                "format must be csv or jsonl, got {other:?}"
            )));
        }
    };
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let send = |chunk: Result<Vec<u8>, std::io::Error>| {
            chunks.blocking_send(chunk.map(bytes::Bytes::from)).is_ok()
        };
        let reader = match readers.open_reader() {
            Ok(reader) => reader,
            Err(e) => {
                send(Err(std::io::Error::other(e)));
                return;
            }
        };
        if csv && !send(Ok(EXPORT_CSV_HEADER.as_bytes().to_vec())) {
            return;
        }
        let mut after = 0;
        loop {
            let page = match reader.events(range, &filter, after, EXPORT_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    // The client sees the body end early (an aborted transfer).
                    tracing::error!(error = %e, "export failed");
                    send(Err(std::io::Error::other(e)));
                    return;
                }
            };
            let Some(last) = page.last().map(|e| e.seq) else {
                return;
            };
            let mut out = Vec::with_capacity(page.len() * 96);
            for stored in page {
                if csv {
                    csv_row(&mut out, &stored.event);
                } else {
                    // Plain fields into memory: cannot fail.
                    let _ = serde_json::to_writer(&mut out, &PastHit::from(stored));
                    out.push(b'\n');
                }
            }
            if !send(Ok(out)) {
                return; // the client went away
            }
            after = last;
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ));
    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", "history.csv")
    } else {
        ("application/x-ndjson", "history.jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// One CSV row in [`EXPORT_CSV_HEADER`]'s columns; absent values are empty cells. Text is
/// written as it is when our reader takes it back unchanged (no comma, no quote first, no
/// space at either end; a quote inside an unquoted cell is data), quoted otherwise (a quote
/// doubled, as CSV has it). A line break inside a text value cannot be represented in our
/// CSV (a line is a row): it is written as a space (JSON lines keep it).
fn csv_row(out: &mut Vec<u8>, e: &Event) {
    use std::io::Write;
    let text = |out: &mut Vec<u8>, value: Option<&str>| {
        let Some(value) = value else { return };
        let value = value.replace(['\r', '\n'], " ");
        let plain = !value.contains(',')
            && !value.starts_with('"')
            && value.trim_matches([' ', '\t']) == value;
        if plain {
            out.extend_from_slice(value.as_bytes());
        } else {
            out.push(b'"');
            out.extend_from_slice(value.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        }
    };
    let number = |out: &mut Vec<u8>, value: Option<String>| {
        if let Some(value) = value {
            out.extend_from_slice(value.as_bytes());
        }
    };
    // Writing into memory cannot fail.
    let _ = write!(out, "{},", e.ip);
    number(out, e.latitude.map(|v| v.to_string()));
    out.push(b',');
    number(out, e.longitude.map(|v| v.to_string()));
    let _ = write!(out, ",{},{},", e.timestamp, u8::from(e.suspicious));
    number(out, e.bytes.map(|v| v.to_string()));
    out.push(b',');
    text(out, e.protocol.as_deref());
    out.push(b',');
    number(out, e.status.map(|v| v.to_string()));
    out.push(b',');
    text(out, e.method.as_deref());
    out.push(b',');
    text(out, e.path.as_deref());
    out.push(b',');
    number(out, e.dest_ip.map(|v| v.to_string()));
    out.push(b'\n');
}
