//! The replay loop: reads rows one at a time, waits for each row's absolute due instant,
//! and posts the rows that are due (one request in flight at a time, file order kept).
//!
//! Rows due at the same instant, or overdue because the server was slow or away, go together
//! in one POST (up to `max_batch`). Each batch gets an idempotency key (`<run id>:<n>`);
//! failures are retried with exponential backoff, the same rows under the same key, while
//! rows that come due wait for the next batch; rows after an outage keep their original
//! schedule.
//! Generic over the [`Transport`] and the row source so that tests run it on tokio's paused
//! clock against fakes.

use std::num::NonZeroUsize;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use traffic::Event;
use traffic::csv::{ReadError, Row};
use traffic::pacing::Schedule;

use crate::progress::Progress;
pub use crate::summary::{Lateness, Summary};
use crate::transport::{PostError, Transport, batch_key};

/// First wait after a failed POST.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// A wait for the next row longer than this (wall-clock) is warned about, with the row's
/// line and the wait, so that a gap in the data is not mistaken for a hang.
pub const LONG_WAIT: Duration = Duration::from_secs(60);

/// How to replay, independent of where rows come from and go to.
#[derive(Debug, Clone)]
pub struct Options {
    /// Speed factor (> 0, finite).
    pub speed: f64,
    /// Start over at the end of the rows, continuing the data's clock.
    pub looping: bool,
    /// An unusable row stops the replay instead of being skipped.
    pub strict: bool,
    /// Most rows in one POST.
    pub max_batch: NonZeroUsize,
    /// Gaps in data time longer than this are shortened to it (`None`: kept as they are).
    pub max_gap: Option<Duration>,
    /// Continuous failure after which the replay gives up.
    pub give_up_after: Duration,
    /// Wake this long before a row is due and spin (yielding) on the clock for the rest,
    /// for sub-millisecond precision; tokio's timers alone wake up to ~2 ms late.
    /// Zero: timers only, with due instants rounded up to the millisecond so that a timer
    /// hits them exactly. Must be zero on tokio's paused clock, which does not move while
    /// a task spins.
    pub spin: Duration,
    /// This run's identifier, the first part of every batch's idempotency key
    /// (`<run_id>:<batch number>`); [`crate::transport::new_run_id`] makes a random one.
    pub run_id: String,
    /// The rows never end (the live generator): when the replay stops, rows not yet read
    /// are neither read nor counted as not sent.
    pub endless: bool,
}

/// Why a replay stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The speed factor is not usable.
    #[error(transparent)]
    Speed(#[from] traffic::pacing::InvalidSpeed),
    /// The file cannot be opened or read, or its header is unusable.
    #[error(transparent)]
    Read(ReadError),
    /// An unusable row with `strict` set.
    #[error("line {line}: {reason} (unusable row with --strict)")]
    Strict {
        /// 1-based line number.
        line: u64,
        /// What is wrong with the row.
        reason: String,
    },
    /// The server refused the request in a way that retrying cannot fix.
    #[error("the server refused the events: {0}")]
    Refused(String),
    /// The server refused the credentials (401/403).
    #[error("{0}")]
    Unauthorized(String),
    /// The server failed without a break for longer than allowed.
    #[error(
        "gave up after {:.1} s of failing to deliver ({last_error}): {undelivered} rows were not delivered",
        failing_for.as_secs_f64()
    )]
    GaveUp {
        /// How long it had been failing.
        failing_for: Duration,
        /// The last failure.
        last_error: String,
        /// Usable rows that did not reach the server (pending and not yet read, this pass).
        undelivered: u64,
    },
    /// A row's due time is too far away for the clock (absurdly slow speed).
    #[error("line {line}: due too far in the future for the clock (speed too slow?)")]
    TooFar {
        /// 1-based line number.
        line: u64,
    },
}

/// Replays the rows that `open` yields (called again for each pass when looping) through
/// `transport`, until the rows end, the replay fails, or `shutdown` is cancelled.
///
/// Returns the summary in every case, and the error that stopped the replay if any.
pub async fn replay<T, F, I>(
    open: F,
    transport: &mut T,
    options: &Options,
    progress: Progress,
    shutdown: &CancellationToken,
) -> (Summary, Result<(), ReplayError>)
where
    T: Transport,
    F: FnMut() -> Result<I, ReadError>,
    I: Iterator<Item = Result<Row, ReadError>>,
{
    let schedule = match Schedule::new(options.speed) {
        Ok(schedule) => match options.max_gap {
            Some(max_gap) => schedule.with_max_gap(max_gap),
            None => schedule,
        },
        Err(e) => return (Summary::default(), Err(e.into())),
    };
    let mut replay = Replay {
        options,
        transport,
        shutdown,
        progress,
        source: Source {
            open,
            rows: None,
            schedule,
            start: None,
            pass_rows: 0,
            strict: options.strict,
            looping: options.looping,
            rest: 0,
            spin: !options.spin.is_zero(),
            endless: options.endless,
        },
        next: None,
        pending_events: Vec::with_capacity(options.max_batch.get()),
        pending_rows: Vec::with_capacity(options.max_batch.get()),
        cap: options.max_batch.get(),
        in_flight: None,
        batches: 0,
        backoff: BACKOFF_START,
        failing_since: None,
        // Microseconds from 1 µs to one hour, 3 significant digits: ~30 KB, constant.
        lateness: Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("constant histogram bounds are valid"),
        max_lateness: Duration::ZERO,
        summary: Summary::default(),
    };
    let result = replay.run().await;
    let summary = replay.finish();
    (summary, result)
}

/// A usable row with its due instants.
#[derive(Debug, Clone)]
struct Due {
    line: u64,
    event: Event,
    /// `start + (t_i - t_0) / speed`, exactly.
    exact: Instant,
    /// When to send it: `exact` when spinning, otherwise `exact` rounded up to the
    /// millisecond, the instant a tokio timer (millisecond resolution) can hit.
    deadline: Instant,
}

/// Where rows come from: the file (reopened per pass) and the schedule.
struct Source<F, I> {
    open: F,
    rows: Option<I>,
    schedule: Schedule,
    start: Option<Instant>,
    pass_rows: u64,
    strict: bool,
    looping: bool,
    /// Usable rows counted, unread, after stopping early.
    rest: u64,
    /// Due instants are exact (the replay spins), not rounded to the millisecond.
    spin: bool,
    /// See [`Options::endless`].
    endless: bool,
}

impl<F, I> Source<F, I>
where
    F: FnMut() -> Result<I, ReadError>,
    I: Iterator<Item = Result<Row, ReadError>>,
{
    /// The next usable row, scheduled; `None` at the end (of the last pass).
    fn next(&mut self, summary: &mut Summary) -> Result<Option<Due>, ReplayError> {
        loop {
            let rows = match &mut self.rows {
                Some(rows) => rows,
                None => {
                    if summary.passes > 0 {
                        if !self.looping {
                            return Ok(None);
                        }
                        if self.pass_rows == 0 {
                            warn!("no usable rows in a whole pass, not looping");
                            return Ok(None);
                        }
                        self.schedule.next_pass();
                        info!(pass = self.schedule.pass() + 1, "starting over");
                    }
                    summary.passes += 1;
                    self.pass_rows = 0;
                    self.rows.insert((self.open)().map_err(ReplayError::Read)?)
                }
            };
            match rows.next() {
                Some(Ok(row)) => {
                    summary.rows_read += 1;
                    self.pass_rows += 1;
                    return self.schedule_row(row, summary).map(Some);
                }
                Some(Err(ReadError::Row { line, reason })) => {
                    *summary.skipped.entry(reason_category(&reason)).or_default() += 1;
                    if self.strict {
                        return Err(ReplayError::Strict { line, reason });
                    }
                    warn!(line, reason = %reason, "row skipped");
                }
                Some(Err(fatal)) => return Err(ReplayError::Read(fatal)),
                None => self.rows = None,
            }
        }
    }

    fn schedule_row(&mut self, row: Row, summary: &mut Summary) -> Result<Due, ReplayError> {
        let due = self.schedule.due(row.event.timestamp);
        if due.out_of_order {
            summary.out_of_order += 1;
            debug!(line = row.line, "row out of order, due at once");
        }
        if due.gap_cut > 0.0 {
            summary.gaps_shortened += 1;
            debug!(
                line = row.line,
                cut_s = due.gap_cut,
                "gap before the row shortened to --max-gap"
            );
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        let on_timer = if self.spin {
            due.offset
        } else {
            Duration::from_millis(
                u64::try_from(due.offset.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX),
            )
        };
        let too_far = || ReplayError::TooFar { line: row.line };
        let exact = start.checked_add(due.offset).ok_or_else(too_far)?;
        let deadline = start.checked_add(on_timer).ok_or_else(too_far)?;
        Ok(Due {
            line: row.line,
            event: Event {
                timestamp: due.timestamp,
                ..row.event
            },
            exact,
            deadline,
        })
    }

    /// Usable rows left in the current pass, read (once) and counted as read but not sent;
    /// used when stopping early.
    fn count_rest(&mut self, summary: &mut Summary) -> u64 {
        if self.endless {
            return 0;
        }
        if let Some(rows) = self.rows.take() {
            for row in rows {
                match row {
                    Ok(_) => self.rest += 1,
                    Err(e) if e.is_row() => {}
                    Err(_) => break,
                }
            }
            summary.rows_read += self.rest;
        }
        self.rest
    }
}

/// A wait in the largest fitting unit, for a log line: `90 s`, `3.5 h`, `412.0 days`.
fn human(wait: Duration) -> String {
    let s = wait.as_secs_f64();
    match s {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

/// The skip reason's category: the field named before the first `:`, or `malformed`.
pub(crate) fn reason_category(reason: &str) -> String {
    match reason.split_once(':') {
        Some((field, _))
            if !field.is_empty()
                && field.len() <= 20
                && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            field.to_owned()
        }
        _ => "malformed".to_owned(),
    }
}

struct Replay<'a, T, F, I> {
    options: &'a Options,
    transport: &'a mut T,
    shutdown: &'a CancellationToken,
    progress: Progress,
    source: Source<F, I>,
    /// The next row read but not yet due.
    next: Option<Due>,
    /// Rows due and not yet delivered, in file order (events and their bookkeeping).
    pending_events: Vec<Event>,
    pending_rows: Vec<Due>,
    /// Largest batch the server takes (halved on 413).
    cap: usize,
    /// The batch at the head of `pending_*` that was posted and must be retried as it is.
    in_flight: Option<InFlight>,
    /// Batches numbered so far (the last key's number).
    batches: u64,
    backoff: Duration,
    failing_since: Option<Instant>,
    /// Per-row lateness in microseconds.
    lateness: Histogram<u64>,
    /// Exact largest lateness (the histogram's max is rounded to its bucket).
    max_lateness: Duration,
    summary: Summary,
}

/// A batch that was posted at least once: its first `count` pending rows under `key`.
/// Until the server answers it, every retry sends exactly these rows with this key, so that
/// a server that counted an attempt whose answer was lost recognises the repeat.
#[derive(Debug, Clone)]
struct InFlight {
    key: String,
    count: usize,
}

/// What happened to a wait or a request when shutdown was requested.
struct Cancelled;

impl<T, F, I> Replay<'_, T, F, I>
where
    T: Transport,
    F: FnMut() -> Result<I, ReadError>,
    I: Iterator<Item = Result<Row, ReadError>>,
{
    async fn run(&mut self) -> Result<(), ReplayError> {
        loop {
            if self.pending_rows.is_empty() {
                let Some(deadline) = self.next_deadline()? else {
                    return Ok(());
                };
                self.warn_if_long(deadline);
                if self.wait_for_row(deadline).await.is_err() {
                    return Ok(());
                }
            }
            self.collect_due()?;
            if self.attempt().await?.is_err() {
                return Ok(());
            }
        }
    }

    /// The due instant of the next row not yet pending, reading it if needed.
    fn next_deadline(&mut self) -> Result<Option<Instant>, ReplayError> {
        if self.next.is_none() {
            self.next = self.source.next(&mut self.summary)?;
        }
        Ok(self.next.as_ref().map(|due| due.deadline))
    }

    /// Moves every row due by now into the pending batch, up to `max_batch`.
    fn collect_due(&mut self) -> Result<(), ReplayError> {
        let now = Instant::now();
        while self.pending_rows.len() < self.options.max_batch.get() {
            if self.next_deadline()?.is_none_or(|deadline| deadline > now) {
                break;
            }
            if let Some(due) = self.next.take() {
                self.pending_events.push(due.event.clone());
                self.pending_rows.push(due);
            }
        }
        Ok(())
    }

    /// Warns when the next row is more than [`LONG_WAIT`] away.
    fn warn_if_long(&mut self, deadline: Instant) {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait > LONG_WAIT
            && let Some(next) = &self.next
        {
            self.summary.long_waits += 1;
            warn!(
                line = next.line,
                wait_s = wait.as_secs_f64().round(),
                wait = %human(wait),
                "waiting long for the next row (a gap in the data's timestamps; --max-gap shortens gaps)"
            );
        }
    }

    /// Waits until a row's due instant, as precisely as `options.spin` allows.
    async fn wait_for_row(&mut self, deadline: Instant) -> Result<(), Cancelled> {
        let spin = self.options.spin;
        if spin.is_zero() {
            return self.sleep_until(deadline).await;
        }
        if let Some(early) = deadline.checked_sub(spin) {
            self.sleep_until(early).await?;
        }
        while Instant::now() < deadline {
            if self.shutdown.is_cancelled() {
                return Err(Cancelled);
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Sleeps until `deadline` unless shutdown is requested first.
    async fn sleep_until(&mut self, deadline: Instant) -> Result<(), Cancelled> {
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Err(Cancelled),
            () = sleep_until(deadline) => Ok(()),
        }
    }

    /// Posts the head of the pending batch once and deals with the answer.
    /// The outer `Err` stops the replay with an error, the inner one on shutdown.
    async fn attempt(&mut self) -> Result<Result<(), Cancelled>, ReplayError> {
        let InFlight { key, count } = match &self.in_flight {
            Some(batch) => batch.clone(),
            None => {
                let count = self.pending_rows.len().min(self.cap);
                if count == 0 {
                    return Ok(Ok(()));
                }
                self.batches += 1;
                let key = batch_key(&self.options.run_id, self.batches);
                self.in_flight.insert(InFlight { key, count }).clone()
            }
        };
        let sent_at = Instant::now();
        let result = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return Ok(Err(Cancelled)),
            result = self.transport.post(&key, &self.pending_events[..count]) => result,
        };
        // Any answer but a retry ends this batch: what is left of it goes under a new key.
        if !matches!(
            result,
            Err(PostError::Transient(_) | PostError::RetryAfter { .. })
        ) {
            self.in_flight = None;
        }
        match result {
            Ok(accepted) => {
                self.recovered();
                if accepted != count as u64 {
                    warn!(
                        sent = count,
                        accepted, "server accepted a different number of rows"
                    );
                }
                self.summary.accepted += accepted;
                self.summary.posts += 1;
                self.delivered(0..count, sent_at);
                self.progress.on_delivered(count as u64, &self.summary);
            }
            Err(PostError::Invalid {
                item: Some(item),
                field,
                reason,
            }) if item < count => {
                self.recovered();
                self.summary.posts += 1;
                self.summary.rejected += 1;
                let row = self.pending_rows[item].clone();
                warn!(
                    line = row.line,
                    ip = %row.event.ip,
                    field = field.as_deref().unwrap_or("?"),
                    reason = %reason,
                    "row rejected by server"
                );
                self.delivered(item..item + 1, sent_at);
                self.progress.on_delivered(1, &self.summary);
            }
            Err(PostError::Invalid { item, reason, .. }) => {
                return Err(ReplayError::Refused(format!(
                    "422 for item {item:?} of a batch of {count}: {reason}"
                )));
            }
            Err(PostError::TooLarge) if count > 1 => {
                self.recovered();
                self.cap = count / 2;
                info!(
                    max_batch = self.cap,
                    "server says batch too large, splitting"
                );
            }
            Err(PostError::TooLarge) => {
                return Err(ReplayError::Refused(
                    "413: even a single event is too large".into(),
                ));
            }
            Err(PostError::Fatal(message)) => return Err(ReplayError::Refused(message)),
            Err(PostError::Unauthorized(message)) => {
                return Err(ReplayError::Unauthorized(message));
            }
            Err(PostError::Transient(message)) => {
                return self.back_off(message, Duration::ZERO).await;
            }
            Err(PostError::RetryAfter { reason, after }) => {
                return self.back_off(reason, after).await;
            }
        }
        Ok(Ok(()))
    }

    /// Removes delivered rows from the pending batch and records their lateness.
    fn delivered(&mut self, rows: std::ops::Range<usize>, sent_at: Instant) {
        for due in self.pending_rows.drain(rows.clone()) {
            let late = sent_at.saturating_duration_since(due.exact);
            let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
            self.lateness.saturating_record(micros);
            self.max_lateness = self.max_lateness.max(late);
            self.summary.drift = Some(late);
        }
        self.pending_events.drain(rows);
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            info!(
                after_ms = since.elapsed().as_millis() as u64,
                pending = self.pending_rows.len(),
                "server reachable again"
            );
        }
        self.backoff = BACKOFF_START;
    }

    /// After a failed POST: give up, or wait (at least `at_least`, collecting rows that come
    /// due) and let the caller try the same batch again.
    async fn back_off(
        &mut self,
        message: String,
        at_least: Duration,
    ) -> Result<Result<(), Cancelled>, ReplayError> {
        self.summary.retries += 1;
        let now = Instant::now();
        let since = *self.failing_since.get_or_insert(now);
        let give_up_at = since + self.options.give_up_after;
        if now >= give_up_at {
            let undelivered = self.unsent();
            return Err(ReplayError::GaveUp {
                failing_for: now - since,
                last_error: message,
                undelivered,
            });
        }
        if since == now {
            let key = self
                .in_flight
                .as_ref()
                .map_or("", |batch| batch.key.as_str());
            warn!(error = %message, key, pending = self.pending_rows.len(), "POST failed, retrying with the same key");
        } else {
            debug!(error = %message, backoff_ms = self.backoff.as_millis() as u64, "POST failed again");
        }
        let retry_at = (now + self.backoff.max(at_least)).min(give_up_at);
        self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
        loop {
            self.collect_due()?;
            let wake = match self.next.as_ref().map(|due| due.deadline) {
                Some(deadline)
                    if deadline < retry_at
                        && self.pending_rows.len() < self.options.max_batch.get() =>
                {
                    deadline
                }
                _ => retry_at,
            };
            if self.sleep_until(wake).await.is_err() {
                return Ok(Err(Cancelled));
            }
            if Instant::now() >= retry_at {
                self.collect_due()?;
                return Ok(Ok(()));
            }
        }
    }

    /// Usable rows of this pass not delivered: pending, read ahead, and still in the file.
    fn unsent(&mut self) -> u64 {
        self.pending_rows.len() as u64
            + u64::from(self.next.is_some())
            + self.source.count_rest(&mut self.summary)
    }

    fn finish(mut self) -> Summary {
        self.summary.cancelled = self.shutdown.is_cancelled();
        self.summary.not_sent = self.unsent();
        self.pending_rows.clear();
        self.next = None;
        let micros = |q: f64| Duration::from_micros(self.lateness.value_at_quantile(q));
        if !self.lateness.is_empty() {
            self.summary.lateness = Lateness {
                p50: micros(0.5),
                p99: micros(0.99),
                max: self.max_lateness,
            };
        }
        if let Some(start) = self.source.start {
            self.summary.elapsed = start.elapsed();
        }
        self.progress.finish();
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use super::*;

    const T0: f64 = 1_736_919_120.0;

    /// One POST as the fake server saw it.
    #[derive(Debug, Clone, PartialEq)]
    struct Post {
        at: Duration,
        key: String,
        timestamps: Vec<f64>,
    }

    /// Records every POST with the paused clock's instant; answers from a script.
    struct FakeServer {
        start: Instant,
        posts: Vec<Post>,
        events: Vec<Event>,
        /// Answers for the next POSTs in turn; success once it is empty.
        script: VecDeque<Result<(), PostError>>,
        /// Every POST takes this long.
        delay: Duration,
        /// Fail every POST with a transient error.
        down: bool,
    }

    impl FakeServer {
        fn new() -> Self {
            Self {
                start: Instant::now(),
                posts: Vec::new(),
                events: Vec::new(),
                script: VecDeque::new(),
                delay: Duration::ZERO,
                down: false,
            }
        }

        /// Events of the POSTs that the server answered with success, in order.
        fn keys(&self) -> Vec<&str> {
            self.posts.iter().map(|p| p.key.as_str()).collect()
        }

        fn post_times(&self) -> Vec<(Duration, usize)> {
            self.posts
                .iter()
                .map(|p| (p.at, p.timestamps.len()))
                .collect()
        }
    }

    impl Transport for FakeServer {
        async fn post(&mut self, key: &str, events: &[Event]) -> Result<u64, PostError> {
            assert!(!events.is_empty(), "empty POST");
            self.posts.push(Post {
                at: Instant::now() - self.start,
                key: key.to_owned(),
                timestamps: events.iter().map(|e| e.timestamp).collect(),
            });
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if self.down {
                return Err(PostError::Transient("connection refused".into()));
            }
            match self.script.pop_front() {
                Some(Err(e)) => Err(e),
                _ => {
                    self.events.extend_from_slice(events);
                    Ok(events.len() as u64)
                }
            }
        }
    }

    fn event(timestamp: f64, n: u32) -> Event {
        Event::at(
            std::net::Ipv4Addr::from(0x0a00_0000 + n).into(),
            10.0,
            20.0,
            timestamp,
            false,
        )
    }

    /// Rows at `T0 + offset` seconds, lines 2, 3, ...
    fn rows(offsets: &[f64]) -> Vec<Row> {
        offsets
            .iter()
            .zip(0u32..)
            .map(|(&offset, n)| Row {
                line: u64::from(n) + 2,
                event: event(T0 + offset, n),
            })
            .collect()
    }

    type Rows = std::vec::IntoIter<Result<Row, ReadError>>;

    fn source(rows: Vec<Row>) -> impl FnMut() -> Result<Rows, ReadError> {
        move || Ok(rows.iter().cloned().map(Ok).collect::<Vec<_>>().into_iter())
    }

    fn options(speed: f64) -> Options {
        Options {
            speed,
            looping: false,
            strict: false,
            max_batch: NonZeroUsize::new(1000).unwrap(),
            max_gap: None,
            give_up_after: Duration::from_secs(60),
            spin: Duration::ZERO,
            run_id: "run".to_owned(),
            endless: false,
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    async fn play(
        rows: Vec<Row>,
        server: &mut FakeServer,
        options: &Options,
    ) -> (Summary, Result<(), ReplayError>) {
        let shutdown = CancellationToken::new();
        replay(source(rows), server, options, Progress::off(), &shutdown).await
    }

    const COURSE_FILE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/ip_addresses.csv"
    );

    /// The course file, parsed here independently of the CSV reader, as the expected rows.
    fn course_rows() -> Vec<Row> {
        let text = std::fs::read_to_string(COURSE_FILE).unwrap_or_else(|e| {
            panic!(
                "the course file {COURSE_FILE} is needed for this test \
                 (it lives beside the repository in ../shared): {e}"
            )
        });
        text.lines()
            .enumerate()
            .skip(1)
            .map(|(i, line)| {
                let f: Vec<&str> = line.split(',').collect();
                Row {
                    line: i as u64 + 1,
                    event: Event::at(
                        f[0].parse().unwrap(),
                        f[1].parse().unwrap(),
                        f[2].parse().unwrap(),
                        f[3].parse().unwrap(),
                        f[4].parse::<f64>().unwrap() != 0.0,
                    ),
                }
            })
            .collect()
    }

    async fn course_file_replays_on_schedule(speed: f64) {
        let rows = course_rows();
        assert_eq!(rows.len(), 2940);
        let mut server = FakeServer::new();
        let shutdown = CancellationToken::new();
        let (summary, result) = replay(
            || traffic::csv::CsvReader::from_path(COURSE_FILE),
            &mut server,
            &options(speed),
            Progress::off(),
            &shutdown,
        )
        .await;
        result.unwrap();

        // Every row exactly once, in file order.
        let sent: Vec<Event> = server.events.clone();
        let want: Vec<Event> = rows.iter().map(|r| r.event.clone()).collect();
        assert_eq!(sent, want);

        // Every row posted at start + (t_i - t_0) / speed, on tokio's millisecond timer grid.
        let t0 = rows[0].event.timestamp;
        let mut at_row = Vec::new();
        for post in &server.posts {
            at_row.extend(post.timestamps.iter().map(|_| post.at));
        }
        for (row, at) in rows.iter().zip(&at_row) {
            let due_ms = ((row.event.timestamp - t0) * 1000.0 / speed).ceil();
            assert_eq!(
                *at,
                Duration::from_millis(due_ms as u64),
                "line {} at speed {speed}",
                row.line
            );
        }
        // No drift: the last row leaves at exactly (t_last - t_0) / speed.
        let span = rows.last().unwrap().event.timestamp - t0;
        assert_eq!(*at_row.last().unwrap(), secs(span / speed));
        assert_eq!(summary.drift, Some(Duration::ZERO));
        assert_eq!(summary.accepted, 2940);
        assert!(summary.all_accepted(), "{summary}");
        assert_eq!(summary.out_of_order, 0);
        assert!(summary.lateness.max < Duration::from_millis(1), "{summary}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_course_file_at_speed_1_leaves_each_row_at_its_own_second() {
        course_file_replays_on_schedule(1.0).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_course_file_at_speed_60_takes_ten_seconds_without_drift() {
        course_file_replays_on_schedule(60.0).await;
    }

    #[tokio::test(start_paused = true)]
    async fn rows_sharing_a_timestamp_go_in_one_post_and_a_lone_row_alone() {
        let mut server = FakeServer::new();
        let (summary, result) = play(rows(&[0.0, 0.0, 0.0, 1.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        assert_eq!(server.post_times(), [(Duration::ZERO, 3), (secs(1.0), 1)]);
        assert_eq!(summary.posts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rows_that_fall_due_while_the_server_is_slow_go_together_next() {
        let mut server = FakeServer::new();
        server.delay = secs(1.5);
        let (_, result) = play(rows(&[0.0, 1.0, 2.0, 3.0, 4.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        assert_eq!(
            server.post_times(),
            [
                (secs(0.0), 1),
                (secs(1.5), 1),
                (secs(3.0), 2),
                (secs(4.5), 1)
            ]
        );
        let sent: Vec<f64> = server.events.iter().map(|e| e.timestamp - T0).collect();
        assert_eq!(sent, [0.0, 1.0, 2.0, 3.0, 4.0], "file order");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_retried_with_backoff_as_it_was_under_its_key_and_later_rows_keep_their_schedule()
     {
        let mut server = FakeServer::new();
        let fail = || Err(PostError::Transient("503".into()));
        server.script = [fail(), fail(), fail()].into();
        let (summary, result) =
            play(rows(&[0.0, 0.1, 0.2, 1.0, 2.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        // 0: fails; +50 ms: fails; +100 ms: fails; +200 ms: ok, each time the same one row
        // under the same key (the server may have counted an attempt whose answer was lost);
        // the two rows that came due meanwhile follow at once as the next batch.
        assert_eq!(
            server.post_times(),
            [
                (secs(0.0), 1),
                (secs(0.05), 1),
                (secs(0.15), 1),
                (secs(0.35), 1),
                (secs(0.35), 2),
                (secs(1.0), 1),
                (secs(2.0), 1)
            ]
        );
        assert_eq!(
            server.keys(),
            [
                "run:1", "run:1", "run:1", "run:1", "run:2", "run:3", "run:4"
            ]
        );
        assert!(server.posts[..4].iter().all(|p| p.timestamps == [T0]));
        let want: Vec<Event> = rows(&[0.0, 0.1, 0.2, 1.0, 2.0])
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(server.events, want, "nothing lost or doubled, in order");
        assert_eq!(summary.retries, 3);
        assert!(summary.all_accepted());
        assert_eq!(summary.lateness.max, secs(0.35));
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_rejected_by_the_server_is_reported_and_the_rest_resent() {
        let mut server = FakeServer::new();
        server.script = [Err(PostError::Invalid {
            item: Some(1),
            field: Some("latitude".into()),
            reason: "out of range".into(),
        })]
        .into();
        let (summary, result) = play(rows(&[0.0, 0.0, 0.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        assert_eq!(
            server.post_times(),
            [(Duration::ZERO, 3), (Duration::ZERO, 2)]
        );
        assert_eq!(server.posts[1].timestamps, [T0, T0]);
        let ips: Vec<Event> = server.events.clone();
        let want = rows(&[0.0, 0.0, 0.0]);
        assert_eq!(ips, [want[0].event.clone(), want[2].event.clone()]);
        assert_eq!((summary.accepted, summary.rejected), (2, 1));
        assert!(!summary.all_accepted(), "a rejected row means exit 1");
    }

    #[tokio::test(start_paused = true)]
    async fn too_large_batches_are_split_in_half() {
        let mut server = FakeServer::new();
        server.script = [Err(PostError::TooLarge)].into();
        let (summary, result) = play(rows(&[0.0; 5]), &mut server, &options(1.0)).await;
        result.unwrap();
        let sizes: Vec<usize> = server.post_times().iter().map(|p| p.1).collect();
        assert_eq!(sizes, [5, 2, 2, 1]);
        assert_eq!(
            server.keys(),
            ["run:1", "run:2", "run:3", "run:4"],
            "the parts of a split batch are new batches with new keys"
        );
        assert_eq!(server.events.len(), 5);
        assert!(summary.all_accepted());
    }

    #[tokio::test(start_paused = true)]
    async fn a_409_is_retried_with_the_same_key_and_rows_after_its_retry_after() {
        let mut server = FakeServer::new();
        server.script = [Err(PostError::RetryAfter {
            reason: "server answered 409 Conflict: in flight".into(),
            after: secs(1.0),
        })]
        .into();
        let (summary, result) = play(rows(&[0.0, 0.0, 5.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        assert_eq!(
            server.post_times(),
            [(secs(0.0), 2), (secs(1.0), 2), (secs(5.0), 1)],
            "waits the Retry-After, not the 50 ms backoff"
        );
        assert_eq!(server.keys(), ["run:1", "run:1", "run:2"]);
        assert_eq!(summary.retries, 1);
        assert!(summary.all_accepted(), "{summary}");
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_left_of_a_batch_after_a_rejected_item_goes_under_a_new_key() {
        let mut server = FakeServer::new();
        server.script = [Err(PostError::Invalid {
            item: Some(0),
            field: None,
            reason: "bad".into(),
        })]
        .into();
        let (_, result) = play(rows(&[0.0, 0.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        assert_eq!(server.keys(), ["run:1", "run:2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_replay_gives_up_after_the_configured_time_and_says_how_many_rows_were_lost() {
        let mut server = FakeServer::new();
        server.down = true;
        let mut opts = options(1.0);
        opts.give_up_after = secs(5.0);
        let offsets: Vec<f64> = (0..11).map(f64::from).collect();
        let (summary, result) = play(rows(&offsets), &mut server, &opts).await;
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                ReplayError::GaveUp {
                    undelivered: 11,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("11 rows were not delivered"),
            "{err}"
        );
        assert_eq!(
            server.posts.last().unwrap().at,
            secs(5.0),
            "gives up on time"
        );
        assert_eq!(summary.not_sent, 11);
        assert_eq!(summary.rows_read, 11, "rows left in the file count as read");
        assert!(!summary.all_accepted());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_server_stops_the_replay() {
        let mut server = FakeServer::new();
        server.script = [Err(PostError::Fatal(
            "server answered 404: not found".into(),
        ))]
        .into();
        let (summary, result) = play(rows(&[0.0, 1.0]), &mut server, &options(1.0)).await;
        let err = result.unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        assert_eq!(summary.not_sent, 2);
        assert_eq!(server.posts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn looping_continues_the_data_clock_until_cancelled() {
        let mut server = FakeServer::new();
        let mut opts = options(1.0);
        opts.looping = true;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(secs(7.5)).await;
            stop.cancel();
        });
        let (summary, result) = replay(
            source(rows(&[0.0, 1.0, 2.0])),
            &mut server,
            &opts,
            Progress::off(),
            &shutdown,
        )
        .await;
        result.unwrap();
        // Span 2 s + 1 s gap: pass 2 starts at T0 + 3, pass 3 at T0 + 6.
        let sent: Vec<f64> = server.events.iter().map(|e| e.timestamp - T0).collect();
        assert_eq!(sent, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let at: Vec<Duration> = server.posts.iter().map(|p| p.at).collect();
        assert_eq!(at, (0..8).map(|s| secs(f64::from(s))).collect::<Vec<_>>());
        let keys: std::collections::HashSet<&str> = server.keys().into_iter().collect();
        assert_eq!(keys.len(), 8, "a key per batch, across passes");
        assert!(summary.cancelled);
        assert_eq!(summary.passes, 3);
        assert_eq!(summary.not_sent, 1, "the row read ahead in pass 3");
        assert!(!summary.all_accepted());
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_order_rows_go_at_once_and_are_counted() {
        let mut server = FakeServer::new();
        let (summary, result) = play(rows(&[0.0, 2.0, 1.0, 3.0]), &mut server, &options(1.0)).await;
        result.unwrap();
        assert_eq!(
            server.post_times(),
            [(secs(0.0), 1), (secs(2.0), 2), (secs(3.0), 1)]
        );
        assert_eq!(summary.out_of_order, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_access_log_stamped_at_request_start_replays_in_file_order_late_lines_at_once() {
        // Logged when each request ended, stamped when it began: line 2 began 2 s before
        // line 1 ended, line 4 a second before line 3.
        let log = "\
198.51.100.1 - - [15/Jan/2025:05:32:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\"
198.51.100.2 - - [15/Jan/2025:05:31:58 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\"
198.51.100.3 - - [15/Jan/2025:05:32:03 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\"
198.51.100.4 - - [15/Jan/2025:05:32:02 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\"
198.51.100.5 - - [15/Jan/2025:05:32:05 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\"
";
        let path = std::env::temp_dir().join(format!("sender-ooo-{}.log", std::process::id()));
        std::fs::write(&path, log).unwrap();
        let spec = crate::source::Spec {
            path: path.clone(),
            format: crate::source::InputFormat::Auto,
            map: Vec::new(),
            rules: std::sync::Arc::new(sources::suspicious::Rules::default()),
        };
        let mut server = FakeServer::new();
        let shutdown = CancellationToken::new();
        let (summary, result) = replay(
            || crate::source::open(&spec).map(|o| o.rows),
            &mut server,
            &options(1.0),
            Progress::off(),
            &shutdown,
        )
        .await;
        std::fs::remove_file(&path).unwrap();
        result.unwrap();
        // Each line late for the schedule goes at once with the latest one; none is held
        // back or reordered, and each keeps its own timestamp.
        assert_eq!(
            server.post_times(),
            [(secs(0.0), 2), (secs(3.0), 2), (secs(5.0), 1)]
        );
        let sent: Vec<f64> = server.events.iter().map(|e| e.timestamp - T0).collect();
        assert_eq!(sent, [0.0, -2.0, 3.0, 2.0, 5.0]);
        assert_eq!(summary.out_of_order, 2);
        assert!(summary.all_accepted(), "{summary}");
    }

    fn with_bad_row() -> impl FnMut() -> Result<Rows, ReadError> {
        || {
            let good = rows(&[0.0, 1.0]);
            Ok(vec![
                Ok(good[0].clone()),
                Err(ReadError::Row {
                    line: 3,
                    reason: "timestamp: \"17369x9120\" is not a time".into(),
                }),
                Ok(good[1].clone()),
            ]
            .into_iter())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unusable_rows_are_skipped_and_counted_by_field() {
        let mut server = FakeServer::new();
        let shutdown = CancellationToken::new();
        let (summary, result) = replay(
            with_bad_row(),
            &mut server,
            &options(1.0),
            Progress::off(),
            &shutdown,
        )
        .await;
        result.unwrap();
        assert_eq!(server.events.len(), 2);
        assert_eq!(
            summary.skipped,
            BTreeMap::from([("timestamp".to_owned(), 1)])
        );
        assert!(summary.all_accepted(), "skipped rows are not usable rows");
        assert!(
            summary.to_string().contains("skipped 1 (timestamp 1)"),
            "{summary}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_strict_an_unusable_row_stops_the_replay() {
        let mut server = FakeServer::new();
        let shutdown = CancellationToken::new();
        let mut opts = options(1.0);
        opts.strict = true;
        let (_, result) = replay(
            with_bad_row(),
            &mut server,
            &opts,
            Progress::off(),
            &shutdown,
        )
        .await;
        let err = result.unwrap_err();
        assert!(matches!(err, ReplayError::Strict { line: 3, .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_longer_than_max_gap_is_shortened_and_later_rows_keep_their_spacing() {
        let year = 365.0 * 86_400.0;
        let offsets = [0.0, year, year + 1.0, year + 2.5, year + 100.0];
        let mut opts = options(2.0);
        opts.max_gap = Some(secs(10.0));
        let mut server = FakeServer::new();
        let (summary, result) = play(rows(&offsets), &mut server, &opts).await;
        result.unwrap();
        // Data gaps 1 year, 1 s, 1.5 s, 97.5 s -> 10, 1, 1.5, 10 s; at speed 2, halved, and
        // computed from the start (absolute), not from the previous send.
        assert_eq!(
            server.post_times(),
            [
                (secs(0.0), 1),
                (secs(5.0), 1),
                (secs(5.5), 1),
                (secs(6.25), 1),
                (secs(11.25), 1)
            ]
        );
        let sent: Vec<f64> = server.events.iter().map(|e| e.timestamp - T0).collect();
        assert_eq!(sent, offsets, "the data's own timestamps are sent");
        assert_eq!(summary.gaps_shortened, 2);
        assert_eq!(summary.long_waits, 0);
        assert_eq!(summary.drift, Some(Duration::ZERO));
        assert!(
            summary.to_string().contains("gaps shortened 2"),
            "{summary}"
        );
    }

    /// Log lines written while the returned guard lives (this thread only).
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn start(&self) -> tracing::subscriber::DefaultGuard {
            let writer = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::WARN)
                .finish();
            tracing::subscriber::set_default(subscriber)
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_of_more_than_a_minute_for_the_next_row_is_warned_with_its_line_and_the_wait() {
        let year = 365.0 * 86_400.0;
        let log = Captured::default();
        let guard = log.start();
        let mut server = FakeServer::new();
        // Waits: 59 s (quiet), then a year (line 4, warned), then 61 s (line 5, warned).
        let (summary, result) = play(
            rows(&[0.0, 59.0, 59.0 + year, 120.0 + year]),
            &mut server,
            &options(1.0),
        )
        .await;
        drop(guard);
        result.unwrap();
        assert_eq!(
            server.post_times()[2].0,
            secs(59.0 + year),
            "kept without --max-gap"
        );
        assert_eq!(summary.long_waits, 2);
        let text = log.text();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("waiting long"))
            .collect();
        assert_eq!(warnings.len(), 2, "{text}");
        assert!(warnings[0].contains("line=4"), "{text}");
        assert!(warnings[0].contains("wait=365.0 days"), "{text}");
        assert!(warnings[1].contains("line=5"), "{text}");
        assert!(warnings[1].contains("wait_s=61"), "{text}");
        assert!(summary.to_string().contains("long waits 2"), "{summary}");
    }

    #[test]
    fn waits_are_told_in_a_fitting_unit() {
        assert_eq!(human(secs(61.0)), "61 s");
        assert_eq!(human(secs(600.0)), "10.0 min");
        assert_eq!(human(secs(5400.0 * 2.0)), "3.0 h");
        assert_eq!(human(secs(86_400.0 * 3.0)), "3.0 days");
    }

    #[test]
    fn skip_reasons_are_grouped_by_field() {
        assert_eq!(reason_category("latitude: 91 is out of range"), "latitude");
        assert_eq!(reason_category("expected 5 fields, found 3"), "malformed");
        assert_eq!(reason_category("Bad Thing: x"), "malformed");
    }
}
