//! Cases around the sender: the server killed mid-replay, a 202 lost on the way back, a slow
//! server.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::common::{find, free_port, header_value, ip_of, peak_rss_kib, read_message};
use crate::harness::*;
use crate::sse::*;
use crate::{Checks, Outcome, Settings, Verdict, mib, ms};

// ---------------------------------------------------------------------------------------
// Case: server killed (-9) and restarted mid-replay

/// What an observer saw across server incarnations: for each IP (one row each), the distinct
/// (boot, event id) pairs it was counted under.
#[derive(Default)]
pub(crate) struct Seen(Mutex<HashMap<String, HashSet<(String, u64)>>>);

impl Seen {
    pub(crate) fn record(&self, message: &Message) {
        let (Some(range), Some(boot)) = (message.covers(), message.boot()) else {
            return;
        };
        let mut seen = self.0.lock().unwrap();
        for (seq, ip) in range.zip(message.ips()) {
            seen.entry(ip).or_default().insert((boot.to_owned(), seq));
        }
    }
    pub(crate) fn distinct(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    /// (rows of `0..rows` never seen, rows counted more than once).
    pub(crate) fn lost_and_doubled(&self, rows: u64) -> (u64, u64) {
        let seen = self.0.lock().unwrap();
        let lost = (0..rows).filter(|&i| !seen.contains_key(&ip_of(i))).count() as u64;
        let doubled = seen.values().filter(|keys| keys.len() > 1).count() as u64;
        (lost, doubled)
    }
}

/// Watches the stream on `port` for as long as `stop` is unset, reconnecting (to whatever
/// server incarnation is there) whenever the stream ends.
pub(crate) fn observe(
    port: u16,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    reconnecting(port, Duration::from_millis(20), stop, move |m| {
        seen.record(m)
    })
}

pub(crate) async fn kill_restart(s: &Settings) -> Outcome {
    let case = "kill-restart";
    let (rows, gap_ms) = s.pick((400, 20), (1500, 10));
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
    let sender = spawn_patient_sender(&csv, port, case);
    // Kill the moment the observer has seen 40% of the rows (between two rows).
    let kill_at = rows as usize * 2 / 5;
    wait_until_seen(
        &seen,
        kill_at,
        Duration::from_secs(60),
        Duration::from_micros(200),
    )
    .await;
    let first_peak = peak_rss_kib(server.pid());
    server.kill();
    let seen_at_kill = seen.distinct();
    let down = Duration::from_millis(1500);
    tokio::time::sleep(down).await;
    let server = start("server", port, &args, case).await;
    let (code, summary) = sender.await.unwrap();
    // Let the observer catch up with the last rows.
    wait_until_seen(
        &seen,
        rows as usize,
        Duration::from_secs(5),
        Duration::from_millis(20),
    )
    .await;
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
pub(crate) fn lossy_proxy(
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

pub(crate) async fn lost_ack(s: &Settings) -> Outcome {
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
// Case: a slow server (the sender keeps its schedule)

/// The source addresses of a POSTed body, in either of the sender's formats (the binary
/// layout by its magic bytes, JSON otherwise); none for a body that is neither.
fn posted_ips(body: &[u8]) -> Vec<String> {
    use traffic::ingest::binary;
    if body.starts_with(binary::MAGIC) {
        return binary::parse(body, usize::MAX)
            .map(|events| events.iter().map(|e| e.ip.to_string()).collect())
            .unwrap_or_default();
    }
    let items = match serde_json::from_slice(body).unwrap_or_default() {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    items
        .iter()
        .map(|item| item["ip"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A stand-in server: answers each POST 202 after `delay` while the first `slow_for` since
/// the first request lasts, at once afterwards; records each row's IP and arrival.
pub(crate) fn slow_stub(
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
                    let items = posted_ips(&request[body_at..]);
                    {
                        let mut arrivals = arrivals.lock().unwrap();
                        for ip in &items {
                            arrivals.push((now, ip.clone()));
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

pub(crate) async fn slow_server(s: &Settings) -> Outcome {
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
    // The schedule as the stub sees it: the earliest (arrival - offset) over all rows, so a
    // late first row cannot make later ones look early. Lateness of the rows due after the
    // slow stretch (plus a request's worth) against it.
    let offset = |i: u64| Duration::from_millis(i * gap_ms);
    let anchor = (0..rows)
        .filter_map(|i| by_ip.get(ip_of(i).as_str())?.1.checked_sub(offset(i)))
        .min();
    let settle = slow_for + 2 * delay;
    let mut late_after: Vec<u64> = Vec::new();
    if let Some(anchor) = anchor {
        for i in (0..rows).filter(|&i| offset(i) >= settle) {
            if let Some((_, at)) = by_ip.get(ip_of(i).as_str()) {
                let due = anchor + offset(i);
                late_after.push(at.saturating_duration_since(due).as_micros() as u64);
            }
        }
    }
    let p50_after = Duration::from_micros(percentile(&mut late_after, 0.5));
    let p90_after = Duration::from_micros(percentile(&mut late_after, 0.9));
    let p99_after = Duration::from_micros(percentile(&mut late_after, 0.99));
    let max_after = Duration::from_micros(late_after.last().copied().unwrap_or(0));
    let reported_max = summary_number(&summary, "max").unwrap_or(0.0);
    let mut checks = Checks::default();
    checks.check(lost == 0, format!("{lost} rows never arrived"));
    checks.check(doubled == 0, format!("{doubled} rows arrived twice"));
    checks.check(code == 0, format!("sender exited {code}"));
    // A schedule shifted by the slow stretch would put every one of these rows at least one
    // delay (400 ms) late; a catch-up burst, many of them. The margins are for a loaded
    // 2-core machine (a starved process can stall 100-200 ms), not for the sender.
    checks.check(
        p50_after <= Duration::from_millis(20) && p90_after <= delay / 4,
        format!(
            "rows after the slow stretch late by p50 {} p90 {} (schedule not kept)",
            ms(p50_after),
            ms(p90_after)
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
            "stub answers after {} for the first {} s, then at once; rows due after {} s: lateness at the stub p50 {} p90 {} p99 {} max {}; sender exit {code}: {summary}",
            ms(delay),
            slow_for.as_secs(),
            settle.as_secs_f64(),
            ms(p50_after),
            ms(p90_after),
            ms(p99_after),
            ms(max_after)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Case: the history across a kill -9 (the server restarts from its store)

/// The course-sized replay against a server with its history in a directory of its own,
/// killed with SIGKILL at a random point and restarted on the same directory; the sender
/// resumes. With `--durable` (every 202 waited for its commit) the store and the counts must
/// equal the file exactly, each row once under one seq. Without it, a kill can lose what
/// was accepted but not yet committed: the case measures that loss and holds it to what the
/// README states (the events of the last publish interval and commit, well under 100 ms of
/// this feed). Either way: no seq given twice, the sequence without gaps, the stream
/// resumed across the restart with no row seen under two ids. With `postgres` the history is
/// in a schema of its own on the database of `TRAFFIC_GLOBE_TEST_DATABASE_URL`
/// (scripts/postgres-test-db), with the default durability.
pub(crate) async fn history_kill(s: &Settings, durable: bool, postgres: bool) -> Outcome {
    let case = match (durable, postgres) {
        (_, true) => "history-kill-postgres",
        (true, false) => "history-kill-durable",
        (false, false) => "history-kill-default",
    };
    let schema = if postgres {
        use history::testing::{SKIP_VAR, TestSchema, URL_VAR};
        let named = std::env::var(URL_VAR).is_ok_and(|url| !url.trim().is_empty());
        let skipped = std::env::var(SKIP_VAR).as_deref() == Ok("1");
        if !named {
            let why = format!(
                "no PostgreSQL: set {URL_VAR} (export {URL_VAR}=$(./scripts/postgres-test-db))"
            );
            return Outcome {
                case,
                offered: "-".to_owned(),
                counted: "-".to_owned(),
                lost: "-".to_owned(),
                doubled: "-".to_owned(),
                peak_rss: "-".to_owned(),
                verdict: if skipped {
                    Verdict::Skipped(format!("{SKIP_VAR}=1"))
                } else {
                    Verdict::Fail(format!("{why}, or {SKIP_VAR}=1 to skip"))
                },
                detail: why,
            };
        }
        TestSchema::create(case)
    } else {
        None
    };
    // 1 row per ms of data time, replayed at 1x: ~1,000 rows/s.
    let (rows, gap_ms) = s.pick((3_000, 1), (10_000, 1));
    let csv = write_csv(case, rows, gap_ms);
    let port = free_port();
    let data_dir = log_dir().join(format!("{case}-data"));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut args = Args::new("server")
        .always("--data-dir", data_dir.display())
        .flag("--idempotency-secs", 300);
    args = match &schema {
        Some(schema) => args.always("--database", schema.url()),
        None => args.always("--store", "sqlite"),
    };
    if durable {
        args = args.switch("--durable");
    }
    let mut first = start("server", port, &args, case).await;
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let observer = observe(port, Arc::clone(&seen), Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sender = spawn_patient_sender(&csv, port, case);
    // A random point between 20% and 80% of the rows.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let kill_at = (rows / 5 + nanos % (rows * 3 / 5)) as usize;
    wait_until_seen(
        &seen,
        kill_at,
        Duration::from_secs(60),
        Duration::from_micros(200),
    )
    .await;
    let first_peak = peak_rss_kib(first.pid());
    first.kill();
    let seen_at_kill = seen.distinct();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted_at = Instant::now();
    let mut second = start("server", port, &args, case).await;
    let ready = restarted_at.elapsed();
    let (code, summary) = sender.await.unwrap();
    wait_until_seen(
        &seen,
        rows as usize,
        Duration::from_secs(5),
        Duration::from_millis(20),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = second
        .get("/api/stats")
        .await
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|stats| stats["total"].as_u64())
        .unwrap_or(0);
    stop.store(true, Relaxed);
    let connections = observer.await.unwrap();
    let peak = first_peak.max(peak_rss_kib(second.pid()));
    let stopped = second.terminate(Duration::from_secs(10)).await;

    // What the store holds, read back directly.
    // (On a thread of its own: PostgreSQL's client must not run on an async thread.)
    let (seqs, per_ip) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let store: Box<dyn history::Store> = match &schema {
                    Some(schema) => Box::new(
                        history::Postgres::open(schema.url(), history::Durability::Process)
                            .unwrap(),
                    ),
                    None => Box::new(
                        history::Sqlite::open(&data_dir, history::Durability::Process).unwrap(),
                    ),
                };
                let mut seqs = Vec::new();
                let mut per_ip: HashMap<String, u64> = HashMap::new();
                store
                    .scan(0, &mut |e| {
                        seqs.push(e.seq);
                        *per_ip.entry(e.event.ip.to_string()).or_default() += 1;
                    })
                    .unwrap();
                (seqs, per_ip)
            })
            .join()
            .unwrap()
    });
    drop(schema);
    let _ = std::fs::remove_dir_all(&data_dir);
    let stored = seqs.len() as u64;
    let gapless = seqs.iter().enumerate().all(|(i, &seq)| seq == i as u64 + 1);
    let stored_twice = per_ip.values().filter(|&&n| n > 1).count() as u64;
    let missing = (0..rows)
        .filter(|&i| !per_ip.contains_key(&ip_of(i)))
        .count() as u64;
    let (_, doubled_on_stream) = seen.lost_and_doubled(rows);

    let mut checks = Checks::default();
    checks.check(code == 0, format!("sender exited {code}"));
    checks.check(gapless, "stored sequence has a gap or a repeat");
    checks.check(
        stored_twice == 0,
        format!("{stored_twice} rows stored twice"),
    );
    checks.check(
        doubled_on_stream == 0,
        format!("{doubled_on_stream} rows seen on the stream under two ids"),
    );
    checks.check(
        total == stored,
        format!("stats total {total} != stored {stored}"),
    );
    checks.check(connections >= 2, "observer never reached the new server");
    checks.check(stopped, "the restarted server did not stop on SIGTERM");
    if durable {
        checks.check(
            missing == 0,
            format!("{missing} rows acknowledged but not stored"),
        );
    } else {
        // The README's window: what arrived in the last publish interval (10 ms) plus one
        // commit; 100 rows is 100 ms of this feed.
        checks.check(
            missing <= 100,
            format!("{missing} rows lost: more than 100 ms of this feed"),
        );
    }
    Outcome {
        case,
        offered: format!("{rows} rows"),
        counted: format!("{stored} stored, stats total {total}"),
        lost: missing.to_string(),
        doubled: stored_twice.to_string(),
        peak_rss: mib(peak),
        verdict: checks.verdict(),
        detail: format!(
            "kill -9 after {seen_at_kill} rows seen; restarted and ready in {}; sender exit \
             {code}: {summary}{}",
            ms(ready),
            args.note()
        ),
    }
}

/// Replays `csv` into the server on `port` with a sender that rides out a restart: batches of
/// 100, each retried (same idempotency key) for up to 30 s, 2 s per attempt.
fn spawn_patient_sender(
    csv: &std::path::Path,
    port: u16,
    case: &'static str,
) -> tokio::task::JoinHandle<(i32, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let csv = csv.to_path_buf();
    tokio::spawn(async move {
        let retries = [
            "--max-batch",
            "100",
            "--give-up-after",
            "30s",
            "--timeout",
            "2s",
        ];
        run_sender(&csv, &url, &retries, case).await
    })
}

/// Waits until the observer has seen `rows` distinct rows, or `within` has passed, looking
/// every `every`.
async fn wait_until_seen(seen: &Seen, rows: usize, within: Duration, every: Duration) {
    let deadline = Instant::now() + within;
    while seen.distinct() < rows && Instant::now() < deadline {
        tokio::time::sleep(every).await;
    }
}
