//! What the cases share: flags looked up in `--help`, process logs, a memory watchdog,
//! generated inputs, the sender, load and probes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::MIB;
use crate::common::{
    Conn, Server, batch, binary, coordinates, event, ip_of, post_request, rss_kib,
};
use crate::sse::*;

// ---------------------------------------------------------------------------------------
// Binaries, their flags and their logs

/// The `--help` text of a release binary (cached).
pub(crate) fn help(name: &str) -> &'static str {
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
pub(crate) fn has_flag(name: &str, flag: &str) -> bool {
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
pub(crate) struct Args {
    name: &'static str,
    args: Vec<String>,
    missing: Vec<String>,
}

impl Args {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            args: Vec::new(),
            missing: Vec::new(),
        }
    }
    pub(crate) fn flag(mut self, flag: &str, value: impl ToString) -> Self {
        if has_flag(self.name, flag) {
            self.args.push(flag.to_owned());
            self.args.push(value.to_string());
        } else {
            self.missing.push(format!("{} {flag}", self.name));
        }
        self
    }
    pub(crate) fn always(mut self, flag: &str, value: impl ToString) -> Self {
        self.args.push(flag.to_owned());
        self.args.push(value.to_string());
        self
    }
    /// A flag without a value (e.g. `--durable`), always added.
    pub(crate) fn switch(mut self, flag: &str) -> Self {
        self.args.push(flag.to_owned());
        self
    }
    pub(crate) fn strs(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
    pub(crate) fn note(&self) -> String {
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
pub(crate) fn log_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("traffic-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

pub(crate) fn log_file(name: &str) -> Stdio {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Relaxed);
    let path = log_dir().join(format!("{n:02}-{name}.log"));
    Stdio::from(std::fs::File::create(path).unwrap())
}

pub(crate) async fn start(name: &'static str, port: u16, args: &Args, case: &str) -> Server {
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
pub(crate) struct Watchdog {
    fired: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    pub(crate) fn start(pid: u32, cap_kib: u64) -> Self {
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
    pub(crate) fn fired(&self) -> Option<u64> {
        Some(self.fired.load(Relaxed)).filter(|&v| v > 0)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// The slowest `/healthz` answer a case tolerates while it loads the server (generous: the
/// 2-core machine is shared).
pub(crate) const HEALTH_BOUND: Duration = Duration::from_millis(500);

/// The largest RSS the suite lets a server reach before killing it.
pub(crate) const HARD_CAP_KIB: u64 = 4 * 1024 * MIB;

// ---------------------------------------------------------------------------------------
// Inputs

/// A CSV of `rows` rows, one every `gap_ms` of data time, each with its own IP (`ip_of(i)`).
pub(crate) fn write_csv(name: &str, rows: u64, gap_ms: u64) -> PathBuf {
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
pub(crate) async fn run_sender(
    csv: &PathBuf,
    url: &str,
    extra: &[&str],
    case: &str,
) -> (i32, String) {
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
pub(crate) fn summary_number(summary: &str, key: &str) -> Option<f64> {
    let rest = &summary[summary.find(key)? + key.len()..];
    rest.split_whitespace()
        .next()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

/// Posts `total` events in batches of 1000 and waits until the server has published them.
pub(crate) async fn preload(server: &Server, total: u64) {
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
pub(crate) fn oversized_request(bytes: usize) -> Vec<u8> {
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
pub(crate) async fn send_and_status(port: u16, request: Arc<Vec<u8>>) -> Option<u16> {
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
pub(crate) fn health_prober(port: u16, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        while !stop.load(Relaxed) {
            let t = Instant::now();
            let ok =
                tokio::time::timeout(Duration::from_secs(5), crate::common::get(port, "/healthz"))
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
#[derive(Default)]
pub(crate) struct Reader {
    pub(crate) counts: Mutex<Vec<u32>>,
    pub(crate) late_us: Mutex<Vec<u64>>,
}

impl Reader {
    pub(crate) fn record(&self, message: &Message, accepted: Option<(&AcceptTimes, u64)>) {
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
    pub(crate) fn gaps_and_doubles(&self, range: std::ops::RangeInclusive<u64>) -> (u64, u64) {
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
pub(crate) struct AcceptTimes {
    epoch: Instant,
    at: Vec<AtomicU64>,
}

impl AcceptTimes {
    pub(crate) fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            at: (0..=n).map(|_| AtomicU64::new(0)).collect(),
        })
    }
    pub(crate) fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    pub(crate) fn at(&self, k: u64) -> Option<u64> {
        Some(self.at.get(k as usize)?.load(Relaxed)).filter(|&v| v > 0)
    }
}

/// Posts single events `1..=total` (indices into `times`) at `rate` per second over one
/// keep-alive connection, recording when each was accepted. Returns how many got a 202.
pub(crate) async fn post_paced(port: u16, rate: u64, total: u64, times: Arc<AcceptTimes>) -> u64 {
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

pub(crate) fn percentile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[((values.len() - 1) as f64 * q).round() as usize]
}
