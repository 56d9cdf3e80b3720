//! The history's own speeds, in process: how fast the store takes batches (both
//! durabilities), and how long a server takes to be ready on a store of N events (open,
//! read back, rebuild aggregates, ring and keys). HTTP ingest with the store is measured by
//! the `load` bench (its servers run with the default store, or `BENCH_SERVER_ARGS`).
//!
//! ```text
//! cargo bench -p server --bench history -- [--events N] [--keep DIR]
//! cargo bench -p server --bench history -- [--events N] --database postgres://...
//! ```
//!
//! With `--database` every store is PostgreSQL, each in a schema of its own on that
//! database, dropped at the end.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use history::{Durability, Located, NewEvent, Store};
use server::{AppState, Config, Geocoder};
use traffic::Event;

/// Where the data time of the events starts (a midnight).
const DAY_START: f64 = 1_736_899_200.0;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

/// Seconds of data time between two events: the whole run spans one day of data time.
static SPACING: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Events like the course's: its coordinates, one IP each, a tenth suspicious, spread over
/// one day of data time.
fn events(first: u64, count: u64, geo: &Geocoder) -> Vec<(Event, Arc<traffic::Place>)> {
    let spacing = *SPACING.get().unwrap_or(&0.001);
    let coordinates = common::coordinates();
    (first..first + count)
        .map(|i| {
            let (lat, lon) = coordinates[i as usize % coordinates.len()];
            let event = Event::at(
                common::ip_of(i).parse().unwrap(),
                lat,
                lon,
                DAY_START + i as f64 * spacing,
                i % 10 == 0,
            );
            (event, geo.locate(lat, lon))
        })
        .collect()
}

/// Appends `total` events in batches of `batch`; events per second.
fn fill(store: &mut dyn Store, total: u64, batch: u64, geo: &Geocoder) -> f64 {
    let started = Instant::now();
    let mut seq = store.last_seq().unwrap() + 1;
    let mut done = 0;
    let now_ms = server::hub::unix_ms(std::time::SystemTime::now());
    while done < total {
        let n = batch.min(total - done);
        let made = events(done, n, geo);
        let rows: Vec<NewEvent<'_>> = made
            .iter()
            .enumerate()
            .map(|(i, (event, place))| NewEvent {
                seq: seq + i as u64,
                received_ms: now_ms - 3_600_000,
                event,
                located: Located::Event(&**place),
                // Half the addresses in a known network, as with `--asn`.
                network: (i % 2 == 0).then_some(history::Network {
                    asn: 64_500 + (i % 64) as u32,
                    name: "Example Networks",
                }),
            })
            .collect();
        store.append(&rows, &[]).unwrap();
        seq += n;
        done += n;
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Where a store of the bench lives.
enum Target {
    Dir(PathBuf),
    Schema(history::testing::TestSchema),
}

impl Target {
    fn new(dir: PathBuf, name: &str) -> Self {
        match arg("--database") {
            Some(url) => Target::Schema(history::testing::TestSchema::on(&url, name)),
            None => Target::Dir(dir),
        }
    }

    fn open(&self, durability: Durability) -> Box<dyn Store> {
        match self {
            Target::Dir(dir) => Box::new(history::Sqlite::open(dir, durability).unwrap()),
            Target::Schema(schema) => {
                Box::new(history::Postgres::open(schema.url(), durability).unwrap())
            }
        }
    }

    fn config(&self) -> Config {
        let mut config = Config::default_for_tests();
        match self {
            Target::Dir(dir) => {
                config.store = server::persist::StoreKind::Sqlite;
                config.data_dir = dir.clone();
            }
            Target::Schema(schema) => {
                config.store = server::persist::StoreKind::Postgres;
                config.database = Some(schema.url().parse().unwrap());
            }
        }
        config
    }

    /// Bytes the store takes.
    fn size(&self) -> u64 {
        match self {
            Target::Dir(dir) => {
                std::fs::metadata(dir.join(history::sqlite::FILE_NAME)).map_or(0, |m| m.len())
            }
            Target::Schema(schema) => schema
                .query_text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                )
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        }
    }

    fn remove(self) {
        if let Target::Dir(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn main() {
    let total: u64 = arg("--events").map_or(1_000_000, |n| n.parse().unwrap());
    let _ = SPACING.set(86_400.0 / total as f64);
    let geo = Geocoder::shared();
    let base = std::env::temp_dir().join(format!("history-bench-{}", std::process::id()));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "history bench: {total} events; load average {}",
        load.trim()
    );

    for (durability, batch) in [
        (Durability::Process, 1_000),
        (Durability::Process, 10_000),
        (Durability::Disk, 1_000),
        (Durability::Disk, 10_000),
    ] {
        let target = Target::new(
            base.join(format!("{durability:?}-{batch}")),
            &format!("bench_{durability:?}_{batch}"),
        );
        let mut store = target.open(durability);
        let n = (total / 5).max(batch);
        let rate = fill(&mut *store, n, batch, &geo);
        println!(
            "store append, {durability:?}, batches of {batch}: {rate:.0} events/s ({n} events)"
        );
        drop(store);
        target.remove();
    }

    let dir: PathBuf = arg("--keep").map_or_else(|| base.join("restore"), PathBuf::from);
    let target = Target::new(dir, "bench_restore");
    let mut store = target.open(Durability::Process);
    let have = store.last_seq().unwrap();
    if have < total {
        let rate = fill(&mut *store, total - have, 50_000, &geo);
        println!("filled to {total} events at {rate:.0} events/s");
    }
    drop(store);
    {
        // Reading back alone, without rebuilding anything: the store's share of a restart.
        let store = target.open(Durability::Process);
        let started = Instant::now();
        let mut count = 0u64;
        store.scan(0, &mut |_| count += 1).unwrap();
        let elapsed = started.elapsed();
        println!(
            "scan alone: {count} events in {:.0} ms ({:.0} events/s)",
            elapsed.as_secs_f64() * 1e3,
            count as f64 / elapsed.as_secs_f64()
        );
    }
    let size = target.size();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for round in 0..2 {
        let config = target.config();
        let started = Instant::now();
        let state = runtime
            .block_on(AppState::open(
                config,
                Arc::clone(&geo),
                tokio_util::sync::CancellationToken::new(),
            ))
            .unwrap();
        let elapsed = started.elapsed();
        let stats = state.hub.stats();
        println!(
            "restore {} ({}): {total} events, {:.1} MB file, ready in {:.0} ms ({:.0} events/s); total {}",
            round + 1,
            if round == 0 { "first" } else { "file cached" },
            size as f64 / 1e6,
            elapsed.as_secs_f64() * 1e3,
            total as f64 / elapsed.as_secs_f64(),
            stats.summary.total
        );
        assert_eq!(stats.summary.total, total);
        runtime.block_on(async {
            state.shutdown.cancel();
            if let Some(writer) = &state.history {
                writer.stop().await;
            }
        });
    }
    {
        // Range questions (rollups and the events at the edges): the day, the day from a
        // time that is no whole minute, one data hour, and the day filtered.
        use history::range::{Filter, TimeRange};
        let store = target.open(Durability::Process);
        let reader = store.readers().open_reader().unwrap();
        let day = TimeRange {
            from: Some(DAY_START),
            to: Some(DAY_START + 86_400.0),
        };
        let us = Filter {
            country: Some("US".to_owned()),
            suspicious: Some(true),
            ..Filter::default()
        };
        for (name, range, filter) in [
            ("all", TimeRange::default(), Filter::default()),
            ("the day", day, Filter::default()),
            (
                "the day from 00:00:17.5 to 23:59:42.25",
                TimeRange {
                    from: Some(DAY_START + 17.5),
                    to: Some(DAY_START + 86_400.0 - 17.75),
                },
                Filter::default(),
            ),
            ("the day, suspicious in US", day, us),
            (
                "one hour of data time",
                TimeRange {
                    from: Some(DAY_START + 7200.0),
                    to: Some(DAY_START + 7200.0 + 3600.0),
                },
                Filter::default(),
            ),
        ] {
            let started = Instant::now();
            let summary = reader.summary(range, &filter, 20).unwrap();
            println!(
                "range summary ({name}): {} events, top place {:?}, {} buckets, in {:.0} ms",
                summary.total,
                summary.top_places.first().map(|p| p.city.as_str()),
                summary.timeline.buckets.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        // What an export reads: every event, page by page (at most 1,000,000).
        let started = Instant::now();
        let (mut after, mut read) = (0, 0);
        while read < 1_000_000 {
            let page = reader
                .events(TimeRange::default(), &Filter::default(), after, 5_000)
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            read += page.len();
        }
        println!(
            "export read (pages of 5,000): {read} events in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    if arg("--keep").is_none() {
        target.remove();
        let _ = std::fs::remove_dir_all(&base);
    }
}
