//! The shipped alert rules on the course's file, fed as the hub feeds them (each event placed
//! by the server's geocoder, counted in the aggregates and the windows, observed by the
//! rules; the windowed rules checked once per second of the data's clock): quiet on the file
//! as it is, and firing only during a suspicious burst added to it.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use server::Geocoder;
use traffic::analytics::alerts::{Alert, AlertState, Alerts, AlertsConfig};
use traffic::analytics::rules::RuleType;
use traffic::analytics::{Analytics, AnalyticsConfig};
use traffic::csv::CsvReader;
use traffic::{Aggregates, AggregatesConfig, Event, Location};

const COURSE_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ip_addresses.csv"
);

fn course_events() -> Vec<Event> {
    CsvReader::from_path(COURSE_FILE)
        .unwrap_or_else(|e| panic!("the course file is expected at {COURSE_FILE}: {e}"))
        .map(|row| row.unwrap().event)
        .collect()
}

/// Every alert change the shipped rules make on `events` (in time order).
fn run(events: &[Event]) -> Vec<Alert> {
    let geo = Geocoder::shared();
    let mut aggregates = Aggregates::new(AggregatesConfig::default());
    let mut analytics = Analytics::new(AnalyticsConfig::default());
    let mut alerts = Alerts::new(AlertsConfig::default());
    let mut changes = Vec::new();
    let mut second = None;
    let now = Instant::now();
    for event in events {
        let this = event.timestamp.floor() as i64;
        if second.is_some_and(|s| s != this) {
            changes.extend(alerts.evaluate(&analytics.report()));
        }
        second = Some(this);
        let (lat, lon) = event.coordinates().unwrap();
        let place = geo.locate(lat, lon);
        aggregates.record(event, Location::Event(&place), now);
        let clock = aggregates.clock().unwrap();
        analytics.record(event, Some(&place), clock);
        alerts.observe(event, Some(&place), None, clock);
    }
    changes.extend(alerts.evaluate(&analytics.report()));
    changes
}

#[test]
fn the_shipped_rules_fire_nothing_on_the_course_file() {
    let changes = run(&course_events());
    assert!(changes.is_empty(), "{changes:#?}");
}

#[test]
fn a_suspicious_burst_in_the_course_file_fires_while_it_lasts_and_resolves_after() {
    let mut events = course_events();
    let start = events[0].timestamp.floor() as i64;
    // From second 300 to 310: 25 suspicious events a second from one /24 in Moscow (the
    // file's own rate is about 5 a second).
    for i in 0..250 {
        let t = (start + 300 + i / 25) as f64 + 0.5;
        let ip = format!("203.0.113.{}", i % 200 + 1);
        events.push(Event::at(ip.parse().unwrap(), 55.7558, 37.6173, t, true));
    }
    events.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    let changes = run(&events);
    assert!(!changes.is_empty());
    let fired: Vec<&Alert> = changes
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .collect();
    // Each fires while the burst is in the 60 s windows, none before it or after.
    for alert in &fired {
        assert!(
            (start + 300..start + 370).contains(&alert.fired_at),
            "fired away from the burst: {alert:#?}"
        );
    }
    let types: Vec<RuleType> = fired.iter().map(|a| a.rule_type).collect();
    assert!(types.contains(&RuleType::RateJump), "{types:?}");
    assert!(
        fired
            .iter()
            .any(|a| a.rule_type == RuleType::HeavyHitter
                && a.key.as_deref() == Some("203.0.113.0/24")),
        "{fired:#?}"
    );
    // Every alert resolves after the burst (the windows are 60 s, the holds 10 s).
    let resolved = changes
        .iter()
        .filter(|a| a.state == AlertState::Resolved)
        .count();
    assert_eq!(resolved, fired.len(), "{changes:#?}");
}

#[test]
fn the_shipped_rules_stay_quiet_on_the_default_generator_once_its_windows_fill() {
    use traffic::generate::live::{LiveConfig, LiveGenerator};
    // Ten minutes of the built-in generator as it starts (50 events a second from 5,000
    // sources, TCP/UDP/ICMP with their packet sizes): ordinary traffic. No event rule fires
    // (in particular no large_packet per source, which would bury a real alert on the page);
    // the windowed rules may flag a source with 3 of the first 50 events while the windows
    // are young, and nothing after.
    let mut generator = LiveGenerator::new(LiveConfig::default()).unwrap();
    let start = 1_700_000_000;
    let events = generator.due(600.0, start as f64, usize::MAX);
    assert_eq!(events.len(), 30_001);
    assert!(events.iter().any(|e| e.protocol.as_deref() == Some("UDP")));
    let changes = run(&events);
    let late: Vec<&Alert> = changes
        .iter()
        .filter(|a| a.rule_type == RuleType::Event || a.fired_at >= start + 30)
        .collect();
    assert!(late.is_empty(), "{late:#?}");
}
