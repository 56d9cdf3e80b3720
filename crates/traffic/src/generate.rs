//! Sample-data generator: synthetic traffic in the course's CSV format.
//!
//! The output looks like real geo-located traffic: a few big cities dominate (Zipf-like
//! weights over a built-in table of 160 cities, the top one holding about 15% of rows and the
//! top three about 29%, as in the course file), the long tail is spread a little around its
//! cities, the rate wanders and has a few bursts, about 2% of addresses are IPv6, and a small
//! share of rows is flagged suspicious, half of those from a few scanners that come back
//! again and again. Addresses avoid private, reserved and documentation ranges.
//!
//! Output is the course format exactly: header [`HEADER`], integer unix seconds, the flag as
//! `0.0`/`1.0`, rows sorted by time. Memory is constant in the number of rows.
//!
//! The same [`GenerateConfig`] gives the same bytes on every machine and every version of
//! this crate that does not say otherwise: the random numbers come from our own SplitMix64,
//! and all arithmetic is IEEE-754 `+ - * / sqrt` and rounding, which are exact everywhere
//! (no `sin`, `exp` or `pow`, whose last bits differ between C libraries).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::event;

pub mod live;
mod scripted;

pub use live::{LiveConfig, LiveConfigError, LiveGenerator};
pub use scripted::ScriptedBurst;

/// The header line written first, the same as the course file's.
pub const HEADER: &str = "ip address,Latitude,Longitude,Timestamp,suspicious";

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateConfig {
    /// Number of rows, at least 1.
    pub rows: u64,
    /// Time span in seconds, at least 1: timestamps fall in `start..start + duration_secs`.
    pub duration_secs: u64,
    /// Unix seconds of the first second of the span.
    pub start: i64,
    /// Seed of the random numbers: the same seed gives the same bytes.
    pub seed: u64,
    /// Share of rows flagged suspicious, in `0..=1`.
    pub suspicious_share: f64,
}

impl Default for GenerateConfig {
    /// 3000 rows over 600 s from 2026-01-01T00:00:00Z, seed 42, 3% suspicious.
    fn default() -> Self {
        Self {
            rows: 3000,
            duration_secs: 600,
            start: 1_767_225_600,
            seed: 42,
            suspicious_share: 0.03,
        }
    }
}

/// A [`GenerateConfig`] that cannot produce a usable file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `rows` is 0.
    #[error("rows must be at least 1")]
    NoRows,
    /// `duration_secs` is 0.
    #[error("duration must be at least 1 second")]
    ZeroDuration,
    /// `suspicious_share` is not a number in `0..=1`.
    #[error("suspicious share must be between 0 and 1, got {0}")]
    ShareOutOfRange(f64),
    /// Some timestamp would fall outside what the readers accept (1990 to 2200).
    #[error(
        "timestamps from {start} for {duration_secs} s fall outside 1990..2200, which readers refuse"
    )]
    TimeOutOfRange {
        /// The configured start.
        start: i64,
        /// The configured duration.
        duration_secs: u64,
    },
}

impl GenerateConfig {
    /// Checks that the config makes sense: at least one row and one second, a share in
    /// `0..=1`, and every timestamp in the range the CSV reader and the server accept.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.rows == 0 {
            return Err(ConfigError::NoRows);
        }
        if self.duration_secs == 0 {
            return Err(ConfigError::ZeroDuration);
        }
        if !(0.0..=1.0).contains(&self.suspicious_share) {
            return Err(ConfigError::ShareOutOfRange(self.suspicious_share));
        }
        let last = i64::try_from(self.duration_secs - 1)
            .ok()
            .and_then(|d| self.start.checked_add(d));
        let in_range = |t: i64| event::timestamp_from_number(t as f64).is_ok();
        match last {
            Some(last) if in_range(self.start) && in_range(last) => Ok(()),
            _ => Err(ConfigError::TimeOutOfRange {
                start: self.start,
                duration_secs: self.duration_secs,
            }),
        }
    }
}

/// Writes the header and `config.rows` rows to `out`, returning the number of rows written.
///
/// An invalid config (see [`GenerateConfig::validate`]) fails before anything is written,
/// with an [`io::ErrorKind::InvalidInput`] error wrapping the [`ConfigError`]. Output is
/// buffered here, so `out` need not be.
pub fn write_csv<W: Write>(config: &GenerateConfig, out: W) -> io::Result<u64> {
    write_csv_scripted(config, &[], out)
}

/// [`write_csv`] with scripted bursts: each takes over its share of the rows of its seconds
/// (see [`ScriptedBurst`]). Without bursts, the same bytes as [`write_csv`].
pub fn write_csv_scripted<W: Write>(
    config: &GenerateConfig,
    bursts: &[ScriptedBurst],
    out: W,
) -> io::Result<u64> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut out = io::BufWriter::new(out);
    writeln!(out, "{HEADER}")?;

    let profile = RateProfile::new(config.seed, config.duration_secs);
    let mut rows = RowMaker::new(config);
    let mut rng = SplitMix64::new(config.seed ^ 0x5EC0_4D5C_0047_5EED);
    let mut scripted = scripted::Scripted::new(config.seed);

    // Spread the rows over the seconds: each second draws a near-Poisson count around its
    // share of the rows still to place, so the total is exact and the counts look natural.
    let total_weight: f64 = (0..config.duration_secs).map(|s| profile.weight(s)).sum();
    let mut weight_left = total_weight;
    let mut left = config.rows;
    let mut written = 0;
    for second in 0..config.duration_secs {
        if left == 0 {
            break;
        }
        let weight = profile.weight(second);
        let count = if second + 1 == config.duration_secs || weight >= weight_left {
            left
        } else {
            let mean = left as f64 * weight / weight_left;
            let draw = (mean + mean.sqrt() * rng.normal()).round();
            // `as` saturates, and the draw is at least 0 here.
            (draw.max(0.0) as u64).min(left)
        };
        weight_left -= weight;
        left -= count;
        // duration_secs - 1 fits in i64: validate() checked start + it.
        let timestamp = config.start + second as i64;
        for _ in 0..count {
            let mut row = rows.next();
            scripted.apply(bursts, second, &mut row);
            writeln!(
                out,
                "{},{},{},{timestamp},{}",
                row.ip,
                row.latitude,
                row.longitude,
                if row.suspicious { "1.0" } else { "0.0" }
            )?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

/// Cities of the world as (name, latitude, longitude), ranked by how much traffic they send:
/// the first [`EXACT_CITIES`] are the big hubs. Coordinates are approximate city centres from
/// common knowledge; the ranking is invented.
const CITIES: &[(&str, f64, f64)] = &[
    ("Moscow", 55.7558, 37.6173),
    ("Beijing", 39.9042, 116.4074),
    ("Ashburn", 39.0438, -77.4874),
    ("Frankfurt", 50.1109, 8.6821),
    ("Sao Paulo", -23.5505, -46.6333),
    ("Singapore", 1.3521, 103.8198),
    ("Mumbai", 19.0760, 72.8777),
    ("Tokyo", 35.6762, 139.6503),
    ("London", 51.5074, -0.1278),
    ("Shanghai", 31.2304, 121.4737),
    ("Amsterdam", 52.3676, 4.9041),
    ("Seoul", 37.5665, 126.9780),
    ("Los Angeles", 34.0522, -118.2437),
    ("New York", 40.7128, -74.0060),
    ("Jakarta", -6.2088, 106.8456),
    ("Paris", 48.8566, 2.3522),
    ("Ho Chi Minh City", 10.8231, 106.6297),
    ("Dallas", 32.7767, -96.7970),
    ("Istanbul", 41.0082, 28.9784),
    ("Guangzhou", 23.1291, 113.2644),
    ("Chicago", 41.8781, -87.6298),
    ("Hong Kong", 22.3193, 114.1694),
    ("Bangkok", 13.7563, 100.5018),
    ("Saint Petersburg", 59.9311, 30.3609),
    ("Kyiv", 50.4501, 30.5234),
    ("Warsaw", 52.2297, 21.0122),
    ("Madrid", 40.4168, -3.7038),
    ("Toronto", 43.6532, -79.3832),
    ("Mexico City", 19.4326, -99.1332),
    ("Buenos Aires", -34.6037, -58.3816),
    ("Lagos", 6.5244, 3.3792),
    ("Cairo", 30.0444, 31.2357),
    ("Tehran", 35.6892, 51.3890),
    ("Delhi", 28.7041, 77.1025),
    ("Bengaluru", 12.9716, 77.5946),
    ("Karachi", 24.8607, 67.0011),
    ("Dhaka", 23.8103, 90.4125),
    ("Manila", 14.5995, 120.9842),
    ("Taipei", 25.0330, 121.5654),
    ("Sydney", -33.8688, 151.2093),
    ("Melbourne", -37.8136, 144.9631),
    ("Johannesburg", -26.2041, 28.0473),
    ("Nairobi", -1.2921, 36.8219),
    ("Berlin", 52.5200, 13.4050),
    ("Stockholm", 59.3293, 18.0686),
    ("Milan", 45.4642, 9.1900),
    ("Rome", 41.9028, 12.4964),
    ("Bucharest", 44.4268, 26.1025),
    ("Prague", 50.0755, 14.4378),
    ("Vienna", 48.2082, 16.3738),
    ("Zurich", 47.3769, 8.5417),
    ("Dublin", 53.3498, -6.2603),
    ("Manchester", 53.4808, -2.2426),
    ("Brussels", 50.8503, 4.3517),
    ("Lisbon", 38.7223, -9.1393),
    ("Barcelona", 41.3851, 2.1734),
    ("Helsinki", 60.1699, 24.9384),
    ("Oslo", 59.9139, 10.7522),
    ("Copenhagen", 55.6761, 12.5683),
    ("Budapest", 47.4979, 19.0402),
    ("Athens", 37.9838, 23.7275),
    ("Sofia", 42.6977, 23.3219),
    ("Belgrade", 44.7866, 20.4489),
    ("Minsk", 53.9006, 27.5590),
    ("Novosibirsk", 55.0084, 82.9357),
    ("Yekaterinburg", 56.8389, 60.6057),
    ("Kazan", 55.7887, 49.1221),
    ("Nizhny Novgorod", 56.2965, 43.9361),
    ("Rostov-on-Don", 47.2357, 39.7015),
    ("Krasnodar", 45.0355, 38.9753),
    ("Samara", 53.1959, 50.1002),
    ("Almaty", 43.2220, 76.8512),
    ("Tashkent", 41.2995, 69.2401),
    ("Baku", 40.4093, 49.8671),
    ("Tbilisi", 41.7151, 44.8271),
    ("Riyadh", 24.7136, 46.6753),
    ("Dubai", 25.2048, 55.2708),
    ("Tel Aviv", 32.0853, 34.7818),
    ("Ankara", 39.9334, 32.8597),
    ("Casablanca", 33.5731, -7.5898),
    ("Algiers", 36.7538, 3.0588),
    ("Tunis", 36.8065, 10.1815),
    ("Accra", 5.6037, -0.1870),
    ("Abidjan", 5.3600, -4.0083),
    ("Addis Ababa", 8.9806, 38.7578),
    ("Dar es Salaam", -6.7924, 39.2083),
    ("Kinshasa", -4.4419, 15.2663),
    ("Luanda", -8.8390, 13.2894),
    ("Cape Town", -33.9249, 18.4241),
    ("Khartoum", 15.5007, 32.5599),
    ("Chengdu", 30.5728, 104.0668),
    ("Shenzhen", 22.5431, 114.0579),
    ("Wuhan", 30.5928, 114.3055),
    ("Hangzhou", 30.2741, 120.1551),
    ("Nanjing", 32.0603, 118.7969),
    ("Xi'an", 34.3416, 108.9398),
    ("Chongqing", 29.4316, 106.9123),
    ("Tianjin", 39.3434, 117.3616),
    ("Shenyang", 41.8057, 123.4315),
    ("Harbin", 45.8038, 126.5349),
    ("Qingdao", 36.0671, 120.3826),
    ("Kunming", 24.8801, 102.8329),
    ("Osaka", 34.6937, 135.5023),
    ("Nagoya", 35.1815, 136.9066),
    ("Busan", 35.1796, 129.0756),
    ("Hanoi", 21.0278, 105.8342),
    ("Kuala Lumpur", 3.1390, 101.6869),
    ("Chennai", 13.0827, 80.2707),
    ("Hyderabad", 17.3850, 78.4867),
    ("Kolkata", 22.5726, 88.3639),
    ("Pune", 18.5204, 73.8567),
    ("Lahore", 31.5204, 74.3587),
    ("Colombo", 6.9271, 79.8612),
    ("Kathmandu", 27.7172, 85.3240),
    ("Ulaanbaatar", 47.8864, 106.9057),
    ("Perth", -31.9505, 115.8605),
    ("Brisbane", -27.4698, 153.0251),
    ("Auckland", -36.8485, 174.7633),
    ("San Francisco", 37.7749, -122.4194),
    ("Seattle", 47.6062, -122.3321),
    ("San Jose", 37.3382, -121.8863),
    ("Phoenix", 33.4484, -112.0740),
    ("Denver", 39.7392, -104.9903),
    ("Houston", 29.7604, -95.3698),
    ("Atlanta", 33.7490, -84.3880),
    ("Miami", 25.7617, -80.1918),
    ("Boston", 42.3601, -71.0589),
    ("Washington", 38.9072, -77.0369),
    ("Philadelphia", 39.9526, -75.1652),
    ("Minneapolis", 44.9778, -93.2650),
    ("Kansas City", 39.0997, -94.5786),
    ("St. Louis", 38.6270, -90.1994),
    ("Salt Lake City", 40.7608, -111.8910),
    ("Portland", 45.5152, -122.6784),
    ("Las Vegas", 36.1699, -115.1398),
    ("Columbus", 39.9612, -82.9988),
    ("Charlotte", 35.2271, -80.8431),
    ("Montreal", 45.5017, -73.5673),
    ("Vancouver", 49.2827, -123.1207),
    ("Calgary", 51.0447, -114.0719),
    ("Guadalajara", 20.6597, -103.3496),
    ("Monterrey", 25.6866, -100.3161),
    ("Bogota", 4.7110, -74.0721),
    ("Lima", -12.0464, -77.0428),
    ("Santiago", -33.4489, -70.6693),
    ("Rio de Janeiro", -22.9068, -43.1729),
    ("Belo Horizonte", -19.9167, -43.9345),
    ("Porto Alegre", -30.0346, -51.2177),
    ("Caracas", 10.4806, -66.9036),
    ("Quito", -0.1807, -78.4678),
    ("Havana", 23.1136, -82.3666),
    ("Panama City", 8.9824, -79.5199),
    ("Montevideo", -34.9011, -56.1645),
    ("Reykjavik", 64.1466, -21.9426),
    ("Anchorage", 61.2181, -149.9003),
    ("Honolulu", 21.3069, -157.8583),
    ("Vladivostok", 43.1198, 131.8869),
    ("Irkutsk", 52.2870, 104.3050),
    ("Krasnoyarsk", 56.0153, 92.8932),
    ("Omsk", 54.9885, 73.3242),
];

/// The top cities send from one exact coordinate each (geo-IP databases put a whole city's
/// addresses on one point); the rest are jittered so the tail is not all on a few points.
const EXACT_CITIES: usize = 20;
/// Jitter of tail cities: up to this many degrees either way, in latitude and longitude.
const JITTER_LAT: f64 = 0.25;
/// See [`JITTER_LAT`].
const JITTER_LON: f64 = 0.35;
/// The city of rank `k` (1-based) has weight `1 / (k + ZIPF_OFFSET)`: with 160 cities the
/// top one gets ~15% of rows and the top three ~29%, close to the course file (14%, 29%).
const ZIPF_OFFSET: f64 = 0.3;
/// Share of rows from IPv6 addresses.
const IPV6_SHARE: f64 = 0.02;
/// Share of IPv4 addresses with the last octet zeroed, as anonymised geo-IP data has.
const ZEROED_V4_SHARE: f64 = 0.65;
/// Share of suspicious rows that come from the scanners (the rest are one-offs).
const SCANNER_SHARE: f64 = 0.5;
/// How the scanners split their rows among themselves.
const SCANNER_WEIGHTS: [f64; 3] = [0.55, 0.3, 0.15];

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and fixed forever, unlike a
/// library generator whose output may change between versions.
struct SplitMix64(u64);

impl SplitMix64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        unit_from_bits(self.next_u64())
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-40 for our small `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[-1, 1)`.
    fn signed(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }

    /// Approximately standard normal (Irwin-Hall: the sum of 12 uniforms, minus 6).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// SplitMix64's output function: a strong 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits as a float in `[0, 1)`.
fn unit_from_bits(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A burst of traffic: the rate is multiplied by up to `1 + height` around `center`.
#[derive(Debug, Clone, Copy)]
struct Burst {
    center: f64,
    half_width: f64,
    height: f64,
}

/// The relative rate of traffic in each second: slow and fast wandering times a few bursts.
struct RateProfile {
    seed: u64,
    bursts: Vec<Burst>,
}

impl RateProfile {
    fn new(seed: u64, duration_secs: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0xB0B5_7000_0000_0001);
        let span = duration_secs as f64;
        let count = (1 + duration_secs / 200).min(6);
        let bursts = (0..count)
            .map(|_| Burst {
                center: rng.unit() * span,
                half_width: (span / 100.0).max(3.0) * (0.5 + rng.unit()),
                height: 2.0 + 4.0 * rng.unit(),
            })
            .collect();
        Self { seed, bursts }
    }

    /// Relative rate in second `s`; always positive.
    fn weight(&self, s: u64) -> f64 {
        let slow = smooth_noise(self.seed ^ 0x51_0000, s, 150);
        let fast = smooth_noise(self.seed ^ 0xFA_0000, s, 30);
        let mut w = (0.6 + 0.8 * slow) * (0.7 + 0.6 * fast);
        for burst in &self.bursts {
            let x = (s as f64 - burst.center) / burst.half_width;
            if x.abs() < 1.0 {
                let bump = 1.0 - x * x;
                w *= 1.0 + burst.height * bump * bump;
            }
        }
        w
    }
}

/// Value noise in `[0, 1)`: random values every `spacing` seconds, eased in between.
fn smooth_noise(key: u64, s: u64, spacing: u64) -> f64 {
    let knot = s / spacing;
    let value = |k: u64| unit_from_bits(mix(key ^ k.wrapping_mul(SplitMix64::GAMMA)));
    let (a, b) = (value(knot), value(knot + 1));
    let f = (s % spacing) as f64 / spacing as f64;
    a + (b - a) * f * f * (3.0 - 2.0 * f)
}

/// One generated row, time aside.
struct Generated {
    ip: IpAddr,
    latitude: f64,
    longitude: f64,
    suspicious: bool,
}

/// A host that scans the server: one address at one place, flagged every time.
struct Scanner {
    ip: IpAddr,
    latitude: f64,
    longitude: f64,
}

/// Makes rows: where from, which address, flagged or not.
struct RowMaker {
    rng: SplitMix64,
    seed: u64,
    /// Running sums of the cities' weights, for picking one.
    cumulative: Vec<f64>,
    scanners: Vec<Scanner>,
    suspicious_share: f64,
}

impl RowMaker {
    fn new(config: &GenerateConfig) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=CITIES.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + ZIPF_OFFSET);
                total
            })
            .collect();
        let mut rng = SplitMix64::new(config.seed);
        let seed = config.seed;
        let scanners = SCANNER_WEIGHTS
            .iter()
            .map(|_| {
                // Scanners sit in the tail, at a city's exact coordinate.
                let city = EXACT_CITIES + rng.below((CITIES.len() - EXACT_CITIES) as u64) as usize;
                let (_, latitude, longitude) = CITIES[city];
                let (a, b) = city_block(seed, city, rng.below(2));
                let ip = Ipv4Addr::new(a, b, rng.below(256) as u8, 1 + rng.below(254) as u8);
                Scanner {
                    ip: IpAddr::V4(ip),
                    latitude,
                    longitude,
                }
            })
            .collect();
        Self {
            rng,
            seed,
            cumulative,
            scanners,
            suspicious_share: config.suspicious_share,
        }
    }

    fn next(&mut self) -> Generated {
        let suspicious = self.rng.chance(self.suspicious_share);
        if suspicious && self.rng.chance(SCANNER_SHARE) {
            let pick = self.pick_scanner();
            let scanner = &self.scanners[pick];
            return Generated {
                ip: scanner.ip,
                latitude: scanner.latitude,
                longitude: scanner.longitude,
                suspicious,
            };
        }
        let city = self.pick_city();
        let (_, mut latitude, mut longitude) = CITIES[city];
        if city >= EXACT_CITIES {
            latitude = round4((latitude + JITTER_LAT * self.rng.signed()).clamp(-90.0, 90.0));
            longitude = round4((longitude + JITTER_LON * self.rng.signed()).clamp(-180.0, 180.0));
        }
        let ip = if self.rng.chance(IPV6_SHARE) {
            IpAddr::V6(self.ipv6(latitude, longitude))
        } else {
            let (a, b) = city_block(self.seed, city, self.rng.below(2));
            let c = self.rng.below(256) as u8;
            let d = if self.rng.chance(ZEROED_V4_SHARE) {
                0
            } else {
                1 + self.rng.below(254) as u8
            };
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        };
        Generated {
            ip,
            latitude,
            longitude,
            suspicious,
        }
    }

    fn pick_city(&mut self) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = self.rng.unit() * total;
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(CITIES.len() - 1)
    }

    fn pick_scanner(&mut self) -> usize {
        let mut target = self.rng.unit();
        for (i, weight) in SCANNER_WEIGHTS.iter().enumerate() {
            if target < *weight {
                return i;
            }
            target -= weight;
        }
        SCANNER_WEIGHTS.len() - 1
    }

    /// An address in a prefix of the regional registry that serves the place, roughly.
    fn ipv6(&mut self, latitude: f64, longitude: f64) -> Ipv6Addr {
        let first = if longitude < -30.0 {
            if latitude > 12.0 { 0x2600 } else { 0x2800 } // ARIN, LACNIC
        } else if longitude >= 60.0 {
            0x2400 // APNIC
        } else if latitude < 35.0 && longitude > -20.0 && !(latitude > 12.0 && longitude > 34.0) {
            0x2c0f // AFRINIC
        } else {
            0x2a00 // RIPE NCC
        };
        let first = if first == 0x2c0f {
            first
        } else {
            first + self.rng.below(16) as u16
        };
        // Half the addresses are whole, half cut to their /64 as anonymised data has them.
        let whole = self.rng.chance(0.5);
        let mut segments = [first, 0, 0, 0, 0, 0, 0, 0];
        let used = if whole { 8 } else { 4 };
        for segment in &mut segments[1..used] {
            *segment = self.rng.below(1 << 16) as u16;
        }
        Ipv6Addr::from(segments)
    }
}

/// One of the two public IPv4 /16 blocks (`which` is 0 or 1) that the city's addresses come
/// from, fixed for a seed so a city's addresses look alike.
fn city_block(seed: u64, city: usize, which: u64) -> (u8, u8) {
    let mut bits = mix(seed ^ 0xC1_7900_0000 ^ ((city as u64) << 1 | which));
    // About 85% of /16 blocks are public, so this ends after a try or two.
    loop {
        let (a, b) = ((bits >> 56) as u8, (bits >> 48) as u8);
        if is_public_block(a, b) {
            return (a, b);
        }
        bits = mix(bits.wrapping_add(SplitMix64::GAMMA));
    }
}

/// Whether every address in `a.b.0.0/16` is ordinary public unicast: not private, shared,
/// loopback, link-local, multicast, reserved, benchmarking or documentation space (the
/// /24 documentation and relay nets are refused with their whole /16).
fn is_public_block(a: u8, b: u8) -> bool {
    !matches!(
        (a, b),
        (0, _)
            | (10, _)
            | (100, 64..=127)
            | (127, _)
            | (169, 254)
            | (172, 16..=31)
            | (192, 0 | 88 | 168)
            | (198, 18 | 19 | 51)
            | (203, 0)
            | (224..=255, _)
    )
}

/// Rounded to 4 decimals (about 11 m), as geo-IP data is; never `-0`.
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4 + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::CsvReader;
    use std::collections::HashMap;

    fn generate(config: &GenerateConfig) -> Vec<u8> {
        let mut out = Vec::new();
        let rows = write_csv(config, &mut out).unwrap();
        assert_eq!(rows, config.rows);
        out
    }

    fn events(bytes: &[u8]) -> Vec<event::Event> {
        CsvReader::new(bytes)
            .unwrap()
            .map(|r| r.unwrap().event)
            .collect()
    }

    #[test]
    fn same_config_gives_the_same_bytes_and_another_seed_does_not() {
        let config = GenerateConfig::default();
        let a = generate(&config);
        assert_eq!(a, generate(&config));
        let other = generate(&GenerateConfig { seed: 43, ..config });
        assert_ne!(a, other);
    }

    #[test]
    fn default_output_starts_with_the_course_header_and_pinned_rows() {
        // Pins the exact start of the default output: if this changes, so does
        // data/sample.csv, and old seeds no longer reproduce old files.
        let out = String::from_utf8(generate(&GenerateConfig::default())).unwrap();
        let want = "ip address,Latitude,Longitude,Timestamp,suspicious\n\
                    146.171.26.0,34.0522,-118.2437,1767225600,0.0\n\
                    181.209.18.0,6.7531,3.0803,1767225600,0.0\n\
                    61.7.165.162,53.5708,-6.1244,1767225600,0.0\n";
        assert!(out.starts_with(want), "{}", &out[..want.len()]);
        assert_eq!(out.lines().count(), 3001);
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn writes_exactly_the_rows_asked_for() {
        for (rows, duration_secs) in [(1, 1), (1, 600), (7, 3), (3000, 600), (10_000, 60)] {
            let config = GenerateConfig {
                rows,
                duration_secs,
                ..GenerateConfig::default()
            };
            assert_eq!(events(&generate(&config)).len() as u64, rows, "{config:?}");
        }
    }

    #[test]
    fn output_reads_back_through_the_csv_reader_without_errors() {
        let out = generate(&GenerateConfig::default());
        let reader = CsvReader::new(&out[..]).unwrap();
        let mut errors = 0;
        for item in reader {
            errors += u64::from(item.is_err());
        }
        assert_eq!(errors, 0);
    }

    #[test]
    fn timestamps_are_sorted_whole_seconds_within_the_span() {
        let config = GenerateConfig::default();
        let events = events(&generate(&config));
        let start = config.start as f64;
        let end = start + config.duration_secs as f64;
        assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(events.iter().all(|e| e.timestamp.fract() == 0.0));
        assert!(events.iter().all(|e| (start..end).contains(&e.timestamp)));
        assert_eq!(events.first().unwrap().timestamp, start);
    }

    #[test]
    fn rate_is_several_rows_a_second_and_has_bursts() {
        let config = GenerateConfig::default();
        let mut per_second: HashMap<i64, u32> = HashMap::new();
        for e in events(&generate(&config)) {
            *per_second.entry(e.timestamp as i64).or_default() += 1;
        }
        let busiest = per_second.values().copied().max().unwrap();
        assert!(per_second.len() > 500, "most seconds have traffic");
        assert!(
            busiest >= 15,
            "a burst reaches 3x the mean rate of 5/s, got {busiest}"
        );
    }

    #[test]
    fn suspicious_share_is_close_to_the_config_and_scanners_repeat() {
        for seed in [1, 2, 3] {
            let config = GenerateConfig {
                rows: 20_000,
                seed,
                ..GenerateConfig::default()
            };
            let events = events(&generate(&config));
            let flagged: Vec<_> = events.iter().filter(|e| e.suspicious).collect();
            let share = flagged.len() as f64 / events.len() as f64;
            assert!((0.025..=0.035).contains(&share), "seed {seed}: {share}");
            let mut per_ip: HashMap<IpAddr, u32> = HashMap::new();
            for e in &flagged {
                *per_ip.entry(e.ip).or_default() += 1;
            }
            let top = per_ip.values().copied().max().unwrap();
            assert!(top >= 50, "seed {seed}: the busiest scanner has {top} rows");
        }
        let none = GenerateConfig {
            suspicious_share: 0.0,
            ..GenerateConfig::default()
        };
        assert!(events(&generate(&none)).iter().all(|e| !e.suspicious));
    }

    #[test]
    fn locations_are_heavy_tailed_like_real_traffic() {
        let events = events(&generate(&GenerateConfig::default()));
        let mut per_place: HashMap<(u64, u64), u32> = HashMap::new();
        for e in &events {
            *per_place
                .entry((
                    e.latitude.unwrap().to_bits(),
                    e.longitude.unwrap().to_bits(),
                ))
                .or_default() += 1;
        }
        let mut counts: Vec<u32> = per_place.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let share = |n: usize| counts.iter().take(n).sum::<u32>() as f64 / events.len() as f64;
        assert!(share(1) > 0.08, "top place {}", share(1));
        assert!((0.2..0.4).contains(&share(3)), "top three {}", share(3));
        assert!(
            counts.len() > 500,
            "a long jittered tail: {} places",
            counts.len()
        );
    }

    #[test]
    fn addresses_are_public_and_about_two_percent_ipv6() {
        let config = GenerateConfig {
            rows: 20_000,
            ..GenerateConfig::default()
        };
        let events = events(&generate(&config));
        let mut v6 = 0;
        for e in &events {
            match e.ip {
                IpAddr::V4(ip) => {
                    let [a, b, ..] = ip.octets();
                    assert!(is_public_block(a, b), "{ip}");
                    assert!(!ip.is_private() && !ip.is_loopback() && !ip.is_documentation());
                }
                IpAddr::V6(ip) => {
                    v6 += 1;
                    let first = ip.segments()[0];
                    assert!((0x2400..0x2c10).contains(&first), "{ip}");
                    assert_ne!(ip.segments()[..2], [0x2001, 0x0db8], "{ip}");
                }
            }
        }
        let share = f64::from(v6) / events.len() as f64;
        assert!((0.015..0.025).contains(&share), "{share}");
    }

    #[test]
    fn reserved_blocks_are_not_public() {
        for (a, b) in [
            (0, 1),
            (10, 0),
            (100, 64),
            (127, 0),
            (169, 254),
            (172, 16),
            (172, 31),
        ] {
            assert!(!is_public_block(a, b), "{a}.{b}");
        }
        for (a, b) in [
            (192, 168),
            (192, 0),
            (198, 51),
            (203, 0),
            (224, 0),
            (255, 255),
        ] {
            assert!(!is_public_block(a, b), "{a}.{b}");
        }
        for (a, b) in [(1, 1), (8, 8), (100, 63), (172, 15), (172, 32), (223, 255)] {
            assert!(is_public_block(a, b), "{a}.{b}");
        }
    }

    #[test]
    fn city_table_has_distinct_valid_coordinates() {
        assert!((120..=200).contains(&CITIES.len()));
        for (i, (name, lat, lon)) in CITIES.iter().enumerate() {
            assert!(event::check_latitude(*lat).is_ok(), "{name}");
            assert!(event::check_longitude(*lon).is_ok(), "{name}");
            for (other, lat2, lon2) in &CITIES[..i] {
                assert!((lat, lon) != (lat2, lon2), "{name} and {other}");
                assert_ne!(name, other);
            }
        }
    }

    #[test]
    fn nonsense_configs_are_refused_before_writing() {
        let ok = GenerateConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        for (config, want) in [
            (GenerateConfig { rows: 0, ..ok }, ConfigError::NoRows),
            (
                GenerateConfig {
                    duration_secs: 0,
                    ..ok
                },
                ConfigError::ZeroDuration,
            ),
            (
                GenerateConfig {
                    suspicious_share: 1.5,
                    ..ok
                },
                ConfigError::ShareOutOfRange(1.5),
            ),
            (
                GenerateConfig { start: 0, ..ok },
                ConfigError::TimeOutOfRange {
                    start: 0,
                    duration_secs: 600,
                },
            ),
            (
                GenerateConfig {
                    duration_secs: u64::MAX,
                    ..ok
                },
                ConfigError::TimeOutOfRange {
                    start: ok.start,
                    duration_secs: u64::MAX,
                },
            ),
        ] {
            assert_eq!(config.validate(), Err(want));
            let mut out = Vec::new();
            let err = write_csv(&config, &mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(out.is_empty());
        }
        let nan = GenerateConfig {
            suspicious_share: f64::NAN,
            ..ok
        };
        assert!(matches!(
            nan.validate(),
            Err(ConfigError::ShareOutOfRange(_))
        ));
    }
}
