//! Progress while replaying: a bar when stderr is a terminal, otherwise an `info!` line every
//! few seconds, or nothing.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use tracing::info;

use crate::replay::Summary;

/// How often the plain progress line is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// A progress reporter, told about every delivered batch.
#[derive(Debug)]
pub struct Progress(Mode);

#[derive(Debug)]
enum Mode {
    Off,
    Bar(ProgressBar),
    Log {
        started: Instant,
        last: Instant,
        last_sent: u64,
    },
}

impl Progress {
    /// Reports nothing.
    pub fn off() -> Self {
        Self(Mode::Off)
    }

    /// A bar on stderr, out of `total` rows when known.
    pub fn bar(total: Option<u64>) -> Self {
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} rows {per_sec} ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{elapsed_precise} {spinner} {human_pos} rows {per_sec} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Self(Mode::Bar(bar))
    }

    /// A plain `info!` line every 5 seconds.
    pub fn log() -> Self {
        let now = Instant::now();
        Self(Mode::Log {
            started: now,
            last: now,
            last_sent: 0,
        })
    }

    /// Rows were delivered (accepted or rejected).
    pub fn on_delivered(&mut self, rows: u64, summary: &Summary) {
        match &mut self.0 {
            Mode::Off => {}
            Mode::Bar(bar) => {
                bar.inc(rows);
                if summary.rejected > 0 || summary.retries > 0 {
                    bar.set_message(format!(
                        "rejected {} retries {}",
                        summary.rejected, summary.retries
                    ));
                }
            }
            Mode::Log {
                started,
                last,
                last_sent,
            } => {
                let now = Instant::now();
                if now.duration_since(*last) < LOG_EVERY {
                    return;
                }
                let sent = summary.accepted + summary.rejected;
                let rate = (sent - *last_sent) as f64 / now.duration_since(*last).as_secs_f64();
                info!(
                    sent,
                    rejected = summary.rejected,
                    retries = summary.retries,
                    rows_per_s = rate.round(),
                    elapsed_s = now.duration_since(*started).as_secs(),
                    late_ms = summary.drift.map_or(0, |d| d.as_micros()) as f64 / 1e3,
                    "progress"
                );
                *last = now;
                *last_sent = sent;
            }
        }
    }

    /// Removes the bar, if any.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
