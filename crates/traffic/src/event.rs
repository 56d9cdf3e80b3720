//! The traffic event ("package") and the rules that turn loosely written values into one.
//!
//! Both the CSV reader and the server's JSON ingest accept the same spellings of each field
//! (unix seconds or milliseconds or RFC 3339 for the time, `0`/`1`/`0.0`/`1.0`/`true`/`false`
//! for the flag), so those rules live here, once.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime};
use serde::Serialize;

/// One hit on the server: where it came from, when, and whether the anomaly detector flagged it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Event {
    /// Source address, IPv4 or IPv6.
    pub ip: IpAddr,
    /// Degrees north, in `-90..=90`.
    pub latitude: f64,
    /// Degrees east, in `-180..=180`.
    pub longitude: f64,
    /// Unix time in seconds (fractional seconds allowed), as the data says it happened.
    pub timestamp: f64,
    /// Flagged by the anomaly detector.
    pub suspicious: bool,
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
        }
    }
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
    fn ips_of_both_families_parse_and_junk_does_not() {
        assert!(parse_ip("173.198.105.40").unwrap().is_ipv4());
        assert!(parse_ip(" 2001:db8::1 ").unwrap().is_ipv6());
        assert!(parse_ip("300.1.1.1").is_err());
        assert!(parse_ip("").is_err());
    }
}
