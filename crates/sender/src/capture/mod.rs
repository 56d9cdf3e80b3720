//! `sender capture`: live traffic from a network interface, sent to the server as it arrives.
//!
//! [`live`] reads the interface on a thread of its own and turns packets into events (per
//! packet, or per flow and second: [`flows`]); this module sends them: whatever has arrived
//! goes in the next POST (up to `max_batch`), one request at a time, each under an
//! idempotency key `<run id>:<n>`, retried as the replay retries (backoff, `Retry-After`,
//! 413 split, 422 drops the one event named). Every second the capture's counters (packets,
//! kernel, interface and queue drops) go to the server (`POST /api/capture`) and, every few
//! seconds, to the log; the last report and the summary come after the stop.
//!
//! Stopping (SIGINT/SIGTERM): the capture thread stops reading, finishes its flows and hands
//! them over; everything captured is sent before the sender exits (up to `--give-up-after`
//! if the server is away).

pub mod flows;
pub mod live;

use std::collections::VecDeque;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use traffic::Event;

use crate::config::CaptureArgs;
use crate::http::HttpTransport;
use crate::replay::ReplayError;
use crate::summary::Summary;
use crate::transport::{CaptureReport, PostError, Transport, batch_key, new_run_id};
use live::{Counters, Drops, LiveOptions};

/// Chunks of events the queue from the capture thread holds (each up to 1024 events).
const QUEUE_CHUNKS: usize = 256;
/// How often the counters go to the server.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often progress is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// Runs `sender capture` until `shutdown`; prints the summary line on stderr.
pub async fn run(args: CaptureArgs, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let token = args.token.as_ref().map(|t| t.0.as_str());
    let transport = HttpTransport::new(&args.url, args.timeout, token)
        .with_context(|| format!("while preparing to post to {}", args.url))?
        .with_format(args.body.into());
    let filter = with_own_traffic_excluded(args.filter.as_deref(), &args.url);
    let options = LiveOptions {
        interface: args.interface.clone(),
        filter: Some(filter.clone()),
        direction: args.direction,
        per: args.per,
        buffer_bytes: i32::from(args.buffer_mib) << 20,
    };
    let capture = live::open(options).map_err(anyhow::Error::msg)?;
    info!(
        interface = %args.interface,
        filter = %filter,
        per = ?args.per,
        direction = ?args.direction,
        endpoint = %transport.endpoint(),
        "capturing"
    );
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (queue, events) = mpsc::channel(QUEUE_CHUNKS);
    let thread = {
        let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture.run(queue, counters, stop))
            .context("while starting the capture thread")?
    };
    let stopper = {
        let (shutdown, stop) = (shutdown.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let sending = Sending {
        transport,
        run_id: new_run_id(),
        interface: args.interface.clone(),
        max_batch: args.max_batch.get(),
        give_up_after: args.give_up_after,
        quiet: args.quiet,
    };
    let (summary, drops, result) = sending.run(events, &counters).await;
    // The capture ends with the sending side: if sending failed, stop capturing too.
    stop.store(true, Ordering::Relaxed);
    stopper.abort();
    let captured = match thread.join() {
        Ok(r) => r,
        Err(_) => Err("the capture thread panicked".into()),
    };
    eprintln!("sender: {summary}; {}", describe(&drops));
    result.context("while sending the capture")?;
    captured.map_err(anyhow::Error::msg)?;
    Ok(summary)
}

/// The counters as the summary's words.
fn describe(d: &Drops) -> String {
    format!(
        "capture: packets {}, not IP {}, dropped by the kernel {}, by the interface {}, by the \
         sender's queue {}",
        d.captured, d.not_ip, d.kernel_dropped, d.interface_dropped, d.queue_dropped
    )
}

/// `filter` with the sender's own requests to the server left out (`not (tcp and host H
/// and port P)` for each address of the URL's host), so that capturing the interface the
/// server is reached through does not capture, and send, its own sending.
pub fn with_own_traffic_excluded(filter: Option<&str>, url: &reqwest::Url) -> String {
    let port = url.port_or_known_default().unwrap_or(80);
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addresses: Vec<String> = (host, port)
        .to_socket_addrs()
        .map(|a| a.map(|a| a.ip().to_string()).collect())
        .unwrap_or_default();
    addresses.sort();
    addresses.dedup();
    let own = addresses
        .iter()
        .map(|ip| format!("not (tcp and host {ip} and port {port})"))
        .collect::<Vec<_>>()
        .join(" and ");
    match (
        filter.map(str::trim).filter(|f| !f.is_empty()),
        own.is_empty(),
    ) {
        (Some(f), false) => format!("({f}) and {own}"),
        (Some(f), true) => f.to_owned(),
        (None, false) => own,
        (None, true) => String::new(),
    }
}

/// The sending side (see the module documentation).
struct Sending<T> {
    transport: T,
    run_id: String,
    interface: String,
    max_batch: usize,
    give_up_after: Duration,
    quiet: bool,
}

impl<T: Transport> Sending<T> {
    /// Sends what arrives on `events` until the capture thread closes it (after the stop),
    /// or delivery fails for good. Returns the summary, the last counters and the outcome.
    async fn run(
        mut self,
        mut events: mpsc::Receiver<Vec<Event>>,
        counters: &Counters,
    ) -> (Summary, Drops, Result<(), ReplayError>) {
        let started = Instant::now();
        let mut summary = Summary {
            passes: 1,
            unpaced: true,
            ..Summary::default()
        };
        let mut pending: VecDeque<Event> = VecDeque::new();
        let mut batches = 0u64;
        let mut report = interval(REPORT_EVERY);
        report.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut logged = Instant::now();
        let mut open = true;
        let result = loop {
            if pending.is_empty() {
                if !open {
                    break Ok(());
                }
                tokio::select! {
                    chunk = events.recv() => match chunk {
                        Some(chunk) => pending.extend(chunk),
                        None => open = false,
                    },
                    _ = report.tick() => {
                        self.report(counters, &summary, false).await;
                        if !self.quiet && logged.elapsed() >= LOG_EVERY {
                            logged = Instant::now();
                            log_progress(&summary, &counters.read());
                        }
                    }
                }
            }
            // Whatever else has arrived goes in the same POST.
            while pending.len() < self.max_batch {
                match events.try_recv() {
                    Ok(chunk) => pending.extend(chunk),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if pending.is_empty() {
                continue;
            }
            let take = pending.len().min(self.max_batch);
            let batch: Vec<Event> = pending.drain(..take).collect();
            summary.rows_read += batch.len() as u64;
            batches += 1;
            let key = batch_key(&self.run_id, batches);
            if let Err(e) = self.deliver(key, batch, &mut summary, &mut batches).await {
                break Err(e);
            }
        };
        if result.is_err() {
            // What is queued and what the thread still hands over is not sent.
            events.close();
            let mut rest = pending.len() as u64;
            while let Some(chunk) = events.recv().await {
                rest += chunk.len() as u64;
            }
            summary.rows_read += rest;
            summary.not_sent += rest;
        } else {
            // The thread has ended (the queue closed): its counters are final.
        }
        let drops = counters.read();
        summary.dropped = drops.kernel_dropped + drops.interface_dropped + drops.queue_dropped;
        summary.elapsed = started.elapsed();
        self.report(counters, &summary, true).await;
        (summary, drops, result)
    }

    /// Sends the counters to the server; a failure is logged, the next report repeats them.
    async fn report(&mut self, counters: &Counters, summary: &Summary, ended: bool) {
        let d = counters.read();
        let report = CaptureReport {
            sensor: self.run_id.clone(),
            interface: self.interface.clone(),
            captured: d.captured,
            not_ip: d.not_ip,
            kernel_dropped: d.kernel_dropped,
            interface_dropped: d.interface_dropped,
            queue_dropped: d.queue_dropped,
            not_sent: summary.not_sent,
            ended,
        };
        if let Err(e) = self.transport.report_capture(&report).await {
            debug!(error = %e, "capture counters not reported (the next report repeats them)");
            if ended {
                warn!(error = %e, "the capture's last counters could not be reported to the server");
            }
        }
    }

    /// Delivers one batch: retried under its key, split on 413, one event dropped per 422.
    async fn deliver(
        &mut self,
        key: String,
        events: Vec<Event>,
        summary: &mut Summary,
        batches: &mut u64,
    ) -> Result<(), ReplayError> {
        let mut parts = VecDeque::from([(key, events)]);
        let mut backoff = BACKOFF_START;
        let mut failing_since: Option<Instant> = None;
        while let Some((key, events)) = parts.front_mut() {
            if events.is_empty() {
                parts.pop_front();
                continue;
            }
            let count = events.len();
            let answer = self.transport.post(key, events).await;
            let (reason, at_least) = match answer {
                Ok(accepted) => {
                    summary.accepted += accepted;
                    summary.posts += 1;
                    parts.pop_front();
                    if failing_since.take().is_some() {
                        info!("server reachable again");
                    }
                    backoff = BACKOFF_START;
                    continue;
                }
                Err(PostError::Invalid {
                    item: Some(item),
                    field,
                    reason,
                }) if item < count => {
                    let event = events.remove(item);
                    warn!(ip = %event.ip, field = field.as_deref().unwrap_or("?"), reason = %reason, "event rejected by server");
                    summary.posts += 1;
                    summary.rejected += 1;
                    *batches += 1;
                    *key = batch_key(&self.run_id, *batches);
                    continue;
                }
                Err(PostError::TooLarge) if count > 1 => {
                    let tail = events.split_off(count / 2);
                    *batches += 2;
                    *key = batch_key(&self.run_id, *batches - 1);
                    parts.insert(1, (batch_key(&self.run_id, *batches), tail));
                    continue;
                }
                Err(PostError::Unauthorized(message)) => {
                    summary.not_sent += parts.iter().map(|p| p.1.len() as u64).sum::<u64>();
                    return Err(ReplayError::Unauthorized(message));
                }
                Err(PostError::Transient(reason)) => (reason, Duration::ZERO),
                Err(PostError::RetryAfter { reason, after }) => (reason, after),
                Err(other) => {
                    summary.not_sent += parts.iter().map(|p| p.1.len() as u64).sum::<u64>();
                    return Err(ReplayError::Refused(other.to_string()));
                }
            };
            let now = Instant::now();
            let since = *failing_since.get_or_insert(now);
            if now.duration_since(since) >= self.give_up_after {
                let undelivered = parts.iter().map(|p| p.1.len() as u64).sum::<u64>();
                summary.not_sent += undelivered;
                return Err(ReplayError::GaveUp {
                    failing_for: now - since,
                    last_error: reason,
                    undelivered,
                });
            }
            if summary.retries == 0 || backoff == BACKOFF_START {
                warn!(error = %reason, "POST failed, retrying with the same key");
            }
            summary.retries += 1;
            sleep(backoff.max(at_least)).await;
            backoff = (backoff * 2).min(BACKOFF_CAP);
        }
        Ok(())
    }
}

fn log_progress(summary: &Summary, d: &Drops) {
    info!(
        packets = d.captured,
        events_sent = summary.accepted,
        kernel_dropped = d.kernel_dropped,
        interface_dropped = d.interface_dropped,
        queue_dropped = d.queue_dropped,
        retries = summary.retries,
        "capture progress"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn the_senders_own_requests_are_left_out_of_the_filter() {
        let url = reqwest::Url::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(
            with_own_traffic_excluded(None, &url),
            "not (tcp and host 127.0.0.1 and port 3000)"
        );
        assert_eq!(
            with_own_traffic_excluded(Some("udp port 53"), &url),
            "(udp port 53) and not (tcp and host 127.0.0.1 and port 3000)"
        );
        let v6 = reqwest::Url::parse("http://[::1]/").unwrap();
        assert_eq!(
            with_own_traffic_excluded(None, &v6),
            "not (tcp and host ::1 and port 80)"
        );
    }

    /// Posts seen (`key:count`), posts still to fail, reports seen.
    type Seen = (Vec<String>, usize, Vec<CaptureReport>);

    /// Counts what it is sent; fails the first posts it is told to.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Seen>>);

    impl Transport for Fake {
        async fn post(&mut self, key: &str, events: &[Event]) -> Result<u64, PostError> {
            let mut s = self.0.lock().unwrap();
            if s.1 > 0 {
                s.1 -= 1;
                return Err(PostError::Transient("503".into()));
            }
            s.0.push(format!("{key}:{}", events.len()));
            Ok(events.len() as u64)
        }

        async fn report_capture(&mut self, report: &CaptureReport) -> Result<(), PostError> {
            self.0.lock().unwrap().2.push(report.clone());
            Ok(())
        }
    }

    fn sending(fake: &Fake, max_batch: usize) -> Sending<Fake> {
        Sending {
            transport: fake.clone(),
            run_id: "run".into(),
            interface: "lo".into(),
            max_batch,
            give_up_after: Duration::from_secs(60),
            quiet: true,
        }
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new([127, 0, 0, 1].into(), i as f64, false))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn everything_handed_over_before_the_queue_closes_is_sent_and_reported_at_the_end() {
        let fake = Fake::default();
        fake.0.lock().unwrap().1 = 1; // the first POST fails once
        let (tx, rx) = mpsc::channel(8);
        tx.send(events(3)).await.unwrap();
        tx.send(events(4)).await.unwrap();
        drop(tx); // the capture stopped: its last chunks are in the queue
        let counters = Counters::default();
        counters.captured.store(7, Ordering::Relaxed);
        counters.kernel_dropped.store(2, Ordering::Relaxed);
        let (summary, drops, result) = sending(&fake, 5).run(rx, &counters).await;
        result.unwrap();
        let s = fake.0.lock().unwrap();
        assert_eq!(
            s.0,
            ["run:1:5", "run:2:2"],
            "batches of at most 5, retried under their key"
        );
        assert_eq!((summary.accepted, summary.retries), (7, 1));
        assert_eq!(summary.dropped, 2, "kernel drops make the run incomplete");
        assert!(!summary.all_accepted());
        assert_eq!(drops.kernel_dropped, 2);
        let last = s.2.last().unwrap();
        assert!(last.ended);
        assert_eq!((last.captured, last.kernel_dropped), (7, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_away_too_long_is_given_up_on_and_the_rest_counted_not_sent() {
        let fake = Fake::default();
        fake.0.lock().unwrap().1 = usize::MAX;
        let (tx, rx) = mpsc::channel(8);
        tx.send(events(3)).await.unwrap();
        drop(tx);
        let mut s = sending(&fake, 10);
        s.give_up_after = Duration::from_secs(5);
        let (summary, _, result) = s.run(rx, &Counters::default()).await;
        assert!(matches!(
            result,
            Err(ReplayError::GaveUp { undelivered: 3, .. })
        ));
        assert_eq!((summary.rows_read, summary.not_sent), (3, 3));
        assert_eq!(fake.0.lock().unwrap().2.last().unwrap().not_sent, 3);
    }
}
