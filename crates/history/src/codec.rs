//! The compact binary form of a block of consecutive events (schema v2): one SQLite row per
//! block instead of one indexed row per event, so storing an event costs an encoding into a
//! buffer, not a B-tree insert.
//!
//! A block is its events one after the other, the sequence numbers implicit (the row has
//! the first). Per event: a flags varint (which fields are present, how it was placed), the
//! arrival time as a zigzag varint delta from the previous event's, the data time as the
//! 8 bytes of its `f64`, the address (4 or 16 bytes), then the present fields in a fixed
//! order. Text is interned per block: a varint id, and the first use of a text follows its
//! id with its length and bytes, so a protocol, method, path or AS name repeated in a block
//! is stored once.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use traffic::Event;

use crate::{Located, Network, StoredEvent};

const SUSPICIOUS: u64 = 1;
const LATITUDE: u64 = 1 << 1;
const LONGITUDE: u64 = 1 << 2;
const LOCATED_SHIFT: u32 = 3; // 2 bits: 0 unlocated, 1 by its coordinates, 2 by its IP
const BYTES: u64 = 1 << 5;
const PROTOCOL: u64 = 1 << 6;
const STATUS: u64 = 1 << 7;
const METHOD: u64 = 1 << 8;
const PATH: u64 = 1 << 9;
const DEST_IP: u64 = 1 << 10;
const NETWORK: u64 = 1 << 11;
const IP_V6: u64 = 1 << 12;
const DEST_IP_V6: u64 = 1 << 13;
const SRC_PORT: u64 = 1 << 14;
const DEST_PORT: u64 = 1 << 15;
const PACKETS: u64 = 1 << 16;

/// What the encoder needs of one event (the place by its key).
pub(crate) struct Row<'a> {
    pub received_ms: u64,
    pub event: &'a Event,
    pub located: Where<'a>,
    pub network: Option<Network<'a>>,
}

/// Where an event was placed, by place key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Where<'a> {
    /// By its coordinates.
    Event(u64),
    /// By its address: the place and the IP database's coordinates.
    Ip(u64, f64, f64),
    /// Not placed, for this reason.
    Unlocated(&'a str),
}

/// Builds one block at a time, in a buffer reused from block to block (a block of a few
/// hundred kilobytes grown from nothing each time was a chain of reallocations, each onto
/// fresh pages the kernel had to zero).
#[derive(Default)]
pub(crate) struct Encoder {
    buffer: Vec<u8>,
    /// Texts of this block: each text's hash (foldhash, randomly seeded: nobody can aim a
    /// collision at it) to its id. A text's bytes are in `buffer` already, so none is copied.
    strings: HashMap<u64, u64, foldhash::fast::RandomState>,
    /// Where each id's text is in `buffer`: (start, end).
    texts: Vec<(usize, usize)>,
    previous_ms: u64,
    count: usize,
}

impl Encoder {
    /// Appends one event (the first after [`Encoder::finish`] starts a new block).
    pub fn push(&mut self, row: &Row<'_>) {
        if self.count == 0 {
            self.buffer.clear();
            self.strings.clear();
            self.texts.clear();
            self.previous_ms = 0;
        }
        let e = row.event;
        let mut flags = u64::from(e.suspicious);
        let located = match row.located {
            Where::Unlocated(_) => 0,
            Where::Event(_) => 1,
            Where::Ip(..) => 2,
        };
        flags |= located << LOCATED_SHIFT;
        for (present, flag) in [
            (e.latitude.is_some(), LATITUDE),
            (e.longitude.is_some(), LONGITUDE),
            (e.bytes.is_some(), BYTES),
            (e.protocol.is_some(), PROTOCOL),
            (e.status.is_some(), STATUS),
            (e.method.is_some(), METHOD),
            (e.path.is_some(), PATH),
            (e.dest_ip.is_some(), DEST_IP),
            (row.network.is_some(), NETWORK),
            (e.ip.is_ipv6(), IP_V6),
            (e.dest_ip.is_some_and(|ip| ip.is_ipv6()), DEST_IP_V6),
            (e.src_port.is_some(), SRC_PORT),
            (e.dest_port.is_some(), DEST_PORT),
            (e.packets.is_some(), PACKETS),
        ] {
            if present {
                flags |= flag;
            }
        }
        let b = &mut self.buffer;
        varint(b, flags);
        let delta = row.received_ms.wrapping_sub(self.previous_ms) as i64;
        varint(b, ((delta << 1) ^ (delta >> 63)) as u64);
        self.previous_ms = row.received_ms;
        b.extend_from_slice(&e.timestamp.to_le_bytes());
        ip(b, e.ip);
        for v in [e.latitude, e.longitude].into_iter().flatten() {
            b.extend_from_slice(&v.to_le_bytes());
        }
        match row.located {
            Where::Event(key) => varint(b, key),
            Where::Ip(place, latitude, longitude) => {
                varint(b, place);
                b.extend_from_slice(&latitude.to_le_bytes());
                b.extend_from_slice(&longitude.to_le_bytes());
            }
            Where::Unlocated(reason) => self.text(reason),
        }
        if let Some(bytes) = e.bytes {
            varint(&mut self.buffer, bytes);
        }
        if let Some(p) = &e.protocol {
            self.text(p);
        }
        if let Some(s) = e.status {
            varint(&mut self.buffer, u64::from(s));
        }
        if let Some(m) = &e.method {
            self.text(m);
        }
        if let Some(p) = &e.path {
            self.text(p);
        }
        if let Some(d) = e.dest_ip {
            ip(&mut self.buffer, d);
        }
        if let Some(n) = row.network {
            varint(&mut self.buffer, u64::from(n.asn));
            self.text(n.name);
        }
        for v in [
            e.src_port.map(u64::from),
            e.dest_port.map(u64::from),
            e.packets,
        ]
        .into_iter()
        .flatten()
        {
            varint(&mut self.buffer, v);
        }
        self.count += 1;
    }

    fn text(&mut self, s: &str) {
        let hash = self.strings.hasher().hash_one(s);
        if let Some(&id) = self.strings.get(&hash)
            && let Some(&(start, end)) = self.texts.get(id as usize)
            && self.buffer.get(start..end) == Some(s.as_bytes())
        {
            varint(&mut self.buffer, id);
            return;
        }
        // New (or another text with the same hash: then this one gets an id of its own,
        // which is as valid, only not shared).
        let id = self.texts.len() as u64;
        varint(&mut self.buffer, id);
        varint(&mut self.buffer, s.len() as u64);
        let start = self.buffer.len();
        self.buffer.extend_from_slice(s.as_bytes());
        self.texts.push((start, self.buffer.len()));
        self.strings.entry(hash).or_insert(id);
    }

    /// Events pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The encoded block; the next push starts a new one (in the same buffer).
    pub fn finish(&mut self) -> &[u8] {
        self.count = 0;
        &self.buffer
    }
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push(v as u8 | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn ip(b: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => b.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.extend_from_slice(&v6.octets()),
    }
}

/// Reads a block back, event by event.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    at: usize,
    seq: u64,
    previous_ms: u64,
    strings: Vec<&'a str>,
}

impl<'a> Decoder<'a> {
    /// A block whose first event has `first_seq`.
    pub fn new(data: &'a [u8], first_seq: u64) -> Self {
        Self {
            data,
            at: 0,
            seq: first_seq,
            previous_ms: 0,
            strings: Vec::new(),
        }
    }

    /// The next event, `None` at the end; an error names what is wrong.
    pub fn next_event(&mut self) -> Option<Result<StoredEvent, String>> {
        if self.at >= self.data.len() {
            return None;
        }
        let seq = self.seq;
        self.seq += 1;
        Some(self.event(seq))
    }

    fn event(&mut self, seq: u64) -> Result<StoredEvent, String> {
        let flags = self.varint()?;
        let zigzag = self.varint()?;
        let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        let received_ms = self.previous_ms.wrapping_add(delta as u64);
        self.previous_ms = received_ms;
        let timestamp = self.f64()?;
        let ip = self.ip(flags & IP_V6 != 0)?;
        let latitude = if flags & LATITUDE != 0 {
            Some(self.f64()?)
        } else {
            None
        };
        let longitude = if flags & LONGITUDE != 0 {
            Some(self.f64()?)
        } else {
            None
        };
        let located = match (flags >> LOCATED_SHIFT) & 3 {
            0 => Located::Unlocated(self.text()?.to_owned()),
            1 => Located::Event(self.varint()?),
            2 => Located::Ip {
                place: self.varint()?,
                latitude: self.f64()?,
                longitude: self.f64()?,
            },
            other => return Err(format!("placed as {other}")),
        };
        let mut event = Event {
            ip,
            latitude,
            longitude,
            timestamp,
            suspicious: flags & SUSPICIOUS != 0,
            bytes: None,
            protocol: None,
            status: None,
            method: None,
            path: None,
            dest_ip: None,
            src_port: None,
            dest_port: None,
            packets: None,
        };
        if flags & BYTES != 0 {
            event.bytes = Some(self.varint()?);
        }
        if flags & PROTOCOL != 0 {
            event.protocol = Some(self.text()?.to_owned());
        }
        if flags & STATUS != 0 {
            event.status = Some(u16::try_from(self.varint()?).map_err(|_| "status out of range")?);
        }
        if flags & METHOD != 0 {
            event.method = Some(self.text()?.to_owned());
        }
        if flags & PATH != 0 {
            event.path = Some(self.text()?.to_owned());
        }
        if flags & DEST_IP != 0 {
            event.dest_ip = Some(self.ip(flags & DEST_IP_V6 != 0)?);
        }
        let network = if flags & NETWORK != 0 {
            let asn = u32::try_from(self.varint()?).map_err(|_| "AS number out of range")?;
            Some((asn, self.text()?.to_owned()))
        } else {
            None
        };
        if flags & SRC_PORT != 0 {
            event.src_port = Some(u16::try_from(self.varint()?).map_err(|_| "port out of range")?);
        }
        if flags & DEST_PORT != 0 {
            event.dest_port = Some(u16::try_from(self.varint()?).map_err(|_| "port out of range")?);
        }
        if flags & PACKETS != 0 {
            event.packets = Some(self.varint()?);
        }
        Ok(StoredEvent {
            seq,
            received_ms,
            event,
            located,
            network,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("block ends inside a field at byte {}", self.at))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_owned())
    }

    fn f64(&mut self) -> Result<f64, String> {
        let bytes = self.take(8)?;
        Ok(f64::from_le_bytes(bytes.try_into().map_err(|_| "short")?))
    }

    fn ip(&mut self, v6: bool) -> Result<IpAddr, String> {
        Ok(if v6 {
            let b: [u8; 16] = self.take(16)?.try_into().map_err(|_| "short")?;
            IpAddr::from(b)
        } else {
            let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| "short")?;
            IpAddr::from(b)
        })
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let id = self.varint()? as usize;
        if let Some(s) = self.strings.get(id) {
            return Ok(s);
        }
        if id != self.strings.len() {
            return Err(format!("text #{id} used before it is defined"));
        }
        let len = self.varint()? as usize;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|e| format!("text #{id}: {e}"))?;
        self.strings.push(s);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_block_is_an_error_not_a_panic() {
        let mut event = Event::new(IpAddr::from([1, 2, 3, 4]), 5.0, true);
        event.path = Some("/x".to_owned());
        let mut encoder = Encoder::default();
        encoder.push(&Row {
            received_ms: 9,
            event: &event,
            located: Where::Unlocated("private"),
            network: Some(Network {
                asn: 7,
                name: "Seven",
            }),
        });
        let block = encoder.finish().to_vec();
        let whole = Decoder::new(&block, 1).next_event().unwrap().unwrap();
        assert_eq!(whole.event, event);
        assert_eq!(whole.network, Some((7, "Seven".to_owned())));
        for cut in 0..block.len() {
            let result = Decoder::new(&block[..cut], 1).next_event();
            assert!(
                cut == 0 && result.is_none() || matches!(result, Some(Err(_))),
                "cut at {cut}"
            );
        }
    }

    fn decode_all(block: &[u8], first_seq: u64) -> Vec<StoredEvent> {
        let mut decoder = Decoder::new(block, first_seq);
        std::iter::from_fn(|| decoder.next_event())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn with_path(last_octet: u8, path: &str) -> Event {
        let mut event = Event::new(IpAddr::from([192, 0, 2, last_octet]), 10.0, false);
        event.path = Some(path.to_owned());
        event.method = Some("GET".to_owned());
        event
    }

    #[test]
    fn a_text_repeated_in_a_block_is_stored_once() {
        let events: Vec<Event> = (0..50).map(|i| with_path(i, "/index.html")).collect();
        let mut encoder = Encoder::default();
        for e in &events {
            encoder.push(&Row {
                received_ms: 1,
                event: e,
                located: Where::Unlocated("private"),
                network: None,
            });
        }
        let block = encoder.finish().to_vec();
        let stored = block
            .windows(b"/index.html".len())
            .filter(|w| *w == b"/index.html")
            .count();
        assert_eq!(stored, 1);
        let decoded = decode_all(&block, 1);
        assert_eq!(decoded.len(), 50);
        for (d, e) in decoded.iter().zip(&events) {
            assert_eq!(&d.event, e);
        }
    }

    #[test]
    fn each_block_of_a_reused_encoder_decodes_on_its_own() {
        let first = [with_path(1, "/a"), with_path(2, "/b")];
        let second = [with_path(3, "/b"), with_path(4, "/c"), with_path(5, "/a")];
        let mut encoder = Encoder::default();
        let mut blocks = Vec::new();
        for (events, received_ms) in [(&first[..], 1_000), (&second[..], 2_000)] {
            for e in events {
                encoder.push(&Row {
                    received_ms,
                    event: e,
                    located: Where::Event(7),
                    network: None,
                });
            }
            assert_eq!(encoder.len(), events.len());
            blocks.push(encoder.finish().to_vec());
            assert_eq!(encoder.len(), 0);
        }
        let decoded = decode_all(&blocks[1], 3);
        assert_eq!(decoded.len(), second.len());
        for (i, (d, e)) in decoded.iter().zip(&second).enumerate() {
            assert_eq!(d.seq, 3 + i as u64);
            assert_eq!(d.received_ms, 2_000);
            assert_eq!(&d.event, e);
            assert_eq!(d.located, Located::Event(7));
        }
        assert_eq!(decode_all(&blocks[0], 1).len(), first.len());
    }
}
