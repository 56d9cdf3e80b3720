//! The stream over a real socket: exactly-once delivery, resume by Last-Event-ID, late
//! joiners, shutdown.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use server::Config;
use support::{TestServer, event_json, hits_of, ip_of, seq_of};

fn config() -> Config {
    let mut config = Config::default_for_tests();
    config.publish_interval_ms = 2;
    config.stats_interval_ms = 50;
    config
}

/// Posts events `range` in batches of varying size, in order.
async fn post_range(server: &TestServer, range: std::ops::Range<u32>) {
    let mut i = range.start;
    let mut size = 1;
    while i < range.end {
        let end = (i + size).min(range.end);
        let items: Vec<String> = (i..end).map(|j| event_json(j, j % 7 == 0)).collect();
        let body = if items.len() == 1 {
            items[0].clone()
        } else {
            format!("[{}]", items.join(","))
        };
        let response = server.post(body).await;
        assert_eq!(response.status(), 202);
        i = end;
        size = size % 13 + 1;
    }
}

/// Reads `hits` messages until `count` hits arrived; checks their ids are consecutive from
/// `first_seq` and returns the IPs.
async fn read_hits(
    client: &mut support::SseClient,
    mut next_seq: u64,
    count: usize,
) -> Vec<String> {
    let mut ips = Vec::new();
    while ips.len() < count {
        let event = client.next_of("hits").await;
        let (seq, batch) = hits_of(&event);
        assert_eq!(
            seq, next_seq,
            "hits arrive with consecutive ids, none skipped or repeated"
        );
        next_seq += batch.len() as u64;
        assert_eq!(
            seq_of(event.id.as_deref().unwrap()),
            next_seq - 1,
            "id is the last hit's"
        );
        ips.extend(batch);
    }
    assert_eq!(ips.len(), count, "no extra hits");
    ips
}

#[tokio::test]
async fn every_posted_event_reaches_a_client_exactly_once_in_order() {
    let server = TestServer::start(config()).await;
    let mut client = server.stream(None).await;
    let snapshot = client.next().await.unwrap();
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.json()["stats"]["total"], 0);

    post_range(&server, 0..600).await;
    let ips = read_hits(&mut client, 1, 600).await;
    let want: Vec<String> = (0..600).map(ip_of).collect();
    assert_eq!(ips, want);
}

#[tokio::test]
async fn a_client_resuming_with_last_event_id_gets_exactly_what_it_missed() {
    let server = TestServer::start(config()).await;
    let mut first = server.stream(None).await;
    first.next_of("snapshot").await;
    post_range(&server, 0..100).await;
    // Read part of it, remember the last id seen, then drop the connection.
    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < 40 {
        let event = first.next_of("hits").await;
        last_id = event.id.clone().unwrap();
        seen.extend(hits_of(&event).1);
    }
    drop(first);
    post_range(&server, 100..250).await;
    // Everything is published before the resume, so only a true resume (not a snapshot
    // followed by late frames) can pass the checks below.
    server.wait_published(250).await;

    let mut resumed = server.stream(Some(&last_id)).await;
    let rest = read_hits(&mut resumed, seq_of(&last_id) + 1, 250 - seen.len()).await;
    seen.extend(rest);
    let want: Vec<String> = (0..250).map(ip_of).collect();
    assert_eq!(seen, want, "nothing lost, nothing duplicated");
    assert_eq!(
        server
            .metric("traffic_stream_starts_total{start=\"resume\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn a_new_connection_can_resume_by_query_when_it_cannot_send_the_header() {
    let server = TestServer::start(config()).await;
    let mut first = server.stream(None).await;
    first.next_of("snapshot").await;
    post_range(&server, 0..30).await;
    let got = read_hits(&mut first, 1, 30).await;
    let last_id = format!("{}-30", first_id_prefix(&server).await);
    drop(first);
    post_range(&server, 30..50).await;
    server.wait_published(50).await;
    let url = server.url(&format!("/api/stream?last_event_id={last_id}"));
    let mut resumed = support::SseClient::connect(&url, None).await;
    let rest = read_hits(&mut resumed, 31, 20).await;
    let all: Vec<String> = got.into_iter().chain(rest).collect();
    assert_eq!(all, (0..50).map(ip_of).collect::<Vec<_>>());
    assert_eq!(
        server
            .metric("traffic_stream_starts_total{start=\"resume\"}")
            .await,
        1
    );
}

/// The run part of this server's event ids.
async fn first_id_prefix(server: &TestServer) -> String {
    let mut client = server.stream(None).await;
    let id = client.next_of("snapshot").await.id.unwrap();
    id.rsplit_once('-').unwrap().0.to_owned()
}

#[tokio::test]
async fn a_late_joiner_gets_a_snapshot_that_matches_the_aggregates_and_visible_hits() {
    let server = TestServer::start(config()).await;
    let mut early = server.stream(None).await;
    early.next_of("snapshot").await;
    post_range(&server, 0..300).await;
    read_hits(&mut early, 1, 300).await;

    let mut late = server.stream(None).await;
    let snapshot = late.next_of("snapshot").await.json();
    let stats = server.stats().await;
    assert_eq!(snapshot["stats"]["total"], 300);
    assert_eq!(snapshot["stats"]["suspicious"], stats["suspicious"]);
    assert_eq!(
        snapshot["stats"]["suspicious"],
        (0..300).filter(|j| j % 7 == 0).count()
    );
    assert_eq!(snapshot["stats"]["top_places"], stats["top_places"]);
    assert_eq!(snapshot["stats"]["timeline"], stats["timeline"]);
    let hits: Vec<&str> = snapshot["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..300).map(ip_of).collect();
    assert_eq!(hits, want, "all 300 hits are still visible, oldest first");
    assert_eq!(snapshot["first_seq"], 1);
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_the_server_stops() {
    let server = TestServer::start(config()).await;
    let mut client = server.stream(None).await;
    client.next_of("snapshot").await;
    server.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), server.task).await;
    assert!(
        stopped.is_ok(),
        "graceful shutdown did not wait on the open stream forever"
    );
    stopped.unwrap().unwrap().unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while client.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the client's stream ended");
}

#[tokio::test]
async fn the_probe_passes_against_a_running_server_and_fails_without_one() {
    let server = TestServer::start(config()).await;
    let address = server.addr.to_string();
    server::probe(&address, Duration::from_secs(3))
        .await
        .unwrap();
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
    assert!(
        server::probe(&address, Duration::from_secs(3))
            .await
            .is_err()
    );
}
