//! The `sender capture` binary on the loopback interface against the real server: the test
//! sends a known number of UDP datagrams and HTTP requests to local ports while the sender
//! captures them, stops the sender with SIGINT, and checks that the server counted exactly
//! those packets (or their flows) by protocol, with the right byte totals, and no drops.
//!
//! Needs the right to capture (root, as CI runs): skipped with a message otherwise. The
//! number of TCP packets an HTTP exchange takes is the kernel's business (ACKs, FINs), so the
//! test captures the same ports itself (a second, independent libpcap handle) as the
//! reference; the UDP datagrams are known exactly.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

mod support;
use support::stats;

const DATAGRAMS: usize = 20;
const PAYLOAD: usize = 100;
/// Ethernet (as Linux's loopback has it) + IPv4 + UDP headers around the payload.
const DATAGRAM_WIRE: u64 = 14 + 20 + 8 + PAYLOAD as u64;
const REQUESTS: usize = 5;
/// Time for the last packets of the traffic to reach the capture before the stop.
const SETTLE: Duration = Duration::from_millis(500);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// One packet as the reference capture saw it.
#[derive(Debug, Clone)]
struct Seen {
    protocol: &'static str,
    flow: (IpAddr, IpAddr, Option<u16>, Option<u16>, &'static str, i64),
    length: u64,
}

/// The reference: every packet matching `filter` on `lo`, until `stop`.
fn reference(filter: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Seen>> {
    let mut capture = pcap::Capture::from_device("lo")
        .unwrap()
        .snaplen(256)
        .immediate_mode(true)
        .open()
        .unwrap()
        .setnonblock()
        .unwrap();
    capture.filter(&filter, true).unwrap();
    capture.direction(pcap::Direction::In).unwrap();
    std::thread::spawn(move || {
        let linktype = capture.get_datalink().0;
        let mut seen = Vec::new();
        // Bounded: 60 s of 1 ms naps at most.
        for _ in 0..60_000 {
            match capture.next_packet() {
                Ok(p) => {
                    let packet = sources::pcap::decode_packet(linktype, p.data)
                        .unwrap()
                        .unwrap();
                    seen.push(Seen {
                        protocol: packet.protocol,
                        flow: (
                            packet.src,
                            packet.dst,
                            packet.src_port,
                            packet.dest_port,
                            packet.protocol,
                            p.header.ts.tv_sec,
                        ),
                        length: u64::from(p.header.len),
                    });
                    continue;
                }
                Err(pcap::Error::TimeoutExpired) => {}
                Err(e) => panic!("reference capture: {e}"),
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        seen
    })
}

/// A local HTTP server answering every request, on its own port.
async fn http_target() -> SocketAddr {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn start_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = server::Config::default_for_tests();
    config.stats_interval_ms = 50;
    let state = server::AppState::new(config, server::Geocoder::shared(), CancellationToken::new());
    tokio::spawn(server::serve(listener, state));
    format!("http://{addr}")
}

/// The sender capturing on `lo` with `--per per` and `filter`, posting to `url`: the child,
/// a receiver that gets a message once it says it is capturing, and its stderr lines (kept
/// for the report, joined once it exits).
fn start_capture(
    per: &str,
    url: &str,
    filter: &str,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<()>,
    std::thread::JoinHandle<Vec<String>>,
) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sender"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SENDER_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let mut sender = command
        .args(["capture", "--interface", "lo", "--per", per, "--url", url])
        .args(["--filter", filter])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stderr = sender.stderr.take().unwrap();
    let output = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("capturing") {
                ready_tx.send(()).ok();
            }
            lines.push(line);
        }
        lines
    });
    (sender, ready_rx, output)
}

/// Runs the sender with `--per per`, sends the traffic, waits `settle`, stops the sender
/// with SIGINT; returns the
/// server's stats, the reference's packets and the sender's summary line.
async fn run(per: &str, settle: Duration) -> (serde_json::Value, Vec<Seen>, String) {
    let url = start_server().await;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let http = http_target().await;
    let filter = format!("udp port {udp_port} or tcp port {}", http.port());

    let (mut sender, ready_rx, output) = start_capture(per, &url, &filter);
    let stop = Arc::new(AtomicBool::new(false));
    let reference = reference(filter, stop.clone());
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the sender starts capturing");

    let target = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..DATAGRAMS {
        target
            .send_to(&[7u8; PAYLOAD], ("127.0.0.1", udp_port))
            .unwrap();
    }
    // One connection per request (no keep-alive): five TCP conversations.
    for _ in 0..REQUESTS {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let body = client
            .get(format!("http://{http}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hello");
    }
    // The last FINs and ACKs reach the capture (or not: `settle` zero stops at once).
    tokio::time::sleep(settle).await;
    let status = Command::new("kill")
        .args(["-INT", &sender.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..400 {
        if let Some(s) = sender.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.expect("the sender stops within 20 s of SIGINT");
    stop.store(true, Ordering::Relaxed);
    let seen = reference.join().unwrap();
    let lines = output.join().unwrap();
    let summary = lines
        .iter()
        .find(|l| l.starts_with("sender: "))
        .cloned()
        .unwrap_or_else(|| panic!("no summary in {lines:#?}"));
    assert!(exited.success(), "{exited}: {lines:#?}");
    // Every event was accepted (202) before the sender exited; the server publishes them
    // within milliseconds (bounded wait: 10 s).
    let accepted: u64 = summary
        .split("(accepted ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no accepted count in {summary}"));
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        last = stats(&url).await;
        if last["total"].as_u64() == Some(accepted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (last, seen, summary)
}

fn protocols(stats: &serde_json::Value) -> BTreeMap<String, u64> {
    stats["top_protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn check_common(stats: &serde_json::Value, seen: &[Seen], summary: &str) {
    let udp: Vec<&Seen> = seen.iter().filter(|s| s.protocol == "UDP").collect();
    assert_eq!(udp.len(), DATAGRAMS, "the reference saw every datagram");
    assert!(udp.iter().all(|s| s.length == DATAGRAM_WIRE));
    let tcp_bytes: u64 = seen
        .iter()
        .filter(|s| s.protocol == "TCP")
        .map(|s| s.length)
        .sum();
    assert_eq!(
        stats["bytes"]["total"].as_u64().unwrap(),
        DATAGRAMS as u64 * DATAGRAM_WIRE + tcp_bytes,
        "{stats}"
    );
    let capture = &stats["capture"];
    assert_eq!(
        capture["captured"].as_u64().unwrap(),
        seen.len() as u64,
        "{capture}"
    );
    assert_eq!(capture["dropped"], 0, "{capture}");
    assert_eq!(
        capture["sensors"], 0,
        "the sender reported its end: {capture}"
    );
    assert!(summary.starts_with("sender: complete"), "{summary}");
    assert!(summary.contains("dropped by the kernel 0"), "{summary}");
    assert!(summary.contains("by the sender's queue 0"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_packet_the_server_counts_every_captured_packet_by_protocol_with_its_bytes() {
    if !is_root() {
        eprintln!("SKIPPED: capturing on lo needs root (or CAP_NET_RAW); CI runs as root");
        return;
    }
    let (stats, seen, summary) = run("packet", SETTLE).await;
    let tcp = seen.iter().filter(|s| s.protocol == "TCP").count() as u64;
    // At least a handshake, a request, an answer and a close per request.
    assert!(tcp >= 5 * REQUESTS as u64, "{tcp}");
    assert_eq!(
        stats["total"].as_u64().unwrap(),
        seen.len() as u64,
        "{stats}"
    );
    assert_eq!(
        protocols(&stats),
        BTreeMap::from([
            ("TCP".to_owned(), tcp),
            ("UDP".to_owned(), DATAGRAMS as u64)
        ]),
    );
    check_common(&stats, &seen, &summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_flow_the_server_counts_one_event_per_five_tuple_and_second() {
    if !is_root() {
        eprintln!("SKIPPED: capturing on lo needs root (or CAP_NET_RAW); CI runs as root");
        return;
    }
    let (stats, seen, summary) = run("flow", SETTLE).await;
    let flows = |protocol: &str| {
        seen.iter()
            .filter(|s| s.protocol == protocol)
            .map(|s| s.flow)
            .collect::<HashSet<_>>()
            .len() as u64
    };
    let (tcp, udp) = (flows("TCP"), flows("UDP"));
    // Each request is a conversation in two directions: two 5-tuples, each in one or two
    // seconds; the datagrams are one 5-tuple.
    assert!(tcp >= 2 * REQUESTS as u64, "{tcp}");
    assert!((1..=2).contains(&udp), "{udp}");
    assert_eq!(stats["total"].as_u64().unwrap(), tcp + udp, "{stats}");
    assert_eq!(
        protocols(&stats),
        BTreeMap::from([("TCP".to_owned(), tcp), ("UDP".to_owned(), udp)]),
    );
    check_common(&stats, &seen, &summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_the_traffic_still_sends_every_packet_captured_before_it() {
    if !is_root() {
        eprintln!("SKIPPED: capturing on lo needs root (or CAP_NET_RAW); CI runs as root");
        return;
    }
    // SIGINT at once: the datagrams are still in the kernel's capture buffer (it hands
    // over a block of packets only when full or after its time-out), and are read and sent
    // before the sender exits.
    let (stats, _, summary) = run("packet", Duration::ZERO).await;
    assert_eq!(
        protocols(&stats).get("UDP"),
        Some(&(DATAGRAMS as u64)),
        "{summary}"
    );
    assert_eq!(stats["capture"]["dropped"], 0, "{stats}");
}

#[test]
fn without_the_right_to_capture_the_error_names_the_fixes() {
    // Root without CAP_NET_RAW/CAP_NET_ADMIN in its bounding set: what a plain user gets.
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if !is_root() || !setpriv.exists() {
        eprintln!("SKIPPED: needs root and setpriv (util-linux) to drop the capture rights");
        return;
    }
    let output = Command::new(setpriv)
        .args(["--bounding-set", "-net_raw,-net_admin"])
        .arg(env!("CARGO_BIN_EXE_sender"))
        .args([
            "capture",
            "--interface",
            "lo",
            "--url",
            "http://127.0.0.1:9",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for fix in [
        "run as root",
        "setcap cap_net_raw,cap_net_admin+ep",
        "cap_add: [NET_RAW, NET_ADMIN]",
        "network_mode: host",
    ] {
        assert!(stderr.contains(fix), "{fix:?} in {stderr}");
    }
}

/// A webhook receiver on 127.0.0.1: every POSTed JSON body, in order; returns its URL.
async fn webhook_receiver() -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push(body.0);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), bodies)
}

/// Reads the server's SSE stream until an `alert` event whose data names `rule` (bounded:
/// 20 s); returns its data.
async fn next_alert(stream: &mut reqwest::Response, rule: &str) -> serde_json::Value {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for message in text.split("\n\n") {
            if message.lines().any(|l| l == "event: alert")
                && let Some(data) = message.lines().find_map(|l| l.strip_prefix("data: "))
            {
                let alert: serde_json::Value = serde_json::from_str(data).unwrap();
                if alert["rule"] == rule {
                    return alert;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {rule} alert on the stream within 20 s: {text}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_udp_packet_on_lo_raises_the_large_packet_alert_on_the_stream_and_at_a_webhook() {
    if !is_root() {
        eprintln!("SKIPPED: capturing on lo needs root (or CAP_NET_RAW); CI runs as root");
        return;
    }
    // The server with its built-in rules (large_packet: a UDP or ICMP packet over 1,400
    // bytes) and a webhook.
    let (hook, delivered) = webhook_receiver().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = server::Config::default_for_tests();
    config.stats_interval_ms = 50;
    config.alert_webhooks = vec![hook.parse().unwrap()];
    let state = server::AppState::new(config, server::Geocoder::shared(), CancellationToken::new());
    tokio::spawn(server::serve(listener, state));
    let url = format!("http://{addr}");
    let mut stream = reqwest::get(format!("{url}/api/stream")).await.unwrap();
    assert_eq!(stream.status(), 200);

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let (mut sender, ready_rx, output) =
        start_capture("packet", &url, &format!("udp port {udp_port}"));
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the sender starts capturing");

    // Small datagrams first (no alert for them), then one large one.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        client
            .send_to(&[1u8; PAYLOAD], ("127.0.0.1", udp_port))
            .unwrap();
    }
    client
        .send_to(&[2u8; 3000], ("127.0.0.1", udp_port))
        .unwrap();

    let alert = next_alert(&mut stream, "large_packet").await;
    assert_eq!(alert["state"], "firing", "{alert}");
    assert_eq!(alert["key"], "127.0.0.1", "{alert}");
    assert_eq!(alert["event"]["protocol"], "UDP", "{alert}");
    assert_eq!(
        alert["event"]["bytes"].as_u64(),
        Some(14 + 20 + 8 + 3000),
        "the large packet's wire length: {alert}"
    );
    assert_eq!(
        alert["event"]["dest_port"].as_u64(),
        Some(u64::from(udp_port))
    );
    // The same alert at the webhook (bounded wait: 10 s).
    let mut at_hook = None;
    for _ in 0..200 {
        at_hook = delivered
            .lock()
            .unwrap()
            .iter()
            .find(|body| body["rule"] == "large_packet")
            .cloned();
        if at_hook.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at_hook = at_hook.expect("the large_packet alert reaches the webhook");
    assert_eq!(at_hook["id"], alert["id"]);
    assert_eq!(at_hook["key"], "127.0.0.1");

    let status = Command::new("kill")
        .args(["-INT", &sender.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..400 {
        if sender.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = sender
        .try_wait()
        .unwrap()
        .expect("the sender stops on SIGINT");
    let lines = output.join().unwrap();
    assert!(exited.success(), "{exited}: {lines:#?}");
}
