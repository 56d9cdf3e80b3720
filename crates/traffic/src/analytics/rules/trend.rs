//! The state of the windowed rules that look back further than the analytics' window: the
//! rate against its recent average (`rate_jump`) and keys new in volume (`new_key`). Both
//! count every event on the data's clock, per second, in bounded rings.

use super::super::{KeyKind, Map};
use super::Windowed;

/// Events per second over the last `len` seconds of the data's clock.
#[derive(Debug)]
pub(crate) struct Counts {
    counts: Vec<u64>,
    /// The second each slot holds.
    stamps: Vec<i64>,
}

impl Counts {
    pub(crate) fn new(len: usize) -> Self {
        let len = len.max(1);
        Self {
            counts: vec![0; len],
            stamps: vec![i64::MIN; len],
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, second: i64) {
        let slot = second.rem_euclid(self.counts.len() as i64) as usize;
        if self.stamps[slot] != second {
            if self.stamps[slot] > second {
                // Older than the ring: not counted.
                return;
            }
            self.stamps[slot] = second;
            self.counts[slot] = 0;
        }
        self.counts[slot] += 1;
    }

    /// Events of the seconds `from..=to` still in the ring.
    pub(crate) fn sum(&self, from: i64, to: i64) -> u64 {
        self.stamps
            .iter()
            .zip(&self.counts)
            .filter(|(s, _)| **s >= from && **s <= to)
            .map(|(_, c)| c)
            .sum()
    }
}

/// A `rate_jump` rule's counts.
#[derive(Debug)]
pub(crate) struct RateJump {
    counts: Counts,
    /// First second seen (the baseline must be complete before the rule judges).
    since: Option<i64>,
}

impl RateJump {
    pub(crate) fn new(rule: &Windowed) -> Self {
        Self {
            counts: Counts::new((rule.recent_secs + rule.baseline_secs) as usize + 1),
            since: None,
        }
    }

    #[inline]
    pub(crate) fn observe(&mut self, second: i64) {
        self.since = Some(self.since.map_or(second, |s| s.min(second)));
        self.counts.add(second);
    }

    /// The ratio of the recent rate to the baseline's, when it is above the rule's factor
    /// with the clock at `clock` (the clock's own second, still filling, is left out).
    pub(crate) fn check(&self, rule: &Windowed, clock: i64) -> Option<f64> {
        let recent = i64::from(rule.recent_secs);
        let baseline = i64::from(rule.baseline_secs);
        let since = self.since?;
        if clock - since < recent + baseline {
            return None;
        }
        let now = self.counts.sum(clock - recent, clock - 1);
        if now < rule.min_events {
            return None;
        }
        let before = self
            .counts
            .sum(clock - recent - baseline, clock - recent - 1)
            // An empty baseline counts as one event: the ratio stays finite.
            .max(1);
        let ratio = (now as f64 / recent as f64) / (before as f64 / baseline as f64);
        (ratio > rule.factor).then_some(ratio)
    }

    /// Forgets everything (a new era of the data's clock).
    pub(crate) fn clear(&mut self, rule: &Windowed) {
        *self = Self::new(rule);
    }
}

/// Most keys a `new_key` rule remembers as known, and follows as candidates.
pub const MAX_KNOWN: usize = 200_000;
const MAX_CANDIDATES: usize = 50_000;

#[derive(Debug)]
struct Candidate {
    first: i64,
    count: u64,
    label: String,
    /// Whether it reached the rule's volume (once is enough).
    qualified: bool,
}

/// A `new_key` rule's memory of keys.
#[derive(Debug)]
pub(crate) struct NewKeys {
    pub(crate) kind: KeyKind,
    /// Keys seen, with the last second they were.
    known: Map<u128, i64>,
    candidates: Map<u128, Candidate>,
    totals: Counts,
    since: Option<i64>,
    /// Keys that reached the volume since the last check: (label, share of the events).
    qualified: Vec<(String, f64)>,
}

impl NewKeys {
    pub(crate) fn new(rule: &Windowed) -> Self {
        Self {
            kind: rule.key,
            known: Map::default(),
            candidates: Map::default(),
            totals: Counts::new(rule.recent_secs as usize + 1),
            since: None,
            qualified: Vec::new(),
        }
    }

    /// Counts one event of `second` with key `key` (`u128::MAX`: none of this kind);
    /// `label` names the key if it turns out new.
    pub(crate) fn observe(
        &mut self,
        rule: &Windowed,
        key: u128,
        second: i64,
        label: impl FnOnce() -> String,
    ) {
        self.totals.add(second);
        let since = *self.since.get_or_insert(second);
        if key == u128::MAX {
            return;
        }
        if second - since < i64::from(rule.warmup_secs) {
            if self.known.len() < MAX_KNOWN {
                let last = self.known.entry(key).or_insert(second);
                *last = (*last).max(second);
            }
            return;
        }
        if let Some(last) = self.known.get_mut(&key) {
            if second - *last <= i64::from(rule.memory_secs) {
                *last = (*last).max(second);
                return;
            }
            self.known.remove(&key);
        }
        if self.candidates.len() >= MAX_CANDIDATES && !self.candidates.contains_key(&key) {
            return;
        }
        let candidate = self.candidates.entry(key).or_insert_with(|| Candidate {
            first: second,
            count: 0,
            label: label(),
            qualified: false,
        });
        candidate.count += 1;
        if candidate.qualified || candidate.count < rule.min_events {
            return;
        }
        let total = self.totals.sum(candidate.first, second).max(1);
        let share = candidate.count as f64 / total as f64;
        if share >= rule.min_share {
            candidate.qualified = true;
            self.qualified.push((candidate.label.clone(), share));
        }
    }

    /// The keys that became new in volume since the last call; candidates older than the
    /// rule's `recent_secs` at `clock` become known.
    pub(crate) fn check(&mut self, rule: &Windowed, clock: i64) -> Vec<(String, f64)> {
        let recent = i64::from(rule.recent_secs);
        let memory = i64::from(rule.memory_secs);
        let known = &mut self.known;
        self.candidates.retain(|key, c| {
            if clock - c.first < recent {
                return true;
            }
            if known.len() < MAX_KNOWN {
                known.insert(*key, clock);
            }
            false
        });
        if self.known.len() >= MAX_KNOWN / 2 {
            self.known.retain(|_, last| clock - *last <= memory);
        }
        std::mem::take(&mut self.qualified)
    }

    /// Forgets everything (a new era of the data's clock).
    pub(crate) fn clear(&mut self, rule: &Windowed) {
        *self = Self::new(rule);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::rules::{RuleSet, RuleSpec, RuleType};

    fn rule(spec: RuleSpec) -> Windowed {
        let set = RuleSet {
            hold_secs: 10,
            rules: vec![spec],
        };
        set.compile().unwrap().windowed.remove(0)
    }

    #[test]
    fn the_rate_fires_above_factor_times_its_baseline_and_not_before_the_baseline_is_full() {
        let r = rule(RuleSpec {
            factor: Some(3.0),
            recent_secs: Some(10),
            baseline_secs: Some(60),
            min_events: Some(20),
            ..RuleSpec::new("jump", RuleType::RateJump)
        });
        let mut jump = RateJump::new(&r);
        // 2 events a second for 70 s, then 7 a second for 10 s.
        for second in 1000..1070 {
            jump.observe(second);
            jump.observe(second);
            if second < 1069 {
                assert_eq!(jump.check(&r, second), None, "{second}");
            }
        }
        assert_eq!(jump.check(&r, 1070), None, "steady: ratio 1");
        for second in 1070..1080 {
            for _ in 0..7 {
                jump.observe(second);
            }
        }
        let ratio = jump.check(&r, 1080).unwrap();
        assert!((ratio - 3.5).abs() < 1e-9, "{ratio}");
        // 6 a second is exactly 3 times the baseline: not above it.
        let mut steady = RateJump::new(&r);
        for second in 0..70 {
            steady.observe(second);
            steady.observe(second);
        }
        for second in 70..80 {
            for _ in 0..6 {
                steady.observe(second);
            }
        }
        assert_eq!(steady.check(&r, 80), None);
    }

    #[test]
    fn a_key_unseen_before_fires_once_it_has_the_volume_and_a_known_one_never() {
        let r = rule(RuleSpec {
            key: Some(KeyKind::Country),
            min_events: Some(5),
            min_share: Some(0.3),
            recent_secs: Some(10),
            warmup_secs: Some(20),
            memory_secs: Some(100),
            ..RuleSpec::new("new", RuleType::NewKey)
        });
        let mut new = NewKeys::new(&r);
        let label = |s: &str| {
            let s = s.to_owned();
            move || s
        };
        // Warm-up: FR and DE are seen.
        for second in 0..30 {
            new.observe(&r, 1, second, label("FR"));
            new.observe(&r, 2, second, label("DE"));
        }
        assert!(new.check(&r, 29).is_empty());
        // DE in volume: known. KP: 5 events among 10+5 in one second.
        for _ in 0..5 {
            new.observe(&r, 1, 30, label("FR"));
            new.observe(&r, 2, 30, label("DE"));
            new.observe(&r, 3, 30, label("KP"));
        }
        let fired = new.check(&r, 30);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].0, "KP");
        assert!((fired[0].1 - 5.0 / 15.0).abs() < 1e-9);
        // Once is enough; a new key with a small share does not fire.
        new.observe(&r, 3, 31, label("KP"));
        for _ in 0..5 {
            new.observe(&r, 4, 32, label("IR"));
            for _ in 0..3 {
                new.observe(&r, 1, 32, label("FR"));
            }
        }
        assert!(new.check(&r, 32).is_empty());
    }
}
