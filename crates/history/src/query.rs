//! How every store answers a range question: the window split into whole hours and minutes
//! (answered by the rollups) and the edges (counted from the events), plus the newest events
//! the rollups do not count yet. A backend only says how to fetch blocks and sum rollup
//! rows ([`Source`]); the arithmetic is here, once.

use std::collections::HashMap;

use traffic::Place;

use crate::blocks::{bucket_of, decode};
use crate::range::{
    Filter, RangeCountry, RangePlace, RangeSummary, RangeTimeline, TimeRange, bucket_secs,
    timeline_start,
};
use crate::{Located, Result, StoredEvent};

/// A value a rollup condition compares a column with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// Place rollup rows summed by (placed, place, suspicious).
pub(crate) struct PlaceSum {
    pub placed: bool,
    pub place_key: u64,
    pub suspicious: bool,
    pub events: u64,
    pub first: f64,
    pub latest: f64,
}

/// Rollup granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    Minute,
    Hour,
}

impl Width {
    pub(crate) fn seconds(self) -> f64 {
        match self {
            Width::Minute => 60.0,
            Width::Hour => 3600.0,
        }
    }

    /// Table name suffix.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Width::Minute => "minute",
            Width::Hour => "hour",
        }
    }
}

/// What a backend provides to answer range questions (within one snapshot of its data).
pub(crate) trait Source {
    /// Every stored place, by key.
    fn places(&self) -> &HashMap<u64, Place>;

    /// The seq up to which the rollups count every event (0: none).
    fn rolled_up(&self) -> Result<u64>;

    /// The first seq of the block holding `seq` (blocks are consecutive), or `seq` itself
    /// when no block starts at or before it.
    fn block_of(&self, seq: u64) -> Result<u64>;

    /// Visits `(first_seq, data)` of the blocks with `first_seq >= start` whose data times
    /// meet `[from, to)`, in sequence order, until `visit` says stop (false).
    fn blocks_after(
        &self,
        start: u64,
        span: (f64, f64),
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<bool>,
    ) -> Result<()>;

    /// Visits `(first_seq, data)` of every block whose data times meet `[from, to)`.
    fn blocks_in(
        &self,
        span: (f64, f64),
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()>;

    /// Visits the place rollup rows with buckets in `[lo, hi)` where every `(column, value)`
    /// of `conditions` holds, summed by (placed, place_key, suspicious).
    fn place_rollups(
        &self,
        width: Width,
        buckets: (i64, i64),
        conditions: &[(&'static str, Param)],
        visit: &mut dyn FnMut(PlaceSum),
    ) -> Result<()>;

    /// Visits the timeline rollup rows with buckets in `[lo, hi)` where every
    /// `(column, value)` of `conditions` holds, summed as (bucket, suspicious, events).
    fn timeline_rollups(
        &self,
        width: Width,
        buckets: (i64, i64),
        conditions: &[(&'static str, Param)],
        visit: &mut dyn FnMut(i64, bool, u64),
    ) -> Result<()>;
}

/// How a window splits into what rollups answer and what is counted from the events:
/// whole hours, whole minutes outside them, and the parts of a minute at either end.
#[derive(Debug)]
struct Plan {
    /// Hours `[from, to)` (bucket numbers).
    hours: (i64, i64),
    /// Minutes outside those hours, `[from, to)` each.
    minutes: Vec<(i64, i64)>,
    /// Data time counted from the events, `[from, to)` each.
    raw: Vec<(f64, f64)>,
}

impl Plan {
    fn new(range: TimeRange) -> Self {
        let (from, to) = bounds(range);
        // First whole bucket at or after `from`, first bucket not wholly before `to`.
        let first_whole = |w: f64| match range.from {
            None => i64::MIN,
            Some(f) => {
                let b = bucket_of(f, w);
                if b as f64 * w >= f { b } else { b + 1 }
            }
        };
        let end_whole = |w: f64| range.to.map_or(i64::MAX, |t| bucket_of(t, w));
        let (m_lo, m_hi) = (first_whole(60.0), end_whole(60.0));
        if m_lo >= m_hi {
            // Within one minute or two partial ones: all from the events.
            return Self {
                hours: (0, 0),
                minutes: Vec::new(),
                raw: vec![(from, to)],
            };
        }
        let (h_lo, h_hi) = (first_whole(3600.0), end_whole(3600.0));
        let hours = if h_lo < h_hi { (h_lo, h_hi) } else { (0, 0) };
        let minutes = if hours.0 < hours.1 {
            vec![
                (m_lo, hours.0.saturating_mul(60)),
                (hours.1.saturating_mul(60), m_hi),
            ]
        } else {
            vec![(m_lo, m_hi)]
        };
        let mut raw = Vec::new();
        if range.from.is_some() {
            raw.push((from, m_lo as f64 * 60.0));
        }
        if range.to.is_some() {
            raw.push((m_hi as f64 * 60.0, to));
        }
        Self {
            hours,
            minutes: minutes.into_iter().filter(|(a, b)| a < b).collect(),
            raw: raw.into_iter().filter(|(a, b)| a < b).collect(),
        }
    }
}

/// The bounds as SQL parameters: an open end is the largest finite value.
pub(crate) fn bounds(range: TimeRange) -> (f64, f64) {
    (range.from.unwrap_or(f64::MIN), range.to.unwrap_or(f64::MAX))
}

/// The rollup columns a filter constrains, with their values.
fn conditions(filter: &Filter, country_column: bool) -> Vec<(&'static str, Param)> {
    let mut out = Vec::new();
    if let Some(s) = filter.suspicious {
        out.push(("suspicious", Param::Bool(s)));
    }
    if let Some(p) = &filter.protocol {
        out.push(("protocol", Param::Text(p.clone())));
    }
    if let Some(c) = filter.status_class {
        out.push(("status_class", Param::Int(i64::from(c))));
    }
    if country_column && let Some(c) = &filter.country {
        out.push(("country_code", Param::Text(c.clone())));
    }
    out
}

/// Counts gathered for a summary.
#[derive(Default)]
struct Tally {
    total: u64,
    suspicious: u64,
    first: Option<f64>,
    latest: Option<f64>,
    /// (count, suspicious) per place key.
    places: HashMap<u64, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, place: Option<u64>, events: u64, suspicious: u64, first: f64, latest: f64) {
        self.total += events;
        self.suspicious += suspicious;
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.latest = Some(self.latest.map_or(latest, |l| l.max(latest)));
        if let Some(place) = place {
            let counts = self.places.entry(place).or_default();
            counts.0 += events;
            counts.1 += suspicious;
        }
    }
}

fn place_key(located: &Located<u64>) -> Option<u64> {
    match located {
        Located::Event(key) | Located::Ip { place: key, .. } => Some(*key),
        Located::Unlocated(_) => None,
    }
}

fn country_of<'a>(places: &'a HashMap<u64, Place>, located: &Located<u64>) -> Option<&'a str> {
    place_key(located)
        .and_then(|key| places.get(&key))
        .map(|p| p.country_code.as_str())
}

/// Visits the events with `from <= timestamp < to` that pass `filter`.
fn each_raw(
    source: &dyn Source,
    (from, to): (f64, f64),
    filter: &Filter,
    visit: &mut dyn FnMut(&StoredEvent),
) -> Result<()> {
    let places = source.places();
    source.blocks_in((from, to), &mut |first, data| {
        decode(first, data, &mut |stored| {
            let t = stored.event.timestamp;
            if from <= t
                && t < to
                && filter.matches(&stored.event, country_of(places, &stored.located))
            {
                visit(&stored);
            }
            true
        })?;
        Ok(())
    })
}

/// Adds the place rollup rows of `width` with buckets in `[lo, hi)` to `tally`.
fn tally_rollup(
    source: &dyn Source,
    width: Width,
    buckets: (i64, i64),
    filter: &Filter,
    tally: &mut Tally,
) -> Result<()> {
    let places = source.places();
    source.place_rollups(width, buckets, &conditions(filter, false), &mut |sum| {
        if let Some(country) = &filter.country {
            let here = places.get(&sum.place_key).map(|p| &p.country_code);
            if !sum.placed || here != Some(country) {
                return;
            }
        }
        let suspicious = if sum.suspicious { sum.events } else { 0 };
        tally.add(
            sum.placed.then_some(sum.place_key),
            sum.events,
            suspicious,
            sum.first,
            sum.latest,
        );
    })
}

/// Adds the timeline rollup rows of `width` in `[lo, hi)` to `buckets` (which start at
/// `start`, `bucket` seconds each).
fn timeline_rollup(
    source: &dyn Source,
    width: Width,
    range: (i64, i64),
    filter: &Filter,
    (start, bucket): (f64, f64),
    buckets: &mut [(u64, u64)],
) -> Result<()> {
    let last = buckets.len() - 1;
    source.timeline_rollups(
        width,
        range,
        &conditions(filter, true),
        &mut |at, suspicious, events| {
            let at = at as f64 * width.seconds();
            let i = (((at - start) / bucket).floor().max(0.0) as usize).min(last);
            buckets[i].0 += events;
            if suspicious {
                buckets[i].1 += events;
            }
        },
    )
}

/// Aggregates over the events of `range` that pass `filter` (the [`crate::range::Reader`]
/// contract), from rollups where whole minutes and hours allow.
pub(crate) fn summary(
    source: &dyn Source,
    range: TimeRange,
    filter: &Filter,
    top: usize,
) -> Result<RangeSummary> {
    let places = source.places();
    let rolled = source.rolled_up()?;
    let plan = Plan::new(range);
    let mut tally = Tally::default();
    if plan.hours.0 < plan.hours.1 {
        tally_rollup(source, Width::Hour, plan.hours, filter, &mut tally)?;
    }
    for &minutes in &plan.minutes {
        tally_rollup(source, Width::Minute, minutes, filter, &mut tally)?;
    }
    for &raw in &plan.raw {
        each_raw(source, raw, filter, &mut |stored| {
            let t = stored.event.timestamp;
            tally.add(
                place_key(&stored.located),
                1,
                u64::from(stored.event.suspicious),
                t,
                t,
            );
        })?;
    }
    // The newest events, not in the rollups yet: counted from their blocks wherever the
    // rollups would have counted them (the raw parts above have them already).
    let mut tail: Vec<(f64, bool)> = Vec::new();
    {
        let start = source.block_of(rolled + 1)?;
        let (from, to) = bounds(range);
        source.blocks_after(start, (from, to), &mut |first, data| {
            decode(first, data, &mut |stored| {
                let t = stored.event.timestamp;
                let e = &stored.event;
                if stored.seq > rolled
                    && from <= t
                    && t < to
                    && !plan.raw.iter().any(|&(a, b)| a <= t && t < b)
                    && filter.matches(e, country_of(places, &stored.located))
                {
                    tally.add(place_key(&stored.located), 1, u64::from(e.suspicious), t, t);
                    tail.push((t, e.suspicious));
                }
                true
            })?;
            Ok(true)
        })?;
    }
    let mut by_place: Vec<(u64, (u64, u64))> = tally.places.iter().map(|(&k, &v)| (k, v)).collect();
    by_place.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let mut countries: HashMap<&str, (&str, u64, u64)> = HashMap::new();
    for &(key, (n, s)) in &by_place {
        if let Some(place) = places.get(&key) {
            let c = countries.entry(place.country_code.as_str()).or_insert((
                place.country.as_str(),
                0,
                0,
            ));
            c.1 += n;
            c.2 += s;
        }
    }
    let mut countries: Vec<_> = countries.into_iter().collect();
    countries.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(b.0)));
    let top_countries = countries
        .into_iter()
        .take(top)
        .map(|(code, (name, count, suspicious))| RangeCountry {
            country_code: code.to_owned(),
            country: name.to_owned(),
            count,
            suspicious,
        })
        .collect();
    let top_places = by_place
        .iter()
        .filter_map(|&(key, (count, suspicious))| {
            let place = places.get(&key)?;
            Some(RangePlace {
                key,
                city: place.city.clone(),
                country_code: place.country_code.clone(),
                count,
                suspicious,
            })
        })
        .take(top)
        .collect();
    let timeline = match (tally.first, tally.latest) {
        (Some(first), Some(latest)) => {
            let width = bucket_secs(first, latest);
            let start = timeline_start(first, width);
            let len = ((latest - start) / width as f64).floor() as usize + 1;
            let mut buckets = vec![(0u64, 0u64); len];
            let w = width as f64;
            let count_raw = |raw: (f64, f64), buckets: &mut Vec<(u64, u64)>| {
                each_raw(source, raw, filter, &mut |stored| {
                    let t = stored.event.timestamp;
                    let i = (((t - start) / w).floor().max(0.0) as usize).min(len - 1);
                    buckets[i].0 += 1;
                    buckets[i].1 += u64::from(stored.event.suspicious);
                })
            };
            if width.is_multiple_of(60) {
                let by = (start, w);
                if plan.hours.0 < plan.hours.1 {
                    if width.is_multiple_of(3600) {
                        timeline_rollup(source, Width::Hour, plan.hours, filter, by, &mut buckets)?;
                    } else {
                        let minutes = (
                            plan.hours.0.saturating_mul(60),
                            plan.hours.1.saturating_mul(60),
                        );
                        timeline_rollup(source, Width::Minute, minutes, filter, by, &mut buckets)?;
                    }
                }
                for &minutes in &plan.minutes {
                    timeline_rollup(source, Width::Minute, minutes, filter, by, &mut buckets)?;
                }
                for &raw in &plan.raw {
                    count_raw(raw, &mut buckets)?;
                }
                for &(t, suspicious) in &tail {
                    let i = (((t - start) / w).floor().max(0.0) as usize).min(len - 1);
                    buckets[i].0 += 1;
                    buckets[i].1 += u64::from(suspicious);
                }
            } else {
                count_raw(bounds(range), &mut buckets)?;
            }
            let peak = (0..len).max_by_key(|&i| (buckets[i].0, std::cmp::Reverse(i)));
            RangeTimeline {
                start,
                bucket_secs: width,
                buckets,
                peak,
            }
        }
        _ => RangeTimeline {
            start: range.from.unwrap_or(0.0),
            bucket_secs: 1,
            buckets: Vec::new(),
            peak: None,
        },
    };
    Ok(RangeSummary {
        total: tally.total,
        suspicious: tally.suspicious,
        first_timestamp: tally.first,
        latest_timestamp: tally.latest,
        top_places,
        top_countries,
        timeline,
    })
}

/// Up to `limit` events of `range` that pass `filter`, with `seq > after`, in sequence
/// order (the [`crate::range::Reader`] contract).
pub(crate) fn events(
    source: &dyn Source,
    range: TimeRange,
    filter: &Filter,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let places = source.places();
    let (from, to) = bounds(range);
    let start = source.block_of(after.saturating_add(1))?;
    let mut events = Vec::new();
    if limit == 0 {
        return Ok(events);
    }
    source.blocks_after(start, (from, to), &mut |first, data| {
        decode(first, data, &mut |stored| {
            let t = stored.event.timestamp;
            if stored.seq > after
                && from <= t
                && t < to
                && filter.matches(&stored.event, country_of(places, &stored.located))
            {
                events.push(stored);
            }
            events.len() < limit
        })?;
        Ok(events.len() < limit)
    })?;
    Ok(events)
}
