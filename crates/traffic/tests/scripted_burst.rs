//! End to end in the domain: a generated file with a scripted burst, read back as a sender
//! would send it, fires the heavy-hitter alert for the burst's network while it lasts and
//! resolves it after, with the analytics evaluated once per second of the data's clock.

use std::time::Instant;

use traffic::analytics::alerts::{AlertState, Alerts, AlertsConfig};
use traffic::analytics::rules::RuleType;
use traffic::analytics::{Analytics, AnalyticsConfig};
use traffic::csv::CsvReader;
use traffic::generate::{GenerateConfig, ScriptedBurst, write_csv_scripted};
use traffic::{Aggregates, AggregatesConfig, Location};

#[test]
fn a_scripted_network_burst_fires_one_alert_that_resolves_after_the_burst() {
    let config = GenerateConfig {
        rows: 9000,
        duration_secs: 300,
        ..GenerateConfig::default()
    };
    let burst: ScriptedBurst = "203.0.113.0/24:0.3:60-90".parse().unwrap();
    let mut file = Vec::new();
    write_csv_scripted(&config, &[burst], &mut file).unwrap();

    let mut aggregates = Aggregates::new(AggregatesConfig::default());
    let mut analytics = Analytics::new(AnalyticsConfig::default());
    let mut alerts = Alerts::new(AlertsConfig::default());
    let mut changes = Vec::new();
    let mut second = None;
    let now = Instant::now();
    for row in CsvReader::new(file.as_slice()).unwrap() {
        let event = row.unwrap().event;
        let this = event.timestamp as i64;
        if second.is_some_and(|s| s != this) {
            changes.extend(alerts.evaluate(&analytics.report()));
        }
        second = Some(this);
        aggregates.record(&event, Location::Unlocated("test"), now);
        analytics.record(&event, None, aggregates.clock().unwrap());
    }
    changes.extend(alerts.evaluate(&analytics.report()));

    let network: Vec<_> = changes
        .iter()
        .filter(|a| {
            a.key.as_deref() == Some("203.0.113.0/24") && a.rule_type == RuleType::HeavyHitter
        })
        .collect();
    assert_eq!(network.len(), 2, "fired and resolved once: {network:?}");
    let start = config.start;
    assert_eq!(network[0].state, AlertState::Firing);
    assert!(
        (start + 60..start + 90).contains(&network[0].fired_at),
        "{:?}",
        network[0]
    );
    assert_eq!(network[1].state, AlertState::Resolved);
    // The burst leaves the 60 s window by second 150; its share falls under 5% a little
    // before, and the alert resolves 10 s of data later.
    let resolved = network[1].resolved_at.unwrap() - start;
    assert!(
        (130..=160).contains(&resolved),
        "resolved at second {resolved}"
    );
    assert!(network[1].peak > 0.15, "{:?}", network[1]);
}
