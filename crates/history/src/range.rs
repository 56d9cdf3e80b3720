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

/// Which events of a window count, as the page filters them; `None` takes all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// Only suspicious (`true`) or only normal (`false`) events.
    pub suspicious: Option<bool>,
    /// Only events placed in this country (ISO code); unplaced events never match.
    pub country: Option<String>,
    /// Only events with this protocol.
    pub protocol: Option<String>,
    /// Only events whose status is in this class (`2` for 200..=299).
    pub status_class: Option<u16>,
}

impl Filter {
    /// Whether `event`, placed in `country` (none: not placed), passes.
    pub fn matches(&self, event: &traffic::Event, country: Option<&str>) -> bool {
        self.suspicious.is_none_or(|s| s == event.suspicious)
            && self.country.as_deref().is_none_or(|c| country == Some(c))
            && self
                .protocol
                .as_deref()
                .is_none_or(|p| event.protocol.as_deref() == Some(p))
            && self
                .status_class
                .is_none_or(|c| event.status.map(|s| s / 100) == Some(c))
    }
}

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
    /// Aggregates over the events of `range` that pass `filter`, with the `top` busiest
    /// places and countries.
    fn summary(&self, range: TimeRange, filter: &Filter, top: usize) -> Result<RangeSummary>;

    /// Up to `limit` events of `range` that pass `filter`, with `seq > after`, in sequence
    /// order.
    fn events(
        &self,
        range: TimeRange,
        filter: &Filter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;
}

/// Opens [`Reader`]s on one store (shared by request handlers).
pub trait OpenReader: Send + Sync {
    /// A new read-only handle.
    fn open_reader(&self) -> Result<Box<dyn Reader>>;
}

/// Bucket widths a timeline uses below a day (then whole days): round numbers, so that
/// buckets of a minute or more are whole minutes (or hours) and answer from rollups.
const WIDTHS: &[u64] = &[
    1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600,
    43200, 86400,
];

/// Bucket width (whole seconds, one of a few round numbers) so that `[first, latest]` fits
/// in [`MAX_BUCKETS`] buckets aligned to the width (see [`timeline_start`]).
pub fn bucket_secs(first: f64, latest: f64) -> u64 {
    // Aligning the start can add a bucket at each end.
    let least = ((latest - first).max(0.0) / (MAX_BUCKETS - 2.0)).ceil();
    WIDTHS
        .iter()
        .copied()
        .find(|&w| w as f64 >= least)
        .unwrap_or_else(|| (least / 86400.0).ceil() as u64 * 86400)
        .max(1)
}

/// Where a timeline of `width`-second buckets starts when its first event is at `first`:
/// a multiple of the width (so minute-wide buckets are whole minutes).
pub fn timeline_start(first: f64, width: u64) -> f64 {
    (first / width as f64).floor() * width as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_fits_in_600_aligned_buckets_of_a_round_width() {
        for (first, latest) in [
            (0.0, 0.0),
            (10.5, 11.0),
            (1_000_000.7, 1_000_599.9),
            (1_736_900_000.3, 1_736_986_399.9),
            (1_736_900_000.0, 1_736_900_000.0 + 86400.0 * 365.0),
            (-5.0, 7.0e9),
        ] {
            let width = bucket_secs(first, latest);
            let start = timeline_start(first, width);
            let len = ((latest - start) / width as f64).floor() + 1.0;
            assert!(len <= MAX_BUCKETS, "{first}..{latest}: {len} of {width}s");
            assert!(start <= first && first < start + width as f64);
            assert!(width < 60 || width.is_multiple_of(60), "{width}");
            assert!(width < 3600 || 86400 % width == 0 || width.is_multiple_of(86400));
        }
        assert_eq!(bucket_secs(0.0, 100.0), 1);
        assert_eq!(bucket_secs(0.0, 86400.0), 300);
    }
}
