//! Live aggregates over the events seen so far: totals, the data-clock timeline, and the
//! busiest locations and countries.
//!
//! Memory is bounded whatever the rate: the timeline is a fixed ring of per-second buckets,
//! and locations are keyed by the place a geocoder resolved (a finite gazetteer), with a hard
//! cap beyond which new places are counted under "other" rather than growing the map.
//!
//! The data's clock (the timeline's latest second) follows the data, but a stray timestamp
//! does not drag it: an event far from the clock opens a *candidate era* and is held off the
//! timeline (it still counts in totals and places) until the candidate is confirmed by
//! [`AggregatesConfig::era_events`] events in a row, or by one more of its events after
//! [`AggregatesConfig::era_wall`] of wall-clock time, whichever comes first. Then the
//! timeline is re-based on the new era: cleared, the candidate's events counted on it, and
//! `clock_jumps` incremented. An event near the clock abandons the candidate, whose events
//! are then counted as `outliers`. See [`TimelineSummary`] for the exact rules.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

/// foldhash, randomly seeded: much cheaper than SipHash, and still keyed, so place keys and
/// country or protocol names from clients cannot be chosen to collide.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::event::Event;

mod timeline;

use timeline::Timeline;
pub use timeline::TimelineSummary;

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
    /// Events of a candidate era, in a row (no event near the clock between them), that move
    /// the data's clock to it.
    pub era_events: usize,
    /// Wall-clock time after the first event of a candidate era when its next event moves the
    /// data's clock to it, however few events it had (a slow source that really jumped).
    pub era_wall: Duration,
}

impl Default for AggregatesConfig {
    fn default() -> Self {
        Self {
            timeline_secs: 600,
            max_places: 200_000,
            era_events: 50,
            era_wall: Duration::from_secs(10),
        }
    }
}

/// The data's clock: where "now" is for windows over the data's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DataClock {
    /// The latest second of the current era (see [`TimelineSummary`]).
    pub second: i64,
    /// Eras before the current one: it changes when the clock jumps to a confirmed new era.
    pub era: u64,
}

/// Most distinct protocols counted by name; more go under [`Summary::other_protocols`].
pub const MAX_PROTOCOLS: usize = 64;

/// Most distinct networks (AS numbers) counted; more go under [`Summary::other_networks`].
pub const MAX_NETWORKS: usize = 65_536;

/// Where an event's place came from, as [`Aggregates::record`] takes it.
#[derive(Debug, Clone, Copy)]
pub enum Location<'a> {
    /// Placed by the event's own coordinates.
    Event(&'a Arc<Place>),
    /// Placed by its IP address.
    Ip(&'a Arc<Place>),
    /// Not placed, for this reason (e.g. `"private"`, `"no_database"`): counted in totals,
    /// the timeline and the breakdowns, never in places or countries.
    Unlocated(&'static str),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    total: u64,
    suspicious: u64,
    /// Sum of the `bytes` of the hits that carry one.
    bytes: u64,
}

impl Counts {
    fn add(&mut self, suspicious: bool, bytes: Option<u64>) {
        self.total += 1;
        self.suspicious += u64::from(suspicious);
        if let Some(bytes) = bytes {
            self.bytes = self.bytes.saturating_add(bytes);
        }
    }
}

impl<'a> Location<'a> {
    /// The place, when the event was placed.
    pub fn place(self) -> Option<&'a Arc<Place>> {
        match self {
            Location::Event(place) | Location::Ip(place) => Some(place),
            Location::Unlocated(_) => None,
        }
    }
}

/// The running aggregates. Feed every accepted event to [`Aggregates::record`].
#[derive(Debug)]
pub struct Aggregates {
    config: AggregatesConfig,
    counts: Counts,
    places: Map<u64, (Arc<Place>, Counts)>,
    other_places: Counts,
    countries: Map<String, Counts>,
    timeline: Timeline,
    located: LocatedCounts,
    unlocated: BTreeMap<&'static str, u64>,
    bytes: BytesSummary,
    protocols: Map<String, u64>,
    other_protocols: u64,
    status_classes: BTreeMap<&'static str, u64>,
    networks: Map<u32, (String, Counts)>,
    other_networks: u64,
}

impl Aggregates {
    /// Empty aggregates.
    pub fn new(config: AggregatesConfig) -> Self {
        Self {
            config,
            counts: Counts::default(),
            places: Map::default(),
            other_places: Counts::default(),
            countries: Map::default(),
            timeline: Timeline::new(config),
            located: LocatedCounts::default(),
            unlocated: BTreeMap::new(),
            bytes: BytesSummary::default(),
            protocols: Map::default(),
            other_protocols: 0,
            status_classes: BTreeMap::new(),
            networks: Map::default(),
            other_networks: 0,
        }
    }

    /// Counts one event (already given to [`Aggregates::record`]) under the network (AS
    /// number and name) its address belongs to, when the server has AS data.
    pub fn record_network(&mut self, asn: u32, name: &str, event: &Event) {
        if let Some((_, counts)) = self.networks.get_mut(&asn) {
            counts.add(event.suspicious, event.bytes);
        } else if self.networks.len() < MAX_NETWORKS {
            let mut counts = Counts::default();
            counts.add(event.suspicious, event.bytes);
            self.networks.insert(asn, (name.to_owned(), counts));
        } else {
            self.other_networks += 1;
        }
    }

    /// Counts one event at the place it was resolved to (or as unlocated); `received` is
    /// when it arrived (wall clock, monotonic), which only matters for confirming a jump of
    /// the data's clock.
    pub fn record(&mut self, event: &Event, location: Location<'_>, received: Instant) {
        let s = event.suspicious;
        let b = event.bytes;
        self.counts.add(s, b);
        self.timeline.add(event.timestamp, s, received);
        self.record_fields(event);
        let place = match location {
            Location::Event(place) => {
                self.located.event += 1;
                place
            }
            Location::Ip(place) => {
                self.located.ip += 1;
                place
            }
            Location::Unlocated(reason) => {
                *self.unlocated.entry(reason).or_default() += 1;
                return;
            }
        };
        if let Some((_, counts)) = self.places.get_mut(&place.key) {
            counts.add(s, b);
        } else if self.places.len() < self.config.max_places {
            let mut counts = Counts::default();
            counts.add(s, b);
            self.places.insert(place.key, (Arc::clone(place), counts));
        } else {
            self.other_places.add(s, b);
        }
        match self.countries.get_mut(place.country_code.as_str()) {
            Some(counts) => counts.add(s, b),
            None => self
                .countries
                .entry(place.country_code.clone())
                .or_default()
                .add(s, b),
        }
    }

    /// Bytes, protocol and status class, when the event carries them.
    fn record_fields(&mut self, event: &Event) {
        if let Some(bytes) = event.bytes {
            self.bytes.total = self.bytes.total.saturating_add(bytes);
            self.bytes.events += 1;
        }
        if let Some(protocol) = &event.protocol {
            if let Some(count) = self.protocols.get_mut(protocol.as_str()) {
                *count += 1;
            } else if self.protocols.len() < MAX_PROTOCOLS {
                self.protocols.insert(protocol.clone(), 1);
            } else {
                self.other_protocols += 1;
            }
        }
        if let Some(status) = event.status {
            let class = match status / 100 {
                1 => "1xx",
                2 => "2xx",
                3 => "3xx",
                4 => "4xx",
                _ => "5xx",
            };
            *self.status_classes.entry(class).or_default() += 1;
        }
    }

    /// The data's clock (absent before the first event counted on it).
    pub fn clock(&self) -> Option<DataClock> {
        self.timeline.clock()
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
            bytes: counts.bytes,
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
        let top_bytes = top_n(
            &entries
                .iter()
                .copied()
                .filter(|(_, c)| c.bytes > 0)
                .collect::<Vec<_>>(),
            top,
            |(p, c)| (c.bytes, &p.city, p.key),
        );
        let countries: Vec<(&String, &Counts)> = self.countries.iter().collect();
        let top_countries = top_n(&countries, top, |(code, c)| (c.total, *code, 0));
        let top_countries_bytes = top_n(
            &countries
                .iter()
                .copied()
                .filter(|(_, c)| c.bytes > 0)
                .collect::<Vec<_>>(),
            top,
            |(code, c)| (c.bytes, *code, 0),
        );
        let country_counts = |(code, c): (&String, &Counts)| CountryCount {
            country_code: code.clone(),
            country: crate::countries::country_name(code)
                .unwrap_or_default()
                .to_owned(),
            count: c.total,
            suspicious: c.suspicious,
            bytes: c.bytes,
        };
        let protocols: Vec<(&String, &u64)> = self.protocols.iter().collect();
        let top_protocols = top_n(&protocols, top, |(name, n)| (**n, *name, 0));
        let listed: u64 = top_protocols.iter().map(|(_, n)| **n).sum();
        let all: u64 = self.protocols.values().sum();
        let other_protocols = self.other_protocols + (all - listed);
        let networks: Vec<(&u32, &(String, Counts))> = self.networks.iter().collect();
        let top_networks = top_n(&networks, top, |(asn, (_, c))| (c.total, **asn, 0))
            .into_iter()
            .map(|(asn, (name, c))| NetworkCount {
                asn: *asn,
                name: name.clone(),
                count: c.total,
                suspicious: c.suspicious,
                bytes: c.bytes,
            })
            .collect();
        let top_protocols: Vec<NamedCount> = top_protocols
            .into_iter()
            .map(|(name, n)| NamedCount {
                name: name.clone(),
                count: *n,
            })
            .collect();
        Summary {
            total: self.counts.total,
            suspicious: self.counts.suspicious,
            suspicious_share: share(self.counts.suspicious, self.counts.total),
            first_timestamp: self.timeline.first_timestamp,
            latest_timestamp: self.timeline.latest_timestamp,
            places: self.places.len(),
            other_places: self.other_places.total,
            top_places: top_places.into_iter().map(place_counts).collect(),
            top_suspicious_places: top_suspicious.into_iter().map(place_counts).collect(),
            top_normal_places: top_normal.into_iter().map(place_counts).collect(),
            top_places_by_bytes: top_bytes.into_iter().map(place_counts).collect(),
            top_countries: top_countries.into_iter().map(country_counts).collect(),
            top_countries_by_bytes: top_countries_bytes
                .into_iter()
                .map(country_counts)
                .collect(),
            timeline: self.timeline.summary(),
            located: self.located,
            unlocated: UnlocatedSummary {
                total: self.unlocated.values().sum(),
                by_reason: self.unlocated.clone(),
            },
            bytes: self.bytes,
            top_protocols,
            other_protocols,
            status_classes: self.status_classes.clone(),
            top_networks,
            other_networks: self.other_networks,
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
    /// Earliest data timestamp counted on the timeline, in any era (unix seconds; outliers
    /// never count here).
    pub first_timestamp: Option<f64>,
    /// The data's clock: the latest timestamp of the current era (outliers and a candidate
    /// era's events never move it; a confirmed jump does, backwards too).
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
    /// Busiest places by the bytes of their hits (only places with bytes > 0).
    pub top_places_by_bytes: Vec<PlaceCount>,
    /// Busiest countries by events.
    pub top_countries: Vec<CountryCount>,
    /// Busiest countries by the bytes of their hits (only countries with bytes > 0).
    pub top_countries_by_bytes: Vec<CountryCount>,
    /// Events per second of the data's clock.
    pub timeline: TimelineSummary,
    /// Hits placed, by where the place came from.
    pub located: LocatedCounts,
    /// Hits that could not be placed, by reason.
    pub unlocated: UnlocatedSummary,
    /// Bytes, over the hits that carry a `bytes` field.
    pub bytes: BytesSummary,
    /// Busiest protocols (of the hits that name one), at most `top`.
    pub top_protocols: Vec<NamedCount>,
    /// Hits with a protocol not in `top_protocols`.
    pub other_protocols: u64,
    /// Hits by HTTP status class (`1xx` .. `5xx`), only classes seen.
    pub status_classes: BTreeMap<&'static str, u64>,
    /// Busiest networks (AS) by hits, when the server has AS data (else empty).
    pub top_networks: Vec<NetworkCount>,
    /// Hits of networks beyond the tracking cap ([`MAX_NETWORKS`]; normally 0).
    pub other_networks: u64,
}

/// A network (autonomous system) with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkCount {
    /// AS number.
    pub asn: u32,
    /// Its holder's name.
    pub name: String,
    /// Hits from it.
    pub count: u64,
    /// Of which suspicious.
    pub suspicious: u64,
    /// Sum of the `bytes` of its hits that carry one.
    pub bytes: u64,
}

/// Hits placed, by where the place came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LocatedCounts {
    /// By the event's own coordinates.
    pub event: u64,
    /// By the source IP address.
    pub ip: u64,
}

/// Hits that could not be placed (counted in `total`, never in places or countries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnlocatedSummary {
    /// All of them.
    pub total: u64,
    /// By reason: `loopback`, `private`, `reserved`, `not_found`, `no_database`.
    pub by_reason: BTreeMap<&'static str, u64>,
}

/// Bytes of the hits that say how many they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BytesSummary {
    /// Sum of `bytes`.
    pub total: u64,
    /// Hits that had a `bytes` field.
    pub events: u64,
}

/// A name with its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedCount {
    /// E.g. a protocol.
    pub name: String,
    /// Hits.
    pub count: u64,
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
    /// Sum of the `bytes` of its hits that carry one.
    pub bytes: u64,
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
    /// Sum of the `bytes` of its hits that carry one.
    pub bytes: u64,
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

    /// One fixed wall-clock instant, so nothing depends on how fast the test runs.
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    fn event(timestamp: f64, suspicious: bool) -> Event {
        Event::at(
            "192.0.2.1".parse().unwrap(),
            0.0,
            0.0,
            timestamp,
            suspicious,
        )
    }

    #[test]
    fn unlocated_hits_count_in_totals_and_by_reason_but_never_in_places() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let p = place(1, "Austin", "US");
        agg.record(&event(100.0, true), Location::Event(&p), t0());
        agg.record(&event(100.0, false), Location::Ip(&p), t0());
        agg.record(&event(100.0, true), Location::Unlocated("private"), t0());
        agg.record(&event(100.0, false), Location::Unlocated("private"), t0());
        agg.record(&event(101.0, false), Location::Unlocated("loopback"), t0());
        let s = agg.summary(10);
        assert_eq!((s.total, s.suspicious), (5, 2));
        assert_eq!(s.located, LocatedCounts { event: 1, ip: 1 });
        assert_eq!(s.unlocated.total, 3);
        assert_eq!(
            s.unlocated.by_reason,
            BTreeMap::from([("loopback", 1), ("private", 2)])
        );
        assert_eq!(s.top_places.len(), 1);
        assert_eq!(s.top_places[0].count, 2);
        assert_eq!(s.top_countries.iter().map(|c| c.count).sum::<u64>(), 2);
        assert_eq!(
            s.timeline.normal.iter().sum::<u32>() + s.timeline.suspicious.iter().sum::<u32>(),
            5
        );
    }

    #[test]
    fn bytes_protocols_and_status_classes_are_summed_and_bounded() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let p = place(1, "Austin", "US");
        let with = |bytes: Option<u64>, protocol: Option<&str>, status: Option<u16>| Event {
            bytes,
            protocol: protocol.map(str::to_owned),
            status,
            ..event(100.0, false)
        };
        agg.record(
            &with(Some(100), Some("TCP"), Some(200)),
            Location::Event(&p),
            t0(),
        );
        agg.record(
            &with(Some(50), Some("TCP"), Some(404)),
            Location::Event(&p),
            t0(),
        );
        agg.record(
            &with(None, Some("UDP"), Some(503)),
            Location::Unlocated("private"),
            t0(),
        );
        agg.record(&with(None, None, None), Location::Event(&p), t0());
        for i in 0..MAX_PROTOCOLS + 5 {
            agg.record(
                &with(None, Some(&format!("P{i}")), None),
                Location::Event(&p),
                t0(),
            );
        }
        let s = agg.summary(2);
        assert_eq!(
            s.bytes,
            BytesSummary {
                total: 150,
                events: 2
            }
        );
        assert_eq!(
            s.top_protocols,
            [
                NamedCount {
                    name: "TCP".into(),
                    count: 2
                },
                NamedCount {
                    name: "P0".into(),
                    count: 1
                }
            ]
        );
        let counted: u64 = s.top_protocols.iter().map(|p| p.count).sum::<u64>() + s.other_protocols;
        assert_eq!(
            counted,
            3 + MAX_PROTOCOLS as u64 + 5,
            "every named protocol is counted once"
        );
        assert_eq!(
            s.status_classes,
            BTreeMap::from([("2xx", 1), ("4xx", 1), ("5xx", 1)])
        );
    }

    #[test]
    fn bytes_are_summed_per_place_and_country_and_ranked_apart_from_requests() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let (austin, dallas, berlin) = (
            place(1, "Austin", "US"),
            place(2, "Dallas", "US"),
            place(3, "Berlin", "DE"),
        );
        let with = |bytes: Option<u64>| Event {
            bytes,
            ..event(100.0, false)
        };
        // Berlin: many small requests; Austin and Dallas: few large ones.
        for _ in 0..5 {
            agg.record(&with(Some(10)), Location::Ip(&berlin), t0());
        }
        agg.record(&with(Some(1_000)), Location::Ip(&austin), t0());
        agg.record(&with(None), Location::Ip(&austin), t0());
        agg.record(&with(Some(300)), Location::Event(&dallas), t0());
        agg.record(&with(Some(7)), Location::Unlocated("private"), t0());
        agg.record(&with(None), Location::Ip(&place(4, "Cairo", "EG")), t0());
        let s = agg.summary(10);
        let by_requests: Vec<_> = s
            .top_countries
            .iter()
            .map(|c| (c.country_code.as_str(), c.count, c.bytes))
            .collect();
        assert_eq!(by_requests, [("DE", 5, 50), ("US", 3, 1_300), ("EG", 1, 0)]);
        let by_bytes: Vec<_> = s
            .top_countries_by_bytes
            .iter()
            .map(|c| (c.country_code.as_str(), c.bytes))
            .collect();
        assert_eq!(
            by_bytes,
            [("US", 1_300), ("DE", 50)],
            "no bytes, not listed"
        );
        let places: Vec<_> = s
            .top_places_by_bytes
            .iter()
            .map(|p| (p.place.city.as_str(), p.bytes, p.count))
            .collect();
        assert_eq!(
            places,
            [("Austin", 1_000, 2), ("Dallas", 300, 1), ("Berlin", 50, 5)]
        );
        assert_eq!(s.top_places[0].place.city, "Berlin");
        assert_eq!(s.top_places[0].bytes, 50);
        assert_eq!(
            s.bytes.total, 1_357,
            "unlocated bytes count in the total only"
        );
        assert_eq!(agg.summary(1).top_places_by_bytes.len(), 1);
    }

    #[test]
    fn networks_are_counted_by_as_number_ranked_and_bounded() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let with = |bytes: Option<u64>, suspicious: bool| Event {
            bytes,
            ..event(100.0, suspicious)
        };
        for _ in 0..3 {
            agg.record_network(15169, "Google LLC", &with(Some(10), false));
        }
        agg.record_network(13335, "Cloudflare, Inc.", &with(None, true));
        agg.record_network(13335, "Cloudflare, Inc.", &with(Some(5), false));
        agg.record_network(64500, "Example", &with(None, false));
        let s = agg.summary(2);
        assert_eq!(
            s.top_networks,
            [
                NetworkCount {
                    asn: 15169,
                    name: "Google LLC".into(),
                    count: 3,
                    suspicious: 0,
                    bytes: 30
                },
                NetworkCount {
                    asn: 13335,
                    name: "Cloudflare, Inc.".into(),
                    count: 2,
                    suspicious: 1,
                    bytes: 5
                },
            ]
        );
        for asn in 0..MAX_NETWORKS as u32 + 3 {
            agg.record_network(100_000 + asn, "n", &with(None, false));
        }
        let s = agg.summary(1);
        assert_eq!(
            s.other_networks, 6,
            "the three first networks took three places under the cap"
        );
        assert!(
            Aggregates::new(AggregatesConfig::default())
                .summary(5)
                .top_networks
                .is_empty()
        );
    }

    #[test]
    fn totals_and_share_follow_the_events() {
        let mut agg = Aggregates::new(AggregatesConfig::default());
        let p = place(1, "Austin", "US");
        for i in 0..10 {
            agg.record(
                &event(100.0 + f64::from(i), i == 3),
                Location::Event(&p),
                t0(),
            );
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
            agg.record(&event(1.0, false), Location::Event(&b), t0());
        }
        for _ in 0..2 {
            agg.record(&event(1.0, true), Location::Event(&c), t0());
        }
        for _ in 0..2 {
            agg.record(&event(1.0, false), Location::Event(&a), t0());
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
            agg.record(
                &event(1.0, false),
                Location::Event(&place(key, "X", "US")),
                t0(),
            );
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
            agg.record(&event(t, s), Location::Event(&p), t0());
        }
        let tl = agg.summary(1).timeline;
        assert_eq!(tl.start, Some(10));
        assert_eq!(tl.normal, [1, 1, 1]);
        assert_eq!(tl.suspicious, [1, 0, 0]);

        // Jump ahead: the window is the last 4 seconds, stale buckets read as zero.
        agg.record(&event(15.0, false), Location::Event(&p), t0());
        agg.record(&event(11.0, false), Location::Event(&p), t0()); // older than the window: totals only
        let tl = agg.summary(1).timeline;
        assert_eq!(tl.start, Some(12));
        assert_eq!(tl.normal, [1, 0, 0, 1]);
        assert_eq!(
            (tl.pending, tl.too_old),
            (1, 0),
            "held until the clock goes on"
        );
        agg.record(&event(15.5, false), Location::Event(&p), t0());
        let tl = agg.summary(1).timeline;
        assert_eq!((tl.pending, tl.too_old, tl.outliers), (0, 1, 1));
        assert_eq!(tl.normal, [1, 0, 0, 2]);
        assert_eq!(agg.total(), 7);
    }

    /// 2199-01-01T00:00:00Z.
    const YEAR_2199: f64 = 7_226_582_400.0;
    const NOW: f64 = 1_736_919_120.0;

    /// Feeds `events` (timestamp, suspicious, wall seconds after t0) to fresh aggregates.
    fn feed(config: AggregatesConfig, events: &[(f64, bool, u64)]) -> Summary {
        let mut agg = Aggregates::new(config);
        let p = place(1, "A", "US");
        for &(t, s, wall) in events {
            agg.record(
                &event(t, s),
                Location::Event(&p),
                t0() + Duration::from_secs(wall),
            );
        }
        let summary = agg.summary(1);
        assert_eq!(
            summary.total,
            events.len() as u64,
            "every event counts in totals"
        );
        summary
    }

    /// The brute-force timeline: every event of `era` counted in its second, for the
    /// `window` seconds ending at the era's latest second.
    fn oracle(era: &[(f64, bool, u64)], window: i64) -> (i64, Vec<u32>, Vec<u32>) {
        let latest = era.iter().map(|e| e.0.floor() as i64).max().unwrap();
        let earliest = era.iter().map(|e| e.0.floor() as i64).min().unwrap();
        let start = earliest.max(latest - window + 1);
        let mut normal = vec![0; (latest - start + 1) as usize];
        let mut suspicious = normal.clone();
        for &(t, s, _) in era {
            let i = t.floor() as i64 - start;
            if i >= 0 {
                if s {
                    suspicious[i as usize] += 1;
                } else {
                    normal[i as usize] += 1;
                }
            }
        }
        (start, normal, suspicious)
    }

    fn assert_timeline_is(summary: &Summary, era: &[(f64, bool, u64)], window: i64) {
        let (start, normal, suspicious) = oracle(era, window);
        let tl = &summary.timeline;
        assert_eq!(tl.start, Some(start));
        assert_eq!(tl.normal, normal);
        assert_eq!(tl.suspicious, suspicious);
    }

    /// `n` events from `start`, 3 per second, every 5th suspicious.
    fn steady(start: f64, n: usize) -> Vec<(f64, bool, u64)> {
        (0..n)
            .map(|i| (start + i as f64 / 3.0, i % 5 == 0, 0))
            .collect()
    }

    #[test]
    fn a_lone_far_future_event_is_an_outlier_and_the_clock_stays_with_the_data() {
        let before = steady(NOW, 100);
        let after = steady(NOW + 34.0, 1000);
        let mut all = before.clone();
        all.push((YEAR_2199, true, 0));
        all.extend(&after);
        let summary = feed(AggregatesConfig::default(), &all);
        let tl = &summary.timeline;
        assert_eq!((tl.outliers, tl.too_old, tl.pending), (1, 0, 0));
        assert_eq!((tl.last_outlier, tl.clock_jumps), (Some(YEAR_2199), 0));
        assert_eq!(summary.latest_timestamp, Some(NOW + 34.0 + 999.0 / 3.0));
        assert_eq!(summary.first_timestamp, Some(NOW));
        assert_eq!(
            summary.suspicious,
            1 + 20 + 200,
            "the outlier is still counted"
        );
        let normal_era: Vec<_> = before.into_iter().chain(after).collect();
        assert_timeline_is(&summary, &normal_era, 600);
    }

    #[test]
    fn a_lone_event_far_in_the_past_is_an_outlier_counted_as_too_old() {
        let mut all = steady(NOW, 10);
        all.push((1_000.0, false, 0));
        all.extend(steady(NOW + 4.0, 10));
        let tl = feed(AggregatesConfig::default(), &all).timeline;
        assert_eq!((tl.outliers, tl.too_old, tl.pending), (1, 1, 0));
        assert_eq!(tl.last_outlier, Some(1_000.0));
    }

    #[test]
    fn when_the_first_event_is_the_outlier_the_data_moves_the_clock_after_era_events() {
        let mut all = vec![(YEAR_2199, false, 0)];
        let data = steady(NOW, 1000);
        all.extend(&data);
        let summary = feed(AggregatesConfig::default(), &all);
        let tl = &summary.timeline;
        assert_eq!((tl.clock_jumps, tl.outliers, tl.pending), (1, 0, 0));
        assert_eq!(summary.latest_timestamp, Some(NOW + 333.0));
        assert_timeline_is(&summary, &data, 600);
    }

    /// Timestamps and flags of the course's file (2940 rows over 600 s), next to the repo.
    fn course_file() -> Vec<(f64, bool, u64)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/ip_addresses.csv"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("the course file is expected at {path}: {e}"));
        let rows: Vec<_> = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let cells: Vec<&str> = line.split(',').collect();
                let t: f64 = cells.get(3)?.trim().parse().ok()?;
                let s: f64 = cells.get(4)?.trim().parse().ok()?;
                Some((t, s != 0.0, 0))
            })
            .collect();
        assert!(rows.len() > 2900, "{} rows", rows.len());
        rows
    }

    #[test]
    fn a_looping_replay_that_starts_over_moves_the_clock_back_to_the_second_pass() {
        let pass = course_file();
        let span = pass.last().unwrap().0 - pass[0].0;
        assert!((590.0..=610.0).contains(&span), "{span}");
        let twice: Vec<_> = pass.iter().chain(&pass).copied().collect();
        let summary = feed(AggregatesConfig::default(), &twice);
        let tl = &summary.timeline;
        assert_eq!(
            (tl.clock_jumps, tl.outliers, tl.too_old, tl.pending),
            (1, 0, 0, 0)
        );
        assert_timeline_is(&summary, &pass, 600);
        let in_window: u32 = tl.normal.iter().chain(&tl.suspicious).sum();
        assert!(
            in_window as usize >= pass.len() - 10,
            "not doubled, not lost"
        );
    }

    #[test]
    fn a_slow_source_that_jumped_moves_the_clock_after_era_wall() {
        let mut all = steady(NOW, 30);
        let later = NOW + 86_400.0;
        all.extend([
            (later, false, 1),
            (later + 5.0, true, 6),
            (later + 11.0, false, 12),
        ]);
        let summary = feed(AggregatesConfig::default(), &all);
        let tl = &summary.timeline;
        assert_eq!((tl.clock_jumps, tl.outliers, tl.pending), (1, 0, 0));
        assert_eq!(summary.latest_timestamp, Some(later + 11.0));
        assert_eq!(
            (tl.normal.len(), tl.normal[0], tl.suspicious[5]),
            (12, 1, 1)
        );
    }

    #[test]
    fn two_eras_one_event_each_in_turn_leave_the_clock_with_the_first() {
        let (a, b) = (steady(NOW, 500), steady(NOW - 86_400.0, 500));
        let mixed: Vec<_> = a.iter().zip(&b).flat_map(|(x, y)| [*x, *y]).collect();
        let summary = feed(AggregatesConfig::default(), &mixed);
        let tl = &summary.timeline;
        assert_eq!((tl.clock_jumps, tl.outliers, tl.pending), (0, 499, 1));
        assert_eq!(tl.too_old, 499);
        assert_eq!(tl.last_outlier, Some(b[499].0));
        assert_timeline_is(&summary, &a, 600);
    }

    #[test]
    fn two_eras_in_runs_of_era_events_each_take_the_clock_in_turn() {
        let config = AggregatesConfig::default();
        let k = config.era_events;
        let (a, b) = (steady(NOW, 4 * k), steady(NOW + 86_400.0, 4 * k));
        let mut runs = Vec::new();
        for i in 0..4 {
            runs.extend_from_slice(&a[i * k..(i + 1) * k]);
            runs.extend_from_slice(&b[i * k..(i + 1) * k]);
        }
        let summary = feed(config, &runs);
        let tl = &summary.timeline;
        assert_eq!((tl.clock_jumps, tl.outliers, tl.pending), (7, 0, 0));
        assert_timeline_is(&summary, &b[3 * k..], 600);
        let runs_short: Vec<_> = runs
            .chunks(k)
            .flat_map(|run| &run[..k - 1])
            .copied()
            .collect();
        let tl = feed(config, &runs_short).timeline;
        assert_eq!(
            (tl.clock_jumps, tl.outliers, tl.pending),
            (0, 3 * (k as u64 - 1), k as u64 - 1),
            "one short of confirming, each run of the other era is outliers"
        );
    }
}
