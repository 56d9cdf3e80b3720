//! `GeoIp` against tiny databases these tests write themselves (with `mmdb-writer`), in both
//! layouts and both IP versions.

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use geoip::{GeoIp, GeoIpError, IpLocation, Layout, Unlocated};
use ipnet::IpNet;
use mmdb_writer::{IpVersion, Ipv4Aliasing, Value, Writer};

const BUILT: u64 = 1_780_000_000;

/// A fresh directory per call, under cargo's scratch space for integration tests.
fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "geoip-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn writer(database_type: &str, ip_version: IpVersion, aliasing: Ipv4Aliasing) -> Writer {
    Writer::builder(database_type)
        .ip_version(ip_version)
        .ipv4_aliasing(aliasing)
        .description(&[("en", "test database")])
        .build_epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(BUILT))
        .build()
}

fn save(writer: &Writer, name: &str) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn names(en: &str) -> Value {
    Value::map([("names", Value::map([("en", Value::from(en))]))])
}

/// A GeoIP2 City record as MaxMind writes them (doubles, nested maps, extra fields).
fn geoip2_city(city: &str, region: &str, country: &str, lat: f64, lon: f64, radius: u16) -> Value {
    Value::map([
        ("city", names(city)),
        (
            "country",
            Value::map([
                ("iso_code", Value::from(country)),
                ("geoname_id", Value::from(1_u32)),
            ]),
        ),
        (
            "location",
            Value::map([
                ("latitude", Value::from(lat)),
                ("longitude", Value::from(lon)),
                ("accuracy_radius", Value::from(radius)),
                ("time_zone", Value::from("Europe/London")),
            ]),
        ),
        ("subdivisions", Value::Array(vec![names(region)])),
    ])
}

/// An ip-location-db record: top-level fields, coordinates as floats like the real files.
fn flat_city(city: &str, state: &str, country: &str, lat: f32, lon: f32) -> Value {
    Value::map([
        ("country_code", Value::from(country)),
        ("state1", Value::from(state)),
        ("city", Value::from(city)),
        ("latitude", Value::from(lat)),
        ("longitude", Value::from(lon)),
        ("timezone", Value::from("America/Los_Angeles")),
    ])
}

fn place(city: &str, region: &str, country: &str, lat: f64, lon: f64) -> IpLocation {
    IpLocation {
        latitude: lat,
        longitude: lon,
        city: city.into(),
        region: region.into(),
        country_code: country.into(),
        accuracy_km: None,
    }
}

/// GeoIP2 layout, one IPv6 file holding IPv4 in its `::/96` subtree with MaxMind's aliases.
fn geoip2_db() -> PathBuf {
    let mut w = writer("GeoLite2-City", IpVersion::V6, Ipv4Aliasing::Enabled);
    w.insert_value(
        net("81.2.69.0/24"),
        geoip2_city("London", "England", "GB", 51.5142, -0.0931, 10),
    )
    .unwrap();
    w.insert_value(
        net("2a02:1::/32"),
        geoip2_city("Berlin", "Land Berlin", "DE", 52.52, 13.405, 50),
    )
    .unwrap();
    // A country-only record: known, but nowhere to put it on a globe.
    w.insert_value(
        net("2.2.2.0/24"),
        Value::map([("country", Value::map([("iso_code", Value::from("FR"))]))]),
    )
    .unwrap();
    // A documentation range the file (wrongly) places: classification must win.
    w.insert_value(
        net("192.0.2.0/24"),
        geoip2_city("Nowhere", "", "ZZ", 1.0, 1.0, 1),
    )
    .unwrap();
    save(&w, "GeoLite2-City.mmdb")
}

/// The ip-location-db layout: an IPv4 file and an IPv6 file, like the DB-IP package.
/// The IPv6 file also has (different) IPv4 data, to show which file answers IPv4.
fn flat_dbs() -> (PathBuf, PathBuf) {
    let mut v4 = writer("city ipv4", IpVersion::V4, Ipv4Aliasing::Disabled);
    v4.insert_value(
        net("8.8.8.0/24"),
        flat_city("Mountain View", "California", "US", 37.422, -122.085),
    )
    .unwrap();
    // Coordinates as decimal strings, as some converters write them.
    v4.insert_value(
        net("1.0.0.0/24"),
        Value::map([
            ("country_code", Value::from("AU")),
            ("city", Value::from("Brisbane")),
            ("latitude", Value::from("-27.4679")),
            ("longitude", Value::from("153.028")),
        ]),
    )
    .unwrap();
    let mut v6 = writer("city ipv6", IpVersion::V6, Ipv4Aliasing::Disabled);
    v6.insert_value(
        net("2001:4860::/32"),
        flat_city("Montreal", "Quebec", "CA", 45.5019, -73.5674),
    )
    .unwrap();
    v6.insert_value(
        net("8.8.8.0/24"),
        flat_city("Wrongtown", "", "XX", 0.5, 0.5),
    )
    .unwrap();
    (save(&v4, "city-ipv4.mmdb"), save(&v6, "city-ipv6.mmdb"))
}

#[test]
fn geoip2_layout_places_ipv4_and_ipv6_addresses() {
    let geo = GeoIp::open(&[geoip2_db()]).unwrap();
    let london = IpLocation {
        accuracy_km: Some(10),
        ..place("London", "England", "GB", 51.5142, -0.0931)
    };
    assert_eq!(geo.lookup(ip("81.2.69.142")), Ok(london.clone()));
    // A dual-stack socket's form of the same IPv4 address.
    assert_eq!(geo.lookup(ip("::ffff:81.2.69.142")), Ok(london));
    assert_eq!(
        geo.lookup(ip("2a02:1::5")),
        Ok(IpLocation {
            accuracy_km: Some(50),
            ..place("Berlin", "Land Berlin", "DE", 52.52, 13.405)
        })
    );
    let info = &geo.databases()[0];
    assert_eq!(info.layout, Layout::GeoIp2);
    assert_eq!(info.database_type, "GeoLite2-City");
    assert_eq!(info.description, "test database");
    assert_eq!(info.build_epoch, BUILT);
    assert_eq!(info.ip_version, 6);
    assert_eq!(info.attribution, None);
}

#[test]
fn flat_layout_places_ipv4_from_the_ipv4_file_and_ipv6_from_the_ipv6_file() {
    let (v4, v6) = flat_dbs();
    // Given in either order, IPv4 goes to the IPv4-only file.
    for paths in [[v4.clone(), v6.clone()], [v6.clone(), v4.clone()]] {
        let geo = GeoIp::open(&paths).unwrap();
        assert_eq!(
            geo.lookup(ip("8.8.8.8")),
            Ok(place("Mountain View", "California", "US", 37.422, -122.085))
        );
        assert_eq!(
            geo.lookup(ip("1.0.0.1")),
            Ok(place("Brisbane", "", "AU", -27.4679, 153.028))
        );
        assert_eq!(
            geo.lookup(ip("2001:4860:4860::8888")),
            Ok(place("Montreal", "Quebec", "CA", 45.5019, -73.5674))
        );
        assert!(geo.databases().iter().all(|d| d.layout == Layout::Flat));
    }
}

#[test]
fn with_only_an_ipv6_file_ipv4_is_read_from_its_ipv4_subtree() {
    let (_, v6) = flat_dbs();
    let geo = GeoIp::open(&[v6]).unwrap();
    assert_eq!(geo.lookup(ip("8.8.8.8")).unwrap().city, "Wrongtown");
}

#[test]
fn ipv4_stored_under_the_ipv4_mapped_range_is_found() {
    let mut w = writer("city ipv6", IpVersion::V6, Ipv4Aliasing::Disabled);
    w.insert_value(
        net("::ffff:9.9.9.0/120"),
        flat_city("Zurich", "Zurich", "CH", 47.37, 8.54),
    )
    .unwrap();
    let geo = GeoIp::open(&[save(&w, "mapped.mmdb")]).unwrap();
    assert_eq!(geo.lookup(ip("9.9.9.9")).unwrap().city, "Zurich");
}

#[test]
fn an_ipv6_address_is_not_found_with_only_an_ipv4_file() {
    let (v4, _) = flat_dbs();
    let geo = GeoIp::open(&[v4]).unwrap();
    assert_eq!(
        geo.lookup(ip("2001:4860:4860::8888")),
        Err(Unlocated::NotFound)
    );
}

#[test]
fn public_addresses_outside_the_database_are_not_found() {
    let geo = GeoIp::open(&[geoip2_db()]).unwrap();
    for addr in ["5.5.5.5", "81.2.70.1", "2a03::1", "2.2.2.2"] {
        assert_eq!(geo.lookup(ip(addr)), Err(Unlocated::NotFound), "{addr}");
    }
    let (v4, v6) = flat_dbs();
    let geo = GeoIp::open(&[v4, v6]).unwrap();
    for addr in ["5.5.5.5", "2a03::1"] {
        assert_eq!(geo.lookup(ip(addr)), Err(Unlocated::NotFound), "{addr}");
    }
}

#[test]
fn non_public_addresses_get_their_reason_even_where_a_database_has_a_record() {
    let geo = GeoIp::open(&[geoip2_db()]).unwrap();
    let cases = [
        ("127.0.0.1", Unlocated::Loopback),
        ("::1", Unlocated::Loopback),
        ("10.1.2.3", Unlocated::Private),
        ("192.168.0.10", Unlocated::Private),
        ("100.64.1.1", Unlocated::Private),
        ("fd00::1", Unlocated::Private),
        ("fe80::1", Unlocated::Private),
        ("192.0.2.1", Unlocated::Reserved),
        ("224.0.0.251", Unlocated::Reserved),
        ("255.255.255.255", Unlocated::Reserved),
        ("0.0.0.0", Unlocated::Reserved),
        ("2001:db8::1", Unlocated::Reserved),
        ("ff02::1", Unlocated::Reserved),
    ];
    for (addr, reason) in cases {
        assert_eq!(geo.lookup(ip(addr)), Err(reason), "{addr}");
        assert_eq!(geoip::classify(ip(addr)), Some(reason), "{addr}");
    }
}

#[test]
fn without_a_database_public_addresses_have_no_database_and_others_keep_their_reason() {
    for geo in [GeoIp::none(), GeoIp::open(&[]).unwrap()] {
        assert_eq!(geo.lookup(ip("8.8.8.8")), Err(Unlocated::NoDatabase));
        assert_eq!(
            geo.lookup(ip("2001:4860:4860::8888")),
            Err(Unlocated::NoDatabase)
        );
        assert_eq!(geo.lookup(ip("192.168.1.1")), Err(Unlocated::Private));
        assert_eq!(geo.lookup(ip("127.0.0.1")), Err(Unlocated::Loopback));
        assert!(geo.databases().is_empty());
    }
}

#[test]
fn cached_answers_equal_fresh_ones() {
    let (v4, v6) = flat_dbs();
    let paths = [v4, v6];
    let cached = GeoIp::open(&paths).unwrap();
    let uncached = GeoIp::open_with_cache(&paths, 0).unwrap();
    let addrs = [
        "8.8.8.8",
        "8.8.8.9",
        "1.0.0.1",
        "5.5.5.5",
        "2001:4860::1",
        "2a03::1",
    ];
    for round in 0..3 {
        for addr in addrs {
            let expected = uncached.lookup(ip(addr));
            assert_eq!(cached.lookup(ip(addr)), expected, "{addr}, round {round}");
            assert_eq!(cached.lookup_uncached(ip(addr)), expected, "{addr}");
        }
    }
    assert_eq!(cached.cache_len(), addrs.len());
    assert_eq!(uncached.cache_len(), 0);
}

#[test]
fn addresses_of_one_record_share_one_cached_place() {
    let (v4, v6) = flat_dbs();
    let geo = GeoIp::open(&[v4, v6]).unwrap();
    let a = geo.lookup_shared(ip("8.8.8.8")).unwrap();
    let b = geo.lookup_shared(ip("8.8.8.200")).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(geo.cache_len(), 2);
    assert_eq!(geo.cached_records(), 1);
}

#[test]
fn lookups_from_many_threads_agree() {
    let (v4, v6) = flat_dbs();
    let geo = GeoIp::open_with_cache(&[v4, v6], 64).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for n in 0..2_000u32 {
                    let addr = IpAddr::from([8, 8, 8, (n % 256) as u8]);
                    assert_eq!(geo.lookup(addr).unwrap().country_code, "US");
                    let other = IpAddr::from([5, 5, (n >> 8) as u8, n as u8]);
                    assert_eq!(geo.lookup(other), Err(Unlocated::NotFound));
                }
            });
        }
    });
    assert!(geo.cache_len() <= geo.cache_max_len());
}

#[test]
fn a_database_in_another_layout_is_refused_with_the_keys_it_has() {
    let mut w = writer("GeoLite2-ASN", IpVersion::V6, Ipv4Aliasing::Enabled);
    w.insert_value(
        net("8.8.8.0/24"),
        Value::map([("autonomous_system_number", Value::from(15169_u32))]),
    )
    .unwrap();
    let err = GeoIp::open(&[save(&w, "asn.mmdb")]).unwrap_err();
    assert!(
        matches!(&err, GeoIpError::UnknownLayout { found, .. } if found.contains("autonomous_system_number")),
        "{err}"
    );
}

#[test]
fn a_file_whose_fields_have_unexpected_types_is_refused_at_open() {
    let mut w = writer("city ipv4", IpVersion::V4, Ipv4Aliasing::Disabled);
    w.insert_value(
        net("8.8.8.0/24"),
        Value::map([
            ("country_code", Value::from("US")),
            ("latitude", Value::map([("deg", Value::from(37_u32))])),
            ("longitude", Value::from(-122.0)),
        ]),
    )
    .unwrap();
    let err = GeoIp::open(&[save(&w, "odd.mmdb")]).unwrap_err();
    assert!(matches!(err, GeoIpError::UnknownLayout { .. }), "{err}");
}

#[test]
fn a_missing_or_broken_file_is_an_open_error_naming_it() {
    let missing = scratch_dir().join("missing.mmdb");
    let err = GeoIp::open(&[missing]).unwrap_err();
    assert!(matches!(err, GeoIpError::Open { .. }), "{err}");
    assert!(err.to_string().contains("missing.mmdb"), "{err}");

    let broken = scratch_dir().join("broken.mmdb");
    std::fs::write(&broken, b"not a database").unwrap();
    let err = GeoIp::open(&[broken]).unwrap_err();
    assert!(matches!(err, GeoIpError::Open { .. }), "{err}");
}

#[test]
fn a_dbip_file_carries_the_attribution_its_licence_asks_for() {
    let (v4, _) = flat_dbs();
    // The fetch script leaves DB-IP's licence note next to the files.
    let dir = v4.parent().unwrap();
    std::fs::write(dir.join("DBIP-LICENSE"), "CC BY 4.0").unwrap();
    let geo = GeoIp::open(&[v4]).unwrap();
    let attribution = geo.databases()[0].attribution.as_deref().unwrap();
    assert!(
        attribution.contains("IP Geolocation by DB-IP"),
        "{attribution}"
    );
    assert!(attribution.contains("https://db-ip.com"), "{attribution}");
}

#[test]
fn reasons_have_their_wire_names() {
    let reasons = [
        (Unlocated::Loopback, "loopback"),
        (Unlocated::Private, "private"),
        (Unlocated::Reserved, "reserved"),
        (Unlocated::NotFound, "not_found"),
        (Unlocated::NoDatabase, "no_database"),
    ];
    for (reason, wire) in reasons {
        assert_eq!(reason.as_str(), wire);
        assert_eq!(reason.to_string(), wire);
    }
}
