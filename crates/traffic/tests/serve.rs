//! The serving loop over real sockets on 127.0.0.1 with more than one serving thread: each
//! connection stays on one thread, connections are spread over the threads, and the
//! connection cap, the header timeout and the graceful drain hold across all of them.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use traffic::service::{ServeLimits, serve};

/// Long enough for anything on a loaded machine; only reached when a test fails.
const WAIT: Duration = Duration::from_secs(20);

fn limits(threads: usize, max_connections: usize) -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(60),
        max_connections,
        threads,
    }
}

/// Holds `/slow` requests until the test lets them go.
struct Gate {
    entered: AtomicUsize,
    open: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            entered: AtomicUsize::new(0),
            open: Semaphore::new(0),
        }
    }
}

/// `/thread` answers with the name of the thread that ran the handler; `/slow` answers once
/// the gate lets it.
fn router(gate: Arc<Gate>) -> Router {
    Router::new()
        .route(
            "/thread",
            get(|| async { std::thread::current().name().unwrap_or("?").to_owned() }),
        )
        .route(
            "/slow",
            get(move || async move {
                gate.entered.fetch_add(1, Ordering::SeqCst);
                let _pass = gate.open.acquire().await.unwrap();
                "done".to_owned()
            }),
        )
}

struct Running {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Shuts down and waits for the drain, which must succeed.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("drained")
            .unwrap()
            .unwrap();
    }
}

async fn start(limits: ServeLimits, gate: Arc<Gate>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, router(gate), limits, shutdown.clone()));
    Running {
        addr,
        shutdown,
        task,
    }
}

/// Sends `GET path` on a keep-alive connection and returns the body of the answer.
async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the answer was complete: {answer:?}");
            answer.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .expect("a content-length")
                    .parse()
                    .unwrap();
                if body.len() >= length {
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    return body.to_owned();
                }
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("an answer")
}

/// Reads until the server closes the connection; fails after `WAIT`.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut chunk = [0u8; 1024];
    let closed = async {
        while stream
            .read(&mut chunk)
            .await
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("the server did not close the connection");
}

#[tokio::test]
async fn connections_are_spread_over_the_threads_and_each_stays_on_its_thread() {
    let server = start(limits(2, 100), Arc::default()).await;
    let mut connections = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let first = get_on(&mut stream, "/thread").await;
        threads.push(first.clone());
        connections.push((stream, first));
    }
    // Each new connection went to the thread with the fewest open.
    threads.sort();
    assert_eq!(threads, ["serve-0", "serve-0", "serve-1", "serve-1"]);
    // Every later request of a connection is served by the same thread.
    for _ in 0..3 {
        for (stream, thread) in &mut connections {
            assert_eq!(&get_on(stream, "/thread").await, thread);
        }
    }
    drop(connections);
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_across_the_threads() {
    let server = start(limits(2, 2), Arc::default()).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    let a = get_on(&mut first, "/thread").await;
    let b = get_on(&mut second, "/thread").await;
    assert_ne!(a, b, "the two connections are on different threads");
    // A third completes the handshake (the kernel's backlog) but is not served...
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(b"GET /thread HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut peek = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.peek(&mut peek)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    // ...until one of the others closes, whichever thread it was on.
    drop(second);
    tokio::time::timeout(WAIT, third.peek(&mut peek))
        .await
        .expect("served once a slot was free")
        .unwrap();
    drop((first, third));
    server.stop().await;
}

#[tokio::test]
async fn half_sent_requests_are_closed_on_every_thread() {
    let server = start(limits(2, 100), Arc::default()).await;
    // Two served connections first, so the next two go one to each thread.
    let mut a = TcpStream::connect(server.addr).await.unwrap();
    let mut b = TcpStream::connect(server.addr).await.unwrap();
    let threads = [
        get_on(&mut a, "/thread").await,
        get_on(&mut b, "/thread").await,
    ];
    assert_ne!(threads[0], threads[1]);
    for stream in [&mut a, &mut b] {
        stream
            .write_all(b"GET /thread HTTP/1.1\r\nHo")
            .await
            .unwrap();
    }
    closed_by_server(&mut a).await;
    closed_by_server(&mut b).await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_responses_under_way_on_every_thread() {
    let gate: Arc<Gate> = Arc::default();
    let mut server = start(limits(2, 100), Arc::clone(&gate)).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let thread = get_on(&mut stream, "/thread").await;
        slow.push((stream, thread));
    }
    assert_ne!(slow[0].1, slow[1].1, "one slow request on each thread");
    for (stream, _) in &mut slow {
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
    }
    // Both requests are in their handlers before shutdown.
    for _ in 0..4000 {
        if gate.entered.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(gate.entered.load(Ordering::SeqCst), 2);
    server.shutdown.cancel();
    // Not done while the two responses are under way.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut server.task).await;
    assert!(early.is_err(), "returned before the responses: {early:?}");
    gate.open.add_permits(2);
    for (stream, _) in &mut slow {
        let mut answer = String::new();
        tokio::time::timeout(WAIT, stream.read_to_string(&mut answer))
            .await
            .expect("answered, then closed")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
    }
    let addr = server.addr;
    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after the drain"
    );
}
