//! The history wired to the hub: opening the store, rebuilding the hub from it on start,
//! and the writer thread that stores every taken batch before it is published.
//!
//! Events flow ingest -> hub queue -> (numbered) -> writer -> store commit -> publish. Only
//! stored events reach the stream, so what a browser has seen is always in the store: after
//! a crash the sequence continues from the store's last event, and a `Last-Event-ID` from
//! before it resumes exactly (no id is ever given to two different events).
//!
//! The writer is a thread of its own (SQLite calls block), fed by a bounded channel: while
//! it commits, the next batches queue up and go into the next transaction together (group
//! commit). When the disk falls behind, the publisher waits for room in the channel. Each
//! commit is then published by a second thread (in commit order) while the writer commits
//! the next, so storing and publishing overlap.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use history::{Durability, KeyRecord, Located, NewEvent, Store, StoredEvent};
use tokio::sync::{mpsc, oneshot};
use traffic::Place;

use crate::Config;
use crate::geo::{IpPlace, Placed, Unlocated};
use crate::hub::{Hub, Taken, unix_ms};
use crate::idempotency;

/// Batches waiting for the writer; beyond them the publisher waits.
const QUEUE_BATCHES: usize = 64;
/// Most events gathered into one transaction (a bigger batch is still one). Smaller
/// commits hand work to the publishing thread sooner and keep a backlogged writer's answers
/// waiting less: importing a 1M-line access log, every line was counted 7% sooner with
/// 20,000 than with 200,000 (10,000 was no better; BENCHMARKS.md).
const MAX_COMMIT_EVENTS: usize = 20_000;
/// Stored events handed from the reading thread to the counting one at a time (on start).
const RESTORE_CHUNK: usize = 4096;
/// How often stored idempotency keys past their age are deleted.
const FORGET_KEYS_EVERY: Duration = Duration::from_secs(30);

/// Which store keeps the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// SQLite in `--data-dir` (embedded, the default).
    Sqlite,
    /// PostgreSQL, in the database of `--database`.
    Postgres,
    /// Nothing stored: a restart starts from zero.
    Memory,
}

/// What the writer is told.
enum Message {
    /// Store these, then publish them.
    Batch(Taken),
    /// Everything sent before is stored: say so and stop.
    Stop(oneshot::Sender<()>),
    /// Everything sent before is stored: run this on the store (housekeeping), then go on.
    Maintain(Task),
}

/// Housekeeping run on the writer's store between commits.
type Task = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// Counters of the writer, for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterMetrics {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Events stored.
    pub events: AtomicU64,
    /// Failed attempts to commit (each retried).
    pub errors: AtomicU64,
}

impl WriterMetrics {
    /// Appends the writer's counters in the Prometheus text format, and `uncommitted` (events
    /// accepted and not yet committed: what a kill -9 would lose right now) as a gauge.
    pub fn render(&self, out: &mut String, uncommitted: u64) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP traffic_history_uncommitted_events Events accepted and not yet committed to \
             the history.\n# TYPE traffic_history_uncommitted_events gauge\n\
             traffic_history_uncommitted_events {uncommitted}"
        );
        for (name, help, value) in [
            (
                "traffic_history_commits_total",
                "Transactions committed to the history.",
                &self.commits,
            ),
            (
                "traffic_history_events_stored_total",
                "Events stored in the history.",
                &self.events,
            ),
            (
                "traffic_history_write_errors_total",
                "Failed commits to the history (each retried).",
                &self.errors,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
    }
}

/// The handle on the writer thread.
pub struct Writer {
    queue: mpsc::Sender<Message>,
    /// Counters.
    pub metrics: Arc<WriterMetrics>,
    /// Whether a 202 waits for its events' commit (otherwise only past the hub's
    /// [`crate::hub::HubConfig::max_backlog`], which also bounds what a kill -9 can lose).
    pub durable: bool,
}

impl Writer {
    /// Hands a taken batch to the writer, waiting while its queue is full.
    pub async fn send(&self, taken: Taken) {
        // The writer only stops when told to, after the last batch.
        let _ = self.queue.send(Message::Batch(taken)).await;
    }

    /// Runs `task` on the writer's store once everything sent before is stored (commits
    /// wait meanwhile), and returns its answer. Call from a blocking thread, not a runtime's.
    ///
    /// # Errors
    /// The writer has stopped.
    pub fn maintain_blocking<R: Send + 'static>(
        &self,
        task: impl FnOnce(&mut dyn Store) -> R + Send + 'static,
    ) -> anyhow::Result<R> {
        let (answer, answered) = oneshot::channel();
        let task = Box::new(move |store: &mut dyn Store| {
            let _ = answer.send(task(store));
        });
        self.queue
            .blocking_send(Message::Maintain(task))
            .map_err(|_| anyhow::anyhow!("the history writer has stopped"))?;
        answered
            .blocking_recv()
            .map_err(|_| anyhow::anyhow!("the history writer stopped before the task ran"))
    }

    /// Waits until everything sent is stored and published, then stops the writer.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.queue.send(Message::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

/// Opens the store the configuration names (`None` for `--store memory`).
pub fn open(config: &Config) -> anyhow::Result<Option<Box<dyn Store>>> {
    let durability = if config.durable {
        Durability::Disk
    } else {
        Durability::Process
    };
    match (config.store, &config.database) {
        (StoreKind::Memory, _) => Ok(None),
        (StoreKind::Sqlite, _) => {
            let store = history::Sqlite::open(&config.data_dir, durability).with_context(|| {
                format!("while opening the history in {}", config.data_dir.display())
            })?;
            Ok(Some(Box::new(store)))
        }
        (StoreKind::Postgres, Some(url)) => {
            let store = history::Postgres::open_exclusive(url.expose(), durability)
                .with_context(|| format!("while opening the history in PostgreSQL at {url}"))?;
            Ok(Some(Box::new(store)))
        }
        (StoreKind::Postgres, None) => {
            anyhow::bail!("--store postgres needs --database (Config::validate says so)")
        }
    }
}

/// Where the history is kept, for the log: the SQLite file's directory or the database's
/// URL without its password.
pub fn location(config: &Config) -> String {
    match (config.store, &config.database) {
        (StoreKind::Postgres, Some(url)) => url.to_string(),
        (StoreKind::Memory, _) => "memory".to_owned(),
        _ => config.data_dir.display().to_string(),
    }
}

/// Rebuilds `hub` (aggregates, ring, sequence) and `keys` (idempotency keys younger than
/// their age limit) from `store`. Returns the newest stored seq.
pub fn restore(
    hub: &Hub,
    keys: &idempotency::Store,
    keys_max_age: Duration,
    store: &dyn Store,
) -> anyhow::Result<u64> {
    let places: HashMap<u64, Arc<Place>> = store
        .places()
        .context("while reading the stored places")?
        .into_iter()
        .map(|p| (p.key, Arc::new(p)))
        .collect();
    // Two threads: this one reads the rows, the other counts them into the hub, so a
    // restart takes about as long as reading the store.
    let (rows, received) = std::sync::mpsc::sync_channel::<Vec<StoredEvent>>(8);
    let (last, missing_places, scanned) = std::thread::scope(|scope| {
        let rebuild = scope.spawn(|| {
            let mut missing_places = 0u64;
            // One shared name per network, as the live path has.
            let mut names: HashMap<u32, Arc<str>> = HashMap::new();
            let last = hub.restore(|record| -> Result<(), std::convert::Infallible> {
                for chunk in received {
                    for stored in chunk {
                        let placed = placed(&places, stored.located).unwrap_or_else(|| {
                            missing_places += 1;
                            Placed::Unlocated(Unlocated::NotFound)
                        });
                        let network = stored.network.map(|(asn, name)| geoip::Network {
                            asn,
                            name: Arc::clone(
                                names
                                    .entry(asn)
                                    .and_modify(|known| {
                                        if **known != *name {
                                            *known = Arc::from(name.as_str());
                                        }
                                    })
                                    .or_insert_with(|| Arc::from(name.as_str())),
                            ),
                        });
                        record(
                            stored.seq,
                            stored.received_ms,
                            stored.event,
                            placed,
                            network,
                        );
                    }
                }
                Ok(())
            });
            (last, missing_places)
        });
        let mut chunk = Vec::with_capacity(RESTORE_CHUNK);
        let scanned = store.scan(0, &mut |stored| {
            chunk.push(stored);
            if chunk.len() == RESTORE_CHUNK {
                // The other end only goes away by panicking, which join reports.
                let _ = rows.send(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(RESTORE_CHUNK),
                ));
            }
        });
        let _ = rows.send(chunk);
        drop(rows);
        let (last, missing) = match rebuild.join() {
            Ok((Ok(last), missing)) => (last, missing),
            Ok((Err(never), _)) => match never {},
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (last, missing, scanned)
    });
    scanned.context("while reading the stored events")?;
    if missing_places > 0 {
        tracing::warn!(
            events = missing_places,
            "stored events refer to unknown places; counted as unlocated"
        );
    }
    let now_ms = unix_ms(SystemTime::now());
    let since = now_ms.saturating_sub(keys_max_age.as_millis() as u64);
    for key in store
        .keys_since(since)
        .context("while reading the stored idempotency keys")?
    {
        let status = axum::http::StatusCode::from_u16(key.status)
            .unwrap_or(axum::http::StatusCode::ACCEPTED);
        keys.restore(
            &key.key,
            key.fingerprint,
            status,
            key.body.into(),
            Duration::from_millis(now_ms.saturating_sub(key.stored_ms)),
        );
    }
    Ok(last)
}

/// The place of a stored event, from the stored places (`None`: an unknown place key).
pub(crate) fn placed(places: &HashMap<u64, Arc<Place>>, located: Located<u64>) -> Option<Placed> {
    Some(match located {
        Located::Event(key) => Placed::Event(Arc::clone(places.get(&key)?)),
        Located::Ip {
            place,
            latitude,
            longitude,
        } => Placed::Ip {
            place: Arc::clone(places.get(&place)?),
            at: IpPlace {
                latitude,
                longitude,
            },
        },
        Located::Unlocated(reason) => Placed::Unlocated(unlocated(&reason)),
    })
}

fn unlocated(reason: &str) -> Unlocated {
    [
        Unlocated::Loopback,
        Unlocated::Private,
        Unlocated::Reserved,
        Unlocated::NotFound,
        Unlocated::NoDatabase,
    ]
    .into_iter()
    .find(|u| u.as_str() == reason)
    .unwrap_or(Unlocated::NotFound)
}

/// Starts the writer thread: it stores what it is sent, then publishes it on `hub`.
pub fn spawn(
    store: Box<dyn Store>,
    hub: Arc<Hub>,
    durable: bool,
    keys_max_age: Duration,
) -> anyhow::Result<Writer> {
    let (queue, receiver) = mpsc::channel(QUEUE_BATCHES);
    let metrics = Arc::new(WriterMetrics::default());
    let counters = Arc::clone(&metrics);
    std::thread::Builder::new()
        .name("history-writer".to_owned())
        .spawn(move || write_loop(store, &hub, receiver, &counters, keys_max_age))
        .context("while starting the history writer")?;
    Ok(Writer {
        queue,
        metrics,
        durable,
    })
}

/// Committed batches on their way to the publishing thread: (first seq, events, ticket).
type Committed = (u64, Vec<Vec<crate::hub::Pending>>, u64);

/// Commits on this thread while the previous commit is published on another: the two
/// halves of the work overlap (in order: one publishing thread, fed in commit order).
fn write_loop(
    store: Box<dyn Store>,
    hub: &Hub,
    receiver: mpsc::Receiver<Message>,
    metrics: &WriterMetrics,
    keys_max_age: Duration,
) {
    let (committed, to_publish) = std::sync::mpsc::sync_channel::<Committed>(2);
    let stop = std::thread::scope(|scope| {
        let publisher = std::thread::Builder::new()
            .name("history-publish".to_owned())
            .spawn_scoped(scope, move || {
                for (first_seq, events, ticket) in to_publish {
                    hub.publish_taken(first_seq, &events);
                    hub.mark_committed(ticket);
                }
            });
        let stop = match publisher {
            Ok(_) => commit_loop(store, receiver, metrics, keys_max_age, &|batch| {
                // The publisher only goes away by panicking, which the scope reports.
                let _ = committed.send(batch);
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the publishing thread; publishing from the writer");
                commit_loop(store, receiver, metrics, keys_max_age, &|(
                    first,
                    events,
                    ticket,
                )| {
                    hub.publish_taken(first, &events);
                    hub.mark_committed(ticket);
                })
            }
        };
        // Dropping the sender ends the publisher once it has published everything; the
        // scope waits for it.
        drop(committed);
        stop
    });
    // Everything committed is published now.
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Commits what it is sent and hands each commit to `publish`; returns the stop request
/// that ended it, if any.
fn commit_loop(
    mut store: Box<dyn Store>,
    mut receiver: mpsc::Receiver<Message>,
    metrics: &WriterMetrics,
    keys_max_age: Duration,
    publish: &dyn Fn(Committed),
) -> Option<oneshot::Sender<()>> {
    let mut forgot_keys = std::time::Instant::now();
    let mut stop = None;
    let mut maintain = None;
    while stop.is_none() {
        if let Some(task) = maintain.take() {
            let task: Task = task;
            task(&mut *store);
        }
        // The channel closed without a stop: nothing to answer.
        let first = receiver.blocking_recv()?;
        let mut batches = Vec::new();
        let mut events = 0;
        let mut next = Some(first);
        // Everything queued while the last commit ran goes into this one.
        while let Some(message) = next.take() {
            match message {
                Message::Batch(taken) => {
                    events += taken.events.iter().map(Vec::len).sum::<usize>();
                    batches.push(taken);
                }
                Message::Stop(done) => {
                    stop = Some(done);
                    break;
                }
                Message::Maintain(task) => {
                    // After the batches before it are committed (next round).
                    maintain = Some(task);
                    break;
                }
            }
            if events < MAX_COMMIT_EVENTS {
                next = receiver.try_recv().ok();
            }
        }
        if batches.is_empty() {
            continue;
        }
        let keys: Vec<KeyRecord> = batches
            .iter_mut()
            .flat_map(|b| std::mem::take(&mut b.keys))
            .collect();
        // Sized once: grown from nothing (a flat_map has no exact size), a commit's rows were
        // a chain of reallocations onto fresh pages.
        let mut rows: Vec<NewEvent<'_>> = Vec::with_capacity(events);
        rows.extend(batches.iter().flat_map(|b| {
            b.events
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, p)| p.to_store(b.first_seq + i as u64))
        }));
        let mut backoff = Duration::from_millis(10);
        while let Err(e) = store.append(&rows, &keys) {
            metrics.errors.fetch_add(1, Relaxed);
            tracing::error!(error = %e, events = rows.len(), "storing events failed; retrying");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        drop(rows);
        metrics.commits.fetch_add(1, Relaxed);
        metrics.events.fetch_add(events as u64, Relaxed);
        // One publish per commit: the batches are consecutive, so their hits go out in
        // frames together (the commit's pace groups them, as the publish interval would).
        let first_seq = batches[0].first_seq;
        let ticket = batches.iter().map(|b| b.ticket).max().unwrap_or(0);
        // The pushed batches, moved as they are (never copied into one vector).
        let events: Vec<Vec<crate::hub::Pending>> =
            batches.into_iter().flat_map(|b| b.events).collect();
        publish((first_seq, events, ticket));
        if forgot_keys.elapsed() >= FORGET_KEYS_EVERY {
            forgot_keys = std::time::Instant::now();
            let before = unix_ms(SystemTime::now()).saturating_sub(keys_max_age.as_millis() as u64);
            if let Err(e) = store.forget_keys_before(before) {
                tracing::warn!(error = %e, "forgetting old idempotency keys failed");
            }
        }
    }
    stop
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::{Receiver, channel};
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use history::range::OpenReader;
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;
    use traffic::Place;

    use super::*;

    #[test]
    fn the_history_is_logged_where_it_is_without_a_password() {
        use clap::Parser;
        let config = Config::parse_from([
            "server",
            "--database",
            "postgres://globe:s3cr3t@db:5432/history",
        ]);
        assert_eq!(location(&config), "postgres://globe:***@db:5432/history");
        let config = Config::parse_from(["server", "--data-dir", "/var/lib/tg"]);
        assert_eq!(location(&config), "/var/lib/tg");
        assert_eq!(location(&Config::default_for_tests()), "memory");
    }
    use crate::{AppState, Config, Geocoder, app};

    /// A store whose commits wait for a go-ahead: a disk that has fallen behind.
    struct Gate {
        open: Mutex<Receiver<()>>,
        stored: Arc<AtomicU64>,
    }

    impl Store for Gate {
        fn append(&mut self, events: &[NewEvent<'_>], _: &[KeyRecord]) -> history::Result<()> {
            let _ = self.open.lock().unwrap().recv();
            self.stored.fetch_add(events.len() as u64, Relaxed);
            Ok(())
        }
        fn last_seq(&self) -> history::Result<u64> {
            Ok(self.stored.load(Relaxed))
        }
        fn places(&self) -> history::Result<Vec<Place>> {
            Ok(Vec::new())
        }
        fn scan(&self, _: u64, _: &mut dyn FnMut(StoredEvent)) -> history::Result<()> {
            Ok(())
        }
        fn keys_since(&self, _: u64) -> history::Result<Vec<KeyRecord>> {
            Ok(Vec::new())
        }
        fn delete_before(&mut self, _: f64) -> history::Result<u64> {
            Ok(0)
        }
        fn forget_keys_before(&mut self, _: u64) -> history::Result<usize> {
            Ok(0)
        }
        fn readers(&self) -> Box<dyn OpenReader> {
            unimplemented!("not asked in these tests")
        }
        fn epoch(&self) -> &str {
            "gate"
        }
        fn secret(&self) -> [u64; 2] {
            [1, 2]
        }
    }

    fn post(events: usize) -> Request<Body> {
        let one = r#"{"ip":"192.0.2.1","latitude":48.8566,"longitude":2.3522,"timestamp":1736919120,"suspicious":false}"#;
        let body = format!("[{}]", vec![one; events].join(","));
        crate::from_loopback(
            Request::post("/api/events")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_202_waits_for_the_commit_once_the_writer_is_too_far_behind() {
        let (go, open) = channel();
        let stored = Arc::new(AtomicU64::new(0));
        let gate = Gate {
            open: Mutex::new(open),
            stored: Arc::clone(&stored),
        };
        let mut state = AppState::new(
            Config::default_for_tests(),
            Geocoder::shared(),
            CancellationToken::new(),
        );
        let mut hub = state.config.hub();
        hub.max_backlog = 5;
        let metrics = Arc::clone(&state.metrics);
        state.shared_mut().hub = Arc::new(Hub::new(hub, metrics));
        let writer = spawn(
            Box::new(gate),
            Arc::clone(&state.hub),
            false,
            Duration::from_secs(60),
        )
        .unwrap();
        state.shared_mut().history = Some(Arc::new(writer));
        let stop = CancellationToken::new();
        let background = state.spawn_background(stop.clone());

        // 3 uncommitted: answered at once although nothing could be stored yet.
        let first = app(state.clone()).oneshot(post(3)).await.unwrap();
        assert_eq!(first.status(), 202);
        assert_eq!(stored.load(Relaxed), 0);
        // 6 uncommitted: past the bound, the answer waits for the commit.
        let second = tokio::spawn(app(state.clone()).oneshot(post(3)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "answered before its events were stored"
        );
        go.send(()).unwrap();
        go.send(()).unwrap();
        let second = second.await.unwrap().unwrap();
        assert_eq!(second.status(), 202);
        assert_eq!(stored.load(Relaxed), 6, "stored before the answer");
        drop(go);
        stop.cancel();
        background.await.unwrap();
    }
}
