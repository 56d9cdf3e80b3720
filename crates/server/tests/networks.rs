//! AS data (`--asn`): hits carry their network, stats list the busiest networks; without
//! it neither appears.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use server::Config;
use support::TestServer;

fn config() -> Config {
    let mut config = Config::default_for_tests();
    config.publish_interval_ms = 2;
    config.stats_interval_ms = 50;
    config
}

const BODY: &str = r#"[
    {"ip":"8.8.8.8","timestamp":1736919120,"bytes":100},
    {"ip":"8.8.4.4","timestamp":1736919121,"bytes":50,"suspicious":true},
    {"ip":"1.1.1.1","latitude":48.8566,"longitude":2.3522,"timestamp":1736919122},
    {"ip":"10.0.0.1","timestamp":1736919123},
    {"ip":"2606:4700::1","timestamp":1736919124,"bytes":7}
]"#;

/// A tiny AS file written by the test (in a directory of its own: tests run in parallel).
fn tiny_asn() -> Arc<geoip::AsnDb> {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("server-asn-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("asn.csv");
    std::fs::write(
        &path,
        "1.1.1.0,1.1.1.255,13335,\"Cloudflare, Inc.\"\n\
         8.8.4.0,8.8.8.255,15169,Google LLC\n\
         2606:4700::,2606:4700:ffff:ffff:ffff:ffff:ffff:ffff,13335,\"Cloudflare, Inc.\"\n",
    )
    .unwrap();
    let db = geoip::AsnDb::open(&[path]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    Arc::new(db)
}

#[tokio::test]
async fn with_as_data_hits_name_their_network_and_stats_rank_networks() {
    let asn = tiny_asn();
    let server = TestServer::start_with(config(), |state| state.with_asn(Some(asn))).await;
    let mut live = server.stream(None).await;
    live.next_of("snapshot").await;
    let response = server.post(BODY.to_owned()).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    server.wait_published(5).await;

    let mut hits = Vec::new();
    while hits.len() < 5 {
        let event = live.next_of("hits").await;
        hits.extend(event.json()["hits"].as_array().unwrap().clone());
    }
    let networks: Vec<_> = hits
        .iter()
        .map(|h| (h["asn"].clone(), h["as_name"].clone()))
        .collect();
    let none = (serde_json::Value::Null, serde_json::Value::Null);
    assert_eq!(
        networks,
        [
            (15169.into(), "Google LLC".into()),
            (15169.into(), "Google LLC".into()),
            (13335.into(), "Cloudflare, Inc.".into()),
            none.clone(),
            (13335.into(), "Cloudflare, Inc.".into()),
        ]
    );
    assert!(
        hits[3].get("asn").is_none(),
        "absent, not null: {}",
        hits[3]
    );

    let stats = server.stats().await;
    let top: Vec<_> = stats["top_networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["asn"].as_u64().unwrap(),
                n["name"].as_str().unwrap().to_owned(),
                n["count"].as_u64().unwrap(),
                n["suspicious"].as_u64().unwrap(),
                n["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        [
            (13335, "Cloudflare, Inc.".to_owned(), 2, 0, 7),
            (15169, "Google LLC".to_owned(), 2, 1, 150),
        ],
        "equal counts: the smaller AS number first"
    );
    assert_eq!(stats["other_networks"], 0);
}

#[tokio::test]
async fn a_restarted_server_gives_back_each_hit_its_network_from_the_history() {
    let dir = std::env::temp_dir().join(format!("server-asn-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = config();
    config.store = server::persist::StoreKind::Sqlite;
    config.data_dir = dir.clone();
    let asn = tiny_asn();
    let server =
        TestServer::start_with_history_and(config.clone(), |state| state.with_asn(Some(asn))).await;
    assert_eq!(server.post(BODY.to_owned()).await.status(), 202);
    server.wait_published(5).await;
    let before = server.stats().await["top_networks"].clone();
    assert_eq!(before.as_array().unwrap().len(), 2, "{before}");
    server.stop().await;

    // Restarted without AS data: what comes back can only come from the history.
    let server = TestServer::start_with_history(config).await;
    assert_eq!(server.stats().await["top_networks"], before);
    let snapshot = server.stream(None).await.next_of("snapshot").await.json();
    let networks: Vec<_> = snapshot["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asn"].clone())
        .collect();
    assert_eq!(
        networks,
        [
            15169.into(),
            15169.into(),
            13335.into(),
            serde_json::Value::Null,
            13335.into()
        ]
    );
    assert_eq!(snapshot["hits"][2]["as_name"], "Cloudflare, Inc.");
    let past: serde_json::Value = reqwest::get(server.url("/api/history"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(past["hits"][0]["asn"], 15169);
    assert_eq!(past["hits"][0]["as_name"], "Google LLC");
    assert!(past["hits"][3].get("asn").is_none());
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_as_data_hits_and_stats_carry_no_networks() {
    let server = TestServer::start(config()).await;
    let response = server.post(BODY.to_owned()).await;
    assert_eq!(response.status(), 202);
    server.wait_published(5).await;
    let stats = server.stats().await;
    assert_eq!(stats["top_networks"], serde_json::json!([]));
}

#[test]
fn a_missing_asn_path_is_refused_naming_the_flag() {
    let mut config = Config::default_for_tests();
    config.asn = Some("/nonexistent/asn".into());
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("--asn"), "{error}");
}
