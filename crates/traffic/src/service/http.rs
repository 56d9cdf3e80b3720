//! The HTTP/1.1 serving loop of the server and web binaries: a header-read timeout, an
//! idle timeout and a connection cap around hyper, with graceful shutdown; connections are
//! served thread-per-core (one single-threaded runtime per serving thread).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Limits every served connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A request's head (request line and headers) must arrive complete within this, counted
    /// from when the connection is ready for it: a client that sends half a request, or a
    /// keep-alive connection with no next request, is closed after it.
    pub header_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed: a stalled
    /// upload, or a client that stopped reading its response. Must exceed the interval of
    /// any keep-alive a long response sends (the stream's is 15 s).
    pub idle_timeout: Duration,
    /// Most connections open at once. Beyond it new connections wait in the listen backlog
    /// until one closes (the timeouts above make sure one does), so file descriptors are
    /// never exhausted.
    pub max_connections: usize,
    /// Threads that accept and serve connections, each with its own single-threaded
    /// runtime; 0: one per core the process may use.
    pub threads: usize,
}

impl ServeLimits {
    /// The most connections a limit may name (so a drain can wait for all of them at once).
    pub const MAX_CONNECTIONS: usize = 1_000_000;

    /// The most serving threads a limit may name.
    pub const MAX_THREADS: usize = 1024;

    /// How many threads serve: `threads`, or one per core the process may use.
    pub fn serving_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    /// Checks the limits, naming the binaries' flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.header_timeout.is_zero(),
            "--header-timeout-secs must be at least 1"
        );
        anyhow::ensure!(
            !self.idle_timeout.is_zero(),
            "--idle-timeout-secs must be at least 1"
        );
        anyhow::ensure!(
            (1..=Self::MAX_CONNECTIONS).contains(&self.max_connections),
            "--max-connections must be between 1 and {}",
            Self::MAX_CONNECTIONS
        );
        anyhow::ensure!(
            self.threads <= Self::MAX_THREADS,
            "--serve-threads must be between 0 (one per core) and {}",
            Self::MAX_THREADS
        );
        Ok(())
    }

    /// These limits with `max_connections` lowered, if need be, to what the process's
    /// open-file limit leaves after `reserve` descriptors for everything else, when each
    /// connection may take `per_connection` descriptors.
    pub fn within_open_file_limit(mut self, reserve: u64, per_connection: u64) -> Self {
        if let Some(limit) = open_file_limit() {
            let budget = (limit.saturating_sub(reserve) / per_connection.max(1)).max(1);
            if (self.max_connections as u64) > budget {
                tracing::warn!(
                    configured = self.max_connections,
                    open_file_limit = limit,
                    using = budget,
                    "--max-connections lowered to fit the open-file limit (ulimit -n)"
                );
                self.max_connections = budget as usize;
            }
        }
        self
    }
}

/// The soft limit on open files, where the platform says (Linux: `/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` over HTTP/1.1 until `shutdown` is cancelled, holding every
/// connection to `limits`; then stops accepting, lets each connection finish its current
/// response (open streams end on the same token) and returns when all are closed.
///
/// Connections are served thread-per-core: the caller's runtime accepts, and hands each
/// connection to whichever of the serving threads ([`ServeLimits::threads`]) has the fewest
/// open, each thread running its own single-threaded runtime. A connection stays on its thread to the
/// end, so its requests never wake another thread. The connection cap is shared by all.
/// Tasks a handler spawns (`tokio::spawn`, `spawn_blocking`) run on its serving thread's
/// runtime; everything else (background tasks) stays on the caller's.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    limits.validate()?;
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        http: http1(&limits),
        limits,
        shutdown,
    });
    let mut threads = Vec::new();
    let mut started = Ok(());
    for index in 0..limits.serving_threads() {
        match ServingThread::start(index, router.clone(), &shared) {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    if started.is_ok() {
        accept_until_shutdown(&listener, &threads, &shared).await;
    }
    drop(listener);
    // Closing the hand-over channels tells each thread to drain and stop.
    let mut outcome = started;
    for thread in threads {
        let result = thread.finish().await;
        if outcome.is_ok() {
            outcome = result;
        }
    }
    outcome
}

/// What the serving threads share.
struct Shared {
    /// One permit per connection that may be open (the cap, across all threads).
    slots: Arc<Semaphore>,
    http: hyper::server::conn::http1::Builder,
    limits: ServeLimits,
    /// Cancelled on shutdown: stop accepting and drain.
    shutdown: CancellationToken,
}

fn http1(limits: &ServeLimits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    http
}

/// A connection handed to a serving thread, with the slot it holds until it is closed.
type HandOver = (std::net::TcpStream, SocketAddr, OwnedSemaphorePermit);

/// One thread with its own single-threaded runtime, serving the connections handed to it.
struct ServingThread {
    connections: mpsc::UnboundedSender<HandOver>,
    /// Connections open on this thread, to hand the next one to the least busy.
    open: Arc<AtomicUsize>,
    finished: oneshot::Receiver<anyhow::Result<()>>,
}

impl ServingThread {
    fn start(index: usize, router: axum::Router, shared: &Arc<Shared>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("while starting a serving thread's runtime")?;
        let (connections, mut handed) = mpsc::unbounded_channel::<HandOver>();
        let open = Arc::new(AtomicUsize::new(0));
        let (done, finished) = oneshot::channel();
        let serve = {
            let shared = Arc::clone(shared);
            let open = Arc::clone(&open);
            async move {
                while let Some((stream, peer, slot)) = handed.recv().await {
                    // Counted from the hand-over (see `accept_until_shutdown`) until dropped.
                    let counted = Counted(Arc::clone(&open));
                    let stream = match TcpStream::from_std(stream) {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot register a connection; closed");
                            continue;
                        }
                    };
                    let (router, shared) = (router.clone(), Arc::clone(&shared));
                    tokio::spawn(async move {
                        serve_connection(stream, peer, router, &shared).await;
                        // Also dropped if a handler panics, so neither leaks.
                        drop((counted, slot));
                    });
                }
                // No more connections are coming. Every connection holds a slot until it is
                // closed: all slots free means all closed, on every thread. Waiting for all
                // keeps this runtime (and what its handlers spawned) alive until then.
                let all = u32::try_from(shared.limits.max_connections).context("validated")?;
                let _drained = shared
                    .slots
                    .acquire_many(all)
                    .await
                    .context("the slots are never closed")?;
                Ok(())
            }
        };
        std::thread::Builder::new()
            .name(format!("serve-{index}"))
            .spawn(move || {
                let _ = done.send(runtime.block_on(serve));
            })
            .context("while starting a serving thread")?;
        Ok(Self {
            connections,
            open,
            finished,
        })
    }

    /// Closes the hand-over and waits until the thread has drained and stopped.
    async fn finish(self) -> anyhow::Result<()> {
        drop(self.connections);
        self.finished
            .await
            .map_err(|_| anyhow::anyhow!("a serving thread panicked"))?
    }
}

/// One open connection of a serving thread, uncounted when dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

async fn accept_until_shutdown(listener: &TcpListener, threads: &[ServingThread], shared: &Shared) {
    loop {
        // A free slot first, then accept: beyond the cap connections wait in the backlog.
        let slot = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            slot = Arc::clone(&shared.slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection over; closed");
                continue;
            }
        };
        let Some(thread) = threads.iter().min_by_key(|t| t.open.load(Relaxed)) else {
            return;
        };
        thread.open.fetch_add(1, Relaxed);
        if thread.connections.send((stream, peer, slot)).is_err() {
            // The thread is gone (it panicked): shut down, and its `finish` reports it.
            tracing::error!("a serving thread stopped; shutting down");
            shared.shutdown.cancel();
            return;
        }
    }
}

/// An accept error is about one connection (reset before accepted) or about the process
/// (out of file descriptors); in the second case, pause instead of spinning.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    shared: &Shared,
) {
    let idle_timeout = shared.limits.idle_timeout;
    // Answers are written whole (hyper writes head and body together): no reason to wait
    // for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let start = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        start,
        activity: Arc::clone(&activity),
    });
    // Handlers may ask who is at the other end (`ConnectInfo<SocketAddr>`), e.g. to tell a
    // browser on this machine from one elsewhere.
    let service = router.map_request(move |mut request: axum::extract::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let connection = shared
        .http
        .serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let last = start + Duration::from_millis(activity.load(Relaxed));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = shared.shutdown.cancelled(), if !draining => {
                // Finish the response under way (streams end on the same token), then close.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = tokio::time::sleep_until(last + idle_timeout) => {
                let last = start + Duration::from_millis(activity.load(Relaxed));
                if Instant::now() >= last + idle_timeout {
                    tracing::debug!(idle_secs = idle_timeout.as_secs(), "idle connection closed");
                    return;
                }
            }
        }
    }
}

/// A socket that notes when it last made progress, read or write.
struct Watched {
    inner: TcpStream,
    start: Instant,
    /// Milliseconds from `start` to the last progress.
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let elapsed = self.start.elapsed().as_millis();
        self.activity
            .store(u64::try_from(elapsed).unwrap_or(u64::MAX), Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize) -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections,
            threads: 2,
        }
    }

    #[test]
    fn limits_are_validated_with_the_flag_named() {
        assert!(limits(1).validate().is_ok());
        let error = limits(0).validate().expect_err("no connections at all");
        assert!(error.to_string().contains("--max-connections"), "{error}");
        let mut zero = limits(1);
        zero.header_timeout = Duration::ZERO;
        let error = zero.validate().expect_err("no time for a head");
        assert!(
            error.to_string().contains("--header-timeout-secs"),
            "{error}"
        );
        let mut crowd = limits(1);
        crowd.threads = ServeLimits::MAX_THREADS + 1;
        let error = crowd.validate().expect_err("too many threads");
        assert!(error.to_string().contains("--serve-threads"), "{error}");
    }

    #[test]
    fn zero_serving_threads_means_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut per_core = limits(1);
        per_core.threads = 0;
        assert_eq!(per_core.serving_threads(), cores);
        per_core.threads = 3;
        assert_eq!(per_core.serving_threads(), 3);
    }

    #[test]
    fn max_connections_are_lowered_to_fit_the_open_file_limit() {
        let Some(limit) = open_file_limit() else {
            return; // Not Linux: nothing to fit.
        };
        let fitted = limits(ServeLimits::MAX_CONNECTIONS).within_open_file_limit(64, 2);
        assert!(
            (fitted.max_connections as u64) * 2 + 64 <= limit.max(66),
            "{fitted:?} with an open-file limit of {limit}"
        );
        assert_eq!(limits(1).within_open_file_limit(64, 2).max_connections, 1);
    }
}
