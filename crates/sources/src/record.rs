//! The record type, the parser trait and the reader that joins lines and a parser.

use std::borrow::Cow;
use std::io::Read;
use std::net::IpAddr;

use crate::lines::{LineReader, Step};

/// One request or connection from a source, borrowing its text from the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRef<'a> {
    /// 1-based line (or record) number in the input.
    pub line: u64,
    /// The client address.
    pub ip: IpAddr,
    /// When it happened, in Unix seconds (fractions where the source has them).
    pub timestamp: f64,
    /// Bytes sent to the client (`None` for `-` or absent).
    pub bytes: Option<u64>,
    /// HTTP status.
    pub status: Option<u16>,
    /// HTTP method (`None` for a malformed request line such as `"-"` or binary garbage).
    pub method: Option<Cow<'a, str>>,
    /// Request target as logged (path and query).
    pub path: Option<Cow<'a, str>>,
    /// Protocol, e.g. `HTTP/1.1`.
    pub protocol: Option<Cow<'a, str>>,
    /// The server's address, where the source has it.
    pub dest_ip: Option<IpAddr>,
    /// The client's port (packets), where the source has it.
    pub src_port: Option<u16>,
    /// The server's port (packets), where the source has it.
    pub dest_port: Option<u16>,
    /// The client's `User-Agent`.
    pub user_agent: Option<Cow<'a, str>>,
    /// Flagged by the source or by [`crate::suspicious::Rules`]; `None`: nobody said.
    pub suspicious: Option<bool>,
}

impl<'a> RecordRef<'a> {
    /// A record with only the required fields set.
    pub fn new(line: u64, ip: IpAddr, timestamp: f64) -> RecordRef<'a> {
        RecordRef {
            line,
            ip,
            timestamp,
            bytes: None,
            status: None,
            method: None,
            path: None,
            protocol: None,
            dest_ip: None,
            src_port: None,
            dest_port: None,
            user_agent: None,
            suspicious: None,
        }
    }

    /// The owned copy.
    pub fn to_record(&self) -> Record {
        let own = |c: &Option<Cow<'a, str>>| c.as_ref().map(|s| s.to_string());
        Record {
            line: self.line,
            ip: self.ip,
            timestamp: self.timestamp,
            bytes: self.bytes,
            status: self.status,
            method: own(&self.method),
            path: own(&self.path),
            protocol: own(&self.protocol),
            dest_ip: self.dest_ip,
            src_port: self.src_port,
            dest_port: self.dest_port,
            user_agent: own(&self.user_agent),
            suspicious: self.suspicious,
        }
    }
}

/// The owned form of [`RecordRef`].
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line (or record) number in the input.
    pub line: u64,
    /// The client address.
    pub ip: IpAddr,
    /// When it happened, in Unix seconds.
    pub timestamp: f64,
    /// Bytes sent to the client.
    pub bytes: Option<u64>,
    /// HTTP status.
    pub status: Option<u16>,
    /// HTTP method.
    pub method: Option<String>,
    /// Request target (path and query).
    pub path: Option<String>,
    /// Protocol, e.g. `HTTP/1.1`.
    pub protocol: Option<String>,
    /// The server's address.
    pub dest_ip: Option<IpAddr>,
    /// The client's port.
    pub src_port: Option<u16>,
    /// The server's port.
    pub dest_port: Option<u16>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// Flagged by the source or the rules; `None`: nobody said.
    pub suspicious: Option<bool>,
}

/// Why one line could not be read, with its line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl LineError {
    /// An error for `line`.
    pub fn new(line: u64, reason: impl Into<String>) -> LineError {
        LineError {
            line,
            reason: reason.into(),
        }
    }
}

/// What reading records can fail with: one bad line (reading goes on) or the input itself.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The line is unreadable; the next call reads the next line.
    #[error(transparent)]
    Line(#[from] LineError),
    /// Reading the input failed; stop.
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
}

/// One format: turns one line (without its line end) into a record borrowing from it.
///
/// `&mut self` lets a parser keep caches (e.g. the last date seen); parsing is otherwise pure.
pub trait LineParser {
    /// Parses `text`, which is line number `line` (1-based) of the input.
    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError>;

    /// True when line `line` belongs to the format but is no record (a header the parser
    /// takes note of, a comment, another program's line in a shared log): it is passed over
    /// silently instead of being parsed. Called before [`LineParser::parse`]; by default no
    /// line is skipped.
    fn skip(&mut self, _line: u64, _text: &[u8]) -> bool {
        false
    }
}

/// Lines from `R` through a parser: records, or errors naming the line. Blank lines are skipped.
#[derive(Debug)]
pub struct Records<R, P> {
    lines: LineReader<R>,
    parser: P,
}

impl<R: Read, P: LineParser> Records<R, P> {
    /// Joins a line reader and a parser.
    pub fn new(lines: LineReader<R>, parser: P) -> Self {
        Records { lines, parser }
    }

    /// The next record or error, `None` at the end of the input. The record borrows the reader.
    pub fn next_record(&mut self) -> Option<Result<RecordRef<'_>, ParseError>> {
        loop {
            match self.lines.advance() {
                Ok(None) => return None,
                Err(e) => return Some(Err(ParseError::Io(e))),
                Ok(Some(Step::TooLong(line, len))) => {
                    let max = self.lines.max_line();
                    return Some(Err(LineError::new(
                        line,
                        format!("line is longer than {max} bytes ({len} bytes)"),
                    )
                    .into()));
                }
                Ok(Some(Step::Text(line))) => {
                    if self.lines.text().iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if self.parser.skip(line, self.lines.text()) {
                        continue;
                    }
                    let text = self.lines.text();
                    return Some(self.parser.parse(line, text).map_err(ParseError::Line));
                }
            }
        }
    }

    /// The line reader (e.g. for its position).
    pub fn lines(&self) -> &LineReader<R> {
        &self.lines
    }

    /// Takes the reader and the parser apart.
    pub fn into_parts(self) -> (LineReader<R>, P) {
        (self.lines, self.parser)
    }
}

impl<R: Read, P: LineParser> Iterator for Records<R, P> {
    type Item = Result<Record, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().map(|r| r.map(|r| r.to_record()))
    }
}
