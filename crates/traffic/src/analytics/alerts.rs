//! Alerts: the rules ([`super::rules`]) checked against the analytics' results at each
//! report (windowed rules) and against every event as it is recorded (event rules, and the
//! counts behind `rate_jump` and `new_key`).
//!
//! A windowed rule's condition fires an alert once when it starts for a key and resolves it
//! once it has stayed false for the rule's `hold_secs` of the data's clock (a hold time, so
//! a condition that flickers does not flap). An event rule fires at most once per key per
//! hold time and counts the further matches in its alert (see `rules::single`).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;

use super::report::{AnalyticsReport, KindReport, PlaceRef};
use super::rules::{
    CompiledRules, EventRules, NewKeys, RateJump, RuleError, RuleSet, RuleType, Severity, Subject,
    key_of, label_of,
};
use super::{KeyKind, Map};
use crate::aggregates::{DataClock, Place};
use crate::event::Event;

/// Alerts kept for `GET /api/alerts` by default (the most recent).
pub const KEEP: usize = 200;

/// The alerts' settings besides the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertsConfig {
    /// Alerts kept for `GET /api/alerts` (the most recent).
    pub keep: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { keep: KEEP }
    }
}

/// One alert: fired, and resolved once its condition has ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Unique within this run, increasing.
    pub id: u64,
    /// The name of the rule that fired it.
    pub rule: String,
    /// The rule's type.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// The rule's severity.
    pub severity: Severity,
    /// The key kind, absent for a rule over the whole window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<KeyKind>,
    /// The key, as results show it (absent for a rule over the whole window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where the key is: a place, or the first matching event's place or coordinates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<PlaceRef>,
    /// `firing` or `resolved`.
    pub state: AlertState,
    /// The data's clock (unix second) when it fired.
    pub fired_at: i64,
    /// When it resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    /// The value that fired it: the key's share of the window (`heavy_hitter`, `outlier`,
    /// `new_key`), the suspicious share, the rate's ratio to its baseline (`rate_jump`), or
    /// the matching events (`event`).
    pub value: f64,
    /// The largest value seen while it was firing (an event rule's matches so far).
    pub peak: f64,
    /// Events that matched (`event` rules), the first one included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The first matching event (`event` rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<Event>>,
}

impl Alert {
    /// One line for people (a chat message): what, which key, how much, when.
    pub fn summary(&self) -> String {
        let words = match self.rule_type {
            RuleType::HeavyHitter => "heavy hitter",
            RuleType::Outlier => "outlier",
            RuleType::SuspiciousShare => "suspicious share",
            RuleType::RateJump => "rate jump",
            RuleType::NewKey => "new key in volume",
            RuleType::Event => "event rule",
        };
        let rule = if self.rule == self.rule_type.name() {
            words.to_owned()
        } else {
            format!("{words} {}", self.rule)
        };
        let what = match (&self.kind, &self.key) {
            (Some(kind), Some(key)) => format!("{} {key}", kind.name()),
            _ => "all traffic".to_owned(),
        };
        let how_much = match self.rule_type {
            RuleType::RateJump => format!(
                "{:.1}x the baseline rate (peak {:.1}x)",
                self.value, self.peak
            ),
            RuleType::Event => format!("{} matching events", self.count.unwrap_or(1)),
            _ => format!(
                "{:.1}% of the window (peak {:.1}%)",
                self.value * 100.0,
                self.peak * 100.0
            ),
        };
        let when = match self.resolved_at {
            Some(at) => format!("resolved at {at}, fired at {}", self.fired_at),
            None => format!("since {}", self.fired_at),
        };
        let state = match self.state {
            AlertState::Firing => "FIRING",
            AlertState::Resolved => "RESOLVED",
        };
        let severity = match self.severity {
            Severity::Info => "",
            Severity::Warning => "",
            Severity::Critical => " [critical]",
        };
        format!(
            "[traffic-globe] {state}{severity} {rule}: {what}, {how_much}, {when} \
             (unix seconds of the data's clock)"
        )
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds (or ended less than the hold time ago).
    Firing,
    /// The condition ended.
    Resolved,
}

/// A windowed condition: the rule's name, and the key it holds for.
type Condition = (String, Option<KeyKind>, Option<String>);

/// What a rule has done, as `GET /api/alerts/rules` lists it beside the rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStatus {
    /// The rule's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// Its alerts firing now.
    pub firing: usize,
    /// Events it matched (`event` rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    /// Matches of keys it could not follow, beyond its key limit (`event` rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untracked: Option<u64>,
}

/// The per-rule state of a windowed rule that counts events itself.
#[derive(Debug)]
enum Trend {
    None,
    Rate(RateJump),
    New(NewKeys),
}

/// The alert state machines of every rule and key.
#[derive(Debug)]
pub struct Alerts {
    config: AlertsConfig,
    next_id: u64,
    spec: RuleSet,
    rules: CompiledRules,
    trends: Vec<Trend>,
    single: EventRules,
    /// Firing windowed alerts by condition, with the last second their condition held.
    active: Map<Condition, (Alert, i64)>,
    recent: VecDeque<Alert>,
    /// The data's clock as last seen.
    clock: Option<DataClock>,
    /// Alerts of events observed since the last [`Alerts::take_fired`].
    fired: Vec<Alert>,
}

impl Default for Alerts {
    fn default() -> Self {
        Self::new(AlertsConfig::default())
    }
}

impl Alerts {
    /// No alerts yet, with the shipped rules.
    pub fn new(config: AlertsConfig) -> Self {
        // The shipped rules compile (a unit test says so); an empty set is the fallback.
        let spec = RuleSet::default();
        Self::with_rules(config, spec).unwrap_or_else(|_| {
            Self::with_rules(
                config,
                RuleSet {
                    hold_secs: 10,
                    rules: Vec::new(),
                },
            )
            .unwrap_or_else(|_| unreachable!("an empty rule set compiles"))
        })
    }

    /// No alerts yet, with `rules` (checked).
    pub fn with_rules(config: AlertsConfig, rules: RuleSet) -> Result<Self, RuleError> {
        let compiled = rules.compile()?;
        let mut alerts = Self {
            config,
            next_id: 1,
            spec: RuleSet {
                hold_secs: rules.hold_secs,
                rules: Vec::new(),
            },
            rules: CompiledRules::default(),
            trends: Vec::new(),
            single: EventRules::default(),
            active: Map::default(),
            recent: VecDeque::new(),
            clock: None,
            fired: Vec::new(),
        };
        alerts.install(rules, compiled);
        Ok(alerts)
    }

    /// The rules in force, as written.
    pub fn rules(&self) -> &RuleSet {
        &self.spec
    }

    /// What each rule has done.
    pub fn status(&self) -> Vec<RuleStatus> {
        let windowed = self.rules.windowed.iter().map(|w| RuleStatus {
            name: w.name.clone(),
            rule_type: w.rule_type,
            firing: self.active.keys().filter(|c| c.0 == w.name).count(),
            matched: None,
            untracked: None,
        });
        let single = self
            .single
            .rules
            .iter()
            .enumerate()
            .map(|(i, s)| RuleStatus {
                name: s.name.clone(),
                rule_type: RuleType::Event,
                firing: self
                    .single
                    .all_firing()
                    .filter(|a| a.rule == s.name)
                    .count(),
                matched: Some(self.single.matched[i]),
                untracked: Some(self.single.untracked[i]),
            });
        windowed.chain(single).collect()
    }

    /// Puts `rules` in force, checked first (nothing changes when they are refused). A rule
    /// that keeps its name and settings keeps its state and firing alerts; the alerts of the
    /// others resolve now, and are returned.
    pub fn set_rules(&mut self, rules: RuleSet) -> Result<Vec<Alert>, RuleError> {
        let compiled = rules.compile()?;
        let kept: Vec<String> = rules
            .rules
            .iter()
            .filter(|r| {
                self.spec.rules.contains(r)
                    && r.hold_secs.unwrap_or(rules.hold_secs)
                        == r.hold_secs.unwrap_or(self.spec.hold_secs)
            })
            .map(|r| r.name.clone())
            .collect();
        let clock = self.clock.map_or(0, |c| c.second);
        let mut changes = Vec::new();
        // Windowed alerts of rules that changed or went.
        let ended: Vec<Condition> = self
            .active
            .keys()
            .filter(|c| !kept.contains(&c.0))
            .cloned()
            .collect();
        for condition in ended {
            if let Some((mut alert, _)) = self.active.remove(&condition) {
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(clock.max(alert.fired_at));
                changes.push(alert);
            }
        }
        // Event rules: the unchanged keep their state.
        let mut old = std::mem::take(&mut self.single);
        let old_trends = std::mem::take(&mut self.trends);
        let old_windowed = std::mem::take(&mut self.rules.windowed);
        self.install(rules, compiled);
        let mut resolved = Vec::new();
        old.expire_where(clock, |name| !kept.iter().any(|k| k == name), &mut resolved);
        self.single
            .adopt(old, |name| kept.iter().any(|k| k == name));
        for (w, trend) in old_windowed.iter().zip(old_trends) {
            if let Some(i) = self
                .rules
                .windowed
                .iter()
                .position(|n| n.name == w.name && kept.contains(&n.name))
            {
                self.trends[i] = trend;
            }
        }
        changes.extend(resolved);
        changes.sort_by_key(|a| a.id);
        for alert in &changes {
            self.remember(alert.clone());
        }
        Ok(changes)
    }

    fn install(&mut self, spec: RuleSet, compiled: CompiledRules) {
        self.trends = compiled
            .windowed
            .iter()
            .map(|w| match w.rule_type {
                RuleType::RateJump => Trend::Rate(RateJump::new(w)),
                RuleType::NewKey => Trend::New(NewKeys::new(w)),
                _ => Trend::None,
            })
            .collect();
        self.single = EventRules::new(compiled.single.clone());
        self.rules = compiled;
        self.spec = spec;
    }

    /// Checks one event, placed at `place`, of network `asn`, with the data's clock at
    /// `clock` after it was recorded, against the event rules, and counts it for the rules
    /// that count events. The alerts it fires wait in [`Alerts::take_fired`].
    #[inline]
    pub fn observe(
        &mut self,
        event: &Event,
        place: Option<&Arc<Place>>,
        asn: Option<u32>,
        clock: DataClock,
    ) {
        if self.clock.is_some_and(|c| c.era != clock.era) {
            self.new_era(clock.second);
        }
        self.clock = Some(clock);
        let second = event.timestamp.floor() as i64;
        let subject = Subject {
            event,
            country: place
                .map(|p| p.country_code.as_str())
                .filter(|c| !c.is_empty()),
            city: place.map(|p| p.city.as_str()),
            asn,
        };
        if !self.single.rules.is_empty() {
            self.single
                .observe(&subject, place, second, &mut self.next_id, &mut self.fired);
        }
        for (trend, rule) in self.trends.iter_mut().zip(&self.rules.windowed) {
            match trend {
                Trend::None => {}
                Trend::Rate(rate) => rate.observe(second),
                Trend::New(new) => {
                    let key = key_of(new.kind, &subject, place);
                    new.observe(rule, key, second, || label_of(rule.key, &subject, place));
                }
            }
        }
    }

    /// The alerts fired by the events observed since the last call (each is remembered).
    pub fn take_fired(&mut self) -> Vec<Alert> {
        let fired = std::mem::take(&mut self.fired);
        for alert in &fired {
            self.remember(alert.clone());
        }
        fired
    }

    fn new_era(&mut self, second: i64) {
        self.single.expire(second, true, &mut self.fired);
        for (trend, rule) in self.trends.iter_mut().zip(&self.rules.windowed) {
            match trend {
                Trend::None => {}
                Trend::Rate(rate) => rate.clear(rule),
                Trend::New(new) => new.clear(rule),
            }
        }
    }

    /// Checks every windowed rule against `report`, and ends the event rules' hold times
    /// that are over; returns the alerts that fired or resolved (those fired by events
    /// since the last [`Alerts::take_fired`] first).
    pub fn evaluate(&mut self, report: &AnalyticsReport) -> Vec<Alert> {
        let mut changes = self.take_fired();
        let Some(clock) = report.clock.map(|c| c.second) else {
            return changes;
        };
        let mut holding: Vec<(Condition, f64, Option<PlaceRef>, usize)> = Vec::new();
        for (index, rule) in self.rules.windowed.iter().enumerate() {
            let name = &rule.name;
            let keyed = |kind: KeyKind, list: &dyn Fn(&KindReport) -> &Vec<super::KeyReport>| {
                list(report.kinds.get(kind))
                    .iter()
                    .map(move |e| {
                        (
                            (name.clone(), Some(kind), Some(e.key.clone())),
                            e.share,
                            e.place.clone(),
                            index,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            match rule.rule_type {
                RuleType::HeavyHitter => {
                    for &kind in &rule.keys {
                        // A window of a few events has a few keys far above H%: not yet.
                        if report.kinds.get(kind).total.count < rule.min_events {
                            continue;
                        }
                        holding.extend(keyed(kind, &|k| &k.heavy_hitters));
                    }
                }
                RuleType::Outlier => {
                    for &kind in &rule.keys {
                        if report.kinds.get(kind).total.count < rule.min_events {
                            continue;
                        }
                        holding.extend(
                            keyed(kind, &|k| &k.outliers)
                                .into_iter()
                                .filter(|(_, share, _, _)| *share >= rule.min_share),
                        );
                    }
                }
                RuleType::SuspiciousShare => {
                    let window = &report.kinds.ip;
                    let share = window.suspicious_share;
                    if window.total.count >= rule.min_events && share > rule.above {
                        holding.push(((name.clone(), None, None), share, None, index));
                    }
                }
                RuleType::RateJump => {
                    if let Trend::Rate(rate) = &self.trends[index]
                        && let Some(ratio) = rate.check(rule, clock)
                    {
                        holding.push(((name.clone(), None, None), ratio, None, index));
                    }
                }
                RuleType::NewKey => {
                    if let Trend::New(new) = &mut self.trends[index] {
                        for (label, share) in new.check(rule, clock) {
                            holding.push((
                                (name.clone(), Some(rule.key), Some(label)),
                                share,
                                None,
                                index,
                            ));
                        }
                    }
                }
                RuleType::Event => {}
            }
        }
        let mut fired = Vec::new();
        for (condition, value, place, index) in holding {
            if let Some((alert, last)) = self.active.get_mut(&condition) {
                *last = clock;
                alert.value = value;
                alert.peak = alert.peak.max(value);
                continue;
            }
            let rule = &self.rules.windowed[index];
            let alert = Alert {
                id: self.next_id,
                rule: rule.name.clone(),
                rule_type: rule.rule_type,
                severity: rule.severity,
                kind: condition.1,
                key: condition.2.clone(),
                place,
                state: AlertState::Firing,
                fired_at: clock,
                resolved_at: None,
                value,
                peak: value,
                count: None,
                event: None,
            };
            self.next_id += 1;
            fired.push(alert.clone());
            self.active.insert(condition, (alert, clock));
        }
        let windowed = &self.rules.windowed;
        let hold_of = |name: &str| {
            windowed
                .iter()
                .find(|w| w.name == name)
                .map_or(0, |w| w.hold_secs)
        };
        let ended: Vec<Condition> = self
            .active
            .iter()
            .filter(|(c, (_, last))| clock - *last >= hold_of(&c.0))
            .map(|(c, _)| c.clone())
            .collect();
        for condition in ended {
            if let Some((mut alert, _)) = self.active.remove(&condition) {
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(clock);
                fired.push(alert);
            }
        }
        self.single.expire(clock, false, &mut fired);
        fired.sort_by_key(|a| a.id);
        for alert in &fired {
            self.remember(alert.clone());
        }
        changes.extend(fired);
        changes
    }

    /// Keeps the newest state of `alert` in the recent list.
    fn remember(&mut self, alert: Alert) {
        if let Some(old) = self.recent.iter_mut().find(|a| a.id == alert.id) {
            *old = alert;
            return;
        }
        if self.recent.len() >= self.config.keep.max(1) {
            self.recent.pop_front();
        }
        self.recent.push_back(alert);
    }

    /// The most recent alerts, newest first (firing ones as they are now: their peak or
    /// their count so far).
    pub fn recent(&self) -> Vec<Alert> {
        self.recent
            .iter()
            .rev()
            .map(|a| {
                let windowed = self
                    .active
                    .values()
                    .find(|(b, _)| b.id == a.id)
                    .map(|(b, _)| b);
                windowed
                    .or_else(|| self.single.firing(a.id))
                    .cloned()
                    .unwrap_or_else(|| a.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::DataClock;
    use crate::analytics::KeyReport;

    fn key(name: &str, share: f64) -> KeyReport {
        KeyReport {
            key: name.to_owned(),
            id: 0,
            count: 1,
            bytes: 1,
            suspicious: 0,
            share,
            bytes_share: share,
            suspicious_share: 0.0,
            rate: 1.0,
            place: None,
        }
    }

    /// A report at `second` where `heavy` are the network's heavy hitters.
    fn report(second: i64, heavy: &[&str]) -> AnalyticsReport {
        let mut report = AnalyticsReport {
            clock: Some(DataClock { second, era: 0 }),
            ..AnalyticsReport::default()
        };
        report.kinds.network.heavy_hitters = heavy.iter().map(|k| key(k, 0.3)).collect();
        report.kinds.network.total.count = 100;
        report
    }

    #[test]
    fn an_alert_fires_once_while_its_condition_holds_and_resolves_after_the_hold_time() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let fired = alerts.evaluate(&report(100, &["203.0.113.0/24"]));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].rule_type, RuleType::HeavyHitter);
        assert_eq!(fired[0].rule, "heavy_hitter");
        assert_eq!(fired[0].key.as_deref(), Some("203.0.113.0/24"));
        assert_eq!(fired[0].state, AlertState::Firing);
        for second in 101..=130 {
            assert!(
                alerts
                    .evaluate(&report(second, &["203.0.113.0/24"]))
                    .is_empty()
            );
        }
        // Gone from the list: still firing until 10 s of the data's clock have passed.
        assert!(alerts.evaluate(&report(135, &[])).is_empty());
        let resolved = alerts.evaluate(&report(140, &[]));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].id, fired[0].id);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(resolved[0].resolved_at, Some(140));
        assert_eq!(alerts.recent()[0].state, AlertState::Resolved);
    }

    #[test]
    fn a_condition_that_flickers_within_the_hold_time_does_not_flap() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let mut changes = Vec::new();
        for second in 0..60 {
            let heavy: &[&str] = if second % 4 == 0 { &["n"] } else { &[] };
            changes.extend(alerts.evaluate(&report(second, heavy)));
        }
        assert_eq!(changes.len(), 1, "fired once, never resolved: {changes:?}");
    }

    #[test]
    fn a_window_with_fewer_events_than_the_rule_needs_fires_nothing() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let mut r = report(5, &["n"]);
        r.kinds.network.total.count = 49;
        assert!(alerts.evaluate(&r).is_empty());
        r.kinds.network.total.count = 50;
        assert_eq!(alerts.evaluate(&r).len(), 1);
    }

    #[test]
    fn an_outlier_with_a_tiny_share_of_the_window_fires_nothing() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let mut r = report(5, &[]);
        r.kinds.network.outliers = vec![key("a", 0.011)];
        assert!(alerts.evaluate(&r).is_empty());
        r.kinds.network.outliers = vec![key("a", 0.2)];
        assert_eq!(alerts.evaluate(&r)[0].rule_type, RuleType::Outlier);
    }

    #[test]
    fn suspicious_share_over_the_threshold_fires_for_the_whole_window() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let mut r = report(5, &[]);
        r.kinds.ip.total.count = 100;
        r.kinds.ip.suspicious_share = 0.4;
        assert!(alerts.evaluate(&r).is_empty());
        r.kinds.ip.total.count = 19;
        r.kinds.ip.suspicious_share = 0.7;
        assert!(alerts.evaluate(&r).is_empty(), "too few events to judge");
        r.kinds.ip.total.count = 20;
        let fired = alerts.evaluate(&r);
        assert_eq!(fired[0].rule_type, RuleType::SuspiciousShare);
        assert_eq!(fired[0].key, None);
    }
}
