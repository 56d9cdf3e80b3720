//! Idempotent ingest: a POST that carries an `Idempotency-Key` is counted at most once.
//!
//! A sender that lost the answer to a POST (timeout, reset, a proxy restart) cannot know
//! whether the batch was counted; it resends with the same key, and the server answers with
//! the outcome it remembered instead of counting again. The store remembers the most recent
//! keys, bounded both by count and by age, so its memory is bounded whatever clients send:
//! at most `max_keys` entries of a key (<= 128 bytes), a 128-bit body fingerprint and a
//! remembered answer (<= [`MAX_REMEMBERED_BODY`] bytes).
//!
//! Requests without the header never reach this module: no lock, no allocation.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher, RandomState};

use foldhash::quality::FixedState;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use tokio::time::Instant;

/// The request header that makes a POST idempotent.
pub const HEADER: &str = "idempotency-key";
/// The response header on an answer that was remembered, not computed again.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 128;
/// Largest answer body remembered. A refusal with a longer message (one that quotes a long
/// value) is not remembered: a repeat is refused again the same way, counting nothing.
pub const MAX_REMEMBERED_BODY: usize = 512;

/// Checks a key: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`.
pub fn valid_key(key: &[u8]) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// What the store says about a request with a key.
#[derive(Debug)]
pub enum Claim {
    /// First time seen (or forgotten): process it, then [`Reservation::complete`] it.
    Fresh(Reservation),
    /// Seen and completed: answer this again.
    Replay(StatusCode, Bytes),
    /// Seen, still being processed.
    InFlight,
    /// Seen with a different body.
    Mismatch,
}

/// A remembered key for a request being processed. Dropped without being completed (the
/// request failed with a 5xx, or was cancelled), the key is forgotten so a retry is fresh.
#[derive(Debug)]
pub struct Reservation {
    store: Arc<Store>,
    key: Arc<str>,
    generation: u64,
    completed: bool,
}

impl Reservation {
    /// Remembers the final answer to this request, if it is one worth remembering: the
    /// 202, or a 4xx about the body (small enough). Anything else forgets the key.
    pub fn complete(mut self, status: StatusCode, body: &Bytes) {
        let remember = status == StatusCode::ACCEPTED
            || (status.is_client_error() && body.len() <= MAX_REMEMBERED_BODY);
        if !remember {
            return; // Drop forgets the key.
        }
        self.completed = true;
        let mut inner = self.store.lock();
        if let Some(entry) = inner.map.get_mut(&self.key)
            && entry.generation == self.generation
        {
            entry.outcome = Some((status, body.clone()));
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let mut inner = self.store.lock();
        if inner
            .map
            .get(&self.key)
            .is_some_and(|entry| entry.generation == self.generation)
        {
            inner.map.remove(&self.key);
        }
    }
}

/// Recent keys and the answers given to them.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    max_keys: usize,
    max_age: Duration,
    /// Keyed by the history's secret when there is one, so fingerprints taken before a
    /// restart still match; by random keys of this process otherwise.
    hashers: (FixedState, FixedState),
    replayed: AtomicU64,
    in_flight: AtomicU64,
    mismatched: AtomicU64,
    invalid: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Arc<str>, Entry>,
    /// Keys in the order they were first seen, for eviction by age and count. May hold keys
    /// already forgotten (their generation no longer matches); its length bounds the map's.
    order: VecDeque<(Arc<str>, Instant, u64)>,
    next_generation: u64,
}

#[derive(Debug)]
struct Entry {
    fingerprint: u128,
    generation: u64,
    /// `None` while the first request is in flight.
    outcome: Option<(StatusCode, Bytes)>,
}

impl Store {
    /// A store remembering at most `max_keys` keys, each for at most `max_age`.
    pub fn new(max_keys: usize, max_age: Duration) -> Arc<Self> {
        let random = || RandomState::new().hash_one(0u8);
        Self::with_secret(max_keys, max_age, [random(), random()])
    }

    /// A store whose fingerprints are keyed by `secret` (the history's: the same in every
    /// run on the same data, so remembered keys can be restored).
    pub fn with_secret(max_keys: usize, max_age: Duration, secret: [u64; 2]) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::default(),
            max_keys,
            max_age,
            hashers: (
                FixedState::with_seed(secret[0]),
                FixedState::with_seed(secret[1]),
            ),
            replayed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            mismatched: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
        })
    }

    /// A 128-bit fingerprint of `body` under this process's random keys (a client cannot
    /// aim a collision at it).
    pub fn fingerprint(&self, body: &[u8]) -> u128 {
        let hash = |state: &FixedState| {
            let mut hasher = state.build_hasher();
            hasher.write(body);
            hasher.finish()
        };
        (u128::from(hash(&self.hashers.0)) << 64) | u128::from(hash(&self.hashers.1))
    }

    /// Looks `key` up and, if it is new, remembers it as in flight.
    pub fn claim(self: &Arc<Self>, key: &str, fingerprint: u128) -> Claim {
        let now = Instant::now();
        let mut inner = self.lock();
        self.evict(&mut inner, now);
        if let Some(entry) = inner.map.get(key) {
            let claim = if entry.fingerprint != fingerprint {
                self.mismatched.fetch_add(1, Relaxed);
                Claim::Mismatch
            } else if let Some((status, body)) = &entry.outcome {
                self.replayed.fetch_add(1, Relaxed);
                Claim::Replay(*status, body.clone())
            } else {
                self.in_flight.fetch_add(1, Relaxed);
                Claim::InFlight
            };
            return claim;
        }
        if self.max_keys == 0 {
            // Remembering nothing: every request is fresh and nothing is kept.
            return Claim::Fresh(self.reservation(Arc::from(key), u64::MAX));
        }
        while inner.order.len() >= self.max_keys {
            Self::pop_oldest(&mut inner);
        }
        let key: Arc<str> = Arc::from(key);
        let generation = Self::insert(&mut inner, Arc::clone(&key), fingerprint, None, now);
        Claim::Fresh(self.reservation(key, generation))
    }

    /// Remembers a completed request again (restoring from the history), as if it had been
    /// answered `age` ago; older than the store's age limit, it is not remembered.
    pub fn restore(
        &self,
        key: &str,
        fingerprint: u128,
        status: StatusCode,
        body: Bytes,
        age: Duration,
    ) {
        if self.max_keys == 0 || age >= self.max_age {
            return;
        }
        let now = Instant::now();
        let at = now.checked_sub(age).unwrap_or(now);
        let mut inner = self.lock();
        while inner.order.len() >= self.max_keys {
            Self::pop_oldest(&mut inner);
        }
        Self::insert(
            &mut inner,
            Arc::from(key),
            fingerprint,
            Some((status, body)),
            at,
        );
    }

    /// Remembers `key` as first seen `at`; returns its generation.
    fn insert(
        inner: &mut Inner,
        key: Arc<str>,
        fingerprint: u128,
        outcome: Option<(StatusCode, Bytes)>,
        at: Instant,
    ) -> u64 {
        let generation = inner.next_generation;
        inner.next_generation += 1;
        inner.map.insert(
            Arc::clone(&key),
            Entry {
                fingerprint,
                generation,
                outcome,
            },
        );
        inner.order.push_back((key, at, generation));
        generation
    }

    /// Counts a request refused for a malformed key.
    pub fn count_invalid(&self) {
        self.invalid.fetch_add(1, Relaxed);
    }

    /// Keys remembered right now.
    pub fn remembered(&self) -> usize {
        self.lock().map.len()
    }

    /// Appends this store's metrics in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let keys = self.remembered();
        let _ = write!(
            out,
            "# HELP traffic_ingest_idempotency_total POST /api/events requests with an \
             Idempotency-Key that were not processed afresh, by outcome.\n\
             # TYPE traffic_ingest_idempotency_total counter\n\
             traffic_ingest_idempotency_total{{outcome=\"replayed\"}} {}\n\
             traffic_ingest_idempotency_total{{outcome=\"in_flight\"}} {}\n\
             traffic_ingest_idempotency_total{{outcome=\"key_reused\"}} {}\n\
             traffic_ingest_idempotency_total{{outcome=\"invalid_key\"}} {}\n\
             # HELP traffic_ingest_idempotency_keys Idempotency keys remembered.\n\
             # TYPE traffic_ingest_idempotency_keys gauge\n\
             traffic_ingest_idempotency_keys {keys}\n",
            self.replayed.load(Relaxed),
            self.in_flight.load(Relaxed),
            self.mismatched.load(Relaxed),
            self.invalid.load(Relaxed),
        );
    }

    fn reservation(self: &Arc<Self>, key: Arc<str>, generation: u64) -> Reservation {
        Reservation {
            store: Arc::clone(self),
            key,
            generation,
            completed: false,
        }
    }

    fn evict(&self, inner: &mut Inner, now: Instant) {
        while inner
            .order
            .front()
            .is_some_and(|(_, first_seen, _)| now.duration_since(*first_seen) >= self.max_age)
        {
            Self::pop_oldest(inner);
        }
    }

    fn pop_oldest(inner: &mut Inner) {
        if let Some((key, _, generation)) = inner.order.pop_front()
            && inner
                .map
                .get(&key)
                .is_some_and(|entry| entry.generation == generation)
        {
            inner.map.remove(&key);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Never held across an await, and nothing in here panics while holding it; a
        // poisoned lock still holds consistent data.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Bytes {
        Bytes::from_static(br#"{"accepted":1}"#)
    }

    #[test]
    fn keys_are_1_to_128_safe_characters() {
        assert!(valid_key(b"run-7f3a:000042"));
        assert!(valid_key(b"A.b_C:d-9"));
        assert!(valid_key(&[b'k'; 128]));
        assert!(!valid_key(b""));
        assert!(!valid_key(&[b'k'; 129]));
        for bad in ["a b", "a/b", "a\u{e9}", "a,b", "a\"b"] {
            assert!(!valid_key(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn a_completed_key_replays_and_a_dropped_one_is_forgotten() {
        let store = Store::new(10, Duration::from_secs(60));
        let print = store.fingerprint(b"body");
        let Claim::Fresh(reservation) = store.claim("k", print) else {
            panic!("first claim is fresh")
        };
        assert!(matches!(store.claim("k", print), Claim::InFlight));
        reservation.complete(StatusCode::ACCEPTED, &accepted());
        assert!(
            matches!(store.claim("k", print), Claim::Replay(StatusCode::ACCEPTED, ref b) if *b == accepted())
        );
        assert!(matches!(
            store.claim("k", store.fingerprint(b"other")),
            Claim::Mismatch
        ));

        let Claim::Fresh(reservation) = store.claim("failed", print) else {
            panic!("fresh")
        };
        reservation.complete(StatusCode::INTERNAL_SERVER_ERROR, &Bytes::new());
        assert!(
            matches!(store.claim("failed", print), Claim::Fresh(_)),
            "a 5xx is not final: the retry is processed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restored_key_replays_with_a_store_of_the_same_secret_until_its_age_runs_out() {
        let secret = [7, 11];
        let before = Store::with_secret(10, Duration::from_secs(60), secret);
        let fingerprint = before.fingerprint(b"[1,2,3]");
        let after = Store::with_secret(10, Duration::from_secs(60), secret);
        assert_eq!(
            after.fingerprint(b"[1,2,3]"),
            fingerprint,
            "same secret, same fingerprint"
        );
        assert_ne!(
            Store::new(10, Duration::from_secs(60)).fingerprint(b"[1,2,3]"),
            fingerprint
        );
        after.restore(
            "k",
            fingerprint,
            StatusCode::ACCEPTED,
            accepted(),
            Duration::from_secs(50),
        );
        after.restore(
            "too-old",
            fingerprint,
            StatusCode::ACCEPTED,
            accepted(),
            Duration::from_secs(60),
        );
        assert!(matches!(
            after.claim("k", fingerprint),
            Claim::Replay(StatusCode::ACCEPTED, _)
        ));
        assert!(matches!(
            after.claim("too-old", fingerprint),
            Claim::Fresh(_)
        ));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(
            matches!(after.claim("k", fingerprint), Claim::Fresh(_)),
            "60 s after the answer"
        );
    }

    #[test]
    fn long_refusals_are_not_remembered() {
        let store = Store::new(10, Duration::from_secs(60));
        let Claim::Fresh(reservation) = store.claim("k", 1) else {
            panic!("fresh")
        };
        let long = Bytes::from(vec![b'x'; MAX_REMEMBERED_BODY + 1]);
        reservation.complete(StatusCode::UNPROCESSABLE_ENTITY, &long);
        assert_eq!(store.remembered(), 0);
    }

    #[test]
    fn forgotten_keys_do_not_grow_the_eviction_queue_beyond_the_count() {
        let store = Store::new(3, Duration::from_secs(60));
        for i in 0..100 {
            let Claim::Fresh(reservation) = store.claim(&format!("k{i}"), 1) else {
                panic!("fresh")
            };
            drop(reservation);
        }
        assert!(store.lock().order.len() <= 3);
        assert_eq!(store.remembered(), 0);
    }
}
