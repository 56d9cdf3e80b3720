//! Property tests of the analytics against a brute-force oracle on random streams: each
//! stream is drawn from a seeded generator (the seed is in every failure message), the
//! oracle keeps every event and answers each query by counting them all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::report::above_percent;
use super::*;

/// splitmix64: a small, seeded, reproducible source of randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A skewed pick in `0..n`: small values much more likely (so there are heavy hitters).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        self.below(a + 1)
    }
}

fn place(i: u64) -> Arc<Place> {
    Arc::new(Place {
        key: 1000 + i,
        city: format!("City{i}"),
        region: String::new(),
        country_code: ["FR", "DE", "US", "BR", ""][(i % 5) as usize].to_owned(),
        country: String::new(),
        latitude: i as f64,
        longitude: -(i as f64),
    })
}

/// An event, its place, and the keys the oracle files it under (as labels, worked out
/// here independently of the module's key encoding).
struct Drawn {
    event: Event,
    place: Option<Arc<Place>>,
    labels: [Option<String>; 6],
}

fn draw(rng: &mut Rng, second: i64, keys: u64) -> Drawn {
    let host = rng.skewed(keys);
    let ip: IpAddr = if host % 7 == 6 {
        format!("2001:db8:{:x}::{:x}", host % 5, host)
            .parse()
            .unwrap()
    } else {
        format!("10.{}.{}.{}", host % 3, host % 11, host % 256)
            .parse()
            .unwrap()
    };
    let network = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(_) => {
            let net: std::net::Ipv6Addr = format!("2001:db8:{:x}::", host % 5).parse().unwrap();
            format!("{net}/48")
        }
    };
    let mut event = Event::new(
        ip,
        second as f64 + rng.below(1000) as f64 / 1000.0,
        rng.below(4) == 0,
    );
    event.bytes = (rng.below(3) > 0).then(|| 1 + rng.below(1500));
    event.protocol =
        (rng.below(2) == 0).then(|| ["TCP", "UDP", "DNS"][rng.skewed(3) as usize].to_owned());
    event.status = (rng.below(2) == 0).then(|| [200, 404, 503, 301][rng.skewed(4) as usize]);
    let place = (rng.below(5) > 0).then(|| place(rng.skewed(keys / 2 + 1)));
    let labels = [
        place.as_ref().map(|p| p.city.clone()),
        place
            .as_ref()
            .map(|p| p.country_code.clone())
            .filter(|c| !c.is_empty()),
        Some(ip.to_string()),
        Some(network),
        event.protocol.clone(),
        event.status.map(|s| format!("{}xx", s / 100)),
    ];
    Drawn {
        event,
        place,
        labels,
    }
}

/// Every event so far, with the clock after it.
#[derive(Default)]
struct Oracle {
    events: Vec<(i64, Weights, [Option<String>; 6])>,
}

impl Oracle {
    /// Per kind: the window's total and each key's weights, over `from..=to`.
    fn window(&self, kind: usize, from: i64, to: i64) -> (Weights, HashMap<String, Weights>) {
        let mut total = Weights::default();
        let mut keys: HashMap<String, Weights> = HashMap::new();
        for (second, w, labels) in &self.events {
            if *second < from || *second > to {
                continue;
            }
            total.add(*w);
            if let Some(label) = &labels[kind] {
                keys.entry(label.clone()).or_default().add(*w);
            }
        }
        (total, keys)
    }
}

/// Checks one kind's report against the oracle: exactly when `exact`, otherwise within the
/// report's stated bound.
fn check_kind(seed: u64, kind: KeyKind, report: &KindReport, oracle: &Oracle, budget: usize) {
    let (from, to) = (report.from.unwrap(), report.to.unwrap());
    let (total, truth) = oracle.window(kind as usize, from, to);
    let ctx = format!("seed {seed}, {kind:?}, window {from}..={to}");
    assert_eq!(report.total, total, "{ctx}: total");
    let bound = report.error_bound;
    assert_eq!(report.exact, bound == Weights::default(), "{ctx}");
    let keyed: u64 = truth.values().map(|w| w.count).sum();
    assert!(
        bound.count <= 2 * keyed / budget as u64,
        "{ctx}: bound {} over 2 × {keyed} / {budget}",
        bound.count
    );
    let t = &report.thresholds;
    let true_of = |e: &KeyReport| truth.get(&e.key).copied().unwrap_or_default();
    let all_listed = [
        &report.top_by_count,
        &report.top_by_bytes,
        &report.heavy_hitters,
        &report.heavy_hitters_by_bytes,
        &report.outliers,
    ];
    for entry in all_listed.into_iter().flatten() {
        let real = true_of(entry);
        for (est, real, b, what) in [
            (entry.count, real.count, bound.count, "count"),
            (entry.bytes, real.bytes, bound.bytes, "bytes"),
            (
                entry.suspicious,
                real.suspicious,
                bound.suspicious,
                "suspicious",
            ),
        ] {
            assert!(
                est <= real && real - est <= b,
                "{ctx}: {} {what} {est}, truly {real}, bound {b}",
                entry.key
            );
        }
    }
    // Top k: k keys (or all there are), and nothing left out that beats the last one listed
    // by more than the bound.
    for (list, weight) in [
        (
            &report.top_by_count,
            (|w: &Weights| w.count) as fn(&Weights) -> u64,
        ),
        (&report.top_by_bytes, |w: &Weights| w.bytes),
    ] {
        let b = weight(&bound);
        if report.exact {
            assert_eq!(list.len(), t.top_k.min(truth.len()), "{ctx}");
        }
        let listed: Vec<&str> = list.iter().map(|e| e.key.as_str()).collect();
        let last = list.last().map_or(0, |e| {
            weight(&Weights {
                count: e.count,
                bytes: e.bytes,
                suspicious: 0,
            })
        });
        for (key, w) in &truth {
            if (list.len() < t.top_k && weight(w) > b) || weight(w) > last + b {
                assert!(
                    listed.contains(&key.as_str()),
                    "{ctx}: {key} ({}) missing from {listed:?}",
                    weight(w)
                );
            }
        }
    }
    // Heavy hitters: none that is not one; every one that is by more than the bound.
    for (list, weight, whole) in [
        (
            &report.heavy_hitters,
            (|w: &Weights| w.count) as fn(&Weights) -> u64,
            total.count,
        ),
        (
            &report.heavy_hitters_by_bytes,
            |w: &Weights| w.bytes,
            total.bytes,
        ),
    ] {
        let listed: Vec<&str> = list.iter().map(|e| e.key.as_str()).collect();
        for (key, w) in &truth {
            let is = above_percent(weight(w), whole, t.heavy_hitter_percent);
            if listed.contains(&key.as_str()) {
                assert!(is, "{ctx}: {key} listed as a heavy hitter");
            } else if report.exact
                || above_percent(
                    weight(w).saturating_sub(weight(&bound)),
                    whole,
                    t.heavy_hitter_percent,
                )
            {
                assert!(
                    !is,
                    "{ctx}: heavy hitter {key} ({} of {whole}) missing",
                    weight(w)
                );
            }
        }
    }
    if report.exact {
        // Outliers, by the textbook formula in floating point, away from the edge.
        let n = truth.len() as f64;
        let mean = truth.values().map(|w| w.count as f64).sum::<f64>() / n;
        let var = truth
            .values()
            .map(|w| (w.count as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let limit = mean + t.outlier_stddevs * var.sqrt();
        let near_edge = truth
            .values()
            .any(|w| (w.count as f64 - limit).abs() < 1e-6);
        if !near_edge && !truth.is_empty() {
            let expected = truth.values().filter(|w| w.count as f64 > limit).count();
            assert_eq!(report.outliers_total, expected, "{ctx}: outliers");
            for e in &report.outliers {
                assert!(e.count as f64 > limit, "{ctx}: {} is no outlier", e.key);
            }
        }
        assert_eq!(report.keys, truth.len(), "{ctx}: distinct keys");
    }
}

struct Run {
    analytics: Analytics,
    oracle: Oracle,
    clock: i64,
}

impl Run {
    fn new(config: AnalyticsConfig) -> Self {
        Self {
            analytics: Analytics::new(config),
            oracle: Oracle::default(),
            clock: i64::MIN,
        }
    }

    /// Feeds `n` events, the clock moving about one second per `per_second` events, some
    /// events late by up to `lateness` seconds.
    fn feed(&mut self, rng: &mut Rng, n: usize, per_second: u64, lateness: u64, keys: u64) {
        for _ in 0..n {
            let base = if self.clock == i64::MIN {
                1_700_000_000
            } else {
                self.clock
            };
            let step = i64::from(rng.below(per_second) == 0);
            let second = if rng.below(4) == 0 {
                base - rng.below(lateness + 1) as i64
            } else {
                base + step
            };
            let drawn = draw(rng, second, keys);
            self.clock = self.clock.max(second);
            let clock = DataClock {
                second: self.clock,
                era: 0,
            };
            self.analytics
                .record(&drawn.event, drawn.place.as_ref(), clock);
            self.oracle
                .events
                .push((second, Weights::of(&drawn.event), drawn.labels));
        }
    }

    fn check(&mut self, seed: u64) {
        let report = self.analytics.report();
        let budget = self.analytics.config().budget;
        for kind in KeyKind::ALL {
            check_kind(seed, kind, report.kinds.get(kind), &self.oracle, budget);
        }
    }
}

fn random_thresholds(rng: &mut Rng) -> Thresholds {
    Thresholds {
        window_secs: 1 + rng.below(20) as u32,
        top_k: 1 + rng.below(8) as usize,
        heavy_hitter_percent: [0.5, 2.0, 5.0, 10.0, 33.0][rng.below(5) as usize],
        outlier_stddevs: [0.5, 1.0, 2.0, 3.0][rng.below(4) as usize],
    }
}

fn random_config(rng: &mut Rng, budget: usize) -> AnalyticsConfig {
    let mut config = AnalyticsConfig::uniform(budget, random_thresholds(rng));
    config.kinds.ip = random_thresholds(rng);
    config.kinds.network = random_thresholds(rng);
    config
}

#[test]
fn within_the_budget_every_query_is_exact_with_late_and_out_of_order_events() {
    for seed in 0..150 {
        let mut rng = Rng(seed);
        let mut run = Run::new(random_config(&mut rng, 100_000));
        for _ in 0..4 {
            let (n, per_second) = (rng.below(400) as usize, 1 + rng.below(30));
            let (lateness, keys) = (rng.below(40), 2 + rng.below(60));
            run.feed(&mut rng, n, per_second, lateness, keys);
            run.check(seed);
        }
        for kind in KeyKind::ALL {
            assert!(run.analytics.report().kinds.get(kind).exact, "seed {seed}");
        }
    }
}

#[test]
fn beyond_the_budget_every_answer_is_within_the_stated_bound() {
    let mut inexact = 0;
    for seed in 1000..1100 {
        let mut rng = Rng(seed);
        let mut run = Run::new(random_config(&mut rng, 16));
        for _ in 0..3 {
            let (n, per_second) = (200 + rng.below(1500) as usize, 50 + rng.below(400));
            let (lateness, keys) = (rng.below(10), 50 + rng.below(500));
            run.feed(&mut rng, n, per_second, lateness, keys);
            run.check(seed);
        }
        inexact += usize::from(!run.analytics.report().kinds.ip.exact);
    }
    assert!(
        inexact > 50,
        "the streams must overflow the budget ({inexact} did)"
    );
}

#[test]
fn late_events_are_counted_in_their_second_or_as_late_if_older_than_the_window() {
    for seed in 2000..2050 {
        let mut rng = Rng(seed);
        let config = random_config(&mut rng, 100_000);
        let mut run = Run::new(config);
        run.feed(&mut rng, 500, 10, 30, 20);
        let t = i64::from(config.kinds.place.window_secs);
        // Recount what the window saw as late: older than its start when they came.
        let mut clock = i64::MIN;
        let mut late = 0;
        for (second, _, _) in &run.oracle.events {
            clock = clock.max(*second);
            late += u64::from(*second < clock - t + 1);
        }
        assert_eq!(run.analytics.report().kinds.place.late, late, "seed {seed}");
    }
}

#[test]
fn config_changes_take_effect_at_the_next_evaluation() {
    for seed in 3000..3100 {
        let mut rng = Rng(seed);
        let mut run = Run::new(random_config(&mut rng, 100_000));
        run.feed(&mut rng, 300, 10, 15, 40);
        run.check(seed);
        let old = *run.analytics.config();
        let new = random_config(&mut rng, 100_000);
        run.analytics.set_config(new);
        let report = run.analytics.report();
        for kind in KeyKind::ALL {
            let r = report.kinds.get(kind);
            assert_eq!(r.thresholds, *new.kinds.get(kind), "seed {seed}");
            // A longer window holds nothing from before the old one's start.
            let (t_old, t_new) = (
                i64::from(old.kinds.get(kind).window_secs),
                i64::from(new.kinds.get(kind).window_secs),
            );
            let expected_from = (run.clock - t_new + 1).max(run.clock - t_old + 1);
            assert_eq!(r.from, Some(expected_from), "seed {seed} {kind:?}");
        }
        run.check(seed);
        run.feed(&mut rng, 300, 10, 15, 40);
        run.check(seed);
    }
}

#[test]
fn a_smaller_budget_takes_effect_at_once_and_states_its_bound() {
    let mut rng = Rng(7);
    let mut run = Run::new(random_config(&mut rng, 100_000));
    run.feed(&mut rng, 2000, 1000, 0, 400);
    assert!(run.analytics.report().kinds.ip.exact);
    let mut config = *run.analytics.config();
    config.budget = 16;
    run.analytics.set_config(config);
    let report = run.analytics.report();
    assert!(!report.kinds.ip.exact);
    let ip = &report.kinds.ip;
    let secs = (ip.to.unwrap() - ip.from.unwrap() + 1) as usize;
    assert!(
        ip.keys <= 16 * secs,
        "at most 16 a second ({} kept)",
        ip.keys
    );
    run.check(7);
}
