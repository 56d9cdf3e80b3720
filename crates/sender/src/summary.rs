//! What a replay did ([`Summary`]), its one-line report, and what it means for the exit
//! status ([`Verdict`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Exit statuses of the `sender` binary (documented in its `--help` and the README).
pub mod exit {
    /// Every row of the file was read and accepted by the server.
    pub const COMPLETE: u8 = 0;
    /// The replay failed or stopped early, or the server did not accept every usable row.
    pub const FAILED: u8 = 1;
    /// Bad command line (clap's own status).
    pub const USAGE: u8 = 2;
    /// The replay finished and every usable row was accepted, but some rows of the file
    /// were skipped as unreadable (each named with its line in a warning).
    pub const ROWS_SKIPPED: u8 = 3;
    /// The server refused the credentials (401: no, unknown or revoked `--token`; 403: the
    /// token may not ingest); the sender stopped at once.
    pub const UNAUTHORIZED: u8 = 4;
}

/// What a finished replay amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every row read and accepted.
    Complete,
    /// Every usable row accepted, but this many rows were skipped as unreadable.
    RowsSkipped(u64),
    /// Not every usable row was accepted (rejected, not sent, stopped early).
    Incomplete,
}

impl Verdict {
    /// The process exit status for this verdict (see [`exit`]).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Complete => exit::COMPLETE,
            Verdict::RowsSkipped(_) => exit::ROWS_SKIPPED,
            Verdict::Incomplete => exit::FAILED,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Complete => f.write_str("complete, every row delivered"),
            Verdict::RowsSkipped(n) => write!(
                f,
                "INCOMPLETE, {n} unreadable row{} skipped (every other row delivered)",
                if *n == 1 { "" } else { "s" }
            ),
            Verdict::Incomplete => f.write_str("INCOMPLETE, not every usable row delivered"),
        }
    }
}

/// What a replay did; its `Display` is the one-line final summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Usable rows read from the file (all passes).
    pub rows_read: u64,
    /// Rows the server accepted.
    pub accepted: u64,
    /// Rows the server rejected as invalid (422), reported one by one.
    pub rejected: u64,
    /// Unusable rows skipped, by reason (the field at fault, or `malformed`).
    pub skipped: BTreeMap<String, u64>,
    /// Rows with a timestamp earlier than an already scheduled one, sent at once.
    pub out_of_order: u64,
    /// Gaps in data time shortened to `--max-gap`.
    pub gaps_shortened: u64,
    /// Waits for a next row longer than [`crate::replay::LONG_WAIT`], each warned about.
    pub long_waits: u64,
    /// Successful or rejecting POSTs.
    pub posts: u64,
    /// POSTs that failed and were retried.
    pub retries: u64,
    /// Usable rows not delivered because the replay was stopped or gave up.
    pub not_sent: u64,
    /// Packets of a live capture lost before they became rows (dropped by the kernel, the
    /// interface or the sender's own queue); any makes the run incomplete.
    pub dropped: u64,
    /// Passes over the file started (more than 1 only with looping).
    pub passes: u32,
    /// Per-row lateness: send instant minus scheduled instant.
    pub lateness: Lateness,
    /// Time from the first row's due instant to the end.
    pub elapsed: Duration,
    /// Lateness of the last row delivered: the drift at the end of the schedule.
    pub drift: Option<Duration>,
    /// The replay was stopped by the shutdown token.
    pub cancelled: bool,
    /// Sent as fast as the server took them (`--speed max`): the summary gives lines/s.
    pub unpaced: bool,
}

/// Percentiles of per-row lateness.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lateness {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Summary {
    /// Rows skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// True when every usable row read was accepted and nothing was left unsent (rows
    /// skipped as unreadable are not usable rows; see [`Summary::verdict`]).
    pub fn all_accepted(&self) -> bool {
        !self.cancelled
            && self.not_sent == 0
            && self.dropped == 0
            && self.rejected == 0
            && self.accepted == self.rows_read
    }

    /// Lines read (usable and skipped) per second of `elapsed`.
    pub fn lines_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.rows_read + self.skipped_total()) as f64 / secs
        } else {
            0.0
        }
    }

    /// Whether the replay delivered the whole file, all but its unreadable rows, or less.
    pub fn verdict(&self) -> Verdict {
        match (self.all_accepted(), self.skipped_total()) {
            (false, _) => Verdict::Incomplete,
            (true, 0) => Verdict::Complete,
            (true, skipped) => Verdict::RowsSkipped(skipped),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{}: rows read {}, sent {} (accepted {}), skipped {}",
            self.verdict(),
            self.rows_read,
            self.accepted + self.rejected,
            self.accepted,
            self.skipped_total()
        )?;
        if !self.skipped.is_empty() {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            write!(f, " ({})", reasons.join(", "))?;
        }
        if self.unpaced {
            // No schedule, so no out of order, lateness or drift: the rate instead.
            return write!(
                f,
                ", rejected {}, not sent {}{}, posts {}, retries {}, elapsed {:.3} s, {:.0} lines/s{}",
                self.rejected,
                self.not_sent,
                if self.dropped > 0 {
                    format!(", DROPPED {} packets", self.dropped)
                } else {
                    String::new()
                },
                self.posts,
                self.retries,
                self.elapsed.as_secs_f64(),
                self.lines_per_second(),
                if self.cancelled {
                    ", stopped early"
                } else {
                    ""
                }
            );
        }
        write!(
            f,
            ", rejected {}, out of order {}, not sent {}, posts {}, retries {}, passes {}, \
             lateness p50 {:.3} ms p99 {:.3} ms max {:.3} ms, elapsed {:.3} s, drift at end {}",
            self.rejected,
            self.out_of_order,
            self.not_sent,
            self.posts,
            self.retries,
            self.passes,
            ms(self.lateness.p50),
            ms(self.lateness.p99),
            ms(self.lateness.max),
            self.elapsed.as_secs_f64(),
            self.drift
                .map_or_else(|| "n/a".to_owned(), |d| format!("{:.3} ms", ms(d))),
        )?;
        if self.gaps_shortened > 0 {
            write!(f, ", gaps shortened {}", self.gaps_shortened)?;
        }
        if self.long_waits > 0 {
            write!(f, ", long waits {}", self.long_waits)?;
        }
        if self.cancelled {
            f.write_str(", stopped early")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(rows: u64) -> Summary {
        Summary {
            rows_read: rows,
            accepted: rows,
            posts: 1,
            passes: 1,
            ..Summary::default()
        }
    }

    #[test]
    fn a_replay_that_skipped_rows_is_not_complete_and_says_so_first() {
        let complete = delivered(3);
        assert_eq!(complete.verdict(), Verdict::Complete);
        assert_eq!(complete.verdict().exit_code(), 0);
        assert!(
            complete.to_string().starts_with(
                "complete, every row delivered: rows read 3, sent 3 (accepted 3), skipped 0,"
            ),
            "{complete}"
        );

        let mut skipped = delivered(3);
        skipped.skipped =
            BTreeMap::from([("malformed".to_owned(), 1), ("timestamp".to_owned(), 1)]);
        assert_eq!(skipped.verdict(), Verdict::RowsSkipped(2));
        assert_eq!(skipped.verdict().exit_code(), exit::ROWS_SKIPPED);
        assert!(skipped.all_accepted(), "every usable row was accepted");
        assert!(
            skipped.to_string().starts_with(
                "INCOMPLETE, 2 unreadable rows skipped (every other row delivered): \
                 rows read 3, sent 3 (accepted 3), skipped 2 (malformed 1, timestamp 1),"
            ),
            "{skipped}"
        );
    }

    #[test]
    fn an_unpaced_import_reports_its_rate_and_no_pacing_figures() {
        let mut import = delivered(3000);
        import.skipped = BTreeMap::from([("malformed".to_owned(), 1000)]);
        import.unpaced = true;
        import.elapsed = Duration::from_millis(500);
        let text = import.to_string();
        assert!(
            text.ends_with("posts 1, retries 0, elapsed 0.500 s, 8000 lines/s"),
            "{text}"
        );
        assert!(!text.contains("lateness"), "{text}");
        assert!(!text.contains("out of order"), "{text}");
    }

    #[test]
    fn a_replay_that_lost_usable_rows_fails_whether_or_not_it_skipped_any() {
        let mut rejected = delivered(3);
        rejected.accepted = 2;
        rejected.rejected = 1;
        rejected.skipped = BTreeMap::from([("ip".to_owned(), 1)]);
        assert_eq!(rejected.verdict(), Verdict::Incomplete);
        assert_eq!(rejected.verdict().exit_code(), exit::FAILED);
        assert!(
            rejected
                .to_string()
                .starts_with("INCOMPLETE, not every usable row delivered: ")
        );

        let mut stopped = delivered(3);
        stopped.cancelled = true;
        assert_eq!(stopped.verdict(), Verdict::Incomplete);
    }
}
