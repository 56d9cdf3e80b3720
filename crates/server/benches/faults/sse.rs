//! Reading event streams off raw sockets, and recording what each reader was delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::common::{find, header_value, open_stream, open_stream_from};

// ---------------------------------------------------------------------------------------
// Reading an event stream

/// One server-sent event.
pub(crate) struct Message {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: String,
}

impl Message {
    /// The sequence number in the id (`<boot>-<seq>`).
    pub(crate) fn seq(&self) -> Option<u64> {
        self.id.as_deref()?.rsplit_once('-')?.1.parse().ok()
    }
    pub(crate) fn boot(&self) -> Option<&str> {
        Some(self.id.as_deref()?.rsplit_once('-')?.0)
    }
    /// The event ids a `hits` or `snapshot` message carries: `first..=seq`.
    pub(crate) fn covers(&self) -> Option<std::ops::RangeInclusive<u64>> {
        let key = match self.event.as_str() {
            "hits" => "\"seq\":",
            "snapshot" => "\"first_seq\":",
            _ => return None,
        };
        let at = self.data.find(key)? + key.len();
        let digits: String = self.data[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(digits.parse().ok()?..=self.seq()?)
    }
    /// The IPs of the hits it carries, in id order.
    pub(crate) fn ips(&self) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(&self.data).unwrap_or_default();
        value["hits"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|h| h["ip"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Chunk {
    Size,
    Data(usize),
    End,
}

/// An SSE response read off a raw socket: skips the head, undoes chunked coding (a proxy may
/// split messages anywhere), yields messages.
pub(crate) struct SseReader {
    stream: TcpStream,
    raw: Vec<u8>,
    head: bool,
    chunked: bool,
    chunk: Chunk,
    text: Vec<u8>,
    ended: bool,
}

impl SseReader {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            raw: Vec::new(),
            head: false,
            chunked: false,
            chunk: Chunk::Size,
            text: Vec::new(),
            ended: false,
        }
    }

    /// The next message; `None` when the stream ends, fails or is not an event stream.
    /// Cancel-safe (state changes only after a completed read).
    pub(crate) async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = find(&self.text, b"\n\n") {
                let block: Vec<u8> = self.text.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let mut message = Message {
                    id: None,
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        message.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        v.clone_into(&mut message.event);
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        message.data.push_str(v);
                    }
                }
                return Some(message);
            }
            if self.ended {
                return None;
            }
            let mut buf = [0u8; 64 * 1024];
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
            }
            if !self.head {
                let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
                if !head.starts_with("HTTP/1.1 200") {
                    return None;
                }
                self.chunked = header_value(&head, "transfer-encoding")
                    .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
                self.raw.drain(..end + 4);
                self.head = true;
            }
            self.decode();
        }
    }

    pub(crate) fn decode(&mut self) {
        if !self.chunked {
            self.text.append(&mut self.raw);
            return;
        }
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(end) = find(&self.raw, b"\r\n") else {
                        return;
                    };
                    let line = String::from_utf8_lossy(&self.raw[..end]).into_owned();
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .unwrap_or(0);
                    self.raw.drain(..end + 2);
                    if size == 0 {
                        self.ended = true;
                        return;
                    }
                    self.chunk = Chunk::Data(size);
                }
                Chunk::Data(left) => {
                    if self.raw.is_empty() {
                        return;
                    }
                    let take = left.min(self.raw.len());
                    self.text.extend(self.raw.drain(..take));
                    self.chunk = if take == left {
                        Chunk::End
                    } else {
                        Chunk::Data(left - take)
                    };
                }
                Chunk::End => {
                    if self.raw.len() < 2 {
                        return;
                    }
                    self.raw.drain(..2);
                    self.chunk = Chunk::Size;
                }
            }
        }
    }
}

/// Reads `reader` until it ends or `stop` is set, handing every message to `on_message`.
pub(crate) async fn read_until(
    reader: &mut SseReader,
    stop: &AtomicBool,
    mut on_message: impl FnMut(&Message),
) -> bool {
    loop {
        if stop.load(Relaxed) {
            return true;
        }
        match tokio::time::timeout(Duration::from_millis(100), reader.next()).await {
            Ok(Some(message)) => on_message(&message),
            Ok(None) => return false,
            Err(_) => {}
        }
    }
}

/// The id of the newest message a fresh stream starts with (its snapshot's), to resume from.
pub(crate) async fn current_id(port: u16) -> String {
    let mut reader = SseReader::new(open_stream(port, None).await);
    loop {
        let message = reader
            .next()
            .await
            .expect("stream ended before its snapshot");
        if message.event == "snapshot" {
            return message.id.unwrap();
        }
    }
}

/// A client that reads the stream on `port` until `stop`, reconnecting with `Last-Event-ID`
/// (as `EventSource` does) `retry` after each end, and hands every message to `on_message`.
/// Returns how many times it connected.
pub(crate) fn reconnecting(
    port: u16,
    retry: Duration,
    stop: Arc<AtomicBool>,
    mut on_message: impl FnMut(&Message) + Send + 'static,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut connections = 0;
        let mut last_id: Option<String> = None;
        while !stop.load(Relaxed) {
            let Ok(stream) = open_stream_from(port, None, last_id.as_deref()).await else {
                tokio::time::sleep(retry).await;
                continue;
            };
            connections += 1;
            let mut sse = SseReader::new(stream);
            let stopped = read_until(&mut sse, &stop, |m| {
                on_message(m);
                if m.id.is_some() {
                    last_id.clone_from(&m.id);
                }
            })
            .await;
            if !stopped {
                tokio::time::sleep(retry).await;
            }
        }
        connections
    })
}
