//! The `web` binary: parse config, start tracing, run until ctrl-c or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = web::Config::parse();
    traffic::service::init_tracing("info,tower_http=warn");
    let probe = config
        .probe
        .clone()
        .map(|address| async move { web::probe(&address, Duration::from_secs(3)).await });
    traffic::service::run_service("web", probe, |shutdown| web::run(config, shutdown)).await
}
