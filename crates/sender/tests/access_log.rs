//! End to end over real sockets: an access log replayed by the real sender (`--speed max`)
//! into the real server with the real DB-IP database; the server's per-country counts, its
//! unlocated counts by reason and its bytes and status figures equal a brute-force count of
//! the same lines. Skipped, with the reason printed, when data/geoip has no database (run
//! scripts/fetch-geoip).
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

mod support;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/access.log");
const GEOIP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/geoip");

/// What the fixture should amount to, counted without the sender, the parser or the server.
#[derive(Debug, Default)]
struct Expected {
    lines: u64,
    countries: BTreeMap<String, u64>,
    unlocated: BTreeMap<String, u64>,
    bytes: u64,
    with_bytes: u64,
    status_classes: BTreeMap<String, u64>,
}

fn brute_force(text: &str, db: &geoip::GeoIp) -> Expected {
    let mut want = Expected::default();
    for line in text.lines() {
        let Some((ip, _)) = line.split_once(' ') else {
            continue;
        };
        let Ok(ip) = ip.parse::<IpAddr>() else {
            continue; // not a log line: skipped by the sender too
        };
        want.lines += 1;
        match db.lookup(ip) {
            Ok(place) => *want.countries.entry(place.country_code).or_default() += 1,
            Err(reason) => *want.unlocated.entry(reason.as_str().into()).or_default() += 1,
        }
        // `"request" status bytes "referer" "agent"`: status and bytes follow the request.
        let after_request = line.splitn(3, '"').nth(2).unwrap();
        let mut fields = after_request.split_whitespace();
        let status: u16 = fields.next().unwrap().parse().unwrap();
        *want
            .status_classes
            .entry(format!("{}xx", status / 100))
            .or_default() += 1;
        if let Ok(bytes) = fields.next().unwrap().parse::<u64>() {
            want.bytes += bytes;
            want.with_bytes += 1;
        }
    }
    want
}

#[tokio::test]
async fn an_access_log_replayed_into_the_server_is_counted_per_country_as_a_brute_force_count_says()
{
    let files = geoip::GeoIp::default_files(Path::new(GEOIP_DIR));
    if files.is_empty() {
        eprintln!(
            "SKIPPED: no IP geolocation database in {GEOIP_DIR}; run scripts/fetch-geoip first"
        );
        return;
    }
    let db = Arc::new(geoip::GeoIp::open(&files).unwrap());
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let want = brute_force(&text, &db);
    assert_eq!(want.lines, 11, "the fixture's log lines");
    assert!(want.countries.len() >= 3, "{want:?}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let state = server::AppState::new(
        server::Config::default_for_tests(),
        server::Geocoder::shared(),
        shutdown.clone(),
    )
    .with_locator(db.clone());
    let serving = tokio::spawn(server::serve(listener, state));

    let url = format!("http://{addr}");
    let cli = sender::Cli::try_parse_from([
        "sender", "--url", &url, "--speed", "max", "--quiet", FIXTURE,
    ])
    .unwrap();
    let summary = sender::run(cli.replay, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.accepted, 11, "{summary}");
    assert_eq!(
        summary.skipped_total(),
        1,
        "the one garbage line: {summary}"
    );
    assert_eq!(summary.verdict().exit_code(), sender::exit::ROWS_SKIPPED);

    let stats = support::stats_at_total(&url, 11).await;
    assert_eq!(stats["total"], 11, "{stats}");
    let countries: BTreeMap<String, u64> = stats["top_countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["country_code"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(countries, want.countries, "per country: {stats}");
    let unlocated: BTreeMap<String, u64> =
        serde_json::from_value(stats["unlocated"]["by_reason"].clone()).unwrap();
    assert_eq!(unlocated, want.unlocated, "unlocated by reason");
    assert_eq!(
        unlocated,
        BTreeMap::from([("loopback".into(), 2), ("private".into(), 1)])
    );
    assert_eq!(stats["bytes"]["total"], want.bytes, "{stats}");
    assert_eq!(stats["bytes"]["events"], want.with_bytes, "{stats}");
    let classes: BTreeMap<String, u64> =
        serde_json::from_value(stats["status_classes"].clone()).unwrap();
    assert_eq!(classes, want.status_classes, "{stats}");
    // /.env, /wp-login.php and the sqlmap agent, by the default rules.
    assert_eq!(stats["suspicious"], 3, "{stats}");

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
