//! The alert rules: one list, read from a rules file (`--alert-rules FILE`, JSON or TOML) or
//! put through the admin API, validated once and compiled for [`super::alerts::Alerts`].
//!
//! A rule set is `{"hold_secs": 10, "rules": [RULE, ...]}`; each rule has a `name` (unique),
//! a `type`, a `severity` (`info`, `warning` (default), `critical`), an optional `hold_secs`
//! (else the set's) and the settings of its type (defaults in brackets):
//! - windowed rules over the analytics' results, checked at each report:
//!   - `heavy_hitter`: `keys` (`["ip", "network"]`), `min_events` (50): a key above H% of
//!     its window, once the window has that many events;
//!   - `outlier`: `keys` (`["network"]`), `min_share` (0.02), `min_events` (50): a
//!     key more than X standard deviations above the mean rate, with at least that share of
//!     the window;
//!   - `suspicious_share`: `above` (0.5), `min_events` (20): the window's suspicious share;
//!   - `rate_jump`: `factor` (3), `recent_secs` (10), `baseline_secs` (300), `min_events`
//!     (50): the rate of the last `recent_secs` seconds above `factor` times the average of
//!     the `baseline_secs` before them;
//!   - `new_key`: `key` (`country`), `min_events` (20), `min_share` (0.2), `recent_secs`
//!     (10), `memory_secs` (3600), `warmup_secs` (120): a key unseen for `memory_secs`
//!     reaches `min_events` and `min_share` of all events within `recent_secs` of its first;
//! - `event`: `when` (a [`Condition`]), `key` (`ip`), `at_least` (1): single events; the rule
//!   fires for a key once `at_least` of its events matched within `hold_secs` of the first,
//!   at most once per key per hold time, and counts the further matches in the alert.
//!
//! Every setting is checked ([`RuleSet::compile`]); an error names the rule and the JSON
//! path of the setting (`rules[3].when.all[1].value`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KeyKind;

pub mod condition;
mod single;
mod trend;

#[cfg(test)]
mod reference_tests;

pub use condition::{Condition, ConditionError, Predicate, Subject};
pub use single::MAX_KEYS;
pub(crate) use single::{EventRules, key_of, label_of};
pub(crate) use trend::{NewKeys, RateJump};

/// Most rules in a set.
pub const MAX_RULES: usize = 200;
/// Longest hold time, seconds.
pub const MAX_HOLD_SECS: u32 = 86_400;

/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth a look.
    #[default]
    Warning,
    /// Act now.
    Critical,
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleType {
    /// A key above H% of its window.
    HeavyHitter,
    /// A key more than X standard deviations above the mean rate.
    Outlier,
    /// The window's suspicious share above a threshold.
    SuspiciousShare,
    /// The rate jumps above N times its recent average.
    RateJump,
    /// A new key (country, network, ...) appears in volume.
    NewKey,
    /// Single events that meet a condition.
    Event,
}

impl RuleType {
    /// The type's name in rules and alerts.
    pub fn name(self) -> &'static str {
        match self {
            RuleType::HeavyHitter => "heavy_hitter",
            RuleType::Outlier => "outlier",
            RuleType::SuspiciousShare => "suspicious_share",
            RuleType::RateJump => "rate_jump",
            RuleType::NewKey => "new_key",
            RuleType::Event => "event",
        }
    }
}

/// A rule as written: every setting of every type is optional here; [`RuleSet::compile`]
/// refuses those its type does not use and fills in the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name: letters, digits, `_`, `-`, `.` (at most 64).
    pub name: String,
    /// What it watches.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// How serious its alerts are.
    #[serde(default)]
    pub severity: Severity,
    /// Seconds of the data's clock (else the set's `hold_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_secs: Option<u32>,
    /// Key kinds watched (`heavy_hitter`, `outlier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyKind>>,
    /// The key kind (`new_key`: what is new; `event`: what an alert is per).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyKind>,
    /// Smallest share of the events (`outlier`, `new_key`), 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_share: Option<f64>,
    /// Threshold (`suspicious_share`), 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Fewest events for the rule to judge (every windowed type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// How many times the baseline rate (`rate_jump`), above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Seconds of "now" (`rate_jump`, `new_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_secs: Option<u32>,
    /// Seconds of the baseline before them (`rate_jump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_secs: Option<u32>,
    /// How long a key stays known after its last event (`new_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_secs: Option<u32>,
    /// Seconds of data before anything counts as new (`new_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_secs: Option<u32>,
    /// The condition (`event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Matches of one key within the hold time before it fires (`event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
}

impl RuleSpec {
    /// A rule of `rule_type` called `name` with every setting at its default.
    pub fn new(name: &str, rule_type: RuleType) -> Self {
        Self {
            name: name.to_owned(),
            rule_type,
            severity: Severity::default(),
            hold_secs: None,
            keys: None,
            key: None,
            min_share: None,
            above: None,
            min_events: None,
            factor: None,
            recent_secs: None,
            baseline_secs: None,
            memory_secs: None,
            warmup_secs: None,
            when: None,
            at_least: None,
        }
    }
}

/// The whole set of rules, as the file and `GET`/`PUT /api/alerts/rules` have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Default hold time of the rules, seconds of the data's clock.
    #[serde(default = "default_hold")]
    pub hold_secs: u32,
    /// The rules.
    pub rules: Vec<RuleSpec>,
}

fn default_hold() -> u32 {
    10
}

/// A rule set that cannot be used: which rule (by name, when it has one), where (the JSON
/// path of the setting) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{position}{}: {reason}", rule.as_ref().map(|r| format!(" (rule {r:?})")).unwrap_or_default())]
pub struct RuleError {
    /// The rule's name, when the error is in a rule that has one.
    pub rule: Option<String>,
    /// JSON path of the setting, e.g. `rules[2].when.any[0].op` (a line and column for a
    /// file that does not parse).
    pub position: String,
    /// Why.
    pub reason: String,
}

/// How a rules text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// TOML for a `.toml` file, JSON otherwise.
    pub fn of_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Json,
        }
    }
}

impl RuleSet {
    /// Reads a rule set written as `format`, checking its shape (not yet its values: see
    /// [`RuleSet::compile`]).
    pub fn parse(text: &str, format: Format) -> Result<Self, RuleError> {
        let value: Value = match format {
            Format::Json => serde_json::from_str(text).map_err(|e| RuleError {
                rule: None,
                position: format!("line {}, column {}", e.line(), e.column()),
                reason: e.to_string(),
            })?,
            Format::Toml => toml::from_str(text).map_err(|e| RuleError {
                rule: None,
                position: e
                    .span()
                    .map(|s| {
                        let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                        format!("line {line}")
                    })
                    .unwrap_or_default(),
                reason: e.message().to_owned(),
            })?,
        };
        Self::from_value(value)
    }

    /// Reads a rule set from JSON already parsed.
    pub fn from_value(value: Value) -> Result<Self, RuleError> {
        let names = value.clone();
        serde_path_to_error::deserialize(value).map_err(|e| {
            let position = e.path().to_string();
            RuleError {
                rule: rule_named_at(&names, &position),
                position,
                reason: e.into_inner().to_string(),
            }
        })
    }

    /// Checks every rule and compiles the set.
    pub fn compile(&self) -> Result<CompiledRules, RuleError> {
        let whole = |position: &str, reason: String| RuleError {
            rule: None,
            position: position.to_owned(),
            reason,
        };
        if !(1..=MAX_HOLD_SECS).contains(&self.hold_secs) {
            return Err(whole(
                "hold_secs",
                format!("{} is out of range 1..={MAX_HOLD_SECS}", self.hold_secs),
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(whole(
                "rules",
                format!("{} rules; at most {MAX_RULES}", self.rules.len()),
            ));
        }
        let mut compiled = CompiledRules::default();
        for (i, spec) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            let fail = |field: &str, reason: String| RuleError {
                rule: Some(spec.name.clone()),
                position: if field.is_empty() {
                    at.clone()
                } else {
                    format!("{at}.{field}")
                },
                reason,
            };
            check_name(&spec.name).map_err(|r| fail("name", r))?;
            if self.rules[..i].iter().any(|r| r.name == spec.name) {
                return Err(fail("name", "is the name of an earlier rule".into()));
            }
            compiled.push(spec, self.hold_secs, &fail)?;
        }
        Ok(compiled)
    }
}

/// The name of the rule at the start of `position` (`rules[3]...`) in `value`, if it has one.
fn rule_named_at(value: &Value, position: &str) -> Option<String> {
    let index: usize = position
        .strip_prefix("rules[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    value
        .get("rules")?
        .get(index)?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "{name:?}: only letters, digits, '_', '-' and '.' are allowed"
        ));
    }
    Ok(())
}

/// A windowed rule with every setting decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Windowed {
    pub(crate) name: String,
    pub(crate) rule_type: RuleType,
    pub(crate) severity: Severity,
    pub(crate) hold_secs: i64,
    pub(crate) keys: Vec<KeyKind>,
    pub(crate) key: KeyKind,
    pub(crate) min_share: f64,
    pub(crate) above: f64,
    pub(crate) min_events: u64,
    pub(crate) factor: f64,
    pub(crate) recent_secs: u32,
    pub(crate) baseline_secs: u32,
    pub(crate) memory_secs: u32,
    pub(crate) warmup_secs: u32,
}

/// An event rule, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Single {
    pub(crate) name: String,
    pub(crate) severity: Severity,
    pub(crate) hold_secs: i64,
    pub(crate) key: KeyKind,
    pub(crate) at_least: u64,
    pub(crate) predicate: Predicate,
}

/// A checked rule set, ready for [`super::alerts::Alerts`].
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    pub(crate) windowed: Vec<Windowed>,
    pub(crate) single: Vec<Single>,
}

/// Which settings each type uses (besides name, type, severity, hold_secs).
fn uses(rule_type: RuleType) -> &'static [&'static str] {
    match rule_type {
        RuleType::HeavyHitter => &["keys", "min_events"],
        RuleType::Outlier => &["keys", "min_share", "min_events"],
        RuleType::SuspiciousShare => &["above", "min_events"],
        RuleType::RateJump => &["factor", "recent_secs", "baseline_secs", "min_events"],
        RuleType::NewKey => &[
            "key",
            "min_events",
            "min_share",
            "recent_secs",
            "memory_secs",
            "warmup_secs",
        ],
        RuleType::Event => &["when", "key", "at_least"],
    }
}

fn ranged<T: PartialOrd + std::fmt::Display + Copy>(
    value: Option<T>,
    default: T,
    min: T,
    max: T,
    field: &str,
    fail: &dyn Fn(&str, String) -> RuleError,
) -> Result<T, RuleError> {
    let v = value.unwrap_or(default);
    if v >= min && v <= max {
        Ok(v)
    } else {
        Err(fail(field, format!("{v} is out of range {min}..={max}")))
    }
}

impl CompiledRules {
    /// The names of the rules, windowed ones first.
    pub fn names(&self) -> Vec<&str> {
        self.windowed
            .iter()
            .map(|w| w.name.as_str())
            .chain(self.single.iter().map(|s| s.name.as_str()))
            .collect()
    }

    fn push(
        &mut self,
        spec: &RuleSpec,
        default_hold: u32,
        fail: &dyn Fn(&str, String) -> RuleError,
    ) -> Result<(), RuleError> {
        let given: [(&str, bool); 12] = [
            ("keys", spec.keys.is_some()),
            ("key", spec.key.is_some()),
            ("min_share", spec.min_share.is_some()),
            ("above", spec.above.is_some()),
            ("min_events", spec.min_events.is_some()),
            ("factor", spec.factor.is_some()),
            ("recent_secs", spec.recent_secs.is_some()),
            ("baseline_secs", spec.baseline_secs.is_some()),
            ("memory_secs", spec.memory_secs.is_some()),
            ("warmup_secs", spec.warmup_secs.is_some()),
            ("when", spec.when.is_some()),
            ("at_least", spec.at_least.is_some()),
        ];
        let used = uses(spec.rule_type);
        if let Some((field, _)) = given.iter().find(|(f, set)| *set && !used.contains(f)) {
            return Err(fail(
                field,
                format!(
                    "is not a setting of a {} rule (its settings: {})",
                    spec.rule_type.name(),
                    used.join(", ")
                ),
            ));
        }
        let hold_secs = i64::from(ranged(
            spec.hold_secs,
            default_hold,
            1,
            MAX_HOLD_SECS,
            "hold_secs",
            fail,
        )?);
        if spec.rule_type == RuleType::Event {
            let Some(when) = &spec.when else {
                return Err(fail("when", "is missing: the condition of the rule".into()));
            };
            let predicate = condition::compile(when).map_err(|e| {
                let field = if e.position.is_empty() {
                    "when".to_owned()
                } else {
                    format!("when.{}", e.position)
                };
                fail(&field, e.reason)
            })?;
            self.single.push(Single {
                name: spec.name.clone(),
                severity: spec.severity,
                hold_secs,
                key: spec.key.unwrap_or(KeyKind::Ip),
                at_least: ranged(spec.at_least, 1, 1, 1_000_000_000, "at_least", fail)?,
                predicate,
            });
            return Ok(());
        }
        let keys = match (&spec.keys, spec.rule_type) {
            (Some(keys), _) if keys.is_empty() => {
                return Err(fail("keys", "is an empty list".into()));
            }
            (Some(keys), _) => keys.clone(),
            // Places are skewed by nature (a capital sends more than a village): only networks.
            (None, RuleType::Outlier) => vec![KeyKind::Network],
            (None, _) => vec![KeyKind::Ip, KeyKind::Network],
        };
        let new_key = spec.rule_type == RuleType::NewKey;
        let recent_secs = ranged(spec.recent_secs, 10, 1, 3600, "recent_secs", fail)?;
        let baseline_secs = ranged(spec.baseline_secs, 300, 1, 86_400, "baseline_secs", fail)?;
        let min_share_default = if new_key { 0.2 } else { 0.02 };
        let min_share = ranged(
            spec.min_share,
            min_share_default,
            0.0,
            1.0,
            "min_share",
            fail,
        )?;
        let min_events_default = match spec.rule_type {
            RuleType::SuspiciousShare | RuleType::NewKey => 20,
            _ => 50,
        };
        self.windowed.push(Windowed {
            name: spec.name.clone(),
            rule_type: spec.rule_type,
            severity: spec.severity,
            hold_secs,
            keys,
            key: spec.key.unwrap_or(KeyKind::Country),
            min_share,
            above: ranged(spec.above, 0.5, 0.0, 1.0, "above", fail)?,
            min_events: ranged(
                spec.min_events,
                min_events_default,
                1,
                1_000_000_000,
                "min_events",
                fail,
            )?,
            factor: ranged(spec.factor, 3.0, 1.0, 1000.0, "factor", fail)?,
            recent_secs,
            baseline_secs,
            memory_secs: ranged(spec.memory_secs, 3600, 1, 604_800, "memory_secs", fail)?,
            warmup_secs: ranged(spec.warmup_secs, 120, 0, 86_400, "warmup_secs", fail)?,
        });
        Ok(())
    }
}

impl Default for RuleSet {
    /// The shipped rules: the windowed ones and the examples for a server's operator (also
    /// in `docs/alert-rules.toml`, which a test keeps equal to these).
    fn default() -> Self {
        use serde_json::json;
        let windowed = |name: &str, t| RuleSpec::new(name, t);
        let event = |name: &str, severity, hold, at_least: Option<u64>, when: Value| RuleSpec {
            severity,
            hold_secs: Some(hold),
            at_least,
            // The shipped conditions are written right here; a test compiles them.
            when: serde_json::from_value(when).ok(),
            ..RuleSpec::new(name, RuleType::Event)
        };
        Self {
            hold_secs: default_hold(),
            rules: vec![
                windowed("heavy_hitter", RuleType::HeavyHitter),
                windowed("outlier", RuleType::Outlier),
                windowed("suspicious_share", RuleType::SuspiciousShare),
                windowed("rate_jump", RuleType::RateJump),
                RuleSpec {
                    key: Some(KeyKind::Country),
                    ..windowed("new_country", RuleType::NewKey)
                },
                event(
                    "ssh_brute_force",
                    Severity::Warning,
                    60,
                    Some(10),
                    json!({"any": [
                        {"field": "protocol", "op": "==", "value": "SSH"},
                        {"field": "dest_port", "op": "==", "value": 22}
                    ]}),
                ),
                event(
                    "large_packet",
                    Severity::Info,
                    60,
                    None,
                    json!({"all": [
                        {"field": "bytes", "op": ">", "value": 1400},
                        {"field": "protocol", "op": "in", "value": ["UDP", "ICMP", "ICMPv6"]},
                        {"not": {"field": "packets", "op": ">", "value": 1}}
                    ]}),
                ),
                event(
                    "rare_protocol",
                    Severity::Warning,
                    300,
                    None,
                    json!({"any": [
                        {"field": "protocol", "op": "in",
                         "value": ["TELNET", "TFTP", "SNMP", "SMB", "NETBIOS", "IRC", "GRE", "SCTP"]},
                        {"field": "dest_port", "op": "in",
                         "value": [23, 69, 161, 445, 1433, 3389, 5900, 6379, 27017]}
                    ]}),
                ),
                event(
                    "probe_path",
                    Severity::Warning,
                    300,
                    None,
                    json!({"field": "path", "op": "matches",
                           "value": "(?i)^/(wp-login\\.php|wp-admin|xmlrpc\\.php|\\.env|\\.git/|phpmyadmin|cgi-bin/|boaform|hnap1|actuator|vendor/phpunit)"}),
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: Value) -> Result<CompiledRules, RuleError> {
        RuleSet::from_value(v)?.compile()
    }

    #[test]
    fn the_shipped_rules_compile_and_the_example_file_says_the_same() {
        let defaults = RuleSet::default();
        let compiled = defaults.compile().unwrap();
        assert_eq!(compiled.single.len(), 4);
        assert_eq!(compiled.windowed.len(), 5);
        assert!(
            defaults
                .rules
                .iter()
                .all(|r| r.rule_type != RuleType::Event || r.when.is_some())
        );
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/alert-rules.toml");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(RuleSet::parse(&text, Format::Toml).unwrap(), defaults);
    }

    #[test]
    fn json_and_toml_spell_the_same_rules() {
        let json = r#"{"hold_secs": 30, "rules": [
            {"name": "big", "type": "event", "severity": "critical",
             "when": {"field": "bytes", "op": ">", "value": 1400}}]}"#;
        let toml = r#"
            hold_secs = 30
            [[rules]]
            name = "big"
            type = "event"
            severity = "critical"
            when = { field = "bytes", op = ">", value = 1400 }
        "#;
        let a = RuleSet::parse(json, Format::Json).unwrap();
        assert_eq!(a, RuleSet::parse(toml, Format::Toml).unwrap());
        assert_eq!(a.rules[0].severity, Severity::Critical);
        assert!(a.compile().is_ok());
    }

    #[test]
    fn a_bad_rule_is_refused_naming_the_rule_and_the_position() {
        for (v, rule, position, words) in [
            (
                json!({"rules": [{"name": "a", "type": "event"}]}),
                Some("a"),
                "rules[0].when",
                "missing",
            ),
            (
                json!({"rules": [{"name": "ok", "type": "outlier"},
                    {"name": "b", "type": "event",
                     "when": {"any": [{"field": "bytes", "op": ">", "value": "x"}]}}]}),
                Some("b"),
                "rules[1].when.any[0].value",
                "not a number",
            ),
            (
                json!({"rules": [{"name": "c", "type": "rate_jump", "factor": 0.5}]}),
                Some("c"),
                "rules[0].factor",
                "out of range",
            ),
            (
                json!({"rules": [{"name": "d", "type": "heavy_hitter", "when": {"field": "bytes"}}]}),
                Some("d"),
                "rules[0].when",
                "not a setting of a heavy_hitter rule",
            ),
            (
                json!({"rules": [{"name": "e", "type": "wobble"}]}),
                Some("e"),
                "rules[0].type",
                "wobble",
            ),
            (
                json!({"rules": [{"name": "f", "type": "event", "colour": 1}]}),
                Some("f"),
                "rules[0]",
                "colour",
            ),
            (
                json!({"rules": [{"name": "g", "type": "outlier"}, {"name": "g", "type": "outlier"}]}),
                Some("g"),
                "rules[1].name",
                "earlier rule",
            ),
            (
                json!({"rules": [{"name": "h i", "type": "outlier"}]}),
                Some("h i"),
                "rules[0].name",
                "only letters",
            ),
            (
                json!({"hold_secs": 0, "rules": []}),
                None,
                "hold_secs",
                "out of range",
            ),
            (
                json!({"rules": [{"name": "k", "type": "new_key", "key": "planet"}]}),
                Some("k"),
                "rules[0].key",
                "planet",
            ),
        ] {
            let e = set(v.clone()).unwrap_err();
            assert_eq!(e.rule.as_deref(), rule, "{v}: {e}");
            assert!(e.position.starts_with(position), "{v}: {e}");
            assert!(e.reason.contains(words), "{v}: {e}");
        }
    }

    #[test]
    fn a_file_that_does_not_parse_says_where() {
        let e = RuleSet::parse("{\"rules\": [\n{\"name\": }]}", Format::Json).unwrap_err();
        assert_eq!(e.position, "line 2, column 10");
        let e = RuleSet::parse("rules = [\n[", Format::Toml).unwrap_err();
        assert!(e.position.starts_with("line "), "{e}");
    }
}
