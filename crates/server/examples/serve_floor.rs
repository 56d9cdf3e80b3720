//! What a single-event POST costs before any of the server's own work: the floor under
//! `scripts/bench-wrk`'s "ours" (BENCHMARKS.md, "What bounds the single-POST rate").
//!
//! Answers `POST /api/events` with `202 {"accepted":1}` after reading the body, and
//! `GET /healthz` with `ok`, and does nothing else: no parsing, placing, counting, storing
//! or access checks. Two stacks:
//!
//! - `--mode stack` (default): the server's own serving stack, `traffic::service::serve`
//!   (thread-per-core, hyper, header and idle timeouts, connection cap) and an axum router,
//!   with the server's default limits. The gap between this and the real server is what
//!   the server's handler costs.
//! - `--mode bare`: no HTTP library at all: one single-threaded tokio runtime, each
//!   connection read into a buffer, a request taken as complete at its blank line plus its
//!   `Content-Length`, and a fixed answer written. What is left is the kernel's loopback TCP
//!   (one read and one write a request) and tokio's event loop.
//!
//! `./scripts/bench-wrk --floors` builds it and runs both modes in the same rotation as the
//! server and the Flask stand-in (it takes the server's `--listen` and ignores
//! `--data-dir`). By hand: `cargo run --release -p server --example serve_floor -- --mode
//! bare --listen 127.0.0.1:3000`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use traffic::service::ServeLimits;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stack,
    Bare,
}

fn main() -> anyhow::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut mode = Mode::Stack;
    let mut threads = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value()?.parse().context("--listen")?,
            "--data-dir" => drop(value()?),
            "--serve-threads" => threads = value()?.parse().context("--serve-threads")?,
            "--mode" => {
                mode = match value()?.as_str() {
                    "stack" => Mode::Stack,
                    "bare" => Mode::Bare,
                    other => bail!("--mode is stack or bare, not {other}"),
                }
            }
            other => bail!(
                "unknown argument {other}; usage: serve_floor [--listen ADDR] \
                 [--mode stack|bare] [--serve-threads N]"
            ),
        }
    }
    let runtime = match mode {
        Mode::Stack => tokio::runtime::Runtime::new()?,
        Mode::Bare => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        let shutdown = CancellationToken::new();
        traffic::service::cancel_on_signals(shutdown.clone());
        match mode {
            Mode::Stack => stack(listener, threads, shutdown).await,
            Mode::Bare => bare(listener, shutdown).await,
        }
    })
}

/// The server's serving stack with its default limits and a router that does nothing.
async fn stack(
    listener: TcpListener,
    threads: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/events",
            post(|_body: Bytes| async {
                (
                    StatusCode::ACCEPTED,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"accepted":1}"#,
                )
            }),
        );
    let limits = ServeLimits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 10_000,
        threads,
    };
    traffic::service::serve(listener, router, limits, shutdown).await
}

/// No HTTP library: sockets, a buffer and a fixed answer.
async fn bare(listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                tokio::spawn(async move {
                    if let Err(e) = answer_all(stream).await {
                        eprintln!("connection: {e}");
                    }
                });
            }
        }
    }
}

const ACCEPTED: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
content-length: 14\r\n\r\n{\"accepted\":1}";
const HEALTHY: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";

async fn answer_all(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = Vec::with_capacity(4096);
    loop {
        // Answer every complete request in the buffer, then read more.
        while let Some((length, healthz)) = complete_request(&buffer)? {
            buffer.drain(..length);
            stream
                .write_all(if healthz { HEALTHY } else { ACCEPTED })
                .await?;
        }
        if buffer.len() > 64 * 1024 {
            bail!("a request over 64 KiB");
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The length of the first complete request in `buffer` (head, blank line, body of its
/// `Content-Length`) and whether it asks for `/healthz`; `None` while it is incomplete.
fn complete_request(buffer: &[u8]) -> anyhow::Result<Option<(usize, bool)>> {
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).context("a request head not UTF-8")?;
    let mut body = 0;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            body = value.trim().parse().context("Content-Length")?;
        }
    }
    let length = head_end + 4 + body;
    Ok((buffer.len() >= length).then(|| (length, head.starts_with("GET /healthz"))))
}
