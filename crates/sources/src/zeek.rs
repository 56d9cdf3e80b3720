//! Zeek `conn.log`, as TSV (with its `#separator` / `#fields` header) or as JSON lines
//! (`LogAscii::use_json=T`).
//!
//! ```text
//! #separator \x09
//! #fields ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service ... orig_bytes resp_bytes
//! 1736919123.100000 CAbc 203.0.113.9 51234 192.0.2.10 443 tcp ssl ... 517 4130
//! {"ts":1736919123.1,"uid":"CAbc","id.orig_h":"203.0.113.9","id.orig_p":51234,"id.resp_h":"192.0.2.10","id.resp_p":443,"proto":"tcp","service":"ssl","orig_bytes":517,"resp_bytes":4130}
//! ```
//!
//! One record per connection: `ip` the originator (`id.orig_h`), `dest_ip` the responder
//! (`id.resp_h`), `timestamp` the start (`ts`: Unix seconds, or ISO 8601 in JSON logs written
//! with `LogAscii::json_timestamps=JSON::TS_ISO8601`), `protocol` the service Zeek recognised
//! (first of a list, upper case: `SSL`, `HTTP`, `DNS`) or else the transport (`TCP`, `UDP`,
//! `ICMP`), `bytes` the payload both ways (`orig_bytes + resp_bytes`, absent when both are
//! unset). `#` lines are header lines, read (`#separator`, `#unset_field`, `#fields`) and
//! skipped. Without a `#fields` line the columns are conn.log's standard order.

use std::borrow::Cow;

use serde_json::Value;

use crate::clf::parse_ip;
use crate::record::{LineError, LineParser, RecordRef};
use crate::time::{parse_iso8601, unix_number};

/// conn.log's columns, in order, when no `#fields` line says otherwise.
const DEFAULT_FIELDS: [&str; 11] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
];

/// Column indexes of the fields read.
#[derive(Debug, Clone, Copy, Default)]
struct Columns {
    ts: Option<usize>,
    orig_h: Option<usize>,
    resp_h: Option<usize>,
    proto: Option<usize>,
    service: Option<usize>,
    orig_bytes: Option<usize>,
    resp_bytes: Option<usize>,
}

impl Columns {
    fn from_names<'a>(names: impl Iterator<Item = &'a [u8]>) -> Columns {
        let mut c = Columns::default();
        for (i, name) in names.enumerate() {
            let slot = match name {
                b"ts" => &mut c.ts,
                b"id.orig_h" => &mut c.orig_h,
                b"id.resp_h" => &mut c.resp_h,
                b"proto" => &mut c.proto,
                b"service" => &mut c.service,
                b"orig_bytes" => &mut c.orig_bytes,
                b"resp_bytes" => &mut c.resp_bytes,
                _ => continue,
            };
            *slot = Some(i);
        }
        c
    }
}

/// The Zeek conn.log parser (TSV and JSON lines).
#[derive(Debug, Clone)]
pub struct ZeekParser {
    separator: u8,
    unset: Vec<u8>,
    columns: Columns,
}

impl Default for ZeekParser {
    fn default() -> Self {
        ZeekParser {
            separator: b'\t',
            unset: b"-".to_vec(),
            columns: Columns::from_names(DEFAULT_FIELDS.iter().map(|s| s.as_bytes())),
        }
    }
}

/// `\x09` and other `\xHH` escapes of the `#separator` line.
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(hex) = b.get(i + 2..i + 4)
            && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(hex), 16)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// `ssl,http` → `SSL`; `tcp` → `TCP`.
fn protocol(service: Option<&str>, proto: Option<&str>) -> Option<Cow<'static, str>> {
    let pick = service
        .and_then(|s| s.split(',').next())
        .filter(|s| !s.is_empty())
        .or(proto.filter(|s| !s.is_empty()))?;
    Some(Cow::Owned(pick.to_ascii_uppercase()))
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl ZeekParser {
    fn parse_tsv<'a>(&self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        let fields: Vec<&[u8]> = text.split(|&c| c == self.separator).collect();
        let get = |col: Option<usize>| {
            col.and_then(|i| fields.get(i).copied())
                .filter(|v| *v != self.unset.as_slice() && *v != b"(empty)" && !v.is_empty())
        };
        let c = self.columns;
        let ts = get(c.ts).ok_or_else(|| LineError::new(line, "timestamp: no ts"))?;
        let timestamp = std::str::from_utf8(ts)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(unix_number)
            .ok_or_else(|| {
                LineError::new(
                    line,
                    format!("timestamp: {:?} is not Unix seconds", crate::text(ts)),
                )
            })?;
        let ip = get(c.orig_h).ok_or_else(|| LineError::new(line, "ip: no id.orig_h"))?;
        let ip = parse_ip(ip).ok_or_else(|| {
            LineError::new(
                line,
                format!("ip: {:?} is not an IP address", crate::text(ip)),
            )
        })?;
        let number = |col| get(col).and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        let text_of = |col| get(col).and_then(|v| std::str::from_utf8(v).ok());
        let mut rec = RecordRef::new(line, ip, timestamp);
        rec.dest_ip = get(c.resp_h).and_then(parse_ip);
        rec.protocol = protocol(text_of(c.service), text_of(c.proto));
        rec.bytes = sum(number(c.orig_bytes), number(c.resp_bytes));
        Ok(rec)
    }

    fn parse_json<'a>(line: u64, text: &[u8]) -> Result<RecordRef<'a>, LineError> {
        let v: Value = serde_json::from_slice(text)
            .map_err(|e| LineError::new(line, format!("not JSON: {e}")))?;
        let timestamp = match v.get("ts") {
            Some(Value::Number(n)) => n.as_f64().and_then(unix_number),
            Some(Value::String(s)) => parse_iso8601(s.as_bytes()).and_then(unix_number),
            _ => None,
        }
        .ok_or_else(|| LineError::new(line, "timestamp: no usable ts"))?;
        let ip = v
            .get("id.orig_h")
            .and_then(Value::as_str)
            .ok_or_else(|| LineError::new(line, "ip: no id.orig_h"))?;
        let ip = parse_ip(ip.as_bytes())
            .ok_or_else(|| LineError::new(line, format!("ip: {ip:?} is not an IP address")))?;
        let mut rec = RecordRef::new(line, ip, timestamp);
        rec.dest_ip = v
            .get("id.resp_h")
            .and_then(Value::as_str)
            .and_then(|s| parse_ip(s.as_bytes()));
        rec.protocol = protocol(
            v.get("service").and_then(Value::as_str),
            v.get("proto").and_then(Value::as_str),
        );
        rec.bytes = sum(
            v.get("orig_bytes").and_then(Value::as_u64),
            v.get("resp_bytes").and_then(Value::as_u64),
        );
        Ok(rec)
    }
}

impl LineParser for ZeekParser {
    fn skip(&mut self, _line: u64, text: &[u8]) -> bool {
        let Some(header) = text.strip_prefix(b"#") else {
            return false;
        };
        if let Some(sep) = header.strip_prefix(b"separator ") {
            if let [c] = unescape(sep.trim_ascii())[..] {
                self.separator = c;
            }
        } else if let Some(unset) = header.strip_prefix(b"unset_field") {
            self.unset = unset.get(1..).unwrap_or_default().to_vec();
        } else if let Some(fields) = header.strip_prefix(b"fields") {
            let names = fields.get(1..).unwrap_or_default();
            self.columns = Columns::from_names(names.split(|&c| c == self.separator));
        }
        true
    }

    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        if text.trim_ascii_start().starts_with(b"{") {
            Self::parse_json(line, text)
        } else {
            self.parse_tsv(line, text)
        }
    }
}

/// True when `line` is a Zeek header line or a Zeek JSON record, for detection.
pub fn shape(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.starts_with(b"#separator")
        || line.starts_with(b"#fields")
        || (line.starts_with(b"{") && memchr::memmem::find(line, b"\"id.orig_h\"").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_1970_are_errors_not_negative_timestamps() {
        let line = br#"{"ts":"1012-01-15T05:32:04Z","id.orig_h":"203.0.113.9"}"#;
        let e = ZeekParser::default().parse(4, line).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.reason.starts_with("timestamp"), "{e}");
    }

    #[test]
    fn separator_escapes_are_decoded() {
        assert_eq!(unescape(b"\\x09"), b"\t");
        assert_eq!(unescape(b"\\x2c"), b",");
        assert_eq!(unescape(b"\\xZZ"), b"\\xZZ");
    }

    #[test]
    fn services_win_over_transports_and_bytes_add_up() {
        assert_eq!(
            protocol(Some("ssl,http"), Some("tcp")).as_deref(),
            Some("SSL")
        );
        assert_eq!(protocol(None, Some("udp")).as_deref(), Some("UDP"));
        assert_eq!(sum(Some(1), None), Some(1));
        assert_eq!(sum(None, None), None);
    }
}
