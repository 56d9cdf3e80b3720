//! Login attempts, limited per client address and per user name: after `max_failures`
//! failed logins within `window`, further attempts for that key are refused (429 with
//! `Retry-After`) until the window that started with the first failure is over. And the
//! password checks themselves ([`PasswordChecks`]), bounded in number at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Most keys remembered; beyond it expired ones are dropped, and if that is not enough the
/// oldest half goes (memory stays bounded whatever clients do).
const MAX_KEYS: usize = 100_000;

/// A key as remembered: its SHA-256, so each costs the same few bytes however long the
/// name a client sent (a login body may hold a 16 KiB "user name").
type Key = [u8; 32];

fn key_of(key: &str) -> Key {
    Sha256::digest(key.as_bytes()).into()
}

/// Failed attempts by key.
#[derive(Debug)]
pub struct Limiter {
    max_failures: u32,
    window: Duration,
    keys: Mutex<HashMap<Key, (Instant, u32)>>,
}

impl Limiter {
    /// At most `max_failures` failures per key within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            keys: Mutex::default(),
        }
    }

    /// `Err(seconds to wait)` if `key` has used up its failures.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        match keys.get(&key_of(key)) {
            Some(&(start, failures))
                if failures >= self.max_failures && now < start + self.window =>
            {
                Err((start + self.window - now).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure for `key`.
    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let key = key_of(key);
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_KEYS && !keys.contains_key(&key) {
            keys.retain(|_, (start, _)| now < *start + self.window);
            if keys.len() >= MAX_KEYS {
                let mut starts: Vec<Instant> = keys.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let median = starts[starts.len() / 2];
                keys.retain(|_, (start, _)| *start > median);
            }
        }
        let entry = keys.entry(key).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Forgets `key`'s failures (after a successful login).
    pub fn succeeded(&self, key: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&key_of(key));
    }
}

/// Password checks (argon2id: 19 MiB and tens of milliseconds each) run on the blocking
/// pool, at most `limit` at once; the others wait their turn. Without it, a burst of
/// concurrent logins (all let through before any failure is counted) would each take their
/// 19 MiB at once.
#[derive(Debug)]
pub struct PasswordChecks {
    permits: Semaphore,
}

impl PasswordChecks {
    /// At most `limit` (at least 1) checks at once.
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Semaphore::new(limit.max(1)),
        }
    }

    /// One per CPU, at most 4.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
    }

    /// Runs `check` on the blocking pool once a turn is free; `false` if it panicked.
    pub async fn run(&self, check: impl FnOnce() -> bool + Send + 'static) -> bool {
        // The semaphore is never closed.
        let Ok(_turn) = self.permits.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(check).await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_key_is_refused_after_its_failures_until_the_window_ends() {
        let limiter = Limiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(limiter.check("ann"), Ok(()));
            limiter.failed("ann");
        }
        assert_eq!(limiter.check("ann"), Err(60));
        assert_eq!(limiter.check("bob"), Ok(()));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(limiter.check("ann"), Err(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check("ann"), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_failures_and_memory_stays_bounded() {
        let limiter = Limiter::new(1, Duration::from_secs(60));
        limiter.failed("ann");
        limiter.succeeded("ann");
        assert_eq!(limiter.check("ann"), Ok(()));
        for i in 0..MAX_KEYS + 10 {
            limiter.failed(&i.to_string());
        }
        assert!(limiter.keys.lock().unwrap().len() <= MAX_KEYS);
    }

    #[tokio::test(start_paused = true)]
    async fn long_keys_that_differ_only_at_the_end_are_counted_apart() {
        let limiter = Limiter::new(1, Duration::from_secs(60));
        let long = "x".repeat(16 * 1024);
        limiter.failed(&format!("user:{long}a"));
        assert!(limiter.check(&format!("user:{long}a")).is_err());
        assert_eq!(limiter.check(&format!("user:{long}b")), Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_password_checks_run_at_once_than_the_limit() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let checks = Arc::new(PasswordChecks::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (checks, running, most) = (checks.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    checks
                        .run(move || {
                            let now = running.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            // Long enough that unbounded checks would overlap.
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, SeqCst);
                            true
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert!(most.load(SeqCst) <= 2, "{} at once", most.load(SeqCst));
        assert!(most.load(SeqCst) >= 1);
    }
}
