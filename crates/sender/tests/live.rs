//! `sender generate --live` into a real server on 127.0.0.1:0 (real clock, under a second of
//! traffic): every event made is accepted and counted, with its protocol and bytes, and a
//! scripted burst's network leads the analytics.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use clap::Parser;
use tokio_util::sync::CancellationToken;

mod support;

#[tokio::test]
async fn live_events_reach_the_server_counted_with_their_fields_and_the_burst_leads() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let state = server::AppState::new(
        server::Config::default_for_tests(),
        server::Geocoder::shared(),
        shutdown.clone(),
    );
    let serving = tokio::spawn(server::serve(listener, state));

    let url = format!("http://{addr}");
    let cli = sender::Cli::try_parse_from([
        "sender",
        "generate",
        "--live",
        "--url",
        &url,
        "--rate",
        "500",
        "--rows",
        "300",
        "--burst",
        "203.0.113.0/24:0.5:0-1",
    ])
    .unwrap();
    let Some(sender::Command::Generate(args)) = cli.command else {
        panic!("generate not parsed");
    };
    let status = sender::generate_live(&args, true, CancellationToken::new()).await;
    assert_eq!(status, sender::exit::COMPLETE);

    let stats = support::stats_at_total(&url, 300).await;
    assert_eq!(stats["total"], 300, "{stats}");
    assert_eq!(
        stats["bytes"]["events"], 300,
        "every event has bytes: {stats}"
    );
    let analytics: serde_json::Value = reqwest::get(format!("{url}/api/analytics"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let networks = &analytics["kinds"]["network"];
    assert_eq!(
        networks["top_by_count"][0]["key"], "203.0.113.0/24",
        "{networks}"
    );
    assert_eq!(
        analytics["kinds"]["protocol"]["top_by_count"][0]["key"],
        "TCP"
    );
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
