//! The formats, by name, and their detection from the first lines of an input ([`detect()`]).

use std::fmt;
use std::str::FromStr;

use crate::clf::{self, Variant};
use crate::json_map::{JsonMapParser, KeyMap};
use crate::record::LineParser;

/// A source format this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// nginx/Apache `common`.
    Common,
    /// nginx/Apache `combined` (nginx's default).
    Combined,
    /// Apache `vcombined`: `combined` with a `host:port` prefix.
    VCombined,
    /// Caddy JSON access logs.
    Caddy,
    /// nginx JSON logs (`escape=json`), or any JSON lines with a key map.
    NginxJson,
    /// sshd failed logins (auth.log, journal text or JSON).
    Sshd,
    /// Zeek `conn.log`, TSV or JSON.
    Zeek,
    /// `tshark -T fields -E header=y`.
    TsharkFields,
    /// `tshark -T ek`.
    TsharkEk,
}

impl Format {
    /// Every format, in the order [`detect`] prefers them.
    pub const ALL: [Format; 9] = [
        Format::Combined,
        Format::Common,
        Format::VCombined,
        Format::Caddy,
        Format::NginxJson,
        Format::Sshd,
        Format::Zeek,
        Format::TsharkFields,
        Format::TsharkEk,
    ];

    /// The name `--format` takes: `common`, `combined`, `vcombined`, `caddy`, `nginx-json`,
    /// `sshd`, `zeek`, `tshark-fields`, `tshark-ek`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Common => "common",
            Format::Combined => "combined",
            Format::VCombined => "vcombined",
            Format::Caddy => "caddy",
            Format::NginxJson => "nginx-json",
            Format::Sshd => "sshd",
            Format::Zeek => "zeek",
            Format::TsharkFields => "tshark-fields",
            Format::TsharkEk => "tshark-ek",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format `{0}` (formats: common, combined, vcombined, caddy, nginx-json, sshd, zeek, tshark-fields, tshark-ek)"
)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s) || (s == "json" && *f == Format::NginxJson))
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// How many non-blank lines [`detect`] looks at.
pub const DETECT_LINES: usize = 20;

fn line_format(line: &[u8]) -> Option<Format> {
    let trimmed = line.trim_ascii();
    if crate::zeek::shape(trimmed) {
        return Some(Format::Zeek);
    }
    if crate::tshark::ek_shape(trimmed) {
        return Some(Format::TsharkEk);
    }
    if crate::tshark::fields_header(trimmed) {
        return Some(Format::TsharkFields);
    }
    if crate::sshd::shape(trimmed) {
        return Some(Format::Sshd);
    }
    if trimmed.starts_with(b"{") {
        if JsonMapParser::new(KeyMap::caddy())
            .parse(1, trimmed)
            .is_ok()
        {
            return Some(Format::Caddy);
        }
        if JsonMapParser::new(KeyMap::nginx())
            .parse(1, trimmed)
            .is_ok()
        {
            return Some(Format::NginxJson);
        }
        return None;
    }
    Some(match clf::shape(trimmed)? {
        Variant::Common => Format::Common,
        Variant::Combined => Format::Combined,
        Variant::VCombined => Format::VCombined,
    })
}

/// The format of the first non-blank lines of `sample` (up to [`DETECT_LINES`]; a last line
/// without its `\n` is ignored unless it is the only one): the one most lines parse as, `None`
/// when no line parses. `combined` wins over `common` when both occur (it reads both).
pub fn detect(sample: &[u8]) -> Option<Format> {
    let mut lines: Vec<&[u8]> = sample
        .split(|&c| c == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .take(DETECT_LINES + 1)
        .collect();
    if lines.len() > 1 && !sample.ends_with(b"\n") && lines.len() <= DETECT_LINES {
        lines.pop();
    }
    lines.truncate(DETECT_LINES);
    let mut votes = [0usize; Format::ALL.len()];
    for l in lines {
        if let Some(f) = line_format(l) {
            votes[Format::ALL.iter().position(|&x| x == f).unwrap_or(0)] += 1;
        }
    }
    // combined, common: combined reads common lines too.
    if votes[0] > 0 && votes[1] > 0 {
        votes[0] += votes[1];
        votes[1] = 0;
    }
    let (best, &n) = votes
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, std::cmp::Reverse(i)))?;
    (n > 0).then(|| Format::ALL[best])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert_eq!("json".parse::<Format>(), Ok(Format::NginxJson));
        assert!("apache".parse::<Format>().is_err());
    }
}
