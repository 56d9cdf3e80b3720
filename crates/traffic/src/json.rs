//! Writing the JSON of hot paths by hand: the same bytes as `serde_json` writes for the
//! derived `Serialize`, without its per-key escaping and per-value dispatch.
//!
//! An access log's import writes one JSON object per line twice (the sender's request body,
//! the server's hit); through `serde_json` the keys were escaped one character at a time and
//! every small value went through a `Serializer`. The functions here write keys as literal
//! bytes, addresses and integers directly, and strings with a scan for the characters JSON
//! escapes, falling back to `serde_json` for anything else so the text stays identical. Tests
//! hold each writer to `serde_json`'s output.

use std::net::IpAddr;

use serde::Serialize;

use crate::event::Event;

/// Appends `value` as `serde_json` writes it. Writing plain values into memory cannot fail.
pub fn write_value(out: &mut Vec<u8>, value: &impl Serialize) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends `text` as a JSON string (quoted, escaped as `serde_json` escapes it). Text without
/// a quote, a backslash or a control character, the usual case, is copied as it is.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write_value(out, &text);
    }
}

/// Appends `n` in decimal.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `ip` as its `Display` text: an IPv4 address's four numbers written directly
/// (through `fmt` they were about 1% of the server's CPU in an access log's import), an
/// IPv6 address through `Display`.
pub fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing into memory cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `ip` as a JSON string (an address's text needs no escaping).
pub fn write_ip_str(out: &mut Vec<u8>, ip: IpAddr) {
    out.push(b'"');
    write_ip(out, ip);
    out.push(b'"');
}

/// Appends `key` (the literal `,"name":` bytes) and `value` as a string, when there is one.
#[inline]
pub fn write_str_field(out: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    if let Some(value) = value {
        out.extend_from_slice(key);
        write_str(out, value);
    }
}

/// Appends `key` and `value` in decimal, when there is one.
#[inline]
pub fn write_u64_field(out: &mut Vec<u8>, key: &[u8], value: Option<u64>) {
    if let Some(value) = value {
        out.extend_from_slice(key);
        write_u64(out, value);
    }
}

/// Appends `key` and `value` as `serde_json` writes a float, when there is one.
#[inline]
pub fn write_f64_field(out: &mut Vec<u8>, key: &[u8], value: Option<f64>) {
    if let Some(value) = value {
        out.extend_from_slice(key);
        write_value(out, &value);
    }
}

/// Appends `key` and `ip` as a string, when there is one.
#[inline]
pub fn write_ip_field(out: &mut Vec<u8>, key: &[u8], ip: Option<IpAddr>) {
    if let Some(ip) = ip {
        out.extend_from_slice(key);
        write_ip_str(out, ip);
    }
}

/// Appends `event` as `serde_json::to_writer(out, event)` does: the object the sender
/// posts, absent optional fields left out.
pub fn write_event(out: &mut Vec<u8>, event: &Event) {
    out.extend_from_slice(b"{\"ip\":");
    write_ip_str(out, event.ip);
    write_f64_field(out, b",\"latitude\":", event.latitude);
    write_f64_field(out, b",\"longitude\":", event.longitude);
    write_f64_field(out, b",\"timestamp\":", Some(event.timestamp));
    out.extend_from_slice(if event.suspicious {
        b",\"suspicious\":true"
    } else {
        b",\"suspicious\":false"
    });
    write_u64_field(out, b",\"bytes\":", event.bytes);
    write_str_field(out, b",\"protocol\":", event.protocol.as_deref());
    write_u64_field(out, b",\"status\":", event.status.map(u64::from));
    write_str_field(out, b",\"method\":", event.method.as_deref());
    write_str_field(out, b",\"path\":", event.path.as_deref());
    write_ip_field(out, b",\"dest_ip\":", event.dest_ip);
    write_u64_field(out, b",\"src_port\":", event.src_port.map(u64::from));
    write_u64_field(out, b",\"dest_port\":", event.dest_port.map(u64::from));
    write_u64_field(out, b",\"packets\":", event.packets);
    out.push(b'}');
}

/// A request body for `POST /api/events`: one object for one event, an array otherwise,
/// exactly as `serde_json::to_vec` writes them.
pub fn events_body(events: &[Event]) -> Vec<u8> {
    // An access log's event is about 150 bytes of JSON: sized once instead of doubling
    // (and copying) its way up to a batch's megabytes.
    let mut out = Vec::with_capacity(events.len() * 192 + 2);
    match events {
        [one] => write_event(&mut out, one),
        many => {
            out.push(b'[');
            for (i, event) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_event(&mut out, event);
            }
            out.push(b']');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of_every_shape() -> Vec<Event> {
        let bare = Event::new("203.0.113.9".parse().unwrap(), 1_767_225_600.0, false);
        let full = Event {
            latitude: Some(-33.868_8),
            longitude: Some(151.209_3),
            bytes: Some(u64::MAX),
            protocol: Some("HTTP/1.1".into()),
            status: Some(404),
            method: Some("GET".into()),
            path: Some("/a \"quoted\" \\ path\twith\u{1}controls/é/\u{7f}".into()),
            dest_ip: Some("2001:db8::1".parse().unwrap()),
            src_port: Some(0),
            dest_port: Some(65_535),
            packets: Some(12),
            ..Event::new("::ffff:192.0.2.1".parse().unwrap(), 1.5e-7, true)
        };
        let odd_times = [0.0, -1.0, 1e21, 1_767_225_600.123_456_7, f64::MIN_POSITIVE];
        let mut events = vec![bare.clone(), full];
        events.extend(odd_times.map(|t| Event {
            timestamp: t,
            path: Some(String::new()),
            ..bare.clone()
        }));
        events
    }

    #[test]
    fn an_event_is_written_as_serde_would_write_it() {
        for event in events_of_every_shape() {
            let mut written = Vec::new();
            write_event(&mut written, &event);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&event).unwrap()
            );
        }
    }

    #[test]
    fn a_body_is_one_object_for_one_event_and_an_array_otherwise() {
        let events = events_of_every_shape();
        for n in [0, 1, 2, events.len()] {
            let expected = match &events[..n] {
                [one] => serde_json::to_vec(one).unwrap(),
                many => serde_json::to_vec(many).unwrap(),
            };
            assert_eq!(events_body(&events[..n]), expected, "{n} events");
        }
    }

    #[test]
    fn strings_and_numbers_are_written_as_serde_would_write_them() {
        for text in [
            "",
            "plain",
            "\"",
            "\\",
            "\n\r\t\u{0}\u{1f}",
            "é€😀",
            "</script>",
        ] {
            let mut written = Vec::new();
            write_str(&mut written, text);
            assert_eq!(written, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut written = Vec::new();
            write_u64(&mut written, n);
            assert_eq!(written, n.to_string().into_bytes());
        }
    }

    #[test]
    fn an_address_is_written_as_its_display_text() {
        let addresses = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "192.0.2.9",
            "100.64.99.10",
            "8.8.8.8",
            "::",
            "::1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
        ];
        for text in addresses {
            let ip: IpAddr = text.parse().unwrap();
            let mut written = Vec::new();
            write_ip(&mut written, ip);
            assert_eq!(String::from_utf8(written).unwrap(), ip.to_string());
        }
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 0, 9, octet]);
            let mut written = Vec::new();
            write_ip(&mut written, ip);
            assert_eq!(String::from_utf8(written).unwrap(), ip.to_string());
        }
    }
}
