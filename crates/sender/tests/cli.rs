//! The `sender` binary's command line: help text, usage errors and exit statuses.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::net::SocketAddr;
use std::process::{Command, Output};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

mod support;

fn sender() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sender"));
    // Keep the caller's environment from changing defaults under test.
    for (key, _) in std::env::vars() {
        if key.starts_with("SENDER_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn help_lists_every_option_with_its_environment_variable() {
    let output = sender().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for env in [
        "SENDER_CSV",
        "SENDER_URL",
        "SENDER_SPEED",
        "SENDER_LOOP",
        "SENDER_STRICT",
        "SENDER_MAX_BATCH",
        "SENDER_MAX_GAP",
        "SENDER_GIVE_UP_AFTER",
        "SENDER_TIMEOUT",
        "SENDER_QUIET",
        "SENDER_FORMAT",
        "SENDER_MAP",
        "SENDER_RULES",
        "SENDER_FOLLOW",
        "SENDER_CHECKPOINT",
        "SENDER_FROM_BEGINNING",
    ] {
        assert!(help.contains(env), "{env} missing from --help:\n{help}");
    }
    assert!(help.contains("generate"), "{help}");
}

#[test]
fn help_gives_the_meaning_of_each_exit_status() {
    let output = sender().arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap().replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for meaning in [
        "0 when every row of the file was read and accepted",
        "3 when the replay finished and every usable row was accepted, but some rows were \
         skipped as unreadable",
        "1 when the replay failed",
        "2 on usage errors",
    ] {
        assert!(
            help.contains(meaning),
            "{meaning:?} missing from --help:\n{help}"
        );
    }
}

/// A server on 127.0.0.1:0 that accepts every POST to /api/events.
async fn accepting_server() -> SocketAddr {
    async fn ingest(headers: axum::http::HeaderMap, body: Bytes) -> (StatusCode, String) {
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let value = support::body_json(&content_type, &body);
        let count = value.as_array().map_or(1, Vec::len);
        (StatusCode::ACCEPTED, format!("{{\"accepted\":{count}}}"))
    }
    let app = Router::new().route("/api/events", post(ingest));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Runs the sender on `csv` against `addr`, fast and quiet.
async fn replay(addr: SocketAddr, csv: &str, name: &str) -> Output {
    let path = std::env::temp_dir().join(format!("sender-cli-{}-{name}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let mut command = tokio::process::Command::from(sender());
    let url = format!("http://{addr}");
    command.args(["--quiet", "--speed", "1000", "--url", &url]);
    command.arg(&path);
    let output = command.output().await.unwrap();
    std::fs::remove_file(&path).unwrap();
    output
}

const HEADER: &str = "ip address,Latitude,Longitude,Timestamp,suspicious\n";

#[tokio::test]
async fn a_file_read_and_accepted_in_full_exits_0_and_says_complete() {
    let addr = accepting_server().await;
    let csv = format!("{HEADER}1.1.1.1,1,2,1736919120,0\n2.2.2.2,1,2,1736919120,1\n");
    let output = replay(addr, &csv, "complete").await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "sender: complete, every row delivered: rows read 2, sent 2 (accepted 2), skipped 0,"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_replay_that_skipped_unreadable_rows_exits_3_and_says_so_in_the_summary() {
    let addr = accepting_server().await;
    // Line 3 opens a quote it never closes; the good rows after it still go.
    let mut csv = format!("{HEADER}1.1.1.1,1,2,1736919120,0\n\"2.2.2.2,1,2,1736919120,0\n");
    for i in 0..50 {
        csv.push_str(&format!("10.0.0.{i},1,2,1736919121,0\n"));
    }
    let output = replay(addr, &csv, "skipped").await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "sender: INCOMPLETE, 1 unreadable row skipped (every other row delivered): \
             rows read 51, sent 51 (accepted 51), skipped 1 (malformed 1),"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("line=3"),
        "the warning names the line: {stderr}"
    );
}

#[test]
fn a_switch_from_the_environment_takes_1_as_on() {
    // The https URL is refused after the command line is read: exit 2 for the URL, not for
    // the variable.
    for on in ["1", "true", "yes"] {
        let output = sender()
            .env("SENDER_QUIET", on)
            .env("SENDER_STRICT", on)
            .args(["--url", "https://example.com"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("https is not supported"), "{on}: {stderr}");
    }
}

#[test]
fn an_https_url_is_a_usage_error_with_a_reason() {
    let output = sender()
        .args(["--url", "https://example.com"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("https is not supported"), "{stderr}");
}

#[test]
fn a_missing_file_fails_with_its_path() {
    let output = sender()
        .args(["/nonexistent/traffic.csv", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/traffic.csv"), "{stderr}");
}

#[test]
fn generate_writes_the_course_header_and_the_asked_rows() {
    let output = sender()
        .args(["generate", "--rows", "5", "--duration", "2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let csv = String::from_utf8(output.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("ip address,Latitude,Longitude,Timestamp,suspicious")
    );
    assert_eq!(lines.count(), 5);
}

#[test]
fn a_live_setting_out_of_range_is_a_usage_error_naming_its_flag() {
    let output = sender()
        .args(["generate", "--live", "--networks", "10", "--sources", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("--sources: sources: 5 is out of range"),
        "{stderr}"
    );
}

#[tokio::test]
async fn live_generation_for_a_number_of_rows_exits_0_when_all_are_accepted() {
    let addr = accepting_server().await;
    let output = tokio::process::Command::from({
        let mut command = sender();
        command.args([
            "generate",
            "--live",
            "--url",
            &format!("http://{addr}"),
            "--rate",
            "1000",
            "--rows",
            "50",
        ]);
        command
    })
    .output()
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("sender: "), "the summary line: {stderr}");
}

const LOG: &str = "\
203.0.113.9 - - [15/Jan/2025:05:32:00 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"
203.0.113.10 - - [15/Jan/2025:05:31:59 +0000] \"GET /.env HTTP/1.1\" 404 - \"-\" \"curl/8\"
";

#[tokio::test]
async fn an_access_log_on_standard_input_is_detected_and_imported_at_max_speed() {
    use tokio::io::AsyncWriteExt;
    let addr = accepting_server().await;
    let mut command = tokio::process::Command::from(sender());
    let url = format!("http://{addr}");
    command.args(["--quiet", "--speed", "max", "--url", &url, "-"]);
    command.stdin(std::process::Stdio::piped());
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(LOG.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("sender: complete, every row delivered: rows read 2, sent 2 (accepted 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("lines/s"), "{stderr}");
}

#[test]
fn an_input_of_no_known_format_fails_naming_the_formats() {
    let path = std::env::temp_dir().join(format!("sender-cli-{}-unknown.txt", std::process::id()));
    std::fs::write(&path, "hello\nworld\n").unwrap();
    let output = sender().arg(&path).arg("--quiet").output().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "csv, pcap, tshark-json, combined, common, vcombined, caddy, nginx-json, sshd, zeek"
        ),
        "{stderr}"
    );
}

#[test]
fn looping_standard_input_or_a_max_speed_import_is_a_usage_error() {
    for args in [["--loop", "-", "--quiet"], ["--loop", "--speed", "max"]] {
        let output = sender().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("--loop needs a file"), "{stderr}");
    }
}
