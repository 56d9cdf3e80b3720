//! traffic-globe's history: every accepted event, stored with its sequence number, the time
//! it arrived, its place and all its fields, so a restarted server forgets nothing.
//!
//! [`Store`] is the one seam: the server's writer calls [`Store::append`] with batches in
//! sequence order (one transaction each, together with the idempotency keys of the requests
//! that brought them), and reads everything back on start with [`Store::scan`]. [`Sqlite`]
//! is the embedded implementation, [`Postgres`] the one in a database server; both pass the
//! same [`conformance`] suite. Schema migrations are versioned files under `migrations/`.

mod blocks;
mod codec;
pub mod conformance;
pub mod postgres;
mod query;
pub mod range;
pub mod sqlite;
pub mod testing;

pub use self::postgres::Postgres;
pub use sqlite::Sqlite;
use traffic::{Event, Place};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database said no.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL said no (or could not be reached).
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The data directory could not be prepared.
    #[error("while preparing the data directory {path}: {source}")]
    Directory {
        /// The directory.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A stored row does not read back as an event (damaged or foreign data).
    #[error("stored event {seq} is unreadable: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The store was written by a newer schema than this build knows.
    #[error("the store's schema version {found} is newer than this build's ({known})")]
    TooNew {
        /// Version in the store.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// Another process holds the store as its only writer.
    #[error("{0}")]
    InUse(String),
    /// A batch does not continue the stored sequence.
    #[error("batch starts at seq {got}, the store expects {expected}")]
    OutOfSequence {
        /// The first seq the store can take.
        expected: u64,
        /// The batch's first seq.
        got: u64,
    },
}

/// Results of store operations.
pub type Result<T> = std::result::Result<T, Error>;

/// How an event was placed, as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Located<P> {
    /// By its own coordinates, at this place.
    Event(P),
    /// By its IP address: the place, and the coordinates the IP database gave.
    Ip {
        /// The place.
        place: P,
        /// Degrees north, from the IP database.
        latitude: f64,
        /// Degrees east, from the IP database.
        longitude: f64,
    },
    /// Not placed, for this reason (`private`, `no_database`, ...).
    Unlocated(String),
}

/// An event to store: borrowed from the server's pipeline, so storing copies nothing first.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Its sequence number (consecutive within a batch and across batches).
    pub seq: u64,
    /// Server wall clock at receipt, unix milliseconds.
    pub received_ms: u64,
    /// The event with all its fields.
    pub event: &'a Event,
    /// Where it was placed (the place is stored once, by its key).
    pub located: Located<&'a Place>,
    /// The network (AS) its address belongs to, when the server knows it.
    pub network: Option<Network<'a>>,
}

/// An autonomous system, as stored with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network<'a> {
    /// The AS number.
    pub asn: u32,
    /// Its holder's name (may be empty).
    pub name: &'a str,
}

/// An event read back: the place is its key (see [`Store::places`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its sequence number.
    pub seq: u64,
    /// Server wall clock at receipt, unix milliseconds.
    pub received_ms: u64,
    /// The event with all its fields.
    pub event: Event,
    /// Where it was placed, by place key.
    pub located: Located<u64>,
    /// The network (AS number and name) its address belonged to, when it was known.
    pub network: Option<(u32, String)>,
}

/// The answer remembered for an `Idempotency-Key`, stored with the events it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key.
    pub key: String,
    /// Fingerprint of the request body (keyed by [`Store::secret`]).
    pub fingerprint: u128,
    /// HTTP status of the answer.
    pub status: u16,
    /// Body of the answer.
    pub body: Vec<u8>,
    /// When it was stored, unix milliseconds.
    pub stored_ms: u64,
}

/// Durability of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A commit survives the process being killed (it is in the OS's hands) but not
    /// necessarily a power loss: no fsync per commit.
    Process,
    /// A commit is on disk (fsync) before [`Store::append`] returns.
    Disk,
}

/// A place to keep the history. Calls come from one writer at a time (`&mut self`);
/// implementations need not be shared between threads.
pub trait Store: Send {
    /// Stores `events` (in sequence order, continuing [`Store::last_seq`]) and `keys`, in
    /// one transaction: after a crash either all of them are stored or none.
    fn append(&mut self, events: &[NewEvent<'_>], keys: &[KeyRecord]) -> Result<()>;

    /// The newest stored sequence number, 0 if none.
    fn last_seq(&self) -> Result<u64>;

    /// Every place an event refers to.
    fn places(&self) -> Result<Vec<Place>>;

    /// Visits the stored events with `seq > after`, in sequence order.
    fn scan(&self, after: u64, visit: &mut dyn FnMut(StoredEvent)) -> Result<()>;

    /// The idempotency keys stored at or after `since_ms`, oldest first.
    fn keys_since(&self, since_ms: u64) -> Result<Vec<KeyRecord>>;

    /// Forgets idempotency keys stored before `before_ms`; returns how many.
    fn forget_keys_before(&mut self, before_ms: u64) -> Result<usize>;

    /// Deletes the stored events whose data time (`event.timestamp`) is before `cutoff` (unix seconds) and their
    /// minute rollups; hour rollups are kept. Returns how many events it deleted.
    fn delete_before(&mut self, cutoff: f64) -> Result<u64>;

    /// A way to open read-only handles for range questions, usable while this store writes.
    fn readers(&self) -> Box<dyn range::OpenReader>;

    /// Names this store's sequence: created once with the store, so stream ids stay valid
    /// across restarts and never match another store's.
    fn epoch(&self) -> &str;

    /// A secret created once with the store, keying the idempotency fingerprints so they
    /// compare equal across restarts.
    fn secret(&self) -> [u64; 2];
}

/// 128 random bits from the standard library's per-process random hasher keys (no extra
/// crate for a one-time secret).
fn random_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher, RandomState};
    let word = |salt: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(salt);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    };
    (u128::from(word(1)) << 64) | u128::from(word(2))
}
