//! The built-in generator through its API, in process, on tokio's paused clock.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

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

fn accepted(state: &AppState) -> u64 {
    state.metrics.events_accepted.load(Relaxed)
}

#[tokio::test(start_paused = true)]
async fn a_started_generator_ingests_at_its_rate_follows_a_new_rate_and_stops() {
    let state = state();
    let (status, body) = call(&state, "PUT", "/api/generator", r#"{"rate":200}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["running"], false);
    assert_eq!(accepted(&state), 0, "nothing before the start");

    let (status, body) = call(&state, "POST", "/api/generator/start", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["running"], true);
    // Ticks every 100 ms from the start: by the tick at 2 s, events 0 to 400 (at 1/200 s).
    tokio::time::sleep(Duration::from_millis(2050)).await;
    assert_eq!(accepted(&state), 401);
    // Counted like POSTed events: numbered by the hub and in the aggregates once published.
    state.hub.publish();
    assert_eq!(state.hub.stats().seq, 401);

    let (status, _) = call(&state, "PUT", "/api/generator", r#"{"rate":1000}"#).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The next event after the change is 1/1000 s after the last; by 3 s, 1000 more.
    assert_eq!(accepted(&state), 1401);

    let (_, body) = call(&state, "POST", "/api/generator/stop", "").await;
    assert_eq!(body["running"], false);
    assert_eq!(body["generated_total"], 1401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(accepted(&state), 1401, "nothing after the stop");
    let (_, body) = call(&state, "GET", "/api/generator", "").await;
    assert_eq!(body["config"]["rate"], 1000.0);
}

#[tokio::test(start_paused = true)]
async fn start_twice_is_one_run_and_a_restart_begins_again_from_the_first_event() {
    let state = state();
    call(&state, "PUT", "/api/generator", r#"{"rate":10}"#).await;
    call(&state, "POST", "/api/generator/start", "").await;
    let (status, body) = call(&state, "POST", "/api/generator/start", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["running"], true);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(accepted(&state), 11, "one run, not two");
    call(&state, "POST", "/api/generator/stop", "").await;
    call(&state, "POST", "/api/generator/start", "").await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (_, body) = call(&state, "GET", "/api/generator", "").await;
    assert_eq!(body["generated"], 11);
    assert_eq!(body["generated_total"], 22);
}

/// Alert frames the stream sent since the last call.
fn alerts(start: &mut Start) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    loop {
        match start.frames.try_recv() {
            Ok(frame) if frame.kind == FrameKind::Alert => {
                let text = std::str::from_utf8(&frame.bytes).unwrap();
                let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                found.push(serde_json::from_str(data).unwrap());
            }
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(_) => return found,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_from_the_api_fires_the_networks_heavy_hitter_alert_once_and_it_resolves_after() {
    let state = state();
    let mut start = state.hub.start(None);
    call(&state, "PUT", "/api/generator", r#"{"rate":200}"#).await;
    let (_, body) = call(&state, "POST", "/api/generator/start", "").await;
    let started = body["started_at"].as_f64().unwrap() as i64;
    let mut seen = Vec::new();
    // Evaluate once a second of the data's clock, as the stats ticker does.
    let second = |state: AppState| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        state.hub.publish();
        state.hub.publish_stats();
    };
    for _ in 0..10 {
        second(state.clone()).await;
    }
    seen.extend(alerts(&mut start));
    let (status, body) = call(&state, "POST", "/api/generator/burst", r#"{"secs":20}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // From the run's next whole second (10 s have passed exactly on the paused clock).
    assert_eq!(body["config"]["bursts"][0], "203.0.113.0/24:0.3:10-30");
    for _ in 0..110 {
        second(state.clone()).await;
        seen.extend(alerts(&mut start));
    }
    let burst: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|a| a["key"] == "203.0.113.0/24" && a["rule"] == "heavy_hitter")
        .collect();
    assert_eq!(burst.len(), 2, "fired and resolved once: {burst:?}");
    assert_eq!(burst[0]["state"], "firing");
    let fired = burst[0]["fired_at"].as_i64().unwrap() - started;
    assert!((10..30).contains(&fired), "fired at second {fired}");
    assert_eq!(burst[1]["state"], "resolved");
    assert_eq!(burst[1]["id"], burst[0]["id"]);
    // The burst leaves the 60 s window by second 90 (its share falls under 5% before).
    let resolved = burst[1]["resolved_at"].as_i64().unwrap() - started;
    assert!(
        (31..=105).contains(&resolved),
        "resolved at second {resolved}"
    );
    assert!(
        seen.iter()
            .all(|a| a["rule"] != "heavy_hitter" || a["key"] == "203.0.113.0/24"),
        "no other heavy hitter: {seen:?}"
    );
    // The default mix keeps full-size packets to TCP: no large_packet alert per source.
    assert!(seen.iter().all(|a| a["rule"] != "large_packet"), "{seen:?}");
}

#[tokio::test]
async fn bad_settings_are_a_422_naming_the_setting_and_change_nothing() {
    let state = state();
    let (_, before) = call(&state, "GET", "/api/generator", "").await;
    for (body, field) in [
        (r#"{"rate":0}"#, "rate"),
        (r#"{"rate":1e9}"#, "rate"),
        (r#"{"suspicious_share":2}"#, "suspicious_share"),
        (r#"{"protocols":{"TCP":-1}}"#, "protocols.TCP"),
        (r#"{"bytes":{"0":1}}"#, "bytes.0"),
        (
            r#"{"bytes_by_protocol":{"UDP":{"1500":-1}}}"#,
            "bytes_by_protocol.UDP.1500",
        ),
        (r#"{"networks":10,"sources":5}"#, "sources"),
        (r#"{"sources":"many"}"#, "sources"),
        (r#"{"bursts":["203.0.113.0/24:7:1-2"]}"#, "bursts[0]"),
        (r#"{"rte":5}"#, "rte"),
    ] {
        let (status, answer) = call(&state, "PUT", "/api/generator", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_setting", "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (status, _) = call(&state, "PUT", "/api/generator", "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, after) = call(&state, "GET", "/api/generator", "").await;
    assert_eq!(after, before);
}

#[tokio::test(start_paused = true)]
async fn a_burst_needs_a_running_generator_and_valid_fields() {
    let state = state();
    let (status, answer) = call(&state, "POST", "/api/generator/burst", "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not running"));
    call(&state, "POST", "/api/generator/start", "").await;
    for (body, field) in [
        (r#"{"share":1.5}"#, "share"),
        (r#"{"secs":0}"#, "secs"),
        (r#"{"network":"203.0.113.0/16"}"#, "network"),
        (r#"{"netwrk":"203.0.113.0/24"}"#, "netwrk"),
    ] {
        let (status, answer) = call(&state, "POST", "/api/generator/burst", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (_, body) = call(&state, "GET", "/api/generator", "").await;
    assert_eq!(body["config"]["bursts"], serde_json::json!([]));
    call(&state, "POST", "/api/generator/stop", "").await;
}

#[tokio::test]
async fn what_the_generator_made_before_a_shutdown_is_stored_and_comes_back() {
    let dir = std::env::temp_dir().join(format!("server-generator-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::default_for_tests();
    config.store = crate::persist::StoreKind::Sqlite;
    config.data_dir = dir.clone();
    let shutdown = CancellationToken::new();
    let state = AppState::open(config.clone(), Geocoder::shared(), shutdown.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = tokio::spawn(crate::serve(listener, state.clone()));
    call(&state, "PUT", "/api/generator", r#"{"rate":5000}"#).await;
    call(&state, "POST", "/api/generator/start", "").await;
    // Shut down while it runs (real clock: a few ticks' worth).
    for _ in 0..1000 {
        if accepted(&state) >= 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    serving.await.unwrap().unwrap();
    let (_, body) = call(&state, "GET", "/api/generator", "").await;
    assert_eq!(body["running"], false, "a shutdown stops it");
    let made = body["generated_total"].as_u64().unwrap();
    assert!(made >= 1000, "{made}");
    assert_eq!(accepted(&state), made, "everything made was ingested");

    let again = AppState::open(config, Geocoder::shared(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        again.hub.stats().seq,
        made,
        "stored before the stop, back after"
    );
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}
