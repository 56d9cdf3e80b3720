//! sshd failed logins, from auth.log / `journalctl` text or a `journalctl -o json` export.
//!
//! ```text
//! Jan 15 05:32:03 web sshd[1234]: Failed password for root from 203.0.113.9 port 41234 ssh2
//! 2025-01-15T05:32:04.123456+00:00 web sshd[1234]: Invalid user admin from 203.0.113.9 port 41236
//! {"__REALTIME_TIMESTAMP":"1736919124000000","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for invalid user admin from 2001:db8::1 port 22 ssh2"}
//! ```
//!
//! Records: `Failed <method> for [invalid user] <user> from <ip> port <n> ...` and
//! `Invalid user <user> from <ip> [port <n>]`; each one suspicious, protocol `SSH`. An attempt
//! with an unknown user name is logged by OpenSSH as both lines, so it counts twice. Every
//! other line (other programs, sessions opened, accepted keys, ...) is not a record and is
//! skipped silently ([`LineParser::skip`]).
//!
//! Time: the ISO 8601 prefix of rsyslog's high-precision format and `journalctl -o short-iso`
//! as written; the classic `Jan 15 05:32:03` prefix has no year and no zone: it is taken as
//! UTC in the current year, or the year before when that would be more than a day ahead of
//! the clock (a December line read in January).

use std::borrow::Cow;

use memchr::memmem;
use serde_json::Value;

use crate::clf::parse_ip;
use crate::record::{LineError, LineParser, RecordRef};
use crate::time::{days_from_civil, digits, month, parse_iso8601};

/// The sshd parser; `now` decides the year of year-less syslog dates.
#[derive(Debug, Clone)]
pub struct SshdParser {
    /// Unix seconds "now".
    now: f64,
    year: i64,
}

impl Default for SshdParser {
    fn default() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        SshdParser::with_now(now)
    }
}

impl SshdParser {
    /// A parser that takes `now` (Unix seconds) as the present.
    pub fn with_now(now: f64) -> SshdParser {
        let (year, _, _) = crate::time::civil_from_days((now / 86_400.0).floor() as i64);
        SshdParser { now, year }
    }

    /// `Jan 15 05:32:03` (the day may be space-padded): Unix seconds, UTC.
    fn syslog_date(&self, b: &[u8]) -> Option<f64> {
        if b.len() < 15 || b[3] != b' ' || b[9] != b':' || b[12] != b':' {
            return None;
        }
        let m = month(&b[0..3])?;
        let day = digits(b[4..6].trim_ascii_start())?;
        let (h, mi, s) = (digits(&b[7..9])?, digits(&b[10..12])?, digits(&b[13..15])?);
        if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let at = |y: i64| {
            (days_from_civil(y, m, day) * 86_400) as f64 + f64::from(h * 3600 + mi * 60 + s)
        };
        let t = at(self.year);
        Some(if t > self.now + 86_400.0 {
            at(self.year - 1)
        } else {
            t
        })
    }
}

/// Is this an sshd line of the text formats, and where does its message start?
fn sshd_message(text: &[u8]) -> Option<usize> {
    let tag = memmem::find(text, b" sshd")?;
    let rest = &text[tag + 5..];
    // `sshd[123]: `, `sshd: `, or OpenSSH 9.8's `sshd-session[123]: `.
    let rest_start = tag + 5;
    let colon = memchr::memchr(b':', rest)?;
    let between = &rest[..colon];
    let ok = between.is_empty() || between.starts_with(b"[") || between.starts_with(b"-session");
    (ok && rest.get(colon + 1) == Some(&b' ')).then_some(rest_start + colon + 2)
}

/// The client address of a failure message, `None` when it is no failure.
fn failure_ip(message: &[u8]) -> Option<&[u8]> {
    if !(message.starts_with(b"Failed ") || message.starts_with(b"Invalid user ")) {
        return None;
    }
    let from = memmem::rfind(message, b" from ")? + 6;
    let rest = &message[from..];
    let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    Some(&rest[..end])
}

fn record<'a>(line: u64, message: &[u8], timestamp: f64) -> Result<RecordRef<'a>, LineError> {
    let ip = failure_ip(message).ok_or_else(|| LineError::new(line, "not an sshd failure"))?;
    let ip = parse_ip(ip).ok_or_else(|| {
        LineError::new(
            line,
            format!("ip: {:?} is not an IP address", crate::text(ip)),
        )
    })?;
    let mut rec = RecordRef::new(line, ip, timestamp);
    rec.protocol = Some(Cow::Borrowed("SSH"));
    rec.suspicious = Some(true);
    Ok(rec)
}

impl SshdParser {
    fn parse_json<'a>(&self, line: u64, text: &[u8]) -> Result<RecordRef<'a>, LineError> {
        let v: Value = serde_json::from_slice(text)
            .map_err(|e| LineError::new(line, format!("not JSON: {e}")))?;
        let message = v
            .get("MESSAGE")
            .and_then(Value::as_str)
            .ok_or_else(|| LineError::new(line, "no MESSAGE"))?;
        let micros = v
            .get("__REALTIME_TIMESTAMP")
            .and_then(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .or_else(|| Some(t.to_string()))
            })
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| LineError::new(line, "timestamp: no __REALTIME_TIMESTAMP"))?;
        record(line, message.as_bytes(), micros as f64 / 1e6)
    }

    fn is_sshd_json(text: &[u8]) -> bool {
        memmem::find(text, b"\"MESSAGE\"").is_some()
            && (memmem::find(text, b"\"sshd\"").is_some()
                || memmem::find(text, b"\"sshd-session\"").is_some())
    }
}

impl LineParser for SshdParser {
    fn skip(&mut self, _line: u64, text: &[u8]) -> bool {
        let text = text.trim_ascii();
        if text.starts_with(b"{") {
            if !Self::is_sshd_json(text) {
                return true;
            }
            let Ok(v) = serde_json::from_slice::<Value>(text) else {
                return false; // broken JSON is an error, not a skip
            };
            return v
                .get("MESSAGE")
                .and_then(Value::as_str)
                .is_none_or(|m| failure_ip(m.as_bytes()).is_none());
        }
        match sshd_message(text) {
            Some(at) => failure_ip(&text[at..]).is_none(),
            None => true,
        }
    }

    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        let text = text.trim_ascii();
        if text.starts_with(b"{") {
            return self.parse_json(line, text);
        }
        let at = sshd_message(text).ok_or_else(|| LineError::new(line, "not an sshd line"))?;
        let timestamp = match text.first() {
            Some(c) if c.is_ascii_digit() => {
                let end = text.iter().position(|&c| c == b' ').unwrap_or(text.len());
                parse_iso8601(&text[..end]).filter(|t| *t >= 0.0)
            }
            _ => self.syslog_date(text),
        }
        .ok_or_else(|| LineError::new(line, "timestamp: not a syslog or ISO 8601 date"))?;
        record(line, &text[at..], timestamp)
    }
}

/// True when `line` looks like an sshd line (text or journal JSON), for detection.
pub fn shape(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    if line.starts_with(b"{") {
        return SshdParser::is_sshd_json(line);
    }
    sshd_message(line).is_some()
        && (line.first().is_some_and(u8::is_ascii_digit)
            || SshdParser::with_now(0.0).syslog_date(line).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-06-01T00:00:00Z.
    const NOW: f64 = 1_748_736_000.0;

    fn parse(text: &str) -> Option<Result<RecordRef<'_>, LineError>> {
        let mut p = SshdParser::with_now(NOW);
        if p.skip(7, text.as_bytes()) {
            return None;
        }
        Some(p.parse(7, text.as_bytes()))
    }

    #[test]
    fn failed_passwords_and_invalid_users_are_suspicious_ssh_records() {
        let r = parse("Jan 15 05:32:03 web sshd[1234]: Failed password for root from 203.0.113.9 port 41234 ssh2")
            .unwrap()
            .unwrap();
        assert_eq!(r.ip.to_string(), "203.0.113.9");
        assert_eq!(r.timestamp, 1_736_919_123.0);
        assert_eq!(r.protocol.as_deref(), Some("SSH"));
        assert_eq!(r.suspicious, Some(true));
        let r = parse("2025-01-15T05:32:04.5+00:00 web sshd[1234]: Failed password for invalid user admin from 2001:db8::1 port 22 ssh2")
            .unwrap()
            .unwrap();
        assert_eq!(r.ip.to_string(), "2001:db8::1");
        assert_eq!(r.timestamp, 1_736_919_124.5);
        let r = parse("Jan  5 05:32:03 web sshd[9]: Invalid user a b from 198.51.100.7")
            .unwrap()
            .unwrap();
        assert_eq!(r.ip.to_string(), "198.51.100.7");
        let r = parse("Jan 15 05:32:03 web sshd-session[9]: Failed publickey for git from 198.51.100.8 port 5 ssh2: RSA SHA256:x")
            .unwrap()
            .unwrap();
        assert_eq!(r.ip.to_string(), "198.51.100.8");
    }

    #[test]
    fn a_december_line_read_in_january_is_last_year() {
        let p = SshdParser::with_now(1_736_899_200.0); // 2025-01-15
        assert_eq!(p.syslog_date(b"Dec 31 23:59:59"), Some(1_735_689_599.0));
    }

    #[test]
    fn other_lines_are_skipped_and_broken_failures_name_their_line() {
        for other in [
            "Jan 15 05:32:03 web sshd[1]: Accepted publickey for me from 203.0.113.9 port 1 ssh2",
            "Jan 15 05:32:03 web CRON[2]: pam_unix(cron:session): session opened",
        ] {
            assert!(parse(other).is_none(), "{other}");
        }
        let e = parse(
            "Jan 15 05:32:03 web sshd[1]: Failed password for root from 999.1.1.1 port 1 ssh2",
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.reason.starts_with("ip:"), "{e}");
        let e =
            parse("Jab 15 05:32:03 web sshd[1]: Failed password for root from 1.1.1.1 port 1 ssh2")
                .unwrap()
                .unwrap_err();
        assert!(e.reason.starts_with("timestamp:"), "{e}");
    }

    #[test]
    fn journal_json_exports_are_read() {
        let line = r#"{"__REALTIME_TIMESTAMP":"1736919124000000","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for root from 203.0.113.9 port 22 ssh2"}"#;
        let r = parse(line).unwrap().unwrap();
        assert_eq!(
            (r.ip.to_string(), r.timestamp),
            ("203.0.113.9".into(), 1_736_919_124.0)
        );
        let other = r#"{"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Server listening on 0.0.0.0 port 22."}"#;
        assert!(parse(other).is_none());
        assert!(shape(line.as_bytes()));
        assert!(!shape(
            b"{\"MESSAGE\":\"x\",\"SYSLOG_IDENTIFIER\":\"cron\"}"
        ));
    }
}
