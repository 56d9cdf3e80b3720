//! nginx/Apache access logs: `common`, `combined` and `vcombined`.
//!
//! ```text
//! common:    %h %l %u %t "%r" %>s %b
//! combined:  %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
//! vcombined: %v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"
//! ```
//!
//! The hot path: byte scanning with `memchr`, no regex, no allocation for a well-formed line
//! (fields borrow from it), and the date's day part cached. Lenient where real logs vary:
//! the user field may hold spaces; fields after the status may be missing (a `common` line read
//! as `combined` has no user agent); extra trailing fields (nginx's `$http_x_forwarded_for`) are
//! ignored; `-` bytes or status is `None`; IPv4-mapped IPv6 clients become IPv4.
//! A request line that is not `METHOD target [protocol]` (`"-"`, a TLS handshake logged as
//! `\x16\x03...`) still counts as a hit, without method, path or protocol.
//! Inside quoted fields `\"` and `\\` are unescaped; other escapes (`\xHH`) are kept as logged.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use memchr::{memchr, memchr2};

use crate::record::{LineError, LineParser, RecordRef};
use crate::time::{CLF_DATE_LEN, ClfDateCache};

/// Which of the three layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `%h %l %u %t "%r" %>s %b`
    Common,
    /// `common` plus `"%{Referer}i" "%{User-Agent}i"`.
    Combined,
    /// `combined` with a `%v:%p ` (virtual host and port) prefix.
    VCombined,
}

/// The parser of one [`Variant`] (with a date cache).
#[derive(Debug, Clone)]
pub struct ClfParser {
    variant: Variant,
    dates: ClfDateCache,
}

impl ClfParser {
    /// A parser of `variant`.
    pub fn new(variant: Variant) -> ClfParser {
        ClfParser {
            variant,
            dates: ClfDateCache::default(),
        }
    }
}

/// The end of a quoted field whose text starts at `start` (just after its opening quote):
/// the index of the closing quote, and whether a backslash escape occurred.
fn quoted_end(t: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start;
    let mut escaped = false;
    while i <= t.len() {
        let j = i + memchr2(b'"', b'\\', t.get(i..)?)?;
        if t[j] == b'"' {
            return Some((j, escaped));
        }
        escaped = true;
        i = j + 2;
    }
    None
}

fn unescape(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(&c @ (b'"' | b'\\'))) => {
                out.push(c);
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn field(b: &[u8], escaped: bool) -> Cow<'_, str> {
    if escaped && memchr(b'\\', b).is_some() {
        Cow::Owned(unescape(b))
    } else {
        crate::text(b)
    }
}

/// An IPv4 address, hand-parsed (the common case), else any address `std` reads.
pub(crate) fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4(b) {
        return Some(IpAddr::V4(v4));
    }
    let s = std::str::from_utf8(b).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    let mut value: u32 = 0;
    let mut len = 0;
    for &c in b {
        if c == b'.' {
            if len == 0 || n == 3 {
                return None;
            }
            octets[n] = value as u8;
            n += 1;
            value = 0;
            len = 0;
        } else {
            let d = c.wrapping_sub(b'0');
            // No leading zeros (std refuses them too: they could mean octal).
            if d > 9 || len == 3 || (len == 1 && value == 0) {
                return None;
            }
            value = value * 10 + u32::from(d);
            if value > 255 {
                return None;
            }
            len += 1;
        }
    }
    if n != 3 || len == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(Ipv4Addr::from(octets))
}

fn is_method(b: &[u8]) -> bool {
    (1..=24).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'-' || *c == b'_')
}

/// Splits a request line into method, target and protocol; all `None` when it is not one.
#[allow(clippy::type_complexity)]
pub(crate) fn request(
    r: &[u8],
    escaped: bool,
) -> (
    Option<Cow<'_, str>>,
    Option<Cow<'_, str>>,
    Option<Cow<'_, str>>,
) {
    let Some(sp) = memchr(b' ', r) else {
        return (None, None, None);
    };
    let method = &r[..sp];
    if !is_method(method) {
        return (None, None, None);
    }
    let rest = &r[sp + 1..];
    let (target, protocol) = match memchr::memrchr(b' ', rest) {
        Some(last) if rest[last + 1..].starts_with(b"HTTP/") => {
            (&rest[..last], Some(&rest[last + 1..]))
        }
        _ => (rest, None),
    };
    if target.is_empty() {
        return (None, None, None);
    }
    (
        Some(crate::text(method)),
        Some(field(target, escaped)),
        protocol.map(crate::text),
    )
}

fn token(t: &[u8], from: usize) -> (&[u8], usize) {
    let rest = &t[from.min(t.len())..];
    match memchr(b' ', rest) {
        Some(i) => (&rest[..i], from + i),
        None => (rest, t.len()),
    }
}

fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(60)]).into_owned();
    if b.len() > 60 { s + "…" } else { s }
}

impl LineParser for ClfParser {
    fn parse<'a>(&mut self, line: u64, t: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        let err = |reason: String| LineError::new(line, reason);
        let mut p = 0;
        if self.variant == Variant::VCombined {
            let (vhost, end) = token(t, 0);
            if vhost.is_empty() || end == t.len() {
                return Err(err("no client address after the virtual host".into()));
            }
            p = end + 1;
        }
        let (ip_text, ip_end) = token(t, p);
        let ip = parse_ip(ip_text).ok_or_else(|| {
            err(format!(
                "client address `{}` is not an IP address",
                shown(ip_text)
            ))
        })?;

        let lb = memchr(b'[', &t[ip_end..])
            .map(|i| ip_end + i)
            .ok_or_else(|| err("no [date]".into()))?;
        let ds = lb + 1;
        let timestamp = match t.get(ds + CLF_DATE_LEN) {
            Some(b']') => self.dates.parse(&t[ds..ds + CLF_DATE_LEN]),
            _ => None,
        };
        let Some(timestamp) = timestamp else {
            let end = memchr(b']', &t[ds..]).map_or(t.len(), |i| ds + i);
            return Err(err(format!(
                "date `{}` is not like 10/Oct/2000:13:55:36 -0700",
                shown(&t[ds..end])
            )));
        };
        p = ds + CLF_DATE_LEN + 1;

        if !t[p..].starts_with(b" \"") {
            return Err(err("no quoted request line after the date".into()));
        }
        let (rq_end, rq_esc) = quoted_end(t, p + 2)
            .ok_or_else(|| err("the request line has no closing quote".into()))?;
        let (method, path, protocol) = request(&t[p + 2..rq_end], rq_esc);
        p = rq_end + 1;

        let mut rec = RecordRef::new(line, ip, timestamp);
        rec.method = method;
        rec.path = path;
        rec.protocol = protocol;

        // Status.
        if p >= t.len() {
            return Err(err("no status after the request line".into()));
        }
        let (status, end) = token(t, p + 1);
        rec.status = match status {
            b"-" => None,
            [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
                Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
            }
            _ => {
                return Err(err(format!(
                    "status `{}` is not three digits",
                    shown(status)
                )));
            }
        };
        if end >= t.len() {
            return Ok(rec);
        }
        // Bytes.
        let (bytes, end) = token(t, end + 1);
        rec.bytes = match bytes {
            b"-" | b"" => None,
            _ => {
                let mut v: u64 = 0;
                for &c in bytes {
                    let d = c.wrapping_sub(b'0');
                    if d > 9 {
                        return Err(err(format!(
                            "bytes `{}` is not a number or -",
                            shown(bytes)
                        )));
                    }
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d)))
                        .ok_or_else(|| err("bytes overflow".into()))?;
                }
                Some(v)
            }
        };
        if self.variant == Variant::Common || end >= t.len() {
            return Ok(rec);
        }
        // Referer, then user agent; absent ones are fine.
        if !t[end..].starts_with(b" \"") {
            return Ok(rec);
        }
        let Some((ref_end, _)) = quoted_end(t, end + 2) else {
            return Err(err("the referer has no closing quote".into()));
        };
        if !t[ref_end + 1..].starts_with(b" \"") {
            return Ok(rec);
        }
        let ua_start = ref_end + 3;
        let Some((ua_end, ua_esc)) = quoted_end(t, ua_start) else {
            return Err(err("the user agent has no closing quote".into()));
        };
        let ua = &t[ua_start..ua_end];
        if !ua.is_empty() && ua != b"-" {
            rec.user_agent = Some(field(ua, ua_esc));
        }
        Ok(rec)
    }
}

/// Which variant `line` looks like, if any: a `common` line ends after the bytes.
pub(crate) fn shape(line: &[u8]) -> Option<Variant> {
    let mut combined = ClfParser::new(Variant::Combined);
    if let Ok(r) = combined.parse(1, line) {
        return Some(if r.user_agent.is_some() || has_quoted_tail(line) {
            Variant::Combined
        } else {
            Variant::Common
        });
    }
    ClfParser::new(Variant::VCombined)
        .parse(1, line)
        .ok()
        .map(|_| Variant::VCombined)
}

/// True when a quoted field follows the status and bytes (referer and user agent).
fn has_quoted_tail(line: &[u8]) -> bool {
    line.last() == Some(&b'"')
        && memchr::memrchr(b']', line).is_some_and(|rb| {
            let after = &line[rb..];
            after.iter().filter(|&&c| c == b'"').count() >= 4
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "255.255.255.255",
            "0.0.0.0",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1..2.3",
            "",
            "1.2.3.4 ",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_clients_become_ipv4() {
        assert_eq!(
            parse_ip(b"::ffff:8.8.8.8"),
            Some("8.8.8.8".parse().expect("ip"))
        );
        assert_eq!(
            parse_ip(b"[2001:db8::1]"),
            Some("2001:db8::1".parse().expect("ip"))
        );
    }

    #[test]
    fn quoted_fields_end_at_the_first_unescaped_quote() {
        assert_eq!(quoted_end(br#"ab\"c" x"#, 0), Some((5, true)));
        assert_eq!(quoted_end(br#"ab\\" x"#, 0), Some((4, true)));
        assert_eq!(quoted_end(br#"abc"#, 0), None);
        assert_eq!(quoted_end(br#"ab\"#, 0), None);
        assert_eq!(unescape(br#"a\"b\\c\x22"#), r#"a"b\c\x22"#);
    }
}
