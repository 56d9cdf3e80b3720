//! Cost of placing an event: `Geocoder::locate` for coordinates seen before (cache hit) and
//! for new ones (k-d tree search over ~145,000 cities plus a point-in-border test).
//!
//! ```text
//! cargo bench -p server --bench geocode
//! ```

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use server::Geocoder;

fn main() {
    let started = Instant::now();
    let geo = Geocoder::new().unwrap();
    println!("load: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);

    // A deterministic spread of new coordinates over the inhabited latitudes.
    let n = 200_000u64;
    let fresh: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let lat = -55.0 + (a >> 40) as f64 / (1u64 << 24) as f64 * 125.0;
            let lon = -180.0 + (a & 0xFF_FFFF) as f64 / (1u64 << 24) as f64 * 360.0;
            (lat, lon)
        })
        .collect();
    let started = Instant::now();
    for &(lat, lon) in &fresh[..90_000] {
        black_box(geo.locate(lat, lon));
    }
    let miss = started.elapsed().as_secs_f64() / 90_000.0;
    let started = Instant::now();
    for _ in 0..10 {
        for &(lat, lon) in &fresh[..50_000] {
            black_box(geo.locate(lat, lon));
        }
    }
    let hit = started.elapsed().as_secs_f64() / 500_000.0;
    println!("locate, new coordinates: {:.2} µs each", miss * 1e6);
    println!("locate, cached coordinates: {:.3} µs each", hit * 1e6);
}
