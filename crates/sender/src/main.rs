//! The `sender` binary: parses the command line, starts logging, runs the replay (or the
//! generator) and maps the outcome to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use sender::{Cli, Command, exit};
use tokio_util::sync::CancellationToken;

/// jemalloc rather than glibc's allocator: an access log's import allocates and frees a few
/// small strings per line (path, method, protocol) and a body per batch; glibc's malloc and
/// free were about 14% of the sender's CPU there (BENCHMARKS.md, run 9).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli.replay.check() {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    if let Some(Command::Generate(args)) = &cli.command
        && args.live
        && let Err(message) = args.to_live_config()
    {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    let quiet = match &cli.command {
        Some(Command::Capture(args)) => args.quiet,
        _ => cli.replay.quiet,
    };
    let default_level = if quiet { "warn" } else { "info" };
    traffic::service::init_tracing(default_level);

    match cli.command {
        Some(Command::Generate(args)) if args.live => {
            let shutdown = CancellationToken::new();
            traffic::service::cancel_on_signals(shutdown.clone());
            ExitCode::from(sender::generate_live(&args, cli.replay.quiet, shutdown).await)
        }
        Some(Command::Generate(args)) => match sender::generate(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::from(exit::FAILED)
            }
        },
        Some(Command::Capture(args)) => {
            let shutdown = CancellationToken::new();
            traffic::service::cancel_on_signals(shutdown.clone());
            ExitCode::from(sender::exit_status(
                &sender::capture::run(args, shutdown).await,
            ))
        }
        None => {
            let shutdown = CancellationToken::new();
            traffic::service::cancel_on_signals(shutdown.clone());
            ExitCode::from(sender::exit_status(
                &sender::run(cli.replay, shutdown).await,
            ))
        }
    }
}
