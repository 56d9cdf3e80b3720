//! Events per second through 20 event rules on one core: the shipped examples and 16 more of
//! every shape (comparisons, lists, regexes, networks, and/or/not), with their per-key state,
//! on a mix of access-log and packet events (the synthetic mix is hostile: about half the
//! events match some rule, and every match updates its key's state). See BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p traffic --bench rules [-- --smoke]
//! ```
//!
//! `--smoke` (CI) runs on 20,000 events: it proves the bench still runs, its numbers mean
//! nothing.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use traffic::analytics::alerts::{Alerts, AlertsConfig};
use traffic::analytics::rules::{RuleSet, RuleSpec, RuleType};
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

/// The shipped event rules and 16 more: 20 in all.
fn rules() -> RuleSet {
    let mut set = RuleSet::default();
    set.rules.retain(|r| r.rule_type == RuleType::Event);
    let more = [
        json!({"field": "status", "op": ">=", "value": 500}),
        json!({"field": "country", "op": "in", "value": ["KP", "IR", "SY", "CU"]}),
        json!({"all": [{"field": "method", "op": "==", "value": "POST"},
                       {"field": "path", "op": "matches", "value": "^/(login|admin)"}]}),
        json!({"field": "bytes", "op": ">", "value": 10_000_000}),
        json!({"field": "dest_port", "op": "in", "value": [21, 25, 110, 143, 993, 995]}),
        json!({"all": [{"field": "suspicious"}, {"field": "protocol", "op": "==", "value": "DNS"}]}),
        json!({"field": "ip", "op": "in", "value": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}),
        json!({"all": [{"field": "method", "op": "exists"},
                       {"not": {"field": "method", "op": "in", "value": ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]}}]}),
        json!({"all": [{"field": "status", "op": "==", "value": 401}, {"field": "path", "op": "matches", "value": "^/api/"}]}),
        json!({"field": "src_port", "op": "<", "value": 1024}),
        json!({"any": [{"field": "path", "op": "matches", "value": "\\.\\./"}, {"field": "path", "op": "matches", "value": "(?i)union.+select"}]}),
        json!({"field": "dest_ip", "op": "in", "value": ["198.51.100.0/24"]}),
        json!({"all": [{"field": "protocol", "op": "==", "value": "UDP"}, {"field": "dest_port", "op": "==", "value": 123}, {"field": "bytes", "op": ">", "value": 468}]}),
        json!({"field": "status", "op": "in", "value": [403, 429]}),
        json!({"all": [{"field": "country", "op": "==", "value": "RU"}, {"field": "suspicious"}]}),
        json!({"field": "path", "op": "matches", "value": "(?i)\\.(php|asp|aspx|jsp|cgi)$"}),
    ];
    for (i, when) in more.into_iter().enumerate() {
        set.rules.push(RuleSpec {
            when: Some(serde_json::from_value(when).unwrap()),
            hold_secs: Some(60),
            ..RuleSpec::new(&format!("bench_{i}"), RuleType::Event)
        });
    }
    assert_eq!(set.rules.len(), 20);
    set
}

fn places() -> Vec<Arc<Place>> {
    ["US", "DE", "FR", "RU", "CN", "BR", "IN", "KP"]
        .iter()
        .enumerate()
        .map(|(i, cc)| {
            Arc::new(Place {
                key: i as u64,
                city: format!("City{i}"),
                region: String::new(),
                country_code: (*cc).to_owned(),
                country: String::new(),
                latitude: 0.0,
                longitude: 0.0,
            })
        })
        .collect()
}

/// `n` events, 10,000 a second of the data's clock, from 50,000 addresses: half access-log
/// lines (method, path, status, bytes), half packets (protocol, ports, bytes, dest_ip).
fn events(n: u64, places: &[Arc<Place>]) -> Vec<(Event, Arc<Place>)> {
    let mut rng = Rng(7);
    let paths = [
        "/",
        "/index.html",
        "/api/items",
        "/static/app.js",
        "/login",
        "/wp-login.php",
        "/img/a.png",
        "/search?q=x",
    ];
    let methods = ["GET", "GET", "GET", "POST", "HEAD"];
    let protocols = ["TCP", "TCP", "UDP", "DNS", "ICMP", "SSH"];
    let ports = [443u16, 80, 53, 22, 123, 8080, 3389];
    (0..n)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(0x0b00_0000 + rng.below(50_000) as u32);
            let mut e = Event::new(
                ip.into(),
                1_736_919_120.0 + (i / 10_000) as f64,
                rng.below(50) == 0,
            );
            if i % 2 == 0 {
                e.method = Some(methods[rng.below(5) as usize].to_owned());
                e.path = Some(paths[rng.below(8) as usize].to_owned());
                e.status = Some([200u16, 200, 200, 304, 404, 500, 401][rng.below(7) as usize]);
                e.bytes = Some(rng.below(60_000));
            } else {
                e.protocol = Some(protocols[rng.below(6) as usize].to_owned());
                e.dest_port = Some(ports[rng.below(7) as usize]);
                e.src_port = Some(1024 + rng.below(60_000) as u16);
                e.bytes = Some(40 + rng.below(1500));
                e.dest_ip = Some(std::net::Ipv4Addr::new(203, 0, 113, 1).into());
            }
            (
                e,
                Arc::clone(&places[rng.below(places.len() as u64) as usize]),
            )
        })
        .collect()
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let n: u64 = if smoke { 20_000 } else { 2_000_000 };
    let passes = if smoke { 1 } else { 3 };
    let places = places();
    let events = events(n, &places);
    println!("| rules | events | matches | alerts fired | events/s (wall) | per CPU second |");
    println!("|---|---|---|---|---|---|");
    for (name, rules) in [
        ("20 event rules", rules()),
        (
            "the built-in set (4 event rules, rate_jump and new_country counting)",
            RuleSet::default(),
        ),
    ] {
        let mut best = (0.0f64, 0.0f64);
        let mut fired = 0;
        let mut matched = 0;
        for _ in 0..passes {
            let mut alerts = Alerts::with_rules(AlertsConfig::default(), rules.clone()).unwrap();
            let started = Instant::now();
            let cpu = cpu_secs();
            for (event, place) in &events {
                let clock = DataClock {
                    second: event.timestamp as i64,
                    era: 0,
                };
                alerts.observe(event, Some(place), Some(64500), clock);
            }
            let wall = n as f64 / started.elapsed().as_secs_f64();
            let cpu = n as f64 / (cpu_secs() - cpu).max(1e-9);
            best = (best.0.max(wall), best.1.max(cpu));
            fired = alerts.take_fired().len();
            matched = alerts
                .status()
                .iter()
                .filter_map(|s| s.matched)
                .sum::<u64>();
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            thousands(n as f64),
            thousands(matched as f64),
            thousands(fired as f64),
            thousands(best.0),
            thousands(best.1),
        );
    }
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
