//! The real sender against a server that requires credentials: with an ingest token it
//! delivers everything; without one, or once the token is revoked, it stops at once with
//! exit status 4 and a message naming the fix.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::path::Path;

use clap::Parser;
use server::Config;
use support::TestServer;
use tokio_util::sync::CancellationToken;

async fn send(
    server: &TestServer,
    speed: &str,
    token: Option<&str>,
) -> anyhow::Result<sender::Summary> {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample.csv");
    let url = server.url("");
    let mut args = vec!["sender", "--url", &url, "--speed", speed, "--quiet"];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    args.push(csv.to_str().unwrap());
    let cli = sender::Cli::try_parse_from(args).unwrap();
    sender::run(cli.replay, CancellationToken::new()).await
}

#[tokio::test]
async fn a_sender_with_a_token_delivers_and_stops_with_status_4_once_it_is_revoked() {
    let mut config = Config::default_for_tests();
    config.require_auth = true;
    let server = TestServer::start(config).await;
    let token = server.state.auth.update(|f| f.add_token("laptop")).unwrap();

    let summary = send(&server, "max", Some(&token)).await.unwrap();
    assert!(summary.all_accepted(), "{summary}");
    assert_eq!(sender::exit_status(&Ok(summary)), 0);

    let without = send(&server, "max", None).await;
    let message = format!("{:#}", without.as_ref().err().unwrap());
    assert!(
        message.contains("401") && message.contains("--token"),
        "{message}"
    );
    assert_eq!(sender::exit_status(&without), sender::exit::UNAUTHORIZED);

    server
        .state
        .auth
        .update(|f| Ok(f.revoke_token("laptop")))
        .unwrap();
    // The paced replay (not the import path) stops the same way.
    let revoked = send(&server, "1000", Some(&token)).await;
    let message = format!("{:#}", revoked.as_ref().err().unwrap());
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(sender::exit_status(&revoked), 4);
    server.shutdown.cancel();
}
