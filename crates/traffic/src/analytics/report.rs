//! The queries over each kind's window, and their results as the API shows them.

use std::cmp::Reverse;

use serde::Serialize;

use super::window::Merged;
use super::{Analytics, KeyKind, PerKind, Thresholds, Weights};
use crate::aggregates::DataClock;

/// The results of every query for every key kind, as `GET /api/analytics` and the stream's
/// `analytics` event show them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AnalyticsReport {
    /// The data's clock the windows end at (absent before any event).
    pub clock: Option<DataClock>,
    /// Events that were ahead of the clock when they came (held off it as a possible new
    /// era), not counted in any window.
    pub ahead: u64,
    /// The results per key kind.
    pub kinds: PerKind<KindReport>,
}

/// The results for one key kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct KindReport {
    /// The parameters these results were computed with.
    pub thresholds: Thresholds,
    /// First second of the data's clock the window covers (absent before any event).
    pub from: Option<i64>,
    /// Last second covered: the clock.
    pub to: Option<i64>,
    /// Every event in the window, with or without a key of this kind (always exact).
    pub total: Weights,
    /// Suspicious share of the window's events.
    pub suspicious_share: f64,
    /// Whether every key's weights below are exact; if not, each is at most `error_bound`
    /// below the truth (and never above it).
    pub exact: bool,
    /// How far below the truth any key's count, bytes or suspicious count may be (0 when
    /// exact). The count bound is at most 2 × the window's events / budget.
    pub error_bound: Weights,
    /// Distinct keys in the window (those kept, when not exact).
    pub keys: usize,
    /// Events older than the window when they came, not counted.
    pub late: u64,
    /// Mean rate of the keys, events per second over the window.
    pub mean_rate: f64,
    /// Standard deviation of the keys' rates.
    pub stddev_rate: f64,
    /// The k keys with the most events (ties: smaller key first).
    pub top_by_count: Vec<KeyReport>,
    /// The k keys with the most bytes.
    pub top_by_bytes: Vec<KeyReport>,
    /// Keys with more than H% of the window's events, most first.
    pub heavy_hitters: Vec<KeyReport>,
    /// Keys with more than H% of the window's bytes, most first.
    pub heavy_hitters_by_bytes: Vec<KeyReport>,
    /// The (at most k) outliers with the most events: keys whose rate is more than X
    /// standard deviations above the mean rate.
    pub outliers: Vec<KeyReport>,
    /// How many keys are outliers (more than listed when over k).
    pub outliers_total: usize,
}

/// One key in a result list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyReport {
    /// The key as text: a city, a country code, an address, `a.b.c.0/24`, a protocol, `4xx`.
    pub key: String,
    /// The key's internal identity (for tests against the oracle).
    #[serde(skip)]
    pub(super) id: u128,
    /// Events.
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
    /// Suspicious events.
    pub suspicious: u64,
    /// Share of the window's events.
    pub share: f64,
    /// Share of the window's bytes.
    pub bytes_share: f64,
    /// Share of the key's own events that are suspicious.
    pub suspicious_share: f64,
    /// Events per second over the window.
    pub rate: f64,
    /// Where the key is, for a place (to fly the globe there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<PlaceRef>,
}

/// A place key's place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceRef {
    /// The place's key, as in hits and stats.
    pub key: u64,
    /// City name.
    pub city: String,
    /// Country code.
    pub country_code: String,
    /// The place's latitude.
    pub latitude: f64,
    /// The place's longitude.
    pub longitude: f64,
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Whether `value * 100 > percent * whole`: more than `percent`% of `whole`.
pub(super) fn above_percent(value: u64, whole: u64, percent: f64) -> bool {
    value as f64 * 100.0 > percent * whole as f64
}

/// Mean and population variance of some counts, exactly: from their number `n`, sum `s`
/// and sum of squares `q`. A count `c` is an outlier when `c - mean > x * stddev`, i.e.
/// `n*c - s > x * sqrt(n*q - s*s)`, tested without rounding the integers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spread {
    n: u128,
    s: u128,
    q: u128,
}

impl Spread {
    pub(super) fn of(counts: impl Iterator<Item = u64>) -> Self {
        let mut spread = Spread { n: 0, s: 0, q: 0 };
        for c in counts {
            let c = u128::from(c);
            spread.n += 1;
            spread.s += c;
            spread.q += c * c;
        }
        spread
    }

    /// `n * q - s * s`: n² times the variance.
    fn scaled_variance(&self) -> u128 {
        (self.n * self.q).saturating_sub(self.s * self.s)
    }

    pub(super) fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.s as f64 / self.n as f64
        }
    }

    pub(super) fn stddev(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.scaled_variance() as f64).sqrt() / self.n as f64
        }
    }

    pub(super) fn is_outlier(&self, count: u64, x: f64) -> bool {
        let excess = self.n * u128::from(count);
        if excess <= self.s {
            return false;
        }
        let excess = (excess - self.s) as f64;
        excess * excess > x * x * self.scaled_variance() as f64
    }
}

impl Analytics {
    /// The results of every query over every kind's window, with the settings in force.
    pub fn report(&mut self) -> AnalyticsReport {
        let Some(clock) = self.clock else {
            return AnalyticsReport {
                kinds: self.config.kinds.map(|_, &thresholds| KindReport {
                    thresholds,
                    exact: true,
                    ..KindReport::default()
                }),
                ..AnalyticsReport::default()
            };
        };
        let merged = self
            .windows
            .map(|_, w| w.as_ref().map(|w| w.merged(clock.second)));
        if let Some(places) = &merged.place {
            self.places
                .retain(|key, _| places.keys.contains_key(&u128::from(*key)));
        }
        AnalyticsReport {
            clock: Some(clock),
            ahead: self.ahead,
            kinds: self.config.kinds.map(|kind, thresholds| {
                let late = self.windows.get(kind).as_ref().map_or(0, |w| w.late);
                match merged.get(kind) {
                    Some(m) => self.kind_report(kind, m, thresholds, late),
                    None => KindReport::default(),
                }
            }),
        }
    }

    fn kind_report(
        &self,
        kind: KeyKind,
        merged: &Merged,
        thresholds: &Thresholds,
        late: u64,
    ) -> KindReport {
        let secs = (merged.to - merged.from + 1).max(1) as f64;
        let total = merged.total;
        let mut entries: Vec<(u128, Weights)> = merged.keys.iter().map(|(k, w)| (*k, *w)).collect();
        let k = thresholds.top_k;
        let entry = |&(id, w): &(u128, Weights)| KeyReport {
            key: self.label(kind, id),
            id,
            count: w.count,
            bytes: w.bytes,
            suspicious: w.suspicious,
            share: share(w.count, total.count),
            bytes_share: share(w.bytes, total.bytes),
            suspicious_share: share(w.suspicious, w.count),
            rate: w.count as f64 / secs,
            place: (kind == KeyKind::Place)
                .then(|| self.places.get(&(id as u64)))
                .flatten()
                .map(|p| PlaceRef {
                    key: p.key,
                    city: p.city.clone(),
                    country_code: p.country_code.clone(),
                    latitude: p.latitude,
                    longitude: p.longitude,
                }),
        };
        let spread = Spread::of(entries.iter().map(|(_, w)| w.count));
        // Most bytes first.
        entries.sort_unstable_by_key(|&(id, w)| (Reverse(w.bytes), id));
        let top_by_bytes = entries.iter().take(k).map(entry).collect();
        let heavy_hitters_by_bytes = entries
            .iter()
            .take_while(|(_, w)| {
                above_percent(w.bytes, total.bytes, thresholds.heavy_hitter_percent)
            })
            .map(entry)
            .collect();
        // Most events first.
        entries.sort_unstable_by_key(|&(id, w)| (Reverse(w.count), id));
        let top_by_count = entries.iter().take(k).map(entry).collect();
        let heavy_hitters = entries
            .iter()
            .take_while(|(_, w)| {
                above_percent(w.count, total.count, thresholds.heavy_hitter_percent)
            })
            .map(entry)
            .collect();
        let outliers: Vec<&(u128, Weights)> = entries
            .iter()
            .take_while(|(_, w)| spread.is_outlier(w.count, thresholds.outlier_stddevs))
            .collect();
        KindReport {
            thresholds: *thresholds,
            from: Some(merged.from),
            to: Some(merged.to),
            total,
            suspicious_share: share(total.suspicious, total.count),
            exact: merged.bound == Weights::default(),
            error_bound: merged.bound,
            keys: entries.len(),
            late,
            mean_rate: spread.mean() / secs,
            stddev_rate: spread.stddev() / secs,
            top_by_count,
            top_by_bytes,
            heavy_hitters,
            heavy_hitters_by_bytes,
            outliers_total: outliers.len(),
            outliers: outliers.into_iter().take(k).map(entry).collect(),
        }
    }
}
