//! tshark exports: `-T fields` with a header line, and `-T ek` (Elasticsearch bulk JSON lines).
//!
//! ```text
//! tshark -r capture.pcapng -T fields -E header=y -E separator=, \
//!     -e frame.time_epoch -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e frame.len -e _ws.col.Protocol
//! tshark -r capture.pcapng -T ek
//! ```
//!
//! One record per IP packet: `ip` the source (`ip.src`, else `ipv6.src`), `dest_ip` the
//! destination, `timestamp` `frame.time_epoch`, `bytes` `frame.len`, `protocol` the Protocol
//! column (`_ws.col.Protocol`) or else the highest layer of `frame.protocols` (`UDP`, `HTTP`).
//! Packets without an IP source (ARP, ...) are not records and are skipped silently, as are
//! ek's `{"index": ...}` lines. The fields export needs its header line (`-E header=y`) and
//! reads `,`, tab (the default) or `;` separators and `-E quote=d`/`s` quotes; other columns
//! are ignored.

use std::borrow::Cow;

use serde_json::Value;

use crate::clf::parse_ip;
use crate::record::{LineError, LineParser, RecordRef};
use crate::time::unix_number;

/// Layers of `frame.protocols` that are payload, not a protocol worth naming.
const NOT_PROTOCOLS: [&str; 5] = [
    "data",
    "media",
    "text",
    "data-text-lines",
    "urlencoded-form",
];

/// The highest named layer of `eth:ethertype:ip:tcp:http` → `HTTP`.
pub(crate) fn top_protocol(protocols: &str) -> Option<Cow<'static, str>> {
    protocols
        .rsplit(':')
        .find(|p| !p.is_empty() && !NOT_PROTOCOLS.contains(p))
        .map(|p| Cow::Owned(p.to_ascii_uppercase()))
}

fn epoch(line: u64, text: &str) -> Result<f64, LineError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(unix_number)
        .ok_or_else(|| LineError::new(line, format!("timestamp: {text:?} is not Unix seconds")))
}

/// Column indexes of a fields export.
#[derive(Debug, Clone, Copy, Default)]
struct Columns {
    time: Option<usize>,
    src: Option<usize>,
    dst: Option<usize>,
    src6: Option<usize>,
    dst6: Option<usize>,
    len: Option<usize>,
    protocol: Option<usize>,
    protocols: Option<usize>,
}

/// `tshark -T fields -E header=y` exports.
#[derive(Debug, Clone, Default)]
pub struct TsharkFieldsParser {
    separator: u8,
    columns: Option<Columns>,
}

/// True when `line` is a header of a fields export (it names `frame.time_epoch` and a source).
pub fn fields_header(line: &[u8]) -> bool {
    let has = |name: &[u8]| memchr::memmem::find(line, name).is_some();
    has(b"frame.time_epoch") && (has(b"ip.src") || has(b"ipv6.src"))
}

fn unquote(field: &[u8]) -> &[u8] {
    match field {
        [b'"', inner @ .., b'"'] | [b'\'', inner @ .., b'\''] => inner,
        other => other,
    }
}

impl TsharkFieldsParser {
    fn read_header(&mut self, line: &[u8]) {
        self.separator = [b'\t', b',', b';']
            .into_iter()
            .find(|s| line.contains(s))
            .unwrap_or(b'\t');
        let mut c = Columns::default();
        for (i, name) in line.split(|&b| b == self.separator).enumerate() {
            let slot = match unquote(name.trim_ascii()) {
                b"frame.time_epoch" => &mut c.time,
                b"ip.src" => &mut c.src,
                b"ip.dst" => &mut c.dst,
                b"ipv6.src" => &mut c.src6,
                b"ipv6.dst" => &mut c.dst6,
                b"frame.len" => &mut c.len,
                b"_ws.col.Protocol" | b"_ws.col.protocol" => &mut c.protocol,
                b"frame.protocols" => &mut c.protocols,
                _ => continue,
            };
            *slot = Some(i);
        }
        self.columns = Some(c);
    }

    fn fields<'a>(&self, text: &'a [u8]) -> Vec<&'a [u8]> {
        text.split(|&b| b == self.separator).map(unquote).collect()
    }
}

impl LineParser for TsharkFieldsParser {
    fn skip(&mut self, _line: u64, text: &[u8]) -> bool {
        if self.columns.is_none() && fields_header(text) {
            self.read_header(text);
            return true;
        }
        let Some(c) = self.columns else {
            return false;
        };
        let f = self.fields(text);
        let empty = |i: Option<usize>| i.and_then(|i| f.get(i)).is_none_or(|v| v.is_empty());
        // Not an IP packet (ARP, ...): both sources empty, the rest of the line there.
        f.len() > 1 && empty(c.src) && empty(c.src6)
    }

    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        let c = self.columns.ok_or_else(|| {
            LineError::new(
                line,
                "no header line naming frame.time_epoch and ip.src (tshark -E header=y)",
            )
        })?;
        let f = self.fields(text);
        let get = |i: Option<usize>| {
            i.and_then(|i| f.get(i).copied())
                .filter(|v| !v.is_empty())
                .map(crate::text)
        };
        let time = get(c.time).ok_or_else(|| LineError::new(line, "timestamp: empty"))?;
        let timestamp = epoch(line, &time)?;
        let src = get(c.src)
            .or_else(|| get(c.src6))
            .ok_or_else(|| LineError::new(line, "ip: no ip.src or ipv6.src"))?;
        // `-E aggregator`: tunnelled packets list several addresses; the outer one is first.
        let first = |s: &str| s.split(',').next().unwrap_or_default().to_owned();
        let ip = parse_ip(first(&src).as_bytes())
            .ok_or_else(|| LineError::new(line, format!("ip: {src:?} is not an IP address")))?;
        let mut rec = RecordRef::new(line, ip, timestamp);
        rec.dest_ip = get(c.dst)
            .or_else(|| get(c.dst6))
            .and_then(|d| parse_ip(first(&d).as_bytes()));
        rec.bytes = get(c.len).and_then(|l| l.trim().parse().ok());
        rec.protocol = get(c.protocol)
            .map(|p| Cow::Owned(p.into_owned()))
            .or_else(|| get(c.protocols).and_then(|p| top_protocol(&p)));
        Ok(rec)
    }
}

/// One field of a tshark JSON layer: `frame` + `time_epoch` is `frame_frame_time_epoch` (ek,
/// tshark ≥ 3.4), `frame_time_epoch` (older ek) or `frame.time_epoch` (`-T json`); arrays
/// (repeated fields) give their first value.
fn layer_field<'v>(layers: &'v Value, layer: &str, field: &str) -> Option<&'v str> {
    let l = layers.get(layer)?;
    let v = l
        .get(format!("{layer}_{layer}_{field}"))
        .or_else(|| l.get(format!("{layer}_{field}")))
        .or_else(|| l.get(format!("{layer}.{field}")))?;
    match v {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first()?.as_str(),
        _ => None,
    }
}

/// The record of one packet's `layers` object (ek or `-T json`); `Ok(None)`: no IP layer.
pub(crate) fn layers_record<'a>(
    line: u64,
    layers: &Value,
    fallback_time: Option<f64>,
) -> Result<Option<RecordRef<'a>>, LineError> {
    let (src, dst) = match (
        layer_field(layers, "ip", "src"),
        layer_field(layers, "ipv6", "src"),
    ) {
        (Some(s), _) => (s, layer_field(layers, "ip", "dst")),
        (None, Some(s)) => (s, layer_field(layers, "ipv6", "dst")),
        (None, None) => return Ok(None),
    };
    let ip = parse_ip(src.as_bytes())
        .ok_or_else(|| LineError::new(line, format!("ip: {src:?} is not an IP address")))?;
    let timestamp = match layer_field(layers, "frame", "time_epoch") {
        Some(t) => epoch(line, t)?,
        None => {
            fallback_time.ok_or_else(|| LineError::new(line, "timestamp: no frame.time_epoch"))?
        }
    };
    let mut rec = RecordRef::new(line, ip, timestamp);
    rec.dest_ip = dst.and_then(|d| parse_ip(d.as_bytes()));
    rec.bytes = layer_field(layers, "frame", "len").and_then(|l| l.parse().ok());
    rec.protocol = layer_field(layers, "frame", "protocols").and_then(top_protocol);
    Ok(Some(rec))
}

/// `tshark -T ek` exports.
#[derive(Debug, Clone, Default)]
pub struct TsharkEkParser;

impl LineParser for TsharkEkParser {
    fn skip(&mut self, line: u64, text: &[u8]) -> bool {
        let t = text.trim_ascii_start();
        if t.starts_with(b"{\"index\"") {
            return true;
        }
        // A packet without an IP layer is no record (an unreadable line is an error).
        serde_json::from_slice::<Value>(t)
            .ok()
            .and_then(|v| v.get("layers").map(|l| layers_record(line, l, None)))
            .is_some_and(|r| matches!(r, Ok(None)))
    }

    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        let v: Value = serde_json::from_slice(text)
            .map_err(|e| LineError::new(line, format!("not JSON: {e}")))?;
        let layers = v
            .get("layers")
            .ok_or_else(|| LineError::new(line, "no layers (not a tshark -T ek packet)"))?;
        // ek's own `timestamp` is milliseconds, as a string.
        let fallback = v
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<f64>().ok())
            .map(|ms| ms / 1000.0)
            .filter(|t| t.is_finite() && *t >= 0.0);
        layers_record(line, layers, fallback)?
            .ok_or_else(|| LineError::new(line, "ip: no IP layer"))
    }
}

/// True when `line` is a line of an ek export, for detection.
pub fn ek_shape(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.starts_with(b"{\"index\":{\"_index\":\"packets")
        || (line.starts_with(b"{\"timestamp\"")
            && memchr::memmem::find(line, b"\"layers\"").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_protocol_skips_payload_layers() {
        assert_eq!(
            top_protocol("eth:ethertype:ip:udp:data").as_deref(),
            Some("UDP")
        );
        assert_eq!(
            top_protocol("eth:ethertype:ip:tcp:http").as_deref(),
            Some("HTTP")
        );
        assert_eq!(top_protocol(""), None);
    }

    #[test]
    fn a_fields_line_without_its_header_names_the_problem() {
        let mut p = TsharkFieldsParser::default();
        assert!(!p.skip(1, b"1.5,1.2.3.4"));
        let e = p.parse(1, b"1.5,1.2.3.4").unwrap_err();
        assert!(e.reason.contains("header"), "{e}");
    }

    #[test]
    fn tab_separated_quoted_exports_are_read() {
        let mut p = TsharkFieldsParser::default();
        assert!(p.skip(1, b"\"frame.time_epoch\"\t\"ip.src\"\t\"frame.len\""));
        let r = p
            .parse(2, b"\"1736919123.5\"\t\"203.0.113.9\"\t\"60\"")
            .unwrap();
        assert_eq!(
            (r.ip.to_string(), r.timestamp, r.bytes),
            ("203.0.113.9".into(), 1_736_919_123.5, Some(60))
        );
        assert!(
            p.skip(3, b"\"1736919123.5\"\t\"\"\t\"42\""),
            "ARP: no IP source"
        );
    }
}
