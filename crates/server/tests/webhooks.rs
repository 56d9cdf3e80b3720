//! Alerts delivered to webhooks over a real socket: a local receiver records what it is
//! sent; a scripted burst fires an alert on the stream and at the receiver, in the three
//! body formats, with retries after a refusal; over https, to a receiver whose self-signed
//! certificate is made here, trusted only when given as a CA.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use server::Config;
use server::webhooks::{Delivery, Format, Target, Webhooks};
use support::TestServer;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;
use traffic::analytics::KeyKind;
use traffic::analytics::alerts::{Alert, AlertState};
use traffic::analytics::rules::{RuleType, Severity};

/// What the receiver got: (path, body), and how many requests to refuse with a 500 first.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    refuse: Arc<Mutex<usize>>,
}

async fn receive(
    State(received): State<Received>,
    uri: axum::http::Uri,
    body: axum::Json<serde_json::Value>,
) -> StatusCode {
    received
        .requests
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), body.0));
    let mut refuse = received.refuse.lock().unwrap();
    if *refuse > 0 {
        *refuse -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// A receiver on 127.0.0.1; returns its base URL.
async fn receiver(received: Received) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(received);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Waits (bounded) until the receiver holds `n` requests.
async fn wait_for(received: &Received, n: usize) -> Vec<(String, serde_json::Value)> {
    for _ in 0..500 {
        let requests = received.requests.lock().unwrap().clone();
        if requests.len() >= n {
            return requests;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the receiver got {:?}", received.requests.lock().unwrap());
}

fn alert() -> Alert {
    Alert {
        id: 7,
        rule: "heavy_hitter".into(),
        rule_type: RuleType::HeavyHitter,
        severity: Severity::Warning,
        kind: Some(KeyKind::Network),
        key: Some("192.0.2.0/24".into()),
        place: None,
        state: AlertState::Firing,
        fired_at: 1_736_919_120,
        resolved_at: None,
        value: 0.25,
        peak: 0.25,
        count: None,
        event: None,
    }
}

#[tokio::test]
async fn each_format_gets_its_body_and_a_refused_delivery_is_retried() {
    let received = Received::default();
    *received.refuse.lock().unwrap() = 1;
    let base = receiver(received.clone()).await;
    let target = |format, path: &str| Target {
        format,
        url: format!("{base}{path}"),
    };
    let webhooks = Webhooks::start(
        Delivery {
            targets: vec![
                target(Format::Discord, "/discord"),
                target(Format::Generic, "/generic"),
                target(Format::Slack, "/slack"),
            ],
            queue: 10,
            retries: 2,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
            roots: Vec::new(),
        },
        CancellationToken::new(),
    );
    webhooks.offer(&alert());
    let requests = wait_for(&received, 4).await;
    let paths: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/discord", "/discord", "/generic", "/slack"]);
    let discord = requests[1].1["content"].as_str().unwrap();
    assert!(
        discord.contains("FIRING heavy hitter: network 192.0.2.0/24, 25.0%"),
        "{discord}"
    );
    assert_eq!(requests[2].1["key"], "192.0.2.0/24");
    assert_eq!(requests[2].1["rule"], "heavy_hitter");
    assert_eq!(requests[3].1["text"].as_str().unwrap(), discord);
    assert_eq!(
        webhooks.failed.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn a_full_queue_drops_alerts_and_counts_them() {
    let webhooks = Webhooks::start(
        Delivery {
            targets: vec![Target {
                format: Format::Generic,
                url: "http://127.0.0.1:9/".into(),
            }],
            queue: 1,
            retries: 0,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(1),
            roots: Vec::new(),
        },
        CancellationToken::new(),
    );
    // The delivery task has not run yet (this runtime has one thread and nothing awaited):
    // the first alert fills the queue, the next two find it full.
    for _ in 0..3 {
        webhooks.offer(&alert());
    }
    assert_eq!(
        webhooks.dropped.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn a_burst_fires_an_alert_on_the_stream_and_at_the_webhook() {
    let received = Received::default();
    let base = receiver(received.clone()).await;
    let mut config = Config::default_for_tests();
    config.publish_interval_ms = 2;
    config.stats_interval_ms = 50;
    config.alert_webhooks = vec![format!("{base}/hook").parse().unwrap()];
    let server = TestServer::start(config).await;
    let mut stream = server.stream(None).await;
    let events: Vec<String> = (0..80)
        .map(|i| {
            let ip = if i < 20 {
                format!("192.0.2.{}", i + 1)
            } else {
                format!("10.{i}.0.1")
            };
            format!(
                r#"{{"ip":"{ip}","latitude":48.8566,"longitude":2.3522,"timestamp":1736919120,"suspicious":0}}"#
            )
        })
        .collect();
    let response = server.post(format!("[{}]", events.join(","))).await;
    assert_eq!(response.status(), 202);
    let alert = stream.next_of("alert").await.json();
    assert_eq!(alert["rule"], "heavy_hitter");
    assert_eq!(alert["key"], "192.0.2.0/24");
    let requests = wait_for(&received, 1).await;
    assert_eq!(requests[0].0, "/hook");
    assert_eq!(requests[0].1["id"], alert["id"]);
    server.shutdown.cancel();
}

/// An https receiver on 127.0.0.1 with a self-signed certificate made here: it reads one
/// request per connection (headers, then `Content-Length` bytes), records its JSON body and
/// answers 204. Returns its URL and the certificate (PEM).
async fn tls_receiver(received: Received) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let received = received.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate hangs up here.
                let Ok(mut stream) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Bounded: at most 1 MiB.
                while request.len() < 1 << 20 {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if request.len() < end + 4 + length {
                        continue;
                    }
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let body = serde_json::from_slice(&request[end + 4..end + 4 + length])
                        .unwrap_or(serde_json::Value::Null);
                    received.requests.lock().unwrap().push((path, body));
                    let _ = stream
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    let _ = stream.shutdown().await;
                    return;
                }
            });
        }
    });
    (format!("https://{addr}"), pem)
}

#[tokio::test]
async fn an_https_webhook_gets_the_alert_when_its_certificate_is_trusted_and_not_otherwise() {
    let received = Received::default();
    let (base, pem) = tls_receiver(received.clone()).await;
    let delivery = |roots: Vec<rustls::pki_types::CertificateDer<'static>>| Delivery {
        targets: vec![format!("slack={base}/tls").parse().unwrap()],
        queue: 10,
        retries: 0,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        roots,
    };
    // Without the certificate: refused by the TLS check, counted as failed, nothing received.
    let untrusting = Webhooks::start(delivery(Vec::new()), CancellationToken::new());
    untrusting.offer(&alert());
    for _ in 0..500 {
        if untrusting.failed.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        untrusting.failed.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(received.requests.lock().unwrap().is_empty());
    // Trusted as a CA (what --alert-webhook-ca gives): delivered.
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let trusting = Webhooks::start(delivery(vec![ca]), CancellationToken::new());
    trusting.offer(&alert());
    let requests = wait_for(&received, 1).await;
    assert_eq!(requests[0].0, "/tls");
    let text = requests[0].1["text"].as_str().unwrap();
    assert!(
        text.contains("FIRING heavy hitter: network 192.0.2.0/24"),
        "{text}"
    );
    assert_eq!(
        trusting.failed.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
