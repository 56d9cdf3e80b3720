//! The state of the event rules: per rule, per key (source IP by default), the matches since
//! the key's first one. A key fires once `at_least` of its events matched within `hold_secs`
//! of that first match (seconds of the data's clock); its alert then counts the further
//! matches and resolves when the hold time is over, so a key raises at most one alert per
//! hold time. Memory is bounded: at most [`MAX_KEYS`] keys per rule are followed at once;
//! matches of other keys meanwhile are counted as `untracked`, not silently lost.

use std::net::IpAddr;
use std::sync::Arc;

use super::super::alerts::{Alert, AlertState};
use super::super::report::PlaceRef;
use super::super::{KeyKind, Map, country_key, ip_key, network_key};
use super::{RuleType, Single, Subject};
use crate::aggregates::Place;
use crate::event::Event;

/// Most keys followed at once per rule.
pub const MAX_KEYS: usize = 10_000;

/// What is known of a key's matches in its current hold time.
#[derive(Debug)]
struct KeyState {
    /// Second of its first match.
    first: i64,
    /// Matches since.
    count: u64,
    /// Its alert, once fired.
    alert: Option<Alert>,
}

/// The event rules and their per-key state.
#[derive(Debug, Default)]
pub(crate) struct EventRules {
    pub(crate) rules: Vec<Single>,
    keys: Vec<Map<u128, KeyState>>,
    /// Per rule: matches of keys that could not be followed (over [`MAX_KEYS`]).
    pub(crate) untracked: Vec<u64>,
    /// Per rule: every match.
    pub(crate) matched: Vec<u64>,
    /// Firing alerts: id -> (rule, key).
    firing: Map<u64, (usize, u128)>,
}

impl EventRules {
    pub(crate) fn new(rules: Vec<Single>) -> Self {
        let n = rules.len();
        Self {
            rules,
            keys: (0..n).map(|_| Map::default()).collect(),
            untracked: vec![0; n],
            matched: vec![0; n],
            firing: Map::default(),
        }
    }

    /// Checks `subject` (placed at `place`, at `second` of the data's clock) against every
    /// rule; alerts that fire are pushed on `out`, numbered from `next_id`.
    #[inline]
    pub(crate) fn observe(
        &mut self,
        subject: &Subject<'_>,
        place: Option<&Arc<Place>>,
        second: i64,
        next_id: &mut u64,
        out: &mut Vec<Alert>,
    ) {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.predicate.matches(subject) {
                continue;
            }
            self.matched[i] += 1;
            let key = key_of(rule.key, subject, place);
            let keys = &mut self.keys[i];
            if keys.len() >= MAX_KEYS && !keys.contains_key(&key) {
                self.untracked[i] += 1;
                continue;
            }
            let state = keys.entry(key).or_insert(KeyState {
                first: second,
                count: 0,
                alert: None,
            });
            state.count += 1;
            match &mut state.alert {
                Some(alert) => {
                    alert.value = state.count as f64;
                    alert.peak = alert.value;
                    alert.count = Some(state.count);
                }
                None if state.count >= rule.at_least => {
                    let alert = Alert {
                        id: *next_id,
                        rule: rule.name.clone(),
                        rule_type: RuleType::Event,
                        severity: rule.severity,
                        kind: Some(rule.key),
                        key: Some(label_of(rule.key, subject, place)),
                        place: place_ref(subject.event, place),
                        state: AlertState::Firing,
                        fired_at: second,
                        resolved_at: None,
                        value: state.count as f64,
                        peak: state.count as f64,
                        count: Some(state.count),
                        event: Some(Box::new(subject.event.clone())),
                    };
                    *next_id += 1;
                    self.firing.insert(alert.id, (i, key));
                    out.push(alert.clone());
                    state.alert = Some(alert);
                }
                None => {}
            }
        }
    }

    /// Ends the hold times that are over at `clock` (or every one, for a new era); the
    /// alerts that resolve are pushed on `out`.
    pub(crate) fn expire(&mut self, clock: i64, all: bool, out: &mut Vec<Alert>) {
        for (i, keys) in self.keys.iter_mut().enumerate() {
            let hold = self.rules[i].hold_secs;
            keys.retain(|_, state| {
                if !all && clock < state.first + hold {
                    return true;
                }
                if let Some(mut alert) = state.alert.take() {
                    self.firing.remove(&alert.id);
                    alert.state = AlertState::Resolved;
                    alert.resolved_at = Some(clock.max(alert.fired_at));
                    out.push(alert);
                }
                false
            });
        }
    }

    /// Resolves every alert of the rules whose name `ends` says, at `clock`.
    pub(crate) fn expire_where(
        &mut self,
        clock: i64,
        ends: impl Fn(&str) -> bool,
        out: &mut Vec<Alert>,
    ) {
        for (i, keys) in self.keys.iter_mut().enumerate() {
            if !ends(&self.rules[i].name) {
                continue;
            }
            for (_, mut state) in keys.drain() {
                if let Some(mut alert) = state.alert.take() {
                    self.firing.remove(&alert.id);
                    alert.state = AlertState::Resolved;
                    alert.resolved_at = Some(clock.max(alert.fired_at));
                    out.push(alert);
                }
            }
        }
    }

    /// Takes over the state of `old`'s rules that `keep` names (same name, same settings).
    pub(crate) fn adopt(&mut self, mut old: EventRules, keep: impl Fn(&str) -> bool) {
        for (j, rule) in self.rules.iter().enumerate() {
            if !keep(&rule.name) {
                continue;
            }
            let Some(i) = old.rules.iter().position(|r| r.name == rule.name) else {
                continue;
            };
            let keys = std::mem::take(&mut old.keys[i]);
            for (key, state) in &keys {
                if let Some(alert) = &state.alert {
                    self.firing.insert(alert.id, (j, *key));
                }
            }
            self.keys[j] = keys;
            self.matched[j] = old.matched[i];
            self.untracked[j] = old.untracked[i];
        }
    }

    /// The firing alert `id` as it is now (its count so far), if it is an event rule's.
    pub(crate) fn firing(&self, id: u64) -> Option<&Alert> {
        let &(rule, key) = self.firing.get(&id)?;
        self.keys.get(rule)?.get(&key)?.alert.as_ref()
    }

    /// Every firing alert.
    pub(crate) fn all_firing(&self) -> impl Iterator<Item = &Alert> {
        self.keys
            .iter()
            .flat_map(|keys| keys.values().filter_map(|s| s.alert.as_ref()))
    }
}

/// The key of `kind` of an event (`u128::MAX` when it has none: e.g. no country).
pub(crate) fn key_of(kind: KeyKind, s: &Subject<'_>, place: Option<&Arc<Place>>) -> u128 {
    let none = u128::MAX;
    match kind {
        KeyKind::Ip => ip_key(s.event.ip),
        KeyKind::Network => network_key(s.event.ip),
        KeyKind::Country => s.country.and_then(country_key).unwrap_or(none),
        KeyKind::Place => place.map_or(none, |p| u128::from(p.key)),
        KeyKind::Protocol => s
            .event
            .protocol
            .as_deref()
            .and_then(country_key)
            .unwrap_or(none),
        KeyKind::Status => s.event.status.map_or(none, |st| u128::from(st / 100)),
    }
}

/// How the key of `kind` of an event is shown (as the analytics' results show keys).
pub(crate) fn label_of(kind: KeyKind, s: &Subject<'_>, place: Option<&Arc<Place>>) -> String {
    let none = || "(none)".to_owned();
    match kind {
        KeyKind::Ip => s.event.ip.to_string(),
        KeyKind::Network => match super::super::ip_of(network_key(s.event.ip)) {
            IpAddr::V4(v4) => format!("{v4}/24"),
            IpAddr::V6(v6) => format!("{v6}/48"),
        },
        KeyKind::Country => s.country.map_or_else(none, str::to_owned),
        KeyKind::Place => place.map_or_else(none, |p| p.city.clone()),
        KeyKind::Protocol => s.event.protocol.clone().unwrap_or_else(none),
        KeyKind::Status => s
            .event
            .status
            .map_or_else(none, |st| format!("{}xx", st / 100)),
    }
}

/// Where an event is: its place, or its own coordinates.
fn place_ref(event: &Event, place: Option<&Arc<Place>>) -> Option<PlaceRef> {
    match place {
        Some(p) => Some(PlaceRef {
            key: p.key,
            city: p.city.clone(),
            country_code: p.country_code.clone(),
            latitude: event.latitude.unwrap_or(p.latitude),
            longitude: event.longitude.unwrap_or(p.longitude),
        }),
        None => event.coordinates().map(|(latitude, longitude)| PlaceRef {
            key: 0,
            city: String::new(),
            country_code: String::new(),
            latitude,
            longitude,
        }),
    }
}
