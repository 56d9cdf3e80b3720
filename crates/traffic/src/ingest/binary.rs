//! The compact binary body of `POST /api/events` (`Content-Type:
//! application/vnd.traffic-globe.events`): what our sender posts, because reading it costs
//! the server a fraction of reading the same events as JSON (no key to match, no number
//! or address to parse from text).
//!
//! Any client may use it; the JSON body stays the general contract. Values are checked by
//! the same rules as JSON's (see [`crate::event`]), so a body gives the same events, or the
//! same error for the same item, in either form. All numbers are little-endian.
//!
//! ```text
//! body   = "TGE1" count:varint event*count        (nothing may follow the last event)
//! event  = flags:u16 ip:(4|16) timestamp:f64
//!          [latitude:f64 longitude:f64] [bytes:varint] [protocol:text] [status:u16]
//!          [method:text] [path:text] [dest_ip:(4|16)] [src_port:u16] [dest_port:u16]
//!          [packets:varint]
//! text   = length:varint UTF-8 bytes
//! varint = unsigned LEB128, at most 10 bytes
//! ```
//!
//! `flags` says which optional values follow, in that order: bit 0 suspicious, 1 `ip` is
//! IPv6 (16 bytes, else IPv4, 4 bytes; network order), 2 latitude and longitude, 3 bytes,
//! 4 protocol, 5 status, 6 method, 7 path, 8 dest_ip, 9 dest_ip is IPv6, 10 src_port,
//! 11 dest_port, 12 packets; bits 13-15 must be 0. `timestamp` is unix seconds (or
//! milliseconds, as in JSON).
//!
//! Errors, as for JSON: a body that cannot be read as this layout (wrong magic, an event
//! that ends early, unknown flag bits, text that is not UTF-8, bytes after the last event)
//! is [`IngestError::Malformed`], naming the item and the byte offset; a count over the
//! limit is [`IngestError::TooManyItems`] before any event is read; otherwise the first
//! event with a value out of its range is [`IngestError::Invalid`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{IngestError, ItemProblem};
use crate::event::{self, Event, Field, FieldError};

/// The media type of this body.
pub const CONTENT_TYPE: &str = "application/vnd.traffic-globe.events";

/// The first four bytes of a body (the layout's name and version).
pub const MAGIC: &[u8; 4] = b"TGE1";

const SUSPICIOUS: u16 = 1;
const IP_V6: u16 = 1 << 1;
const COORDINATES: u16 = 1 << 2;
const BYTES: u16 = 1 << 3;
const PROTOCOL: u16 = 1 << 4;
const STATUS: u16 = 1 << 5;
const METHOD: u16 = 1 << 6;
const PATH: u16 = 1 << 7;
const DEST_IP: u16 = 1 << 8;
const DEST_IP_V6: u16 = 1 << 9;
const SRC_PORT: u16 = 1 << 10;
const DEST_PORT: u16 = 1 << 11;
const PACKETS: u16 = 1 << 12;
const KNOWN: u16 = (1 << 13) - 1;

/// The fewest bytes an event takes: flags, an IPv4 address and the timestamp.
const MIN_EVENT_BYTES: usize = 2 + 4 + 8;

/// `events` as a body of this layout.
pub fn encode(events: &[Event]) -> Vec<u8> {
    // An access log's event takes about 60 bytes.
    let mut out = Vec::with_capacity(8 + events.len() * 72);
    out.extend_from_slice(MAGIC);
    put_varint(&mut out, events.len() as u64);
    for e in events {
        encode_event(&mut out, e);
    }
    out
}

fn encode_event(out: &mut Vec<u8>, e: &Event) {
    let flag = |on: bool, bit: u16| if on { bit } else { 0 };
    let flags = flag(e.suspicious, SUSPICIOUS)
        | flag(e.ip.is_ipv6(), IP_V6)
        | flag(e.coordinates().is_some(), COORDINATES)
        | flag(e.bytes.is_some(), BYTES)
        | flag(e.protocol.is_some(), PROTOCOL)
        | flag(e.status.is_some(), STATUS)
        | flag(e.method.is_some(), METHOD)
        | flag(e.path.is_some(), PATH)
        | flag(e.dest_ip.is_some(), DEST_IP)
        | flag(e.dest_ip.is_some_and(|ip| ip.is_ipv6()), DEST_IP_V6)
        | flag(e.src_port.is_some(), SRC_PORT)
        | flag(e.dest_port.is_some(), DEST_PORT)
        | flag(e.packets.is_some(), PACKETS);
    out.extend_from_slice(&flags.to_le_bytes());
    put_ip(out, e.ip);
    out.extend_from_slice(&e.timestamp.to_le_bytes());
    if let Some((latitude, longitude)) = e.coordinates() {
        out.extend_from_slice(&latitude.to_le_bytes());
        out.extend_from_slice(&longitude.to_le_bytes());
    }
    if let Some(bytes) = e.bytes {
        put_varint(out, bytes);
    }
    if let Some(protocol) = &e.protocol {
        put_text(out, protocol);
    }
    if let Some(status) = e.status {
        out.extend_from_slice(&status.to_le_bytes());
    }
    if let Some(method) = &e.method {
        put_text(out, method);
    }
    if let Some(path) = &e.path {
        put_text(out, path);
    }
    if let Some(ip) = e.dest_ip {
        put_ip(out, ip);
    }
    if let Some(port) = e.src_port {
        out.extend_from_slice(&port.to_le_bytes());
    }
    if let Some(port) = e.dest_port {
        out.extend_from_slice(&port.to_le_bytes());
    }
    if let Some(packets) = e.packets {
        put_varint(out, packets);
    }
}

fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Parses a body of this layout into events, all or nothing, with at most `max_items`.
pub fn parse(body: &[u8], max_items: usize) -> Result<Vec<Event>, IngestError> {
    let mut r = Reader { body, at: 0 };
    if body.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(IngestError::Malformed(format!(
            "a {CONTENT_TYPE} body starts with the bytes {:?}",
            std::str::from_utf8(MAGIC).unwrap_or_default()
        )));
    }
    r.at = MAGIC.len();
    let count = r
        .varint()
        .ok_or_else(|| malformed_at(&r, "the event count ends early or is too long"))?;
    if count > max_items as u64 {
        return Err(IngestError::TooManyItems { max: max_items });
    }
    let count = count as usize;
    // Never more than the body could hold, whatever the count claims.
    let mut events = Vec::with_capacity(count.min(body.len() / MIN_EVENT_BYTES));
    let mut first_invalid = None;
    for item in 0..count {
        match r.event() {
            Ok(Ok(event)) if first_invalid.is_none() => events.push(event),
            Ok(Ok(_)) => {}
            Ok(Err(problem)) => {
                if first_invalid.is_none() {
                    first_invalid = Some(IngestError::Invalid { item, problem });
                    // Nothing will be kept: free what was.
                    events = Vec::new();
                }
            }
            Err(what) => {
                return Err(IngestError::Malformed(format!(
                    "item {item}: {what} at byte {}",
                    r.at
                )));
            }
        }
    }
    if r.at != body.len() {
        return Err(malformed_at(
            &r,
            &format!(
                "{} bytes follow the last of {count} events",
                body.len() - r.at
            ),
        ));
    }
    match first_invalid {
        Some(e) => Err(e),
        None => Ok(events),
    }
}

fn malformed_at(r: &Reader<'_>, what: &str) -> IngestError {
    IngestError::Malformed(format!("{what} (byte {})", r.at))
}

/// A cursor over the body. Reads return `None` at the end of the body.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn f64(&mut self) -> Option<f64> {
        self.array().map(f64::from_le_bytes)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let byte = *self.body.get(self.at)?;
            self.at += 1;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds only the top bit of a u64.
            if i == 9 && bits > 1 {
                return None;
            }
            n |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn ip(&mut self, v6: bool) -> Option<IpAddr> {
        Some(if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))
        })
    }

    /// A text value, checked as UTF-8; `Err` names what is wrong with the layout.
    fn text(&mut self, field: Field) -> Result<&'a str, String> {
        let len = self
            .varint()
            .ok_or_else(|| format!("{field}: the length ends early or is too long"))?;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|len| self.take(len))
            .ok_or_else(|| format!("{field}: {len} bytes of text run past the body's end"))?;
        std::str::from_utf8(bytes).map_err(|_| format!("{field}: the text is not UTF-8"))
    }

    /// One event: `Err` when the layout cannot be read (the body is malformed), `Ok(Err)`
    /// when a value is out of its range.
    fn event(&mut self) -> Result<Result<Event, ItemProblem>, String> {
        let ends_early = |field: Field| format!("{field}: the event ends early");
        let flags = self.u16().ok_or("the event ends early")?;
        if flags & !KNOWN != 0 {
            return Err(format!("unknown flag bits {:#06x}", flags & !KNOWN));
        }
        let has = |bit: u16| flags & bit != 0;
        let ip = self.ip(has(IP_V6)).ok_or_else(|| ends_early(Field::Ip))?;
        let timestamp = self.f64().ok_or_else(|| ends_early(Field::Timestamp))?;
        let coordinates = if has(COORDINATES) {
            let latitude = self.f64().ok_or_else(|| ends_early(Field::Latitude))?;
            let longitude = self.f64().ok_or_else(|| ends_early(Field::Longitude))?;
            Some((latitude, longitude))
        } else {
            None
        };
        let bytes = self.optional(has(BYTES), Field::Bytes, Self::varint)?;
        let protocol = self.optional_text(has(PROTOCOL), Field::Protocol)?;
        let status = self.optional(has(STATUS), Field::Status, Self::u16)?;
        let method = self.optional_text(has(METHOD), Field::Method)?;
        let path = self.optional_text(has(PATH), Field::Path)?;
        let dest_ip = self.optional(has(DEST_IP), Field::DestIp, |r| r.ip(has(DEST_IP_V6)))?;
        let src_port = self.optional(has(SRC_PORT), Field::SrcPort, Self::u16)?;
        let dest_port = self.optional(has(DEST_PORT), Field::DestPort, Self::u16)?;
        let packets = self.optional(has(PACKETS), Field::Packets, Self::varint)?;
        let checked = || -> Result<Event, FieldError> {
            let coordinates = coordinates
                .map(|(latitude, longitude)| {
                    Ok::<_, FieldError>((
                        event::check_latitude(latitude)?,
                        event::check_longitude(longitude)?,
                    ))
                })
                .transpose()?;
            Ok(Event {
                ip,
                latitude: coordinates.map(|c| c.0),
                longitude: coordinates.map(|c| c.1),
                timestamp: event::timestamp_from_number(timestamp)?,
                suspicious: has(SUSPICIOUS),
                // As JSON reads them (its numbers are doubles): the same range, and the
                // same value past 2^53.
                bytes: bytes
                    .map(|b| event::bytes_from_number(b as f64))
                    .transpose()?,
                protocol: protocol.and_then(|t| event::bounded_text(Field::Protocol, t)),
                status: status
                    .map(|s| event::status_from_number(f64::from(s)))
                    .transpose()?,
                method: method.and_then(|t| event::bounded_text(Field::Method, t)),
                path: path.and_then(|t| event::bounded_text(Field::Path, t)),
                dest_ip,
                src_port,
                dest_port,
                packets: packets
                    .map(|p| event::packets_from_number(p as f64))
                    .transpose()?,
            })
        };
        Ok(checked().map_err(ItemProblem::Field))
    }

    fn optional<T>(
        &mut self,
        present: bool,
        field: Field,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Result<Option<T>, String> {
        if !present {
            return Ok(None);
        }
        read(self)
            .map(Some)
            .ok_or_else(|| format!("{field}: the event ends early"))
    }

    fn optional_text(&mut self, present: bool, field: Field) -> Result<Option<&'a str>, String> {
        if present {
            self.text(field).map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_body;

    fn events_of_every_shape() -> Vec<Event> {
        let bare = Event::new("203.0.113.9".parse().unwrap(), 1_767_225_600.0, false);
        vec![
            bare.clone(),
            Event {
                latitude: Some(-33.868_8),
                longitude: Some(151.209_3),
                bytes: Some(1 << 40),
                protocol: Some("HTTP/1.1".into()),
                status: Some(404),
                method: Some("GET".into()),
                path: Some("/a \"quoted\" \\ path/é/😀".into()),
                dest_ip: Some("2001:db8::1".parse().unwrap()),
                src_port: Some(0),
                dest_port: Some(65_535),
                packets: Some(12),
                ..Event::new("::ffff:192.0.2.1".parse().unwrap(), 1_767_225_600.25, true)
            },
            Event {
                bytes: Some(0),
                dest_ip: Some("10.1.2.3".parse().unwrap()),
                packets: Some(1),
                ..bare.clone()
            },
            Event {
                timestamp: 1_767_225_600_123.0, // milliseconds, as JSON takes them
                bytes: Some((1 << 53) + 1),     // past a double's integers, as JSON reads it
                packets: Some(u64::from(u32::MAX) << 22),
                ..bare
            },
        ]
    }

    #[test]
    fn a_body_reads_back_as_the_same_events_the_json_body_gives() {
        let events = events_of_every_shape();
        for n in 0..=events.len() {
            let binary = parse(&encode(&events[..n]), 1000).unwrap();
            let json = parse_body(&crate::json::events_body(&events[..n]), 1000).unwrap();
            assert_eq!(binary, json, "{n} events");
        }
    }

    #[test]
    fn values_out_of_range_are_invalid_as_in_json_naming_item_and_field() {
        let good = Event::new("203.0.113.9".parse().unwrap(), 1_767_225_600.0, false);
        let cases: [(Event, Field); 6] = [
            (
                Event {
                    bytes: Some(u64::MAX),
                    ..good.clone()
                },
                Field::Bytes,
            ),
            (
                Event {
                    timestamp: 42.0,
                    ..good.clone()
                },
                Field::Timestamp,
            ),
            (
                Event {
                    latitude: Some(95.0),
                    longitude: Some(0.0),
                    ..good.clone()
                },
                Field::Latitude,
            ),
            (
                Event {
                    latitude: Some(0.0),
                    longitude: Some(f64::NAN),
                    ..good.clone()
                },
                Field::Longitude,
            ),
            (
                Event {
                    status: Some(99),
                    ..good.clone()
                },
                Field::Status,
            ),
            (
                Event {
                    packets: Some(0),
                    ..good.clone()
                },
                Field::Packets,
            ),
        ];
        for (bad, field) in cases {
            let body = encode(&[good.clone(), bad.clone(), good.clone()]);
            match parse(&body, 1000) {
                Err(IngestError::Invalid { item: 1, problem }) => {
                    assert_eq!(problem.field(), Some(field), "{bad:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn text_is_trimmed_and_cut_to_its_limit_as_in_json() {
        let event = Event {
            method: Some("  GET ".into()),
            protocol: Some("-".into()),
            path: Some(format!("/{}", "é".repeat(2000))),
            ..Event::new("203.0.113.9".parse().unwrap(), 1_767_225_600.0, false)
        };
        let binary = parse(&encode(std::slice::from_ref(&event)), 10).unwrap();
        let json = parse_body(&crate::json::events_body(&[event]), 10).unwrap();
        assert_eq!(binary, json);
        assert_eq!(binary[0].method.as_deref(), Some("GET"));
        assert_eq!(binary[0].protocol, None);
        assert!(binary[0].path.as_ref().unwrap().len() <= event::MAX_PATH_BYTES);
    }

    #[test]
    fn a_count_over_the_limit_is_refused_before_reading_any_event() {
        let events = events_of_every_shape();
        assert_eq!(
            parse(&encode(&events), 3),
            Err(IngestError::TooManyItems { max: 3 })
        );
        // A count of billions with no events behind it: refused, nothing allocated for it.
        let mut body = MAGIC.to_vec();
        put_varint(&mut body, u64::MAX);
        assert_eq!(
            parse(&body, 1000),
            Err(IngestError::TooManyItems { max: 1000 })
        );
    }

    #[test]
    fn a_body_that_cannot_be_read_as_the_layout_is_malformed_naming_where() {
        let events = events_of_every_shape();
        let good = encode(&events);
        let mut unknown_flags = encode(&events[..1]);
        unknown_flags[6] |= 0x80; // the first event's flags: bytes 5 and 6, bit 15
        let mut not_utf8 = encode(&events[1..2]);
        let at = not_utf8.windows(3).position(|w| w == b"GET").unwrap();
        not_utf8[at] = 0xff;
        let mut trailing = good.clone();
        trailing.push(0);
        let mut count_too_high = MAGIC.to_vec();
        put_varint(&mut count_too_high, 2);
        count_too_high.extend_from_slice(&good[5..]); // the 4 events, 2 announced
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "starts with"),
            ("JSON", b"[]".to_vec(), "starts with"),
            ("no count", MAGIC.to_vec(), "count"),
            ("cut short", good[..good.len() - 3].to_vec(), "item 3"),
            ("unknown flags", unknown_flags, "unknown flag bits"),
            ("not UTF-8", not_utf8, "method: the text is not UTF-8"),
            ("trailing byte", trailing, "1 bytes follow"),
            (
                "more events than counted",
                count_too_high,
                "follow the last of 2 events",
            ),
        ];
        for (name, body, says) in cases {
            match parse(&body, 1000) {
                Err(IngestError::Malformed(message)) => {
                    assert!(message.contains(says), "{name}: {message}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_varint_longer_than_a_u64_is_refused() {
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&[0xff; 10]);
        body.push(0x01);
        assert!(matches!(parse(&body, 1000), Err(IngestError::Malformed(_))));
        let mut max = Vec::new();
        put_varint(&mut max, u64::MAX);
        assert_eq!(max.len(), 10);
        let mut r = Reader { body: &max, at: 0 };
        assert_eq!(r.varint(), Some(u64::MAX));
    }
}
