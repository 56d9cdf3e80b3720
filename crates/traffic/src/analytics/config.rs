//! The analytics settings (window, k, H, X per key kind, and the key budget), their ranges,
//! and partial updates of them as `PUT /api/analytics/config` takes them.

use serde::{Deserialize, Serialize};

use super::KeyKind;

/// Shortest and longest window, in seconds of the data's clock.
pub const WINDOW_SECS: std::ops::RangeInclusive<u32> = 1..=3600;
/// Fewest and most keys listed in a top k.
pub const TOP_K: std::ops::RangeInclusive<usize> = 1..=100;
/// Lowest and highest heavy-hitter threshold, percent of the window's total.
pub const HEAVY_HITTER_PERCENT: std::ops::RangeInclusive<f64> = 0.1..=100.0;
/// Lowest and highest outlier threshold, standard deviations above the mean rate.
pub const OUTLIER_STDDEVS: std::ops::RangeInclusive<f64> = 0.1..=100.0;
/// Fewest and most distinct keys per second of a kind held exactly.
pub const BUDGET: std::ops::RangeInclusive<usize> = 16..=1_000_000;

/// The queries' parameters for one key kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// T: the window, in seconds of the data's clock.
    pub window_secs: u32,
    /// k: keys listed in each top k.
    pub top_k: usize,
    /// H: a heavy hitter has more than this percent of the window's total.
    pub heavy_hitter_percent: f64,
    /// X: an outlier's rate is more than this many standard deviations above the mean rate
    /// of the window's keys.
    pub outlier_stddevs: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            window_secs: 60,
            top_k: 10,
            heavy_hitter_percent: 5.0,
            outlier_stddevs: 3.0,
        }
    }
}

/// One value per key kind (the JSON object `{"place": .., "country": .., ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerKind<T: Default> {
    /// The place (city) an event was resolved to.
    pub place: T,
    /// The place's country.
    pub country: T,
    /// The source IP address.
    pub ip: T,
    /// The source network: /24 for IPv4, /48 for IPv6.
    pub network: T,
    /// The event's protocol.
    pub protocol: T,
    /// The HTTP status class (`2xx` ...).
    pub status: T,
}

impl<T: Default> PerKind<T> {
    /// The value for `kind`.
    pub fn get(&self, kind: KeyKind) -> &T {
        match kind {
            KeyKind::Place => &self.place,
            KeyKind::Country => &self.country,
            KeyKind::Ip => &self.ip,
            KeyKind::Network => &self.network,
            KeyKind::Protocol => &self.protocol,
            KeyKind::Status => &self.status,
        }
    }

    /// The value for `kind`, to change.
    pub fn get_mut(&mut self, kind: KeyKind) -> &mut T {
        match kind {
            KeyKind::Place => &mut self.place,
            KeyKind::Country => &mut self.country,
            KeyKind::Ip => &mut self.ip,
            KeyKind::Network => &mut self.network,
            KeyKind::Protocol => &mut self.protocol,
            KeyKind::Status => &mut self.status,
        }
    }

    /// `f` of each kind's value, per kind.
    pub fn map<U: Default>(&self, mut f: impl FnMut(KeyKind, &T) -> U) -> PerKind<U> {
        PerKind {
            place: f(KeyKind::Place, &self.place),
            country: f(KeyKind::Country, &self.country),
            ip: f(KeyKind::Ip, &self.ip),
            network: f(KeyKind::Network, &self.network),
            protocol: f(KeyKind::Protocol, &self.protocol),
            status: f(KeyKind::Status, &self.status),
        }
    }
}

/// All the analytics settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Distinct keys per second of each kind held exactly; beyond it the window is a
    /// bounded summary whose error bound the results state.
    pub budget: usize,
    /// The queries' parameters, per key kind.
    pub kinds: PerKind<Thresholds>,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self::uniform(4096, Thresholds::default())
    }
}

/// A setting out of its range: which one (its JSON path, e.g. `kinds.ip.top_k`) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// The setting at fault, as a JSON path.
    pub field: String,
    /// Why it is refused.
    pub reason: String,
}

fn check<T: PartialOrd + std::fmt::Display>(
    field: impl FnOnce() -> String,
    value: T,
    range: &std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError {
            field: field(),
            reason: format!(
                "{value} is out of range {}..={}",
                range.start(),
                range.end()
            ),
        })
    }
}

impl AnalyticsConfig {
    /// The same thresholds for every kind.
    pub fn uniform(budget: usize, thresholds: Thresholds) -> Self {
        Self {
            budget,
            kinds: PerKind {
                place: thresholds,
                country: thresholds,
                ip: thresholds,
                network: thresholds,
                protocol: thresholds,
                status: thresholds,
            },
        }
    }

    /// Checks every setting against its range; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(|| "budget".into(), self.budget, &BUDGET)?;
        for kind in KeyKind::ALL {
            let t = self.kinds.get(kind);
            let field = |name: &str| format!("kinds.{}.{name}", kind.name());
            check(|| field("window_secs"), t.window_secs, &WINDOW_SECS)?;
            check(|| field("top_k"), t.top_k, &TOP_K)?;
            check(
                || field("heavy_hitter_percent"),
                t.heavy_hitter_percent,
                &HEAVY_HITTER_PERCENT,
            )?;
            check(
                || field("outlier_stddevs"),
                t.outlier_stddevs,
                &OUTLIER_STDDEVS,
            )?;
        }
        Ok(())
    }

    /// This configuration with `update` applied, if the result is valid. Settings at the top
    /// of the update apply to every kind; those under `kinds` to one kind, after them.
    pub fn updated(&self, update: &ConfigUpdate) -> Result<Self, ConfigError> {
        let mut next = *self;
        if let Some(budget) = update.budget {
            next.budget = budget;
        }
        let all = update.all();
        for kind in KeyKind::ALL {
            let t = next.kinds.get_mut(kind);
            all.apply(t);
            if let Some(per_kind) = &update.kinds {
                per_kind.get(kind).apply(t);
            }
        }
        // Name the field as the update spelled it: a value for all kinds is reported
        // without the `kinds.<kind>.` prefix.
        next.validate().map_err(|mut e| {
            if let Some((kind, name)) = e
                .field
                .strip_prefix("kinds.")
                .and_then(|rest| rest.split_once('.'))
            {
                let named_for_kind = update.kinds.as_ref().is_some_and(|k| {
                    KeyKind::named(kind).is_some_and(|kind| k.get(kind).names(name))
                });
                if !named_for_kind && all.names(name) {
                    e.field = name.to_owned();
                }
            }
            e
        })?;
        Ok(next)
    }
}

/// Some of a kind's thresholds; absent ones stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsUpdate {
    /// New T.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u32>,
    /// New k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// New H.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heavy_hitter_percent: Option<f64>,
    /// New X.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_stddevs: Option<f64>,
}

impl ThresholdsUpdate {
    fn apply(&self, t: &mut Thresholds) {
        if let Some(v) = self.window_secs {
            t.window_secs = v;
        }
        if let Some(v) = self.top_k {
            t.top_k = v;
        }
        if let Some(v) = self.heavy_hitter_percent {
            t.heavy_hitter_percent = v;
        }
        if let Some(v) = self.outlier_stddevs {
            t.outlier_stddevs = v;
        }
    }

    /// Whether this update sets the field called `name`.
    fn names(&self, name: &str) -> bool {
        match name {
            "window_secs" => self.window_secs.is_some(),
            "top_k" => self.top_k.is_some(),
            "heavy_hitter_percent" => self.heavy_hitter_percent.is_some(),
            "outlier_stddevs" => self.outlier_stddevs.is_some(),
            _ => false,
        }
    }
}

/// A change of some settings: `{"budget": .., "window_secs": .., ..., "kinds": {"ip":
/// {"top_k": ..}}}`, every part optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    /// New budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<usize>,
    /// New T for every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u32>,
    /// New k for every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// New H for every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heavy_hitter_percent: Option<f64>,
    /// New X for every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_stddevs: Option<f64>,
    /// Thresholds for some kinds (after those for every kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<PerKind<ThresholdsUpdate>>,
}

impl ConfigUpdate {
    /// The part of the update that applies to every kind.
    fn all(&self) -> ThresholdsUpdate {
        ThresholdsUpdate {
            window_secs: self.window_secs,
            top_k: self.top_k,
            heavy_hitter_percent: self.heavy_hitter_percent,
            outlier_stddevs: self.outlier_stddevs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: &str) -> ConfigUpdate {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_update_for_all_kinds_is_overridden_by_one_for_a_kind() {
        let config = AnalyticsConfig::default()
            .updated(&update(r#"{"top_k":5,"kinds":{"ip":{"top_k":7}}}"#))
            .unwrap();
        assert_eq!(config.kinds.place.top_k, 5);
        assert_eq!(config.kinds.ip.top_k, 7);
        assert_eq!(config.kinds.ip.window_secs, 60, "untouched");
    }

    #[test]
    fn an_out_of_range_value_is_refused_naming_the_field_as_sent() {
        let config = AnalyticsConfig::default();
        let e = config
            .updated(&update(r#"{"kinds":{"network":{"window_secs":0}}}"#))
            .unwrap_err();
        assert_eq!(e.field, "kinds.network.window_secs");
        let e = config
            .updated(&update(r#"{"heavy_hitter_percent":0}"#))
            .unwrap_err();
        assert_eq!(e.field, "heavy_hitter_percent");
        assert!(e.reason.contains("0.1..=100"), "{}", e.reason);
        let e = config.updated(&update(r#"{"budget":3}"#)).unwrap_err();
        assert_eq!(e.field, "budget");
    }

    #[test]
    fn unknown_settings_are_refused() {
        let e = serde_json::from_str::<ConfigUpdate>(r#"{"windw_secs":5}"#).unwrap_err();
        assert!(e.to_string().contains("windw_secs"), "{e}");
    }
}
