//! Events per second into the analytics windows on one core, the cost of one report, and
//! memory with 1,000,000 distinct keys. See BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p traffic --bench analytics [-- --quick | --smoke]
//! ```
//!
//! `--smoke` (CI) runs every scenario on 20,000 events: it proves the bench still runs, its
//! numbers mean nothing.
//!
//! ```text
//! ```

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use traffic::analytics::{Analytics, AnalyticsConfig};
use traffic::{DataClock, Event, Place};

/// splitmix64, seeded: the same events on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn places(n: u64) -> Vec<Arc<Place>> {
    (0..n)
        .map(|i| {
            Arc::new(Place {
                key: i,
                city: format!("City{i}"),
                region: String::new(),
                country_code: format!("C{}", i % 60),
                country: String::new(),
                latitude: 0.0,
                longitude: 0.0,
            })
        })
        .collect()
}

/// `n` events, `per_second` to a second of the data's clock, from `ips` addresses (each
/// used in turn when `ips >= n`: all distinct), with bytes, protocol and status.
fn events(n: u64, per_second: u64, ips: u64, places: &[Arc<Place>]) -> Vec<(Event, Arc<Place>)> {
    let mut rng = Rng(42);
    let protocols = ["TCP", "UDP", "HTTP", "DNS"];
    (0..n)
        .map(|i| {
            let host = if ips >= n { i } else { rng.below(ips) };
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + host as u32));
            let mut event = Event::new(ip, 1_700_000_000.0 + (i / per_second) as f64, i % 10 == 0);
            event.bytes = Some(40 + rng.below(1460));
            event.protocol = Some(protocols[(i % 4) as usize].to_owned());
            event.status = Some([200, 200, 404, 503][(i % 4) as usize]);
            let place = Arc::clone(&places[(host % places.len() as u64) as usize]);
            (event, place)
        })
        .collect()
}

/// Feeds `events` `passes` times (each pass later on the data's clock), timing it: events
/// per wall second and per CPU second.
fn feed(analytics: &mut Analytics, events: &mut [(Event, Arc<Place>)], passes: u32) -> (f64, f64) {
    let span = events.last().map_or(0.0, |(e, _)| e.timestamp) - events[0].0.timestamp + 1.0;
    let started = Instant::now();
    let cpu = cpu_secs();
    let mut clock = i64::MIN;
    for pass in 0..passes {
        if pass > 0 {
            for (event, _) in events.iter_mut() {
                event.timestamp += span;
            }
        }
        for (event, place) in events.iter() {
            clock = clock.max(event.timestamp as i64);
            analytics.record(
                event,
                Some(place),
                DataClock {
                    second: clock,
                    era: 0,
                },
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    let n = events.len() as f64 * f64::from(passes);
    (n / secs, n / cpu)
}

/// CPU seconds this process has used (user + system), from /proc: the machine is shared, so
/// events per CPU second says more than events per wall second.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let smoke = std::env::args().any(|a| a == "--smoke");
    let passes = if quick || smoke { 2 } else { 5 };
    // Events per scenario (and distinct keys of the memory run).
    let n: u64 = if smoke { 20_000 } else { 1_000_000 };
    let places = places(2000);
    // Memory first, in a fresh process: 1,000,000 distinct keys over one full window.
    let mut distinct = events(n, (n / 60).max(1), n, &places);
    let before = rss_kib();
    let mut analytics = Analytics::new(AnalyticsConfig::default());
    feed(&mut analytics, &mut distinct, 1);
    let after = rss_kib();
    let report = analytics.report();
    println!(
        "{} distinct IPs (and their /24s) over one 60 s window, budget {} keys a second: the \
         windows hold {:.1} MiB by their own count, process RSS grew {:.1} MiB; ip exact: {}, \
         bound {} of {} events",
        thousands(n as f64),
        analytics.config().budget,
        analytics.memory_bytes() as f64 / (1 << 20) as f64,
        after.saturating_sub(before) as f64 / 1024.0,
        report.kinds.ip.exact,
        report.kinds.ip.error_bound.count,
        report.kinds.ip.total.count,
    );
    drop(analytics);
    drop(distinct);
    println!();
    println!(
        "| scenario | events/s into the windows (wall) | per CPU second | report | ip exact (bound) | memory (windows) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, per_second, ips) in [
        ("3,000 IPs, 1,000 events/s of data", 1_000, 3_000),
        ("3,000 IPs, 100,000 events/s of data", 100_000, 3_000),
        ("all distinct IPs, 100,000 events/s of data", 100_000, n),
    ] {
        let mut events = events(n, per_second, ips, &places);
        let mut analytics = Analytics::new(AnalyticsConfig::default());
        let (wall, cpu) = feed(&mut analytics, &mut events, passes);
        let started = Instant::now();
        let report = analytics.report();
        let report_ms = started.elapsed().as_secs_f64() * 1e3;
        println!(
            "| {name} | {} | {} | {report_ms:.1} ms | {} ({}) | {:.1} MiB |",
            thousands(wall),
            thousands(cpu),
            report.kinds.ip.exact,
            report.kinds.ip.error_bound.count,
            analytics.memory_bytes() as f64 / (1 << 20) as f64,
        );
    }
}
