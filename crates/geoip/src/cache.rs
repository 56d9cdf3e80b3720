//! A bounded, thread-safe map: address to lookup answer, and database record to place.
//!
//! Sharded (so that ingest handlers on several threads rarely wait for one another), and in
//! each shard two generations: answers go into `hot`; when `hot` is full, it becomes `cold`
//! (the old `cold` is dropped) and a new, empty `hot` starts. A hit in `cold` moves the entry
//! back to `hot`. That is a cheap approximation of least-recently-used: an address asked for
//! at least once per generation stays, and a shard never holds more than two generations,
//! so memory is bounded by the capacity whatever the traffic (a flood of distinct addresses
//! only cycles the generations). The maps keep their allocation across rotations.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, PoisonError};

const SHARDS: usize = 32;

/// foldhash with a random per-process seed: much cheaper than SipHash for the small keys
/// here (addresses, record offsets), and still keyed, so addresses chosen by a client cannot
/// be made to collide without knowing the seed. Each map and the shard choice get their own
/// seed, so the keys of one shard do not share bits of their in-map hash.
type RandomState = foldhash::fast::RandomState;

struct Shard<K, V> {
    hot: HashMap<K, V, RandomState>,
    cold: HashMap<K, V, RandomState>,
}

pub(crate) struct Cache<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    /// Entries per generation and shard; 0 disables the cache.
    generation: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq + Copy, V: Clone> Cache<K, V> {
    /// A cache that holds at least `capacity` recent answers and never more than about
    /// twice that.
    pub(crate) fn new(capacity: usize) -> Self {
        let generation = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    hot: HashMap::default(),
                    cold: HashMap::default(),
                })
            })
            .collect();
        Cache {
            shards,
            generation,
            hasher: RandomState::default(),
        }
    }

    fn shard(&self, ip: &K) -> std::sync::MutexGuard<'_, Shard<K, V>> {
        // The shard is picked by a keyed hash, so that chosen addresses cannot pile into one.
        let index = self.hasher.hash_one(ip) as usize % SHARDS;
        // A panic while holding the lock leaves the maps consistent (no invariant spans
        // more than one call), so a poisoned lock is still usable.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, ip: &K) -> Option<V> {
        if self.generation == 0 {
            return None;
        }
        let mut shard = self.shard(ip);
        if let Some(answer) = shard.hot.get(ip) {
            return Some(answer.clone());
        }
        let answer = shard.cold.remove(ip)?;
        shard.insert(*ip, answer.clone(), self.generation);
        Some(answer)
    }

    pub(crate) fn insert(&self, ip: K, answer: V) {
        if self.generation == 0 {
            return;
        }
        self.shard(&ip).insert(ip, answer, self.generation);
    }

    /// Entries held now (both generations, all shards).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                s.hot.len() + s.cold.len()
            })
            .sum()
    }

    /// The most entries this cache can ever hold.
    pub(crate) fn max_len(&self) -> usize {
        self.generation * 2 * SHARDS
    }
}

impl<K: Hash + Eq, V> Shard<K, V> {
    fn insert(&mut self, ip: K, answer: V, generation: usize) {
        if self.hot.len() >= generation && !self.hot.contains_key(&ip) {
            std::mem::swap(&mut self.hot, &mut self.cold);
            self.hot.clear();
        }
        self.hot.insert(ip, answer);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::Unlocated;

    type Cache = super::Cache<IpAddr, Result<(), Unlocated>>;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn a_stored_answer_comes_back() {
        let cache = Cache::new(100);
        cache.insert(ip(1), Err(Unlocated::NotFound));
        assert_eq!(cache.get(&ip(1)), Some(Err(Unlocated::NotFound)));
        assert_eq!(cache.get(&ip(2)), None);
    }

    #[test]
    fn a_flood_of_distinct_addresses_never_grows_past_the_bound() {
        let cache = Cache::new(1000);
        for n in 0..100_000 {
            cache.insert(ip(n), Err(Unlocated::NotFound));
            assert!(cache.len() <= cache.max_len());
        }
        assert!(cache.max_len() <= 2 * 1000 + 2 * SHARDS);
        assert!(cache.len() >= 1000, "{}", cache.len());
    }

    #[test]
    fn an_address_asked_for_often_survives_a_flood() {
        let cache = Cache::new(1000);
        cache.insert(ip(u32::MAX), Err(Unlocated::NotFound));
        for n in 0..100_000 {
            cache.insert(ip(n), Err(Unlocated::NotFound));
            if n % 100 == 0 {
                assert!(cache.get(&ip(u32::MAX)).is_some(), "lost after {n}");
            }
        }
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = Cache::new(0);
        cache.insert(ip(1), Err(Unlocated::NotFound));
        assert_eq!(cache.get(&ip(1)), None);
        assert_eq!(cache.len(), 0);
    }
}
