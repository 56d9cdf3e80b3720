//! End to end: the real sender replays a real CSV at high speed into the real server on
//! 127.0.0.1, while an SSE client watches. Every row must arrive exactly once, in file
//! order, and the server's aggregates must equal a brute-force count of the file.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use server::{Config, Geocoder};
use support::{TestServer, hits_of};
use tokio_util::sync::CancellationToken;
use traffic::Event;
use traffic::csv::CsvReader;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn course_file() -> PathBuf {
    let path = repo_file("../shared/data/ip_addresses.csv");
    assert!(
        path.exists(),
        "the course file is expected at {} (../shared beside the repository)",
        path.display()
    );
    path
}

fn read_all(path: &Path) -> Vec<Event> {
    CsvReader::from_path(path)
        .unwrap()
        .map(|row| row.unwrap().event)
        .collect()
}

/// A place's identity by content: two towns can share a name, even within one country.
fn place_id(place: &serde_json::Value) -> String {
    ["city", "region", "country_code", "latitude", "longitude"]
        .map(|k| place[k].to_string())
        .join("|")
}

async fn replay_and_check(path: &Path) {
    let rows = read_all(path);
    let mut config = Config::default_for_tests();
    config.publish_interval_ms = 2;
    let server = TestServer::start(config).await;
    let mut client = server.stream(None).await;
    assert_eq!(client.next_of("snapshot").await.json()["stats"]["total"], 0);

    let cli = sender::Cli::try_parse_from([
        "sender",
        "--url",
        &server.url(""),
        "--speed",
        "1000",
        "--quiet",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let summary = sender::run(cli.replay, CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.all_accepted(), "{summary}");

    // The stream: every row once, in file order.
    let mut ips = Vec::new();
    let mut next_seq = 1;
    while ips.len() < rows.len() {
        let (seq, batch) = hits_of(&client.next_of("hits").await);
        assert_eq!(seq, next_seq, "consecutive ids");
        next_seq += batch.len() as u64;
        ips.extend(batch);
    }
    let want: Vec<String> = rows.iter().map(|e| e.ip.to_string()).collect();
    assert_eq!(ips, want);

    // The aggregates: a brute-force count of the file.
    let stats = server.stats().await;
    assert_eq!(stats["total"], rows.len());
    assert_eq!(
        stats["suspicious"],
        rows.iter().filter(|e| e.suspicious).count()
    );
    let geo = Geocoder::shared();
    let mut places: HashMap<String, (u64, u64)> = HashMap::new();
    let mut per_second: HashMap<i64, (u32, u32)> = HashMap::new();
    for e in &rows {
        let (latitude, longitude) = e.coordinates().unwrap();
        let place = geo.locate(latitude, longitude);
        let counts = places
            .entry(place_id(&serde_json::to_value(&*place).unwrap()))
            .or_default();
        counts.0 += 1;
        counts.1 += u64::from(e.suspicious);
        let second = per_second.entry(e.timestamp.floor() as i64).or_default();
        if e.suspicious {
            second.1 += 1;
        } else {
            second.0 += 1;
        }
    }
    for place in stats["top_places"].as_array().unwrap() {
        let key = place_id(place);
        assert_eq!(
            (
                place["count"].as_u64().unwrap(),
                place["suspicious"].as_u64().unwrap()
            ),
            places[&key],
            "{key:?}"
        );
    }
    let mut by_count: Vec<u64> = places.values().map(|c| c.0).collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<u64> = stats["top_places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .collect();
    assert_eq!(
        top,
        by_count[..top.len()],
        "the top list is the busiest places, in order"
    );
    assert_eq!(stats["places"], places.len());

    let timeline = &stats["timeline"];
    let start = timeline["start"].as_i64().unwrap();
    for (i, (normal, suspicious)) in timeline["normal"]
        .as_array()
        .unwrap()
        .iter()
        .zip(timeline["suspicious"].as_array().unwrap())
        .enumerate()
    {
        let want = per_second
            .get(&(start + i as i64))
            .copied()
            .unwrap_or_default();
        assert_eq!(
            (
                normal.as_u64().unwrap() as u32,
                suspicious.as_u64().unwrap() as u32
            ),
            want,
            "second {}",
            start + i as i64
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_course_file_replays_into_the_server_exactly_and_its_aggregates_match() {
    replay_and_check(&course_file()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_sample_replays_into_the_server_exactly_and_its_aggregates_match() {
    replay_and_check(&repo_file("data/sample.csv")).await;
}
