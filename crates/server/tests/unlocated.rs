//! Events without coordinates over a real socket: placed by IP or counted as unlocated, by
//! reason, in stats and on the stream (live, resumed and in snapshots); never dropped.

#![allow(clippy::unwrap_used)]

mod support;

use server::Config;
use support::TestServer;

fn config() -> Config {
    let mut config = Config::default_for_tests();
    config.publish_interval_ms = 2;
    config.stats_interval_ms = 50;
    config
}

/// Course-style spellings, no coordinates except the last; optional request fields.
const BODY: &str = r#"[
    {"ip_address":"127.0.0.1","Timestamp":1736919120,"suspicious":1.0},
    {"source_ip":"10.1.2.3","ts":1736919121,"suspicious":0.0,"bytes_sent":512,"protocol":"TCP"},
    {"ip address":"192.0.2.7","timestamp":1736919122,"status_code":404,"method":"GET","path":"/.env"},
    {"ip":"8.8.8.8","timestamp":1736919123,"suspicious":true,"dest_ip":"203.0.113.1","src_port":40000,"dest_port":22,"packets":3},
    {"ip":"1.1.1.1","Latitude":48.8566,"lng":2.3522,"timestamp":1736919124,"bytes":100,"status":200}
]"#;

#[tokio::test]
async fn unlocated_hits_are_counted_by_reason_and_streamed_without_coordinates() {
    let server = TestServer::start(config()).await;
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
    let reasons: Vec<(&str, serde_json::Value, serde_json::Value)> = hits
        .iter()
        .map(|h| {
            (
                h["ip"].as_str().unwrap(),
                h["located"].clone(),
                h["unlocated"].clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("127.0.0.1", serde_json::Value::Null, "loopback".into()),
            ("10.1.2.3", serde_json::Value::Null, "private".into()),
            ("192.0.2.7", serde_json::Value::Null, "reserved".into()),
            ("8.8.8.8", serde_json::Value::Null, "no_database".into()),
            ("1.1.1.1", "event".into(), serde_json::Value::Null),
        ]
    );
    for hit in &hits[..4] {
        assert!(hit.get("located").is_some(), "located is null, not absent");
        for absent in ["latitude", "longitude", "city", "country_code", "place_key"] {
            assert!(hit.get(absent).is_none(), "{absent} in {hit}");
        }
    }
    assert_eq!(hits[1]["bytes"], 512);
    assert_eq!(hits[1]["protocol"], "TCP");
    assert_eq!(hits[2]["status"], 404);
    assert_eq!(hits[2]["method"], "GET");
    assert_eq!(hits[2]["path"], "/.env");
    assert_eq!(hits[3]["dest_ip"], "203.0.113.1");
    assert_eq!(hits[3]["src_port"], 40000);
    assert_eq!(hits[3]["dest_port"], 22);
    assert_eq!(hits[3]["packets"], 3);
    assert_eq!(hits[4]["latitude"], 48.8566);
    assert_eq!(hits[4]["city"], "Paris");
    for absent in ["bytes", "src_port", "dest_port", "packets"] {
        assert!(hits[0].get(absent).is_none(), "absent {absent} is left out");
    }

    let stats = server.stats().await;
    assert_eq!(stats["total"], 5);
    assert_eq!(stats["suspicious"], 2);
    assert_eq!(stats["located"]["event"], 1);
    assert_eq!(stats["located"]["ip"], 0);
    assert_eq!(stats["unlocated"]["total"], 4);
    assert_eq!(
        stats["unlocated"]["by_reason"],
        serde_json::json!({"loopback": 1, "private": 1, "reserved": 1, "no_database": 1})
    );
    let places = stats["top_places"].as_array().unwrap();
    assert_eq!(
        places.len(),
        1,
        "unlocated hits are never a place: {places:?}"
    );
    assert_eq!(places[0]["count"], 1);
    assert_eq!(
        stats["bytes"],
        serde_json::json!({"total": 612, "events": 2})
    );
    assert_eq!(
        stats["status_classes"],
        serde_json::json!({"2xx": 1, "4xx": 1})
    );
    assert_eq!(
        stats["top_protocols"],
        serde_json::json!([{"name": "TCP", "count": 1}])
    );

    // A late joiner's snapshot and a resume carry the unlocated hits too.
    let mut late = server.stream(None).await;
    let snapshot = late.next_of("snapshot").await.json();
    let snapshot_hits = snapshot["hits"].as_array().unwrap();
    assert_eq!(snapshot_hits, &hits);
    assert_eq!(snapshot["stats"]["unlocated"]["total"], 4);
    let id = late_id(&server).await;
    let mut resumed = server.stream(Some(&id)).await;
    let missed = resumed.next_of("hits").await.json();
    assert_eq!(missed["hits"].as_array().unwrap(), &hits[1..]);
}

/// The id of the first event of this run (`<boot>-1`), read from a stream message.
async fn late_id(server: &TestServer) -> String {
    let mut client = server.stream(None).await;
    let id = client.next_of("snapshot").await.id.unwrap();
    let boot = id.rsplit_once('-').unwrap().0.to_owned();
    format!("{boot}-1")
}

#[tokio::test]
async fn a_repeated_request_of_unlocated_hits_counts_them_once() {
    let server = TestServer::start(config()).await;
    for _ in 0..2 {
        let response = reqwest::Client::new()
            .post(server.url("/api/events"))
            .header("content-type", "application/json")
            .header("idempotency-key", "unlocated-batch-1")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    server.wait_published(5).await;
    let stats = server.stats().await;
    assert_eq!(stats["total"], 5);
    assert_eq!(stats["unlocated"]["total"], 4);
}
