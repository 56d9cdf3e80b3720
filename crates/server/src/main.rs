//! The `server` binary: parse config, start tracing, run until ctrl-c or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let config = server::Config::parse();
    traffic::service::init_tracing("info,tower_http=warn");
    if let Some(address) = &config.probe {
        return match server::probe(address, std::time::Duration::from_secs(3)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let shutdown = CancellationToken::new();
    traffic::service::cancel_on_signals(shutdown.clone());
    match server::run(config, shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "server failed");
            ExitCode::FAILURE
        }
    }
}
