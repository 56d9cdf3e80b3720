//! Process plumbing the three binaries share: logging set-up and shutdown on signals; and,
//! with the `http-server` feature, the HTTP serving loop of the server and web binaries
//! (`serve`) with its connection limits.
//!
//! Behind the `service` feature, so the domain library itself stays free of an async
//! runtime; the binaries turn it on.

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[cfg(feature = "http-server")]
mod http;
#[cfg(feature = "http-server")]
pub use http::{ServeLimits, serve};

/// Logs to stderr, filtered by `RUST_LOG` or else `default_filter` (e.g. `"info"`), with
/// colours only when stderr is a terminal.
pub fn init_tracing(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Cancels `token` on ctrl-c or SIGTERM (what `docker stop` sends), from a spawned task.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("ctrl-c: shutting down"),
            () = terminate => tracing::info!("SIGTERM: shutting down"),
        }
        token.cancel();
    });
}

/// The rest of a long-running service's `main` once its config is parsed and logging is
/// on: given a `probe` (its `--probe` flag), check a running instance and exit 0 or 1;
/// otherwise `run` until ctrl-c or SIGTERM, and map the outcome to the exit code.
pub async fn run_service<P, R>(
    name: &str,
    probe: Option<P>,
    run: impl FnOnce(CancellationToken) -> R,
) -> ExitCode
where
    P: Future<Output = anyhow::Result<()>>,
    R: Future<Output = anyhow::Result<()>>,
{
    if let Some(probe) = probe {
        return match probe.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone());
    match run(shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
            ExitCode::FAILURE
        }
    }
}
