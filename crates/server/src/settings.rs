//! Settings an admin changes at runtime (the alert rules, the analytics thresholds, the
//! retention, which housekeeping jobs are paused), saved in `--data-dir/settings.json` so
//! that a restart keeps them.
//!
//! Each is saved with what the server had started from: the `--alert-rules` file's text (or
//! the built-in rules), the analytics settings of the flags, `--retain`. At the next start a saved value
//! is put in force while that start source is unchanged; once the operator has edited the
//! rules file or changed the flags, theirs is the newer intent and wins (logged), and the
//! saved value is forgotten at the next change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use traffic::analytics::AnalyticsConfig;
use traffic::analytics::rules::RuleSet;

use crate::{AppState, Config, Hub};

/// The file in the data directory.
pub const FILE_NAME: &str = "settings.json";

/// What the file holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alert_rules: Option<Entry<RuleSet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    analytics: Option<Entry<AnalyticsConfig>>,
    /// Seconds, or none for off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retention: Option<Entry<Option<u64>>>,
    /// Names of the housekeeping jobs paused (no flag sets them: always in force).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    paused_jobs: Vec<String>,
}

/// A value changed through the API, and the start source it replaced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry<T> {
    /// The start source when it was changed (the rules file's text, "built-in", or the
    /// flags' settings as JSON).
    replaced: String,
    value: T,
}

/// The settings file of one server: what was saved, and the start sources of this run.
#[derive(Debug)]
pub struct Settings {
    path: PathBuf,
    rules_source: String,
    analytics_source: String,
    retention_source: String,
    saved: Mutex<Saved>,
    /// Held by a change from putting it in force until it is saved, so that the file
    /// always ends with the change in force.
    changing: tokio::sync::Mutex<()>,
}

/// The start source of the rules: the `--alert-rules` file's text, or "built-in".
fn rules_source(config: &Config) -> anyhow::Result<String> {
    match &config.alert_rules {
        None => Ok("built-in".to_owned()),
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--alert-rules {}: cannot read it", path.display())),
    }
}

impl Settings {
    /// Reads `settings.json` in `--data-dir` (none yet: nothing saved). A file that cannot
    /// be read is an error naming it: starting without it would silently undo an admin's
    /// changes.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let path = config.data_dir.join(FILE_NAME);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} (--data-dir) is not a settings file this server can read; \
                     fix or remove it (it holds the alert rules and analytics settings \
                     last changed through the API)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("while reading {}", path.display()));
            }
        };
        Ok(Self {
            path,
            rules_source: rules_source(config)?,
            analytics_source: serde_json::to_string(&config.analytics())?,
            retention_source: serde_json::to_string(&config.retain)?,
            saved: Mutex::new(saved),
            changing: tokio::sync::Mutex::new(()),
        })
    }

    /// Puts the saved values whose start source is unchanged in force in `state`.
    pub fn apply(&self, state: &AppState) {
        let hub: &Hub = &state.hub;
        let saved = self.lock().clone();
        if let Some(entry) = saved.alert_rules {
            if entry.replaced != self.rules_source {
                tracing::info!(
                    "the alert rules changed through the API were made for another rules \
                     file; the one given now (or the built-in set) is in force"
                );
            } else {
                let count = entry.value.rules.len();
                match hub.set_alert_rules(entry.value) {
                    Ok(()) => tracing::info!(
                        rules = count,
                        file = %self.path.display(),
                        "alert rules as last changed through the API"
                    ),
                    Err(e) => tracing::error!(error = %e, "saved alert rules not loaded"),
                }
            }
        }
        if let Some(entry) = saved.analytics {
            if entry.replaced != self.analytics_source {
                tracing::info!(
                    "the analytics settings changed through the API were made under other \
                     flags; those given now are in force"
                );
            } else {
                tracing::info!(
                    file = %self.path.display(),
                    "analytics settings as last changed through the API"
                );
                hub.set_analytics_config(entry.value);
            }
        }
        if let Some(entry) = saved.retention {
            if entry.replaced != self.retention_source {
                tracing::info!(
                    "the retention changed through the API was made under another --retain; \
                     the one given now is in force"
                );
            } else {
                tracing::info!(
                    retain_secs = ?entry.value,
                    file = %self.path.display(),
                    "retention as last changed through the API"
                );
                state
                    .housekeeping
                    .set_retain(entry.value.map(std::time::Duration::from_secs));
            }
        }
        for name in &saved.paused_jobs {
            match state.jobs.set_paused(name, true) {
                Some(_) => tracing::info!(job = %name, "paused, as last set through the API"),
                None => {
                    tracing::warn!(job = %name, "a paused job saved in settings.json no longer exists; ignored")
                }
            }
        }
    }

    /// Taken by a change before it puts a value in force, held until it is saved: two
    /// changes at once are then in force and saved in the same order.
    pub async fn changing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changing.lock().await
    }

    /// Saves `rules` as the rule set in force (the file is replaced atomically).
    pub async fn save_rules(self: &Arc<Self>, rules: RuleSet) -> anyhow::Result<()> {
        self.save(move |saved, this| {
            saved.alert_rules = Some(Entry {
                replaced: this.rules_source.clone(),
                value: rules,
            });
        })
        .await
    }

    /// Saves `config` as the analytics settings in force.
    pub async fn save_analytics(self: &Arc<Self>, config: AnalyticsConfig) -> anyhow::Result<()> {
        self.save(move |saved, this| {
            saved.analytics = Some(Entry {
                replaced: this.analytics_source.clone(),
                value: config,
            });
        })
        .await
    }

    /// Saves `retain` (none: off) as the retention in force.
    pub async fn save_retention(
        self: &Arc<Self>,
        retain: Option<std::time::Duration>,
    ) -> anyhow::Result<()> {
        self.save(move |saved, this| {
            saved.retention = Some(Entry {
                replaced: this.retention_source.clone(),
                value: retain.map(|d| d.as_secs()),
            });
        })
        .await
    }

    /// Saves `names` as the paused jobs.
    pub async fn save_paused_jobs(self: &Arc<Self>, names: Vec<String>) -> anyhow::Result<()> {
        self.save(move |saved, _| saved.paused_jobs = names).await
    }

    async fn save(
        self: &Arc<Self>,
        change: impl FnOnce(&mut Saved, &Self) + Send + 'static,
    ) -> anyhow::Result<()> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // Held while writing: two changes at once are written in the order they took it.
            let mut saved = this.lock();
            let mut next = saved.clone();
            change(&mut next, &this);
            write_atomically(&this.path, &serde_json::to_vec_pretty(&next)?)?;
            *saved = next;
            Ok(())
        })
        .await
        .context("the settings writer stopped")?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it over `path`:
/// a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary)
        .with_context(|| format!("while creating {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("while replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Geocoder, call_json};
    use axum::http::StatusCode;
    use tokio_util::sync::CancellationToken;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("server-settings-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A server state on `dir` as `server::run` makes it: the saved settings applied.
    fn state(config: &Config) -> AppState {
        let settings = Arc::new(Settings::load(config).unwrap());
        let state = AppState::new(config.clone(), Geocoder::shared(), CancellationToken::new());
        settings.apply(&state);
        state.with_settings(settings)
    }

    const ONE_RULE: &str = r#"{"rules":[{"name":"big","type":"event","when":{"field":"bytes","op":">","value":9000}}]}"#;

    #[tokio::test]
    async fn rules_and_thresholds_changed_through_the_api_survive_a_restart() {
        let dir = temp_dir("restart");
        let mut config = Config::default_for_tests();
        config.data_dir = dir.clone();
        let first = state(&config);
        let (status, body) = call_json(&first, "PUT", "/api/alerts/rules", ONE_RULE).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let update = r#"{"kinds":{"network":{"heavy_hitter_percent":12.5}}}"#;
        let (status, body) = call_json(&first, "PUT", "/api/analytics/config", update).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        drop(first);

        let second = state(&config);
        let (_, rules) = call_json(&second, "GET", "/api/alerts/rules", "").await;
        let names: Vec<&str> = rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["big"]);
        let (_, analytics) = call_json(&second, "GET", "/api/analytics/config", "").await;
        assert_eq!(
            analytics["kinds"]["network"]["heavy_hitter_percent"], 12.5,
            "{analytics}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_edited_rules_file_or_new_flags_win_over_what_was_saved_before() {
        let dir = temp_dir("newer");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rules.json");
        std::fs::write(&file, ONE_RULE).unwrap();
        let mut config = Config::default_for_tests();
        config.data_dir = dir.clone();
        config.alert_rules = Some(file.clone());
        let first = state(&config);
        let two = r#"{"rules":[{"name":"a","type":"heavy_hitter"},{"name":"b","type":"outlier"}]}"#;
        let (status, _) = call_json(&first, "PUT", "/api/alerts/rules", two).await;
        assert_eq!(status, StatusCode::OK);
        drop(first);
        // The same file: the API's rules come back.
        let again = state(&config);
        let (_, rules) = call_json(&again, "GET", "/api/alerts/rules", "").await;
        assert_eq!(rules["rules"].as_array().unwrap().len(), 2);
        drop(again);
        // The operator edits the file: theirs is in force.
        std::fs::write(&file, ONE_RULE.replace("9000", "8000")).unwrap();
        let edited = state(&config);
        let (_, rules) = call_json(&edited, "GET", "/api/alerts/rules", "").await;
        assert_eq!(rules["rules"].as_array().unwrap().len(), 1, "{rules}");
        assert_eq!(rules["rules"][0]["when"]["value"], 8000, "{rules}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_retention_set_by_an_admin_survives_a_restart_until_retain_changes() {
        let dir = temp_dir("retention");
        let mut config = Config::default_for_tests();
        config.data_dir = dir.clone();
        let first = state(&config);
        assert_eq!(first.housekeeping.retain(), None);
        let (status, body) = call_json(&first, "PUT", "/api/retention", r#"{"retain":"7d"}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        drop(first);
        let week = Some(std::time::Duration::from_secs(7 * 86_400));
        assert_eq!(state(&config).housekeeping.retain(), week);
        // Off is a setting too.
        let second = state(&config);
        let (status, _) = call_json(&second, "PUT", "/api/retention", r#"{"retain":null}"#).await;
        assert_eq!(status, StatusCode::OK);
        drop(second);
        assert_eq!(state(&config).housekeeping.retain(), None);
        // A new --retain is the operator's newer intent.
        config.retain = Some("30d".to_owned());
        assert_eq!(
            state(&config).housekeeping.retain(),
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_job_paused_by_an_admin_stays_paused_after_a_restart_until_resumed() {
        let dir = temp_dir("paused");
        let mut config = Config::default_for_tests();
        config.data_dir = dir.clone();
        let first = state(&config);
        let (status, body) = call_json(&first, "POST", "/api/jobs/retention/pause", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        drop(first);
        let second = state(&config);
        assert_eq!(second.jobs.paused(), ["retention"]);
        let (status, _) = call_json(&second, "POST", "/api/jobs/retention/resume", "").await;
        assert_eq!(status, StatusCode::OK);
        drop(second);
        assert!(state(&config).jobs.paused().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_settings_file_that_cannot_be_read_stops_the_start_naming_it() {
        let dir = temp_dir("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE_NAME), "{not json").unwrap();
        let mut config = Config::default_for_tests();
        config.data_dir = dir.clone();
        let error = format!("{:#}", Settings::load(&config).unwrap_err());
        assert!(error.contains("settings.json"), "{error}");
        assert!(error.contains("fix or remove it"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
