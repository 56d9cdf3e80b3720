//! How a batch of events reaches the server, seen from the replay loop: one POST and its
//! outcome, already sorted into "accepted", "retry", "split", "drop one item" and "fatal".
//!
//! The HTTP implementation is in [`crate::http`]; tests use fakes.

use std::future::Future;

use traffic::Event;

/// Sends batches of events, one request at a time.
pub trait Transport {
    /// Posts `events` (never empty) as one request: a single object when there is one event,
    /// an array otherwise. Returns how many the server accepted.
    fn post(&mut self, events: &[Event]) -> impl Future<Output = Result<u64, PostError>> + Send;
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
    /// retry the same rows later.
    #[error("{0}")]
    Transient(String),
    /// The server refuses the request in a way retrying cannot fix (404, 415, 400, ...).
    #[error("{0}")]
    Fatal(String),
}
