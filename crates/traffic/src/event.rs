//! The traffic event ("package") and the rules that turn loosely written values into one.
//!
//! Both the CSV reader and the server's JSON ingest accept the same spellings of each field
//! (unix seconds or milliseconds or RFC 3339 for the time, `0`/`1`/`0.0`/`1.0`/`true`/`false`
//! for the flag), so those rules live here, once; so does the table of accepted names of
//! each field ([`field_named`]), which the CSV header and the JSON keys both go through.
//!
//! Besides the address and the time, every field is optional: coordinates (both or
//! neither; without them the server places the event by its IP), and the request's
//! `bytes`, `protocol`, `status`, `method`, `path` and `dest_ip`, and the packet fields
//! `src_port`, `dest_port` and `packets` (a live capture's flows). Text fields are bounded:
//! a longer value is cut at the limit (on a character boundary), never refused, so a hit is
//! not lost for a long URL and memory per event stays bounded; see [`MAX_PATH_BYTES`] and
//! [`MAX_TOKEN_BYTES`].

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime};
use serde::Serialize;

/// Longest `path` kept, in bytes; a longer one is cut to this (on a character boundary).
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest `protocol` or `method` kept, in bytes; a longer one is cut to this.
pub const MAX_TOKEN_BYTES: usize = 32;

/// One hit on the server: where it came from, when, whether the anomaly detector flagged it,
/// and what the source says about the request when it says anything.
///
/// Serialized (by the sender) with absent optional fields left out, so an event with
/// coordinates and nothing else is the same JSON as before these fields existed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Source address, IPv4 or IPv6.
    pub ip: IpAddr,
    /// Degrees north, in `-90..=90`; present exactly when `longitude` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Degrees east, in `-180..=180`; present exactly when `latitude` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Unix time in seconds (fractional seconds allowed), as the data says it happened.
    pub timestamp: f64,
    /// Flagged by the anomaly detector.
    pub suspicious: bool,
    /// Bytes transferred (response size, frame length).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Protocol, e.g. `TCP`, `UDP`, `HTTP`, `DNS` (at most [`MAX_TOKEN_BYTES`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// HTTP status, `100..=599`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// HTTP method, e.g. `GET` (at most [`MAX_TOKEN_BYTES`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request path (at most [`MAX_PATH_BYTES`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Destination address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<IpAddr>,
    /// Source (client) port, `0..=65535`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination (server) port, `0..=65535`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// Packets this event stands for (a flow's packet count; absent: one request or packet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
}

impl Event {
    /// An event with only the required fields: no coordinates, no request details.
    pub fn new(ip: IpAddr, timestamp: f64, suspicious: bool) -> Self {
        Self {
            ip,
            latitude: None,
            longitude: None,
            timestamp,
            suspicious,
            bytes: None,
            protocol: None,
            status: None,
            method: None,
            path: None,
            dest_ip: None,
            src_port: None,
            dest_port: None,
            packets: None,
        }
    }

    /// An event at the given coordinates, without request details.
    pub fn at(ip: IpAddr, latitude: f64, longitude: f64, timestamp: f64, suspicious: bool) -> Self {
        Self {
            latitude: Some(latitude),
            longitude: Some(longitude),
            ..Self::new(ip, timestamp, suspicious)
        }
    }

    /// `(latitude, longitude)` when the event carries them.
    pub fn coordinates(&self) -> Option<(f64, f64)> {
        self.latitude.zip(self.longitude)
    }
}

/// The fields of an [`Event`], used to say which one is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// [`Event::ip`]
    Ip,
    /// [`Event::latitude`]
    Latitude,
    /// [`Event::longitude`]
    Longitude,
    /// [`Event::timestamp`]
    Timestamp,
    /// [`Event::suspicious`]
    Suspicious,
    /// [`Event::bytes`]
    Bytes,
    /// [`Event::protocol`]
    Protocol,
    /// [`Event::status`]
    Status,
    /// [`Event::method`]
    Method,
    /// [`Event::path`]
    Path,
    /// [`Event::dest_ip`]
    #[serde(rename = "dest_ip")]
    DestIp,
    /// [`Event::src_port`]
    #[serde(rename = "src_port")]
    SrcPort,
    /// [`Event::dest_port`]
    #[serde(rename = "dest_port")]
    DestPort,
    /// [`Event::packets`]
    Packets,
}

impl Field {
    /// The field's name as it appears on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Field::Ip => "ip",
            Field::Latitude => "latitude",
            Field::Longitude => "longitude",
            Field::Timestamp => "timestamp",
            Field::Suspicious => "suspicious",
            Field::Bytes => "bytes",
            Field::Protocol => "protocol",
            Field::Status => "status",
            Field::Method => "method",
            Field::Path => "path",
            Field::DestIp => "dest_ip",
            Field::SrcPort => "src_port",
            Field::DestPort => "dest_port",
            Field::Packets => "packets",
        }
    }
}

/// The names accepted for each field, normalised (see [`normalize`]). One table for the CSV
/// header and the JSON keys.
pub const ALIASES: [(Field, &[&str]); 14] = [
    (
        Field::Ip,
        &[
            "ip",
            "ip_address",
            "ipaddress",
            "ip_addr",
            "address",
            "source_ip",
            "src_ip",
            "source_address",
            "src_addr",
            "client_ip",
            "remote_addr",
        ],
    ),
    (Field::Latitude, &["lat", "latitude"]),
    (Field::Longitude, &["lon", "lng", "long", "longitude"]),
    (
        Field::Timestamp,
        &[
            "timestamp",
            "time_stamp",
            "time",
            "ts",
            "datetime",
            "date_time",
            "unix_time",
        ],
    ),
    (
        Field::Suspicious,
        &[
            "suspicious",
            "is_suspicious",
            "flagged",
            "is_flagged",
            "anomaly",
            "is_anomaly",
        ],
    ),
    (
        Field::Bytes,
        &[
            "bytes",
            "length",
            "size",
            "bytes_sent",
            "body_bytes_sent",
            "response_size",
            "len",
        ],
    ),
    (Field::Protocol, &["protocol", "proto"]),
    (
        Field::Status,
        &[
            "status",
            "status_code",
            "http_status",
            "response_code",
            "response_status",
        ],
    ),
    (
        Field::Method,
        &["method", "http_method", "request_method", "verb"],
    ),
    (
        Field::Path,
        &[
            "path",
            "url",
            "uri",
            "request_uri",
            "request_path",
            "url_path",
        ],
    ),
    (
        Field::DestIp,
        &[
            "dest_ip",
            "destination_ip",
            "dst_ip",
            "dest_address",
            "destination_address",
            "dst_addr",
            "server_ip",
        ],
    ),
    (
        Field::SrcPort,
        &["src_port", "source_port", "sport", "client_port"],
    ),
    (
        Field::DestPort,
        &[
            "dest_port",
            "destination_port",
            "dst_port",
            "dport",
            "server_port",
        ],
    ),
    (Field::Packets, &["packets", "packet_count", "pkts"]),
];

/// Lower case, trimmed, with runs of spaces, underscores and hyphens turned into one `_`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name
        .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
        .filter(|part| !part.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&part.to_lowercase());
    }
    out
}

/// The field a name (CSV header cell or JSON key) stands for, if any: matched ignoring case,
/// with spaces, underscores and hyphens interchangeable.
pub fn field_named(name: &str) -> Option<Field> {
    let find = |name: &str| {
        ALIASES
            .iter()
            .find(|(_, names)| names.contains(&name))
            .map(|&(field, _)| field)
    };
    // Fastest path: a field's own name (what the sender and most clients write), matched
    // without scanning the table; then names already in canonical form: no allocation.
    canonical_field(name)
        .or_else(|| find(name))
        .or_else(|| find(&normalize(name)))
}

/// The field whose [`Field::name`] is `name`.
fn canonical_field(name: &str) -> Option<Field> {
    Some(match name {
        "ip" => Field::Ip,
        "latitude" => Field::Latitude,
        "longitude" => Field::Longitude,
        "timestamp" => Field::Timestamp,
        "suspicious" => Field::Suspicious,
        "bytes" => Field::Bytes,
        "protocol" => Field::Protocol,
        "status" => Field::Status,
        "method" => Field::Method,
        "path" => Field::Path,
        "dest_ip" => Field::DestIp,
        "src_port" => Field::SrcPort,
        "dest_port" => Field::DestPort,
        "packets" => Field::Packets,
        _ => return None,
    })
}

/// The accepted names of `field`, for messages.
pub fn names_of(field: Field) -> String {
    ALIASES
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, names)| names.join(", "))
        .unwrap_or_default()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field value that cannot be used, with the reason in words a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Which field.
    pub field: Field,
    /// Why, e.g. `"91.5 is out of range -90..=90"`.
    pub reason: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: Field, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Earliest accepted time: 1990-01-01. Anything before is a unit mix-up, not traffic.
const MIN_UNIX_SECONDS: f64 = 631_152_000.0;
/// Latest accepted time: 2200-01-01.
const MAX_UNIX_SECONDS: f64 = 7_258_118_400.0;

/// Parses an IP address written as text (surrounding whitespace ignored).
pub fn parse_ip(text: &str) -> Result<IpAddr, FieldError> {
    let text = text.trim();
    text.parse().map_err(|_| {
        if text.is_empty() {
            FieldError::new(Field::Ip, "is empty")
        } else {
            FieldError::new(
                Field::Ip,
                format!("{text:?} is not an IPv4 or IPv6 address"),
            )
        }
    })
}

/// Checks a latitude in degrees.
pub fn check_latitude(value: f64) -> Result<f64, FieldError> {
    if value.is_finite() && (-90.0..=90.0).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            Field::Latitude,
            format!("{value} is out of range -90..=90"),
        ))
    }
}

/// Checks a longitude in degrees.
pub fn check_longitude(value: f64) -> Result<f64, FieldError> {
    if value.is_finite() && (-180.0..=180.0).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            Field::Longitude,
            format!("{value} is out of range -180..=180"),
        ))
    }
}

/// Parses a coordinate written as text, then range-checks it.
pub fn parse_coordinate(field: Field, text: &str) -> Result<f64, FieldError> {
    let text = text.trim();
    let value: f64 = text
        .parse()
        .map_err(|_| FieldError::new(field, format!("{text:?} is not a number")))?;
    match field {
        Field::Latitude => check_latitude(value),
        _ => check_longitude(value),
    }
}

/// Turns a numeric unix time into seconds.
///
/// Values too large to be seconds are read as milliseconds (above 10^11, i.e. after the year
/// 5138 in seconds) or microseconds (above 10^14). The result must fall in 1990..2200.
pub fn timestamp_from_number(value: f64) -> Result<f64, FieldError> {
    if !value.is_finite() {
        return Err(FieldError::new(
            Field::Timestamp,
            format!("{value} is not a finite number"),
        ));
    }
    let seconds = if value.abs() >= 1e14 {
        value / 1e6
    } else if value.abs() >= 1e11 {
        value / 1e3
    } else {
        value
    };
    if (MIN_UNIX_SECONDS..=MAX_UNIX_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(FieldError::new(
            Field::Timestamp,
            format!("{value} is not a unix time between 1990 and 2200 (seconds or milliseconds)"),
        ))
    }
}

/// Parses a time written as text: a unix number (seconds, milliseconds), RFC 3339
/// (`2025-01-15T05:32:00Z`, `...+01:00`), or `YYYY-MM-DD HH:MM:SS[.fff]` read as UTC.
pub fn parse_timestamp(text: &str) -> Result<f64, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FieldError::new(Field::Timestamp, "is empty"));
    }
    if let Ok(number) = text.parse::<f64>() {
        return timestamp_from_number(number);
    }
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .or_else(|_| {
            // RFC 3339's lenient cousin: a space for the `T`, and no offset meaning UTC.
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
                .map(|t| t.and_utc())
        })
        .map_err(|_| {
            FieldError::new(
                Field::Timestamp,
                format!(
                    "{text:?} is neither a unix time nor a date-time like 2025-01-15T05:32:00Z"
                ),
            )
        })?;
    let seconds = parsed.timestamp() as f64 + f64::from(parsed.timestamp_subsec_nanos()) / 1e9;
    timestamp_from_number(seconds)
}

/// The both-or-neither rule for coordinates: `Some` pair, `None`, or an error naming the
/// missing one.
pub fn coordinates(
    latitude: Option<f64>,
    longitude: Option<f64>,
) -> Result<Option<(f64, f64)>, FieldError> {
    match (latitude, longitude) {
        (Some(latitude), Some(longitude)) => Ok(Some((latitude, longitude))),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(FieldError::new(
            Field::Latitude,
            "is missing while longitude is given; give both or neither",
        )),
        (Some(_), None) => Err(FieldError::new(
            Field::Longitude,
            "is missing while latitude is given; give both or neither",
        )),
    }
}

/// Reads a byte count from a number: a whole number `>= 0`.
pub fn bytes_from_number(value: f64) -> Result<u64, FieldError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 1.8e19 {
        Ok(value as u64)
    } else {
        Err(FieldError::new(
            Field::Bytes,
            format!("{value} is not a whole number of bytes"),
        ))
    }
}

/// Parses a byte count written as text; empty or `-` (access logs' "none") means absent.
pub fn parse_bytes(text: &str) -> Result<Option<u64>, FieldError> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    if let Ok(n) = text.parse::<u64>() {
        return Ok(Some(n));
    }
    match text.parse::<f64>() {
        Ok(number) => bytes_from_number(number).map(Some),
        Err(_) => Err(FieldError::new(
            Field::Bytes,
            format!("{text:?} is not a whole number of bytes"),
        )),
    }
}

/// Checks an HTTP status given as a number: a whole number in `100..=599`.
pub fn status_from_number(value: f64) -> Result<u16, FieldError> {
    if value.fract() == 0.0 && (100.0..=599.0).contains(&value) {
        Ok(value as u16)
    } else {
        Err(FieldError::new(
            Field::Status,
            format!("{value} is not an HTTP status 100..=599"),
        ))
    }
}

/// Parses an HTTP status written as text; empty or `-` means absent.
pub fn parse_status(text: &str) -> Result<Option<u16>, FieldError> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(number) => status_from_number(number).map(Some),
        Err(_) => Err(FieldError::new(
            Field::Status,
            format!("{text:?} is not an HTTP status 100..=599"),
        )),
    }
}

/// Parses a destination address; empty or `-` means absent.
pub fn parse_dest_ip(text: &str) -> Result<Option<IpAddr>, FieldError> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        FieldError::new(
            Field::DestIp,
            format!("{text:?} is not an IPv4 or IPv6 address"),
        )
    })
}

/// Checks a port (`src_port`, `dest_port`) given as a number: a whole number in `0..=65535`.
pub fn port_from_number(field: Field, value: f64) -> Result<u16, FieldError> {
    if value.fract() == 0.0 && (0.0..=65535.0).contains(&value) {
        Ok(value as u16)
    } else {
        Err(FieldError::new(
            field,
            format!("{value} is not a port 0..=65535"),
        ))
    }
}

/// Parses a port written as text; empty or `-` means absent.
pub fn parse_port(field: Field, text: &str) -> Result<Option<u16>, FieldError> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(number) => port_from_number(field, number).map(Some),
        Err(_) => Err(FieldError::new(
            field,
            format!("{text:?} is not a port 0..=65535"),
        )),
    }
}

/// Reads a packet count from a number: a whole number `>= 1`.
pub fn packets_from_number(value: f64) -> Result<u64, FieldError> {
    if value.is_finite() && value >= 1.0 && value.fract() == 0.0 && value < 1.8e19 {
        Ok(value as u64)
    } else {
        Err(FieldError::new(
            Field::Packets,
            format!("{value} is not a whole number of packets (at least 1)"),
        ))
    }
}

/// Parses a packet count written as text; empty or `-` means absent.
pub fn parse_packets(text: &str) -> Result<Option<u64>, FieldError> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(number) => packets_from_number(number).map(Some),
        Err(_) => Err(FieldError::new(
            Field::Packets,
            format!("{text:?} is not a whole number of packets (at least 1)"),
        )),
    }
}

/// A text field (`protocol`, `method`, `path`) as kept: trimmed, empty or `-` meaning
/// absent, cut to its limit on a character boundary.
pub fn bounded_text(field: Field, text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return None;
    }
    let max = if field == Field::Path {
        MAX_PATH_BYTES
    } else {
        MAX_TOKEN_BYTES
    };
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // A cut can leave whitespace at the end: trimmed too, so a kept value reads back as
    // itself (and so is what the cut leaves: `-` alone means absent).
    let kept = text[..end].trim_end();
    (kept != "-").then(|| kept.to_owned())
}

/// Reads the suspicious flag from a number: only 0 and 1 are allowed.
pub fn suspicious_from_number(value: f64) -> Result<bool, FieldError> {
    if value == 0.0 {
        Ok(false)
    } else if value == 1.0 {
        Ok(true)
    } else {
        Err(FieldError::new(
            Field::Suspicious,
            format!("{value} is not 0 or 1"),
        ))
    }
}

/// Parses the suspicious flag written as text: `0`, `1`, `0.0`, `1.0`, `true`, `false`
/// (any case). An empty cell means not flagged.
pub fn parse_suspicious(text: &str) -> Result<bool, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(false);
    }
    if text.eq_ignore_ascii_case("true") {
        return Ok(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Ok(false);
    }
    match text.parse::<f64>() {
        Ok(number) => suspicious_from_number(number),
        Err(_) => Err(FieldError::new(
            Field::Suspicious,
            format!("{text:?} is not one of 0, 1, 0.0, 1.0, true, false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortcut_for_field_names_agrees_with_the_table() {
        for (field, names) in ALIASES {
            assert_eq!(canonical_field(field.name()), Some(field));
            // The table lists each field's own name under that field, and first there.
            let by_table = ALIASES
                .iter()
                .find(|(_, names)| names.contains(&field.name()))
                .map(|&(f, _)| f);
            assert_eq!(by_table, Some(field), "{field}");
            for name in names {
                let shortcut = canonical_field(name);
                assert!(shortcut.is_none() || shortcut == Some(field), "{name}");
            }
        }
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_and_microseconds_agree() {
        let want = 1_736_919_120.0;
        assert_eq!(parse_timestamp("1736919120").unwrap(), want);
        assert_eq!(parse_timestamp("1736919120.0").unwrap(), want);
        assert_eq!(parse_timestamp("1736919120000").unwrap(), want);
        assert_eq!(parse_timestamp("1736919120000000").unwrap(), want);
        assert_eq!(parse_timestamp(" 1736919120.25 ").unwrap(), want + 0.25);
    }

    #[test]
    fn timestamps_as_date_time_text_are_utc() {
        let want = 1_736_919_120.0; // 2025-01-15T05:32:00Z
        assert_eq!(parse_timestamp("2025-01-15T05:32:00Z").unwrap(), want);
        assert_eq!(parse_timestamp("2025-01-15T06:32:00+01:00").unwrap(), want);
        assert_eq!(parse_timestamp("2025-01-15 05:32:00").unwrap(), want);
        assert_eq!(
            parse_timestamp("2025-01-15T05:32:00.5").unwrap(),
            want + 0.5
        );
    }

    #[test]
    fn mangled_or_implausible_timestamps_are_refused_with_a_reason() {
        for bad in [
            "",
            "17369x9120",
            "yesterday",
            "12",
            "-1736919120",
            "NaN",
            "inf",
        ] {
            let err = parse_timestamp(bad).unwrap_err();
            assert_eq!(err.field, Field::Timestamp, "{bad:?}");
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn suspicious_flag_spellings() {
        for (text, want) in [
            ("0", false),
            ("1", true),
            ("0.0", false),
            ("1.0", true),
            ("true", true),
            ("FALSE", false),
            ("", false),
        ] {
            assert_eq!(parse_suspicious(text).unwrap(), want, "{text:?}");
        }
        assert!(parse_suspicious("0.5").is_err());
        assert!(parse_suspicious("yes please").is_err());
    }

    #[test]
    fn coordinates_out_of_range_are_refused() {
        assert_eq!(check_latitude(90.0).unwrap(), 90.0);
        assert!(check_latitude(90.01).is_err());
        assert!(check_latitude(f64::NAN).is_err());
        assert!(check_longitude(-180.5).is_err());
        let err = parse_coordinate(Field::Longitude, "east").unwrap_err();
        assert_eq!(err.field, Field::Longitude);
    }

    #[test]
    fn every_alias_names_its_field_whatever_the_case_and_separators() {
        assert_eq!(field_named("ip"), Some(Field::Ip));
        assert_eq!(field_named("ip address"), Some(Field::Ip));
        assert_eq!(field_named("Source-IP"), Some(Field::Ip));
        assert_eq!(field_named("Latitude"), Some(Field::Latitude));
        assert_eq!(field_named("lng"), Some(Field::Longitude));
        assert_eq!(field_named("Timestamp"), Some(Field::Timestamp));
        assert_eq!(field_named("bytes_sent"), Some(Field::Bytes));
        assert_eq!(field_named("Length"), Some(Field::Bytes));
        assert_eq!(field_named("status code"), Some(Field::Status));
        assert_eq!(field_named("dst_ip"), Some(Field::DestIp));
        assert_eq!(field_named("info"), None);
        for (field, names) in ALIASES {
            for name in names {
                assert_eq!(field_named(name), Some(field), "{name}");
            }
        }
    }

    #[test]
    fn coordinates_are_both_or_neither() {
        assert_eq!(coordinates(Some(1.0), Some(2.0)).unwrap(), Some((1.0, 2.0)));
        assert_eq!(coordinates(None, None).unwrap(), None);
        let err = coordinates(None, Some(2.0)).unwrap_err();
        assert_eq!(err.field, Field::Latitude);
        assert!(err.reason.contains("both or neither"), "{}", err.reason);
        assert_eq!(
            coordinates(Some(1.0), None).unwrap_err().field,
            Field::Longitude
        );
    }

    #[test]
    fn optional_request_fields_parse_and_dash_or_empty_means_absent() {
        assert_eq!(parse_bytes("512").unwrap(), Some(512));
        assert_eq!(parse_bytes("512.0").unwrap(), Some(512));
        assert_eq!(parse_bytes("-").unwrap(), None);
        assert_eq!(parse_bytes("").unwrap(), None);
        assert_eq!(parse_bytes("-3").unwrap_err().field, Field::Bytes);
        assert_eq!(parse_bytes("1.5").unwrap_err().field, Field::Bytes);
        assert_eq!(parse_status("404").unwrap(), Some(404));
        assert_eq!(parse_status(" ").unwrap(), None);
        assert_eq!(parse_status("600").unwrap_err().field, Field::Status);
        assert_eq!(parse_status("99").unwrap_err().field, Field::Status);
        assert_eq!(
            parse_dest_ip("10.0.0.1").unwrap(),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(parse_dest_ip("host").unwrap_err().field, Field::DestIp);
        assert_eq!(bounded_text(Field::Method, " GET "), Some("GET".to_owned()));
        assert_eq!(bounded_text(Field::Protocol, "-"), None);
    }

    #[test]
    fn long_text_fields_are_cut_at_their_limit_on_a_character_boundary() {
        let path = format!("/{}", "é".repeat(MAX_PATH_BYTES));
        let kept = bounded_text(Field::Path, &path).unwrap();
        assert!(kept.len() <= MAX_PATH_BYTES && kept.len() >= MAX_PATH_BYTES - 1);
        assert!(path.starts_with(&kept));
        let method = bounded_text(Field::Method, &"X".repeat(1000)).unwrap();
        assert_eq!(method.len(), MAX_TOKEN_BYTES);
    }

    #[test]
    fn a_value_cut_at_its_limit_is_trimmed_again_so_it_reads_back_as_itself() {
        // Found by the ingest_binary fuzzer: cut after 32 bytes, "#" and 31 tabs of 40
        // kept its tabs, and reading the kept value again trimmed them.
        let kept = bounded_text(Field::Protocol, &format!("#{}x", "\t".repeat(39))).unwrap();
        assert_eq!(kept, "#");
        assert_eq!(bounded_text(Field::Protocol, &kept).as_deref(), Some("#"));
        // What is left after the cut may be "-" alone: absent, as it would read back.
        assert_eq!(
            bounded_text(Field::Protocol, &format!("-{}x", "\t".repeat(39))),
            None
        );
    }

    #[test]
    fn absent_optional_fields_are_left_out_of_the_json() {
        let event = Event::at("1.2.3.4".parse().unwrap(), 1.5, 2.5, 1_736_919_120.0, false);
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"ip":"1.2.3.4","latitude":1.5,"longitude":2.5,"timestamp":1736919120.0,"suspicious":false}"#
        );
        let bare = Event::new("1.2.3.4".parse().unwrap(), 1_736_919_120.0, true);
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"ip":"1.2.3.4","timestamp":1736919120.0,"suspicious":true}"#
        );
    }

    #[test]
    fn ips_of_both_families_parse_and_junk_does_not() {
        assert!(parse_ip("173.198.105.40").unwrap().is_ipv4());
        assert!(parse_ip(" 2001:db8::1 ").unwrap().is_ipv6());
        assert!(parse_ip("300.1.1.1").is_err());
        assert!(parse_ip("").is_err());
    }
}
