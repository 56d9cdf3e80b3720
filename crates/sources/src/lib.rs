//! Pure parsers of real traffic sources.
//!
//! Each format is one file behind one small trait, [`LineParser`]: it turns one line (without
//! its line end) into a [`RecordRef`] that borrows from the line, or a [`LineError`] naming the
//! line and the reason. Nothing here does I/O except [`lines`], which reads lines of bounded
//! length (constant memory whatever the file) from files, `.gz` files or standard input, and
//! [`Records`], which joins a reader and a parser.
//!
//! Formats ([`Format`]): nginx/Apache `common`, `combined` and `vcombined` ([`clf`]), Caddy JSON
//! access logs ([`caddy`]) and JSON logs with a key map, such as nginx `escape=json` logs
//! ([`json_map`]); sshd failed logins ([`sshd`]); Zeek conn.log ([`zeek`]); tshark `-T fields`
//! and `-T ek` exports ([`tshark`]); and, not line by line, pcap and pcapng captures
//! ([`pcap`]). [`detect()`] guesses the format from the first lines. [`suspicious`] is the small
//! rule set that flags probes and scanners where a source has no flag of its own.

pub mod caddy;
pub mod clf;
pub mod detect;
pub mod generate;
pub mod json_map;
pub mod lines;
pub mod pcap;
mod record;
pub mod sshd;
pub mod suspicious;
pub mod time;
pub mod tshark;
pub mod tshark_json;
pub mod zeek;

pub use detect::{Format, detect};
pub use lines::{Line, LineReader, MAX_LINE_BYTES, open};
pub use record::{LineError, LineParser, ParseError, Record, RecordRef, Records};

use std::borrow::Cow;

/// Any of the parsers of this crate, chosen by [`Format`] (static dispatch, no box per line).
#[derive(Debug, Clone)]
pub enum AnyParser {
    /// `common`, `combined` or `vcombined`.
    Clf(clf::ClfParser),
    /// Caddy JSON access logs.
    Caddy(caddy::CaddyParser),
    /// JSON objects with a key map (nginx JSON logs).
    Json(json_map::JsonMapParser),
    /// sshd failed logins.
    Sshd(sshd::SshdParser),
    /// Zeek conn.log.
    Zeek(zeek::ZeekParser),
    /// `tshark -T fields` with a header.
    TsharkFields(tshark::TsharkFieldsParser),
    /// `tshark -T ek`.
    TsharkEk(tshark::TsharkEkParser),
}

impl AnyParser {
    /// The parser of `format`; `map` (`field=key` pairs, see [`json_map::KeyMap`]) applies to
    /// the JSON formats and is an error for the others.
    pub fn new(format: Format, map: &[(String, String)]) -> Result<AnyParser, json_map::MapError> {
        Ok(match format {
            Format::Common
            | Format::Combined
            | Format::VCombined
            | Format::Sshd
            | Format::Zeek
            | Format::TsharkFields
            | Format::TsharkEk
                if !map.is_empty() =>
            {
                return Err(json_map::MapError::NotJson(format.name()));
            }
            Format::Common => AnyParser::Clf(clf::ClfParser::new(clf::Variant::Common)),
            Format::Combined => AnyParser::Clf(clf::ClfParser::new(clf::Variant::Combined)),
            Format::VCombined => AnyParser::Clf(clf::ClfParser::new(clf::Variant::VCombined)),
            Format::Caddy if map.is_empty() => AnyParser::Caddy(caddy::CaddyParser::default()),
            Format::Caddy => AnyParser::Json(json_map::JsonMapParser::new(
                json_map::KeyMap::caddy().with_overrides(map)?,
            )),
            Format::NginxJson => AnyParser::Json(json_map::JsonMapParser::new(
                json_map::KeyMap::nginx().with_overrides(map)?,
            )),
            Format::Sshd => AnyParser::Sshd(sshd::SshdParser::default()),
            Format::Zeek => AnyParser::Zeek(zeek::ZeekParser::default()),
            Format::TsharkFields => AnyParser::TsharkFields(tshark::TsharkFieldsParser::default()),
            Format::TsharkEk => AnyParser::TsharkEk(tshark::TsharkEkParser),
        })
    }
}

impl LineParser for AnyParser {
    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        match self {
            AnyParser::Clf(p) => p.parse(line, text),
            AnyParser::Caddy(p) => p.parse(line, text),
            AnyParser::Json(p) => p.parse(line, text),
            AnyParser::Sshd(p) => p.parse(line, text),
            AnyParser::Zeek(p) => p.parse(line, text),
            AnyParser::TsharkFields(p) => p.parse(line, text),
            AnyParser::TsharkEk(p) => p.parse(line, text),
        }
    }

    fn skip(&mut self, line: u64, text: &[u8]) -> bool {
        match self {
            AnyParser::Clf(_) | AnyParser::Caddy(_) | AnyParser::Json(_) => false,
            AnyParser::Sshd(p) => p.skip(line, text),
            AnyParser::Zeek(p) => p.skip(line, text),
            AnyParser::TsharkFields(p) => p.skip(line, text),
            AnyParser::TsharkEk(p) => p.skip(line, text),
        }
    }
}

/// Borrowed text of a field: valid UTF-8 is borrowed, anything else is replaced lossily.
/// (`from_utf8` first: its ASCII fast path is much quicker than the lossy decoder's.)
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}
