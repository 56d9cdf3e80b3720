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

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod replay;
mod serving;
mod sse;

use std::time::{Duration, Instant};

/// KiB in a MiB (memory is read in KiB from /proc).
pub(crate) const MIB: u64 = 1024;

// ---------------------------------------------------------------------------------------
// Settings

pub(crate) struct Settings {
    quick: bool,
    only: Option<Vec<String>>,
}

impl Settings {
    pub(crate) fn from_args() -> Self {
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

    pub(crate) fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    }

    /// `quick` in quick mode, else `full`.
    pub(crate) fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

// ---------------------------------------------------------------------------------------
// Outcomes

pub(crate) enum Verdict {
    Pass,
    Fail(String),
    /// Not run, for this reason (what it needs is not there, and it was asked to skip).
    Skipped(String),
}

pub(crate) struct Outcome {
    pub(crate) case: &'static str,
    pub(crate) offered: String,
    pub(crate) counted: String,
    pub(crate) lost: String,
    pub(crate) doubled: String,
    pub(crate) peak_rss: String,
    pub(crate) verdict: Verdict,
    pub(crate) detail: String,
}

impl Outcome {
    pub(crate) fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Fail(_))
    }

    pub(crate) fn verdict_text(&self) -> String {
        match &self.verdict {
            Verdict::Pass => "PASS".to_owned(),
            Verdict::Fail(why) => format!("FAIL: {why}"),
            Verdict::Skipped(why) => format!("SKIPPED: {why}"),
        }
    }
}

/// Collects the reasons a case fails; no reasons, a pass.
#[derive(Default)]
pub(crate) struct Checks(Vec<String>);

impl Checks {
    pub(crate) fn check(&mut self, ok: bool, why: impl Into<String>) {
        if !ok {
            self.0.push(why.into());
        }
    }
    pub(crate) fn verdict(self) -> Verdict {
        if self.0.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(self.0.join("; "))
        }
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------

pub(crate) fn main() {
    let settings = Settings::from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "fault suite ({} mode); process logs in {}",
        if settings.quick { "quick" } else { "full" },
        harness::log_dir().display()
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    runtime.block_on(async {
        type Case = for<'a> fn(
            &'a Settings,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + 'a>>;
        let cases: [(&str, Case); 11] = [
            ("kill-restart", |s| Box::pin(replay::kill_restart(s))),
            ("lost-202", |s| Box::pin(replay::lost_ack(s))),
            ("web-restart", |s| Box::pin(serving::web_restart(s))),
            ("stalled-clients", |s| Box::pin(serving::stalled(s))),
            ("half-requests", |s| Box::pin(serving::half_requests(s))),
            ("oversized-burst", |s| Box::pin(serving::oversized(s))),
            ("slow-server", |s| Box::pin(replay::slow_server(s))),
            ("memory-limit", |s| Box::pin(serving::memory_limit(s))),
            ("history-kill-durable", |s| {
                Box::pin(replay::history_kill(s, true, false))
            }),
            ("history-kill-default", |s| {
                Box::pin(replay::history_kill(s, false, false))
            }),
            ("history-kill-postgres", |s| {
                Box::pin(replay::history_kill(s, false, true))
            }),
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
