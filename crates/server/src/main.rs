//! The `server` binary: parse config, start tracing, run until ctrl-c or SIGTERM; or, with
//! a subcommand (`server user ...`, `server token ...`), manage users and tokens and exit.

use std::process::ExitCode;
use std::time::Duration;

/// jemalloc rather than glibc's allocator: batches are allocated on the serving threads and
/// freed on the publisher's, and glibc's per-thread arenas kept that memory: 451 MB of heap
/// after a 1 GB-equivalent import, growing with the stream, where jemalloc holds 278 MB
/// (BENCHMARKS.md, "Memory over a 10 GB-equivalent stream").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = server::Config::parse_valid();
    traffic::service::init_tracing("info,tower_http=warn");
    if let Some(command) = &config.command {
        let stdin = std::io::stdin();
        return match server::cli::run(
            command,
            &config.data_dir,
            &mut stdin.lock(),
            &mut std::io::stdout(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let probe = config
        .probe
        .clone()
        .map(|address| async move { server::probe(&address, Duration::from_secs(3)).await });
    traffic::service::run_service("server", probe, |shutdown| server::run(config, shutdown)).await
}
