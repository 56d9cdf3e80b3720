//! Login attempts, limited per client address and per user name: after `max_failures`
//! failed logins within `window`, further attempts for that key are refused (429 with
//! `Retry-After`) until the window that started with the first failure is over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most keys remembered; beyond it expired ones are dropped, and if that is not enough the
/// oldest half goes (memory stays bounded whatever clients do).
const MAX_KEYS: usize = 100_000;

/// Failed attempts by key.
#[derive(Debug)]
pub struct Limiter {
    max_failures: u32,
    window: Duration,
    keys: Mutex<HashMap<String, (Instant, u32)>>,
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
        match keys.get(key) {
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
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            keys.retain(|_, (start, _)| now < *start + self.window);
            if keys.len() >= MAX_KEYS {
                let mut starts: Vec<Instant> = keys.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let median = starts[starts.len() / 2];
                keys.retain(|_, (start, _)| *start > median);
            }
        }
        let entry = keys.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Forgets `key`'s failures (after a successful login).
    pub fn succeeded(&self, key: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(key);
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
}
