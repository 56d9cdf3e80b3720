//! Load benchmarks against the real `server` (and `sender`) binaries on 127.0.0.1.
//!
//! `scripts/bench` builds the release binaries and runs this; see BENCHMARKS.md for what each
//! number means. Every scenario starts a fresh server process, drives it from this process
//! (hand-written HTTP/1.1 over keep-alive sockets: no client library in the way), and reports
//! the CPU both processes used, so a saturated load generator is visible in the table.
//!
//! ```text
//! cargo bench -p server --bench load -- [--quick] [--smoke] [--only NAME[,NAME]] [--soak]
//! ```
//!
//! Scenarios (for `--only`): ingest, fanout, stored (batched ingest into the history while
//! 100 clients watch), stall, e2e, pacing, soak.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::{
    Conn, Server, batch, bin_dir, cpu_secs, data_file, event, open_stream, post_request,
    post_request_as, rss_kib,
};
use hdrhistogram::Histogram;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------
// Settings

#[derive(Clone)]
struct Settings {
    /// Seconds per throughput measurement.
    secs: f64,
    /// Fan-out runs: (clients, events per second).
    fanout_clients: Vec<(usize, u64)>,
    /// Fan-out measurement seconds.
    fanout_secs: f64,
    /// Pacing runs: (speed, seconds of data replayed from the start of the file).
    pacing: Vec<(f64, Option<f64>)>,
    /// End-to-end rates.
    e2e_rates: Vec<u64>,
    soak: Option<(Duration, u64, usize)>,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let only = args
            .iter()
            .position(|a| a == "--only")
            .map(|i| args[i + 1].split(',').map(str::to_owned).collect());
        let mut s = if has("--smoke") {
            // CI: proves every scenario still runs, in seconds; the numbers mean nothing.
            Settings {
                secs: 0.3,
                fanout_clients: vec![(10, 1000)],
                fanout_secs: 0.5,
                pacing: vec![(1000.0, None)],
                e2e_rates: vec![100],
                soak: Some((Duration::from_secs(2), 200, 5)),
                only: None,
            }
        } else if has("--quick") {
            Settings {
                secs: 3.0,
                fanout_clients: vec![(100, 1000), (1000, 1000)],
                fanout_secs: 4.0,
                pacing: vec![(60.0, None), (1000.0, None)],
                e2e_rates: vec![100, 5000],
                soak: None,
                only: None,
            }
        } else {
            Settings {
                secs: 8.0,
                fanout_clients: vec![(100, 1000), (1000, 1000), (5000, 1000), (5000, 100)],
                fanout_secs: 10.0,
                pacing: vec![(1.0, Some(60.0)), (60.0, None), (1000.0, None)],
                e2e_rates: vec![100, 5000],
                soak: None,
                only: None,
            }
        };
        if has("--soak") {
            s.soak = Some((Duration::from_secs(600), 2000, 200));
        }
        s.only = only;
        s
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }
}

// ---------------------------------------------------------------------------------------
// CPU

/// CPU use of the server and of this process over a measured stretch, in cores.
struct CpuMeter {
    server: u32,
    at: Instant,
    server_cpu: f64,
    own_cpu: f64,
}

impl CpuMeter {
    fn start(server: u32) -> Self {
        Self {
            server,
            at: Instant::now(),
            server_cpu: cpu_secs(server),
            own_cpu: cpu_secs(std::process::id()),
        }
    }
    /// (server cores, load generator cores).
    fn stop(&self) -> (f64, f64) {
        let wall = self.at.elapsed().as_secs_f64();
        (
            (cpu_secs(self.server) - self.server_cpu) / wall,
            (cpu_secs(std::process::id()) - self.own_cpu) / wall,
        )
    }
}

// ---------------------------------------------------------------------------------------
// Reporting

struct Report {
    rows: Vec<[String; 4]>,
}

impl Report {
    fn row(
        &mut self,
        scenario: impl Into<String>,
        result: impl Into<String>,
        detail: impl Into<String>,
        target: impl Into<String>,
    ) {
        let row = [scenario.into(), result.into(), detail.into(), target.into()];
        println!("{} | {} | {} | {}", row[0], row[1], row[2], row[3]);
        self.rows.push(row);
    }

    fn table(&self) -> String {
        let mut out = String::from("| scenario | result | detail | target |\n|---|---|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(out, "| {} | {} | {} | {} |", r[0], r[1], r[2], r[3]);
        }
        out
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> String {
    format!("{:.2}", h.value_at_quantile(q) as f64 / 1000.0)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Ingest

/// The ingest token of the `with a token` scenarios.
const BENCH_TOKEN: &str = "bench-token-0123456789abcdef0123456789";

/// `clients` connections each POSTing `batch_size` events per request, back to back.
async fn ingest(settings: &Settings, report: &mut Report, clients: usize, batch_size: usize) {
    ingest_as(settings, report, clients, batch_size, None).await;
}

/// The same, each request with `Authorization: Bearer {token}` (checked by the server).
async fn ingest_as(
    settings: &Settings,
    report: &mut Report,
    clients: usize,
    batch_size: usize,
    token: Option<&str>,
) {
    let server = match token {
        None => Server::start(&[]).await,
        // On loopback the token is still checked when sent (a wrong one is a 401), and the
        // stats stay readable for the count below.
        Some(token) => Server::start(&["--ingest-token", token]).await,
    };
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..64u64)
            .map(|k| {
                if batch_size == 1 {
                    post_request_as(&event(k), token)
                } else {
                    post_request_as(&batch(k * batch_size as u64, batch_size), token)
                }
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let meter = CpuMeter::start(server.pid());
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            let port = server.port;
            tokio::spawn(async move {
                let mut conn = Conn::open(port).await;
                let mut h = histogram();
                let mut n = 0usize;
                while !stop.load(Relaxed) {
                    let t = Instant::now();
                    let status = conn.roundtrip(&requests[(n + c) % requests.len()]).await;
                    assert_eq!(status, 202);
                    h.record(t.elapsed().as_micros().max(1) as u64).unwrap();
                    n += 1;
                }
                h
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(settings.secs)).await;
    stop.store(true, Relaxed);
    let mut h = histogram();
    for t in tasks {
        h.add(t.await.unwrap()).unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = meter.stop();
    let posts = h.len() as f64 / wall;
    let accepted = server.stats().await["total"].as_u64().unwrap_or(0);
    let with = if token.is_some() {
        ", with a token"
    } else {
        ""
    };
    let (name, result, target) = if batch_size == 1 {
        (
            format!("ingest: single-event POSTs, {clients} conn{with}"),
            format!("{} POSTs/s", thousands(posts)),
            ">= 50,000 POSTs/s",
        )
    } else {
        (
            format!("ingest: batches of {batch_size}, {clients} conn{with}"),
            format!("{} events/s", thousands(posts * batch_size as f64)),
            ">= 1,000,000 events/s",
        )
    };
    report.row(
        name,
        result,
        format!(
            "latency p50 {} ms p99 {} ms; server {:.2} cores, load generator {:.2} cores; {} events counted",
            ms(&h, 0.5),
            ms(&h, 0.99),
            server_cpu,
            own_cpu,
            thousands(accepted as f64)
        ),
        target,
    );
}

// ---------------------------------------------------------------------------------------
// SSE clients

/// Shared table: for event id `seq`, when its POST was accepted (µs since `epoch`).
struct Accepted {
    epoch: Instant,
    at: Vec<AtomicU64>,
}

impl Accepted {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            at: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        })
    }
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// Batches of 1,000 on 2 connections, as fast as the server takes them, into the history
/// (the default store) while `watchers` stream clients are served: one counts every event it
/// is sent (all must arrive), the others read and count bytes only (parsing 100 copies of
/// the stream would take this 2-core machine's CPU from the server).
async fn ingest_watched(settings: &Settings, report: &mut Report, watchers: usize) {
    let server = Server::start(&[]).await;
    let stop_reading = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let counting = tokio::spawn(watch(
        open_stream(server.port, None).await,
        Arc::clone(&delivered),
        None,
        Arc::clone(&stop_reading),
    ));
    let mut draining = Vec::new();
    for _ in 1..watchers {
        let mut stream = open_stream(server.port, None).await;
        let stop = Arc::clone(&stop_reading);
        draining.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            let mut bytes = 0u64;
            while !stop.load(Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
                {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => bytes += n as u64,
                    Err(_) => {}
                }
            }
            bytes
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..64u64)
            .map(|k| post_request(&batch(k * 1000, 1000)))
            .collect(),
    );
    let stop_posting = Arc::new(AtomicBool::new(false));
    let meter = CpuMeter::start(server.pid());
    let started = Instant::now();
    let posters: Vec<_> = (0..2)
        .map(|c| {
            let (requests, stop, port) = (
                Arc::clone(&requests),
                Arc::clone(&stop_posting),
                server.port,
            );
            tokio::spawn(async move {
                let mut conn = Conn::open(port).await;
                let mut n = 0usize;
                while !stop.load(Relaxed) {
                    assert_eq!(
                        conn.roundtrip(&requests[(n + c) % requests.len()]).await,
                        202
                    );
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(settings.secs)).await;
    stop_posting.store(true, Relaxed);
    for p in posters {
        p.await.unwrap();
    }
    let posting = started.elapsed().as_secs_f64();
    let accepted = server.stats().await["total"].as_u64().unwrap_or(0);
    // Until the counting client has every event (bounded).
    for _ in 0..300 {
        if delivered.load(Relaxed) >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = meter.stop();
    stop_reading.store(true, Relaxed);
    let _ = counting.await;
    let mut bytes = Vec::new();
    for d in draining {
        bytes.push(d.await.unwrap());
    }
    let (least, most) = (
        bytes.iter().min().copied().unwrap_or(0),
        bytes.iter().max().copied().unwrap_or(0),
    );
    report.row(
        format!("stored ingest: batches of 1000, 2 conn, {watchers} stream clients"),
        format!(
            "{} events/s accepted and stored",
            thousands(accepted as f64 / posting)
        ),
        format!(
            "counting client got {} of {} events; the other {} read {:.0}-{:.0} MB each in {:.1} s ({:.0} MB/s each); server {:.2} cores, load generator {:.2} cores",
            thousands(delivered.load(Relaxed) as f64),
            thousands(accepted as f64),
            watchers - 1,
            least as f64 / 1e6,
            most as f64 / 1e6,
            wall,
            most as f64 / 1e6 / wall,
            server_cpu,
            own_cpu
        ),
        ">= 200,000 events/s while serving 100 stream clients",
    );
}

/// Where a watching client records latencies: accept times by id, and the histogram.
type LatencySink = (Arc<Accepted>, Arc<std::sync::Mutex<Histogram<u64>>>);

/// Reads a stream, counting delivered hits by the ids of `hits` messages; when `latency` is
/// given, records (now - accepted) for each newly covered id.
async fn watch(
    mut stream: TcpStream,
    delivered: Arc<AtomicU64>,
    latency: Option<LatencySink>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut last_seq: Option<u64> = None;
    while !stop.load(Relaxed) {
        let n = match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => continue,
        };
        carry.extend_from_slice(&buf[..n]);
        // Consume whole lines; ids look like "id: <boot>-<seq>".
        let mut consumed = 0;
        while let Some(nl) = carry[consumed..].iter().position(|&b| b == b'\n') {
            let line = &carry[consumed..consumed + nl];
            consumed += nl + 1;
            if let Some(id) = line.strip_prefix(b"id: ") {
                let seq: u64 = std::str::from_utf8(id)
                    .ok()
                    .and_then(|s| s.rsplit_once('-'))
                    .and_then(|(_, s)| s.parse().ok())
                    .unwrap_or(0);
                // The first id (the snapshot's) is the baseline; each later id covers the
                // events since the previous one (stats messages repeat it: nothing new).
                match last_seq {
                    None => last_seq = Some(seq),
                    Some(last) if seq > last => {
                        delivered.fetch_add(seq - last, Relaxed);
                        if let Some((accepted, h)) = &latency {
                            let now = accepted.now();
                            let mut h = h.lock().unwrap();
                            for s in last + 1..=seq {
                                let at = accepted.at.get(s as usize).map_or(0, |a| a.load(Relaxed));
                                if at > 0 {
                                    let _ = h.record(now.saturating_sub(at).max(1));
                                }
                            }
                        }
                        last_seq = Some(seq);
                    }
                    Some(_) => {}
                }
            }
        }
        carry.drain(..consumed);
    }
}

/// Reads a stream for up to `limit` (stopping early once a second snapshot is seen) and
/// counts the `snapshot` messages in it.
async fn snapshots_read(mut stream: TcpStream, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = 0;
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    while seen < 2 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                tail.extend_from_slice(&buf[..n]);
                seen += tail.windows(15).filter(|w| w == b"event: snapshot").count();
                // Keep a few bytes in case the marker straddles two reads.
                let keep = tail.len().min(14);
                tail.drain(..tail.len() - keep);
            }
            _ => break,
        }
    }
    seen
}

/// Posts single events at `rate` per second for `secs`, recording accept times by id.
/// Ids are sequential because one connection posts in order and nobody else posts.
async fn post_at_rate(
    port: u16,
    rate: u64,
    secs: f64,
    accepted: Arc<Accepted>,
    first_id: u64,
) -> u64 {
    let mut conn = Conn::open(port).await;
    let start = tokio::time::Instant::now();
    let total = (rate as f64 * secs) as u64;
    // Post in ticks of 1 ms: at high rates several events per tick go as one array.
    let mut sent = 0u64;
    let mut id = first_id;
    while sent < total {
        let due_by = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        if due_by > sent {
            // At most 1,000 a request (a server that fell behind is caught up in several).
            let n = ((due_by - sent) as usize).min(1000);
            let body = if n == 1 { event(id) } else { batch(id, n) };
            let status = conn.roundtrip(&post_request(&body)).await;
            assert_eq!(status, 202);
            let now = accepted.now();
            for k in 0..n as u64 {
                if let Some(slot) = accepted.at.get((id + k) as usize) {
                    slot.store(now, Relaxed);
                }
            }
            id += n as u64;
            sent += n as u64;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64((sent + 1) as f64 / rate as f64))
            .await;
    }
    sent
}

/// `clients` SSE clients (plus one that never reads) while events arrive at `rate`.
/// `server_args` tune the server, e.g. a smaller per-client buffer for the stall test.
async fn fanout(
    settings: &Settings,
    report: &mut Report,
    clients: usize,
    rate: u64,
    server_args: &[&str],
) {
    let server = Server::start(server_args).await;
    let idle_rss = rss_kib(server.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let accepted = Accepted::new((rate as f64 * (settings.fanout_secs + 5.0)) as usize + 10);
    let h = Arc::new(std::sync::Mutex::new(histogram()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let stream = open_stream(server.port, None).await;
        // A sample of clients measures per-event latency; the rest only count.
        let latency =
            (c % (clients / 20).max(1) == 0).then(|| (Arc::clone(&accepted), Arc::clone(&h)));
        tasks.push(tokio::spawn(watch(
            stream,
            Arc::clone(&delivered),
            latency,
            Arc::clone(&stop),
        )));
    }
    // One client that never reads, with a tiny receive buffer.
    let stalled = open_stream(server.port, Some(4096)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connected_rss = rss_kib(server.pid());
    let meter = CpuMeter::start(server.pid());
    let started = Instant::now();
    let posted = post_at_rate(
        server.port,
        rate,
        settings.fanout_secs,
        Arc::clone(&accepted),
        1,
    )
    .await;
    // Below `rate` when the server answered slower than the events were due.
    let posted_rate = posted as f64 / started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (server_cpu, own_cpu) = meter.stop();
    let wall = started.elapsed().as_secs_f64();
    let end_rss = rss_kib(server.pid());
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // The stalled client starts reading again: what it missed is no longer buffered, so it
    // must be sent a fresh snapshot (a resync) rather than hold anything up meanwhile.
    let resynced = snapshots_read(stalled, Duration::from_secs(5)).await > 1;
    let resyncs = server.metric("traffic_stream_lag_resyncs_total").await;
    let got = delivered.load(Relaxed);
    let h = h.lock().unwrap();
    report.row(
        format!(
            "fan-out: {clients} SSE clients, {} events/s{}",
            thousands(rate as f64),
            if server_args.is_empty() { String::new() } else { format!(" (server {})", server_args.join(" ")) }
        ),
        format!(
            "{} of {} events delivered to each; {} deliveries/s; accepted at {} events/s",
            thousands(got as f64 / clients as f64),
            thousands(posted as f64),
            thousands(got as f64 / wall),
            thousands(posted_rate)
        ),
        format!(
            "latency p50 {} ms p99 {} ms; RSS {} KiB idle, {:.1} KiB per connected client, {} KiB at end; 1 stalled client: {}, {} resyncs; server {:.2} cores, load generator {:.2} cores",
            ms(&h, 0.5),
            ms(&h, 0.99),
            idle_rss,
            (connected_rss.saturating_sub(idle_rss)) as f64 / clients as f64,
            end_rss,
            if resynced { "resynchronised by snapshot when it read again" } else { "not resynchronised" },
            resyncs,
            server_cpu,
            own_cpu
        ),
        "thousands of clients; KiB per client; others unaffected by a stalled one",
    );
}

// ---------------------------------------------------------------------------------------
// End to end

async fn end_to_end(settings: &Settings, report: &mut Report, rate: u64) {
    let server = Server::start(&[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let secs = settings.fanout_secs.min(5.0);
    let accepted = Accepted::new((rate as f64 * (secs + 5.0)) as usize + 10);
    let h = Arc::new(std::sync::Mutex::new(histogram()));
    let stream = open_stream(server.port, None).await;
    let watcher = tokio::spawn(watch(
        stream,
        Arc::clone(&delivered),
        Some((Arc::clone(&accepted), Arc::clone(&h))),
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let posted = post_at_rate(server.port, rate, secs, Arc::clone(&accepted), 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Relaxed);
    let _ = watcher.await;
    let h = h.lock().unwrap();
    report.row(
        format!("end to end: POST accepted → SSE client, {rate} events/s"),
        format!("p50 {} ms, p99 {} ms", ms(&h, 0.5), ms(&h, 0.99)),
        format!(
            "{} of {} events received; max {} ms",
            delivered.load(Relaxed),
            posted,
            ms(&h, 1.0)
        ),
        "measured (publish interval 10 ms batches under load)",
    );
}

// ---------------------------------------------------------------------------------------
// Pacing, with the real sender

fn head_of(path: &Path, secs: f64) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut out = format!("{header}\n");
    let mut first = None;
    for line in lines {
        let t: f64 = line
            .split(',')
            .nth(3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let t0 = *first.get_or_insert(t);
        if t - t0 >= secs {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    let dest = std::env::temp_dir().join(format!("traffic-bench-head-{}.csv", std::process::id()));
    std::fs::write(&dest, out).unwrap();
    dest
}

async fn pacing(report: &mut Report, speed: f64, head: Option<f64>) {
    let server = Server::start(&[]).await;
    let file = data_file();
    let replayed = head.map_or_else(|| file.clone(), |secs| head_of(&file, secs));
    let output = tokio::process::Command::new(bin_dir().join("sender"))
        .args([
            "--quiet",
            "--speed",
            &speed.to_string(),
            "--url",
            &format!("http://127.0.0.1:{}", server.port),
        ])
        .arg(&replayed)
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("sender: "))
        .unwrap_or("(no summary)");
    let pick = |key: &str| {
        summary
            .split_once(key)
            .map(|(_, rest)| {
                rest.split([',', ';'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let what = head.map_or_else(|| "whole file".to_owned(), |s| format!("first {s} s"));
    report.row(
        format!(
            "pacing: sender at speed {speed}, {what} of {}",
            file.file_name().unwrap().to_string_lossy()
        ),
        format!("lateness {}", pick("lateness ")),
        format!(
            "drift at end {}; exit {}; elapsed {}",
            pick("drift at end "),
            output.status,
            pick("elapsed ")
        ),
        "p99 <= 1 ms, no drift",
    );
}

// ---------------------------------------------------------------------------------------
// Soak

async fn soak(report: &mut Report, length: Duration, rate: u64, clients: usize) {
    let server = Server::start(&[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let stream = open_stream(server.port, None).await;
        tasks.push(tokio::spawn(watch(
            stream,
            Arc::clone(&delivered),
            None,
            Arc::clone(&stop),
        )));
    }
    let accepted = Accepted::new(0);
    let poster = tokio::spawn(post_at_rate(
        server.port,
        rate,
        length.as_secs_f64(),
        accepted,
        1,
    ));
    let mut samples = Vec::new();
    let every = (length / 60)
        .max(Duration::from_millis(250))
        .min(Duration::from_secs(10));
    let started = Instant::now();
    while started.elapsed() < length {
        tokio::time::sleep(every).await;
        samples.push((started.elapsed().as_secs(), rss_kib(server.pid())));
    }
    let posted = poster.await.unwrap();
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let after_first_minute = samples
        .iter()
        .find(|(t, _)| *t >= 60.min(length.as_secs() / 10))
        .map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let change = if after_first_minute > 0 {
        (last as f64 / after_first_minute as f64 - 1.0) * 100.0
    } else {
        0.0
    };
    let series: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 12).max(1))
        .map(|(t, r)| format!("{t}s:{}MiB", r / 1024))
        .collect();
    report.row(
        format!(
            "soak: {} s at {rate} events/s, {clients} SSE clients",
            length.as_secs()
        ),
        format!("RSS {:+.1}% from first minute to end", change),
        format!(
            "{} KiB after first minute, {} KiB at end, {} KiB max; {} events posted; samples {}",
            after_first_minute,
            last,
            max,
            posted,
            series.join(" ")
        ),
        "flat: within 10% of its value after the first minute",
    );
}

// ---------------------------------------------------------------------------------------

fn main() {
    let settings = Settings::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut report = Report { rows: Vec::new() };
    println!("scenario | result | detail | target");
    runtime.block_on(async {
        if settings.wants("ingest") {
            ingest(&settings, &mut report, 1, 1).await;
            ingest(&settings, &mut report, 8, 1).await;
            ingest(&settings, &mut report, 64, 1).await;
            ingest(&settings, &mut report, 2, 100).await;
            ingest(&settings, &mut report, 2, 1000).await;
            // The same path with access control's token check.
            ingest_as(&settings, &mut report, 8, 1, Some(BENCH_TOKEN)).await;
            ingest_as(&settings, &mut report, 64, 1, Some(BENCH_TOKEN)).await;
        }
        if settings.wants("fanout") {
            for &(clients, rate) in &settings.fanout_clients {
                fanout(&settings, &mut report, clients, rate, &[]).await;
            }
        }
        if settings.wants("stored") {
            // Issue 10: batched ingest into the history (the default store, a fresh data
            // dir) while 100 stream clients are served.
            let watchers = if settings.secs < 1.0 { 10 } else { 100 };
            ingest_watched(&settings, &mut report, watchers).await;
        }
        if settings.wants("stall") {
            // Enough traffic that the stalled client's socket buffers fill within the run,
            // and a small per-client buffer, so the resynchronisation is seen.
            for &(clients, _) in settings.fanout_clients.iter().take(1) {
                fanout(
                    &settings,
                    &mut report,
                    clients,
                    20_000,
                    &["--client-buffer", "64"],
                )
                .await;
            }
        }
        if settings.wants("e2e") {
            for &rate in &settings.e2e_rates {
                end_to_end(&settings, &mut report, rate).await;
            }
        }
        if settings.wants("pacing") {
            for &(speed, head) in &settings.pacing {
                pacing(&mut report, speed, head).await;
            }
        }
        if settings.wants("soak")
            && let Some((length, rate, clients)) = settings.soak
        {
            soak(&mut report, length, rate, clients).await;
        }
    });
    println!("\n{}", report.table());
}
