//! Fault suite: the real release binaries (`server`, `web`, `sender`) on 127.0.0.1, each case
//! a fault an unlucky operator or a hostile client causes, each with a pass/fail verdict and
//! an account of what was offered, what was counted, what was lost (must be 0) and the peak
//! resident memory of the process under test. `scripts/faults` builds and runs it; see the
//! "Faults" section of BENCHMARKS.md for what each case does and why it passes or fails.
//!
//! ```text
//! cargo bench -p server --bench faults -- [--quick] [--only NAME[,NAME]]
//! ```
//!
//! Flags that the binaries may or may not have yet (timeouts, caps, idempotency window) are
//! looked up in their `--help` at run time: a missing flag is named in the case's detail and
//! the case runs with the binary's defaults. Exits 1 if any case fails.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{
    Conn, Server, batch, binary, coordinates, event, fd_count, find, free_port, header_value,
    ip_of, open_stream, open_stream_from, peak_rss_kib, post_request, read_message, rss_kib,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: u64 = 1024;

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    quick: bool,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .map(|v| v.split(',').map(str::to_owned).collect());
        Self {
            quick: args.iter().any(|a| a == "--quick"),
            only,
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }

    /// `quick` in quick mode, else `full`.
    fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

// ---------------------------------------------------------------------------------------
// Outcomes

enum Verdict {
    Pass,
    Fail(String),
}

struct Outcome {
    case: &'static str,
    offered: String,
    counted: String,
    lost: String,
    doubled: String,
    peak_rss: String,
    verdict: Verdict,
    detail: String,
}

impl Outcome {
    fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Fail(_))
    }

    fn verdict_text(&self) -> String {
        match &self.verdict {
            Verdict::Pass => "PASS".to_owned(),
            Verdict::Fail(why) => format!("FAIL: {why}"),
        }
    }
}

/// Collects the reasons a case fails; no reasons, a pass.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, why: impl Into<String>) {
        if !ok {
            self.0.push(why.into());
        }
    }
    fn verdict(self) -> Verdict {
        if self.0.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(self.0.join("; "))
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------
// Binaries, their flags and their logs

/// The `--help` text of a release binary (cached).
fn help(name: &str) -> &'static str {
    static HELP: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut cache = HELP.get_or_init(Default::default).lock().unwrap();
    cache.entry(name.to_owned()).or_insert_with(|| {
        let out = std::process::Command::new(binary(name))
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned().leak()
    })
}

/// True if binary `name` lists `flag` (e.g. `--max-streams`) in its `--help`.
fn has_flag(name: &str, flag: &str) -> bool {
    let text = help(name);
    text.match_indices(flag).any(|(at, _)| {
        text[at + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

/// Arguments for one process: flags are added only if the binary has them; missing ones are
/// remembered for the report.
struct Args {
    name: &'static str,
    args: Vec<String>,
    missing: Vec<String>,
}

impl Args {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            args: Vec::new(),
            missing: Vec::new(),
        }
    }
    fn flag(mut self, flag: &str, value: impl ToString) -> Self {
        if has_flag(self.name, flag) {
            self.args.push(flag.to_owned());
            self.args.push(value.to_string());
        } else {
            self.missing.push(format!("{} {flag}", self.name));
        }
        self
    }
    fn always(mut self, flag: &str, value: impl ToString) -> Self {
        self.args.push(flag.to_owned());
        self.args.push(value.to_string());
        self
    }
    fn strs(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
    fn note(&self) -> String {
        if self.missing.is_empty() {
            String::new()
        } else {
            format!(
                " [flag missing, ran with defaults: {}]",
                self.missing.join(", ")
            )
        }
    }
}

/// Where the processes' standard error goes: one file per process in a run directory.
fn log_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("traffic-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn log_file(name: &str) -> Stdio {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Relaxed);
    let path = log_dir().join(format!("{n:02}-{name}.log"));
    Stdio::from(std::fs::File::create(path).unwrap())
}

async fn start(name: &'static str, port: u16, args: &Args, case: &str) -> Server {
    Server::spawn(
        name,
        port,
        &args.strs(),
        log_file(&format!("{case}-{name}")),
    )
    .await
}

/// Kills `pid` (a process this suite started) if its resident memory passes `cap_kib`, so a
/// runaway case cannot take the shared machine down. Tells whether it had to.
struct Watchdog {
    fired: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(pid: u32, cap_kib: u64) -> Self {
        let fired = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (Arc::clone(&fired), Arc::clone(&stop));
        tokio::spawn(async move {
            while !s.load(Relaxed) {
                let rss = rss_kib(pid);
                if rss > cap_kib {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    f.store(rss, Relaxed);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { fired, stop }
    }
    /// RSS at which the process was killed, if it was.
    fn fired(&self) -> Option<u64> {
        Some(self.fired.load(Relaxed)).filter(|&v| v > 0)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// The largest RSS the suite lets a server reach before killing it.
const HARD_CAP_KIB: u64 = 4 * 1024 * MIB;

// ---------------------------------------------------------------------------------------
// Reading an event stream

/// One server-sent event.
struct Message {
    id: Option<String>,
    event: String,
    data: String,
}

impl Message {
    /// The sequence number in the id (`<boot>-<seq>`).
    fn seq(&self) -> Option<u64> {
        self.id.as_deref()?.rsplit_once('-')?.1.parse().ok()
    }
    fn boot(&self) -> Option<&str> {
        Some(self.id.as_deref()?.rsplit_once('-')?.0)
    }
    /// The event ids a `hits` or `snapshot` message carries: `first..=seq`.
    fn covers(&self) -> Option<std::ops::RangeInclusive<u64>> {
        let key = match self.event.as_str() {
            "hits" => "\"seq\":",
            "snapshot" => "\"first_seq\":",
            _ => return None,
        };
        let at = self.data.find(key)? + key.len();
        let digits: String = self.data[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(digits.parse().ok()?..=self.seq()?)
    }
    /// The IPs of the hits it carries, in id order.
    fn ips(&self) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(&self.data).unwrap_or_default();
        value["hits"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|h| h["ip"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
enum Chunk {
    Size,
    Data(usize),
    End,
}

/// An SSE response read off a raw socket: skips the head, undoes chunked coding (a proxy may
/// split messages anywhere), yields messages.
struct SseReader {
    stream: TcpStream,
    raw: Vec<u8>,
    head: bool,
    chunked: bool,
    chunk: Chunk,
    text: Vec<u8>,
    ended: bool,
}

impl SseReader {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            raw: Vec::new(),
            head: false,
            chunked: false,
            chunk: Chunk::Size,
            text: Vec::new(),
            ended: false,
        }
    }

    /// The next message; `None` when the stream ends, fails or is not an event stream.
    /// Cancel-safe (state changes only after a completed read).
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = find(&self.text, b"\n\n") {
                let block: Vec<u8> = self.text.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let mut message = Message {
                    id: None,
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        message.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        v.clone_into(&mut message.event);
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        message.data.push_str(v);
                    }
                }
                return Some(message);
            }
            if self.ended {
                return None;
            }
            let mut buf = [0u8; 64 * 1024];
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
            }
            if !self.head {
                let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
                if !head.starts_with("HTTP/1.1 200") {
                    return None;
                }
                self.chunked = header_value(&head, "transfer-encoding")
                    .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
                self.raw.drain(..end + 4);
                self.head = true;
            }
            self.decode();
        }
    }

    fn decode(&mut self) {
        if !self.chunked {
            self.text.append(&mut self.raw);
            return;
        }
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(end) = find(&self.raw, b"\r\n") else {
                        return;
                    };
                    let line = String::from_utf8_lossy(&self.raw[..end]).into_owned();
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .unwrap_or(0);
                    self.raw.drain(..end + 2);
                    if size == 0 {
                        self.ended = true;
                        return;
                    }
                    self.chunk = Chunk::Data(size);
                }
                Chunk::Data(left) => {
                    if self.raw.is_empty() {
                        return;
                    }
                    let take = left.min(self.raw.len());
                    self.text.extend(self.raw.drain(..take));
                    self.chunk = if take == left {
                        Chunk::End
                    } else {
                        Chunk::Data(left - take)
                    };
                }
                Chunk::End => {
                    if self.raw.len() < 2 {
                        return;
                    }
                    self.raw.drain(..2);
                    self.chunk = Chunk::Size;
                }
            }
        }
    }
}

/// Reads `reader` until it ends or `stop` is set, handing every message to `on_message`.
async fn read_until(
    reader: &mut SseReader,
    stop: &AtomicBool,
    mut on_message: impl FnMut(&Message),
) -> bool {
    loop {
        if stop.load(Relaxed) {
            return true;
        }
        match tokio::time::timeout(Duration::from_millis(100), reader.next()).await {
            Ok(Some(message)) => on_message(&message),
            Ok(None) => return false,
            Err(_) => {}
        }
    }
}

/// The id of the newest message a fresh stream starts with (its snapshot's), to resume from.
async fn current_id(port: u16) -> String {
    let mut reader = SseReader::new(open_stream(port, None).await);
    loop {
        let message = reader
            .next()
            .await
            .expect("stream ended before its snapshot");
        if message.event == "snapshot" {
            return message.id.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inputs

/// A CSV of `rows` rows, one every `gap_ms` of data time, each with its own IP (`ip_of(i)`).
fn write_csv(name: &str, rows: u64, gap_ms: u64) -> PathBuf {
    let coordinates = coordinates();
    let mut text = String::from("ip,latitude,longitude,timestamp,suspicious\n");
    for i in 0..rows {
        let (lat, lon) = coordinates[i as usize % coordinates.len()];
        let t = 1_767_225_600_000 + i * gap_ms;
        text.push_str(&format!(
            "{},{lat},{lon},{}.{:03},0\n",
            ip_of(i),
            t / 1000,
            t % 1000
        ));
    }
    let path = log_dir().join(format!("{name}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the release sender on `csv` against `url`: exit code and its summary line.
async fn run_sender(csv: &PathBuf, url: &str, extra: &[&str], case: &str) -> (i32, String) {
    let output = tokio::process::Command::new(binary("sender"))
        .args(["--quiet", "--url", url])
        .args(extra)
        .arg(csv)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    std::fs::write(log_dir().join(format!("{case}-sender.log")), &stderr).unwrap();
    let summary = stderr
        .lines()
        .find_map(|l| l.strip_prefix("sender: "))
        .unwrap_or("(no summary)")
        .to_owned();
    (output.status.code().unwrap_or(-1), summary)
}

/// A number after `key` in the sender's summary (`lateness p50 0.012 ms ...`).
fn summary_number(summary: &str, key: &str) -> Option<f64> {
    let rest = &summary[summary.find(key)? + key.len()..];
    rest.split_whitespace()
        .next()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

/// Posts `total` events in batches of 1000 and waits until the server has published them.
async fn preload(server: &Server, total: u64) {
    let mut conn = Conn::open(server.port).await;
    let mut i = 0;
    while i < total {
        let n = (total - i).min(1000);
        assert_eq!(
            conn.roundtrip(&post_request(&batch(i, n as usize))).await,
            202
        );
        i += n;
    }
    for _ in 0..400 {
        if server.metric("traffic_events_published_total").await >= total {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A body of `[0,0,...]` of exactly `bytes` bytes (odd), as request bytes.
fn oversized_request(bytes: usize) -> Vec<u8> {
    let items = (bytes - 1) / 2;
    let mut body = Vec::with_capacity(items * 2 + 1);
    body.push(b'[');
    for k in 0..items {
        if k > 0 {
            body.push(b',');
        }
        body.push(b'0');
    }
    body.push(b']');
    let mut request = format!(
        "POST /api/events HTTP/1.1\r\nHost: faults\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Sends one request from `request` (shared) and reads the status; a connection the server
/// resets or closes before answering reads as `None`. The body is written while the answer
/// is awaited, so an early refusal is seen.
async fn send_and_status(port: u16, request: Arc<Vec<u8>>) -> Option<u16> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(120), read.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                head.extend_from_slice(&buf[..n]);
                if head.len() >= 12 {
                    break std::str::from_utf8(&head[9..12]).ok()?.parse().ok();
                }
            }
            _ => break None,
        }
    };
    writer.abort();
    status
}

/// Probes `GET /healthz` every 50 ms until `stop`: the slowest answer (a failure counts as the
/// time it took to fail, at least 5 s).
fn health_prober(port: u16, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        while !stop.load(Relaxed) {
            let t = Instant::now();
            let ok = tokio::time::timeout(Duration::from_secs(5), common::get(port, "/healthz"))
                .await
                .ok()
                .flatten()
                .is_some_and(|(s, _)| s == 200);
            let took = if ok {
                t.elapsed()
            } else {
                t.elapsed().max(Duration::from_secs(5))
            };
            worst = worst.max(took);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worst
    })
}

/// A client that reads a stream from `port` (resuming after `from`), recording for every
/// event id how many times it was delivered and, for ids in `accepted_at`, how late.
struct Reader {
    counts: Mutex<Vec<u32>>,
    late_us: Mutex<Vec<u64>>,
}

impl Reader {
    fn record(&self, message: &Message, accepted: Option<(&AcceptTimes, u64)>) {
        let Some(range) = message.covers() else {
            return;
        };
        let mut counts = self.counts.lock().unwrap();
        let end = *range.end() as usize;
        if counts.len() <= end {
            counts.resize(end + 1, 0);
        }
        for seq in range {
            counts[seq as usize] += 1;
            if let Some((times, offset)) = accepted
                && let Some(at) = seq.checked_sub(offset).and_then(|k| times.at(k))
            {
                self.late_us
                    .lock()
                    .unwrap()
                    .push(times.now().saturating_sub(at));
            }
        }
    }
    /// (ids in `range` never delivered, extra deliveries of ids in `range`).
    fn gaps_and_doubles(&self, range: std::ops::RangeInclusive<u64>) -> (u64, u64) {
        let counts = self.counts.lock().unwrap();
        let mut missing = 0;
        let mut extra = 0;
        for seq in range {
            match counts.get(seq as usize).copied().unwrap_or(0) {
                0 => missing += 1,
                n => extra += u64::from(n - 1),
            }
        }
        (missing, extra)
    }
}

/// When each posted event was accepted (µs since `epoch`, 0: not yet), by its index.
struct AcceptTimes {
    epoch: Instant,
    at: Vec<AtomicU64>,
}

impl AcceptTimes {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            at: (0..=n).map(|_| AtomicU64::new(0)).collect(),
        })
    }
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    fn at(&self, k: u64) -> Option<u64> {
        Some(self.at.get(k as usize)?.load(Relaxed)).filter(|&v| v > 0)
    }
}

/// Posts single events `1..=total` (indices into `times`) at `rate` per second over one
/// keep-alive connection, recording when each was accepted. Returns how many got a 202.
async fn post_paced(port: u16, rate: u64, total: u64, times: Arc<AcceptTimes>) -> u64 {
    let mut conn = Conn::open(port).await;
    let start = tokio::time::Instant::now();
    let mut accepted = 0;
    for k in 1..=total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / rate as f64)).await;
        if conn.roundtrip(&post_request(&event(1_000_000 + k))).await == 202 {
            accepted += 1;
            times.at[k as usize].store(times.now().max(1), Relaxed);
        }
    }
    accepted
}

fn percentile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[((values.len() - 1) as f64 * q).round() as usize]
}

// ---------------------------------------------------------------------------------------
// Case: server killed (-9) and restarted mid-replay

/// What an observer saw across server incarnations: for each IP (one row each), the distinct
/// (boot, event id) pairs it was counted under.
#[derive(Default)]
struct Seen(Mutex<HashMap<String, HashSet<(String, u64)>>>);

impl Seen {
    fn record(&self, message: &Message) {
        let (Some(range), Some(boot)) = (message.covers(), message.boot()) else {
            return;
        };
        let mut seen = self.0.lock().unwrap();
        for (seq, ip) in range.zip(message.ips()) {
            seen.entry(ip).or_default().insert((boot.to_owned(), seq));
        }
    }
    fn distinct(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    /// (rows of `0..rows` never seen, rows counted more than once).
    fn lost_and_doubled(&self, rows: u64) -> (u64, u64) {
        let seen = self.0.lock().unwrap();
        let lost = (0..rows).filter(|&i| !seen.contains_key(&ip_of(i))).count() as u64;
        let doubled = seen.values().filter(|keys| keys.len() > 1).count() as u64;
        (lost, doubled)
    }
}

/// Watches the stream on `port` for as long as `stop` is unset, reconnecting (to whatever
/// server incarnation is there) whenever the stream ends.
fn observe(port: u16, seen: Arc<Seen>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut connections = 0;
        let mut last_id: Option<String> = None;
        while !stop.load(Relaxed) {
            let Ok(stream) = open_stream_from(port, None, last_id.as_deref()).await else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            connections += 1;
            let mut reader = SseReader::new(stream);
            read_until(&mut reader, &stop, |m| {
                seen.record(m);
                if m.id.is_some() {
                    last_id.clone_from(&m.id);
                }
            })
            .await;
        }
        connections
    })
}

async fn kill_restart(s: &Settings) -> Outcome {
    let case = "kill-restart";
    let (rows, gap_ms) = s.pick((250, 20), (1500, 10));
    let csv = write_csv(case, rows, gap_ms);
    let port = free_port();
    let args = Args::new("server")
        // Publish each event as soon as it is accepted, so a kill right after one was seen
        // cannot catch another accepted but unpublished.
        .always("--publish-interval-ms", 0)
        .flag("--idempotency-secs", 300);
    let mut server = start("server", port, &args, case).await;
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let observer = observe(port, Arc::clone(&seen), Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("http://127.0.0.1:{port}");
    let csv2 = csv.clone();
    let sender = tokio::spawn(async move {
        run_sender(
            &csv2,
            &url,
            &[
                "--max-batch",
                "100",
                "--give-up-after",
                "30s",
                "--timeout",
                "2s",
            ],
            case,
        )
        .await
    });
    // Kill the moment the observer has seen 40% of the rows (between two rows).
    let kill_at = rows as usize * 2 / 5;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.distinct() < kill_at && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let first_peak = peak_rss_kib(server.pid());
    server.kill();
    let seen_at_kill = seen.distinct();
    let down = Duration::from_millis(1500);
    tokio::time::sleep(down).await;
    let server = start("server", port, &args, case).await;
    let (code, summary) = sender.await.unwrap();
    // Let the observer catch up with the last rows.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.distinct() < rows as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Relaxed);
    let connections = observer.await.unwrap();
    let peak = first_peak.max(peak_rss_kib(server.pid()));
    let counted = seen.distinct() as u64;
    let (lost, doubled) = seen.lost_and_doubled(rows);
    let mut checks = Checks::default();
    checks.check(lost == 0, format!("{lost} rows never reached a server"));
    checks.check(code == 0, format!("sender exited {code}"));
    checks.check(
        doubled <= 100,
        format!("{doubled} rows counted twice: more than the one batch a kill can catch"),
    );
    checks.check(connections >= 2, "observer never reached the new server");
    Outcome {
        case,
        offered: format!("{rows} rows"),
        counted: format!("{counted} distinct rows"),
        lost: lost.to_string(),
        doubled: doubled.to_string(),
        peak_rss: mib(peak),
        verdict: checks.verdict(),
        detail: format!(
            "kill -9 after {seen_at_kill} rows seen, down {}; sender exit {code}: {summary}{}",
            ms(down),
            args.note()
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: a 202 lost on the way back (the sender retries; idempotency must absorb it)

/// Forwards HTTP/1.1 requests from `listener` to the server on `upstream`, one message at a
/// time; swallows the answer to request number `drop_at` (1-based) and closes that client
/// connection, as a proxy restart or a reset would. Records whether the next answer said
/// `Idempotent-Replayed: true`.
fn lossy_proxy(
    listener: TcpListener,
    upstream: u16,
    drop_at: usize,
) -> (Arc<AtomicUsize>, Arc<Mutex<Option<String>>>) {
    let count = Arc::new(AtomicUsize::new(0));
    let replayed = Arc::new(Mutex::new(None));
    let (c, r) = (Arc::clone(&count), Arc::clone(&replayed));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (c, r) = (Arc::clone(&c), Arc::clone(&r));
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
                while let Some(request) = read_message(&mut client, &mut from_client).await {
                    if server.write_all(&request).await.is_err() {
                        return;
                    }
                    let Some(response) = read_message(&mut server, &mut from_server).await else {
                        return;
                    };
                    let n = c.fetch_add(1, Relaxed) + 1;
                    if n == drop_at {
                        return; // the answer is lost; both connections close
                    }
                    if n == drop_at + 1 {
                        let head = String::from_utf8_lossy(&response);
                        let head = head.split("\r\n\r\n").next().unwrap_or_default();
                        *r.lock().unwrap() = Some(
                            header_value(head, "idempotent-replayed")
                                .unwrap_or("absent")
                                .to_owned(),
                        );
                    }
                    if client.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (count, replayed)
}

async fn lost_ack(s: &Settings) -> Outcome {
    let case = "lost-202";
    let rows = s.pick(100, 300);
    let csv = write_csv(case, rows, 20);
    let port = free_port();
    let args = Args::new("server").flag("--idempotency-secs", 300);
    let server = start("server", port, &args, case).await;
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let observer = observe(port, Arc::clone(&seen), Arc::clone(&stop));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let drop_at = 5;
    let (requests, replayed) = lossy_proxy(listener, port, drop_at);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, summary) = run_sender(
        &csv,
        &format!("http://127.0.0.1:{proxy_port}"),
        &["--give-up-after", "30s", "--timeout", "2s"],
        case,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while seen.distinct() < rows as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Relaxed);
    observer.await.unwrap();
    let total = server.stats().await["total"].as_u64().unwrap_or(0);
    let (lost, doubled) = seen.lost_and_doubled(rows);
    let replayed = replayed
        .lock()
        .unwrap()
        .clone()
        .unwrap_or("no retry".into());
    let mut checks = Checks::default();
    checks.check(lost == 0, format!("{lost} rows lost"));
    checks.check(
        doubled == 0 && total == rows,
        format!("{doubled} rows counted twice (server total {total} for {rows} rows)"),
    );
    checks.check(code == 0, format!("sender exited {code}"));
    Outcome {
        case,
        offered: format!("{rows} rows"),
        counted: format!("{total} (server total)"),
        lost: lost.to_string(),
        doubled: doubled.to_string(),
        peak_rss: mib(peak_rss_kib(server.pid())),
        verdict: checks.verdict(),
        detail: format!(
            "the answer to POST #{drop_at} dropped by a proxy after the server handled it; {} POSTs through the proxy; retry answered with Idempotent-Replayed: {replayed}; sender exit {code}: {summary}{}",
            requests.load(Relaxed),
            args.note()
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: web restarted under 200 open pages

/// A page's stream through `port`: reconnects with `Last-Event-ID` (as `EventSource` does)
/// whenever the stream ends, until `stop`. Returns how many times it connected.
fn page(port: u16, reader: Arc<Reader>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut connections = 0;
        let mut last_id: Option<String> = None;
        while !stop.load(Relaxed) {
            let Ok(stream) = open_stream_from(port, None, last_id.as_deref()).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            connections += 1;
            let mut sse = SseReader::new(stream);
            let stopped = read_until(&mut sse, &stop, |m| {
                reader.record(m, None);
                if m.id.is_some() {
                    last_id.clone_from(&m.id);
                }
            })
            .await;
            if !stopped {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        connections
    })
}

async fn web_restart(s: &Settings) -> Outcome {
    let case = "web-restart";
    let pages = 200;
    let (rate, secs) = s.pick((100, 6.0), (200, 12.0));
    let total = (rate as f64 * secs) as u64;
    let server = start("server", free_port(), &Args::new("server"), case).await;
    let web_port = free_port();
    let dist = log_dir().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let web_args = Args::new("web")
        .always("--upstream", format!("http://127.0.0.1:{}", server.port))
        .always("--dist", dist.display());
    let mut web = start("web", web_port, &web_args, case).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<Arc<Reader>> = (0..pages)
        .map(|_| {
            Arc::new(Reader {
                counts: Mutex::new(Vec::new()),
                late_us: Mutex::new(Vec::new()),
            })
        })
        .collect();
    let tasks: Vec<_> = readers
        .iter()
        .map(|r| page(web_port, Arc::clone(r), Arc::clone(&stop)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let times = AcceptTimes::new(total as usize);
    let poster = tokio::spawn(post_paced(server.port, rate, total, times));
    tokio::time::sleep(Duration::from_secs_f64(secs / 2.0)).await;
    let mut web_peak = peak_rss_kib(web.pid());
    let graceful = web.terminate(Duration::from_secs(5)).await;
    let down = Duration::from_millis(500);
    tokio::time::sleep(down).await;
    web = start("web", web_port, &web_args, case).await;
    let accepted = poster.await.unwrap();
    // Wait for every page to have the last event (or give up after a while).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && readers
            .iter()
            .any(|r| r.counts.lock().unwrap().len() <= total as usize)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Relaxed);
    let mut reconnected = 0;
    for t in tasks {
        if t.await.unwrap() >= 2 {
            reconnected += 1;
        }
    }
    web_peak = web_peak.max(peak_rss_kib(web.pid()));
    let resumes = server
        .metric("traffic_stream_starts_total{start=\"resume\"}")
        .await;
    let (mut missing, mut extra, mut pages_short) = (0, 0, 0);
    for r in &readers {
        let (m, e) = r.gaps_and_doubles(1..=total);
        missing += m;
        extra += e;
        pages_short += u64::from(m > 0);
    }
    let offered = total * pages as u64;
    let mut checks = Checks::default();
    checks.check(
        accepted == total,
        format!("only {accepted} of {total} posts accepted"),
    );
    checks.check(
        missing == 0,
        format!("{pages_short} pages missed events ({missing} deliveries)"),
    );
    checks.check(extra == 0, format!("{extra} events delivered twice"));
    checks.check(
        reconnected == pages,
        format!("only {reconnected} of {pages} pages reconnected"),
    );
    Outcome {
        case,
        offered: format!("{total} events × {pages} pages"),
        counted: format!("{} deliveries", offered - missing),
        lost: missing.to_string(),
        doubled: extra.to_string(),
        peak_rss: format!(
            "web {}, server {}",
            mib(web_peak),
            mib(peak_rss_kib(server.pid()))
        ),
        verdict: checks.verdict(),
        detail: format!(
            "{rate} events/s posted to the server; web stopped by SIGTERM ({}) mid-run, down {}; {reconnected} pages reconnected, {resumes} resumed by Last-Event-ID",
            if graceful {
                "exited"
            } else {
                "killed after 5 s"
            },
            ms(down)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: clients that stop reading

/// Opens `n` streams that never read, with tiny receive buffers, from the start (snapshot).
async fn stalled_clients(port: u16, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(open_stream(port, Some(4096)).await);
    }
    out
}

async fn stalled(s: &Settings) -> Outcome {
    let case = "stalled-clients";
    let (readers_n, stalled_n, rate, secs) = s.pick((20, 20, 1000, 4.0), (50, 50, 2000, 10.0));
    let ring = 100_000;
    let args = Args::new("server")
        .always("--ring-capacity", ring)
        .flag("--max-streams", readers_n + stalled_n + 16);
    let server = start("server", free_port(), &args, case).await;
    let dog = Watchdog::start(server.pid(), HARD_CAP_KIB);
    preload(&server, ring).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = rss_kib(server.pid());
    let from = current_id(server.port).await;
    let stop = Arc::new(AtomicBool::new(false));
    let total = (rate as f64 * secs) as u64;
    let times = AcceptTimes::new(total as usize);
    let readers: Vec<Arc<Reader>> = (0..readers_n)
        .map(|_| {
            Arc::new(Reader {
                counts: Mutex::new(Vec::new()),
                late_us: Mutex::new(Vec::new()),
            })
        })
        .collect();
    let mut tasks = Vec::new();
    for r in &readers {
        // Readers join as pages that were already open: resumed from the newest id.
        let stream = open_stream_from(server.port, None, Some(&from))
            .await
            .unwrap();
        let (r, stop, times) = (Arc::clone(r), Arc::clone(&stop), Arc::clone(&times));
        tasks.push(tokio::spawn(async move {
            let mut sse = SseReader::new(stream);
            read_until(&mut sse, &stop, |m| r.record(m, Some((&times, ring)))).await;
        }));
    }
    // The stalled ones start from a snapshot of the full ring, then never read.
    let stalled = stalled_clients(server.port, stalled_n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = post_paced(server.port, rate, total, Arc::clone(&times)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let peak = peak_rss_kib(server.pid());
    drop(stalled);
    let (mut missing, mut extra) = (0, 0);
    let mut late: Vec<u64> = Vec::new();
    for r in &readers {
        let (m, e) = r.gaps_and_doubles(ring + 1..=ring + total);
        missing += m;
        extra += e;
        late.extend(r.late_us.lock().unwrap().iter());
    }
    let p99 = Duration::from_micros(percentile(&mut late, 0.99));
    let max = Duration::from_micros(late.last().copied().unwrap_or(0));
    let bound = base + 64 * MIB + stalled_n as u64 * 4 * MIB;
    let mut checks = Checks::default();
    if let Some(rss) = dog.fired() {
        checks.check(false, format!("server killed by the suite at {}", mib(rss)));
    }
    checks.check(
        accepted == total,
        format!("only {accepted} of {total} posts accepted"),
    );
    checks.check(missing == 0, format!("readers missed {missing} deliveries"));
    checks.check(extra == 0, format!("{extra} deliveries doubled"));
    checks.check(
        p99 <= Duration::from_millis(250),
        format!("readers' p99 latency {} > 250 ms", ms(p99)),
    );
    checks.check(
        peak <= bound,
        format!("peak RSS {} > bound {}", mib(peak), mib(bound)),
    );
    Outcome {
        case,
        offered: format!("{total} events × {readers_n} readers"),
        counted: format!("{} deliveries", total * readers_n as u64 - missing),
        lost: missing.to_string(),
        doubled: extra.to_string(),
        peak_rss: mib(peak),
        verdict: checks.verdict(),
        detail: format!(
            "ring full ({ring} visible hits, RSS {}); {stalled_n} clients took a snapshot and never read; {rate} events/s for {secs} s; readers' latency p99 {} max {}; bound: RSS with the ring full + 64 MiB + 4 MiB per stalled client = {}{}",
            mib(base),
            ms(p99),
            ms(max),
            mib(bound),
            args.note()
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: 1,000 connections that send half a request

async fn half_requests(s: &Settings) -> Outcome {
    let case = "half-requests";
    let n = 1000;
    let header_timeout = 2;
    let args = Args::new("server").flag("--header-timeout-secs", header_timeout);
    let server = start("server", free_port(), &args, case).await;
    let baseline_fds = fd_count(server.pid());
    let port = server.port;
    let opened = Instant::now();
    let mut conns = Vec::with_capacity(n);
    let mut refused = 0;
    for _ in 0..n {
        match tokio::time::timeout(
            Duration::from_secs(2),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            Ok(Ok(mut stream)) => {
                let _ = stream
                    .write_all(b"POST /api/events HTTP/1.1\r\nHost: faults\r\nContent-Ty")
                    .await;
                conns.push(stream);
            }
            _ => refused += 1,
        }
    }
    let open_fds = fd_count(server.pid());
    // Each half-open connection: when does the server close it?
    let closed = Arc::new(AtomicUsize::new(0));
    let watchers: Vec<_> = conns
        .into_iter()
        .map(|mut stream| {
            let closed = Arc::clone(&closed);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            closed.fetch_add(1, Relaxed);
                            return;
                        }
                        Ok(_) => {}
                    }
                }
            })
        })
        .collect();
    // Meanwhile a normal client: health check and one event.
    let t = Instant::now();
    let normal = tokio::time::timeout(Duration::from_secs(30), async {
        let health = common::get(port, "/healthz").await.map(|(s, _)| s);
        let mut conn = Conn::open(port).await;
        let post = conn.roundtrip(&post_request(&event(1))).await;
        (health, post)
    })
    .await;
    let served_in = t.elapsed();
    let served = matches!(normal, Ok((Some(200), 202)));
    let wait = Duration::from_secs(s.pick(header_timeout + 3, header_timeout + 8));
    let deadline = opened + wait;
    while closed.load(Relaxed) < n - refused && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed_n = closed.load(Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_fds = fd_count(server.pid());
    let peak = peak_rss_kib(server.pid());
    for w in watchers {
        w.abort();
    }
    let mut checks = Checks::default();
    checks.check(
        closed_n == n - refused,
        format!(
            "{} of {} half requests still open after {} s",
            n - refused - closed_n,
            n - refused,
            wait.as_secs()
        ),
    );
    checks.check(
        served && served_in <= Duration::from_secs(header_timeout + 2),
        format!("normal client: {normal:?} after {}", ms(served_in)),
    );
    checks.check(
        after_fds <= baseline_fds + 8,
        format!("server fds {after_fds}, baseline {baseline_fds}"),
    );
    Outcome {
        case,
        offered: format!("{n} half requests"),
        counted: format!("{closed_n} closed by the server"),
        lost: "0".into(),
        doubled: "-".into(),
        peak_rss: mib(peak),
        verdict: checks.verdict(),
        detail: format!(
            "{refused} connects timed out; server fds {baseline_fds} before, {open_fds} with them open, {after_fds} after; normal client served in {} ({}); waited {} s for closes (header timeout asked: {header_timeout} s){}",
            ms(served_in),
            if served { "200 + 202" } else { "NOT served" },
            wait.as_secs(),
            args.note()
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: a burst of oversized bodies

async fn oversized(s: &Settings) -> Outcome {
    let case = "oversized-burst";
    let bodies = s.pick(8, 20);
    let body_bytes = 16 * 1024 * 1024 - 1; // the default body limit, so only the batch limit refuses it
    let server = start("server", free_port(), &Args::new("server"), case).await;
    let dog = Watchdog::start(server.pid(), HARD_CAP_KIB);
    let base = rss_kib(server.pid());
    let request = Arc::new(oversized_request(body_bytes));
    let stop = Arc::new(AtomicBool::new(false));
    let prober = health_prober(server.port, Arc::clone(&stop));
    let t = Instant::now();
    let sends: Vec<_> = (0..bodies)
        .map(|_| tokio::spawn(send_and_status(server.port, Arc::clone(&request))))
        .collect();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for send in sends {
        let status = send.await.unwrap();
        *statuses
            .entry(status.map_or("reset".into(), |s| s.to_string()))
            .or_default() += 1;
    }
    let took = t.elapsed();
    stop.store(true, Relaxed);
    let worst_health = prober.await.unwrap();
    let peak = peak_rss_kib(server.pid());
    let too_large = server
        .metric("traffic_ingest_requests_total{outcome=\"too_large\"}")
        .await;
    let invalid = server
        .metric("traffic_ingest_requests_total{outcome=\"invalid\"}")
        .await;
    let accepted = server.metric("traffic_events_accepted_total").await;
    let bound = base + 64 * MIB + 2 * bodies as u64 * 16 * MIB;
    let refused_4xx = statuses
        .iter()
        .filter(|(k, _)| k.starts_with('4'))
        .map(|(_, n)| *n)
        .sum::<usize>();
    let mut checks = Checks::default();
    if let Some(rss) = dog.fired() {
        checks.check(false, format!("server killed by the suite at {}", mib(rss)));
    }
    checks.check(
        refused_4xx == bodies && statuses.get("413").copied() == Some(bodies),
        format!("answers {statuses:?}, not {bodies}×413"),
    );
    checks.check(accepted == 0, format!("{accepted} events accepted"));
    checks.check(
        peak <= bound,
        format!("peak RSS {} > bound {}", mib(peak), mib(bound)),
    );
    checks.check(
        worst_health <= Duration::from_millis(250),
        format!("/healthz took up to {}", ms(worst_health)),
    );
    let mut answers: Vec<String> = statuses.iter().map(|(k, n)| format!("{n}×{k}")).collect();
    answers.sort();
    Outcome {
        case,
        offered: format!("{bodies} × 16 MiB `[0,0,...]`"),
        counted: format!("{too_large} too large, {invalid} invalid (server)"),
        lost: "0".into(),
        doubled: "-".into(),
        peak_rss: mib(peak),
        verdict: checks.verdict(),
        detail: format!(
            "{} items each, all at once; answers {}; all answered in {}; slowest /healthz {}; bound: idle RSS {} + 64 MiB + 2 × the bodies in flight = {}",
            (body_bytes - 1) / 2,
            answers.join(", "),
            ms(took),
            ms(worst_health),
            mib(base),
            mib(bound)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: a slow server (the sender keeps its schedule)

/// A stand-in server: answers each POST 202 after `delay` while the first `slow_for` since
/// the first request lasts, at once afterwards; records each row's IP and arrival.
fn slow_stub(
    listener: TcpListener,
    delay: Duration,
    slow_for: Duration,
) -> Arc<Mutex<Vec<(Instant, String)>>> {
    let arrivals: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let first: Arc<OnceLock<Instant>> = Arc::default();
    let out = Arc::clone(&arrivals);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (arrivals, first) = (Arc::clone(&arrivals), Arc::clone(&first));
            tokio::spawn(async move {
                let mut carry = Vec::new();
                while let Some(request) = read_message(&mut stream, &mut carry).await {
                    let now = Instant::now();
                    let start = *first.get_or_init(|| now);
                    let body_at = find(&request, b"\r\n\r\n").map_or(request.len(), |i| i + 4);
                    let body: serde_json::Value =
                        serde_json::from_slice(&request[body_at..]).unwrap_or_default();
                    let items = match body {
                        serde_json::Value::Array(items) => items,
                        one => vec![one],
                    };
                    {
                        let mut arrivals = arrivals.lock().unwrap();
                        for item in &items {
                            let ip = item["ip"].as_str().unwrap_or_default().to_owned();
                            arrivals.push((now, ip));
                        }
                    }
                    if now.duration_since(start) < slow_for {
                        tokio::time::sleep(delay).await;
                    }
                    let body = format!("{{\"accepted\":{}}}", items.len());
                    let response = format!(
                        "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    out
}

async fn slow_server(s: &Settings) -> Outcome {
    let case = "slow-server";
    let gap_ms = 20;
    let rows = s.pick(400, 1000);
    let delay = Duration::from_millis(400);
    let slow_for = Duration::from_secs(3);
    let csv = write_csv(case, rows, gap_ms);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals = slow_stub(listener, delay, slow_for);
    let (code, summary) = run_sender(&csv, &format!("http://127.0.0.1:{port}"), &[], case).await;
    let arrivals = arrivals.lock().unwrap().clone();
    let mut by_ip: HashMap<&str, (usize, Instant)> = HashMap::new();
    for (at, ip) in &arrivals {
        let entry = by_ip.entry(ip.as_str()).or_insert((0, *at));
        entry.0 += 1;
    }
    let counted = by_ip.len() as u64;
    let lost = (0..rows)
        .filter(|&i| !by_ip.contains_key(ip_of(i).as_str()))
        .count() as u64;
    let doubled = by_ip.values().filter(|(n, _)| *n > 1).count() as u64;
    // Lateness at the stub of rows due after the slow stretch (plus a request's worth).
    let anchor = by_ip.get(ip_of(0).as_str()).map(|e| e.1);
    let settle = slow_for + 2 * delay;
    let mut late_after: Vec<u64> = Vec::new();
    if let Some(anchor) = anchor {
        for i in 0..rows {
            let offset = Duration::from_millis(i * gap_ms);
            if offset < settle {
                continue;
            }
            if let Some((_, at)) = by_ip.get(ip_of(i).as_str()) {
                let due = anchor + offset;
                late_after.push(at.saturating_duration_since(due).as_micros() as u64);
            }
        }
    }
    let p99_after = Duration::from_micros(percentile(&mut late_after, 0.99));
    let max_after = Duration::from_micros(late_after.last().copied().unwrap_or(0));
    let reported_max = summary_number(&summary, "max").unwrap_or(0.0);
    let mut checks = Checks::default();
    checks.check(lost == 0, format!("{lost} rows never arrived"));
    checks.check(doubled == 0, format!("{doubled} rows arrived twice"));
    checks.check(code == 0, format!("sender exited {code}"));
    checks.check(
        p99_after <= Duration::from_millis(20),
        format!(
            "rows after the slow stretch late by p99 {} (schedule not kept)",
            ms(p99_after)
        ),
    );
    checks.check(
        reported_max >= delay.as_secs_f64() * 1e3 * 0.75,
        format!(
            "sender reported max lateness {reported_max} ms, the server held rows {}",
            ms(delay)
        ),
    );
    Outcome {
        case,
        offered: format!("{rows} rows"),
        counted: format!("{counted} distinct rows at the stub"),
        lost: lost.to_string(),
        doubled: doubled.to_string(),
        peak_rss: "-".into(),
        verdict: checks.verdict(),
        detail: format!(
            "stub answers after {} for the first {} s, then at once; rows due after {} s: lateness at the stub p99 {} max {}; sender exit {code}: {summary}",
            ms(delay),
            slow_for.as_secs(),
            settle.as_secs_f64(),
            ms(p99_after),
            ms(max_after)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: the memory limit (idle, stalled and oversized all at once)

async fn memory_limit(s: &Settings) -> Outcome {
    let case = "memory-limit";
    let (idle_n, stalled_n, oversized_n) = s.pick((500, 20, 4), (2000, 50, 8));
    let ring = 100_000;
    let args = Args::new("server")
        .always("--ring-capacity", ring)
        .flag("--max-streams", idle_n + stalled_n + 16);
    let server = start("server", free_port(), &args, case).await;
    let dog = Watchdog::start(server.pid(), HARD_CAP_KIB);
    preload(&server, ring).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = rss_kib(server.pid());
    let from = current_id(server.port).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut idle = Vec::with_capacity(idle_n);
    let mut idle_failed = 0;
    for _ in 0..idle_n {
        match open_stream_from(server.port, None, Some(&from)).await {
            Ok(stream) => {
                let stop = Arc::clone(&stop);
                idle.push(tokio::spawn(async move {
                    let mut sse = SseReader::new(stream);
                    read_until(&mut sse, &stop, |_| {}).await
                }));
            }
            Err(_) => idle_failed += 1,
        }
    }
    let stalled = stalled_clients(server.port, stalled_n).await;
    let request = Arc::new(oversized_request(16 * 1024 * 1024 - 1));
    let prober = health_prober(server.port, Arc::clone(&stop));
    let sends: Vec<_> = (0..oversized_n)
        .map(|_| tokio::spawn(send_and_status(server.port, Arc::clone(&request))))
        .collect();
    let mut refused = 0;
    for send in sends {
        refused += usize::from(send.await.unwrap().is_some_and(|s| (400..500).contains(&s)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = peak_rss_kib(server.pid());
    let clients = server.metric("traffic_stream_clients").await;
    stop.store(true, Relaxed);
    let worst_health = prober.await.unwrap();
    let mut idle_alive = 0;
    for t in idle {
        idle_alive += usize::from(t.await.unwrap());
    }
    drop(stalled);
    let bound = base
        + 64 * MIB
        + idle_n as u64 * 64
        + stalled_n as u64 * 4 * MIB
        + oversized_n as u64 * 32 * MIB;
    let mut checks = Checks::default();
    if let Some(rss) = dog.fired() {
        checks.check(false, format!("server killed by the suite at {}", mib(rss)));
    }
    checks.check(
        peak <= bound,
        format!("peak RSS {} > bound {}", mib(peak), mib(bound)),
    );
    checks.check(
        refused == oversized_n,
        format!("{refused} of {oversized_n} oversized bodies refused"),
    );
    checks.check(
        idle_alive == idle_n,
        format!("{} idle streams ended early", idle_n - idle_alive),
    );
    checks.check(
        worst_health <= Duration::from_millis(250),
        format!("/healthz took up to {}", ms(worst_health)),
    );
    Outcome {
        case,
        offered: format!("{idle_n} idle + {stalled_n} stalled + {oversized_n} × 16 MiB"),
        counted: format!("{clients} streams open, {refused} refused"),
        lost: "0".into(),
        doubled: "-".into(),
        peak_rss: mib(peak),
        verdict: checks.verdict(),
        detail: format!(
            "ring full ({ring} visible hits, RSS {}); {idle_failed} idle connects failed; slowest /healthz {}; bound: ring full + 64 MiB + 64 KiB per idle + 4 MiB per stalled + 32 MiB per oversized body = {}{}",
            mib(base),
            ms(worst_health),
            mib(bound),
            args.note()
        ),
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    let settings = Settings::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "fault suite ({} mode); process logs in {}",
        if settings.quick { "quick" } else { "full" },
        log_dir().display()
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    runtime.block_on(async {
        type Case = for<'a> fn(
            &'a Settings,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + 'a>>;
        let cases: [(&str, Case); 8] = [
            ("kill-restart", |s| Box::pin(kill_restart(s))),
            ("lost-202", |s| Box::pin(lost_ack(s))),
            ("web-restart", |s| Box::pin(web_restart(s))),
            ("stalled-clients", |s| Box::pin(stalled(s))),
            ("half-requests", |s| Box::pin(half_requests(s))),
            ("oversized-burst", |s| Box::pin(oversized(s))),
            ("slow-server", |s| Box::pin(slow_server(s))),
            ("memory-limit", |s| Box::pin(memory_limit(s))),
        ];
        for (name, case) in cases {
            if !settings.wants(name) {
                continue;
            }
            let t = Instant::now();
            let outcome = case(&settings).await;
            println!(
                "{name}: {} ({:.1} s)\n  offered {}; counted {}; lost {}; doubled {}; peak RSS {}\n  {}",
                outcome.verdict_text(),
                t.elapsed().as_secs_f64(),
                outcome.offered,
                outcome.counted,
                outcome.lost,
                outcome.doubled,
                outcome.peak_rss,
                outcome.detail
            );
            outcomes.push(outcome);
        }
    });
    println!(
        "\n| case | offered | counted | lost | doubled | peak RSS | verdict |\n|---|---|---|---|---|---|---|"
    );
    for o in &outcomes {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            o.case,
            o.offered,
            o.counted,
            o.lost,
            o.doubled,
            o.peak_rss,
            o.verdict_text()
        );
    }
    let failed = outcomes.iter().filter(|o| o.failed()).count();
    println!("\n{} of {} cases failed", failed, outcomes.len());
    // Streams and sockets left to the runtime are dropped with it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(i32::from(failed > 0));
}
