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

/// A request body as JSON, whichever way it was written: a JSON body as it is (an object
/// for one event, an array for several), a binary one (`content_type` the binary layout's)
/// decoded and written as an array of the events.
pub fn body_json(content_type: &str, body: &[u8]) -> serde_json::Value {
    match traffic::ingest::BodyFormat::from_content_type(content_type) {
        Some(traffic::ingest::BodyFormat::Binary) => {
            let events = traffic::ingest::binary::parse(body, usize::MAX).unwrap();
            serde_json::to_value(events).unwrap()
        }
        _ => serde_json::from_slice(body).expect("a JSON body"),
    }
}
