//! The `server` binary's command line: ranges in the help text, out-of-range settings
//! refused at start with a usage error naming the flag.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::process::{Command, Output};

fn server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    // Keep the caller's environment from changing defaults under test.
    for (key, _) in std::env::vars() {
        if key.starts_with("SERVER_") {
            command.env_remove(key);
        }
    }
    // Should a check ever let a value through, the server must not keep the test waiting.
    command.args(["--listen", "127.0.0.1:0"]);
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn help_states_the_range_of_each_setting() {
    let output = server(&["--help"], &[]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (env, range) in [
        ("SERVER_VISIBLE_SECS", "0..=86400"),
        ("SERVER_TIMELINE_SECS", "1..=86400"),
        ("SERVER_MAX_STREAMS", "1..=1000000"),
        ("SERVER_CLIENT_BUFFER", "1..=100000"),
    ] {
        assert!(help.contains(env), "{env} missing from --help:\n{help}");
        assert!(help.contains(range), "{range} missing from --help:\n{help}");
    }
}

#[test]
fn an_out_of_range_setting_is_a_usage_error_naming_the_flag_and_its_range() {
    for (args, env, want) in [
        (
            &["--visible-secs", "1e30"][..],
            &[][..],
            "--visible-secs must be in 0.0..=86400.0, got 1e30",
        ),
        (
            &[],
            &[("SERVER_TIMELINE_SECS", "4000000000")],
            "--timeline-secs must be in 1..=86400, got 4000000000",
        ),
        (
            &["--max-streams", "0"],
            &[],
            "--max-streams must be in 1..=1000000, got 0",
        ),
    ] {
        let output = server(args, env);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_switch_from_the_environment_takes_1_yes_or_true_and_refuses_other_words() {
    // --durable with --store memory is refused, so the server exits at once when the
    // variable reads as on, whichever way it is spelled.
    for on in ["1", "yes", "true", "on"] {
        let output = server(&["--store", "memory"], &[("SERVER_DURABLE", on)]);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{on}: {stderr}");
        assert!(stderr.contains("--durable needs"), "{on}: {stderr}");
    }
    let output = server(&["--store", "memory"], &[("SERVER_DURABLE", "maybe")]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("SERVER_DURABLE") || stderr.contains("--durable"),
        "{stderr}"
    );
    assert!(stderr.contains("maybe"), "{stderr}");
}

#[test]
fn open_and_require_auth_are_refused_together_but_a_variable_set_to_off_is_not_the_flag() {
    let output = server(&["--open", "--require-auth"], &[]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--open and --require-auth contradict"),
        "{stderr}"
    );
    // SERVER_OPEN=0 means not open: with --require-auth the start goes on to the next check
    // (here a deliberately bad --max-streams, so the server stops instead of serving).
    for off in ["0", "false", "no"] {
        let output = server(
            &["--require-auth", "--max-streams", "0"],
            &[("SERVER_OPEN", off)],
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{off}: {stderr}");
        assert!(
            stderr.contains("--max-streams must be in"),
            "SERVER_OPEN={off} taken for --open: {stderr}"
        );
    }
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused_while_the_first_runs() {
    let dir = std::env::temp_dir().join(format!("tg-cli-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.to_str().unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir", data_dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The lock file names its holder once it is held (bounded wait: 10 s).
    let lock = dir.join("server.lock");
    let pid = first.id().to_string();
    for _ in 0..1000 {
        if std::fs::read_to_string(&lock).is_ok_and(|text| text == pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = server(&["--data-dir", data_dir], &[]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8(second.stderr).unwrap();
    assert!(
        stderr.contains("another server is already running on the data directory"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("process {pid}")), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
