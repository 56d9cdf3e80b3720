//! The `sender --follow` binary against a counting server: a log appended to, the sender
//! killed without warning and restarted, the log rotated, the sender stopped by SIGTERM.
//! Every line reaches the server exactly once, in order.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

mod support;

/// IPs counted, once per idempotency key (as the real server's memory does).
#[derive(Clone, Default)]
struct Counted(Arc<Mutex<(std::collections::HashSet<String>, Vec<String>)>>);

impl Counted {
    fn ips(&self) -> Vec<String> {
        self.0.lock().unwrap().1.clone()
    }
}

async fn counting_server(counted: Counted) -> SocketAddr {
    async fn ingest(
        State(counted): State<Counted>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let key = headers
            .get("idempotency-key")
            .map(|k| k.to_str().unwrap().to_owned())
            .expect("every batch has a key");
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let value = support::body_json(&content_type, &body);
        let events = match value {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        let mut state = counted.0.lock().unwrap();
        if state.0.insert(key) {
            for e in &events {
                state.1.push(e["ip"].as_str().unwrap().to_owned());
            }
        }
        (
            StatusCode::ACCEPTED,
            format!("{{\"accepted\":{}}}", events.len()),
        )
    }
    let app = Router::new()
        .route("/api/events", post(ingest))
        .with_state(counted);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn line(i: u32) -> String {
    format!("203.0.113.{i} - - [15/Jan/2025:05:32:03 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"\n")
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn start(log: &Path, checkpoint: &Path, addr: SocketAddr) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sender"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SENDER_") {
            command.env_remove(key);
        }
    }
    command
        .arg("--follow")
        .arg(log)
        .arg("--from-beginning")
        .arg("--checkpoint")
        .arg(checkpoint)
        .arg("--url")
        .arg(format!("http://{addr}"))
        .arg("--quiet")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded: 20 s) until `n` IPs are counted; a wait for the sender's next poll.
async fn until_counted(counted: &Counted, n: usize) {
    for _ in 0..400 {
        if counted.ips().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("only {:?} counted, waiting for {n}", counted.ips());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_follower_sends_every_line_once_across_a_rotation() {
    let dir = std::env::temp_dir().join(format!("sender-follow-cli-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let (log, checkpoint) = (dir.join("access.log"), dir.join("cp"));
    let counted = Counted::default();
    let addr = counting_server(counted.clone()).await;

    append(&log, &(line(1) + &line(2) + &line(3)));
    let mut first = start(&log, &checkpoint, addr);
    until_counted(&counted, 3).await;
    first.kill().unwrap(); // SIGKILL: no chance to tidy up
    first.wait().unwrap();

    append(&log, &(line(4) + &line(5)));
    let second = start(&log, &checkpoint, addr);
    until_counted(&counted, 5).await;
    append(&log, &line(6));
    std::fs::rename(&log, dir.join("access.log.1")).unwrap();
    append(&log, &line(7));
    until_counted(&counted, 7).await;

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(second.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("complete, every row delivered"), "{stderr}");
    let want: Vec<String> = (1..=7).map(|i| format!("203.0.113.{i}")).collect();
    assert_eq!(counted.ips(), want);
    std::fs::remove_dir_all(&dir).ok();
}
