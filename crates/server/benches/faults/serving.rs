//! Cases around serving: web restarted under open pages, clients that stop reading, half
//! requests, oversized bodies, and the memory limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{
    Conn, Server, event, fd_count, free_port, open_stream, open_stream_from, peak_rss_kib,
    post_request, rss_kib,
};
use crate::harness::*;
use crate::sse::*;
use crate::{Checks, MIB, Outcome, Settings, mib, ms};

// ---------------------------------------------------------------------------------------
// Case: web restarted under 200 open pages

/// A page's stream through `port`: reconnects with `Last-Event-ID` (as `EventSource` does)
/// whenever the stream ends, until `stop`. Returns how many times it connected.
pub(crate) fn page(
    port: u16,
    reader: Arc<Reader>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    reconnecting(port, Duration::from_millis(100), stop, move |m| {
        reader.record(m, None);
    })
}

pub(crate) async fn web_restart(s: &Settings) -> Outcome {
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
    let readers: Vec<Arc<Reader>> = (0..pages).map(|_| Arc::new(Reader::default())).collect();
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

/// Hits in a full ring (the server's default capacity).
const RING: u64 = 100_000;

/// A server whose ring is full of visible hits, so that a snapshot is as large as it gets.
struct FullRing {
    server: Server,
    args: Args,
    dog: Watchdog,
    /// RSS with the ring full and no clients.
    base: u64,
    /// The newest event id, for clients that resume instead of taking a snapshot.
    from: String,
}

impl FullRing {
    /// Starts it for `streams` clients (plus a few spare for the suite's own).
    async fn start(case: &str, streams: usize) -> Self {
        let args = Args::new("server")
            .always("--ring-capacity", RING)
            .flag("--max-streams", streams + 16);
        let server = start("server", free_port(), &args, case).await;
        let dog = Watchdog::start(server.pid(), HARD_CAP_KIB);
        preload(&server, RING).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let base = rss_kib(server.pid());
        let from = current_id(server.port).await;
        Self {
            server,
            args,
            dog,
            base,
            from,
        }
    }
}

/// Opens `n` streams that never read, with tiny receive buffers, from the start (snapshot).
pub(crate) async fn stalled_clients(port: u16, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(open_stream(port, Some(4096)).await);
    }
    out
}

pub(crate) async fn stalled(s: &Settings) -> Outcome {
    let case = "stalled-clients";
    let (readers_n, stalled_n, rate, secs) = s.pick((20, 20, 1000, 4.0), (50, 50, 2000, 10.0));
    let FullRing {
        server,
        args,
        dog,
        base,
        from,
    } = FullRing::start(case, readers_n + stalled_n).await;
    let stop = Arc::new(AtomicBool::new(false));
    let total = (rate as f64 * secs) as u64;
    let times = AcceptTimes::new(total as usize);
    let readers: Vec<Arc<Reader>> = (0..readers_n)
        .map(|_| Arc::new(Reader::default()))
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
            read_until(&mut sse, &stop, |m| r.record(m, Some((&times, RING)))).await;
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
        let (m, e) = r.gaps_and_doubles(RING + 1..=RING + total);
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
            "ring full ({RING} visible hits, RSS {}); {stalled_n} clients took a snapshot and never read; {rate} events/s for {secs} s; readers' latency p99 {} max {}; bound: RSS with the ring full + 64 MiB + 4 MiB per stalled client = {}{}",
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

pub(crate) async fn half_requests(s: &Settings) -> Outcome {
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
        let health = crate::common::get(port, "/healthz").await.map(|(s, _)| s);
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

pub(crate) async fn oversized(s: &Settings) -> Outcome {
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
        worst_health <= HEALTH_BOUND,
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
// Case: the memory limit (idle, stalled and oversized all at once)

pub(crate) async fn memory_limit(s: &Settings) -> Outcome {
    let case = "memory-limit";
    let (idle_n, stalled_n, oversized_n) = s.pick((500, 20, 4), (2000, 50, 8));
    let FullRing {
        server,
        args,
        dog,
        base,
        from,
    } = FullRing::start(case, idle_n + stalled_n).await;
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
        worst_health <= HEALTH_BOUND,
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
            "ring full ({RING} visible hits, RSS {}); {idle_failed} idle connects failed; slowest /healthz {}; bound: ring full + 64 MiB + 64 KiB per idle + 4 MiB per stalled + 32 MiB per oversized body = {}{}",
            mib(base),
            ms(worst_health),
            mib(bound),
            args.note()
        ),
    }
}
