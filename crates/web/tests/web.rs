//! The web binary on real sockets: static files, the single-page fallback, headers, and
//! `/api/*` forwarded to a tiny stand-in upstream, an event stream included.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

fn fixture_dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dist")
}

/// A stand-in for the traffic-globe server. Its stream sends whatever the test pushes.
struct Upstream {
    address: SocketAddr,
    events: mpsc::Sender<String>,
}

async fn start_upstream() -> Upstream {
    let (events, receiver) = mpsc::channel::<String>(16);
    let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(Some(receiver)));
    let app = Router::new()
        .route(
            "/api/stream",
            get(move |headers: HeaderMap| {
                let receiver = receiver.clone();
                async move {
                    let seen = headers
                        .get("last-event-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned();
                    let receiver = receiver.lock().await.take().expect("one stream per test");
                    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
                        let event = receiver.recv().await?;
                        Some((
                            Ok::<_, std::convert::Infallible>(Bytes::from(event)),
                            receiver,
                        ))
                    });
                    (
                        [
                            ("content-type", "text/event-stream".to_owned()),
                            ("cache-control", "no-cache".to_owned()),
                            ("x-seen-last-event-id", seen),
                        ],
                        Body::from_stream(body),
                    )
                }
            }),
        )
        .route(
            "/api/whoami",
            get(|headers: HeaderMap| async move {
                let get = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned()
                };
                (
                    [(
                        "set-cookie",
                        "tg_session=s.t; Path=/; HttpOnly; SameSite=Strict",
                    )],
                    format!(
                        "for={} host={} cookie={}",
                        get("x-forwarded-for"),
                        get("x-forwarded-host"),
                        get("cookie")
                    ),
                )
            }),
        )
        .route(
            "/api/events",
            post(|uri: axum::http::Uri, body: Bytes| async move {
                let echo = format!(
                    "{{\"query\":\"{}\",\"bytes\":{}}}",
                    uri.query().unwrap_or(""),
                    body.len()
                );
                (
                    StatusCode::ACCEPTED,
                    [("content-type", "application/json")],
                    echo,
                )
                    .into_response()
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("upstream address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream { address, events }
}

struct Web {
    base: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

async fn start_web(upstream: &str) -> Web {
    start_web_with(upstream, &[]).await
}

async fn start_web_with(upstream: &str, flags: &[&str]) -> Web {
    let dist = fixture_dist();
    let mut args = vec![
        "web",
        "--upstream",
        upstream,
        "--dist",
        dist.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(flags);
    let config = web::Config::parse_from(args);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind web");
    let base = format!("http://{}", listener.local_addr().expect("web address"));
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { web::serve(listener, &config, token).await });
    Web {
        base,
        shutdown,
        task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn fetch(url: String) -> reqwest::Response {
    client().get(url).send().await.expect("request")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().expect("ascii header"))
}

#[tokio::test]
async fn index_is_served_revalidated_and_under_a_same_origin_csp() {
    let web = start_web("http://127.0.0.1:9").await;
    let response = fetch(format!("{}/", web.base)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let csp = header(&response, "content-security-policy").to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("data:") && !csp.contains("*"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert!(header(&response, "content-type").starts_with("text/html"));
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("fixture index")
    );
}

#[tokio::test]
async fn hashed_assets_are_cached_for_a_year_and_gzipped_on_request() {
    let web = start_web("http://127.0.0.1:9").await;
    let response = client()
        .get(format!("{}/assets/app-abc123.js", web.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&response, "content-encoding"), "gzip");
    assert!(header(&response, "content-type").contains("javascript"));
    let gzipped = response.bytes().await.expect("body");
    assert_eq!(&gzipped[..2], &[0x1f, 0x8b], "a gzip member");

    let plain = fetch(format!("{}/assets/app-abc123.js", web.base)).await;
    assert_eq!(header(&plain, "content-encoding"), "");
    assert!(
        plain
            .text()
            .await
            .expect("body")
            .contains("hello from a hashed asset")
    );
}

#[tokio::test]
async fn unknown_pages_fall_back_to_the_app_but_missing_files_are_404() {
    let web = start_web("http://127.0.0.1:9").await;
    let page = fetch(format!("{}/some/view", web.base)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(page.text().await.expect("body").contains("fixture index"));

    for missing in ["/assets/app-000000.js", "/logo.png"] {
        let response = fetch(format!("{}{missing}", web.base)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{missing}");
    }

    let other = fetch(format!("{}/robots.txt", web.base)).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(header(&other, "cache-control"), "no-cache");
}

#[tokio::test]
async fn healthz_answers_without_an_upstream() {
    let web = start_web("http://127.0.0.1:9").await;
    let response = fetch(format!("{}/healthz", web.base)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "ok\n");
}

#[tokio::test]
async fn the_probe_passes_against_a_running_web_and_fails_without_one() {
    let web = start_web("http://127.0.0.1:9").await;
    let address = web.base.trim_start_matches("http://").to_owned();
    web::probe(&address, WAIT).await.expect("healthy");
    web.shutdown.cancel();
    web.task.await.expect("no panic").expect("clean shutdown");
    let error = web::probe(&address, WAIT)
        .await
        .expect_err("nothing listens now");
    assert!(format!("{error:#}").contains("/healthz"), "{error:#}");
}

#[tokio::test]
async fn api_requests_are_forwarded_with_method_query_body_and_status() {
    let upstream = start_upstream().await;
    let web = start_web(&format!("http://{}", upstream.address)).await;
    let response = client()
        .post(format!("{}/api/events?dry=1", web.base))
        .header("content-type", "application/json")
        .body(r#"{"ip":"1.2.3.4"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"query":"dry=1","bytes":16}"#
    );
}

#[tokio::test]
async fn cookies_pass_both_ways_and_the_upstream_learns_the_real_client_and_host() {
    let upstream = start_upstream().await;
    let web = start_web(&format!("http://{}", upstream.address)).await;
    let response = client()
        .get(format!("{}/api/whoami", web.base))
        .header("cookie", "tg_session=a.b")
        .header("x-forwarded-for", "10.9.8.7")
        .send()
        .await
        .expect("request");
    assert_eq!(
        header(&response, "set-cookie"),
        "tg_session=s.t; Path=/; HttpOnly; SameSite=Strict"
    );
    let host = web.base.trim_start_matches("http://").to_owned();
    assert_eq!(
        response.text().await.expect("body"),
        format!("for=127.0.0.1 host={host} cookie=tg_session=a.b")
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_with_a_json_reason() {
    // Port 9 (discard) on loopback: nothing listens there in a test sandbox.
    let web = start_web("http://127.0.0.1:9").await;
    let response = fetch(format!("{}/api/stats", web.base)).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("not reachable")
    );
}

#[tokio::test]
async fn an_event_stream_passes_through_event_by_event_with_last_event_id() {
    let upstream = start_upstream().await;
    let web = start_web(&format!("http://{}", upstream.address)).await;
    let mut response = client()
        .get(format!("{}/api/stream", web.base))
        .header("accept", "text/event-stream")
        .header("last-event-id", "boot-41")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "x-seen-last-event-id"), "boot-41");
    assert_eq!(
        header(&response, "content-encoding"),
        "",
        "never compressed"
    );

    // Each event must arrive before the next one is even produced: nothing is buffered.
    for seq in 42..45 {
        let event = format!("id: boot-{seq}\nevent: hits\ndata: {{\"seq\":{seq}}}\n\n");
        upstream.events.send(event.clone()).await.expect("push");
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .expect("event arrives promptly")
            .expect("stream readable")
            .expect("stream still open");
        assert_eq!(chunk, Bytes::from(event));
    }
    drop(upstream.events);
    let end = tokio::time::timeout(WAIT, response.chunk())
        .await
        .expect("end arrives promptly")
        .expect("clean end");
    assert!(end.is_none(), "the stream ends when the upstream's does");
}

#[tokio::test]
async fn shutdown_ends_open_forwarded_streams_and_returns() {
    let upstream = start_upstream().await;
    let web = start_web(&format!("http://{}", upstream.address)).await;
    let mut response = fetch(format!("{}/api/stream", web.base)).await;
    upstream
        .events
        .send("data: first\n\n".to_owned())
        .await
        .expect("push");
    let first = tokio::time::timeout(WAIT, response.chunk())
        .await
        .expect("first event");
    assert_eq!(
        first.expect("readable"),
        Some(Bytes::from("data: first\n\n"))
    );

    web.shutdown.cancel();
    let end = tokio::time::timeout(WAIT, response.chunk())
        .await
        .expect("the stream ends on shutdown even though the upstream's is open");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    let served = tokio::time::timeout(WAIT, web.task)
        .await
        .expect("serve returns")
        .expect("no panic");
    served.expect("clean shutdown");
    // Keep the upstream's sender alive until here, so only shutdown could have ended it.
    drop(upstream.events);
}

/// A stand-in upstream that answers anything and records the path and query it was asked.
async fn start_recording_upstream() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let record = record.clone();
        async move {
            let path = uri.path_and_query().map_or("", |p| p.as_str()).to_owned();
            record.lock().expect("not poisoned").push(path.clone());
            format!("upstream got {path}")
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("upstream address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, seen)
}

/// Sends `GET {target}` exactly as written (an HTTP client would normalise the path first)
/// and returns the status and body.
async fn raw_get(base: &str, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

#[tokio::test]
async fn paths_that_leave_api_in_any_spelling_are_404_and_never_forwarded() {
    let (upstream, seen) = start_recording_upstream().await;
    let web = start_web(&format!("http://{upstream}")).await;
    for target in [
        "/api/../metrics",
        "/api/%2e%2e/metrics",
        "/api/%2E%2E/metrics",
        "/api/.%2e/metrics",
        "/api/..%2fmetrics",
        "/api/stats%2F..%2F..%2Fmetrics",
        "/api/..%5Cmetrics",
        "/api/..\\metrics",
        "/api//metrics",
        "/api/x/../../metrics",
        "/api/./stats",
        "/api/%252e%252e/metrics",
    ] {
        let (status, body) = raw_get(&web.base, target).await;
        assert!(
            status == 404 || status == 400,
            "{target}: answered {status} {body}"
        );
        if status == 404 {
            assert!(
                body.contains("\"not_found\""),
                "{target}: JSON body, got {body}"
            );
        }
    }
    let (status, body) = raw_get(&web.base, "/api/stats?x=%2e%2e").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "upstream got /api/stats?x=%2e%2e")
    );
    assert_eq!(
        *seen.lock().expect("not poisoned"),
        vec!["/api/stats?x=%2e%2e".to_owned()],
        "only the plain path reached the upstream"
    );
}

/// Reads until the peer closes (a reset counts); panics if it does not within `WAIT`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "web did not close the connection; got {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_connection_that_sends_half_a_request_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let web = start_web_with("http://127.0.0.1:9", &["--header-timeout-secs", "1"]).await;
    let address = web.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAcce")
        .await
        .expect("send");
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "closed without serving anything: {answer:?}"
    );
    assert_eq!(fetch(format!("{}/healthz", web.base)).await.status(), 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_and_are_served_once_others_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let web = start_web_with("http://127.0.0.1:9", &["--max-connections", "2"]).await;
    let address = web.base.trim_start_matches("http://").to_owned();
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("send");
        let mut head = [0u8; 12];
        tokio::time::timeout(WAIT, stream.read_exact(&mut head))
            .await
            .expect("served")
            .expect("read");
        assert_eq!(&head, b"HTTP/1.1 200");
        holders.push(stream);
    }
    let mut third = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut peek = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.peek(&mut peek)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    drop(holders.pop());
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
