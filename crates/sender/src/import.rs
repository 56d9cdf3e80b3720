//! `--speed max`: imports the rows as fast as the server takes them.
//!
//! No pacing: rows are read into batches of up to `max_batch` and posted with up to
//! `in_flight` requests outstanding at once, each over its own clone of the transport (one
//! keep-alive connection each). Every batch keeps the paced replay's delivery rules, so the
//! accounting is the same exactly-once one: an idempotency key per batch (`<run id>:<n>`),
//! the same rows under the same key on every retry (backoff, `Retry-After`), a 413 splits the
//! batch into halves under new keys, a 422 drops the one row named (reported with its line)
//! and sends the rest under a new key, anything else stops the import. The server may
//! receive batches in another order than the file's (several are in flight); timestamps are
//! sent as the file has them, in or out of order.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use traffic::Event;
use traffic::csv::{ReadError, Row};

use crate::progress::Progress;
use crate::replay::{ReplayError, reason_category};
use crate::summary::Summary;
use crate::transport::{PostError, Transport, batch_key};

/// Requests in flight at once by default.
pub const IN_FLIGHT: usize = 4;
/// First wait after a failed POST.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// An unusable row stops the import instead of being skipped.
    pub strict: bool,
    /// Most rows in one POST.
    pub max_batch: NonZeroUsize,
    /// Most requests outstanding at once (at least 1).
    pub in_flight: usize,
    /// Continuous failure after which the import gives up.
    pub give_up_after: Duration,
    /// This run's identifier, the first part of every batch's idempotency key.
    pub run_id: String,
}

/// What the batches in flight share: the summary and its bookkeeping.
struct Tally {
    summary: Summary,
    progress: Progress,
    /// Batches numbered so far (the last key's number).
    batches: u64,
    /// Largest batch the server takes (halved on 413).
    cap: usize,
    /// Rows handed to a batch and not yet accepted or rejected.
    outstanding: u64,
    /// Since when every POST has failed (`None`: the last one succeeded).
    failing_since: Option<Instant>,
}

/// One batch's rows: their lines (for reports) and events.
#[derive(Debug, Default)]
struct Batch {
    lines: Vec<u64>,
    events: Vec<Event>,
}

/// Imports the rows that `open` yields (called once) through clones of `transport`, until
/// they end, the import fails, or `shutdown` is cancelled.
///
/// Returns the summary in every case, and the error that stopped the import if any.
pub async fn import<T, F, I>(
    mut open: F,
    transport: &T,
    options: &Options,
    progress: Progress,
    shutdown: &CancellationToken,
) -> (Summary, Result<(), ReplayError>)
where
    T: Transport + Clone,
    F: FnMut() -> Result<I, ReadError>,
    I: Iterator<Item = Result<Row, ReadError>>,
{
    let start = Instant::now();
    let tally = Mutex::new(Tally {
        summary: Summary {
            passes: 1,
            unpaced: true,
            ..Summary::default()
        },
        progress,
        batches: 0,
        cap: options.max_batch.get(),
        outstanding: 0,
        failing_since: None,
    });
    let mut result = Ok(());
    let mut rows = match open() {
        Ok(rows) => Some(rows),
        Err(e) => {
            result = Err(ReplayError::Read(e));
            None
        }
    };
    let mut spare: Vec<T> = (0..options.in_flight.max(1))
        .map(|_| transport.clone())
        .collect();
    let mut in_flight = FuturesUnordered::new();
    let mut cancelled = false;
    loop {
        while result.is_ok()
            && !spare.is_empty()
            && let Some(reader) = rows.as_mut()
        {
            let cap = lock(&tally).cap;
            match read_batch(reader, cap, options.strict, &tally) {
                Err(e) => result = Err(e),
                Ok(batch) if batch.events.is_empty() => rows = None,
                Ok(batch) => {
                    if let Some(client) = spare.pop() {
                        in_flight.push(deliver(client, batch, &tally, options));
                    }
                }
            }
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                cancelled = true;
                break;
            }
            Some((client, outcome)) = in_flight.next() => {
                spare.push(client);
                if let Err(e) = outcome {
                    if result.is_ok() {
                        result = Err(e);
                    }
                    break;
                }
            }
        }
    }
    // Batches still in flight are abandoned: their rows are not sent.
    drop(in_flight);
    let mut tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut not_sent = tally.outstanding;
    if result.is_err()
        && !cancelled
        && let Some(rest) = rows.take()
    {
        // Usable rows left in the file count as read and not sent.
        let left = rest
            .take_while(|r| r.as_ref().is_ok() || r.as_ref().is_err_and(ReadError::is_row))
            .filter(Result::is_ok)
            .count() as u64;
        tally.summary.rows_read += left;
        not_sent += left;
    }
    if let Err(ReplayError::GaveUp { undelivered, .. }) = &mut result {
        *undelivered = not_sent;
    }
    let mut summary = tally.summary;
    summary.not_sent = not_sent;
    summary.cancelled = cancelled || shutdown.is_cancelled();
    summary.elapsed = start.elapsed();
    tally.progress.finish();
    (summary, result)
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    // A panic while holding the lock cannot leave the counters half-updated in a way that
    // matters more than the panic itself.
    tally.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads up to `cap` usable rows, counting (or, with `strict`, stopping at) unusable ones.
fn read_batch<I>(
    rows: &mut I,
    cap: usize,
    strict: bool,
    tally: &Mutex<Tally>,
) -> Result<Batch, ReplayError>
where
    I: Iterator<Item = Result<Row, ReadError>>,
{
    let mut batch = Batch {
        lines: Vec::with_capacity(cap),
        events: Vec::with_capacity(cap),
    };
    let mut skipped: Vec<String> = Vec::new();
    let mut stop = None;
    for row in rows.by_ref() {
        match row {
            Ok(row) => {
                batch.lines.push(row.line);
                batch.events.push(row.event);
                if batch.events.len() >= cap {
                    break;
                }
            }
            Err(ReadError::Row { line, reason }) => {
                skipped.push(reason_category(&reason));
                if strict {
                    stop = Some(ReplayError::Strict { line, reason });
                    break;
                }
                warn!(line, reason = %reason, "row skipped");
            }
            Err(fatal) => {
                stop = Some(ReplayError::Read(fatal));
                break;
            }
        }
    }
    let mut tally = lock(tally);
    for reason in skipped {
        *tally.summary.skipped.entry(reason).or_default() += 1;
    }
    tally.summary.rows_read += batch.events.len() as u64;
    tally.outstanding += batch.events.len() as u64;
    match stop {
        // The rows read before the stop are not sent: they stay outstanding (not sent).
        Some(e) => Err(e),
        None => Ok(batch),
    }
}

impl Tally {
    fn next_key(&mut self, run_id: &str) -> String {
        self.batches += 1;
        batch_key(run_id, self.batches)
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            info!(
                after_ms = since.elapsed().as_millis() as u64,
                "server reachable again"
            );
        }
    }
}

/// Delivers one batch (and the parts it may be split into), returning the transport and
/// whether the import can go on.
async fn deliver<T: Transport>(
    mut transport: T,
    batch: Batch,
    tally: &Mutex<Tally>,
    options: &Options,
) -> (T, Result<(), ReplayError>) {
    let mut parts = VecDeque::from([batch]);
    let mut key: Option<String> = None;
    let mut backoff = BACKOFF_START;
    while let Some(part) = parts.front_mut() {
        let count = part.events.len();
        if count == 0 {
            parts.pop_front();
            continue;
        }
        let key_now = match &key {
            Some(key) => key.clone(),
            None => key.insert(lock(tally).next_key(&options.run_id)).clone(),
        };
        let answer = transport.post(&key_now, &part.events).await;
        if !matches!(
            answer,
            Err(PostError::Transient(_) | PostError::RetryAfter { .. })
        ) {
            key = None;
        }
        match answer {
            Ok(accepted) => {
                if accepted != count as u64 {
                    warn!(
                        sent = count,
                        accepted, "server accepted a different number of rows"
                    );
                }
                let mut t = lock(tally);
                t.recovered();
                t.summary.accepted += accepted;
                t.summary.posts += 1;
                t.outstanding = t.outstanding.saturating_sub(count as u64);
                let Tally {
                    progress, summary, ..
                } = &mut *t;
                progress.on_delivered(count as u64, summary);
                backoff = BACKOFF_START;
                parts.pop_front();
            }
            Err(PostError::Invalid {
                item: Some(item),
                field,
                reason,
            }) if item < count => {
                let line = part.lines.remove(item);
                let event = part.events.remove(item);
                warn!(
                    line,
                    ip = %event.ip,
                    field = field.as_deref().unwrap_or("?"),
                    reason = %reason,
                    "row rejected by server"
                );
                let mut t = lock(tally);
                t.recovered();
                t.summary.posts += 1;
                t.summary.rejected += 1;
                t.outstanding = t.outstanding.saturating_sub(1);
                let Tally {
                    progress, summary, ..
                } = &mut *t;
                progress.on_delivered(1, summary);
            }
            Err(PostError::Invalid { item, reason, .. }) => {
                let e = format!("422 for item {item:?} of a batch of {count}: {reason}");
                return (transport, Err(ReplayError::Refused(e)));
            }
            Err(PostError::TooLarge) if count > 1 => {
                let half = count / 2;
                let tail = Batch {
                    lines: part.lines.split_off(half),
                    events: part.events.split_off(half),
                };
                parts.insert(1, tail);
                let mut t = lock(tally);
                t.recovered();
                if half < t.cap {
                    t.cap = half;
                    info!(max_batch = half, "server says batch too large, splitting");
                }
            }
            Err(PostError::TooLarge) => {
                let e = "413: even a single event is too large".to_owned();
                return (transport, Err(ReplayError::Refused(e)));
            }
            Err(PostError::Fatal(message)) => {
                return (transport, Err(ReplayError::Refused(message)));
            }
            Err(PostError::Unauthorized(message)) => {
                return (transport, Err(ReplayError::Unauthorized(message)));
            }
            Err(PostError::Transient(message)) => {
                if let Err(e) =
                    back_off(tally, options, &mut backoff, message, Duration::ZERO).await
                {
                    return (transport, Err(e));
                }
            }
            Err(PostError::RetryAfter { reason, after }) => {
                if let Err(e) = back_off(tally, options, &mut backoff, reason, after).await {
                    return (transport, Err(e));
                }
            }
        }
    }
    (transport, Ok(()))
}

/// After a failed POST: give up, or wait (at least `at_least`) before the same batch again.
async fn back_off(
    tally: &Mutex<Tally>,
    options: &Options,
    backoff: &mut Duration,
    message: String,
    at_least: Duration,
) -> Result<(), ReplayError> {
    let now = Instant::now();
    let give_up_at = {
        let mut t = lock(tally);
        t.summary.retries += 1;
        let first = t.failing_since.is_none();
        let since = *t.failing_since.get_or_insert(now);
        if now.duration_since(since) >= options.give_up_after {
            return Err(ReplayError::GaveUp {
                failing_for: now - since,
                last_error: message,
                undelivered: 0, // set by `import` once everything has stopped
            });
        }
        if first {
            warn!(error = %message, "POST failed, retrying with the same key");
        }
        since + options.give_up_after
    };
    let retry_at = (now + (*backoff).max(at_least)).min(give_up_at);
    *backoff = (*backoff * 2).min(BACKOFF_CAP);
    sleep(retry_at.saturating_duration_since(now)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    const T0: f64 = 1_736_919_120.0;

    /// A fake server shared by its clones: records every POST, answers from a script.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        /// (key, number of events) of every POST.
        posts: Vec<(String, usize)>,
        /// Keys whose events were counted, and the events, once per key.
        counted: HashSet<String>,
        events: Vec<Event>,
        script: VecDeque<PostError>,
        /// Most requests seen at once, and now.
        peak: usize,
        now: usize,
        /// Every POST takes this long.
        delay: Duration,
    }

    impl Transport for Fake {
        async fn post(&mut self, key: &str, events: &[Event]) -> Result<u64, PostError> {
            let delay = {
                let mut s = self.0.lock().unwrap();
                s.posts.push((key.to_owned(), events.len()));
                s.now += 1;
                s.peak = s.peak.max(s.now);
                s.delay
            };
            sleep(delay).await;
            let mut s = self.0.lock().unwrap();
            s.now -= 1;
            if let Some(e) = s.script.pop_front() {
                return Err(e);
            }
            if s.counted.insert(key.to_owned()) {
                s.events.extend_from_slice(events);
            }
            Ok(events.len() as u64)
        }
    }

    fn rows(n: u32) -> Vec<Result<Row, ReadError>> {
        (0..n)
            .map(|i| {
                Ok(Row {
                    line: u64::from(i) + 1,
                    event: Event::new(
                        std::net::Ipv4Addr::from(0x0808_0000 + i).into(),
                        T0 - f64::from(i % 3),
                        false,
                    ),
                })
            })
            .collect()
    }

    fn options(batch: usize) -> Options {
        Options {
            strict: false,
            max_batch: NonZeroUsize::new(batch).unwrap(),
            in_flight: 4,
            give_up_after: Duration::from_secs(60),
            run_id: "run".into(),
        }
    }

    async fn run(
        rows: Vec<Result<Row, ReadError>>,
        fake: &Fake,
        options: &Options,
    ) -> (Summary, Result<(), ReplayError>) {
        let mut rows = Some(rows);
        import(
            move || Ok(rows.take().unwrap_or_default().into_iter()),
            fake,
            options,
            Progress::off(),
            &CancellationToken::new(),
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn rows_go_in_full_batches_with_several_requests_in_flight_each_row_once() {
        let fake = Fake::default();
        fake.0.lock().unwrap().delay = Duration::from_millis(100);
        let (summary, result) = run(rows(950), &fake, &options(100)).await;
        result.unwrap();
        let s = fake.0.lock().unwrap();
        let sizes: Vec<usize> = s.posts.iter().map(|p| p.1).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 950);
        assert!(sizes[..9].iter().all(|&n| n == 100), "{sizes:?}");
        assert_eq!(s.peak, 4, "four requests in flight, no more");
        let mut lines: Vec<u32> = s
            .events
            .iter()
            .map(|e| match e.ip {
                std::net::IpAddr::V4(v4) => u32::from(v4) - 0x0808_0000,
                std::net::IpAddr::V6(_) => unreachable!(),
            })
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, (0..950).collect::<Vec<_>>(), "every row once");
        assert!(summary.all_accepted(), "{summary}");
        assert_eq!((summary.rows_read, summary.posts), (950, 10));
        // 10 batches, 4 at a time, 100 ms each: 3 rounds, no pacing by the timestamps.
        assert_eq!(summary.elapsed, Duration::from_millis(300));
        assert!(summary.to_string().contains("lines/s"), "{summary}");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_under_the_same_key_splits_and_rejects_get_new_keys() {
        let fake = Fake::default();
        fake.0.lock().unwrap().script = [
            PostError::Transient("503".into()),
            PostError::TooLarge,
            PostError::Invalid {
                item: Some(0),
                field: None,
                reason: "bad".into(),
            },
        ]
        .into();
        let mut opts = options(8);
        opts.in_flight = 1;
        let (summary, result) = run(rows(8), &fake, &opts).await;
        result.unwrap();
        let s = fake.0.lock().unwrap();
        let posts: Vec<(&str, usize)> = s.posts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            posts,
            [
                ("run:1", 8), // 503
                ("run:1", 8), // 413: halves under new keys
                ("run:2", 4), // 422 for item 0: the rest under a new key
                ("run:3", 3),
                ("run:4", 4)
            ]
        );
        assert_eq!(s.events.len(), 7);
        assert_eq!(
            (summary.accepted, summary.rejected, summary.retries),
            (7, 1, 1)
        );
        assert!(!summary.all_accepted(), "a rejected row means exit 1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_down_longer_than_allowed_is_given_up_on_with_the_rows_not_sent() {
        let fake = Fake::default();
        fake.0.lock().unwrap().script = (0..1000)
            .map(|_| PostError::Transient("refused".into()))
            .collect();
        let mut opts = options(10);
        opts.give_up_after = Duration::from_secs(5);
        let (summary, result) = run(rows(100), &fake, &opts).await;
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                ReplayError::GaveUp {
                    undelivered: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!((summary.rows_read, summary.not_sent), (100, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn unusable_rows_are_counted_and_strict_stops() {
        let mut input = rows(3);
        input.insert(
            1,
            Err(ReadError::Row {
                line: 9,
                reason: "status: 999 is out of range".into(),
            }),
        );
        let fake = Fake::default();
        let (summary, result) = run(input, &fake, &options(10)).await;
        result.unwrap();
        assert_eq!(summary.skipped.get("status"), Some(&1));
        assert_eq!(summary.accepted, 3);
    }
}
