//! `tshark -T json`: one JSON array of packets, streamed element by element in constant
//! memory (the array can be gigabytes; it is never held whole).
//!
//! ```json
//! [
//!   { "_index": "packets-2025-01-15", "_source": { "layers": {
//!       "frame": { "frame.time_epoch": "1736919123.605024405", "frame.len": "49",
//!                  "frame.protocols": "eth:ethertype:ip:udp:data" },
//!       "ip": { "ip.src": "127.0.0.1", "ip.dst": "127.0.0.1" } } } },
//!   ...
//! ]
//! ```
//!
//! Each element is cut out of the stream by a small scanner (depth, strings, escapes) and
//! parsed alone; its record is the one [`crate::tshark`] makes from the layers, numbered by
//! the element's position (the packet number when the export is whole). Packets without an IP
//! layer are passed over. An element over [`MAX_ELEMENT_BYTES`] or that is not a packet is an
//! error naming its number; input that is not an array of objects ends the reading with an
//! error naming the byte offset.

use std::io::{self, Read};

use serde_json::Value;

use crate::record::{LineError, ParseError, RecordRef};
use crate::tshark::layers_record;

/// The largest packet element read, in bytes.
pub const MAX_ELEMENT_BYTES: usize = 4 << 20;

/// True when `head` looks like the start of a `tshark -T json` export.
pub fn is_tshark_json(head: &[u8]) -> bool {
    let t = head.trim_ascii_start();
    t.starts_with(b"[")
        && memchr::memmem::find(t, b"\"_source\"").is_some()
        && memchr::memmem::find(t, b"\"layers\"").is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// Between elements.
    Between,
    /// Inside an element.
    Element,
    /// After the closing `]`, or after a fatal error.
    Done,
}

/// The packets of a `tshark -T json` export as records.
#[derive(Debug)]
pub struct TsharkJsonRecords<R> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    /// Bytes consumed before `buf[0]`.
    base: u64,
    state: State,
    element: Vec<u8>,
    /// The element outgrew the limit: its bytes are dropped, its length counted.
    oversized: Option<u64>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    number: u64,
}

impl<R: Read> TsharkJsonRecords<R> {
    /// Reads the export from `input`.
    pub fn new(input: R) -> Self {
        TsharkJsonRecords {
            input,
            buf: vec![0; 64 * 1024],
            pos: 0,
            filled: 0,
            base: 0,
            state: State::Start,
            element: Vec::new(),
            oversized: None,
            depth: 0,
            in_string: false,
            escaped: false,
            number: 0,
        }
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        if self.pos == self.filled {
            self.base += self.filled as u64;
            self.pos = 0;
            self.filled = loop {
                match self.input.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if self.filled == 0 {
                return Ok(None);
            }
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    fn fatal(&mut self, what: &str) -> Option<Result<RecordRef<'static>, ParseError>> {
        self.state = State::Done;
        let at = self.base + self.pos as u64;
        Some(Err(ParseError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("byte {at}: {what} (not a tshark -T json export?)"),
        ))))
    }

    /// The next packet's record or error, `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<RecordRef<'static>, ParseError>> {
        loop {
            if self.state == State::Done {
                return None;
            }
            let b = match self.byte() {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return match self.state {
                        State::Start => {
                            self.state = State::Done;
                            None
                        }
                        _ => self.fatal("the array ends early"),
                    };
                }
                Err(e) => {
                    self.state = State::Done;
                    return Some(Err(ParseError::Io(e)));
                }
            };
            match self.state {
                State::Start if b.is_ascii_whitespace() => {}
                State::Start if b == b'[' => self.state = State::Between,
                State::Start => return self.fatal("expected `[`"),
                State::Between if b.is_ascii_whitespace() || b == b',' => {}
                State::Between if b == b']' => self.state = State::Done,
                State::Between if b == b'{' => {
                    self.state = State::Element;
                    self.number += 1;
                    self.element.clear();
                    self.element.push(b);
                    self.oversized = None;
                    self.depth = 1;
                    self.in_string = false;
                    self.escaped = false;
                }
                State::Between => return self.fatal("expected a packet object"),
                State::Element => {
                    if let Some(len) = self.oversized.as_mut() {
                        *len += 1;
                    } else if self.element.len() >= MAX_ELEMENT_BYTES {
                        self.oversized = Some(self.element.len() as u64 + 1);
                        self.element = Vec::new();
                    } else {
                        self.element.push(b);
                    }
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        }
                        continue;
                    }
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                self.state = State::Between;
                                if let Some(r) = self.finish() {
                                    return Some(r);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                State::Done => return None,
            }
        }
    }

    /// The record of the element just completed; `None` when it is no IP packet.
    fn finish(&mut self) -> Option<Result<RecordRef<'static>, ParseError>> {
        let n = self.number;
        if let Some(len) = self.oversized.take() {
            let e = format!("packet is longer than {MAX_ELEMENT_BYTES} bytes ({len} bytes)");
            return Some(Err(LineError::new(n, e).into()));
        }
        let v: Value = match serde_json::from_slice(&self.element) {
            Ok(v) => v,
            Err(e) => return Some(Err(LineError::new(n, format!("not JSON: {e}")).into())),
        };
        let Some(layers) = v.pointer("/_source/layers") else {
            return Some(Err(LineError::new(
                n,
                "no _source.layers (not a tshark packet)",
            )
            .into()));
        };
        layers_record(n, layers, None)
            .transpose()
            .map(|r| r.map_err(ParseError::Line))
    }
}

impl<R: Read> Iterator for TsharkJsonRecords<R> {
    type Item = Result<RecordRef<'static>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Result<RecordRef<'static>, String>> {
        TsharkJsonRecords::new(input)
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn strings_with_braces_and_escapes_do_not_cut_elements() {
        let input = br#"[{"_source":{"layers":{"frame":{"frame.time_epoch":"1.5","x":"}{\"]["},"ip":{"ip.src":"1.2.3.4"}}}},
            {"_source":{"layers":{"arp":{}}}}, {"_source":{"layers":{"frame":{"frame.time_epoch":"2"},"ipv6":{"ipv6.src":"::1"}}}}]"#;
        let got = all(input);
        assert_eq!(got.len(), 2, "{got:?}");
        let first = got[0].as_ref().unwrap();
        assert_eq!((first.line, first.ip.to_string()), (1, "1.2.3.4".into()));
        assert_eq!(
            got[1].as_ref().unwrap().line,
            3,
            "numbered by position, ARP passed over"
        );
    }

    #[test]
    fn damage_is_reported_with_the_packet_or_the_offset() {
        let got = all(br#"[{"_source":{}}, {"_source":{"layers":{"ip":{"ip.src":"x"}}}}"#);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].as_ref().unwrap_err().contains("line 1"), "{got:?}");
        assert!(
            got[1].as_ref().unwrap_err().contains("line 2: ip"),
            "{got:?}"
        );
        assert!(
            got[2].as_ref().unwrap_err().contains("ends early"),
            "{got:?}"
        );
        let got = all(b"  {\"not\": \"an array\"}");
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .contains("byte 3: expected `[`"),
            "{got:?}"
        );
        assert!(all(b"").is_empty());
    }
}
