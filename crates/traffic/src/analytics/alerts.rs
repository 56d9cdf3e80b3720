//! Alerts over the analytics' results: a rule's condition, checked at each report, fires an
//! alert once when it starts for a key and resolves it once it has stayed false for
//! `hold_secs` of the data's clock (a hold time, so a condition that flickers does not flap).
//!
//! Rules (the defaults; not yet configurable at runtime):
//! - `heavy_hitter`: a key of `ip` or `network` is a heavy hitter of its window;
//! - `outlier`: a key of `network` or `place` is an outlier of its window with at least
//!   `outlier_min_share` of its events (on sparse data, a key with 3 events where most have 1
//!   is already 3 standard deviations out: not worth an alert);
//! - `suspicious_share`: the suspicious share of the whole window (of the `ip` kind) is above
//!   `suspicious_share`.

use std::collections::VecDeque;

use serde::Serialize;

use super::report::{AnalyticsReport, KindReport, PlaceRef};
use super::{KeyKind, Map};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A key above H% of its window's events.
    HeavyHitter,
    /// A key more than X standard deviations above the mean rate.
    Outlier,
    /// The window's suspicious share above the threshold.
    SuspiciousShare,
}

/// The alert rules' settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertsConfig {
    /// Seconds of the data's clock a condition must stay false before its alert resolves.
    pub hold_secs: i64,
    /// Threshold of the `suspicious_share` rule (0..=1).
    pub suspicious_share: f64,
    /// Smallest share of the window's events an outlier needs to fire an alert.
    pub outlier_min_share: f64,
    /// Alerts kept for `GET /api/alerts` (the most recent).
    pub keep: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            hold_secs: 10,
            suspicious_share: 0.5,
            outlier_min_share: 0.02,
            keep: 200,
        }
    }
}

/// One alert: fired, and resolved once its condition has ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Unique within this run, increasing.
    pub id: u64,
    /// The rule that fired it.
    pub rule: Rule,
    /// The key kind, absent for a rule over the whole window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<KeyKind>,
    /// The key, as results show it (absent for a rule over the whole window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where the key is, for a place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<PlaceRef>,
    /// `firing` or `resolved`.
    pub state: AlertState,
    /// The data's clock (unix second) when it fired.
    pub fired_at: i64,
    /// When it resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    /// The value that fired it: the key's share of the window, or the suspicious share.
    pub value: f64,
    /// The largest value seen while it was firing.
    pub peak: f64,
}

impl Alert {
    /// One line for people (a chat message): what, which key, how much, when.
    pub fn summary(&self) -> String {
        let rule = match self.rule {
            Rule::HeavyHitter => "heavy hitter",
            Rule::Outlier => "outlier",
            Rule::SuspiciousShare => "suspicious share",
        };
        let what = match (&self.kind, &self.key) {
            (Some(kind), Some(key)) => format!("{} {key}", kind.name()),
            _ => "all traffic".to_owned(),
        };
        let when = match self.resolved_at {
            Some(at) => format!("resolved at {at}, fired at {}", self.fired_at),
            None => format!("since {}", self.fired_at),
        };
        let state = match self.state {
            AlertState::Firing => "FIRING",
            AlertState::Resolved => "RESOLVED",
        };
        format!(
            "[traffic-globe] {state} {rule}: {what}, {:.1}% of the window (peak {:.1}%), {when} \
             (unix seconds of the data's clock)",
            self.value * 100.0,
            self.peak * 100.0
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

type Condition = (Rule, Option<KeyKind>, Option<String>);

/// The alert state machines of every rule and key.
#[derive(Debug, Default)]
pub struct Alerts {
    config: AlertsConfig,
    next_id: u64,
    /// Firing alerts by condition, with the last second their condition held.
    active: Map<Condition, (Alert, i64)>,
    recent: VecDeque<Alert>,
}

impl Alerts {
    /// No alerts yet.
    pub fn new(config: AlertsConfig) -> Self {
        Self {
            config,
            next_id: 1,
            ..Self::default()
        }
    }

    /// Checks every rule against `report`; returns the alerts that fired or resolved.
    pub fn evaluate(&mut self, report: &AnalyticsReport) -> Vec<Alert> {
        let Some(clock) = report.clock.map(|c| c.second) else {
            return Vec::new();
        };
        let mut holding: Vec<(Condition, f64, Option<PlaceRef>)> = Vec::new();
        let keyed = |rule, kind: KeyKind, list: &dyn Fn(&KindReport) -> &Vec<super::KeyReport>| {
            list(report.kinds.get(kind))
                .iter()
                .map(move |e| {
                    (
                        (rule, Some(kind), Some(e.key.clone())),
                        e.share,
                        e.place.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        for kind in [KeyKind::Ip, KeyKind::Network] {
            holding.extend(keyed(Rule::HeavyHitter, kind, &|k| &k.heavy_hitters));
        }
        for kind in [KeyKind::Network, KeyKind::Place] {
            let min = self.config.outlier_min_share;
            holding.extend(
                keyed(Rule::Outlier, kind, &|k| &k.outliers)
                    .into_iter()
                    .filter(|(_, share, _)| *share >= min),
            );
        }
        let share = report.kinds.ip.suspicious_share;
        if share > self.config.suspicious_share {
            holding.push(((Rule::SuspiciousShare, None, None), share, None));
        }
        let mut changes = Vec::new();
        for (condition, value, place) in holding {
            if let Some((alert, last)) = self.active.get_mut(&condition) {
                *last = clock;
                alert.peak = alert.peak.max(value);
                continue;
            }
            let alert = Alert {
                id: self.next_id,
                rule: condition.0,
                kind: condition.1,
                key: condition.2.clone(),
                place,
                state: AlertState::Firing,
                fired_at: clock,
                resolved_at: None,
                value,
                peak: value,
            };
            self.next_id += 1;
            changes.push(alert.clone());
            self.active.insert(condition, (alert, clock));
        }
        let hold = self.config.hold_secs;
        let ended: Vec<Condition> = self
            .active
            .iter()
            .filter(|(_, (_, last))| clock - *last >= hold)
            .map(|(c, _)| c.clone())
            .collect();
        for condition in ended {
            if let Some((mut alert, _)) = self.active.remove(&condition) {
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(clock);
                changes.push(alert);
            }
        }
        changes.sort_by_key(|a| a.id);
        for alert in &changes {
            self.remember(alert.clone());
        }
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

    /// The most recent alerts, newest first (firing ones with their peak so far).
    pub fn recent(&self) -> Vec<Alert> {
        self.recent
            .iter()
            .rev()
            .map(|a| {
                let active = self
                    .active
                    .values()
                    .find(|(b, _)| b.id == a.id)
                    .map(|(b, _)| b.clone());
                active.unwrap_or_else(|| a.clone())
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
        report
    }

    #[test]
    fn an_alert_fires_once_while_its_condition_holds_and_resolves_after_the_hold_time() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let fired = alerts.evaluate(&report(100, &["203.0.113.0/24"]));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].rule, Rule::HeavyHitter);
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
    fn an_outlier_with_a_tiny_share_of_the_window_fires_nothing() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let mut r = report(5, &[]);
        r.kinds.network.outliers = vec![key("a", 0.011)];
        assert!(alerts.evaluate(&r).is_empty());
        r.kinds.network.outliers = vec![key("a", 0.2)];
        assert_eq!(alerts.evaluate(&r)[0].rule, Rule::Outlier);
    }

    #[test]
    fn suspicious_share_over_the_threshold_fires_for_the_whole_window() {
        let mut alerts = Alerts::new(AlertsConfig::default());
        let mut r = report(5, &[]);
        r.kinds.ip.suspicious_share = 0.4;
        assert!(alerts.evaluate(&r).is_empty());
        r.kinds.ip.suspicious_share = 0.7;
        let fired = alerts.evaluate(&r);
        assert_eq!(fired[0].rule, Rule::SuspiciousShare);
        assert_eq!(fired[0].key, None);
    }
}
