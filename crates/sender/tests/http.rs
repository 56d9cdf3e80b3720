//! The real HTTP transport against a tiny axum server on 127.0.0.1:0 (real clock, small data).
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use sender::{Config, HttpTransport, PostError, Transport};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use traffic::Event;

/// What the fake server saw and what it will answer.
#[derive(Clone, Default)]
struct Server {
    /// Content type and JSON body of every request.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answers for the next requests in turn; 202 with the count once empty.
    script: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
}

impl Server {
    fn requests(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn ingest(
    State(server): State<Server>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let value: Value = serde_json::from_slice(&body).expect("body is JSON");
    let count = value.as_array().map_or(1, Vec::len);
    server.seen.lock().unwrap().push((content_type, value));
    match server.script.lock().unwrap().pop_front() {
        Some((status, body)) => (StatusCode::from_u16(status).unwrap(), body.to_owned()),
        None => (
            StatusCode::ACCEPTED,
            json!({ "accepted": count }).to_string(),
        ),
    }
}

async fn start(server: Server) -> SocketAddr {
    let app = Router::new()
        .route("/api/events", post(ingest))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn transport(addr: SocketAddr) -> HttpTransport {
    let url = format!("http://{addr}").parse().unwrap();
    HttpTransport::new(&url, Duration::from_secs(5)).unwrap()
}

fn event(ip: &str, timestamp: f64) -> Event {
    Event {
        ip: ip.parse().unwrap(),
        latitude: 35.3696,
        longitude: -119.0105,
        timestamp,
        suspicious: true,
    }
}

#[tokio::test]
async fn one_event_is_posted_as_an_object_and_several_as_an_array_of_json() {
    let server = Server::default();
    let mut transport = transport(start(server.clone()).await);

    let one = transport
        .post(&[event("173.198.105.40", 1736919120.0)])
        .await;
    assert_eq!(one, Ok(1));
    let two = [
        event("1.2.3.4", 1736919120.5),
        event("2001:db8::1", 1736919121.0),
    ];
    assert_eq!(transport.post(&two).await, Ok(2));

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for (content_type, _) in &requests {
        assert_eq!(content_type, "application/json");
    }
    let object = &requests[0].1;
    assert!(object.is_object(), "{object}");
    assert_eq!(object["ip"], "173.198.105.40");
    assert_eq!(object["latitude"], 35.3696);
    assert_eq!(object["longitude"], -119.0105);
    assert_eq!(object["timestamp"].as_f64(), Some(1736919120.0));
    assert_eq!(object["suspicious"], true);
    let array = requests[1].1.as_array().expect("an array for two events");
    assert_eq!(array.len(), 2);
    assert_eq!(array[0]["timestamp"].as_f64(), Some(1736919120.5));
    assert_eq!(array[1]["ip"], "2001:db8::1");
}

#[tokio::test]
async fn server_answers_are_sorted_into_retry_split_reject_and_fatal() {
    let server = Server::default();
    *server.script.lock().unwrap() = VecDeque::from([
        (503, "busy"),
        (429, r#"{"error":"slow_down"}"#),
        (413, ""),
        (
            422,
            r#"{"error":"invalid_event","message":"item 1: latitude: 91 is out of range","item":1,"field":"latitude","reason":"91 is out of range -90..=90"}"#,
        ),
        (
            404,
            r#"{"error":"not_found","message":"no route /api/events"}"#,
        ),
    ]);
    let mut transport = transport(start(server.clone()).await);
    let batch = [
        event("1.2.3.4", 1736919120.0),
        event("1.2.3.5", 1736919120.0),
    ];

    assert!(
        matches!(transport.post(&batch).await, Err(PostError::Transient(m)) if m.contains("503"))
    );
    assert!(
        matches!(transport.post(&batch).await, Err(PostError::Transient(m)) if m.contains("429"))
    );
    assert_eq!(transport.post(&batch).await, Err(PostError::TooLarge));
    assert_eq!(
        transport.post(&batch).await,
        Err(PostError::Invalid {
            item: Some(1),
            field: Some("latitude".into()),
            reason: "91 is out of range -90..=90".into()
        })
    );
    let Err(PostError::Fatal(message)) = transport.post(&batch).await else {
        panic!("404 must be fatal");
    };
    assert!(message.contains("no route /api/events"), "{message}");
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_error() {
    // Bind and drop to get a port that nothing listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut transport = transport(addr);
    let result = transport.post(&[event("1.2.3.4", 1736919120.0)]).await;
    assert!(matches!(result, Err(PostError::Transient(_))), "{result:?}");
}

const CSV: &str = "ip address,Latitude,Longitude,Timestamp,suspicious
173.198.105.40,35.3696,-119.0105,1736919120,0.0
5.165.146.0,56.1089,47.4821,1736919120,1.0
70.118.96.132,29.4227,-98.4927,17369x9120,0.0
173.197.225.168,30.4264,-84.9462,1736919121,0.0
";

fn config(addr: SocketAddr, csv: &str, name: &str) -> Config {
    let path = std::env::temp_dir().join(format!("sender-http-{}-{name}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    Config {
        csv: path,
        url: format!("http://{addr}").parse().unwrap(),
        speed: 10.0,
        looping: false,
        strict: false,
        max_batch: 1000.try_into().unwrap(),
        give_up_after: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        quiet: true,
    }
}

#[tokio::test]
async fn a_file_is_replayed_through_a_5xx_without_losing_or_doubling_rows() {
    let server = Server::default();
    server.script.lock().unwrap().push_back((503, "warming up"));
    let addr = start(server.clone()).await;
    let config = config(addr, CSV, "retry");
    let summary = sender::run(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    std::fs::remove_file(&config.csv).unwrap();

    let requests = server.requests();
    // 503 for the first two rows, then the same two again, then the last row on its own.
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.1).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1], "the same batch is retried");
    assert_eq!(bodies[1].as_array().map(Vec::len), Some(2));
    assert_eq!(bodies[2]["ip"], "173.197.225.168");
    assert_eq!(summary.accepted, 3);
    assert_eq!(summary.retries, 1);
    assert_eq!(summary.skipped.get("timestamp"), Some(&1), "{summary}");
    assert!(summary.all_accepted(), "{summary}");
}

#[tokio::test]
async fn an_unreachable_server_is_given_up_on_with_the_count_of_rows_lost() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = config(addr, CSV, "down");
    config.give_up_after = Duration::from_millis(300);
    let err = sender::run(config.clone(), CancellationToken::new())
        .await
        .unwrap_err();
    std::fs::remove_file(&config.csv).unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("3 rows were not delivered"), "{message}");
}
