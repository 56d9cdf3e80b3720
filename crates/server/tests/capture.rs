//! Live-capture counters over a real socket: a sender's report is taken (204), summed into
//! `/api/stats` and the stream's stats; a bad report is a 4xx naming the field.

#![allow(clippy::unwrap_used)]

mod support;

use server::Config;
use support::TestServer;

fn config() -> Config {
    let mut config = Config::default_for_tests();
    config.stats_interval_ms = 50;
    config
}

async fn report(server: &TestServer, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/capture"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn capture_drops_reported_by_senders_show_in_stats_and_on_the_stream() {
    let server = TestServer::start(config()).await;
    assert!(
        server.stats().await.get("capture").is_none(),
        "no capture reported, no capture object"
    );
    let mut live = server.stream(None).await;
    live.next_of("snapshot").await;

    let first = r#"{"sensor":"run-a","interface":"eth0","captured":100,"not_ip":2,
        "kernel_dropped":3,"interface_dropped":1,"queue_dropped":4,"not_sent":0,"ended":false}"#;
    assert_eq!(report(&server, first).await.status(), 204);
    let second =
        r#"{"sensor":"run-b","interface":"lo","captured":10,"kernel_dropped":0,"ended":true}"#;
    assert_eq!(report(&server, second).await.status(), 204);

    let capture = &server.stats().await["capture"];
    assert_eq!(capture["captured"], 110);
    assert_eq!(capture["kernel_dropped"], 3);
    assert_eq!(capture["queue_dropped"], 4);
    assert_eq!(capture["dropped"], 8, "kernel + interface + queue");
    assert_eq!(capture["sensors"], 1, "run-b has ended");

    loop {
        let stats = live.next_of("stats").await.json();
        if stats["capture"]["captured"] == 110 {
            assert_eq!(stats["capture"]["dropped"], 8);
            break;
        }
    }
}

#[tokio::test]
async fn a_bad_capture_report_is_refused_naming_the_field() {
    let server = TestServer::start(config()).await;
    let response = report(&server, r#"{"sensor":"a b","interface":"lo"}"#).await;
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "sensor", "{body}");
    let response = report(&server, r#"{"sensor":"a","interface":"lo","captured":-1}"#).await;
    assert_eq!(response.status(), 422);
    let response = report(&server, "not json").await;
    assert_eq!(response.status(), 400);
    assert!(server.stats().await.get("capture").is_none());
}
