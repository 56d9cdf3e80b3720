//! `GeoIp` against the real default database (DB-IP City Lite, fetched by
//! `scripts/fetch-geoip`). Skipped, with a message, when the files are not there; CI fetches
//! them first.

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::PathBuf;

use geoip::{GeoIp, Layout, Unlocated};

/// `$TRAFFIC_GEOIP_DIR`, else the repository's `data/geoip/`.
fn database_dir() -> PathBuf {
    match std::env::var_os("TRAFFIC_GEOIP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/geoip"),
    }
}

fn real_database() -> Option<GeoIp> {
    let dir = database_dir();
    let files = GeoIp::default_files(&dir);
    if files.len() < geoip::DEFAULT_FILES.len() {
        eprintln!(
            "skipped: the DB-IP database is not in {} (run scripts/fetch-geoip)",
            dir.display()
        );
        return None;
    }
    Some(GeoIp::open(&files).unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_real_database_places_public_ipv4_and_ipv6_addresses() {
    let Some(geo) = real_database() else { return };
    let google_dns = geo.lookup(ip("8.8.8.8")).unwrap();
    assert_eq!(google_dns.country_code, "US");
    assert!(!google_dns.city.is_empty());
    // Coordinates within the United States (incl. Alaska and Hawaii).
    assert!(
        (18.0..72.0).contains(&google_dns.latitude),
        "{google_dns:?}"
    );
    assert!(
        (-180.0..-66.0).contains(&google_dns.longitude),
        "{google_dns:?}"
    );

    assert_eq!(geo.lookup(ip("1.1.1.1")).unwrap().country_code.len(), 2);
    let v6 = geo.lookup(ip("2001:4860:4860::8888")).unwrap();
    assert_eq!(v6.country_code.len(), 2, "{v6:?}");
    assert_eq!(
        geo.lookup(ip("2a00:1450:4001:80b::200e"))
            .unwrap()
            .country_code
            .len(),
        2
    );
    assert_eq!(geo.lookup(ip("192.168.1.1")), Err(Unlocated::Private));
}

#[test]
fn the_real_database_is_described_with_its_attribution() {
    let Some(geo) = real_database() else { return };
    let dbs = geo.databases();
    assert_eq!(dbs.iter().map(|d| d.ip_version).collect::<Vec<_>>(), [4, 6]);
    for db in dbs {
        assert_eq!(db.layout, Layout::Flat);
        // Built in 2026 (the pinned release is of June 2026).
        assert!(
            (1_767_225_600..1_798_761_600).contains(&db.build_epoch),
            "{db:?}"
        );
        assert!(
            db.attribution
                .as_deref()
                .unwrap()
                .contains("IP Geolocation by DB-IP")
        );
    }
}
