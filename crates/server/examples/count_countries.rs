//! The brute-force count the access-log end-to-end test (scripts/e2e-access-log.mjs) checks
//! the page against: hits per country of an access log, counted without the sender's parser,
//! the HTTP API, the hub or the aggregates. Each line's first field is the client address;
//! it is looked up in the DB-IP files (data/geoip, or the directory given second) and the
//! coordinates found are named by the same bundled geocoder the server uses.
//!
//!     cargo run -p server --example count_countries -- FILE [GEOIP_DIR]
//!
//! Prints `{"lines": N, "countries": {"US": n, ...}, "unlocated": {"private": n, ...}}`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::IpAddr;
use std::path::Path;

use server::geo::Locate;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: count_countries FILE [GEOIP_DIR]"))?;
    let dir = args.next().unwrap_or_else(|| geoip::DEFAULT_DIR.into());
    let files = geoip::GeoIp::default_files(Path::new(&dir));
    anyhow::ensure!(
        !files.is_empty(),
        "no DB-IP files in {dir} (run scripts/fetch-geoip)"
    );
    let db = geoip::GeoIp::open(&files)?;
    let geo = server::Geocoder::shared();
    let mut lines = 0u64;
    let mut countries: BTreeMap<String, u64> = BTreeMap::new();
    let mut unlocated: BTreeMap<&'static str, u64> = BTreeMap::new();
    for line in std::io::BufReader::new(std::fs::File::open(&file)?).lines() {
        let line = line?;
        let Some(Ok(ip)) = line.split(' ').next().map(str::parse::<IpAddr>) else {
            continue; // not a log line
        };
        lines += 1;
        match db.locate(ip) {
            Ok(at) => {
                let place = geo.locate(at.latitude, at.longitude);
                *countries.entry(place.country_code.clone()).or_default() += 1;
            }
            Err(reason) => *unlocated.entry(reason.as_str()).or_default() += 1,
        }
    }
    println!(
        "{}",
        serde_json::json!({"lines": lines, "countries": countries, "unlocated": unlocated})
    );
    Ok(())
}
