//! The history across restarts, in process: a server on a temporary data directory (or a
//! PostgreSQL schema of its own) is stopped and started again on it, and must come back with
//! the same counts, the same sequence, the same idempotency keys, and resume a stream from
//! before the restart. Every test runs on both stores.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::path::PathBuf;

use history::Store;
use history::testing::TestSchema;
use server::Config;
use server::persist::StoreKind;
use support::{SseClient, TestServer, event_json, hits_of, ip_of, seq_of};

/// A data directory of its own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("server-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a test's history is kept: each test runs once on each store.
enum Backend {
    Sqlite(TempDir),
    Postgres(TempDir, TestSchema),
}

impl Backend {
    fn config(&self) -> Config {
        let mut config = Config::default_for_tests();
        config.listen = "127.0.0.1:0".parse().unwrap();
        match self {
            Backend::Sqlite(dir) => {
                config.store = StoreKind::Sqlite;
                config.data_dir = dir.0.clone();
            }
            Backend::Postgres(dir, schema) => {
                config.store = StoreKind::Postgres;
                config.database = Some(schema.url().parse().unwrap());
                config.data_dir = dir.0.clone();
            }
        }
        config.validate().unwrap();
        config
    }

    /// Runs `f` on the store, opened on a thread of its own (PostgreSQL's client must not
    /// run on the test's async thread).
    fn with_store<T: Send>(&self, f: impl FnOnce(&dyn Store) -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let store: Box<dyn Store> = match self {
                        Backend::Sqlite(dir) => Box::new(
                            history::Sqlite::open(&dir.0, history::Durability::Process).unwrap(),
                        ),
                        Backend::Postgres(_, schema) => Box::new(
                            history::Postgres::open(schema.url(), history::Durability::Process)
                                .unwrap(),
                        ),
                    };
                    f(&*store)
                })
                .join()
                .unwrap()
        })
    }
}

/// Each named test (an `async fn(Backend)` below) on SQLite and on PostgreSQL.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = super::TempDir::new(concat!("sqlite-", stringify!($name)));
                    super::$name(super::Backend::Sqlite(dir)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(schema) = history::testing::TestSchema::create(stringify!($name))
                    else {
                        return;
                    };
                    let dir = super::TempDir::new(concat!("postgres-", stringify!($name)));
                    super::$name(super::Backend::Postgres(dir, schema)).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_restarted_server_comes_back_with_the_same_counts_and_continues_the_sequence,
    a_stream_resumes_by_last_event_id_across_a_restart_exactly,
    a_retry_with_the_same_idempotency_key_after_a_restart_is_not_counted_again,
    with_durable_the_202_comes_after_the_events_are_stored,
    the_history_answers_a_past_window_with_its_counts_and_its_hits_paged,
    an_export_reads_back_through_our_csv_reader_as_the_stored_events,
);

async fn post_range(server: &TestServer, range: std::ops::Range<u32>) {
    let body = format!(
        "[{}]",
        range
            .map(|i| event_json(i, i % 3 == 0))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(server.post(body).await.status(), 202);
}

/// The stats without what depends on the moment (clock, rate, clients).
async fn lasting_stats(server: &TestServer) -> serde_json::Value {
    let mut stats = server.stats().await;
    for field in ["server_time", "events_per_second", "clients"] {
        stats.as_object_mut().unwrap().remove(field);
    }
    stats
}

/// Reads `hits` messages until `ips` hits have come; fails on a snapshot.
async fn read_hits(client: &mut SseClient, count: usize) -> Vec<(u64, String)> {
    let mut hits = Vec::new();
    while hits.len() < count {
        let message = client.next().await.expect("stream open");
        match message.event.as_str() {
            "hits" => {
                let (first, ips) = hits_of(&message);
                hits.extend(
                    ips.into_iter()
                        .enumerate()
                        .map(|(i, ip)| (first + i as u64, ip)),
                );
            }
            // Counters and the windowed analytics come and go between hits.
            "stats" | "analytics" | "alert" => {}
            other => panic!("expected hits, got {other}: {}", message.data),
        }
    }
    hits
}

async fn a_restarted_server_comes_back_with_the_same_counts_and_continues_the_sequence(
    backend: Backend,
) {
    let server = TestServer::start_with_history(backend.config()).await;
    post_range(&server, 0..30).await;
    post_range(&server, 30..50).await;
    server.wait_published(50).await;
    let before = lasting_stats(&server).await;
    assert_eq!(before["total"], 50);
    assert_eq!(
        server.metric("traffic_history_events_stored_total").await,
        50
    );
    assert_eq!(server.metric("traffic_history_uncommitted_events").await, 0);
    server.stop().await;

    let server = TestServer::start_with_history(backend.config()).await;
    assert_eq!(
        lasting_stats(&server).await,
        before,
        "counts, places, timeline, seq"
    );
    let snapshot = server.stream(None).await.next_of("snapshot").await.json();
    assert_eq!(
        snapshot["hits"].as_array().unwrap().len(),
        50,
        "recent hits are back"
    );
    assert_eq!(snapshot["hits"][49]["ip"], ip_of(49));
    post_range(&server, 50..60).await;
    server.wait_published(60).await;
    assert_eq!(server.stats().await["total"], 60);
    server.stop().await;

    let seqs = backend.with_store(|store| {
        let mut seqs = Vec::new();
        store.scan(0, &mut |e| seqs.push(e.seq)).unwrap();
        seqs
    });
    assert_eq!(
        seqs,
        (1..=60).collect::<Vec<u64>>(),
        "one seq per event, no gap"
    );
}

async fn a_stream_resumes_by_last_event_id_across_a_restart_exactly(backend: Backend) {
    let server = TestServer::start_with_history(backend.config()).await;
    let mut client = server.stream(None).await;
    let snapshot = client.next_of("snapshot").await;
    assert_eq!(seq_of(snapshot.id.as_deref().unwrap()), 0);
    post_range(&server, 0..20).await;
    let seen = read_hits(&mut client, 20).await;
    assert_eq!(seen.last().unwrap().0, 20);
    // The id of the message that carried seq 20 (the last one read).
    let last_id = format!("{}-20", snapshot.id.unwrap().rsplit_once('-').unwrap().0);
    drop(client);
    // Missed while away: 10 before the restart, 10 after.
    post_range(&server, 20..30).await;
    server.wait_published(30).await;
    server.stop().await;
    let server = TestServer::start_with_history(backend.config()).await;
    post_range(&server, 30..40).await;
    server.wait_published(40).await;

    let mut client = server.stream(Some(&last_id)).await;
    let missed = read_hits(&mut client, 20).await;
    let expected: Vec<(u64, String)> = (20..40).map(|i| (u64::from(i) + 1, ip_of(i))).collect();
    assert_eq!(missed, expected, "exactly the missed hits, in order, once");
    server.stop().await;
}

async fn a_retry_with_the_same_idempotency_key_after_a_restart_is_not_counted_again(
    backend: Backend,
) {
    let body = format!("[{},{}]", event_json(1, false), event_json(2, true));
    let post = |server: &TestServer| {
        reqwest::Client::new()
            .post(server.url("/api/events"))
            .header("content-type", "application/json")
            .header("idempotency-key", "batch-1")
            .body(body.clone())
            .send()
    };
    let server = TestServer::start_with_history(backend.config()).await;
    assert_eq!(post(&server).await.unwrap().status(), 202);
    server.wait_published(2).await;
    server.stop().await;

    let server = TestServer::start_with_history(backend.config()).await;
    let again = post(&server).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), r#"{"accepted":2}"#);
    assert_eq!(server.stats().await["total"], 2);
    server.stop().await;
}

async fn with_durable_the_202_comes_after_the_events_are_stored(backend: Backend) {
    let mut config = backend.config();
    config.durable = true;
    let server = TestServer::start_with_history(config).await;
    for round in 0..3u32 {
        post_range(&server, round * 10..round * 10 + 10).await;
        // Published only once committed: already done when the 202 arrives.
        assert_eq!(server.state.hub.published().0, u64::from(round) * 10 + 10);
        let stored = backend.with_store(|store| store.last_seq().unwrap());
        assert_eq!(stored, u64::from(round) * 10 + 10);
    }
    server.stop().await;
}

async fn the_history_answers_a_past_window_with_its_counts_and_its_hits_paged(backend: Backend) {
    let server = TestServer::start_with_history(backend.config()).await;
    // event_json(i) happens at 1_736_919_120 + i / 10: ten events per second.
    post_range(&server, 0..100).await;
    server.wait_published(100).await;
    let get = |query: String| {
        let url = server.url(&format!("/api/history{query}"));
        async move { reqwest::get(url).await.unwrap() }
    };
    let from = 1_736_919_122;
    let to = 1_736_919_125;
    let answer: serde_json::Value = get(format!("?from={from}&to={to}&limit=12"))
        .await
        .json()
        .await
        .unwrap();
    // Seconds 2, 3, 4: events 20..50.
    let inside: Vec<u32> = (0..100).filter(|i| (20..50).contains(i)).collect();
    assert_eq!(answer["summary"]["total"], inside.len());
    let suspicious = inside.iter().filter(|i| *i % 3 == 0).count();
    assert_eq!(answer["summary"]["suspicious"], suspicious);
    let mut ips: Vec<String> = Vec::new();
    let mut page = answer;
    loop {
        for hit in page["hits"].as_array().unwrap() {
            ips.push(hit["ip"].as_str().unwrap().to_owned());
        }
        let Some(after) = page["next_after"].as_u64() else {
            break;
        };
        page = get(format!("?from={from}&to={to}&limit=12&after={after}"))
            .await
            .json()
            .await
            .unwrap();
    }
    let expected: Vec<String> = inside.iter().map(|&i| ip_of(i)).collect();
    assert_eq!(ips, expected, "every hit of the window once, in order");

    // Filtered: the suspicious ones of the window, in the summary, the hits and the export.
    let suspicious_only: Vec<String> = inside
        .iter()
        .filter(|i| *i % 3 == 0)
        .map(|&i| ip_of(i))
        .collect();
    let answer: serde_json::Value = get(format!("?from={from}&to={to}&suspicious=true"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["summary"]["total"], suspicious_only.len());
    let ips: Vec<&str> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, suspicious_only);
    let csv = reqwest::get(server.url(&format!(
        "/api/history/export?from={from}&to={to}&suspicious=false"
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + inside.len() - suspicious_only.len()
    );
    for query in ["?suspicious=yes", "?status=4", "?status=4xy", "?country="] {
        assert_eq!(get(query.to_owned()).await.status(), 400, "{query}");
    }

    let bad = get("?from=abc".to_owned()).await;
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_query");
    assert_eq!(get("?limit=0".to_owned()).await.status(), 400);
    server.stop().await;

    let memory = TestServer::start(Config::default_for_tests()).await;
    let answer = reqwest::get(memory.url("/api/history")).await.unwrap();
    assert_eq!(answer.status(), 404);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "no_history");
}

async fn an_export_reads_back_through_our_csv_reader_as_the_stored_events(backend: Backend) {
    let server = TestServer::start_with_history(backend.config()).await;
    post_range(&server, 0..40).await;
    let special = r#"[{"ip":"2001:db8::7","latitude":48.85,"longitude":2.35,"timestamp":1736919130.25,"suspicious":true,"bytes":123456789012,"protocol":"HTTP/1.1","status":404,"method":"GET","path":"/a,b/ü","dest_ip":"192.0.2.1"},{"ip":"192.0.2.3","latitude":1,"longitude":2,"timestamp":1736919130.5,"suspicious":false,"path":"/say/\"hi\""},{"ip":"10.0.0.1","timestamp":1736919131,"suspicious":false}]"#;
    assert_eq!(server.post(special.to_owned()).await.status(), 202);
    server.wait_published(43).await;

    let csv = reqwest::get(server.url("/api/history/export"))
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.bytes().await.unwrap();
    let read: Vec<traffic::Event> =
        traffic::csv::CsvReader::new(std::io::Cursor::new(csv.to_vec()))
            .unwrap()
            .map(|row| row.unwrap().event)
            .collect();
    let stored = backend.with_store(|store| {
        let mut stored = Vec::new();
        store.scan(0, &mut |e| stored.push(e.event)).unwrap();
        stored
    });
    assert_eq!(stored.len(), 43);
    assert_eq!(read, stored, "export -> CSV reader is the identity");

    let lines =
        reqwest::get(server.url("/api/history/export?format=jsonl&from=1736919121&to=1736919123"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let seqs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    // Seconds 1 and 2: events 10..30, seq 11..=30.
    assert_eq!(seqs, (11..=30).collect::<Vec<u64>>());
    let bad = reqwest::get(server.url("/api/history/export?format=xml"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server.stop().await;
}
