//! The `sender` binary's command line: help text and usage errors.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::process::Command;

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
        "SENDER_GIVE_UP_AFTER",
        "SENDER_TIMEOUT",
        "SENDER_QUIET",
    ] {
        assert!(help.contains(env), "{env} missing from --help:\n{help}");
    }
    assert!(help.contains("generate"), "{help}");
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
