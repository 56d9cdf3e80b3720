//! The server's own request log: one JSON line per HTTP request in `requests.log` in the
//! data directory (`--request-log`), rotated by size (`--request-log-max-bytes`, by the
//! writer as it writes) and by age (`--request-log-max-age`, by the `request-log-rotation`
//! job), keeping `--request-log-keep` old files (`requests.log.1` the newest).
//!
//! The request path only writes its line into a per-thread scratch buffer and appends it to
//! a bounded queue of bytes (one uncontended lock, no wake-up, and once warmed up no
//! allocation); a thread of its own takes the whole queue every [`WRITE_EVERY`] and writes
//! it through a buffer, so there is no system call or thread switch per request. When the
//! queue is full the line is dropped and counted (`traffic_request_log_dropped_total`), so
//! a slow disk never slows a request.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;
use traffic::json::{write_ip_str, write_str, write_str_field, write_u64};

/// The log's file name in the data directory.
pub const FILE_NAME: &str = "requests.log";
/// Bytes of lines waiting for the writer at most (about 100,000 lines); more are dropped.
const QUEUE_BYTES: usize = 16 << 20;
/// Capacity a queue buffer keeps between rounds (a round of 5,000 requests/s, 50 ms).
const KEEP_BYTES: usize = 1 << 20;
/// How often the writer takes the waiting lines and flushes them to the file.
pub const WRITE_EVERY: Duration = Duration::from_millis(50);
/// Query parameters whose values never reach the log (by part of their name).
const SECRET_PARAMS: &[&str] = &[
    "token", "key", "secret", "password", "passwd", "auth", "session", "sig", "code",
];

/// Who made a request, as the auth layer found (the response carries it to the log).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// The request log: a bounded queue of lines in front of a writer thread.
pub struct RequestLog {
    /// Whole lines, each with its newline.
    queue: Arc<Mutex<Vec<u8>>>,
    /// Rotation and flush requests for the writer (rare); dropping it stops the writer.
    control: SyncSender<Message>,
    dropped: AtomicU64,
    trusted: Arc<[ipnet::IpNet]>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a list of whole lines.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the writer is asked, besides writing the lines.
enum Message {
    /// Rotate if the file is at least this old (and not empty); say what was done.
    RotateOlder(Duration, SyncSender<anyhow::Result<String>>),
    /// Everything queued before is written: say so.
    Flush(SyncSender<()>),
}

/// Where and how the log is kept.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The directory of `requests.log`.
    pub dir: PathBuf,
    /// Size past which the writer rotates.
    pub max_bytes: u64,
    /// Old files kept.
    pub keep: usize,
}

impl RequestLog {
    /// Opens (appending to) `requests.log` in `rotation.dir` and starts the writer thread.
    /// `trusted` proxies may name the client in `X-Forwarded-For`.
    ///
    /// # Errors
    /// The directory or file cannot be opened, or the thread not started.
    pub fn open(rotation: Rotation, trusted: Arc<[ipnet::IpNet]>) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&rotation.dir)
            .with_context(|| format!("while creating {}", rotation.dir.display()))?;
        let file = Target::open(rotation)?;
        let queue = Arc::new(Mutex::new(Vec::new()));
        let (control, requests) = sync_channel(16);
        let waiting = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("request-log".to_owned())
            .spawn(move || write_loop(file, &waiting, &requests))
            .context("while starting the request log writer")?;
        Ok(Arc::new(Self {
            queue,
            control,
            dropped: AtomicU64::new(0),
            trusted,
        }))
    }

    /// Queues a line (without its newline); drops and counts it if the queue is full.
    pub fn write_line(&self, line: &[u8]) {
        let mut queue = lock(&self.queue);
        if queue.len() + line.len() < QUEUE_BYTES {
            queue.extend_from_slice(line);
            queue.push(b'\n');
        } else {
            drop(queue);
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Appends the log's counters in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP traffic_request_log_dropped_total Request log lines dropped because the \
             writer was behind.\n# TYPE traffic_request_log_dropped_total counter\n\
             traffic_request_log_dropped_total {}",
            self.dropped()
        );
    }

    /// Waits until every line queued before is written (blocking).
    pub fn flush(&self) {
        let (done, wait) = sync_channel(1);
        if self.control.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// The `request-log-rotation` job: rotates the file if it is at least `max_age` old
    /// (and not empty), pruning old files beyond the number kept (blocking).
    ///
    /// # Errors
    /// A rename or delete failed.
    pub fn rotate_older_than(&self, max_age: Duration) -> anyhow::Result<String> {
        let (done, wait) = sync_channel(1);
        self.control
            .send(Message::RotateOlder(max_age, done))
            .map_err(|_| anyhow::anyhow!("the request log writer has stopped"))?;
        wait.recv()
            .map_err(|_| anyhow::anyhow!("the request log writer stopped"))?
    }
}

/// The open file and its rotation.
struct Target {
    rotation: Rotation,
    out: BufWriter<File>,
    size: u64,
    /// When the current file was started (for a file found at start: its modification
    /// time, the best the file system tells).
    since: SystemTime,
}

impl Target {
    fn path(&self) -> PathBuf {
        self.rotation.dir.join(FILE_NAME)
    }

    fn open(rotation: Rotation) -> anyhow::Result<Self> {
        let path = rotation.dir.join(FILE_NAME);
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("while opening {}", path.display()))?;
        let meta = file.metadata()?;
        let size = meta.len();
        let since = if size == 0 {
            SystemTime::now()
        } else {
            meta.modified().unwrap_or_else(|_| SystemTime::now())
        };
        Ok(Self {
            rotation,
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            since,
        })
    }

    /// Writes one line, with its newline.
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        if self.size >= self.rotation.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// `requests.log` becomes `.1`, `.1` becomes `.2`, ...; the oldest beyond `keep` go.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let dir = &self.rotation.dir;
        let old = |n: usize| dir.join(format!("{FILE_NAME}.{n}"));
        let keep = self.rotation.keep;
        for n in (1..keep).rev() {
            if old(n).exists() {
                std::fs::rename(old(n), old(n + 1))?;
            }
        }
        std::fs::rename(self.path(), old(1))?;
        let file = File::options()
            .create(true)
            .append(true)
            .open(self.path())?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        self.since = SystemTime::now();
        Ok(())
    }

    /// Deletes `requests.log.N` for N beyond `keep` (left by a larger `keep` before).
    fn prune(&self) -> std::io::Result<usize> {
        let mut pruned = 0;
        for entry in std::fs::read_dir(&self.rotation.dir)? {
            let name = entry?.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix(FILE_NAME))
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if n > self.rotation.keep {
                std::fs::remove_file(self.rotation.dir.join(&name))?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    fn rotate_older(&mut self, max_age: Duration) -> anyhow::Result<String> {
        let age = SystemTime::now()
            .duration_since(self.since)
            .unwrap_or_default();
        let rotated = if self.size > 0 && age >= max_age {
            let size = self.size;
            self.rotate()?;
            format!(
                "rotated requests.log ({size} bytes, {} s old)",
                age.as_secs()
            )
        } else {
            format!(
                "kept requests.log ({} bytes, {} s old)",
                self.size,
                age.as_secs()
            )
        };
        let pruned = self.prune()?;
        Ok(format!("{rotated}; pruned {pruned} old files"))
    }
}

/// Every [`WRITE_EVERY`] (or at a request) takes the waiting lines, writes them and
/// flushes; ends, after writing the last lines, once the log is dropped.
fn write_loop(mut target: Target, queue: &Mutex<Vec<u8>>, requests: &Receiver<Message>) {
    let mut failed = false;
    let mut batch = Vec::new();
    let mut write_waiting = |target: &mut Target| {
        std::mem::swap(&mut *lock(queue), &mut batch);
        // Line by line, so the file is rotated at a line's end once it reaches its bound.
        for line in batch.split_inclusive(|&b| b == b'\n') {
            if let Err(e) = target.write(line) {
                if !failed {
                    tracing::error!(error = %e, "cannot write the request log");
                }
                failed = true;
            } else {
                failed = false;
            }
        }
        // The two buffers trade places every round: after a burst, keep no more than a
        // round of ordinary traffic needs.
        batch.clear();
        batch.shrink_to(KEEP_BYTES);
        let _ = target.out.flush();
    };
    loop {
        let request = requests.recv_timeout(WRITE_EVERY);
        write_waiting(&mut target);
        match request {
            Ok(Message::RotateOlder(age, done)) => {
                let _ = done.send(target.rotate_older(age));
            }
            Ok(Message::Flush(done)) => {
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The path and query of `uri`, with the values of secret-looking parameters replaced.
fn redacted(uri: &Uri) -> std::borrow::Cow<'_, str> {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.into();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let lower = name.to_ascii_lowercase();
            if !value.is_empty() && SECRET_PARAMS.iter().any(|s| lower.contains(s)) {
                format!("{name}=REDACTED")
            } else {
                part.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&")).into()
}

/// One line of the log, as JSON.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    duration_us: u64,
    /// Bytes of the response body, when known before it is sent (null for streams).
    bytes: Option<u64>,
    client_ip: Option<IpAddr>,
    /// Left out when nobody logged in.
    user: Option<&'a str>,
}

impl Line<'_> {
    /// Appends the line (without its newline): `{"time":…,"method":…,"path":…,"status":…,
    /// "duration_us":…,"bytes":…,"client_ip":…,"user":…}`.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        write_time(out, chrono::Utc::now());
        out.push(b'"');
        out.extend_from_slice(b",\"method\":");
        write_str(out, self.method);
        out.extend_from_slice(b",\"path\":");
        write_str(out, self.path);
        out.extend_from_slice(b",\"status\":");
        write_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"duration_us\":");
        write_u64(out, self.duration_us);
        out.extend_from_slice(b",\"bytes\":");
        match self.bytes {
            Some(bytes) => write_u64(out, bytes),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"client_ip\":");
        match self.client_ip {
            Some(ip) => write_ip_str(out, ip),
            None => out.extend_from_slice(b"null"),
        }
        write_str_field(out, b",\"user\":", self.user);
        out.push(b'}');
    }
}

/// Appends `time` as RFC 3339 in UTC with milliseconds (`2026-11-30T06:50:54.123Z`), as
/// `to_rfc3339_opts(SecondsFormat::Millis, true)` writes it, without a `String`.
fn write_time(out: &mut Vec<u8>, time: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    // Writing into memory cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.nanosecond() / 1_000_000
    );
}

thread_local! {
    /// Where a serving thread writes its lines before queueing them (no allocation a line).
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// The layer in front of every route: writes the request's line once its response head is
/// ready (`duration_us` is the time to it; a stream's body goes on after).
pub async fn record(State(log): State<Arc<RequestLog>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Shares the request's bytes (no copy); redacted once the response is ready.
    let uri = request.uri().clone();
    let client = crate::auth::client_addr(&request, &log.trusted).or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    });
    let response = next.run(request).await;
    let path = redacted(&uri);
    let line = Line {
        method: method.as_str(),
        path: &path,
        status: response.status().as_u16(),
        duration_us: started.elapsed().as_micros() as u64,
        bytes: response.body().size_hint().exact(),
        client_ip: client,
        user: response.extensions().get::<Caller>().map(|c| c.0.as_str()),
    };
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        line.write(scratch);
        log.write_line(scratch);
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("reqlog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn open(dir: &Path, max_bytes: u64, keep: usize) -> Arc<RequestLog> {
        RequestLog::open(
            Rotation {
                dir: dir.to_owned(),
                max_bytes,
                keep,
            },
            Arc::from([]),
        )
        .unwrap()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn lines_are_written_in_order_and_rotated_once_the_file_reaches_its_bound() {
        let dir = temp_dir("size");
        // Lines of 99 bytes + newline: the bound of 1000 is reached by the 10th.
        let log = open(&dir, 1000, 3);
        for i in 0..25 {
            log.write_line(format!("{i:0>99}").as_bytes());
        }
        log.flush();
        let current = lines(&dir.join(FILE_NAME));
        let first = lines(&dir.join("requests.log.1"));
        let second = lines(&dir.join("requests.log.2"));
        assert_eq!(second.len(), 10);
        assert!(second[0].ends_with('0') && second[9].ends_with('9'));
        assert_eq!(first.len(), 10);
        assert!(first[0].ends_with("10"));
        assert_eq!(current.len(), 5, "the rest in a new file");
        assert!(current[0].ends_with("20"));
        assert!(std::fs::metadata(dir.join(FILE_NAME)).unwrap().len() < 1000);
        assert_eq!(log.dropped(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_newest_old_files_are_kept() {
        let dir = temp_dir("keep");
        std::fs::create_dir_all(&dir).unwrap();
        // Left over by an earlier run that kept more.
        std::fs::write(dir.join("requests.log.7"), "old\n").unwrap();
        let log = open(&dir, 100, 2);
        for i in 0..5 {
            // Each line fills a file: one rotation each.
            log.write_line(format!("{i}{}", "x".repeat(120)).as_bytes());
        }
        log.flush();
        assert!(lines(&dir.join("requests.log.1"))[0].starts_with('4'));
        assert!(lines(&dir.join("requests.log.2"))[0].starts_with('3'));
        assert!(!dir.join("requests.log.3").exists(), "beyond keep");
        let said = log.rotate_older_than(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            said,
            "kept requests.log (0 bytes, 0 s old); pruned 1 old files"
        );
        assert!(!dir.join("requests.log.7").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_rotation_job_rotates_a_file_past_its_age_and_leaves_a_young_or_empty_one() {
        let dir = temp_dir("age");
        let log = open(&dir, 1 << 20, 3);
        assert!(
            log.rotate_older_than(Duration::ZERO)
                .unwrap()
                .starts_with("kept requests.log (0 bytes"),
            "an empty file is not rotated"
        );
        log.write_line(b"one");
        let said = log.rotate_older_than(Duration::from_secs(3600)).unwrap();
        assert!(
            said.starts_with("kept requests.log (4 bytes, 0 s old)"),
            "{said}"
        );
        let said = log.rotate_older_than(Duration::ZERO).unwrap();
        assert!(said.starts_with("rotated requests.log (4 bytes"), "{said}");
        assert_eq!(lines(&dir.join("requests.log.1")), ["one"]);
        assert!(lines(&dir.join(FILE_NAME)).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn every_request_gets_a_line_with_status_time_size_client_and_user() {
        use crate::{AppState, Config, Geocoder};
        let dir = temp_dir("lines");
        let log = open(&dir, 1 << 20, 2);
        let state = AppState::new(
            Config::default_for_tests(),
            Geocoder::shared(),
            tokio_util::sync::CancellationToken::new(),
        )
        .with_request_log(Some(Arc::clone(&log)));
        let (status, _) = crate::call_json(&state, "GET", "/api/stats?token=abc", "").await;
        assert_eq!(status, 200);
        let (status, _) = crate::call_json(&state, "POST", "/api/jobs/nope/run", "").await;
        assert_eq!(status, 404);
        let metrics = tower::ServiceExt::oneshot(
            crate::app(state.clone()),
            crate::from_loopback(
                axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
        let metrics = http_body_util::BodyExt::collect(metrics.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(String::from_utf8_lossy(&metrics).contains("traffic_request_log_dropped_total 0"));
        tokio::task::spawn_blocking({
            let log = Arc::clone(&log);
            move || log.flush()
        })
        .await
        .unwrap();
        let lines: Vec<serde_json::Value> = lines(&dir.join(FILE_NAME))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[2]["path"], "/metrics");
        let stats = &lines[0];
        assert_eq!(stats["method"], "GET");
        assert_eq!(stats["path"], "/api/stats?token=REDACTED");
        assert_eq!(stats["status"], 200);
        assert_eq!(stats["client_ip"], "127.0.0.1");
        assert!(stats["bytes"].as_u64().unwrap() > 10);
        assert!(stats["duration_us"].is_u64());
        assert!(stats.get("user").is_none(), "nobody: open on loopback");
        assert!(stats["time"].as_str().unwrap().ends_with('Z'));
        let run = &lines[1];
        assert_eq!(
            (run["method"].as_str(), run["status"].as_u64()),
            (Some("POST"), Some(404))
        );
        assert_eq!(run["user"], "test-admin");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_time_is_written_as_chrono_writes_rfc_3339_with_milliseconds() {
        use chrono::TimeZone;
        for (secs, nanos) in [
            (0, 0),
            (1_736_919_120, 7_000_000),
            (4_102_444_799, 999_999_999),
        ] {
            let time = chrono::Utc.timestamp_opt(secs, nanos).unwrap();
            let mut out = Vec::new();
            write_time(&mut out, time);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
        }
    }

    #[test]
    fn a_line_is_json_with_every_field_and_text_escaped() {
        let mut out = Vec::new();
        Line {
            method: "POST",
            path: "/api/\"odd\\path\u{1}",
            status: 202,
            duration_us: 17,
            bytes: None,
            client_ip: Some("::1".parse().unwrap()),
            user: Some("ann \"the admin\""),
        }
        .write(&mut out);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["method"], "POST");
        assert_eq!(line["path"], "/api/\"odd\\path\u{1}");
        assert_eq!(line["status"], 202);
        assert_eq!(line["duration_us"], 17);
        assert!(line["bytes"].is_null());
        assert_eq!(line["client_ip"], "::1");
        assert_eq!(line["user"], "ann \"the admin\"");
        assert!(
            chrono::DateTime::parse_from_rfc3339(line["time"].as_str().unwrap()).is_ok(),
            "{line}"
        );
        out.clear();
        Line {
            method: "GET",
            path: "/healthz",
            status: 200,
            duration_us: 0,
            bytes: Some(2),
            client_ip: None,
            user: None,
        }
        .write(&mut out);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["bytes"], 2);
        assert!(line["client_ip"].is_null());
        assert!(line.get("user").is_none(), "{line}");
    }

    #[test]
    fn secret_looking_query_values_are_redacted_and_the_rest_kept() {
        let uri: Uri = "/api/history?from=1&access_token=abc&API_KEY=x&to=2&session="
            .parse()
            .unwrap();
        assert_eq!(
            redacted(&uri),
            "/api/history?from=1&access_token=REDACTED&API_KEY=REDACTED&to=2&session="
        );
        assert_eq!(redacted(&"/api/stats".parse().unwrap()), "/api/stats");
    }
}
