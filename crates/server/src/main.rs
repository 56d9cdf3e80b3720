//! The `server` binary: parse config, start tracing, run until ctrl-c or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    let config = server::Config::parse_valid();
    traffic::service::init_tracing("info,tower_http=warn");
    let probe = config
        .probe
        .clone()
        .map(|address| async move { server::probe(&address, Duration::from_secs(3)).await });
    traffic::service::run_service("server", probe, |shutdown| server::run(config, shutdown)).await
}
