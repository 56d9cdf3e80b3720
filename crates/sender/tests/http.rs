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
use traffic::ingest::BodyFormat;

mod support;

/// What the fake server saw and what it will answer.
#[derive(Clone, Default)]
struct Server {
    /// Content type and JSON body of every request.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// Idempotency key of every request.
    keys: Arc<Mutex<Vec<String>>>,
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
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    server.keys.lock().unwrap().push(key);
    let value = support::body_json(&content_type, &body);
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

/// A transport posting JSON bodies (what these tests read back).
fn transport(addr: SocketAddr) -> HttpTransport {
    let url = format!("http://{addr}").parse().unwrap();
    HttpTransport::new(&url, Duration::from_secs(5), None)
        .unwrap()
        .with_format(BodyFormat::Json)
}

fn event(ip: &str, timestamp: f64) -> Event {
    Event::at(ip.parse().unwrap(), 35.3696, -119.0105, timestamp, true)
}

#[tokio::test]
async fn one_event_is_posted_as_an_object_and_several_as_an_array_of_json() {
    let server = Server::default();
    let mut transport = transport(start(server.clone()).await);

    let one = transport
        .post("run:1", &[event("173.198.105.40", 1736919120.0)])
        .await;
    assert_eq!(one, Ok(1));
    let two = [
        event("1.2.3.4", 1736919120.5),
        event("2001:db8::1", 1736919121.0),
    ];
    assert_eq!(transport.post("run:2", &two).await, Ok(2));
    assert_eq!(*server.keys.lock().unwrap(), ["run:1", "run:2"]);

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
async fn by_default_events_are_posted_in_the_binary_layout_and_read_back_the_same() {
    let server = Server::default();
    let addr = start(server.clone()).await;
    let url = format!("http://{addr}").parse().unwrap();
    let mut transport = HttpTransport::new(&url, Duration::from_secs(5), None).unwrap();
    let events = [
        event("173.198.105.40", 1736919120.0),
        Event {
            path: Some("/wp-login.php".into()),
            status: Some(404),
            ..event("2001:db8::1", 1736919121.5)
        },
    ];
    assert_eq!(transport.post("run:1", &events[..1]).await, Ok(1));
    assert_eq!(transport.post("run:2", &events).await, Ok(2));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for (content_type, _) in &requests {
        assert_eq!(content_type, traffic::ingest::binary::CONTENT_TYPE);
    }
    assert_eq!(requests[0].1, serde_json::to_value(&events[..1]).unwrap());
    assert_eq!(requests[1].1, serde_json::to_value(events).unwrap());
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
        matches!(transport.post("k:1", &batch).await, Err(PostError::Transient(m)) if m.contains("503"))
    );
    assert!(
        matches!(transport.post("k:1", &batch).await, Err(PostError::Transient(m)) if m.contains("429"))
    );
    assert_eq!(
        transport.post("k:1", &batch).await,
        Err(PostError::TooLarge)
    );
    assert_eq!(
        transport.post("k:1", &batch).await,
        Err(PostError::Invalid {
            item: Some(1),
            field: Some("latitude".into()),
            reason: "91 is out of range -90..=90".into()
        })
    );
    let Err(PostError::Fatal(message)) = transport.post("k:1", &batch).await else {
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
    let result = transport
        .post("k:1", &[event("1.2.3.4", 1736919120.0)])
        .await;
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
        format: sender::source::InputFormat::Auto,
        map: None,
        rules: None,
        url: format!("http://{addr}").parse().unwrap(),
        token: None,
        speed: sender::Speed::Factor(10.0),
        looping: false,
        strict: false,
        max_batch: None,
        max_gap: None,
        give_up_after: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        body: sender::config::Body::Binary,
        quiet: true,
        follow: false,
        checkpoint: None,
        from_beginning: false,
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
    let keys = server.keys.lock().unwrap().clone();
    assert_eq!(keys[0], keys[1], "under the same key");
    assert_ne!(keys[1], keys[2], "the next batch has its own key");
    assert_eq!(bodies[1].as_array().map(Vec::len), Some(2));
    // A binary body reads back as an array, of one event here.
    assert_eq!(bodies[2][0]["ip"], "173.197.225.168");
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

/// What the raw server does with each request, in turn.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Count the request, then close the connection without answering: the 202 is lost.
    CountAndDrop,
    /// Answer 409 with `Retry-After: 1`, as a server does while the key is in flight.
    Conflict,
}

/// A bare HTTP/1.1 server (no framework) that can lose an answer after counting the request.
#[derive(Clone, Default)]
struct RawServer {
    /// Idempotency key and JSON body of every request, in order.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// Acts for the next requests in turn; a 202 with the count once empty.
    script: Arc<Mutex<VecDeque<Act>>>,
}

impl RawServer {
    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(stream));
            }
        });
        addr
    }

    /// Serves the requests of one keep-alive connection.
    async fn serve(self, stream: tokio::net::TcpStream) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let mut stream = BufReader::new(stream);
        loop {
            let (mut length, mut key, mut content_type) = (0usize, String::new(), String::new());
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "idempotency-key" => key = value.trim().to_owned(),
                        "content-type" => content_type = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            let value = support::body_json(&content_type, &body);
            let count = value.as_array().map_or(1, Vec::len);
            self.seen.lock().unwrap().push((key, value));
            let act = self.script.lock().unwrap().pop_front();
            let (status, extra, body) = match act {
                Some(Act::CountAndDrop) => return,
                Some(Act::Conflict) => (
                    "409 Conflict",
                    "retry-after: 1\r\n",
                    r#"{"error":"in_flight","message":"a request with this key is being processed"}"#
                        .to_owned(),
                ),
                None => ("202 Accepted", "", json!({ "accepted": count }).to_string()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }

    /// Starts a server doing `acts` first, replays `GOOD_CSV` into it with the real sender,
    /// and returns the summary and what the server saw.
    async fn replay(acts: &[Act], name: &str) -> (sender::Summary, Vec<(String, Value)>) {
        let server = RawServer::default();
        server.script.lock().unwrap().extend(acts);
        let config = config(server.start().await, GOOD_CSV, name);
        let summary = sender::run(config.clone(), CancellationToken::new())
            .await
            .unwrap();
        std::fs::remove_file(&config.csv).unwrap();
        (summary, server.seen())
    }
}

/// Rows of `CSV` without the unusable one: two due together, then one.
const GOOD_CSV: &str = "ip address,Latitude,Longitude,Timestamp,suspicious
173.198.105.40,35.3696,-119.0105,1736919120,0.0
5.165.146.0,56.1089,47.4821,1736919120,1.0
173.197.225.168,30.4264,-84.9462,1736919121,0.0
";

/// Rows the server counted if it counts each key once, as the ingest contract says.
fn counted_once_per_key(seen: &[(String, Value)]) -> usize {
    let mut keys = std::collections::HashSet::new();
    seen.iter()
        .filter(|(key, _)| keys.insert(key.clone()))
        .map(|(_, body)| body.as_array().map_or(1, Vec::len))
        .sum()
}

fn assert_key_syntax(key: &str, batch: u64) {
    let (run, number) = key.split_once(':').unwrap();
    assert_eq!(run.len(), 16, "{key}");
    assert!(run.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert_eq!(number, batch.to_string(), "{key}");
}

#[tokio::test]
async fn a_batch_whose_answer_was_lost_is_retried_under_the_same_key() {
    let (summary, seen) = RawServer::replay(&[Act::CountAndDrop], "lost-answer").await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    let ((first_key, first), (retry_key, retry)) = (&seen[0], &seen[1]);
    assert_key_syntax(first_key, 1);
    assert_eq!(retry_key, first_key, "the retry carries the same key");
    assert_eq!(retry, first, "and the same rows");
    assert_eq!(first.as_array().map(Vec::len), Some(2));
    assert_key_syntax(&seen[2].0, 2);
    assert_eq!(&seen[2].0[..16], &first_key[..16], "one run id per run");
    assert_eq!(counted_once_per_key(&seen), 3, "nothing counted twice");
    assert_eq!((summary.accepted, summary.retries), (3, 1));
    assert!(summary.all_accepted(), "{summary}");

    // Another run of the same file has another run id.
    let (_, again) = RawServer::replay(&[], "lost-answer-2").await;
    assert_ne!(&again[0].0[..16], &first_key[..16]);
}

#[tokio::test]
async fn a_409_for_a_batch_in_flight_is_retried_under_the_same_key() {
    let (summary, seen) = RawServer::replay(&[Act::Conflict], "conflict").await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], seen[1], "same key, same rows after the 409");
    assert_key_syntax(&seen[1].0, 1);
    assert_key_syntax(&seen[2].0, 2);
    assert_eq!((summary.accepted, summary.retries), (3, 1));
    assert!(summary.all_accepted(), "{summary}");
}

#[tokio::test]
async fn optional_fields_read_from_csv_are_posted_and_absent_ones_left_out() {
    let server = Server::default();
    let addr = start(server.clone()).await;
    let mut transport = transport(addr);
    let csv = "source_ip,ts,length,protocol,status_code,method,url,dst_ip\n\
               203.0.113.9,1736919120,1514,TCP,404,GET,/.env,10.0.0.1\n\
               203.0.113.10,1736919121,,,,,,\n";
    let events: Vec<Event> = traffic::csv::CsvReader::new(csv.as_bytes())
        .unwrap()
        .map(|row| row.unwrap().event)
        .collect();
    assert_eq!(transport.post("run:1", &events).await, Ok(2));
    let requests = server.requests();
    let array = requests[0].1.as_array().unwrap();
    assert_eq!(
        array[0],
        json!({
            "ip": "203.0.113.9", "timestamp": 1736919120.0, "suspicious": false,
            "bytes": 1514, "protocol": "TCP", "status": 404, "method": "GET",
            "path": "/.env", "dest_ip": "10.0.0.1"
        })
    );
    assert_eq!(
        array[1],
        json!({ "ip": "203.0.113.10", "timestamp": 1736919121.0, "suspicious": false }),
        "no coordinates and no request fields: nothing but the required fields"
    );
}
