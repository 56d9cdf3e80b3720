//! Connection limits over a real socket: the header-read timeout, the connection cap, and
//! malformed framing answered with a clean 4xx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use server::Config;
use support::{TestServer, event_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for something that must happen; a failure guard, not a measurement.
const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.addr).await.unwrap()
}

/// Reads until the peer closes; panics if it does not within `WAIT`.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break, // closed, or reset: closed either way
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "the server did not close the connection; got {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_connection_that_sends_half_a_request_is_closed_after_the_header_timeout() {
    let mut config = Config::default_for_tests();
    config.header_timeout_secs = 1;
    let server = TestServer::start(config).await;
    let mut slow = connect(&server).await;
    slow.write_all(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "closed without serving anything: {answer:?}"
    );
    // The server is fine.
    let response = server.post(event_json(1, false)).await;
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_and_are_served_once_others_close() {
    let mut config = Config::default_for_tests();
    config.max_connections = 2;
    let server = TestServer::start(config).await;
    // Two idle connections take both slots (each made a request, so each was accepted).
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(WAIT, stream.read_exact(&mut head))
            .await
            .expect("served")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        holders.push(stream);
    }
    // A third connects (the kernel completes the handshake) but is not served yet.
    let mut third = connect(&server).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut peek = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), third.peek(&mut peek)).await;
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    // One holder leaves: the waiting connection is accepted and answered.
    drop(holders.pop());
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn bad_framing_is_a_clean_4xx_and_the_server_keeps_serving() {
    let mut config = Config::default_for_tests();
    config.max_body_bytes = 1024;
    config.header_timeout_secs = 1;
    let server = TestServer::start(config).await;
    let event = event_json(1, false);

    // A Content-Length over the limit is refused before the body is read.
    let mut stream = connect(&server).await;
    stream
        .write_all(
            b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 999999999\r\n\r\n[",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");

    // Chunks adding up to more than the limit.
    let mut stream = connect(&server).await;
    let mut request = b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for _ in 0..20 {
        request.extend_from_slice(b"64\r\n");
        request.extend_from_slice(&[b' '; 100]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");

    // A Content-Length longer than the body sent: the body never completes.
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{event}",
        event.len() + 10
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer:?}"
    );

    // Two conflicting Content-Lengths, and a malformed chunk size.
    for head in [
        "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n[]]",
        "POST /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut stream = connect(&server).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut stream).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{head:?}: {answer:?}"
        );
    }

    let response = server.post(event).await;
    assert_eq!(response.status(), 202);
    assert_eq!(server.stats().await["total"], 1, "nothing else was counted");
}

#[tokio::test]
async fn a_stalled_upload_is_closed_after_the_idle_timeout_but_a_quiet_stream_is_not() {
    let mut config = Config::default_for_tests();
    config.idle_timeout_secs = 2;
    config.keep_alive_secs = 1;
    config.publish_interval_ms = 2;
    let server = TestServer::start(config).await;
    let mut stream = server.stream(None).await;

    // The head is complete (the header timeout is over), the body stops after 10 bytes.
    let mut upload = connect(&server).await;
    upload
        .write_all(
            b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n[{\"ip\":\"1.",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut upload).await;
    assert!(answer.is_empty(), "closed without an answer: {answer:?}");

    // The stream saw no event for longer than the idle timeout, but its keep-alives kept
    // it open: it still delivers.
    let response = server.post(event_json(7, false)).await;
    assert_eq!(response.status(), 202);
    let hits = stream.next_of("hits").await;
    assert_eq!(support::hits_of(&hits).1, vec![support::ip_of(7)]);
}
