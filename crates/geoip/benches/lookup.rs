//! Cost of placing an IP address with the real default database (DB-IP City Lite, fetched
//! by `scripts/fetch-geoip`): lookups uncached (search tree + record decode) and cached, on
//! one thread and on two, over 100,000 distinct public IPv4 addresses (and 20,000 IPv6), and
//! the cache's memory (anonymous RSS, so the mapped database pages are not counted).
//!
//! ```text
//! ./scripts/fetch-geoip && cargo bench -p geoip
//! ```
//! `TRAFFIC_GEOIP_DIR` points it at another directory holding the two files.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Instant;

use geoip::GeoIp;

/// Deterministic, well-spread 64-bit values.
fn spread(i: u64) -> u64 {
    let mut x = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// `n` distinct addresses that `classify` calls public.
fn public_addresses(n: usize, make: impl Fn(u64) -> IpAddr) -> Vec<IpAddr> {
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        let ip = make(spread(i));
        i += 1;
        if geoip::classify(ip).is_none() && seen.insert(ip) {
            out.push(ip);
        }
    }
    out
}

/// Anonymous resident memory in bytes (heap; not the file-backed database pages).
fn rss_anon() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn per_second(n: usize, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let dir = std::env::var_os("TRAFFIC_GEOIP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/geoip"));
    let files = GeoIp::default_files(&dir);
    if files.len() < geoip::DEFAULT_FILES.len() {
        println!(
            "skipped: the DB-IP database is not in {} (run scripts/fetch-geoip)",
            dir.display()
        );
        return;
    }

    let v4 = public_addresses(100_000, |x| IpAddr::V4(Ipv4Addr::from(x as u32)));
    // Inside 2a00::/12 (RIPE's main IPv6 block), where the database has many records.
    let v6 = public_addresses(20_000, |x| {
        let low = u128::from(x) | (u128::from(spread(x)) << 64);
        IpAddr::V6(Ipv6Addr::from((0x2a00_u128 << 112) | (low >> 12)))
    });

    let started = Instant::now();
    let uncached = GeoIp::open_with_cache(&files, 0).unwrap();
    println!(
        "open (mmap, layout check): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let located = v4.iter().filter(|&&ip| uncached.lookup(ip).is_ok()).count();
    println!(
        "IPv4 sample: {} distinct public addresses, {located} located",
        v4.len()
    );
    let located6 = v6.iter().filter(|&&ip| uncached.lookup(ip).is_ok()).count();
    println!(
        "IPv6 sample: {} distinct public addresses, {located6} located",
        v6.len()
    );

    // Uncached: every lookup walks the search tree and decodes the record.
    let started = Instant::now();
    for &ip in &v4 {
        black_box(uncached.lookup(ip).ok());
    }
    let rate = per_second(v4.len(), started);
    println!(
        "uncached IPv4: {:>10.0} lookups/s ({:.2} µs each)",
        rate,
        1e6 / rate
    );
    let started = Instant::now();
    for &ip in &v6 {
        black_box(uncached.lookup(ip).ok());
    }
    let rate = per_second(v6.len(), started);
    println!(
        "uncached IPv6: {:>10.0} lookups/s ({:.2} µs each)",
        rate,
        1e6 / rate
    );

    // Cached (default capacity): the first pass fills the cache, later passes hit it.
    let before = rss_anon();
    let cached = GeoIp::open(&files).unwrap();
    let started = Instant::now();
    for &ip in &v4 {
        black_box(cached.lookup(ip).ok());
    }
    let rate = per_second(v4.len(), started);
    println!(
        "first pass (miss + insert): {:>10.0} lookups/s ({:.2} µs each)",
        rate,
        1e6 / rate
    );
    let after = rss_anon();
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "cache: {} answers (max {}) sharing {} records, anonymous RSS +{:.1} MB = {:.0} bytes/answer",
            cached.cache_len(),
            cached.cache_max_len(),
            cached.cached_records(),
            after.saturating_sub(before) as f64 / 1e6,
            after.saturating_sub(before) as f64 / cached.cache_len() as f64
        );
    }

    let rounds = 10;
    let started = Instant::now();
    for _ in 0..rounds {
        for &ip in &v4 {
            black_box(cached.lookup(ip).ok());
        }
    }
    let rate = per_second(rounds * v4.len(), started);
    println!(
        "cached, lookup (copies the strings): {:>10.0} lookups/s ({:.3} µs each)",
        rate,
        1e6 / rate
    );
    let started = Instant::now();
    for _ in 0..rounds {
        for &ip in &v4 {
            black_box(cached.lookup_shared(ip).ok());
        }
    }
    let rate = per_second(rounds * v4.len(), started);
    println!(
        "cached, lookup_shared (Arc):         {:>10.0} lookups/s ({:.3} µs each)",
        rate,
        1e6 / rate
    );

    // Two threads on the shared cache (the machine's core count for the server).
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2 {
            let (cached, v4) = (&cached, &v4);
            s.spawn(move || {
                for r in 0..rounds {
                    // The threads walk the list from different ends of it.
                    let offset = (t * v4.len() / 2 + r) % v4.len();
                    for i in 0..v4.len() {
                        black_box(cached.lookup_shared(v4[(offset + i) % v4.len()]).ok());
                    }
                }
            });
        }
    });
    let rate = per_second(2 * rounds * v4.len(), started);
    println!("cached, 2 threads, lookup_shared: {rate:>10.0} lookups/s in total");

    // A flood of distinct addresses: the cache stays bounded.
    let flood = public_addresses(400_000, |x| IpAddr::V4(Ipv4Addr::from((x >> 32) as u32)));
    let before_flood = rss_anon();
    for &ip in &flood {
        black_box(cached.lookup_shared(ip).ok());
    }
    if let (Some(before), Some(after)) = (before_flood, rss_anon()) {
        println!(
            "after 400,000 more distinct addresses: {} answers (max {}), {} records, anonymous RSS +{:.1} MB during the flood",
            cached.cache_len(),
            cached.cache_max_len(),
            cached.cached_records(),
            after.saturating_sub(before) as f64 / 1e6
        );
    }
}
