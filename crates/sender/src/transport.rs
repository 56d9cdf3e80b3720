//! How a batch of events reaches the server, seen from the replay loop: one POST and its
//! outcome, already sorted into "accepted", "retry", "split", "drop one item" and "fatal".
//!
//! Every batch carries an idempotency key, `<run id>:<batch number>`, unique to this run
//! and batch and the same on every retry of the batch, so that a server that already
//! counted a batch whose answer was lost does not count it again (see the README's ingest
//! contract). The HTTP implementation is in [`crate::http`]; tests use fakes.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, SystemTime};

use traffic::Event;

/// Sends batches of events, one request at a time.
pub trait Transport {
    /// Posts `events` (never empty) as one request tagged with the idempotency `key`: a
    /// single object when there is one event, an array otherwise. Returns how many the
    /// server accepted.
    fn post(
        &mut self,
        key: &str,
        events: &[Event],
    ) -> impl Future<Output = Result<u64, PostError>> + Send;

    /// Tells the server a live capture's counters (`POST /api/capture`); by default, does
    /// nothing (fakes and transports without a server).
    fn report_capture(
        &mut self,
        report: &CaptureReport,
    ) -> impl Future<Output = Result<(), PostError>> + Send {
        let _ = report;
        async { Ok(()) }
    }
}

/// A live capture's counters as the server takes them (`POST /api/capture`): absolute
/// values since the capture started, so a lost or repeated report does no harm.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptureReport {
    /// Who reports: the run's identifier.
    pub sensor: String,
    /// The interface captured.
    pub interface: String,
    /// Packets read from the capture (after the filter).
    pub captured: u64,
    /// Packets passed over because they are not IP.
    pub not_ip: u64,
    /// Packets the kernel dropped (capture buffer full).
    pub kernel_dropped: u64,
    /// Packets the interface or its driver dropped.
    pub interface_dropped: u64,
    /// Packets the sender dropped (its queue to the server full).
    pub queue_dropped: u64,
    /// Events the sender could not deliver (gave up, or stopped while the server was away).
    pub not_sent: u64,
    /// The capture has ended: this is its last report.
    pub ended: bool,
}

/// Why a POST did not deliver its batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PostError {
    /// 422: one item of the batch is invalid; nothing of the batch was taken.
    #[error("server rejected item {item:?}: {reason}")]
    Invalid {
        /// Index of the bad item in the batch (0 for a single object), if the server said.
        item: Option<usize>,
        /// The field at fault, if the server said.
        field: Option<String>,
        /// The server's reason.
        reason: String,
    },
    /// 413: the batch is too large for the server; send it in smaller pieces.
    #[error("batch too large for the server")]
    TooLarge,
    /// The server cannot be reached or failed (connection error, time-out, 5xx, 429):
    /// retry the same batch, with the same key, later.
    #[error("{0}")]
    Transient(String),
    /// The server asks for the same batch, with the same key, again after `after`: 409
    /// (its first attempt is still being processed), or a 429/5xx with `Retry-After`.
    #[error("{reason} (retry after {:.1} s)", after.as_secs_f64())]
    RetryAfter {
        /// The server's answer.
        reason: String,
        /// How long to wait at least.
        after: Duration,
    },
    /// 401 or 403: the credentials are missing, unknown, revoked or lack the ingest role;
    /// retrying cannot fix it.
    #[error("{0}")]
    Unauthorized(String),
    /// The server refuses the request in a way retrying cannot fix (404, 415, 400, ...).
    #[error("{0}")]
    Fatal(String),
}

/// A random identifier for one run of the sender: 16 lowercase hex digits.
///
/// From std's per-process random hashing keys (seeded by the OS), mixed with the time and
/// the process id, so no random-number crate is needed.
pub fn new_run_id() -> String {
    let mut hasher = RandomState::new().build_hasher();
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The idempotency key of batch number `batch` of the run `run_id`: `<run_id>:<batch>`.
pub fn batch_key(run_id: &str, batch: u64) -> String {
    format!("{run_id}:{batch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key syntax the server accepts: 1-128 characters from `[A-Za-z0-9._:-]`.
    fn is_valid_key(key: &str) -> bool {
        (1..=128).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    }

    #[test]
    fn run_ids_differ_between_runs_and_keys_fit_the_server_syntax() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        let key = batch_key(&a, u64::MAX);
        assert!(is_valid_key(&key), "{key}");
        assert_eq!(batch_key("abc", 7), "abc:7");
    }
}
