//! The data's clock and the per-second timeline of the current era: which events count on
//! it, how a lone outlier is kept off it, and how a confirmed jump re-bases it (see
//! [`TimelineSummary`] for the rules).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::AggregatesConfig;

/// Per-second counts of the data's clock: element `i` of each array is the second
/// `start + i`. The arrays end at the latest second of the current era (the clock).
///
/// How an event meets the clock `L` (window `W` = `timeline_secs`, tolerance
/// `T` = min(60, `W`) seconds):
/// - `L - T <= t <= L + W`: near. Counted in its second (a later one moves the clock on);
///   abandons any candidate era, whose held events become `outliers`.
/// - `L - W < t < L - T`: late. Counted in its second (it fits the window), and also taken
///   as a possible restart of the data (a looping replay): it joins or opens a candidate.
/// - `t > L + W` or `t <= L - W`: off the clock. Not counted on the timeline; held by a
///   candidate era (`pending`), `last_outlier` set to it.
///
/// An event joins the candidate when it is near the candidate's own clock; otherwise it
/// replaces it (the old one abandoned). A candidate with `era_events` events, or whose
/// newest event came `era_wall` after its first, is confirmed: the timeline is cleared (the
/// old era's counts stay in totals and places only), the candidate's events are counted on
/// it, the clock is theirs, and `clock_jumps` goes up by one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineSummary {
    /// Unix second of the first bucket (absent before any event).
    pub start: Option<i64>,
    /// Non-suspicious events per second.
    pub normal: Vec<u32>,
    /// Suspicious events per second.
    pub suspicious: Vec<u32>,
    /// Outliers that were older than the window when they arrived (also in `outliers`).
    pub too_old: u64,
    /// Events off the clock whose era was never confirmed: counted in totals and places and
    /// drawn, but not on the timeline.
    pub outliers: u64,
    /// Timestamp of the newest event that arrived off the clock (outlier or pending).
    pub last_outlier: Option<f64>,
    /// Events off the clock held by a candidate era, waiting for it to be confirmed (they
    /// then count on the new timeline) or abandoned (they then count as outliers).
    pub pending: u64,
    /// Times the clock moved to a confirmed new era, clearing the timeline.
    pub clock_jumps: u64,
}

/// Lateness, in seconds behind the clock, beyond which an event in the window may also be
/// the start of a replay over again.
const LATE_SECS: i64 = 60;

/// Where an event stands relative to the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Within the tolerance: part of the current era.
    Near,
    /// Behind by more than the tolerance but within the window: counted, and a candidate.
    Late,
    /// Beyond the window ahead.
    Ahead,
    /// At or beyond the window behind.
    Behind,
}

/// A possible new era of the data's clock.
#[derive(Debug)]
struct Candidate {
    /// Its own clock (latest second).
    latest: i64,
    /// Wall-clock arrival of its first event.
    since: Instant,
    /// Its events in arrival order, at most `era_events`: timestamp, suspicious, placement.
    events: Vec<(f64, bool, Placement)>,
}

/// A ring of per-second buckets covering the last `len` seconds of the data's clock, and
/// the clock itself with its candidate era.
#[derive(Debug)]
pub(super) struct Timeline {
    buckets: Vec<Bucket>,
    /// Earliest second counted in the current era.
    earliest: Option<i64>,
    /// The clock: latest second of the current era.
    latest: Option<i64>,
    pub(super) latest_timestamp: Option<f64>,
    pub(super) first_timestamp: Option<f64>,
    candidate: Option<Candidate>,
    era_events: usize,
    era_wall: Duration,
    too_old: u64,
    outliers: u64,
    last_outlier: Option<f64>,
    clock_jumps: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: i64,
    normal: u32,
    suspicious: u32,
}

const EMPTY: Bucket = Bucket {
    second: i64::MIN,
    normal: 0,
    suspicious: 0,
};

impl Timeline {
    pub(super) fn new(config: AggregatesConfig) -> Self {
        Self {
            buckets: vec![EMPTY; config.timeline_secs.max(1) as usize],
            earliest: None,
            latest: None,
            latest_timestamp: None,
            first_timestamp: None,
            candidate: None,
            era_events: config.era_events.max(1),
            era_wall: config.era_wall,
            too_old: 0,
            outliers: 0,
            last_outlier: None,
            clock_jumps: 0,
        }
    }

    fn len(&self) -> i64 {
        self.buckets.len() as i64
    }

    fn tolerance(&self) -> i64 {
        self.len().min(LATE_SECS)
    }

    /// Where `second` stands relative to a clock at `latest`.
    fn placement(&self, latest: i64, second: i64) -> Placement {
        if second > latest.saturating_add(self.len()) {
            Placement::Ahead
        } else if second <= latest.saturating_sub(self.len()) {
            Placement::Behind
        } else if second < latest - self.tolerance() {
            Placement::Late
        } else {
            Placement::Near
        }
    }

    pub(super) fn add(&mut self, timestamp: f64, suspicious: bool, received: Instant) {
        let second = timestamp.floor() as i64;
        let Some(latest) = self.latest else {
            self.count(timestamp, suspicious);
            return;
        };
        let placement = self.placement(latest, second);
        match placement {
            Placement::Near => {
                self.abandon();
                self.count(timestamp, suspicious);
                return;
            }
            Placement::Late => {
                self.count(timestamp, suspicious);
            }
            Placement::Ahead | Placement::Behind => self.last_outlier = Some(timestamp),
        }
        let joins = self
            .candidate
            .as_ref()
            .is_some_and(|c| self.placement(c.latest, second) == Placement::Near);
        if !joins {
            self.abandon();
        }
        let candidate = self.candidate.get_or_insert_with(|| Candidate {
            latest: second,
            since: received,
            events: Vec::new(),
        });
        candidate.latest = candidate.latest.max(second);
        candidate.events.push((timestamp, suspicious, placement));
        if candidate.events.len() >= self.era_events
            || received.saturating_duration_since(candidate.since) >= self.era_wall
        {
            self.rebase();
        }
    }

    /// Counts an event in its second if the window holds it, moving the clock on if it is
    /// newer. Returns false (and counts nothing) if it is older than the window.
    fn count(&mut self, timestamp: f64, suspicious: bool) -> bool {
        let second = timestamp.floor() as i64;
        let len = self.len();
        let latest = self.latest.map_or(second, |l| l.max(second));
        if second <= latest.saturating_sub(len) {
            return false;
        }
        self.latest = Some(latest);
        self.latest_timestamp = Some(
            self.latest_timestamp
                .map_or(timestamp, |t| t.max(timestamp)),
        );
        self.first_timestamp = Some(self.first_timestamp.map_or(timestamp, |t| t.min(timestamp)));
        self.earliest = Some(self.earliest.map_or(second, |e| e.min(second)));
        let bucket = &mut self.buckets[second.rem_euclid(len) as usize];
        if bucket.second != second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        if suspicious {
            bucket.suspicious += 1;
        } else {
            bucket.normal += 1;
        }
        true
    }

    /// Drops the candidate era: its events held off the clock become outliers.
    fn abandon(&mut self) {
        let Some(candidate) = self.candidate.take() else {
            return;
        };
        for (_, _, placement) in candidate.events {
            match placement {
                Placement::Ahead => self.outliers += 1,
                Placement::Behind => {
                    self.outliers += 1;
                    self.too_old += 1;
                }
                Placement::Near | Placement::Late => {}
            }
        }
    }

    /// Moves the clock to the candidate era: a fresh timeline with the candidate's events.
    fn rebase(&mut self) {
        let Some(candidate) = self.candidate.take() else {
            return;
        };
        self.buckets.fill(EMPTY);
        self.earliest = None;
        self.latest = None;
        self.latest_timestamp = None;
        self.clock_jumps += 1;
        for (timestamp, suspicious, _) in candidate.events {
            // Only an era confirmed by wall time after spanning more than the window can
            // hold events older than its own window.
            if !self.count(timestamp, suspicious) {
                self.outliers += 1;
                self.too_old += 1;
            }
        }
    }

    /// The clock: latest second of the current era, and how many eras came before it.
    pub(super) fn clock(&self) -> Option<super::DataClock> {
        self.latest.map(|second| super::DataClock {
            second,
            era: self.clock_jumps,
        })
    }

    pub(super) fn summary(&self) -> TimelineSummary {
        let pending = self.candidate.as_ref().map_or(0, |c| {
            c.events
                .iter()
                .filter(|(_, _, p)| matches!(p, Placement::Ahead | Placement::Behind))
                .count() as u64
        });
        let mut summary = TimelineSummary {
            start: None,
            normal: Vec::new(),
            suspicious: Vec::new(),
            too_old: self.too_old,
            outliers: self.outliers,
            last_outlier: self.last_outlier,
            pending,
            clock_jumps: self.clock_jumps,
        };
        let (Some(earliest), Some(latest)) = (self.earliest, self.latest) else {
            return summary;
        };
        let start = earliest.max(latest - self.len() + 1);
        for second in start..=latest {
            let bucket = &self.buckets[second.rem_euclid(self.len()) as usize];
            let fresh = bucket.second == second;
            summary.normal.push(if fresh { bucket.normal } else { 0 });
            summary
                .suspicious
                .push(if fresh { bucket.suspicious } else { 0 });
        }
        summary.start = Some(start);
        summary
    }
}
