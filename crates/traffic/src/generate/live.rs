//! The live generator: synthetic events at a given rate, for `sender generate --live` and the
//! server's built-in source (`/api/generator`), steerable while it runs.
//!
//! Same city table, Zipf weights, address blocks, random numbers and scripted bursts as the
//! file generator, with knobs the file format cannot carry: how many sources, networks and
//! places there are, a protocol mix and a packet-size mix (both weighted tables), the
//! suspicious share and the rate. Event `n` is due `n / rate` seconds after the start (the
//! spacing follows rate changes from the next event on); its contents depend only on the
//! seed, its number and its second (for bursts), so the same seed and the same settings give
//! the same events on every run and every machine.
//!
//! The traffic model: the first `places` cities of the table by rank send traffic with the
//! file generator's Zipf weights; `networks` /24 networks are dealt to those cities in turn
//! (network `j` to city `j % places`), and `sources` addresses to the networks in turn
//! (address `k` to network `k % networks`). An event picks a city by weight, one of its
//! networks and one of that network's addresses uniformly. Every address of a network is at
//! its city's centre, so a place is exactly a city.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::scripted::Scripted;
use super::{CITIES, Generated, ScriptedBurst, SplitMix64, ZIPF_OFFSET, city_block, mix};
use crate::event::{self, Event};

/// Highest `rate`, events per second.
pub const MAX_RATE: f64 = 100_000.0;
/// Most scripted bursts at once.
pub const MAX_BURSTS: usize = 16;
/// Most entries of the protocol or the size table.
pub const MAX_TABLE: usize = 16;
/// Largest size in the size table, bytes.
pub const MAX_BYTES: u64 = 1_000_000_000;
/// Addresses one /24 network can hold (1 to 254).
pub const HOSTS_PER_NETWORK: u32 = 254;
/// Networks one place can hold (two /16 blocks with 256 /24s each).
pub const NETWORKS_PER_PLACE: u32 = 512;

/// What a live generator makes. JSON field names are the control API's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Events per second, more than 0 and at most [`MAX_RATE`].
    pub rate: f64,
    /// Seed of the random numbers: the same seed and settings give the same events.
    pub seed: u64,
    /// Distinct source addresses, from `networks` to `networks * 254`.
    pub sources: u32,
    /// Distinct /24 source networks, from 1 to `places * 512`.
    pub networks: u32,
    /// Distinct places (the top cities of the generator's table), 1 to [`max_places`].
    pub places: u32,
    /// Protocol mix: name to relative weight (empty: events carry no protocol).
    pub protocols: BTreeMap<String, f64>,
    /// Packet-size mix: bytes to relative weight (empty: events carry no byte count).
    pub bytes: BTreeMap<u64, f64>,
    /// Packet-size mixes of particular protocols: an event of a protocol named here draws
    /// its size from this table instead of `bytes` (an empty table: no byte count).
    #[serde(default)]
    pub bytes_by_protocol: BTreeMap<String, BTreeMap<u64, f64>>,
    /// Share of events flagged suspicious, 0 to 1.
    pub suspicious_share: f64,
    /// Scripted bursts, their seconds counted from the generator's start.
    pub bursts: Vec<ScriptedBurst>,
}

impl Default for LiveConfig {
    /// 50 events/s, seed 42, 5,000 sources in 2,000 networks over 160 places, TCP 80 / UDP 15
    /// / ICMP 5, the simple IMIX packet sizes (64 B x7, 576 B x4, 1500 B x1) for TCP, UDP
    /// datagrams of 64 B x6, 512 B x3 and 1200 B x1 (DNS queries and answers, QUIC's
    /// smallest initial packet), ICMP echoes of 84 B, 3% suspicious, no bursts. No network
    /// then holds more than about 1.5% of the traffic, and only TCP carries full-size packets,
    /// as on a real link (large UDP and ICMP packets are what the `large_packet` alert rule is
    /// for).
    fn default() -> Self {
        Self {
            rate: 50.0,
            seed: 42,
            sources: 5000,
            networks: 2000,
            places: max_places(),
            protocols: [("TCP", 80.0), ("UDP", 15.0), ("ICMP", 5.0)]
                .into_iter()
                .map(|(n, w)| (n.to_owned(), w))
                .collect(),
            bytes: [(64, 7.0), (576, 4.0), (1500, 1.0)].into_iter().collect(),
            bytes_by_protocol: [
                ("UDP", vec![(64, 6.0), (512, 3.0), (1200, 1.0)]),
                ("ICMP", vec![(84, 1.0)]),
            ]
            .into_iter()
            .map(|(name, sizes)| (name.to_owned(), sizes.into_iter().collect()))
            .collect(),
            suspicious_share: 0.03,
            bursts: Vec::new(),
        }
    }
}

/// The most places a generator can use: the cities of its table.
pub fn max_places() -> u32 {
    CITIES.len() as u32
}

/// A [`LiveConfig`] setting out of range: which one (its JSON name, e.g. `rate` or
/// `protocols.TCP`) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct LiveConfigError {
    /// The setting at fault.
    pub field: String,
    /// Why it is refused.
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> LiveConfigError {
    LiveConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl LiveConfig {
    /// Checks every setting; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), LiveConfigError> {
        if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            return Err(refuse(
                "rate",
                format!(
                    "{} is out of range: more than 0, at most {MAX_RATE}",
                    self.rate
                ),
            ));
        }
        let places = max_places();
        if !(1..=places).contains(&self.places) {
            return Err(refuse(
                "places",
                format!("{} is out of range 1..={places}", self.places),
            ));
        }
        let most = self.places.saturating_mul(NETWORKS_PER_PLACE);
        if !(1..=most).contains(&self.networks) {
            return Err(refuse(
                "networks",
                format!(
                    "{} is out of range 1..={most} ({NETWORKS_PER_PLACE} per place)",
                    self.networks
                ),
            ));
        }
        let most = self.networks.saturating_mul(HOSTS_PER_NETWORK);
        if !(self.networks..=most).contains(&self.sources) {
            return Err(refuse(
                "sources",
                format!(
                    "{} is out of range {}..={most} (at least one per network, at most \
                     {HOSTS_PER_NETWORK})",
                    self.sources, self.networks
                ),
            ));
        }
        check_table("protocols", &self.protocols, |name: &String| {
            protocol_error(name)
        })?;
        check_table("bytes", &self.bytes, size_error)?;
        if self.bytes_by_protocol.len() > MAX_TABLE {
            return Err(refuse(
                "bytes_by_protocol",
                format!(
                    "{} protocols, at most {MAX_TABLE}",
                    self.bytes_by_protocol.len()
                ),
            ));
        }
        for (name, sizes) in &self.bytes_by_protocol {
            let field = format!("bytes_by_protocol.{name}");
            if let Some(reason) = protocol_error(name) {
                return Err(refuse(field, reason));
            }
            check_table(&field, sizes, size_error)?;
        }
        if !(0.0..=1.0).contains(&self.suspicious_share) {
            return Err(refuse(
                "suspicious_share",
                format!("{} is out of range 0..=1", self.suspicious_share),
            ));
        }
        if self.bursts.len() > MAX_BURSTS {
            return Err(refuse(
                "bursts",
                format!("{} bursts, at most {MAX_BURSTS}", self.bursts.len()),
            ));
        }
        Ok(())
    }
}

/// Why a protocol name is refused, if it is.
fn protocol_error(name: &str) -> Option<String> {
    let ok = (1..=event::MAX_TOKEN_BYTES).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_graphic());
    (!ok).then(|| {
        format!(
            "a protocol name is 1 to {} visible ASCII characters",
            event::MAX_TOKEN_BYTES
        )
    })
}

/// Why a packet size is refused, if it is.
fn size_error(size: &u64) -> Option<String> {
    (!(1..=MAX_BYTES).contains(size)).then(|| format!("a size is 1 to {MAX_BYTES} bytes"))
}

/// Parses size tables per protocol written `NAME:SIZE=WEIGHT,...;NAME:...` (e.g.
/// `UDP:64=6,512=3;ICMP:84=1`); `none` or an empty text is no table (every protocol draws
/// from the common size table).
pub fn parse_protocol_tables(text: &str) -> Result<BTreeMap<String, BTreeMap<u64, f64>>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(BTreeMap::new());
    }
    let mut tables = BTreeMap::new();
    for entry in text.split(';') {
        let (name, table) = entry
            .split_once(':')
            .ok_or_else(|| format!("{entry:?}: expected NAME:SIZE=WEIGHT,..."))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("{entry:?}: the protocol name is missing"));
        }
        if tables
            .insert(name.to_owned(), parse_table(table)?)
            .is_some()
        {
            return Err(format!("{name} is given twice"));
        }
    }
    Ok(tables)
}

/// Checks a weighted table: at most [`MAX_TABLE`] entries, each key acceptable to `key_error`,
/// each weight finite and at least 0, and some weight above 0 unless the table is empty.
fn check_table<K: std::fmt::Display>(
    name: &str,
    table: &BTreeMap<K, f64>,
    key_error: impl Fn(&K) -> Option<String>,
) -> Result<(), LiveConfigError> {
    if table.len() > MAX_TABLE {
        return Err(refuse(
            name,
            format!("{} entries, at most {MAX_TABLE}", table.len()),
        ));
    }
    for (key, weight) in table {
        if let Some(reason) = key_error(key) {
            return Err(refuse(format!("{name}.{key}"), reason));
        }
        if !(weight.is_finite() && *weight >= 0.0) {
            return Err(refuse(
                format!("{name}.{key}"),
                format!("the weight {weight} must be a number, at least 0"),
            ));
        }
    }
    if !table.is_empty() && table.values().all(|w| *w == 0.0) {
        return Err(refuse(name, "every weight is 0 (leave it empty for none)"));
    }
    Ok(())
}

/// Parses a weighted table written `KEY=WEIGHT,KEY=WEIGHT` (e.g. `TCP=80,UDP=20`); `none` or
/// an empty text is the empty table.
pub fn parse_table<K: std::str::FromStr + Ord>(text: &str) -> Result<BTreeMap<K, f64>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(BTreeMap::new());
    }
    text.split(',')
        .map(|entry| {
            let (key, weight) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: expected KEY=WEIGHT"))?;
            let key = key
                .trim()
                .parse()
                .map_err(|_| format!("{entry:?}: {:?} is not a valid key", key.trim()))?;
            let weight = weight
                .trim()
                .parse()
                .map_err(|_| format!("{entry:?}: the weight must be a number"))?;
            Ok((key, weight))
        })
        .collect()
}

/// Running sums of a table's weights, for picking an entry with one uniform draw.
fn cumulative<K: Clone>(table: &BTreeMap<K, f64>) -> Vec<(K, f64)> {
    let mut total = 0.0;
    table
        .iter()
        .map(|(k, w)| {
            total += w;
            (k.clone(), total)
        })
        .collect()
}

/// The entry a uniform draw `u` in `[0, 1)` falls on, or `None` for an empty table.
fn pick<K: Clone>(table: &[(K, f64)], u: f64) -> Option<K> {
    let total = table.last()?.1;
    let target = u * total;
    let i = table
        .partition_point(|(_, c)| *c <= target)
        .min(table.len() - 1);
    Some(table[i].0.clone())
}

/// A running generator: its settings, where it is in its schedule and its random streams.
pub struct LiveGenerator {
    config: LiveConfig,
    /// The seed it started with (a new one in `config` waits for the next start).
    seed: u64,
    /// Running sums of the used places' Zipf weights.
    places: Vec<f64>,
    protocols: Vec<(String, f64)>,
    sizes: Vec<(u64, f64)>,
    sizes_by_protocol: BTreeMap<String, Vec<(u64, f64)>>,
    rng: SplitMix64,
    scripted: Scripted,
    generated: u64,
    /// The schedule since the last change of rate: event number `anchor.0` is due
    /// `anchor.1` seconds from the start (so offsets are exact, not sums of gaps).
    anchor: (u64, f64),
}

impl LiveGenerator {
    /// A generator at its start, or the setting that is out of range.
    pub fn new(config: LiveConfig) -> Result<Self, LiveConfigError> {
        config.validate()?;
        let seed = config.seed;
        let mut generator = Self {
            config: config.clone(),
            seed,
            places: Vec::new(),
            protocols: Vec::new(),
            sizes: Vec::new(),
            sizes_by_protocol: BTreeMap::new(),
            rng: SplitMix64::new(seed ^ 0x11FE_0000_0000_0001),
            scripted: Scripted::new(seed ^ 0x11FE),
            generated: 0,
            anchor: (0, 0.0),
        };
        generator.set_tables();
        Ok(generator)
    }

    fn set_tables(&mut self) {
        let used = self.config.places.min(self.config.networks) as usize;
        let mut total = 0.0;
        self.places = (1..=used)
            .map(|rank| {
                total += 1.0 / (rank as f64 + ZIPF_OFFSET);
                total
            })
            .collect();
        self.protocols = cumulative(&self.config.protocols);
        self.sizes = cumulative(&self.config.bytes);
        self.sizes_by_protocol = self
            .config
            .bytes_by_protocol
            .iter()
            .map(|(name, sizes)| (name.clone(), cumulative(sizes)))
            .collect();
    }

    /// The settings in force.
    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    /// Changes the settings from the next event on, keeping the schedule and the random
    /// streams (a new seed takes effect at the next start); refused, changing nothing, when a
    /// setting is out of range.
    pub fn reconfigure(&mut self, config: LiveConfig) -> Result<(), LiveConfigError> {
        config.validate()?;
        if config.rate != self.config.rate && self.generated > 0 {
            let last = self.generated - 1;
            self.anchor = (last, self.due_at(last));
        }
        self.config = config;
        self.set_tables();
        Ok(())
    }

    /// Events made so far.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Seconds from the start at which the next event is due.
    pub fn next_due(&self) -> f64 {
        self.due_at(self.generated)
    }

    /// When event number `n` (at or after the anchor) is due.
    fn due_at(&self, n: u64) -> f64 {
        let (anchor, at) = self.anchor;
        at + (n - anchor) as f64 / self.config.rate
    }

    /// The events due by `elapsed` seconds from the start, at most `max` of them (the rest
    /// stay due), stamped `start_unix` (unix seconds) plus their offset, to the millisecond.
    pub fn due(&mut self, elapsed: f64, start_unix: f64, max: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < max {
            let offset = self.next_due();
            if offset > elapsed {
                break;
            }
            events.push(self.make(offset, start_unix));
        }
        events
    }

    /// Event number `self.generated`, due at `offset`.
    fn make(&mut self, offset: f64, start_unix: f64) -> Event {
        // To the millisecond, the same for the timestamp and the burst's second.
        let offset = (offset * 1000.0).round() / 1000.0;
        let c = &self.config;
        let (places, networks, sources) = (
            self.places.len() as u64,
            u64::from(c.networks),
            u64::from(c.sources),
        );
        // Always the same draws per event, whatever the tables, so that a change of settings
        // changes what is picked, never the streams.
        let city_draw = self.rng.unit();
        let network_draw = self.rng.next_u64();
        let host_draw = self.rng.next_u64();
        let suspicious = self.rng.chance(c.suspicious_share);
        let protocol = pick(&self.protocols, self.rng.unit());
        let sizes = protocol
            .as_ref()
            .and_then(|p| self.sizes_by_protocol.get(p))
            .unwrap_or(&self.sizes);
        let bytes = pick(sizes, self.rng.unit());

        let target = city_draw * self.places.last().copied().unwrap_or(0.0);
        let city = self
            .places
            .partition_point(|&cum| cum <= target)
            .min(self.places.len() - 1) as u64;
        // Network j = city + m * places, for every j below `networks`.
        let in_city = (networks - city - 1) / places + 1;
        let m = below(network_draw, in_city);
        let j = city + m * places;
        // Address k = j + u * networks, for every k below `sources`.
        let in_network = (sources - j - 1) / networks + 1;
        let u = below(host_draw, in_network);

        let seed = self.seed;
        // m < 512 and u < 254 (validated), so octets are distinct within a city and network.
        let (a, b) = city_block(seed, city as usize, (m / 256) % 2);
        let third = ((m % 256) * 167 + (mix(seed ^ 0x3D_0000 ^ city) & 0xFF)) % 256;
        let fourth = 1 + (u * 97 + mix(seed ^ 0x4D_0000 ^ j) % 254) % 254;
        let (_, latitude, longitude) = CITIES[city as usize];
        let mut row = Generated {
            ip: IpAddr::V4(Ipv4Addr::new(a, b, third as u8, fourth as u8)),
            latitude,
            longitude,
            suspicious,
        };
        self.scripted
            .apply(&self.config.bursts, offset as u64, &mut row);
        self.generated += 1;
        let mut event = Event::at(
            row.ip,
            row.latitude,
            row.longitude,
            ((start_unix + offset) * 1000.0).round() / 1000.0,
            row.suspicious,
        );
        event.protocol = protocol;
        event.bytes = bytes;
        event
    }
}

/// Uniform in `0..n` from 64 random bits (multiply-shift).
fn below(bits: u64, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const START: f64 = 1_767_225_600.0;

    fn run(config: LiveConfig, secs: f64) -> Vec<Event> {
        LiveGenerator::new(config)
            .unwrap()
            .due(secs, START, usize::MAX)
    }

    fn network(e: &Event) -> [u8; 3] {
        match e.ip {
            IpAddr::V4(ip) => {
                let [a, b, c, _] = ip.octets();
                [a, b, c]
            }
            IpAddr::V6(_) => panic!("only IPv4"),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_does_not() {
        let config = LiveConfig::default();
        let a = run(config.clone(), 20.0);
        assert_eq!(a, run(config.clone(), 20.0));
        assert_ne!(a, run(LiveConfig { seed: 7, ..config }, 20.0));
    }

    #[test]
    fn events_come_at_the_rate_and_stay_due_until_taken() {
        let mut generator = LiveGenerator::new(LiveConfig {
            rate: 200.0,
            ..LiveConfig::default()
        })
        .unwrap();
        // Due at 0, 1/200, ..., 1: 201 events by one second.
        assert_eq!(generator.due(1.0, START, usize::MAX).len(), 201);
        assert_eq!(generator.due(1.0, START, usize::MAX).len(), 0);
        let some = generator.due(3.0, START, 100);
        assert_eq!(some.len(), 100, "at most max at once");
        assert_eq!(generator.due(3.0, START, usize::MAX).len(), 300);
        assert_eq!(generator.generated(), 601);
        let times: Vec<f64> = some.iter().map(|e| e.timestamp).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(times[0], START + 1.005);
    }

    #[test]
    fn a_new_rate_sets_the_spacing_from_the_next_event_on() {
        let mut generator = LiveGenerator::new(LiveConfig {
            rate: 10.0,
            ..LiveConfig::default()
        })
        .unwrap();
        assert_eq!(generator.due(1.0, START, usize::MAX).len(), 11);
        let faster = LiveConfig {
            rate: 1000.0,
            ..generator.config().clone()
        };
        generator.reconfigure(faster).unwrap();
        assert_eq!(generator.due(2.0, START, usize::MAX).len(), 1000);
    }

    #[test]
    fn a_new_seed_waits_for_the_next_start() {
        let config = LiveConfig::default();
        let mut a = LiveGenerator::new(config.clone()).unwrap();
        let mut b = LiveGenerator::new(config.clone()).unwrap();
        a.due(1.0, START, usize::MAX);
        b.due(1.0, START, usize::MAX);
        a.reconfigure(LiveConfig { seed: 7, ..config }).unwrap();
        assert_eq!(a.config().seed, 7);
        assert_eq!(a.due(5.0, START, usize::MAX), b.due(5.0, START, usize::MAX));
    }

    #[test]
    fn sources_networks_and_places_are_exactly_as_many_as_configured() {
        let events = run(
            LiveConfig {
                rate: 10_000.0,
                sources: 300,
                networks: 40,
                places: 7,
                ..LiveConfig::default()
            },
            5.0,
        );
        let ips: HashSet<IpAddr> = events.iter().map(|e| e.ip).collect();
        let networks: HashSet<[u8; 3]> = events.iter().map(network).collect();
        let places: HashSet<(u64, u64)> = events
            .iter()
            .map(|e| {
                (
                    e.latitude.unwrap().to_bits(),
                    e.longitude.unwrap().to_bits(),
                )
            })
            .collect();
        assert_eq!((ips.len(), networks.len(), places.len()), (300, 40, 7));
        for ip in &ips {
            let IpAddr::V4(v4) = ip else { unreachable!() };
            assert!(!v4.is_private() && !v4.is_documentation() && v4.octets()[3] != 0);
        }
    }

    #[test]
    fn protocols_and_sizes_follow_their_weights_and_an_empty_table_leaves_the_field_out() {
        let events = run(LiveConfig::default(), 200.0);
        let mut protocols: HashMap<String, usize> = HashMap::new();
        let mut sizes: HashMap<(String, u64), usize> = HashMap::new();
        for e in &events {
            let protocol = e.protocol.clone().unwrap();
            *protocols.entry(protocol.clone()).or_default() += 1;
            *sizes.entry((protocol, e.bytes.unwrap())).or_default() += 1;
        }
        let share = |n: usize| n as f64 / events.len() as f64;
        assert!(
            (0.77..0.83).contains(&share(protocols["TCP"])),
            "{protocols:?}"
        );
        assert!(
            (0.03..0.07).contains(&share(protocols["ICMP"])),
            "{protocols:?}"
        );
        // Each protocol draws from its own table: TCP the IMIX, UDP and ICMP theirs, so only
        // TCP carries full-size packets.
        let mut drawn: Vec<_> = sizes.keys().map(|(p, b)| (p.as_str(), *b)).collect();
        drawn.sort();
        assert_eq!(
            drawn,
            [
                ("ICMP", 84),
                ("TCP", 64),
                ("TCP", 576),
                ("TCP", 1500),
                ("UDP", 64),
                ("UDP", 512),
                ("UDP", 1200)
            ]
        );
        let tcp_small = sizes[&("TCP".to_owned(), 64)] as f64 / protocols["TCP"] as f64;
        assert!((0.55..0.62).contains(&tcp_small), "{sizes:?}");
        let udp_small = sizes[&("UDP".to_owned(), 64)] as f64 / protocols["UDP"] as f64;
        assert!((0.55..0.65).contains(&udp_small), "{sizes:?}");
        let suspicious = events.iter().filter(|e| e.suspicious).count();
        assert!((0.02..0.04).contains(&share(suspicious)), "{suspicious}");
        let bare = run(
            LiveConfig {
                protocols: BTreeMap::new(),
                bytes: BTreeMap::new(),
                bytes_by_protocol: BTreeMap::new(),
                ..LiveConfig::default()
            },
            1.0,
        );
        assert!(
            bare.iter()
                .all(|e| e.protocol.is_none() && e.bytes.is_none())
        );
    }

    #[test]
    fn by_default_no_network_comes_near_a_heavy_hitter_share() {
        let events = run(LiveConfig::default(), 400.0);
        let mut per_network: HashMap<[u8; 3], usize> = HashMap::new();
        for e in &events {
            *per_network.entry(network(e)).or_default() += 1;
        }
        let top = per_network.values().max().copied().unwrap();
        assert!(
            (top as f64) < 0.025 * events.len() as f64,
            "{top} of {}",
            events.len()
        );
    }

    #[test]
    fn a_burst_takes_its_share_of_its_seconds_from_its_network_and_no_other() {
        let burst: ScriptedBurst = "203.0.113.0/24:0.3:10-20".parse().unwrap();
        let events = run(
            LiveConfig {
                rate: 500.0,
                bursts: vec![burst],
                ..LiveConfig::default()
            },
            30.0,
        );
        let (inside, outside): (Vec<&Event>, Vec<&Event>) = events
            .iter()
            .partition(|e| (START + 10.0..START + 20.0).contains(&e.timestamp));
        let from_burst =
            |list: &[&Event]| list.iter().filter(|e| network(e) == [203, 0, 113]).count();
        assert_eq!(from_burst(&outside), 0);
        let share = from_burst(&inside) as f64 / inside.len() as f64;
        assert!((0.27..0.33).contains(&share), "{share}");
    }

    #[test]
    fn settings_out_of_range_are_refused_naming_the_setting() {
        let ok = LiveConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(LiveConfig, &str)> = vec![
            (
                LiveConfig {
                    rate: 0.0,
                    ..ok.clone()
                },
                "rate",
            ),
            (
                LiveConfig {
                    rate: f64::NAN,
                    ..ok.clone()
                },
                "rate",
            ),
            (
                LiveConfig {
                    rate: 1e6,
                    ..ok.clone()
                },
                "rate",
            ),
            (
                LiveConfig {
                    places: 0,
                    ..ok.clone()
                },
                "places",
            ),
            (
                LiveConfig {
                    places: 1000,
                    ..ok.clone()
                },
                "places",
            ),
            (
                LiveConfig {
                    places: 1,
                    networks: 513,
                    ..ok.clone()
                },
                "networks",
            ),
            (
                LiveConfig {
                    sources: 10,
                    ..ok.clone()
                },
                "sources",
            ),
            (
                LiveConfig {
                    networks: 1,
                    sources: 255,
                    ..ok.clone()
                },
                "sources",
            ),
            (
                LiveConfig {
                    protocols: parse_table("TCP=-1").unwrap(),
                    ..ok.clone()
                },
                "protocols.TCP",
            ),
            (
                LiveConfig {
                    protocols: parse_table("TCP=0,UDP=0").unwrap(),
                    ..ok.clone()
                },
                "protocols",
            ),
            (
                LiveConfig {
                    protocols: parse_table("A B=1").unwrap(),
                    ..ok.clone()
                },
                "protocols.A B",
            ),
            (
                LiveConfig {
                    bytes: parse_table("0=1").unwrap(),
                    ..ok.clone()
                },
                "bytes.0",
            ),
            (
                LiveConfig {
                    bytes_by_protocol: parse_protocol_tables("UDP:0=1").unwrap(),
                    ..ok.clone()
                },
                "bytes_by_protocol.UDP.0",
            ),
            (
                LiveConfig {
                    bytes_by_protocol: parse_protocol_tables("A B:64=1").unwrap(),
                    ..ok.clone()
                },
                "bytes_by_protocol.A B",
            ),
            (
                LiveConfig {
                    bytes_by_protocol: parse_protocol_tables("UDP:64=0").unwrap(),
                    ..ok.clone()
                },
                "bytes_by_protocol.UDP",
            ),
            (
                LiveConfig {
                    suspicious_share: 1.5,
                    ..ok.clone()
                },
                "suspicious_share",
            ),
            (
                LiveConfig {
                    bursts: vec!["1.2.3.0/24:0.1:0-1".parse().unwrap(); 17],
                    ..ok.clone()
                },
                "bursts",
            ),
        ];
        for (config, field) in cases {
            let error = config.validate().unwrap_err();
            assert_eq!(error.field, field, "{error}");
            assert!(LiveGenerator::new(config.clone()).is_err());
            let mut running = LiveGenerator::new(ok.clone()).unwrap();
            assert!(running.reconfigure(config).is_err());
            assert_eq!(running.config(), &ok, "a refused change changes nothing");
        }
    }

    #[test]
    fn tables_are_written_key_equals_weight() {
        let table: BTreeMap<String, f64> = parse_table("TCP=80, UDP=20").unwrap();
        assert_eq!(table["TCP"], 80.0);
        assert_eq!(table.len(), 2);
        let sizes: BTreeMap<u64, f64> = parse_table("64=7,1500=1").unwrap();
        assert_eq!(sizes[&1500], 1.0);
        assert!(parse_table::<u64>("none").unwrap().is_empty());
        assert!(parse_table::<u64>("big=1").is_err());
        assert!(parse_table::<String>("TCP").is_err());
        assert!(parse_table::<String>("TCP=lots").is_err());
        let per = parse_protocol_tables("UDP:64=6,512=3; ICMP:84=1").unwrap();
        assert_eq!(per["UDP"][&512], 3.0);
        assert_eq!(per["ICMP"].len(), 1);
        assert!(parse_protocol_tables("none").unwrap().is_empty());
        assert!(parse_protocol_tables("UDP").is_err());
        assert!(parse_protocol_tables(":64=1").is_err());
        assert!(parse_protocol_tables("UDP:64").is_err());
        assert!(parse_protocol_tables("UDP:64=1;UDP:512=1").is_err());
    }

    #[test]
    fn the_config_reads_and_writes_as_the_control_api_shows_it() {
        let config = LiveConfig {
            bursts: vec!["203.0.113.0/24:0.3:60-90".parse().unwrap()],
            ..LiveConfig::default()
        };
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["protocols"]["TCP"], 80.0);
        assert_eq!(json["bytes"]["1500"], 1.0);
        assert_eq!(json["bytes_by_protocol"]["UDP"]["512"], 3.0);
        assert_eq!(json["bursts"][0], "203.0.113.0/24:0.3:60-90");
        let back: LiveConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, config);
    }
}
