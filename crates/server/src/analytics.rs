//! The analytics endpoints: `GET /api/analytics` (the windowed results now),
//! `GET`/`PUT /api/analytics/config` (the settings, changed at runtime), `GET /api/alerts`
//! and `GET`/`PUT /api/alerts/rules` (the alert rules, replaced at runtime). The queries
//! themselves live in `traffic::analytics`; the hub feeds them and pushes `analytics`
//! messages on the stream.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use traffic::analytics::alerts::{Alert, RuleStatus};
use traffic::analytics::rules::RuleSet;
use traffic::analytics::{AnalyticsConfig, ConfigUpdate};

use crate::AppState;
use crate::api::check_json_content_type;
use crate::error::ApiError;
use crate::hub::AnalyticsView;

/// Largest settings body read, in bytes: a few hundred are enough.
const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// `GET /api/analytics`: every query over every key kind's window, now.
pub async fn report(State(state): State<AppState>) -> Json<AnalyticsView> {
    let (seq, report) = state.hub.analytics();
    Json(AnalyticsView { seq, report })
}

/// `GET /api/alerts`: the most recent alerts, newest first.
pub async fn alerts(State(state): State<AppState>) -> Json<AlertsView> {
    Json(AlertsView {
        alerts: state.hub.alerts(),
    })
}

/// The body of `GET /api/alerts`.
#[derive(serde::Serialize)]
pub struct AlertsView {
    /// Newest first.
    alerts: Vec<Alert>,
}

/// Largest rule set read, in bytes.
const MAX_RULES_BYTES: usize = 1024 * 1024;

/// The body of `GET /api/alerts/rules` (and of a successful `PUT`): the rule set as a rules
/// file writes it, and what each rule has done.
#[derive(serde::Serialize)]
pub struct RulesView {
    /// The rule set in force.
    #[serde(flatten)]
    rules: RuleSet,
    /// Per rule, in the same order: its firing alerts and matches.
    status: Vec<RuleStatus>,
}

/// `GET /api/alerts/rules`: the alert rules in force.
pub async fn rules(State(state): State<AppState>) -> Json<RulesView> {
    let (rules, status) = state.hub.alert_rules();
    Json(RulesView { rules, status })
}

/// `PUT /api/alerts/rules`: replaces the whole rule set (the shape of a rules file, as
/// JSON); a rule that cannot be used is a 422 naming it and the position of the error.
pub async fn set_rules(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RulesView>, ApiError> {
    check_json_content_type(&headers)?;
    if body.len() > MAX_RULES_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the body is larger than {MAX_RULES_BYTES} bytes"
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Malformed(format!("the body is not JSON: {e}")))?;
    let rules = RuleSet::from_value(value).map_err(ApiError::InvalidRule)?;
    let _changing = match &state.settings {
        Some(settings) => Some(settings.changing().await),
        None => None,
    };
    state
        .hub
        .set_alert_rules(rules.clone())
        .map_err(ApiError::InvalidRule)?;
    tracing::info!(rules = rules.rules.len(), "alert rules changed");
    if let Some(settings) = &state.settings {
        settings.save_rules(rules).await.map_err(|e| {
            ApiError::Internal(
                e.context("the rules are in force, but could not be saved for the next start"),
            )
        })?;
    }
    let (rules, status) = state.hub.alert_rules();
    Ok(Json(RulesView { rules, status }))
}

/// `GET /api/analytics/config`: the settings in force.
pub async fn config(State(state): State<AppState>) -> Json<AnalyticsConfig> {
    Json(state.hub.analytics_config())
}

/// `PUT /api/analytics/config`: changes the settings it names (the others stay) and answers
/// with all of them; a setting out of range or unknown is a 422 naming it.
pub async fn set_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<AnalyticsConfig>, ApiError> {
    check_json_content_type(&headers)?;
    if body.len() > MAX_CONFIG_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the body is larger than {MAX_CONFIG_BYTES} bytes"
        )));
    }
    let update: ConfigUpdate = parse(&body)?;
    let _changing = match &state.settings {
        Some(settings) => Some(settings.changing().await),
        None => None,
    };
    // Read, change and put back under the hub's lock would hold it for the validation too;
    // settings change rarely, and the last PUT wins either way.
    let config =
        state
            .hub
            .analytics_config()
            .updated(&update)
            .map_err(|e| ApiError::InvalidSetting {
                message: e.to_string(),
                field: e.field,
            })?;
    state.hub.set_analytics_config(config);
    tracing::info!(?config, "analytics settings changed");
    if let Some(settings) = &state.settings {
        settings.save_analytics(config).await.map_err(|e| {
            ApiError::Internal(
                e.context("the settings are in force, but could not be saved for the next start"),
            )
        })?;
    }
    Ok(Json(config))
}

/// The update in `body`: malformed JSON is a 400, a value of the wrong type or an unknown
/// setting a 422 naming it by its path. (The generator's settings are read the same way.)
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            // The path names the setting, an unknown one included.
            let field = path;
            ApiError::InvalidSetting {
                message: format!("{field}: {inner}"),
                field,
            }
        } else {
            ApiError::Malformed(format!(
                "the body is not a JSON object of settings: {inner}"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use tokio_util::sync::CancellationToken;

    // Reading is a viewer's (open on loopback), changing settings an admin's.
    use crate::call_json as call;
    use crate::hub::{FrameKind, Start};
    use crate::{AppState, Config, Geocoder};

    fn state() -> AppState {
        AppState::new(
            Config::default_for_tests(),
            Geocoder::shared(),
            CancellationToken::new(),
        )
    }

    /// Events of one second from Paris (`paris` of them, all from 192.0.2.1) and Tokyo (one
    /// each from 198.51.100.1..).
    fn events(second: u64, paris: usize, tokyo: usize) -> String {
        let mut events = Vec::new();
        for _ in 0..paris {
            events.push(format!(
                r#"{{"ip":"192.0.2.1","latitude":48.8566,"longitude":2.3522,"timestamp":{second},"suspicious":1,"bytes":1000,"protocol":"TCP"}}"#
            ));
        }
        for i in 0..tokyo {
            events.push(format!(
                r#"{{"ip":"198.51.100.{}","latitude":35.6762,"longitude":139.6503,"timestamp":{second},"suspicious":0,"status":404}}"#,
                i + 1
            ));
        }
        format!("[{}]", events.join(","))
    }

    async fn post(state: &AppState, body: String) {
        let (status, _) = call(state, "POST", "/api/events", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        state.hub.publish();
    }

    fn data(bytes: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(bytes).unwrap();
        let line = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(line).unwrap()
    }

    /// The data of the frames of `kind` the stream sent `start` since the last call, each
    /// checked to be an SSE message of the event `name`.
    fn frames(start: &mut Start, kind: FrameKind, name: &str) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        while let Ok(frame) = start.frames.try_recv() {
            if frame.kind == kind {
                let text = std::str::from_utf8(&frame.bytes).unwrap();
                assert!(text.contains(&format!("\nevent: {name}\n")), "{text}");
                found.push(data(&frame.bytes));
            }
        }
        found
    }

    fn analytics_frames(start: &mut Start) -> Vec<serde_json::Value> {
        frames(start, FrameKind::Analytics, "analytics")
    }

    fn alert_frames(start: &mut Start) -> Vec<serde_json::Value> {
        frames(start, FrameKind::Alert, "alert")
    }

    #[tokio::test]
    async fn the_results_name_heavy_hitters_top_keys_and_suspicious_shares_per_kind() {
        let state = state();
        post(&state, events(1_736_919_120, 6, 4)).await;
        let (status, body) = call(&state, "GET", "/api/analytics", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["seq"], 10);
        assert_eq!(body["clock"]["second"], 1_736_919_120);
        let place = &body["kinds"]["place"];
        assert_eq!(place["exact"], true);
        assert_eq!(place["total"]["count"], 10);
        assert_eq!(place["suspicious_share"], 0.6);
        assert_eq!(place["heavy_hitters"][0]["key"], "Paris");
        assert_eq!(place["heavy_hitters"][0]["suspicious_share"], 1.0);
        assert_eq!(place["heavy_hitters"][0]["place"]["country_code"], "FR");
        assert_eq!(place["top_by_bytes"][0]["bytes"], 6000);
        let ip = &body["kinds"]["ip"];
        assert_eq!(ip["top_by_count"][0]["key"], "192.0.2.1");
        assert_eq!(ip["top_by_count"][0]["count"], 6);
        assert_eq!(body["kinds"]["network"]["keys"], 2);
        assert_eq!(body["kinds"]["status"]["top_by_count"][0]["key"], "4xx");
        assert_eq!(body["kinds"]["protocol"]["top_by_count"][0]["key"], "TCP");
    }

    #[tokio::test]
    async fn results_are_pushed_when_they_change_and_a_late_joiner_gets_them_in_its_snapshot() {
        let state = state();
        let mut start = state.hub.start(None);
        post(&state, events(1_736_919_120, 3, 1)).await;
        state.hub.publish_stats();
        let pushed = analytics_frames(&mut start);
        assert_eq!(pushed.len(), 1);
        assert_eq!(pushed[0]["kinds"]["ip"]["total"]["count"], 4);
        state.hub.publish_stats();
        assert!(analytics_frames(&mut start).is_empty(), "nothing changed");
        let late = state.hub.start(None);
        let snapshot: Vec<u8> = late.initial.concat();
        let snapshot = data(&snapshot);
        assert_eq!(snapshot["analytics"]["kinds"]["ip"]["total"]["count"], 4);
    }

    #[tokio::test]
    async fn a_settings_change_takes_effect_at_the_next_evaluation() {
        let state = state();
        let mut start = state.hub.start(None);
        post(&state, events(1_736_919_120, 3, 5)).await;
        state.hub.publish_stats();
        let before = analytics_frames(&mut start);
        assert_eq!(
            before[0]["kinds"]["ip"]["top_by_count"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
        let (status, body) = call(
            &state,
            "PUT",
            "/api/analytics/config",
            r#"{"top_k":2,"kinds":{"network":{"heavy_hitter_percent":50}}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["kinds"]["ip"]["top_k"], 2);
        assert_eq!(body["kinds"]["network"]["heavy_hitter_percent"], 50.0);
        state.hub.publish_stats();
        let after = analytics_frames(&mut start);
        let ip = &after[0]["kinds"]["ip"];
        assert_eq!(ip["thresholds"]["top_k"], 2);
        assert_eq!(ip["top_by_count"].as_array().unwrap().len(), 2);
        // 5 of 8 events come from Tokyo's network: above 50%, Paris's (3 of 8) is not.
        let network = &after[0]["kinds"]["network"]["heavy_hitters"];
        assert_eq!(network.as_array().unwrap().len(), 1);
        assert_eq!(network[0]["key"], "198.51.100.0/24");
        let (_, config) = call(&state, "GET", "/api/analytics/config", "").await;
        assert_eq!(config, body);
    }

    /// `burst` events from distinct addresses of 192.0.2.0/24 and `spread` from as many
    /// distinct networks, all at `second`.
    fn burst(second: u64, burst: usize, spread: usize) -> String {
        let one = |ip: String| {
            format!(
                r#"{{"ip":"{ip}","latitude":48.8566,"longitude":2.3522,"timestamp":{second},"suspicious":0}}"#
            )
        };
        let events: Vec<String> = (0..burst)
            .map(|i| one(format!("192.0.2.{}", i + 1)))
            .chain((0..spread).map(|i| one(format!("10.{}.{}.1", i / 200, i % 200))))
            .collect();
        format!("[{}]", events.join(","))
    }

    #[tokio::test]
    async fn a_network_burst_fires_alerts_once_on_the_stream_and_they_resolve_after_it() {
        let state = state();
        let mut start = state.hub.start(None);
        post(&state, burst(1_736_919_120, 20, 60)).await;
        state.hub.publish_stats();
        let fired = alert_frames(&mut start);
        let rules: Vec<&str> = fired.iter().map(|a| a["rule"].as_str().unwrap()).collect();
        assert_eq!(rules, ["heavy_hitter", "outlier"], "{fired:?}");
        for alert in &fired {
            assert_eq!(alert["kind"], "network");
            assert_eq!(alert["key"], "192.0.2.0/24");
            assert_eq!(alert["state"], "firing");
        }
        // The burst goes on: nothing new fires.
        post(&state, burst(1_736_919_125, 20, 60)).await;
        state.hub.publish_stats();
        assert!(alert_frames(&mut start).is_empty());
        // A minute and a half later of the data's clock, spread traffic only.
        post(&state, burst(1_736_919_220, 0, 60)).await;
        state.hub.publish_stats();
        let resolved = alert_frames(&mut start);
        assert_eq!(resolved.len(), 2, "{resolved:?}");
        for alert in &resolved {
            assert_eq!(alert["state"], "resolved");
            assert_eq!(alert["resolved_at"], 1_736_919_220);
        }
        let (status, body) = call(&state, "GET", "/api/alerts", "").await;
        assert_eq!(status, StatusCode::OK);
        let listed = body["alerts"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|a| a["state"] == "resolved"));
    }

    #[tokio::test]
    async fn a_bad_setting_is_a_422_naming_it_and_changes_nothing() {
        let state = state();
        for (body, field) in [
            (
                r#"{"kinds":{"ip":{"window_secs":0}}}"#,
                "kinds.ip.window_secs",
            ),
            (r#"{"outlier_stddevs":1000}"#, "outlier_stddevs"),
            (r#"{"budget":1}"#, "budget"),
            (r#"{"top_k":"ten"}"#, "top_k"),
            (r#"{"windw_secs":5}"#, "windw_secs"),
            (r#"{"kinds":{"ip":{"top_kk":3}}}"#, "kinds.ip.top_kk"),
            (r#"{"kinds":{"asn":{}}}"#, "kinds.asn"),
        ] {
            let (status, answer) = call(&state, "PUT", "/api/analytics/config", body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(answer["error"], "invalid_setting");
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }
        let (status, _) = call(&state, "PUT", "/api/analytics/config", "{").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            state.hub.analytics_config(),
            Config::default_for_tests().analytics()
        );
    }

    #[tokio::test]
    async fn an_event_rule_put_by_an_admin_fires_per_source_once_and_counts_the_rest() {
        let state = state();
        let mut start = state.hub.start(None);
        let rules = r#"{"hold_secs": 30, "rules": [
            {"name": "big", "type": "event", "severity": "critical",
             "when": {"all": [{"field": "bytes", "op": ">", "value": 1400},
                              {"field": "dest_port", "op": "in", "value": [22, 3389]}]}}]}"#;
        let (status, body) = call(&state, "PUT", "/api/alerts/rules", rules).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rules"][0]["name"], "big");
        assert_eq!(body["status"][0]["matched"], 0);
        let event = |ip: &str, t: u64, bytes: u64, port: u16| {
            format!(
                r#"{{"ip":"{ip}","latitude":48.8566,"longitude":2.3522,"timestamp":{t},"suspicious":0,"bytes":{bytes},"dest_port":{port}}}"#
            )
        };
        let t = 1_736_919_120;
        let batch = [
            event("192.0.2.1", t, 1500, 22),
            event("192.0.2.1", t, 1500, 3389),
            event("192.0.2.2", t, 1500, 443),
            event("192.0.2.3", t, 100, 22),
            event("192.0.2.1", t + 1, 9000, 22),
        ];
        post(&state, format!("[{}]", batch.join(","))).await;
        let fired = alert_frames(&mut start);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0]["rule"], "big");
        assert_eq!(fired[0]["type"], "event");
        assert_eq!(fired[0]["severity"], "critical");
        assert_eq!(fired[0]["key"], "192.0.2.1");
        assert_eq!(fired[0]["count"], 1);
        assert_eq!(fired[0]["place"]["country_code"], "FR");
        assert_eq!(fired[0]["event"]["dest_port"], 22);
        let (_, listed) = call(&state, "GET", "/api/alerts", "").await;
        assert_eq!(listed["alerts"][0]["count"], 3, "counted, not fired again");
        let (_, rules) = call(&state, "GET", "/api/alerts/rules", "").await;
        assert_eq!(rules["status"][0]["matched"], 3);
        assert_eq!(rules["status"][0]["firing"], 1);
        // Past the hold time of the data's clock it resolves with its count.
        post(&state, format!("[{}]", event("192.0.2.9", t + 31, 10, 80))).await;
        state.hub.publish_stats();
        let resolved = alert_frames(&mut start);
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(resolved[0]["state"], "resolved");
        assert_eq!(resolved[0]["count"], 3);
    }

    #[tokio::test]
    async fn a_rule_set_that_cannot_be_used_is_a_422_naming_the_rule_and_position() {
        let state = state();
        for (body, rule, position) in [
            (
                r#"{"rules": [{"name": "ok", "type": "outlier"}, {"name": "bad", "type": "event", "when": {"field": "dest_port", "op": "in", "value": [22, "ssh"]}}]}"#,
                "bad",
                "rules[1].when.value[1]",
            ),
            (
                r#"{"rules": [{"name": "typo", "type": "event", "wen": {}}]}"#,
                "typo",
                "rules[0]",
            ),
            (
                r#"{"rules": [{"name": "j", "type": "rate_jump", "factor": 0}]}"#,
                "j",
                "rules[0].factor",
            ),
        ] {
            let (status, answer) = call(&state, "PUT", "/api/alerts/rules", body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert_eq!(answer["error"], "invalid_rule");
            assert_eq!(answer["rule"], rule, "{answer}");
            assert!(
                answer["position"].as_str().unwrap().starts_with(position),
                "{answer}"
            );
            assert!(
                answer["message"].as_str().unwrap().contains(rule),
                "{answer}"
            );
        }
        let (status, _) = call(&state, "PUT", "/api/alerts/rules", "{").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Nothing changed: the built-in rules are in force.
        let (_, rules) = call(&state, "GET", "/api/alerts/rules", "").await;
        assert_eq!(
            rules["rules"].as_array().unwrap().len(),
            traffic::analytics::rules::RuleSet::default().rules.len()
        );
    }
}
