//! `--follow`: sends the lines of a growing log as they are written, like `tail -F`, and keeps
//! a checkpoint so that a restarted sender continues where it stopped.
//!
//! [`tail`] reads the file (rotation, truncation, partial lines); [`checkpoint`] stores how far
//! the server has accepted. [`Follower::step`] reads what is new and delivers it batch by
//! batch, one POST at a time; [`follow`] calls it every poll interval until shut down.
//!
//! Exactly once across restarts: each batch is a byte range of one file and its idempotency
//! key is derived from the file and the range (`tail-<file>:<start>-<end>`), not from the run.
//! Before its POST the checkpoint records the range as being sent; after the 202 it records
//! its end as done. A sender killed between the two sends the same range again under the same
//! key, and the server (which remembers keys for 600 s) does not count it twice.

pub mod checkpoint;
pub mod tail;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sources::suspicious::Rules;
use sources::{AnyParser, Format, LineParser};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use traffic::Event;
use traffic::csv::ReadError;

use crate::replay::{ReplayError, reason_category};
use crate::source::{FORMAT_NAMES, InputFormat, to_row};
use crate::summary::Summary;
use crate::transport::{PostError, Transport};
use checkpoint::Checkpoint;
use tail::{Chunk, Resumed, Start, TailLine, Tailer};

/// Default pause between two looks at the file.
pub const POLL: Duration = Duration::from_millis(250);
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// How to follow.
#[derive(Debug, Clone)]
pub struct Options {
    /// The log to follow.
    pub path: PathBuf,
    /// Its format (`Auto`: decided from its first lines; CSV is refused).
    pub format: InputFormat,
    /// Key map for the JSON formats.
    pub map: Vec<(String, String)>,
    /// Suspicious rules.
    pub rules: Arc<Rules>,
    /// Where the checkpoint is kept.
    pub checkpoint: PathBuf,
    /// Where to start without a checkpoint.
    pub start: Start,
    /// Most lines in one POST.
    pub max_batch: usize,
    /// An unusable line stops the sender instead of being skipped.
    pub strict: bool,
    /// Continuous failure after which the sender gives up.
    pub give_up_after: Duration,
    /// Pause between two looks at the file.
    pub poll: Duration,
}

/// Follows one file (see the module documentation).
pub struct Follower<T> {
    options: Options,
    transport: T,
    tailer: Tailer,
    parser: Option<AnyParser>,
    /// A range to send again first, exactly: `(end, end line)` of the checkpoint's `sending`.
    resend: Option<u64>,
    summary: Summary,
}

impl<T: Transport> Follower<T> {
    /// Opens the file (it need not exist yet) from the checkpoint, if there is one.
    pub fn new(options: Options, transport: T) -> Result<Follower<T>, ReplayError> {
        let io = |what: &str, e: std::io::Error| {
            ReplayError::Read(ReadError::Io(std::io::Error::new(
                e.kind(),
                format!("{what}: {e}"),
            )))
        };
        let parser = match options.format {
            InputFormat::Auto => None,
            InputFormat::Csv | InputFormat::Pcap | InputFormat::TsharkJson => {
                return Err(csv_refused());
            }
            InputFormat::Log(format) => Some(new_parser(format, &options.map)?),
        };
        checkpoint::check_writable(&options.checkpoint).map_err(|e| {
            io(
                &format!(
                    "the checkpoint {} cannot be written (choose another place with --checkpoint)",
                    options.checkpoint.display()
                ),
                e,
            )
        })?;
        let saved = checkpoint::load(&options.checkpoint)
            .map_err(|e| io(&options.checkpoint.display().to_string(), e))?;
        let (tailer, resumed) =
            Tailer::open(&options.path, saved.map(|c| c.position()), options.start)
                .map_err(|e| io(&options.path.display().to_string(), e))?;
        // The file's first lines: they decide the format now if they can, and a parser that
        // reads headers (Zeek's `#fields`, tshark's header line) needs them when reading
        // resumes past them.
        let head = tailer
            .head(HEAD_BYTES)
            .map_err(|e| io(&options.path.display().to_string(), e))?;
        let mut parser = parser;
        if parser.is_none() {
            parser = detect_parser(&head, &options)?;
        }
        if let Some(p) = parser.as_mut()
            && let Some(position) = tailer.position()
        {
            prime(p, &head, position.offset);
        }
        let resend = match (&resumed, saved.and_then(|c| c.sending)) {
            (Resumed::SameFile | Resumed::Rotated(_), Some((end, _))) => Some(end),
            _ => None,
        };
        match &resumed {
            Resumed::Fresh => {
                info!(file = %options.path.display(), start = ?options.start, "following, no checkpoint")
            }
            Resumed::SameFile => {
                info!(file = %options.path.display(), offset = saved.map_or(0, |c| c.offset), "following from the checkpoint")
            }
            Resumed::Rotated(old) => {
                info!(rotated = %old.display(), "the checkpoint's file was rotated: finishing it first")
            }
            Resumed::Truncated => {
                warn!(file = %options.path.display(), "the file is shorter than the checkpoint (truncated): reading it from its start")
            }
            Resumed::Gone => {
                warn!(file = %options.path.display(), "the checkpoint's file is gone (rotated away and removed?): its unread lines are lost; reading the file at the path from its start")
            }
        }
        Ok(Follower {
            options,
            transport,
            tailer,
            parser,
            resend,
            summary: Summary {
                passes: 1,
                unpaced: true,
                ..Summary::default()
            },
        })
    }

    /// What has been done so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Reads everything new and delivers it; returns the number of lines read.
    pub async fn step(&mut self, shutdown: &CancellationToken) -> Result<u64, ReplayError> {
        let mut lines = 0;
        loop {
            let limit = self.resend.take();
            let max = if limit.is_some() {
                usize::MAX
            } else {
                self.options.max_batch
            };
            let chunk = self
                .tailer
                .read_chunk(max, limit)
                .map_err(|e| ReplayError::Read(ReadError::Io(e)))?;
            for event in self.tailer.take_events() {
                match event {
                    tail::Event::Rotated => {
                        info!(file = %self.options.path.display(), "log rotated: the old file is finished, reading the new one")
                    }
                    tail::Event::Truncated { was_at } => {
                        warn!(file = %self.options.path.display(), was_at, "log truncated (copytruncate?): reading it again from its start")
                    }
                }
            }
            let Some(chunk) = chunk else {
                return Ok(lines);
            };
            lines += chunk.lines.len() as u64;
            self.deliver_chunk(chunk, shutdown).await?;
            if shutdown.is_cancelled() {
                return Ok(lines);
            }
        }
    }

    async fn deliver_chunk(
        &mut self,
        chunk: Chunk,
        shutdown: &CancellationToken,
    ) -> Result<(), ReplayError> {
        let (numbers, events) = self.parse(&chunk)?;
        let end_line = chunk.line_before + chunk.lines.len() as u64;
        let done = Checkpoint {
            dev: chunk.file.dev,
            ino: chunk.file.ino,
            fingerprint: chunk.file.fingerprint,
            offset: chunk.end,
            line: end_line,
            sending: None,
        };
        if !events.is_empty() {
            let sending = Checkpoint {
                offset: chunk.start,
                line: chunk.line_before,
                sending: Some((chunk.end, end_line)),
                ..done
            };
            self.store(&sending)?;
            let key = format!("tail-{}:{}-{}", chunk.file.key(), chunk.start, chunk.end);
            self.summary.rows_read += events.len() as u64;
            if !self.deliver(key, numbers, events, shutdown).await? {
                return Ok(()); // shut down while sending: the checkpoint says "sending"
            }
        }
        self.store(&done)
    }

    fn store(&self, cp: &Checkpoint) -> Result<(), ReplayError> {
        checkpoint::store(&self.options.checkpoint, cp).map_err(|e| {
            ReplayError::Read(ReadError::Io(std::io::Error::new(
                e.kind(),
                format!(
                    "writing the checkpoint {} (choose another with --checkpoint): {e}",
                    self.options.checkpoint.display()
                ),
            )))
        })
    }

    /// The chunk's lines as events, with their line numbers; unusable lines are counted.
    fn parse(&mut self, chunk: &Chunk) -> Result<(Vec<u64>, Vec<Event>), ReplayError> {
        if self.parser.is_none() {
            let mut sample = Vec::new();
            for line in chunk.lines.iter().take(sources::detect::DETECT_LINES) {
                if let TailLine::Text(_, text) = line {
                    sample.extend_from_slice(text);
                    sample.push(b'\n');
                }
            }
            self.parser = detect_parser(&sample, &self.options)?;
        }
        let (mut numbers, mut events) = (Vec::new(), Vec::new());
        let Some(parser) = self.parser.as_mut() else {
            return Ok((numbers, events)); // blank lines only so far
        };
        for line in &chunk.lines {
            let row = match line {
                TailLine::Text(_, text) if text.trim_ascii().is_empty() => continue,
                TailLine::Text(n, text) if parser.skip(*n, text) => continue,
                TailLine::Text(n, text) => match parser.parse(*n, text) {
                    Ok(mut record) => {
                        self.options.rules.apply(&mut record);
                        to_row(&record)
                    }
                    Err(e) => Err(ReadError::Row {
                        line: e.line,
                        reason: e.reason,
                    }),
                },
                TailLine::TooLong(n, len) => Err(ReadError::Row {
                    line: *n,
                    reason: format!(
                        "line is longer than {} bytes ({len} bytes)",
                        sources::MAX_LINE_BYTES
                    ),
                }),
            };
            match row {
                Ok(row) => {
                    numbers.push(row.line);
                    events.push(row.event);
                }
                Err(ReadError::Row { line, reason }) => {
                    if self.options.strict {
                        return Err(ReplayError::Strict { line, reason });
                    }
                    warn!(line, reason = %reason, "row skipped");
                    *self
                        .summary
                        .skipped
                        .entry(reason_category(&reason))
                        .or_default() += 1;
                }
                Err(other) => return Err(ReplayError::Read(other)),
            }
        }
        Ok((numbers, events))
    }

    /// Delivers one batch (split on 413, one row dropped per 422 naming it), each new body
    /// under a key derived from `key` in a fixed order, so that a restart derives the same
    /// keys. `Ok(false)`: shut down before the end.
    async fn deliver(
        &mut self,
        key: String,
        numbers: Vec<u64>,
        events: Vec<Event>,
        shutdown: &CancellationToken,
    ) -> Result<bool, ReplayError> {
        let mut parts = VecDeque::from([(key.clone(), numbers, events)]);
        let mut variants = 0u32;
        let mut next_key = move || {
            variants += 1;
            format!("{key}:{variants}")
        };
        let mut backoff = BACKOFF_START;
        let mut failing_since: Option<Instant> = None;
        while let Some((_, _, events)) = parts.front() {
            if events.is_empty() {
                parts.pop_front();
                continue;
            }
            let count = events.len();
            let pending: u64 = parts.iter().map(|p| p.2.len() as u64).sum();
            let (key, numbers, events) = parts.front_mut().expect("checked above");
            let answer = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.summary.not_sent += pending;
                    return Ok(false);
                }
                answer = self.transport.post(key, events) => answer,
            };
            let (reason, at_least) = match answer {
                Ok(accepted) => {
                    if accepted != count as u64 {
                        warn!(
                            sent = count,
                            accepted, "server accepted a different number of rows"
                        );
                    }
                    self.summary.accepted += accepted;
                    self.summary.posts += 1;
                    parts.pop_front();
                    failing_since = None;
                    backoff = BACKOFF_START;
                    continue;
                }
                Err(PostError::Invalid {
                    item: Some(item),
                    field,
                    reason,
                }) if item < count => {
                    let line = numbers.remove(item);
                    let event = events.remove(item);
                    warn!(line, ip = %event.ip, field = field.as_deref().unwrap_or("?"), reason = %reason, "row rejected by server");
                    self.summary.posts += 1;
                    self.summary.rejected += 1;
                    *key = next_key();
                    continue;
                }
                Err(PostError::TooLarge) if count > 1 => {
                    let half = count / 2;
                    let tail = (next_key(), numbers.split_off(half), events.split_off(half));
                    *key = next_key();
                    parts.insert(1, tail);
                    continue;
                }
                Err(PostError::Invalid { item, reason, .. }) => {
                    return Err(ReplayError::Refused(format!(
                        "422 for item {item:?} of a batch of {count}: {reason}"
                    )));
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
                Err(PostError::Transient(message)) => (message, Duration::ZERO),
                Err(PostError::RetryAfter { reason, after }) => (reason, after),
            };
            // Retry the same body under the same key.
            let now = Instant::now();
            let since = *failing_since.get_or_insert(now);
            if now.duration_since(since) >= self.options.give_up_after {
                return Err(ReplayError::GaveUp {
                    failing_for: now - since,
                    last_error: reason,
                    undelivered: parts.iter().map(|p| p.2.len() as u64).sum(),
                });
            }
            if since == now {
                warn!(error = %reason, "POST failed, retrying with the same key");
            }
            self.summary.retries += 1;
            let wait = backoff.max(at_least);
            backoff = (backoff * 2).min(BACKOFF_CAP);
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.summary.not_sent += parts.iter().map(|p| p.2.len() as u64).sum::<u64>();
                    return Ok(false);
                }
                () = sleep(wait) => {}
            }
        }
        Ok(true)
    }
}

/// How much of the file's start is read for detection and headers.
const HEAD_BYTES: usize = 64 * 1024;

/// The parser for the lines in `sample` (complete lines): `None` when there are none yet.
fn detect_parser(sample: &[u8], options: &Options) -> Result<Option<AnyParser>, ReplayError> {
    let complete = match sample.iter().rposition(|&b| b == b'\n') {
        Some(i) => &sample[..=i],
        None => return Ok(None),
    };
    if complete.trim_ascii().is_empty() {
        return Ok(None);
    }
    match crate::source::detect(complete) {
        Some(InputFormat::Log(format)) => {
            info!(format = %format, "format detected");
            new_parser(format, &options.map).map(Some)
        }
        Some(_) => Err(csv_refused()),
        None => Err(ReplayError::Read(ReadError::Header(format!(
            "{}: the format is not recognised from its first lines; name it with --format \
             ({FORMAT_NAMES})",
            options.path.display()
        )))),
    }
}

/// Shows `parser` the header lines at the start of `head`, before `offset` (where reading
/// resumes): the lines it skips, up to the first it would parse.
fn prime(parser: &mut AnyParser, head: &[u8], offset: u64) {
    let before = &head[..head
        .len()
        .min(usize::try_from(offset).unwrap_or(usize::MAX))];
    let mut lines = before.split(|&b| b == b'\n');
    // The last piece has no newline within `before`: not a complete line there.
    lines.next_back();
    for (i, line) in lines.enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !parser.skip(i as u64 + 1, line) {
            break;
        }
    }
}

fn new_parser(format: Format, map: &[(String, String)]) -> Result<AnyParser, ReplayError> {
    AnyParser::new(format, map)
        .map_err(|e| ReplayError::Read(ReadError::Header(format!("--map: {e}"))))
}

fn csv_refused() -> ReplayError {
    ReplayError::Read(ReadError::Header(
        "--follow reads text logs (access logs, sshd, Zeek, tshark exports), not the traffic \
         CSV or a pcap capture"
            .into(),
    ))
}

/// Follows `options.path` until `shutdown` is cancelled or delivery fails for good.
pub async fn follow<T: Transport>(
    options: Options,
    transport: T,
    shutdown: &CancellationToken,
) -> (Summary, Result<(), ReplayError>) {
    let started = Instant::now();
    let poll = options.poll;
    let mut follower = match Follower::new(options, transport) {
        Ok(f) => f,
        Err(e) => return (Summary::default(), Err(e)),
    };
    let result = loop {
        if let Err(e) = follower.step(shutdown).await {
            break Err(e);
        }
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            () = sleep(poll) => {}
        }
    };
    let mut summary = follower.summary.clone();
    // Being stopped is how following ends: it only counts as stopping early when rows read
    // were left undelivered.
    summary.cancelled = shutdown.is_cancelled() && summary.not_sent > 0;
    summary.elapsed = started.elapsed();
    (summary, result)
}

/// The default checkpoint path for `file` (see [`checkpoint::default_path`]).
pub fn default_checkpoint(file: &Path) -> PathBuf {
    checkpoint::default_path(file)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    /// A server that counts each key once and can be told to lose the next answer.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        keys: HashSet<String>,
        counted: Vec<String>,
        /// Count the next batch, then answer with this error (the 202 is lost).
        lose_next: Option<PostError>,
    }

    impl Transport for Fake {
        async fn post(&mut self, key: &str, events: &[Event]) -> Result<u64, PostError> {
            let mut s = self.0.lock().unwrap();
            if s.keys.insert(key.to_owned()) {
                s.counted.extend(events.iter().map(|e| e.ip.to_string()));
            }
            match s.lose_next.take() {
                Some(e) => Err(e),
                None => Ok(events.len() as u64),
            }
        }
    }

    impl Fake {
        fn counted(&self) -> Vec<String> {
            self.0.lock().unwrap().counted.clone()
        }
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            fs::remove_dir_all(&self.0).ok();
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("sender-follow-{name}-{}", std::process::id()));
        fs::remove_dir_all(&d).ok();
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn line(i: u32) -> String {
        format!(
            "203.0.113.{i} - - [15/Jan/2025:05:32:03 +0000] \"GET /{i} HTTP/1.1\" 200 1 \"-\" \"x\"\n"
        )
    }

    fn ips(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
        range.map(|i| format!("203.0.113.{i}")).collect()
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn options(d: &Dir, start: Start) -> Options {
        Options {
            path: d.0.join("access.log"),
            format: InputFormat::Auto,
            map: Vec::new(),
            rules: Arc::new(Rules::default()),
            checkpoint: d.0.join("cp"),
            start,
            max_batch: 2,
            strict: false,
            give_up_after: Duration::from_secs(60),
            poll: POLL,
        }
    }

    async fn step<T: Transport>(f: &mut Follower<T>) -> u64 {
        f.step(&CancellationToken::new()).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn appended_lines_are_sent_as_they_come_and_old_ones_only_from_the_beginning() {
        let d = dir("append");
        let log = d.0.join("access.log");
        append(&log, &line(1));
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::End), fake.clone()).unwrap();
        assert_eq!(step(&mut f).await, 0, "lines already there are not sent");
        append(&log, &(line(2) + &line(3) + &line(4)));
        assert_eq!(step(&mut f).await, 3);
        append(&log, &line(5));
        assert_eq!(step(&mut f).await, 1);
        assert_eq!(fake.counted(), ips(2..=5));
        assert_eq!(f.summary().accepted, 4);
        assert_eq!(f.summary().posts, 3, "batches of at most 2");

        let d2 = dir("append-begin");
        fs::write(d2.0.join("access.log"), line(1) + &line(2)).unwrap();
        let fake = Fake::default();
        let mut f = Follower::new(options(&d2, Start::Beginning), fake.clone()).unwrap();
        step(&mut f).await;
        assert_eq!(fake.counted(), ips(1..=2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_last_line_waits_for_its_newline() {
        let d = dir("partial");
        let log = d.0.join("access.log");
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        let second = line(2);
        let (head, tail) = second.split_at(20);
        append(&log, &(line(1) + head));
        assert_eq!(step(&mut f).await, 1);
        assert_eq!(step(&mut f).await, 0);
        append(&log, tail);
        assert_eq!(step(&mut f).await, 1);
        assert_eq!(fake.counted(), ips(1..=2));
        assert!(f.summary().skipped.is_empty(), "no half line was parsed");
    }

    #[tokio::test(start_paused = true)]
    async fn rotation_by_rename_finishes_the_old_file_then_reads_the_new_one() {
        let d = dir("rename");
        let log = d.0.join("access.log");
        append(&log, &line(1));
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        step(&mut f).await;
        append(&log, &line(2));
        fs::rename(&log, d.0.join("access.log.1")).unwrap();
        // The writer still appends to the old file, then reopens the path.
        append(&d.0.join("access.log.1"), &line(3));
        append(&log, &(line(4) + &line(5)));
        step(&mut f).await;
        append(&log, &line(6));
        step(&mut f).await;
        assert_eq!(fake.counted(), ips(1..=6));
    }

    #[tokio::test(start_paused = true)]
    async fn copytruncate_is_read_again_from_the_start() {
        let d = dir("truncate");
        let log = d.0.join("access.log");
        append(&log, &(line(1) + &line(2) + &line(3)));
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        step(&mut f).await;
        // copytruncate: copy away, truncate in place; the writer goes on at offset 0.
        fs::copy(&log, d.0.join("access.log.1")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&log, &line(4));
        step(&mut f).await;
        // Truncated and rewritten past the old offset before the next look: the first line
        // changed, so it is still seen.
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&log, &(line(5) + &line(6) + &line(7) + &line(8)));
        step(&mut f).await;
        assert_eq!(fake.counted(), ips(1..=8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_continues_from_the_checkpoint_without_loss_or_duplicates() {
        let d = dir("restart");
        let log = d.0.join("access.log");
        append(&log, &(line(1) + &line(2) + &line(3)));
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        // A first run sends lines 1-3 and stops.
        let mut token = CancellationToken::new();
        assert_eq!(f.step(&token).await.unwrap(), 3);
        drop(f);
        // A second run: a sender that dies right after the server counted its batch.
        append(&log, &(line(4) + &line(5)));
        let mut f = Follower::new(options(&d, Start::End), fake.clone()).unwrap();
        fake.0.lock().unwrap().lose_next = Some(PostError::Fatal("connection reset".into()));
        assert!(f.step(&token).await.is_err());
        drop(f);
        // Lines written while no sender runs, then a restart: the batch in flight is sent
        // again under its key (not counted twice), then the rest.
        // Larger batches now: without the checkpoint's range, lines 4-8 would be one batch
        // under a new key and 4-5 counted twice.
        append(&log, &(line(6) + &line(7) + &line(8)));
        let mut bigger = options(&d, Start::End);
        bigger.max_batch = 10;
        let mut f = Follower::new(bigger, fake.clone()).unwrap();
        token = CancellationToken::new();
        f.step(&token).await.unwrap();
        assert_eq!(fake.counted(), ips(1..=8));
        // And with the log rotated while the sender was down: the old file is finished.
        append(&log, &line(9));
        fs::rename(&log, d.0.join("access.log.1")).unwrap();
        append(&log, &line(10));
        drop(f);
        let mut f = Follower::new(options(&d, Start::End), fake.clone()).unwrap();
        f.step(&token).await.unwrap();
        assert_eq!(fake.counted(), ips(1..=10));
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_after_everything_was_delivered_is_a_complete_run() {
        let d = dir("stop");
        append(&d.0.join("access.log"), &(line(1) + &line(2) + &line(3)));
        let fake = Fake::default();
        let token = CancellationToken::new();
        let stop = token.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(1)).await; // a few polls later (paused clock)
            stop.cancel();
        });
        let (summary, result) = follow(options(&d, Start::Beginning), fake.clone(), &token).await;
        assert!(result.is_ok());
        assert_eq!(fake.counted(), ips(1..=3));
        assert_eq!(summary.verdict(), crate::Verdict::Complete, "{summary}");
        let cp = checkpoint::load(&d.0.join("cp")).unwrap().unwrap();
        assert_eq!((cp.line, cp.sending), (3, None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_past_a_zeek_header_still_knows_the_format_and_its_columns() {
        let d = dir("zeek");
        let log = d.0.join("access.log");
        let row = |i: u32| format!("203.0.113.{i}\t1736919123.{i}\ttcp\n");
        append(
            &log,
            &("#separator \\x09\n#fields\tid.orig_h\tts\tproto\n".to_owned() + &row(1)),
        );
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        step(&mut f).await;
        drop(f);
        append(&log, &row(2));
        // Data lines alone are no known format, and their columns are not conn.log's order:
        // the header at the file's start decides both.
        let mut f = Follower::new(options(&d, Start::End), fake.clone()).unwrap();
        step(&mut f).await;
        assert_eq!(fake.counted(), ips(1..=2));
        assert!(f.summary().skipped.is_empty(), "{:?}", f.summary().skipped);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_retried_under_the_same_key() {
        let d = dir("retry");
        let log = d.0.join("access.log");
        append(&log, &line(1));
        let fake = Fake::default();
        fake.0.lock().unwrap().lose_next = Some(PostError::Transient("timed out".into()));
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        step(&mut f).await;
        assert_eq!(fake.counted(), ips(1..=1));
        assert_eq!(f.summary().retries, 1);
        assert_eq!(f.summary().accepted, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_stops_following_at_once_as_unauthorized() {
        let d = dir("unauthorized");
        let log = d.0.join("access.log");
        append(&log, &line(1));
        let fake = Fake::default();
        fake.0.lock().unwrap().lose_next = Some(PostError::Unauthorized(
            "401: unknown or revoked token".into(),
        ));
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        let error = f.step(&CancellationToken::new()).await.unwrap_err();
        assert!(matches!(error, ReplayError::Unauthorized(_)), "{error:?}");
        assert_eq!(f.summary().retries, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn unreadable_lines_are_skipped_with_their_numbers_and_csv_or_an_unwritable_checkpoint_refused()
     {
        let d = dir("bad");
        let log = d.0.join("access.log");
        append(&log, &(line(1) + "garbage\n" + &line(3)));
        let fake = Fake::default();
        let mut f = Follower::new(options(&d, Start::Beginning), fake.clone()).unwrap();
        step(&mut f).await;
        assert_eq!(
            fake.counted(),
            ips(1..=1).into_iter().chain(ips(3..=3)).collect::<Vec<_>>()
        );
        assert_eq!(f.summary().skipped_total(), 1);
        let mut o = options(&d, Start::Beginning);
        o.format = InputFormat::Csv;
        assert!(Follower::new(o, Fake::default()).is_err());
        let mut o = options(&d, Start::Beginning);
        o.checkpoint = d.0.join("no-such-dir").join("cp");
        let e = Follower::new(o, Fake::default()).err().unwrap().to_string();
        assert!(e.contains("--checkpoint"), "{e}");
    }
}
