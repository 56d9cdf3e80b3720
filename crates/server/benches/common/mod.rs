//! Plumbing shared by the benches that drive the real release binaries on 127.0.0.1
//! (`load.rs`, `faults.rs`): starting and killing processes, free ports, reading a process's
//! memory and descriptors from /proc, hand-written HTTP/1.1 and SSE clients, realistic events.
//!
//! Each bench compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

// ---------------------------------------------------------------------------------------
// Processes and /proc

/// Where the release binaries are: target/release/deps/<bench>-<hash> → target/release.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A release binary by name, checked to exist.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo build --release -p server -p sender -p web` first",
        path.display()
    );
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `server` or `web` process on 127.0.0.1, killed when dropped.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// A `server`'s history directory when the harness made one (removed on drop).
    data_dir: Option<std::path::PathBuf>,
}

impl Server {
    /// Starts the `server` binary on a free port with `extra` flags; waits until it is healthy.
    pub async fn start(extra: &[&str]) -> Self {
        Self::spawn("server", free_port(), extra, Stdio::inherit()).await
    }

    /// Starts binary `name` (`server` or `web`) on `port` with `extra` flags, its standard
    /// error going to `stderr`; waits until `/healthz` answers 200.
    pub async fn spawn(name: &str, port: u16, extra: &[&str], stderr: Stdio) -> Self {
        // A server keeps its history in a directory of its own, unless told where.
        let data_dir = (name == "server" && !extra.iter().any(|a| a.starts_with("--data-dir")))
            .then(|| {
                std::env::temp_dir()
                    .join(format!("traffic-globe-bench-{}-{port}", std::process::id()))
            });
        let child = Command::new(binary(name))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(
                data_dir
                    .iter()
                    .flat_map(|d| [std::ffi::OsStr::new("--data-dir"), d.as_os_str()]),
            )
            .args(extra)
            // e.g. BENCH_SERVER_ARGS="--durable" or "--store memory": every server a bench
            // starts runs with these too.
            .args(
                std::env::var("BENCH_SERVER_ARGS")
                    .ok()
                    .filter(|_| name == "server")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            port,
            data_dir,
        };
        for _ in 0..400 {
            if server
                .get("/healthz")
                .await
                .is_some_and(|(status, _)| status == 200)
            {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{name} exited at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{name} did not come up on port {port}");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM, as `docker stop` does) and waits up to `grace`;
    /// then kills it. True if it stopped by itself.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        false
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET path` on a fresh connection: status and body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        get(self.port, path).await
    }

    /// `GET /api/stats` as JSON.
    pub async fn stats(&self) -> serde_json::Value {
        let (_, body) = self.get("/api/stats").await.unwrap();
        // Connection: close answers may be chunked; take the JSON object inside.
        let start = body.find('{').unwrap();
        let end = body.rfind('}').unwrap();
        serde_json::from_str(&body[start..=end]).unwrap()
    }

    /// A value from `/metrics`; `name` may include labels (`name{outcome="too_large"}`).
    pub async fn metric(&self, name: &str) -> u64 {
        let (_, body) = self.get("/metrics").await.unwrap_or_default();
        body.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .filter(|rest| rest.starts_with(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `GET path` on 127.0.0.1:`port` over a fresh connection: status and body.
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory of a process since it started (the kernel's high-water mark), KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Open file descriptors of a process (sockets included).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client

/// One keep-alive connection speaking just enough HTTP/1.1 for the benches.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub async fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends a prepared request and reads one response; returns its status.
    pub async fn roundtrip(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).await.unwrap();
        self.buf.clear();
        let message = read_message(&mut self.stream, &mut self.buf)
            .await
            .expect("server closed the connection");
        std::str::from_utf8(&message[9..12])
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// Reads one HTTP/1.1 message (head and a `Content-Length` body, none if absent) from
/// `stream`, with `carry` holding bytes read beyond the previous message. `None` when the
/// connection ends (or fails) first.
pub async fn read_message(stream: &mut TcpStream, carry: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(head_end) = find(carry, b"\r\n\r\n") {
            let head = std::str::from_utf8(&carry[..head_end]).ok()?;
            let length = header_value(head, "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let total = head_end + 4 + length;
            if carry.len() >= total {
                let rest = carry.split_off(total);
                return Some(std::mem::replace(carry, rest));
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => carry.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The value of header `name` (case-insensitive) in a message head.
pub fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `POST /api/events` request with `body`.
pub fn post_request(body: &str) -> Vec<u8> {
    post_request_as(body, None)
}

/// A `POST /api/events` request with `body`, with `Authorization: Bearer {token}` if given.
pub fn post_request_as(body: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /api/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Opens an SSE connection (`GET /api/stream`, resuming after `last_event_id` if given);
/// `recv_buffer` shrinks the socket's receive buffer (for stalled clients).
pub async fn open_stream_from(
    port: u16,
    recv_buffer: Option<u32>,
    last_event_id: Option<&str>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await?;
    let resume = last_event_id.map_or_else(String::new, |id| format!("Last-Event-ID: {id}\r\n"));
    stream
        .write_all(
            format!("GET /api/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n{resume}\r\n")
                .as_bytes(),
        )
        .await?;
    Ok(stream)
}

/// Opens an SSE connection from the start (a snapshot first).
pub async fn open_stream(port: u16, recv_buffer: Option<u32>) -> TcpStream {
    open_stream_from(port, recv_buffer, None).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// Realistic events

/// The course file when it is beside the repository, else our own sample.
pub fn data_file() -> PathBuf {
    let course =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ip_addresses.csv");
    if course.exists() {
        course
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample.csv")
    }
}

/// Coordinates of real traffic: the course file's rows (or the bundled sample's), in order.
pub fn coordinates() -> &'static [(f64, f64)] {
    static COORDINATES: std::sync::OnceLock<Vec<(f64, f64)>> = std::sync::OnceLock::new();
    COORDINATES.get_or_init(|| {
        traffic::csv::CsvReader::from_path(data_file())
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|row| row.event.coordinates())
            .collect()
    })
}

/// The IPv4 address of event `i`: distinct for every `i` below 2^24 × 223.
pub fn ip_of(i: u64) -> String {
    format!(
        "{}.{}.{}.{}",
        1 + (i >> 24) % 223,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

/// A realistic event: `i` varies the IP and walks through real coordinates.
pub fn event(i: u64) -> String {
    let coordinates = coordinates();
    let (lat, lon) = coordinates[i as usize % coordinates.len()];
    format!(
        r#"{{"ip":"{}","latitude":{lat},"longitude":{lon},"timestamp":{},"suspicious":{}}}"#,
        ip_of(i),
        1_736_919_120 + i / 1000,
        i.is_multiple_of(33)
    )
}

/// A JSON array of events `first..first + size`.
pub fn batch(first: u64, size: usize) -> String {
    let items: Vec<String> = (first..first + size as u64).map(event).collect();
    format!("[{}]", items.join(","))
}
