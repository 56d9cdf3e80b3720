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
//! ([`json_map`]). [`detect()`] guesses the format from the first lines. [`suspicious`] is the small
//! rule set that flags probes and scanners where a source has no flag of its own.

pub mod caddy;
pub mod clf;
pub mod detect;
pub mod generate;
pub mod json_map;
pub mod lines;
mod record;
pub mod suspicious;
pub mod time;

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
}

impl AnyParser {
    /// The parser of `format`; `map` (`field=key` pairs, see [`json_map::KeyMap`]) applies to
    /// the JSON formats and is an error for the others.
    pub fn new(format: Format, map: &[(String, String)]) -> Result<AnyParser, json_map::MapError> {
        Ok(match format {
            Format::Common | Format::Combined | Format::VCombined if !map.is_empty() => {
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
        })
    }
}

impl LineParser for AnyParser {
    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        match self {
            AnyParser::Clf(p) => p.parse(line, text),
            AnyParser::Caddy(p) => p.parse(line, text),
            AnyParser::Json(p) => p.parse(line, text),
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
