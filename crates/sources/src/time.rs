//! Dates as logs write them, to Unix seconds: the access-log date `10/Oct/2000:13:55:36 -0700`
//! (with a cache of the day part), ISO 8601 / RFC 3339, and plain numbers.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1–12, day 1–31) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// English month abbreviations as access logs write them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub(crate) fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    Some(v)
}

pub(crate) fn month(b: &[u8]) -> Option<u32> {
    let i = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(b))?;
    Some(i as u32 + 1)
}

/// Length of an access-log date: `10/Oct/2000:13:55:36 -0700`.
pub const CLF_DATE_LEN: usize = 26;

/// Unix seconds of `10/Oct/2000` at midnight in zone `-0700` (the zone is `[+-]HHMM`).
fn clf_day_base(day: &[u8], zone: &[u8]) -> Option<i64> {
    if day.len() != 11 || day[2] != b'/' || day[6] != b'/' || zone.len() != 5 {
        return None;
    }
    let d = digits(&day[0..2])?;
    let m = month(&day[3..6])?;
    let y = digits(&day[7..11])?;
    if !(1..=31).contains(&d) {
        return None;
    }
    let sign = match zone[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh = digits(&zone[1..3])?;
    let zm = digits(&zone[3..5])?;
    let offset = sign * i64::from(zh * 3600 + zm * 60);
    Some(days_from_civil(i64::from(y), m, d) * 86_400 - offset)
}

/// Parses `10/Oct/2000:13:55:36 -0700` without a cache.
pub fn parse_clf_date(b: &[u8]) -> Option<f64> {
    ClfDateCache::default().parse(b)
}

/// Parses access-log dates, remembering the last day and zone seen (consecutive lines share
/// them), so most lines cost six digits.
#[derive(Debug, Clone, Default)]
pub struct ClfDateCache {
    key: [u8; 16],
    base: Option<i64>,
}

impl ClfDateCache {
    /// Unix seconds of `10/Oct/2000:13:55:36 -0700` (exactly [`CLF_DATE_LEN`] bytes).
    pub fn parse(&mut self, b: &[u8]) -> Option<f64> {
        if b.len() != CLF_DATE_LEN || b[11] != b':' || b[14] != b':' || b[17] != b':' {
            return None;
        }
        if b[20] != b' ' {
            return None;
        }
        let (day, zone) = (&b[0..11], &b[21..26]);
        let base = match self.base {
            Some(base) if self.key[..11] == *day && self.key[11..] == *zone => base,
            _ => {
                let base = clf_day_base(day, zone)?;
                self.key[..11].copy_from_slice(day);
                self.key[11..].copy_from_slice(zone);
                self.base = Some(base);
                base
            }
        };
        let h = digits(&b[12..14])?;
        let m = digits(&b[15..17])?;
        let s = digits(&b[18..20])?;
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        Some((base + i64::from(h * 3600 + m * 60 + s)) as f64)
    }
}

/// Parses ISO 8601 / RFC 3339 date-times: `2026-11-29T16:10:21Z`, with a space for the `T`,
/// fractions of a second, and `Z`, `+01:00`, `+0100` or no zone (taken as UTC).
pub fn parse_iso8601(s: &[u8]) -> Option<f64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if s[10] != b'T' && s[10] != b't' && s[10] != b' ' {
        return None;
    }
    let y = digits(&s[0..4])?;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some((b'.' | b',', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut scale = 0.1;
        for &c in &tail[..n] {
            frac += f64::from(c - b'0') * scale;
            scale /= 10.0;
        }
        rest = &tail[n..];
    }
    let offset: i64 = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let (zh, zm) = match zone {
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                [a, b] => (digits(&[*a, *b])?, 0),
                _ => return None,
            };
            let o = i64::from(zh * 3600 + zm * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset;
    Some(secs as f64 + frac)
}

/// A timestamp given as text: Unix seconds (`1646861401.524`; milliseconds when over 10^11),
/// ISO 8601, or the access-log date (with or without its brackets).
pub fn parse_timestamp_text(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        return unix_number(v);
    }
    let b = t.as_bytes();
    if let Some(v) = parse_iso8601(b) {
        return Some(v);
    }
    let b = b.strip_prefix(b"[").unwrap_or(b);
    let b = b.strip_suffix(b"]").unwrap_or(b);
    parse_clf_date(b)
}

/// A number of Unix seconds, or of milliseconds when over 10^11 (year 5138 in seconds).
pub fn unix_number(v: f64) -> Option<f64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(if v > 1e11 { v / 1000.0 } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apache_documentation_example_date_is_parsed_with_its_zone() {
        // 2000-10-10T20:55:36Z
        assert_eq!(
            parse_clf_date(b"10/Oct/2000:13:55:36 -0700"),
            Some(971_211_336.0)
        );
        assert_eq!(
            parse_clf_date(b"10/Oct/2000:20:55:36 +0000"),
            Some(971_211_336.0)
        );
    }

    #[test]
    fn the_day_cache_gives_the_same_answers_as_no_cache() {
        let mut c = ClfDateCache::default();
        for s in [
            "10/Oct/2000:13:55:36 -0700",
            "10/Oct/2000:13:55:37 -0700",
            "10/Oct/2000:13:55:37 +0200",
            "11/Oct/2000:00:00:00 +0200",
            "29/Feb/2024:23:59:59 +0000",
        ] {
            assert_eq!(c.parse(s.as_bytes()), parse_clf_date(s.as_bytes()), "{s}");
        }
        assert_eq!(
            c.parse(b"29/Feb/2024:23:59:59 +0000"),
            Some(1_709_251_199.0)
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for s in [
            "10/Foo/2000:13:55:36 -0700",
            "10/Oct/2000:25:55:36 -0700",
            "10/Oct/2000:13:55:36 X0700",
            "10/Oct/2000:13:55:36",
            "1x/Oct/2000:13:55:36 -0700",
            "",
        ] {
            assert_eq!(parse_clf_date(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn iso_dates_take_fractions_and_zones() {
        assert_eq!(parse_iso8601(b"2000-10-10T20:55:36Z"), Some(971_211_336.0));
        assert_eq!(
            parse_iso8601(b"2000-10-10T13:55:36-07:00"),
            Some(971_211_336.0)
        );
        assert_eq!(
            parse_iso8601(b"2000-10-10 22:55:36+0200"),
            Some(971_211_336.0)
        );
        assert_eq!(
            parse_iso8601(b"2000-10-10T20:55:36.25"),
            Some(971_211_336.25)
        );
        assert_eq!(parse_iso8601(b"2000-10-10T20:55:36+"), None);
    }

    #[test]
    fn text_timestamps_accept_seconds_milliseconds_iso_and_clf() {
        assert_eq!(parse_timestamp_text("971211336.5"), Some(971_211_336.5));
        assert_eq!(parse_timestamp_text("971211336500"), Some(971_211_336.5));
        assert_eq!(
            parse_timestamp_text("2000-10-10T20:55:36Z"),
            Some(971_211_336.0)
        );
        assert_eq!(
            parse_timestamp_text("[10/Oct/2000:13:55:36 -0700]"),
            Some(971_211_336.0)
        );
        assert_eq!(parse_timestamp_text("yesterday"), None);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1000, 0, 11_016, 19_782, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }
}
