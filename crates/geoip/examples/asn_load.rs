//! Load time, memory and lookup speed of the AS data (`--asn`):
//!
//!     ./scripts/fetch-asn && cargo run --release -p geoip --example asn_load [-- data/asn]
//!
//! Prints the ranges and networks loaded, the load time, the bytes the tables hold, the
//! process's peak resident memory (Linux) and lookups per second over pseudo-random IPv4
//! addresses.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "data/asn".into()));
    let rss_before = peak_rss_kb();
    let started = Instant::now();
    let db = geoip::AsnDb::open(&[path])?;
    let load = started.elapsed();
    let (v4, v6) = db.ranges();
    println!(
        "loaded {v4} IPv4 + {v6} IPv6 ranges, {} networks in {:.0} ms; tables {:.1} MB; peak RSS {:.1} MB (before loading {:.1} MB)",
        db.networks(),
        load.as_secs_f64() * 1000.0,
        db.memory_bytes() as f64 / 1e6,
        peak_rss_kb() as f64 / 1e3,
        rss_before as f64 / 1e3,
    );
    let n = 5_000_000u32;
    let mut x = 0x9e37_79b9u32;
    let mut found = 0u64;
    let started = Instant::now();
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        found += u64::from(db.lookup(std::net::Ipv4Addr::from(x).into()).is_some());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} lookups in {:.0} ms: {:.1} M/s ({found} found)",
        secs * 1000.0,
        f64::from(n) / secs / 1e6
    );
    Ok(())
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
