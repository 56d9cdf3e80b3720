//! One MaxMind-format file: opening (mmap), telling its layout, and turning a record into an
//! [`IpLocation`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use maxminddb::{MaxMindDbError, Mmap, Reader};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::cache::Cache;
use crate::{DatabaseInfo, GeoIpError, IpLocation, Layout};

/// Decoded places by (database index, record offset); `None`: a record without coordinates.
pub(crate) type Records = Cache<(usize, usize), Option<Arc<IpLocation>>>;

/// An opened file and how to read its records.
pub(crate) struct Database {
    reader: Reader<Mmap>,
    layout: Layout,
}

/// Memory-maps `path`.
#[allow(unsafe_code)]
fn open_mmap(path: &Path) -> Result<Reader<Mmap>, MaxMindDbError> {
    // SAFETY: `open_mmap` is unsafe because the mapping is undefined behaviour if the file
    // is modified or truncated while mapped. The database files are read-only inputs: the
    // fetch script and geoipupdate replace a database by writing a new file and renaming it
    // over the old one, which leaves the mapped (old) inode intact. Editing a database in
    // place while the server runs is documented as unsupported (README, "IP geolocation").
    unsafe { Reader::open_mmap(path) }
}

impl Database {
    pub(crate) fn open(path: &Path) -> Result<(Database, DatabaseInfo), GeoIpError> {
        let reader = open_mmap(path).map_err(|source| GeoIpError::Open {
            path: path.to_owned(),
            source,
        })?;
        let unknown = |found| GeoIpError::UnknownLayout {
            path: path.to_owned(),
            found,
        };
        let (layout, sample) = detect_layout(&reader).map_err(unknown)?;
        let meta = reader.metadata();
        let description = meta
            .description
            .get("en")
            .or_else(|| meta.description.values().next())
            .cloned()
            .unwrap_or_default();
        let attribution = attribution(path, &meta.database_type, &description);
        let info = DatabaseInfo {
            path: path.to_owned(),
            database_type: meta.database_type.clone(),
            description,
            build_epoch: meta.build_epoch,
            ip_version: meta.ip_version,
            layout,
            attribution,
        };
        let db = Database { reader, layout };
        // Decode one record the way lookups will, so that a file whose fields have
        // unexpected types is refused here, not read as "not found" for every address.
        if let Some(sample) = sample {
            db.locate(sample, &Cache::new(0), 0).map_err(|e| {
                unknown(format!(
                    "its first record ({sample}) does not decode as {layout:?}: {e}"
                ))
            })?;
        }
        Ok((db, info))
    }

    /// The place this file gives `ip`, `Ok(None)` if it has no record with coordinates.
    ///
    /// Many addresses share one record; `records` keeps the decoded place per record
    /// (keyed by `id`, this file's index, and the record's offset), so that they also share
    /// one allocation and a new address of a known record costs only the tree walk.
    pub(crate) fn locate(
        &self,
        ip: IpAddr,
        records: &Records,
        id: usize,
    ) -> Result<Option<Arc<IpLocation>>, MaxMindDbError> {
        let result = self.reader.lookup(ip)?;
        let Some(offset) = result.offset().filter(|_| result.has_data()) else {
            return Ok(None);
        };
        if let Some(place) = records.get(&(id, offset)) {
            return Ok(place);
        }
        let place = match self.layout {
            Layout::GeoIp2 => result.decode::<Geoip2Record<'_>>()?.and_then(|r| r.place()),
            Layout::Flat => result.decode::<FlatRecord<'_>>()?.and_then(|r| r.place()),
        }
        .map(Arc::new);
        records.insert((id, offset), place.clone());
        Ok(place)
    }

    /// Like [`Database::locate`] for an IPv4 address in an IPv6 file: the IPv4 subtree
    /// (`::/96`, where MaxMind puts IPv4 data and aliases `::ffff:0:0/96` to), then the
    /// IPv4-mapped range `::ffff:0:0/96` itself, for files that store IPv4 there without the
    /// alias.
    pub(crate) fn locate_v4_in_v6(
        &self,
        ip: Ipv4Addr,
        records: &Records,
        id: usize,
    ) -> Result<Option<Arc<IpLocation>>, MaxMindDbError> {
        match self.locate(IpAddr::V4(ip), records, id)? {
            Some(place) => Ok(Some(place)),
            None => self.locate(IpAddr::V6(ip.to_ipv6_mapped()), records, id),
        }
    }
}

/// Reads the first record that has data: GeoIP2 keeps everything in nested maps
/// (`location`, `country`, `city`), the ip-location-db layout has top-level `latitude`,
/// `longitude` and `country_code`. An empty file is read as GeoIP2 (it answers nothing
/// either way). Also returns an address of that record. `Err` carries the keys that were
/// found instead.
fn detect_layout(reader: &Reader<Mmap>) -> Result<(Layout, Option<IpAddr>), String> {
    #[derive(Deserialize)]
    struct Probe {
        location: Option<IgnoredAny>,
        country: Option<IgnoredAny>,
        registered_country: Option<IgnoredAny>,
        latitude: Option<IgnoredAny>,
        country_code: Option<IgnoredAny>,
    }
    let mut networks = reader
        .networks(Default::default())
        .map_err(|e| format!("unreadable search tree ({e})"))?;
    let Some(first) = networks.next() else {
        return Ok((Layout::GeoIp2, None));
    };
    let first = first.map_err(|e| format!("unreadable first record ({e})"))?;
    let sample = first
        .network()
        .map_err(|e| format!("unreadable first network ({e})"))?
        .network();
    let keys: Option<std::collections::BTreeMap<String, IgnoredAny>> = first
        .decode()
        .map_err(|e| format!("first record is not a map ({e})"))?;
    let probe: Option<Probe> = first
        .decode()
        .map_err(|e| format!("first record is not a map ({e})"))?;
    match probe {
        Some(p) if p.latitude.is_some() || p.country_code.is_some() => {
            Ok((Layout::Flat, Some(sample)))
        }
        Some(p)
            if p.location.is_some() || p.country.is_some() || p.registered_country.is_some() =>
        {
            Ok((Layout::GeoIp2, Some(sample)))
        }
        _ => {
            let keys: Vec<String> = keys.unwrap_or_default().into_keys().collect();
            Err(format!("first record has keys [{}]", keys.join(", ")))
        }
    }
}

/// The attribution text the database's licence asks for, when we know it.
fn attribution(path: &Path, database_type: &str, description: &str) -> Option<String> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let text = format!("{database_type} {description}").to_ascii_lowercase();
    // The ip-location-db files say nothing about DB-IP in their metadata; their package
    // ships DB-IP's licence note, which scripts/fetch-geoip puts next to them.
    let licence_beside = path
        .parent()
        .is_some_and(|dir| dir.join("DBIP-LICENSE").is_file());
    if file.starts_with("dbip") || text.contains("dbip") || text.contains("db-ip") || licence_beside
    {
        Some(crate::DBIP_ATTRIBUTION.to_owned())
    } else {
        None
    }
}

/// The GeoIP2/GeoLite2 City layout (only the fields we use; others are skipped).
#[derive(Deserialize)]
struct Geoip2Record<'a> {
    #[serde(borrow)]
    city: Option<Named<'a>>,
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    registered_country: Option<Country<'a>>,
    location: Option<Location>,
    #[serde(borrow)]
    subdivisions: Option<Vec<Named<'a>>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<Coordinate>,
    longitude: Option<Coordinate>,
    accuracy_radius: Option<Radius>,
}

fn english<'a>(named: Option<&Named<'a>>) -> &'a str {
    named
        .and_then(|n| n.names.as_ref())
        .and_then(|n| n.en)
        .unwrap_or_default()
}

impl Geoip2Record<'_> {
    fn place(self) -> Option<IpLocation> {
        let location = self.location?;
        let (latitude, longitude) = coordinates(location.latitude?.0, location.longitude?.0)?;
        let country = self
            .country
            .and_then(|c| c.iso_code)
            .or_else(|| self.registered_country.and_then(|c| c.iso_code))
            .unwrap_or_default();
        Some(IpLocation {
            latitude,
            longitude,
            city: english(self.city.as_ref()).to_owned(),
            region: english(self.subdivisions.as_ref().and_then(|s| s.first())).to_owned(),
            country_code: country.to_owned(),
            accuracy_km: location.accuracy_radius.map(|r| r.0),
        })
    }
}

/// The flat layout of the `@ip-location-db` packages:
/// `country_code, state1, state2, city, postcode, latitude, longitude, timezone`.
#[derive(Deserialize)]
struct FlatRecord<'a> {
    #[serde(borrow)]
    city: Option<&'a str>,
    #[serde(borrow)]
    state1: Option<&'a str>,
    #[serde(borrow)]
    country_code: Option<&'a str>,
    latitude: Option<Coordinate>,
    longitude: Option<Coordinate>,
}

impl FlatRecord<'_> {
    fn place(self) -> Option<IpLocation> {
        let (latitude, longitude) = coordinates(self.latitude?.0, self.longitude?.0)?;
        Some(IpLocation {
            latitude,
            longitude,
            city: self.city.unwrap_or_default().to_owned(),
            region: self.state1.unwrap_or_default().to_owned(),
            country_code: self.country_code.unwrap_or_default().to_owned(),
            accuracy_km: None,
        })
    }
}

/// Coordinates on the globe, or `None` for values no place can have (a damaged record).
fn coordinates(latitude: f64, longitude: f64) -> Option<(f64, f64)> {
    ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude))
        .then_some((latitude, longitude))
}

/// An unsigned integer of any MMDB width (GeoIP2 writes `accuracy_radius` as uint16; the
/// reader's typed decoding would refuse it as a u32).
struct Radius(u32);

impl<'de> Deserialize<'de> for Radius {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Radius;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an unsigned integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Radius, E> {
                Ok(Radius(u32::try_from(v).unwrap_or(u32::MAX)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Radius, E> {
                Ok(Radius(u32::try_from(v).unwrap_or(0)))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Radius, E> {
                Ok(Radius(u32::try_from(v).unwrap_or(u32::MAX)))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The f64 nearest the shortest decimal that reads back as `v`: a latitude stored as the
/// float 37.422 becomes 37.422, not 37.422000885009766.
fn f32_decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// A coordinate stored as a double, a float, or a decimal string (writers differ).
struct Coordinate(f64);

impl<'de> Deserialize<'de> for Coordinate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Coordinate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a decimal string")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Coordinate, E> {
                Ok(Coordinate(v))
            }
            fn visit_f32<E: serde::de::Error>(self, v: f32) -> Result<Coordinate, E> {
                Ok(Coordinate(f32_decimal(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Coordinate, E> {
                Ok(Coordinate(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Coordinate, E> {
                Ok(Coordinate(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Coordinate, E> {
                v.trim().parse().map(Coordinate).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}
