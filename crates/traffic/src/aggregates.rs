//! Live aggregates over the events seen so far: totals, the data-clock timeline, and the
//! busiest locations and countries.
//!
//! Memory is bounded whatever the rate: the timeline is a fixed ring of per-second buckets,
//! and locations are keyed by the place a geocoder resolved (a finite gazetteer), with a hard
//! cap beyond which new places are counted under "other" rather than growing the map.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::event::Event;

/// A named place an event was resolved to: the nearest city and the country it lies in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    /// Stable identity of the place within one gazetteer (e.g. its row number); clients
    /// tell places apart by it, since two towns can share a name within one country.
    pub key: u64,
    /// City (or town) name.
    pub city: String,
    /// First-level administrative region (state, province), possibly empty.
    pub region: String,
    /// ISO 3166-1 alpha-2 code of the country, or empty when unknown.
    pub country_code: String,
    /// English short name of the country, or empty when unknown.
    pub country: String,
    /// The place's own latitude (the city centre, not the event's).
    pub latitude: f64,
    /// The place's own longitude.
    pub longitude: f64,
}

/// Limits of the aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatesConfig {
    /// Length of the timeline in seconds of the data's clock.
    pub timeline_secs: u32,
    /// Most distinct places tracked; beyond that, events count under [`Summary::other_places`].
    pub max_places: usize,
}

impl Default for AggregatesConfig {
    fn default() -> Self {
        Self {
            timeline_secs: 600,
            max_places: 200_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    total: u64,
    suspicious: u64,
}

impl Counts {
    fn add(&mut self, suspicious: bool) {
        self.total += 1;
        self.suspicious += u64::from(suspicious);
    }
}

/// The running aggregates. Feed every accepted event to [`Aggregates::record`].
#[derive(Debug)]
pub struct Aggregates {
    config: AggregatesConfig,
    counts: Counts,
    first_timestamp: Option<f64>,
    latest_timestamp: Option<f64>,
    places: HashMap<u64, (Arc<Place>, Counts)>,
    other_places: Counts,
    countries: HashMap<String, Counts>,
    timeline: Timeline,
}

impl Aggregates {
    /// Empty aggregates.
    pub fn new(config: AggregatesConfig) -> Self {
        Self {
            config,
            counts: Counts::default(),
            first_timestamp: None,
            latest_timestamp: None,
            places: HashMap::new(),
            other_places: Counts::default(),
            countries: HashMap::new(),
            timeline: Timeline::new(config.timeline_secs),
        }
    }

    /// Counts one event at the place it was resolved to.
    pub fn record(&mut self, event: &Event, place: &Arc<Place>) {
        let s = event.suspicious;
        self.counts.add(s);
        self.first_timestamp = Some(
            self.first_timestamp
                .map_or(event.timestamp, |t| t.min(event.timestamp)),
        );
        self.latest_timestamp = Some(
            self.latest_timestamp
                .map_or(event.timestamp, |t| t.max(event.timestamp)),
        );
        self.timeline.add(event.timestamp, s);
        if let Some((_, counts)) = self.places.get_mut(&place.key) {
            counts.add(s);
        } else if self.places.len() < self.config.max_places {
            let mut counts = Counts::default();
            counts.add(s);
            self.places.insert(place.key, (Arc::clone(place), counts));
        } else {
            self.other_places.add(s);
        }
        match self.countries.get_mut(place.country_code.as_str()) {
            Some(counts) => counts.add(s),
            None => self
                .countries
                .entry(place.country_code.clone())
                .or_default()
                .add(s),
        }
    }

    /// Total events recorded.
    pub fn total(&self) -> u64 {
        self.counts.total
    }

    /// The aggregates as the wire shows them, with the `top` busiest places and countries.
    pub fn summary(&self, top: usize) -> Summary {
        let place_counts = |(place, counts): &(Arc<Place>, Counts)| PlaceCount {
            place: Place::clone(place),
            count: counts.total,
            suspicious: counts.suspicious,
        };
        let entries: Vec<&(Arc<Place>, Counts)> = self.places.values().collect();
        let top_places = top_n(&entries, top, |(p, c)| (c.total, &p.city, p.key));
        let top_suspicious = top_n(
            &entries
                .iter()
                .copied()
                .filter(|(_, c)| c.suspicious > 0)
                .collect::<Vec<_>>(),
            top,
            |(p, c)| (c.suspicious, &p.city, p.key),
        );
        let top_normal = top_n(
            &entries
                .iter()
                .copied()
                .filter(|(_, c)| c.total > c.suspicious)
                .collect::<Vec<_>>(),
            top,
            |(p, c)| (c.total - c.suspicious, &p.city, p.key),
        );
        let countries: Vec<(&String, &Counts)> = self.countries.iter().collect();
        let top_countries = top_n(&countries, top, |(code, c)| (c.total, *code, 0));
        Summary {
            total: self.counts.total,
            suspicious: self.counts.suspicious,
            suspicious_share: share(self.counts.suspicious, self.counts.total),
            first_timestamp: self.first_timestamp,
            latest_timestamp: self.latest_timestamp,
            places: self.places.len(),
            other_places: self.other_places.total,
            top_places: top_places.into_iter().map(place_counts).collect(),
            top_suspicious_places: top_suspicious.into_iter().map(place_counts).collect(),
            top_normal_places: top_normal.into_iter().map(place_counts).collect(),
            top_countries: top_countries
                .into_iter()
                .map(|(code, c)| CountryCount {
                    country_code: (*code).clone(),
                    country: crate::countries::country_name(code)
                        .unwrap_or_default()
                        .to_owned(),
                    count: c.total,
                    suspicious: c.suspicious,
                })
                .collect(),
            timeline: self.timeline.summary(),
        }
    }
}

/// The `n` entries with the largest key, largest first; ties in count go to the smaller name
/// so the order is stable from one summary to the next.
fn top_n<T: Copy, K: Ord>(items: &[T], n: usize, key: impl Fn(&T) -> (u64, K, u64)) -> Vec<T> {
    let mut items = items.to_vec();
    let order = |a: &T, b: &T| {
        let (ca, na, ka) = key(a);
        let (cb, nb, kb) = key(b);
        (Reverse(ca), na, ka).cmp(&(Reverse(cb), nb, kb))
    };
    if n < items.len() {
        if n == 0 {
            return Vec::new();
        }
        items.select_nth_unstable_by(n - 1, order);
        items.truncate(n);
    }
    items.sort_unstable_by(order);
    items
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

/// Aggregates as sent on the wire (`/api/stats`, snapshots, `stats` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Events recorded.
    pub total: u64,
    /// Of which flagged suspicious.
    pub suspicious: u64,
    /// `suspicious / total`, 0 when nothing was recorded.
    pub suspicious_share: f64,
    /// Earliest data timestamp seen (unix seconds).
    pub first_timestamp: Option<f64>,
    /// Latest data timestamp seen: the data's clock.
    pub latest_timestamp: Option<f64>,
    /// Distinct places tracked.
    pub places: usize,
    /// Events at places beyond the tracking cap (normally 0).
    pub other_places: u64,
    /// Busiest places by events.
    pub top_places: Vec<PlaceCount>,
    /// Busiest places by suspicious events.
    pub top_suspicious_places: Vec<PlaceCount>,
    /// Busiest places by normal (not suspicious) events.
    pub top_normal_places: Vec<PlaceCount>,
    /// Busiest countries by events.
    pub top_countries: Vec<CountryCount>,
    /// Events per second of the data's clock.
    pub timeline: TimelineSummary,
}

/// A place with its counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceCount {
    /// The place.
    #[serde(flatten)]
    pub place: Place,
    /// Events there.
    pub count: u64,
    /// Of which suspicious.
    pub suspicious: u64,
}

/// A country with its counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryCount {
    /// ISO 3166-1 alpha-2 code, or empty when unknown.
    pub country_code: String,
    /// English short name, or empty when unknown.
    pub country: String,
    /// Events there.
    pub count: u64,
    /// Of which suspicious.
    pub suspicious: u64,
}

/// Per-second counts of the data's clock: element `i` of each array is the second
/// `start + i`. The arrays end at the latest second seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineSummary {
    /// Unix second of the first bucket (absent before any event).
    pub start: Option<i64>,
    /// Non-suspicious events per second.
    pub normal: Vec<u32>,
    /// Suspicious events per second.
    pub suspicious: Vec<u32>,
    /// Events older than the timeline's window when they arrived (counted in totals only).
    pub too_old: u64,
}

/// A ring of per-second buckets covering the last `len` seconds of the data's clock.
#[derive(Debug)]
struct Timeline {
    buckets: Vec<Bucket>,
    earliest: Option<i64>,
    latest: Option<i64>,
    too_old: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: i64,
    normal: u32,
    suspicious: u32,
}

impl Timeline {
    fn new(len: u32) -> Self {
        Self {
            buckets: vec![
                Bucket {
                    second: i64::MIN,
                    ..Bucket::default()
                };
                len.max(1) as usize
            ],
            earliest: None,
            latest: None,
            too_old: 0,
        }
    }

    fn len(&self) -> i64 {
        self.buckets.len() as i64
    }

    fn add(&mut self, timestamp: f64, suspicious: bool) {
        let second = timestamp.floor() as i64;
        let latest = self.latest.map_or(second, |l| l.max(second));
        if second <= latest - self.len() {
            self.too_old += 1;
            return;
        }
        self.latest = Some(latest);
        self.earliest = Some(self.earliest.map_or(second, |e| e.min(second)));
        let len = self.len();
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
    }

    fn summary(&self) -> TimelineSummary {
        let (Some(earliest), Some(latest)) = (self.earliest, self.latest) else {
            return TimelineSummary {
                start: None,
                normal: Vec::new(),
                suspicious: Vec::new(),
                too_old: self.too_old,
            };
        };
        let start = earliest.max(latest - self.len() + 1);
        let (mut normal, mut suspicious) = (Vec::new(), Vec::new());
        for second in start..=latest {
            let bucket = &self.buckets[second.rem_euclid(self.len()) as usize];
            let fresh = bucket.second == second;
            normal.push(if fresh { bucket.normal } else { 0 });
            suspicious.push(if fresh { bucket.suspicious } else { 0 });
        }
        TimelineSummary {
            start: Some(start),
            normal,
            suspicious,
            too_old: self.too_old,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(key: u64, city: &str, cc: &str) -> Arc<Place> {
        Arc::new(Place {
            key,
            city: city.to_owned(),
            region: String::new(),
            country_code: cc.to_owned(),
            country: String::new(),
            latitude: 0.0,
            longitude: 0.0,
        })
    }

    fn event(timestamp: f64, suspicious: bool) -> Event {
        Event {
            ip: "192.0.2.1".parse().unwrap(),
            latitude: 0.0,
            longitude: 0.0,
            timestamp,
            suspicious,
        }
    }

    #[test]
    fn totals_and_share_follow_the_events() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let p = place(1, "Austin", "US");
        for i in 0..10 {
            agg.record(&event(100.0 + f64::from(i), i == 3), &p);
        }
        let s = agg.summary(5);
        assert_eq!((s.total, s.suspicious), (10, 1));
        assert!((s.suspicious_share - 0.1).abs() < 1e-12);
        assert_eq!(
            (s.first_timestamp, s.latest_timestamp),
            (Some(100.0), Some(109.0))
        );
    }

    #[test]
    fn top_places_rank_by_count_then_name_and_keep_suspicious_apart() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let (a, b, c) = (
            place(1, "Austin", "US"),
            place(2, "Berlin", "DE"),
            place(3, "Cairo", "EG"),
        );
        for _ in 0..5 {
            agg.record(&event(1.0, false), &b);
        }
        for _ in 0..2 {
            agg.record(&event(1.0, true), &c);
        }
        for _ in 0..2 {
            agg.record(&event(1.0, false), &a);
        }
        let s = agg.summary(2);
        let names: Vec<_> = s.top_places.iter().map(|p| p.place.city.as_str()).collect();
        assert_eq!(
            names,
            ["Berlin", "Austin"],
            "tie between Austin and Cairo goes to the name"
        );
        assert_eq!(s.top_places[0].count, 5);
        assert_eq!(s.top_suspicious_places.len(), 1);
        assert_eq!(s.top_suspicious_places[0].place.city, "Cairo");
        assert_eq!(s.top_suspicious_places[0].suspicious, 2);
        let normal: Vec<_> = s
            .top_normal_places
            .iter()
            .map(|p| p.place.city.as_str())
            .collect();
        assert_eq!(
            normal,
            ["Berlin", "Austin"],
            "Cairo has only suspicious hits"
        );
        assert_eq!(s.top_countries[0].country_code, "DE");
        assert_eq!(s.top_countries[0].country, "Germany");
        assert_eq!(s.places, 3);
    }

    #[test]
    fn places_beyond_the_cap_are_counted_as_other() {
        let mut agg = Aggregates::new(AggregatesConfig {
            max_places: 2,
            ..AggregatesConfig::default()
        });
        for key in 0..5 {
            agg.record(&event(1.0, false), &place(key, "X", "US"));
        }
        let s = agg.summary(10);
        assert_eq!((s.places, s.other_places, s.total), (2, 3, 5));
    }

    #[test]
    fn the_timeline_buckets_by_data_second_and_slides() {
        let mut agg = Aggregates::new(AggregatesConfig {
            timeline_secs: 4,
            ..AggregatesConfig::default()
        });
        let p = place(1, "A", "US");
        for (t, s) in [(10.2, false), (10.9, true), (12.0, false), (11.5, false)] {
            agg.record(&event(t, s), &p);
        }
        let tl = agg.summary(1).timeline;
        assert_eq!(tl.start, Some(10));
        assert_eq!(tl.normal, [1, 1, 1]);
        assert_eq!(tl.suspicious, [1, 0, 0]);

        // Jump ahead: the window is the last 4 seconds, stale buckets read as zero.
        agg.record(&event(15.0, false), &p);
        agg.record(&event(11.0, false), &p); // older than the window: totals only
        let tl = agg.summary(1).timeline;
        assert_eq!(tl.start, Some(12));
        assert_eq!(tl.normal, [1, 0, 0, 1]);
        assert_eq!(tl.too_old, 1);
        assert_eq!(agg.total(), 6);
    }
}
