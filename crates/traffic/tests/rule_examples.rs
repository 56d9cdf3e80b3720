//! Each shipped example rule on a small fixture of events (tests/fixtures/rule_examples.json):
//! which keys it fires for, how often, and the matches it counts.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use traffic::analytics::alerts::{Alert, AlertState, Alerts, AlertsConfig};
use traffic::analytics::rules::RuleType;
use traffic::{DataClock, Event};

const FIXTURE: &str = include_str!("fixtures/rule_examples.json");

/// The alerts the shipped rules fire on the fixture, then those that resolve five minutes
/// of the data's clock later.
fn run() -> (Vec<Alert>, Vec<Alert>) {
    let events: Vec<Event> = traffic::ingest::parse_body(FIXTURE.as_bytes(), 1000).unwrap();
    let mut alerts = Alerts::new(AlertsConfig::default());
    for event in &events {
        let clock = DataClock {
            second: event.timestamp as i64,
            era: 0,
        };
        alerts.observe(event, None, None, clock);
    }
    let fired = alerts.take_fired();
    // Counted matches show while firing.
    let listed = alerts.recent();
    let ssh = listed.iter().find(|a| a.rule == "ssh_brute_force").unwrap();
    assert_eq!(ssh.count, Some(12), "{ssh:#?}");
    let report = traffic::AnalyticsReport {
        clock: Some(DataClock {
            second: 1_736_919_140 + 300,
            era: 0,
        }),
        ..Default::default()
    };
    let resolved = alerts.evaluate(&report);
    (fired, resolved)
}

fn keys(alerts: &[Alert], rule: &str) -> Vec<String> {
    alerts
        .iter()
        .filter(|a| a.rule == rule)
        .map(|a| a.key.clone().unwrap())
        .collect()
}

#[test]
fn ssh_brute_force_fires_on_the_tenth_attempt_from_one_address_only() {
    let (fired, resolved) = run();
    // 198.51.100.7 tries 12 times (SSH log lines and packets to port 22); 192.0.2.44 once.
    assert_eq!(keys(&fired, "ssh_brute_force"), ["198.51.100.7"]);
    let alert = fired.iter().find(|a| a.rule == "ssh_brute_force").unwrap();
    assert_eq!(alert.count, Some(10));
    assert_eq!(alert.fired_at, 1_736_919_129);
    assert_eq!(alert.rule_type, RuleType::Event);
    let done = resolved.iter().find(|a| a.id == alert.id).unwrap();
    assert_eq!(done.state, AlertState::Resolved);
    assert_eq!(
        done.count,
        Some(12),
        "the matches after it fired are counted"
    );
}

#[test]
fn large_packets_fire_for_udp_and_icmp_above_1400_bytes_once_per_source() {
    let (fired, _) = run();
    // Not the full-size TCP segment, not the UDP datagram of exactly 1400 bytes, not a flow
    // of 20 small datagrams (2,840 bytes in all); a flow of one large datagram does; the
    // second large datagram of 203.0.113.7 is counted, not fired again.
    assert_eq!(
        keys(&fired, "large_packet"),
        ["203.0.113.7", "203.0.113.8", "203.0.113.12"]
    );
}

#[test]
fn rare_protocols_fire_for_telnet_and_rdp_and_not_for_a_web_port() {
    let (fired, _) = run();
    assert_eq!(
        keys(&fired, "rare_protocol"),
        ["203.0.113.9", "203.0.113.10"]
    );
}

#[test]
fn probe_paths_fire_for_scanner_paths_at_the_root_only() {
    let (fired, _) = run();
    assert_eq!(keys(&fired, "probe_path"), ["203.0.113.12", "203.0.113.13"]);
    let alert = fired.iter().find(|a| a.rule == "probe_path").unwrap();
    assert_eq!(
        alert.event.as_ref().unwrap().path.as_deref(),
        Some("/wp-login.php")
    );
}
