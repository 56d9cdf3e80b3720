//! Windowed analytics over the last T seconds of the data's clock: top k keys by count and by
//! bytes, heavy hitters above H% of the window's total, outliers more than X standard
//! deviations above the mean rate of the keys, and the suspicious share overall and per key.
//!
//! Keys are of six kinds ([`KeyKind`]): place, country, source IP, source network (/24 for
//! IPv4, /48 for IPv6), protocol and status class. (An AS number is not a field of an event
//! yet, so there is no AS kind.) Each event weighs 1 in counts and its `bytes` (1 when it
//! has none) in bytes.
//!
//! The clock is the one of [`crate::Aggregates`] ([`crate::Aggregates::clock`]): the window
//! ends at its latest second, an event ahead of it (held off the clock as a possible new
//! era) is not counted, one older than the window is counted as `late`, and a confirmed new
//! era starts every window afresh (from the event that confirmed it: the events the
//! candidate era held before are not replayed). Each kind keeps per-second buckets of at most `budget`
//! keys (see `window` for the summary used beyond it and its error bound), so results are
//! exact while no second of the window has more than `budget` distinct keys of a kind, and
//! memory is bounded whatever the number of keys. Pure and synchronous: no I/O.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use serde::Serialize;

use crate::aggregates::{DataClock, Place};
use crate::event::Event;

pub mod alerts;
mod config;
mod report;
pub mod rules;
mod window;

#[cfg(test)]
mod oracle_tests;

pub use config::{
    AnalyticsConfig, BUDGET, ConfigError, ConfigUpdate, HEAVY_HITTER_PERCENT, OUTLIER_STDDEVS,
    PerKind, TOP_K, Thresholds, ThresholdsUpdate, WINDOW_SECS,
};
pub use report::{AnalyticsReport, KeyReport, KindReport, PlaceRef};

use window::Window;

/// foldhash, randomly seeded, as in the aggregates: cheap, and keys sent by clients cannot be
/// chosen to collide.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Most distinct protocol names told apart; more are counted under one key, `other`.
pub const MAX_PROTOCOLS: usize = 256;

/// What a key is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// The place (city) an event was resolved to.
    Place,
    /// The country of that place.
    Country,
    /// The source address.
    Ip,
    /// The source network: /24 for IPv4, /48 for IPv6.
    Network,
    /// The protocol, when the event names one.
    Protocol,
    /// The HTTP status class, when the event has a status.
    Status,
}

impl KeyKind {
    /// Every kind, in the order results list them.
    pub const ALL: [KeyKind; 6] = [
        KeyKind::Place,
        KeyKind::Country,
        KeyKind::Ip,
        KeyKind::Network,
        KeyKind::Protocol,
        KeyKind::Status,
    ];

    /// The kind's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Place => "place",
            KeyKind::Country => "country",
            KeyKind::Ip => "ip",
            KeyKind::Network => "network",
            KeyKind::Protocol => "protocol",
            KeyKind::Status => "status",
        }
    }

    /// The kind called `name`.
    pub fn named(name: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Count, bytes and suspicious count of some events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Weights {
    /// Events.
    pub count: u64,
    /// Their bytes (1 for an event without `bytes`).
    pub bytes: u64,
    /// Events flagged suspicious.
    pub suspicious: u64,
}

impl Weights {
    /// The weights of one event.
    pub fn of(event: &Event) -> Self {
        Self {
            count: 1,
            bytes: event.bytes.unwrap_or(1),
            suspicious: u64::from(event.suspicious),
        }
    }

    fn add(&mut self, other: Weights) {
        self.count += other.count;
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.suspicious += other.suspicious;
    }
}

/// The windows of every key kind. Feed every accepted event to [`Analytics::record`] and
/// ask for results with [`Analytics::report`].
#[derive(Debug)]
pub struct Analytics {
    config: AnalyticsConfig,
    windows: PerKind<Option<Window>>,
    /// The data's clock as last seen.
    clock: Option<DataClock>,
    /// Events ahead of the clock, not counted.
    ahead: u64,
    /// Places seen, to name place keys in results (pruned to the windows' keys by
    /// [`Analytics::report`]).
    places: Map<u64, Arc<Place>>,
    /// Protocol names by key, and keys by name (at most [`MAX_PROTOCOLS`]).
    protocols: Vec<String>,
    protocol_keys: Map<String, u128>,
}

/// The key of protocols beyond [`MAX_PROTOCOLS`].
const OTHER_PROTOCOL: u128 = u128::MAX;

impl Analytics {
    /// Empty windows. `config` must be valid ([`AnalyticsConfig::validate`]).
    pub fn new(config: AnalyticsConfig) -> Self {
        Self {
            config,
            windows: config
                .kinds
                .map(|_, t| Some(Window::new(t.window_secs, config.budget))),
            clock: None,
            ahead: 0,
            places: Map::default(),
            protocols: Vec::new(),
            protocol_keys: Map::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }

    /// Puts `config` (valid) in force: the next report uses it. A shorter window drops the
    /// seconds it no longer covers; a longer one covers nothing from before its old start.
    pub fn set_config(&mut self, config: AnalyticsConfig) {
        let clock = self.clock.map(|c| c.second);
        for kind in KeyKind::ALL {
            let window = self.window_mut(kind);
            window.resize(config.kinds.get(kind).window_secs, clock);
            window.set_capacity(config.budget);
        }
        self.config = config;
    }

    fn window_mut(&mut self, kind: KeyKind) -> &mut Window {
        // Every kind's window is created in `new` and never taken.
        self.windows
            .get_mut(kind)
            .as_mut()
            .expect("every kind has a window")
    }

    /// Counts one event, resolved to `place` if it was, with the data's clock at `clock`
    /// after the event was recorded in the aggregates.
    pub fn record(&mut self, event: &Event, place: Option<&Arc<Place>>, clock: DataClock) {
        if self.clock.is_some_and(|c| c.era != clock.era) {
            for kind in KeyKind::ALL {
                self.window_mut(kind).clear();
            }
        }
        self.clock = Some(clock);
        let second = event.timestamp.floor() as i64;
        if second > clock.second {
            self.ahead += 1;
            return;
        }
        let weights = Weights::of(event);
        let now = clock.second;
        let ip = ip_key(event.ip);
        let place_key = place.map(|p| u128::from(p.key));
        let country = place.and_then(|p| country_key(&p.country_code));
        let protocol = event.protocol.as_deref().map(|p| self.protocol_key(p));
        let status = event.status.map(|s| u128::from(s / 100));
        let windows = &mut self.windows;
        let add = |window: &mut Option<Window>, key: Option<u128>| {
            window
                .as_mut()
                .is_some_and(|w| w.add(now, second, key, weights))
        };
        // A place new to its second may be new to the windows: remember how to name it.
        if add(&mut windows.place, place_key)
            && let Some(p) = place
        {
            self.places.entry(p.key).or_insert_with(|| Arc::clone(p));
        }
        add(&mut windows.country, country);
        add(&mut windows.ip, Some(ip));
        add(&mut windows.network, Some(network_key(event.ip)));
        add(&mut windows.protocol, protocol);
        add(&mut windows.status, status);
    }

    fn protocol_key(&mut self, name: &str) -> u128 {
        if let Some(&key) = self.protocol_keys.get(name) {
            return key;
        }
        if self.protocols.len() >= MAX_PROTOCOLS {
            return OTHER_PROTOCOL;
        }
        let key = self.protocols.len() as u128;
        self.protocols.push(name.to_owned());
        self.protocol_keys.insert(name.to_owned(), key);
        key
    }

    /// How a key of `kind` is shown.
    fn label(&self, kind: KeyKind, key: u128) -> String {
        match kind {
            KeyKind::Place => self
                .places
                .get(&(key as u64))
                .map_or_else(|| key.to_string(), |p| p.city.clone()),
            KeyKind::Country => country_label(key),
            KeyKind::Ip => ip_of(key).to_string(),
            KeyKind::Network => match ip_of(key) {
                IpAddr::V4(v4) => format!("{v4}/24"),
                IpAddr::V6(v6) => format!("{v6}/48"),
            },
            KeyKind::Protocol => self
                .protocols
                .get(key as usize)
                .cloned()
                .unwrap_or_else(|| "other".to_owned()),
            KeyKind::Status => format!("{key}xx"),
        }
    }

    /// Bytes held by the windows, roughly (their maps' allocated capacity).
    pub fn memory_bytes(&self) -> usize {
        KeyKind::ALL
            .into_iter()
            .filter_map(|k| self.windows.get(k).as_ref())
            .map(Window::memory_bytes)
            .sum()
    }
}

/// An address as 128 bits: IPv4 as its IPv4-mapped IPv6 form.
pub(crate) fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The /24 (IPv4) or /48 (IPv6) network of an address, as 128 bits.
pub(crate) fn network_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(_) => ip_key(ip) & !0xff,
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 80) - 1),
    }
}

pub(crate) fn ip_of(key: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(key);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

/// A country code (at most 16 bytes; an empty one is no country) as 128 bits.
pub(crate) fn country_key(code: &str) -> Option<u128> {
    if code.is_empty() {
        return None;
    }
    let mut bytes = [0u8; 16];
    let n = code.len().min(16);
    bytes[..n].copy_from_slice(&code.as_bytes()[..n]);
    Some(u128::from_be_bytes(bytes))
}

fn country_label(key: u128) -> String {
    let bytes = key.to_be_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_slash_24_for_ipv4_and_slash_48_for_ipv6() {
        let analytics = Analytics::new(AnalyticsConfig::default());
        let v4 = network_key("198.51.100.77".parse().unwrap());
        assert_eq!(network_key("198.51.100.1".parse().unwrap()), v4);
        assert_eq!(analytics.label(KeyKind::Network, v4), "198.51.100.0/24");
        let v6 = network_key("2001:db8:aa:bb::1".parse().unwrap());
        assert_eq!(network_key("2001:db8:aa:ff::9".parse().unwrap()), v6);
        assert_eq!(analytics.label(KeyKind::Network, v6), "2001:db8:aa::/48");
        assert_eq!(
            analytics.label(KeyKind::Ip, ip_key("203.0.113.9".parse().unwrap())),
            "203.0.113.9"
        );
    }

    #[test]
    fn country_codes_round_trip_and_an_empty_one_is_no_country() {
        assert_eq!(country_label(country_key("FR").unwrap()), "FR");
        assert_eq!(country_key(""), None);
    }

    /// Feeds events at `seconds` through the aggregates (the clock's owner) into analytics.
    fn feed(aggregates: &mut crate::Aggregates, analytics: &mut Analytics, seconds: &[f64]) {
        let now = std::time::Instant::now();
        for &t in seconds {
            let event = Event::new("192.0.2.1".parse().unwrap(), t, false);
            aggregates.record(&event, crate::Location::Unlocated("test"), now);
            analytics.record(&event, None, aggregates.clock().unwrap());
        }
    }

    #[test]
    fn an_event_far_ahead_of_the_data_clock_is_not_counted_until_its_era_is_confirmed() {
        let mut aggregates = crate::Aggregates::new(crate::AggregatesConfig {
            era_events: 3,
            ..crate::AggregatesConfig::default()
        });
        let mut analytics = Analytics::new(AnalyticsConfig::default());
        feed(&mut aggregates, &mut analytics, &[1000.0, 1001.0]);
        feed(&mut aggregates, &mut analytics, &[90_000.0]);
        let report = analytics.report();
        assert_eq!(report.ahead, 1);
        assert_eq!(report.kinds.ip.total.count, 2);
        assert_eq!(
            report.kinds.ip.to,
            Some(1001),
            "the outlier does not drag the window"
        );
        // Two more in the new era confirm it: the windows start afresh there.
        feed(
            &mut aggregates,
            &mut analytics,
            &[90_001.0, 90_002.0, 90_003.0],
        );
        let report = analytics.report();
        assert_eq!(report.clock.unwrap().era, 1);
        assert_eq!(report.kinds.ip.to, Some(90_003));
        // The event that confirmed the era and the next one: those the candidate held
        // before are not replayed into the windows.
        assert_eq!(report.kinds.ip.total.count, 2);
    }

    #[test]
    fn protocols_beyond_the_limit_share_one_key() {
        let mut analytics = Analytics::new(AnalyticsConfig::default());
        for i in 0..MAX_PROTOCOLS {
            analytics.protocol_key(&format!("p{i}"));
        }
        let extra = analytics.protocol_key("one-too-many");
        assert_eq!(extra, OTHER_PROTOCOL);
        assert_eq!(analytics.label(KeyKind::Protocol, extra), "other");
        assert_eq!(analytics.protocol_key("p3"), 3);
    }
}
