//! Helpers shared by the sender's integration tests.
#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses some of them; a panic is the failure report.

use std::time::Duration;

/// The server's `/api/stats`.
pub async fn stats(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/api/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The server's `/api/stats` once its total is `total` (the server publishes within
/// milliseconds of a 202; bounded wait: 5 s), or the last reading.
pub async fn stats_at_total(url: &str, total: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..500 {
        last = stats(url).await;
        if last["total"].as_u64() == Some(total) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    last
}
