//! Questions about a past window of data time: aggregates over it and its events, paged.
//! Asked through a [`Reader`], a read-only handle that does not wait for the writer.

use serde::Serialize;

use crate::{Result, StoredEvent};

/// A window of data time, unix seconds: `from <= timestamp < to`; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Option<f64>,
    /// Exclusive end.
    pub to: Option<f64>,
}

/// Most timeline buckets a summary has: the bucket width grows with the range.
pub const MAX_BUCKETS: f64 = 600.0;

/// Aggregates over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeSummary {
    /// Events in the window.
    pub total: u64,
    /// Of which suspicious.
    pub suspicious: u64,
    /// Oldest and newest data time in the window (none when empty).
    pub first_timestamp: Option<f64>,
    /// Newest data time in the window.
    pub latest_timestamp: Option<f64>,
    /// The busiest places, most events first.
    pub top_places: Vec<RangePlace>,
    /// The busiest countries, most events first.
    pub top_countries: Vec<RangeCountry>,
    /// Counts per bucket of data time.
    pub timeline: RangeTimeline,
}

/// A place's count in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangePlace {
    /// The place's key (as in the stats and hits).
    pub key: u64,
    /// City name.
    pub city: String,
    /// ISO code of its country.
    pub country_code: String,
    /// Events there.
    pub count: u64,
    /// Of which suspicious.
    pub suspicious: u64,
}

/// A country's count in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeCountry {
    /// ISO code.
    pub country_code: String,
    /// English name.
    pub country: String,
    /// Events there.
    pub count: u64,
    /// Of which suspicious.
    pub suspicious: u64,
}

/// The window's timeline: `buckets[i]` counts `[start + i*bucket_secs, start + (i+1)*bucket_secs)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeTimeline {
    /// Data time of the first bucket's start.
    pub start: f64,
    /// Width of a bucket in seconds (whole seconds, at least 1).
    pub bucket_secs: u64,
    /// (events, suspicious) per bucket; empty buckets included.
    pub buckets: Vec<(u64, u64)>,
    /// Index of the busiest bucket, if any event.
    pub peak: Option<usize>,
}

/// Read-only access to the history, for range questions. Each request opens its own.
pub trait Reader: Send {
    /// Aggregates over `range`, with the `top` busiest places and countries.
    fn summary(&self, range: TimeRange, top: usize) -> Result<RangeSummary>;

    /// Up to `limit` events in `range` with `seq > after`, in sequence order.
    fn events(&self, range: TimeRange, after: u64, limit: usize) -> Result<Vec<StoredEvent>>;
}

/// Opens [`Reader`]s on one store (shared by request handlers).
pub trait OpenReader: Send + Sync {
    /// A new read-only handle.
    fn open_reader(&self) -> Result<Box<dyn Reader>>;
}

/// Bucket width (whole seconds) so that `[first, latest]` fits in [`MAX_BUCKETS`].
pub fn bucket_secs(first: f64, latest: f64) -> u64 {
    (((latest - first) / MAX_BUCKETS).floor() as u64 + 1).max(1)
}
