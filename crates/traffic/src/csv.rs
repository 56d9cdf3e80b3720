//! Streaming CSV reader for traffic rows.
//!
//! [`CsvReader`] reads one line at a time through fixed-size buffers, so memory stays
//! constant whatever the file: its length, its longest line, or any damage in it. It maps
//! the header onto the event's fields by name, then yields each row as a [`Row`] or, for a
//! row it cannot use, a [`ReadError::Row`] naming the row's line and the reason, and goes on
//! with the next line.
//!
//! # Header
//! Names are matched ignoring case and surrounding whitespace, with spaces, underscores and
//! hyphens interchangeable (`IP Address`, `ip_address` and `ip-address` are the same name).
//! Columns may come in any order; columns with other names are ignored. Accepted names:
//!
//! | field        | names                                                                   |
//! |--------------|-------------------------------------------------------------------------|
//! | `ip`         | `ip`, `ip address`, `ipaddress`, `ip addr`, `address`, `source ip`, `src ip`, `source address`, `src addr`, `client ip`, `remote addr` |
//! | `latitude`   | `lat`, `latitude`                                                       |
//! | `longitude`  | `lon`, `lng`, `long`, `longitude`                                       |
//! | `timestamp`  | `timestamp`, `time stamp`, `time`, `ts`, `datetime`, `date time`, `unix time` |
//! | `suspicious` | `suspicious`, `is suspicious`, `flagged`, `is flagged`, `anomaly`, `is anomaly` |
//! | `bytes`      | `bytes`, `length`, `size`, `bytes sent`, `body bytes sent`, `response size`, `len` |
//! | `protocol`   | `protocol`, `proto`                                                     |
//! | `status`     | `status`, `status code`, `http status`, `response code`, `response status` |
//! | `method`     | `method`, `http method`, `request method`, `verb`                       |
//! | `path`       | `path`, `url`, `uri`, `request uri`, `request path`, `url path`         |
//! | `dest_ip`    | `dest ip`, `destination ip`, `dst ip`, `dest address`, `destination address`, `dst addr`, `server ip` |
//!
//! The table is [`crate::event::ALIASES`], shared with the JSON ingest. Only `ip` and
//! `timestamp` are required. `latitude` and `longitude` come both or neither, as columns and
//! in each row: a row with both cells empty has no coordinates (the server places it by its
//! IP), a row with one of them empty is a row error naming the missing one. `suspicious`
//! absent means not flagged. In the other optional columns an empty cell or `-` means
//! absent; text (`protocol`, `method`, `path`) is cut to its limit (see [`crate::event`]).
//!
//! # Lines
//! **One line is one row.** A line ends at LF, CRLF or a lone CR, always, also inside
//! quotes: no value of ours needs a line break, and this is what keeps one damaged line from
//! costing more than itself. A UTF-8 BOM at the start, blank lines and lines holding only
//! whitespace (however long) are skipped; line numbers count every line (the header is line
//! 1 when nothing comes before it). A line longer than [`MAX_LINE_BYTES`] (without its line
//! end) is a row error naming it; reading resumes at the next line.
//!
//! # Cells
//! Cells are separated by commas and trimmed of spaces and tabs. A cell may be quoted, also
//! after a space (`a, "b"`): `"1.2.3.4"` reads as `1.2.3.4`, and a quoted cell may hold
//! commas (useful in ignored columns: `"Springfield, IL"`). A quote must close on the line
//! it opens, otherwise the line is a row error (`cell 6 opens a quote that does not close on
//! this line`): a quoted cell spanning lines costs each of its lines, and the lines after it
//! read as usual. A quote inside an unquoted cell is kept as data.
//!
//! Values follow the rules in [`crate::event`]: timestamps as unix seconds (integer or
//! fractional), unix milliseconds, RFC 3339 or `YYYY-MM-DD HH:MM:SS` (UTC); the flag as
//! `0`, `1`, `0.0`, `1.0`, `true`, `false`. Rows are passed on in file order, never
//! reordered.
//!
//! # Errors
//! A row error ([`ReadError::Row`]) affects that line only: an unclosed quote, a line too
//! long, the wrong number of fields, a field that does not parse, text that is not UTF-8.
//! A header without the needed columns (or unreadable as a line) is a
//! [`ReadError::Header`] from [`CsvReader::new`]; a failing reader is a [`ReadError::Io`],
//! after which the iterator ends.

mod lines;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;

use crate::event::{self, ALIASES, Event, Field, FieldError, field_named, names_of};
use lines::{Line, Lines, split_cells};

/// Longest line the reader takes, in bytes without its line end. A course row is about 50
/// bytes; this leaves room for many extra columns while bounding memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One usable row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number in the file (the header is line 1 when nothing comes before it).
    pub line: u64,
    /// The parsed event.
    pub event: Event,
}

/// Why reading stopped or a row was skipped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A row that cannot be used; reading can go on with the next one.
    #[error("line {line}: {reason}")]
    Row {
        /// 1-based line number.
        line: u64,
        /// What is wrong, e.g. `timestamp: "17369x9120" is neither ...`.
        reason: String,
    },
    /// The header lacks a needed column or is not a header at all; fatal.
    #[error("header: {0}")]
    Header(String),
    /// The underlying reader failed; fatal.
    #[error("reading CSV: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// True when the error concerns one row only and reading may continue.
    pub fn is_row(&self) -> bool {
        matches!(self, ReadError::Row { .. })
    }
}

/// A header column that feeds a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// 0-based position in the header.
    pub index: usize,
    /// The header cell as written (trimmed).
    pub name: String,
}

/// Which header column feeds each field of an [`Event`]; see [`CsvReader::columns`].
///
/// Its `Display` is one line for a log, e.g.
/// `ip="ip address" (col 1), timestamp="Timestamp" (col 4), latitude="Latitude" (col 2), ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// Column of the source address.
    pub ip: Column,
    /// Column of the time.
    pub timestamp: Column,
    /// Column of the latitude; present exactly when `longitude` is.
    pub latitude: Option<Column>,
    /// Column of the longitude; present exactly when `latitude` is.
    pub longitude: Option<Column>,
    /// Column of the flag; `None` when the file has none and every row counts as not flagged.
    pub suspicious: Option<Column>,
    /// Column of the byte count.
    pub bytes: Option<Column>,
    /// Column of the protocol.
    pub protocol: Option<Column>,
    /// Column of the HTTP status.
    pub status: Option<Column>,
    /// Column of the HTTP method.
    pub method: Option<Column>,
    /// Column of the request path.
    pub path: Option<Column>,
    /// Column of the destination address.
    pub dest_ip: Option<Column>,
    /// Column of the source port.
    pub src_port: Option<Column>,
    /// Column of the destination port.
    pub dest_port: Option<Column>,
    /// Column of the packet count.
    pub packets: Option<Column>,
    /// Header cells that name no field, ignored.
    pub ignored: Vec<String>,
    /// Number of columns in the header; every row must have as many fields.
    pub width: usize,
}

impl Columns {
    /// The column feeding `field`, if the file has one.
    pub fn get(&self, field: Field) -> Option<&Column> {
        match field {
            Field::Ip => Some(&self.ip),
            Field::Timestamp => Some(&self.timestamp),
            Field::Latitude => self.latitude.as_ref(),
            Field::Longitude => self.longitude.as_ref(),
            Field::Suspicious => self.suspicious.as_ref(),
            Field::Bytes => self.bytes.as_ref(),
            Field::Protocol => self.protocol.as_ref(),
            Field::Status => self.status.as_ref(),
            Field::Method => self.method.as_ref(),
            Field::Path => self.path.as_ref(),
            Field::DestIp => self.dest_ip.as_ref(),
            Field::SrcPort => self.src_port.as_ref(),
            Field::DestPort => self.dest_port.as_ref(),
            Field::Packets => self.packets.as_ref(),
        }
    }

    /// Maps a header row onto the fields.
    fn from_header(header: &[String]) -> Result<Self, ReadError> {
        let mut found: [Option<Column>; ALIASES.len()] = Default::default();
        let mut ignored = Vec::new();
        for (index, name) in header.iter().enumerate() {
            let Some(field) = field_named(name) else {
                ignored.push(name.clone());
                continue;
            };
            let slot = ALIASES
                .iter()
                .position(|&(f, _)| f == field)
                .and_then(|i| found.get_mut(i));
            if let Some(slot) = slot {
                if let Some(first) = slot {
                    return Err(ReadError::Header(format!(
                        "columns {} ({:?}) and {} ({:?}) both name the {field} field; keep one",
                        first.index + 1,
                        first.name,
                        index + 1,
                        name
                    )));
                }
                *slot = Some(Column {
                    index,
                    name: name.clone(),
                });
            }
        }
        let [
            ip,
            latitude,
            longitude,
            timestamp,
            suspicious,
            bytes,
            protocol,
            status,
            method,
            path,
            dest_ip,
            src_port,
            dest_port,
            packets,
        ] = found;
        let mut missing: Vec<String> = [
            (Field::Ip, ip.is_none()),
            (Field::Timestamp, timestamp.is_none()),
        ]
        .into_iter()
        .filter(|&(_, missing)| missing)
        .map(|(field, _)| format!("{field} (named one of: {})", names_of(field)))
        .collect();
        match (&latitude, &longitude) {
            (Some(_), None) => missing.push(format!(
                "longitude (named one of: {}), since there is a latitude column; give both or neither",
                names_of(Field::Longitude)
            )),
            (None, Some(_)) => missing.push(format!(
                "latitude (named one of: {}), since there is a longitude column; give both or neither",
                names_of(Field::Latitude)
            )),
            _ => {}
        }
        match (ip, timestamp) {
            (Some(ip), Some(timestamp)) if missing.is_empty() => Ok(Columns {
                ip,
                timestamp,
                latitude,
                longitude,
                suspicious,
                bytes,
                protocol,
                status,
                method,
                path,
                dest_ip,
                src_port,
                dest_port,
                packets,
                ignored,
                width: header.len(),
            }),
            _ => Err(ReadError::Header(format!(
                "missing column{} {}; found header {:?}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join("; "),
                header
            ))),
        }
    }

    /// Parses one line (not blank), split into `cells` (the first `width` cells' values)
    /// and `count` cells in all, into an event.
    fn parse(&self, line: &[u8], cells: &[Range<usize>], count: usize) -> Result<Event, String> {
        if count != self.width {
            return Err(format!(
                "has {count} field{}, the header has {}",
                if count == 1 { "" } else { "s" },
                self.width
            ));
        }
        let cell = |column: &Column, field: Field| -> Result<&str, FieldError> {
            let bytes = cells
                .get(column.index)
                .and_then(|range| line.get(range.clone()))
                .unwrap_or_default();
            std::str::from_utf8(bytes).map_err(|_| {
                FieldError::new(
                    field,
                    format!("{:?} is not valid UTF-8", String::from_utf8_lossy(bytes)),
                )
            })
        };
        // An optional column's cell, `None` when there is no such column.
        let optional =
            |column: &Option<Column>, field: Field| -> Result<Option<&str>, FieldError> {
                column.as_ref().map(|c| cell(c, field)).transpose()
            };
        let coordinate =
            |column: &Option<Column>, field: Field| -> Result<Option<f64>, FieldError> {
                match optional(column, field)? {
                    Some(text) if !text.trim().is_empty() => {
                        event::parse_coordinate(field, text).map(Some)
                    }
                    _ => Ok(None),
                }
            };
        let text = |column: &Option<Column>, field: Field| -> Result<Option<String>, FieldError> {
            Ok(optional(column, field)?.and_then(|t| event::bounded_text(field, t)))
        };
        let parse = || -> Result<Event, FieldError> {
            let ip = event::parse_ip(cell(&self.ip, Field::Ip)?)?;
            let latitude = coordinate(&self.latitude, Field::Latitude)?;
            let longitude = coordinate(&self.longitude, Field::Longitude)?;
            let coordinates = event::coordinates(latitude, longitude)?;
            Ok(Event {
                ip,
                latitude: coordinates.map(|c| c.0),
                longitude: coordinates.map(|c| c.1),
                timestamp: event::parse_timestamp(cell(&self.timestamp, Field::Timestamp)?)?,
                suspicious: match &self.suspicious {
                    Some(column) => event::parse_suspicious(cell(column, Field::Suspicious)?)?,
                    None => false,
                },
                bytes: match optional(&self.bytes, Field::Bytes)? {
                    Some(t) => event::parse_bytes(t)?,
                    None => None,
                },
                protocol: text(&self.protocol, Field::Protocol)?,
                status: match optional(&self.status, Field::Status)? {
                    Some(t) => event::parse_status(t)?,
                    None => None,
                },
                method: text(&self.method, Field::Method)?,
                path: text(&self.path, Field::Path)?,
                dest_ip: match optional(&self.dest_ip, Field::DestIp)? {
                    Some(t) => event::parse_dest_ip(t)?,
                    None => None,
                },
                src_port: match optional(&self.src_port, Field::SrcPort)? {
                    Some(t) => event::parse_port(Field::SrcPort, t)?,
                    None => None,
                },
                dest_port: match optional(&self.dest_port, Field::DestPort)? {
                    Some(t) => event::parse_port(Field::DestPort, t)?,
                    None => None,
                },
                packets: match optional(&self.packets, Field::Packets)? {
                    Some(t) => event::parse_packets(t)?,
                    None => None,
                },
            })
        };
        parse().map_err(|e| e.to_string())
    }
}

impl fmt::Display for Columns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (field, column) in [
            (Field::Ip, Some(&self.ip)),
            (Field::Latitude, self.latitude.as_ref()),
            (Field::Longitude, self.longitude.as_ref()),
            (Field::Timestamp, Some(&self.timestamp)),
        ] {
            match column {
                Some(column) => {
                    write!(f, "{field}={:?} (col {}), ", column.name, column.index + 1)?
                }
                None => write!(f, "{field}: none (placed by ip), ")?,
            }
        }
        for field in [
            Field::Bytes,
            Field::Protocol,
            Field::Status,
            Field::Method,
            Field::Path,
            Field::DestIp,
            Field::SrcPort,
            Field::DestPort,
            Field::Packets,
        ] {
            if let Some(column) = self.get(field) {
                write!(f, "{field}={:?} (col {}), ", column.name, column.index + 1)?;
            }
        }
        match &self.suspicious {
            Some(column) => write!(f, "suspicious={:?} (col {})", column.name, column.index + 1)?,
            None => f.write_str("suspicious: none (all false)")?,
        }
        if !self.ignored.is_empty() {
            write!(f, ", ignored {:?}", self.ignored)?;
        }
        Ok(())
    }
}

/// Reads traffic rows one line at a time, in constant memory.
///
/// An iterator of `Result<Row, ReadError>`: row errors can be logged and skipped; after a
/// [`ReadError::Io`] the iterator ends.
pub struct CsvReader<R: Read> {
    lines: Lines<R>,
    /// Value ranges of the current line's cells (at most `columns.width`).
    cells: Vec<Range<usize>>,
    columns: Columns,
    done: bool,
}

impl<R: Read> CsvReader<R> {
    /// Reads and maps the header; lines may be up to [`MAX_LINE_BYTES`] long.
    ///
    /// Fails with [`ReadError::Header`] if the input is empty, the header line is too long
    /// or has an unclosed quote, a required column is missing, or two columns name the same
    /// field; with [`ReadError::Io`] if reading fails.
    pub fn new(reader: R) -> Result<Self, ReadError> {
        Self::with_max_line(reader, MAX_LINE_BYTES)
    }

    /// As [`CsvReader::new`], with lines (the header too) of up to `max_line` bytes.
    pub fn with_max_line(reader: R, max_line: usize) -> Result<Self, ReadError> {
        let mut lines = Lines::new(reader, max_line);
        let header = loop {
            match lines.next_line()? {
                None => {
                    return Err(ReadError::Header(
                        "the input is empty; expected a header line such as \
                         `ip address,Latitude,Longitude,Timestamp,suspicious`"
                            .to_owned(),
                    ));
                }
                Some(Line::TooLong { number, len }) => {
                    return Err(ReadError::Header(format!(
                        "line {number}, where the header should be, is {len} bytes long; \
                         at most {max_line} are read"
                    )));
                }
                Some(Line::Fits { .. }) if is_blank(lines.text()) => {}
                Some(Line::Fits { number }) => {
                    let text = lines.text();
                    let mut cells = Vec::new();
                    split_cells(text, usize::MAX, &mut cells)
                        .map_err(|reason| ReadError::Header(format!("line {number}: {reason}")))?;
                    break cells
                        .into_iter()
                        .map(|range| String::from_utf8_lossy(&text[range]).into_owned())
                        .collect::<Vec<String>>();
                }
            }
        };
        let columns = Columns::from_header(&header)?;
        Ok(Self {
            lines,
            cells: Vec::with_capacity(columns.width),
            columns,
            done: false,
        })
    }

    /// Which header column feeds which field (for the log).
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Bytes the reader holds in its buffers, for checking that memory stays bounded: at
    /// most the read buffer (64 KiB), one line and the header's cell table, whatever
    /// the input.
    pub fn buffer_capacity(&self) -> usize {
        self.lines.capacity() + self.cells.capacity() * std::mem::size_of::<Range<usize>>()
    }
}

impl CsvReader<File> {
    /// Opens the file at `path` and reads its header.
    ///
    /// I/O errors (opening or reading the header) carry the path in their message.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let with_path = |e: io::Error| {
            ReadError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        let file = File::open(path).map_err(with_path)?;
        Self::new(file).map_err(|e| match e {
            ReadError::Io(e) => with_path(e),
            other => other,
        })
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::Io(e)));
                }
            };
            let line = match line {
                Line::TooLong { number, len } => {
                    return Some(Err(ReadError::Row {
                        line: number,
                        reason: format!(
                            "the line is {len} bytes long; at most {} are read",
                            self.lines.max_line
                        ),
                    }));
                }
                Line::Fits { .. } if is_blank(self.lines.text()) => continue,
                Line::Fits { number } => number,
            };
            let text = self.lines.text();
            let parsed = split_cells(text, self.columns.width, &mut self.cells)
                .and_then(|count| self.columns.parse(text, &self.cells, count));
            return Some(match parsed {
                Ok(event) => Ok(Row { line, event }),
                Err(reason) => Err(ReadError::Row { line, reason }),
            });
        }
        None
    }
}

/// A line holding nothing but whitespace.
fn is_blank(line: &[u8]) -> bool {
    line.trim_ascii().is_empty()
}

#[cfg(test)]
mod tests {
    use super::lines::READ_BUFFER_BYTES;
    use super::*;
    use std::net::IpAddr;

    const COURSE_HEADER: &str = "ip address,Latitude,Longitude,Timestamp,suspicious";

    fn read(input: &[u8]) -> Vec<Result<Row, ReadError>> {
        CsvReader::new(input).expect("header").collect()
    }

    /// Every row, panicking on any error.
    fn events(input: &[u8]) -> Vec<Event> {
        read(input)
            .into_iter()
            .map(|r| r.expect("row").event)
            .collect()
    }

    /// `(line, Ok(ip) | Err(reason))` per item.
    fn outcomes(input: &[u8]) -> Vec<(u64, Result<String, String>)> {
        read(input)
            .into_iter()
            .map(|r| match r {
                Ok(row) => (row.line, Ok(row.event.ip.to_string())),
                Err(ReadError::Row { line, reason }) => (line, Err(reason)),
                Err(other) => panic!("unexpected {other}"),
            })
            .collect()
    }

    fn lines(input: &[u8]) -> Vec<u64> {
        outcomes(input).into_iter().map(|(line, _)| line).collect()
    }

    fn header_error(input: &[u8]) -> String {
        match CsvReader::new(input) {
            Err(ReadError::Header(message)) => message,
            Err(other) => panic!("expected a header error, got {other}"),
            Ok(_) => panic!("expected a header error, got a reader"),
        }
    }

    fn ev(ip: &str, latitude: f64, longitude: f64, timestamp: f64, suspicious: bool) -> Event {
        Event::at(
            ip.parse::<IpAddr>().unwrap(),
            latitude,
            longitude,
            timestamp,
            suspicious,
        )
    }

    #[test]
    fn course_header_and_rows_are_read_with_their_line_numbers() {
        let input = format!(
            "{COURSE_HEADER}\n\
             173.198.105.40,35.3696,-119.0105,1736919120,0.0\n\
             5.165.146.0,56.1089,47.4821,1736919121,1.0\n"
        );
        let rows: Vec<Row> = read(input.as_bytes())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                Row {
                    line: 2,
                    event: ev("173.198.105.40", 35.3696, -119.0105, 1736919120.0, false)
                },
                Row {
                    line: 3,
                    event: ev("5.165.146.0", 56.1089, 47.4821, 1736919121.0, true)
                },
            ]
        );
    }

    #[test]
    fn renamed_lower_case_header_reads_the_same_as_the_course_header() {
        let body = "173.198.105.40,35.3696,-119.0105,1736919120,0.0\n";
        let course = events(format!("{COURSE_HEADER}\n{body}").as_bytes());
        let renamed =
            events(format!("ip,latitude,longitude,timestamp,suspicious\n{body}").as_bytes());
        assert_eq!(course, renamed);
        assert_eq!(course.len(), 1);
    }

    #[test]
    fn header_names_ignore_case_separators_and_accept_aliases() {
        let want = [ev("1.2.3.4", 10.0, 20.0, 1736919120.0, true)];
        for header in [
            "IP,LAT,LON,TS,FLAGGED",
            " Source-IP , Lat ,Lng,Date Time,Is_Suspicious",
            "src_ip,latitude,long,datetime,anomaly",
            "ip-address,Latitude,LONGITUDE,time,is-anomaly",
            "Address,lat,longitude,Time  Stamp,is flagged",
            "client ip,lat,lon,unix_time,suspicious",
        ] {
            let input = format!("{header}\n1.2.3.4,10,20,1736919120,1\n");
            assert_eq!(events(input.as_bytes()), want, "{header}");
        }
    }

    #[test]
    fn columns_in_any_order_with_extra_columns_are_mapped_by_name() {
        let input = b"country,Timestamp,suspicious,Longitude,bytes,Latitude,ip address\n\
                      DE,1736919120,1.0,8.68,512,50.11,2a00:1450::1\n";
        let reader = CsvReader::new(&input[..]).unwrap();
        let columns = reader.columns().clone();
        assert_eq!(
            columns.ip,
            Column {
                index: 6,
                name: "ip address".into()
            }
        );
        assert_eq!(columns.get(Field::Timestamp).unwrap().index, 1);
        assert_eq!(columns.get(Field::Suspicious).unwrap().index, 2);
        assert_eq!(columns.ignored, ["country"]);
        assert_eq!(columns.width, 7);
        assert_eq!(
            columns.to_string(),
            "ip=\"ip address\" (col 7), latitude=\"Latitude\" (col 6), \
             longitude=\"Longitude\" (col 4), timestamp=\"Timestamp\" (col 2), \
             bytes=\"bytes\" (col 5), suspicious=\"suspicious\" (col 3), ignored [\"country\"]"
        );
        let events: Vec<Event> = reader.map(|r| r.unwrap().event).collect();
        let mut want = ev("2a00:1450::1", 50.11, 8.68, 1736919120.0, true);
        want.bytes = Some(512);
        assert_eq!(events, [want]);
    }

    #[test]
    fn a_file_with_only_an_ip_and_a_time_column_is_read_without_coordinates() {
        let input = b"source_ip,ts\n203.0.113.9,1736919120\n2001:db8::2,2025-01-15T05:32:01Z\n";
        let reader = CsvReader::new(&input[..]).unwrap();
        assert_eq!(reader.columns().latitude, None);
        assert!(
            reader
                .columns()
                .to_string()
                .contains("latitude: none (placed by ip)")
        );
        let events: Vec<Event> = reader.map(|r| r.unwrap().event).collect();
        assert_eq!(
            events,
            [
                Event::new("203.0.113.9".parse().unwrap(), 1736919120.0, false),
                Event::new("2001:db8::2".parse().unwrap(), 1736919121.0, false),
            ]
        );
    }

    #[test]
    fn coordinates_are_both_or_neither_per_row_and_the_missing_one_is_named() {
        let input = b"ip,lat,lon,ts\n\
                      1.2.3.4,1,2,1736919120\n\
                      1.2.3.4,,,1736919120\n\
                      1.2.3.4,,2,1736919120\n\
                      1.2.3.4,1, ,1736919120\n";
        assert_eq!(
            outcomes(input),
            [
                (2, Ok("1.2.3.4".into())),
                (3, Ok("1.2.3.4".into())),
                (
                    4,
                    Err(
                        "latitude: is missing while longitude is given; give both or neither"
                            .into()
                    )
                ),
                (
                    5,
                    Err(
                        "longitude: is missing while latitude is given; give both or neither"
                            .into()
                    )
                ),
            ]
        );
        let rows = events(b"ip,lat,lon,ts\n1.2.3.4,,,1736919120\n");
        assert_eq!(rows[0].coordinates(), None);
        let message = header_error(b"ip,lng,ts\n");
        assert!(
            message.starts_with("missing column latitude (named one of: lat, latitude), since"),
            "{message}"
        );
    }

    #[test]
    fn port_and_packet_columns_are_read_and_a_bad_port_names_its_line() {
        let rows = read(
            b"ip,ts,sport,dport,packets\n1.2.3.4,1736919120,40000,22,7\n1.2.3.4,1736919120,,,\n1.2.3.4,1736919120,1,70000,1\n",
        );
        let first = &rows[0].as_ref().unwrap().event;
        assert_eq!(
            (first.src_port, first.dest_port, first.packets),
            (Some(40000), Some(22), Some(7))
        );
        let second = &rows[1].as_ref().unwrap().event;
        assert_eq!(
            (second.src_port, second.dest_port, second.packets),
            (None, None, None)
        );
        match &rows[2] {
            Err(ReadError::Row { line: 4, reason }) => {
                assert!(reason.starts_with("dest_port: 70000"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn optional_request_columns_are_read_and_text_is_bounded() {
        let long = "p".repeat(3000);
        let input = format!(
            "Timestamp,ip address,length,Protocol,status_code,method,url,dst_ip\n\
             1736919120,1.2.3.4,1514,TCP,200,GET,/index.html,10.0.0.1\n\
             1736919120,1.2.3.4,-,,,,/{long},\n\
             1736919120,1.2.3.4,10,UDP,999,GET,/,\n"
        );
        let rows = read(input.as_bytes());
        let first = &rows[0].as_ref().unwrap().event;
        assert_eq!(first.bytes, Some(1514));
        assert_eq!(first.protocol.as_deref(), Some("TCP"));
        assert_eq!(first.status, Some(200));
        assert_eq!(first.method.as_deref(), Some("GET"));
        assert_eq!(first.path.as_deref(), Some("/index.html"));
        assert_eq!(first.dest_ip, Some("10.0.0.1".parse().unwrap()));
        let second = &rows[1].as_ref().unwrap().event;
        assert_eq!(
            (second.bytes, second.protocol.as_ref(), second.status),
            (None, None, None)
        );
        assert_eq!(
            second.path.as_ref().map(String::len),
            Some(event::MAX_PATH_BYTES)
        );
        match &rows[2] {
            Err(ReadError::Row { line: 4, reason }) => {
                assert!(reason.starts_with("status: 999"), "{reason}")
            }
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn suspicious_column_is_optional_and_absent_means_not_flagged() {
        let input = b"ip,lat,lon,timestamp\n1.2.3.4,1,2,1736919120\n";
        let reader = CsvReader::new(&input[..]).unwrap();
        assert_eq!(reader.columns().suspicious, None);
        assert!(reader.columns().to_string().contains("suspicious: none"));
        let events: Vec<Event> = reader.map(|r| r.unwrap().event).collect();
        assert_eq!(events, [ev("1.2.3.4", 1.0, 2.0, 1736919120.0, false)]);
    }

    #[test]
    fn missing_required_column_is_a_header_error_naming_it_and_the_header_found() {
        let message = header_error(b"ip address,Latitude,Timestamp,suspicious\n1.2.3.4,1,2,3\n");
        assert_eq!(
            message,
            "missing column longitude (named one of: lon, lng, long, longitude), since there \
             is a latitude column; give both or neither; found header [\"ip address\", \"Latitude\", \"Timestamp\", \"suspicious\"]"
        );
        let message = header_error(b"1.2.3.4,10,20,1736919120,0\n");
        assert!(
            message.starts_with("missing columns ip (named one of: ip, "),
            "{message}"
        );
        assert!(message.contains("; timestamp (named"), "{message}");
        assert!(
            !message.contains("latitude"),
            "coordinates are optional: {message}"
        );
        assert!(
            message.ends_with("found header [\"1.2.3.4\", \"10\", \"20\", \"1736919120\", \"0\"]")
        );
    }

    #[test]
    fn two_columns_for_one_field_is_a_header_error() {
        let message = header_error(b"ip,lat,latitude,lon,ts\n");
        assert_eq!(
            message,
            "columns 2 (\"lat\") and 3 (\"latitude\") both name the latitude field; keep one"
        );
    }

    #[test]
    fn empty_or_blank_input_is_a_header_error() {
        for input in [&b""[..], b"\n\n", b"\r\n  \r\n"] {
            assert!(header_error(input).starts_with("the input is empty"));
        }
    }

    #[test]
    fn header_only_yields_no_rows() {
        assert!(read(format!("{COURSE_HEADER}\n").as_bytes()).is_empty());
    }

    #[test]
    fn utf8_bom_before_the_header_is_ignored() {
        let input = format!("\u{feff}{COURSE_HEADER}\n1.2.3.4,1,2,1736919120,0.0\n");
        let reader = CsvReader::new(input.as_bytes()).unwrap();
        assert_eq!(reader.columns().ip.name, "ip address");
        assert_eq!(outcomes(input.as_bytes()), [(2, Ok("1.2.3.4".to_owned()))]);
    }

    #[test]
    fn crlf_and_lone_cr_line_ends_give_the_same_rows_and_line_numbers() {
        let lf = format!(
            "{COURSE_HEADER}\n1.1.1.1,1,2,1736919120,0.0\n2.2.2.2,3,4,1736919121,1.0\n3.3.3.3,5,6,x,0\n"
        );
        let want = outcomes(lf.as_bytes());
        assert_eq!(want.iter().map(|o| o.0).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(outcomes(lf.replace('\n', "\r\n").as_bytes()), want);
        assert_eq!(outcomes(lf.replace('\n', "\r").as_bytes()), want);
    }

    #[test]
    fn blank_lines_are_skipped_and_do_not_shift_line_numbers() {
        // Line: 1 blank, 2 header, 3 row, 4 blank, 5 spaces only, 6 row, 7-8 blank, 9 row, 10-11 blank.
        let lf = format!(
            "\n{COURSE_HEADER}\n1.1.1.1,1,2,1736919120,0\n\n   \n2.2.2.2,1,2,1736919120,0\n\n\n3.3.3.3,1,2,1736919120,0\n\n\n"
        );
        assert_eq!(lines(lf.as_bytes()), [3, 6, 9]);
        assert_eq!(lines(lf.replace('\n', "\r\n").as_bytes()), [3, 6, 9]);
    }

    #[test]
    fn last_row_without_a_line_end_is_read() {
        let input =
            format!("{COURSE_HEADER}\r\n1.1.1.1,1,2,1736919120,0\r\n2.2.2.2,1,2,1736919120,1");
        assert_eq!(
            outcomes(input.as_bytes()),
            [(2, Ok("1.1.1.1".into())), (3, Ok("2.2.2.2".into()))]
        );
    }

    #[test]
    fn cells_are_trimmed_and_may_be_quoted() {
        let input = b"\"ip address\" , \"Latitude\",Longitude ,Timestamp,suspicious\n\
                      \"1.2.3.4\",\" 10.5 \",  -20.25  ,\"1736919120\", 1.0 \n\
                      \t5.6.7.8\t,\"1\",\"2\",\" 2025-01-15T05:32:00Z \",\"true\"\n";
        assert_eq!(
            events(input),
            [
                ev("1.2.3.4", 10.5, -20.25, 1736919120.0, true),
                ev("5.6.7.8", 1.0, 2.0, 1736919120.0, true),
            ]
        );
    }

    #[test]
    fn a_quoted_cell_spanning_lines_costs_each_of_its_lines_and_the_lines_after_it_read() {
        // Line 2 opens a quote that closes on line 4; line 5 opens one that closes on line 6.
        // A line always ends a row: each of those lines is a row error naming itself.
        let lf = "ip,lat,lon,ts,suspicious,note\n\
                  1.1.1.1,1,2,1736919120,0,\"first\nsecond\nthird\"\n\
                  2.2.2.2,1,2,x,0,\"a\nb\"\n\
                  3.3.3.3,1,2,1736919120,0,plain\n";
        let unclosed = || Err("cell 6 opens a quote that does not close on this line".to_owned());
        let one_field = || Err("has 1 field, the header has 6".to_owned());
        let want = [
            (2, unclosed()),
            (3, one_field()),
            (4, one_field()),
            (5, unclosed()),
            (6, one_field()),
            (7, Ok("3.3.3.3".to_owned())),
        ];
        assert_eq!(outcomes(lf.as_bytes()), want);
        assert_eq!(outcomes(lf.replace('\n', "\r\n").as_bytes()), want);
        assert_eq!(outcomes(lf.replace('\n', "\r").as_bytes()), want);
    }

    #[test]
    fn a_stray_quote_costs_its_line_only_and_every_good_row_after_it_reads() {
        const GOOD: u64 = 100_000;
        let mut input = format!("{COURSE_HEADER}\n7.7.7.7,1,2,\"1736919120,0.0\n");
        for i in 0..GOOD {
            input.push_str(&format!(
                "10.0.{}.{},1,2,{},0.0\n",
                i / 256 % 256,
                i % 256,
                1736919120 + i
            ));
        }
        let mut reader = CsvReader::new(input.as_bytes()).unwrap();
        let mut errors = Vec::new();
        let mut good = 0u64;
        let mut largest_buffer = 0;
        while let Some(item) = reader.next() {
            largest_buffer = largest_buffer.max(reader.buffer_capacity());
            match item {
                Ok(row) => {
                    good += 1;
                    assert_eq!(row.line, good + 2);
                }
                Err(ReadError::Row { line, reason }) => errors.push((line, reason)),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(
            errors,
            [(
                2,
                "cell 4 opens a quote that does not close on this line".to_owned()
            )]
        );
        assert_eq!(good, GOOD);
        assert!(
            largest_buffer <= BUFFER_BOUND,
            "{largest_buffer} bytes buffered"
        );
    }

    /// What the reader may hold with the default line limit and a five-column header.
    const BUFFER_BOUND: usize = READ_BUFFER_BYTES + MAX_LINE_BYTES + 1024;

    #[test]
    fn a_huge_line_is_a_row_error_naming_it_and_reading_resumes_at_the_next_line() {
        let huge = "9.9.9.9,".repeat(10 << 20 >> 3);
        for end in ["\n", "\r\n", "\r"] {
            let input = [
                COURSE_HEADER,
                "1.1.1.1,1,2,1736919120,0",
                &huge,
                "2.2.2.2,1,2,1736919120,0",
                &huge,
            ]
            .join(end);
            let mut reader = CsvReader::new(input.as_bytes()).unwrap();
            let mut items = Vec::new();
            while let Some(item) = reader.next() {
                items.push(match item {
                    Ok(row) => (row.line, Ok(row.event.ip.to_string())),
                    Err(ReadError::Row { line, reason }) => (line, Err(reason)),
                    Err(other) => panic!("unexpected {other}"),
                });
                assert!(reader.buffer_capacity() <= BUFFER_BOUND);
            }
            let too_long = || {
                Err(format!(
                    "the line is {} bytes long; at most 65536 are read",
                    huge.len()
                ))
            };
            assert_eq!(
                items,
                [
                    (2, Ok("1.1.1.1".to_owned())),
                    (3, too_long()),
                    (4, Ok("2.2.2.2".to_owned())),
                    (5, too_long()),
                ],
                "line end {end:?}"
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_reads_and_one_byte_more_does_not() {
        let row = "1.1.1.1,1,2,1736919120,0";
        let limit = row.len() + 3;
        let input = format!("{COURSE_HEADER}\n{row},  \n{row},   \n{row}\n");
        let reader = CsvReader::with_max_line(input.as_bytes(), limit);
        assert!(matches!(reader, Err(ReadError::Header(ref m)) if m.contains("line 1")));
        let input = format!("ip,lat,lon,ts,s\n{row}\n{row}   \n{row}    \n{row}\n");
        let got: Vec<_> = CsvReader::with_max_line(input.as_bytes(), limit)
            .unwrap()
            .map(|r| match r {
                Ok(row) => (row.line, Ok(())),
                Err(ReadError::Row { line, reason }) => (line, Err(reason)),
                Err(other) => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (2, Ok(())),
                (3, Ok(())),
                (
                    4,
                    Err(format!(
                        "the line is {} bytes long; at most {limit} are read",
                        limit + 1
                    ))
                ),
                (5, Ok(()))
            ]
        );
    }

    /// Hands out its data one byte per read, so every line end straddles a read.
    struct OneByteAtATime<'a>(&'a [u8]);

    impl Read for OneByteAtATime<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&byte, rest)), Some(slot)) => {
                    *slot = byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_blank_line_longer_than_the_limit_is_still_blank() {
        // Found by fuzzing: a whitespace-only line over the limit was a "too long" row error.
        let padding = " \t".repeat(40);
        let input = format!(
            "{padding}\nip,lat,lon,ts\n1.1.1.1,1,2,1736919120\n{padding}\n2.2.2.2,1,2,1736919120\n{padding}"
        );
        for input in [input.clone(), format!("\u{feff}{input}")] {
            let got: Vec<_> = CsvReader::with_max_line(OneByteAtATime(input.as_bytes()), 30)
                .unwrap()
                .map(|r| r.map(|row| row.line).map_err(|e| e.to_string()))
                .collect();
            assert_eq!(got, [Ok(3), Ok(5)], "{input:?}");
        }
    }

    #[test]
    fn a_bom_is_skipped_only_at_the_very_start_and_only_whole() {
        let rows = "ip,lat,lon,ts\n1.1.1.1,1,2,1736919120\n";
        for input in [format!("\u{feff}{rows}"), format!("\u{feff}\n\n{rows}")] {
            assert_eq!(
                lines(input.as_bytes()),
                [input.lines().count() as u64],
                "{input:?}"
            );
        }
        // Part of a BOM is data: the header's first name is then not `ip`.
        let mut partial = b"\xef\xbb".to_vec();
        partial.extend_from_slice(rows.as_bytes());
        assert!(header_error(&partial).starts_with("missing column ip"));
        // A BOM later on is data too.
        let late = "ip,lat,lon,ts\n\u{feff}1.1.1.1,1,2,1736919120\n";
        assert_eq!(
            outcomes(late.as_bytes()),
            [(
                2,
                Err("ip: \"\\u{feff}1.1.1.1\" is not an IPv4 or IPv6 address".into())
            )]
        );
        // Inputs shorter than a BOM.
        assert!(header_error(b"\xef").starts_with("missing column"));
        assert!(header_error(b"\xef\xbb\xbf").starts_with("the input is empty"));
    }

    #[test]
    fn the_line_buffer_never_grows_past_the_line_limit() {
        let row = "1.1.1.1,1,2,1736919120,0";
        let limit = 100;
        let fits = format!("{row}{}", " ".repeat(limit - row.len()));
        let input = format!("ip,lat,lon,ts,s\n{fits}\n{}\n{row}\n", "x".repeat(1000));
        let mut reader = CsvReader::with_max_line(OneByteAtATime(input.as_bytes()), limit).unwrap();
        let bound = READ_BUFFER_BYTES + limit + 5 * std::mem::size_of::<Range<usize>>();
        let mut lines = Vec::new();
        while let Some(item) = reader.next() {
            lines.push(item.map(|row| row.line).map_err(|e| e.to_string()));
            assert!(
                reader.buffer_capacity() <= bound,
                "{}",
                reader.buffer_capacity()
            );
        }
        assert_eq!(
            lines,
            [
                Ok(2),
                Err("line 3: the line is 1000 bytes long; at most 100 are read".to_owned()),
                Ok(4)
            ]
        );
    }

    #[test]
    fn lines_read_the_same_when_every_byte_comes_in_its_own_read() {
        let lf = format!(
            "\u{feff}{COURSE_HEADER}\n1.1.1.1,1,2,1736919120,0\n\n\"3.3.3.3\",1,2,x,0\n4.4.4.4,1,2,1736919120,1"
        );
        for input in [lf.clone(), lf.replace('\n', "\r\n"), lf.replace('\n', "\r")] {
            let want = outcomes(input.as_bytes());
            assert_eq!(want.iter().map(|o| o.0).collect::<Vec<_>>(), [2, 4, 5]);
            let slow: Vec<_> = CsvReader::new(OneByteAtATime(input.as_bytes()))
                .unwrap()
                .map(|r| match r {
                    Ok(row) => (row.line, Ok(row.event.ip.to_string())),
                    Err(ReadError::Row { line, reason }) => (line, Err(reason)),
                    Err(other) => panic!("unexpected {other}"),
                })
                .collect();
            assert_eq!(slow, want, "{input:?}");
        }
    }

    #[test]
    fn a_quoted_value_on_one_line_reads_and_may_hold_commas_and_doubled_quotes() {
        let input = b"ip,lat,lon,ts,city\n\
                      \"1.2.3.4\",\"1\", \"2\" ,1736919120,\"Springfield, IL\"\n\
                      5.6.7.8,1,2,1736919120,\"The \"\"Big\"\" Apple, NY\"\n\
                      6.6.6.6,1,2,1736919120,\"open, \"\"never\"\" closed\n\
                      9.9.9.9,1,2,1736919120,ok\n";
        assert_eq!(
            outcomes(input),
            [
                (2, Ok("1.2.3.4".into())),
                (3, Ok("5.6.7.8".into())),
                (
                    4,
                    Err("cell 5 opens a quote that does not close on this line".into())
                ),
                (5, Ok("9.9.9.9".into())),
            ]
        );
    }

    #[test]
    fn text_after_a_closing_quote_keeps_the_cell_as_written() {
        let input = b"ip,lat,lon,ts\n\"1.2.3.4\"5,1,2,1736919120\n";
        assert_eq!(
            outcomes(input),
            [(
                2,
                Err("ip: \"\\\"1.2.3.4\\\"5\" is not an IPv4 or IPv6 address".into())
            )]
        );
    }

    #[test]
    fn a_header_with_an_unclosed_quote_is_a_header_error_naming_its_line() {
        let message = header_error(b"\nip,\"lat,lon,ts\n1.2.3.4,1,2,3\n");
        assert_eq!(
            message,
            "line 2: cell 2 opens a quote that does not close on this line"
        );
    }

    #[test]
    fn timestamps_in_every_accepted_format_are_read_as_unix_seconds() {
        let input = b"ip,lat,lon,timestamp\n\
                      1.1.1.1,0,0,1736919120\n\
                      1.1.1.1,0,0,1736919120.5\n\
                      1.1.1.1,0,0,1736919120000\n\
                      1.1.1.1,0,0,2025-01-15T05:32:00Z\n\
                      1.1.1.1,0,0,2025-01-15T06:32:00+01:00\n\
                      1.1.1.1,0,0,2025-01-15 05:32:00\n";
        let times: Vec<f64> = events(input).iter().map(|e| e.timestamp).collect();
        let t = 1736919120.0;
        assert_eq!(times, [t, t + 0.5, t, t, t, t]);
    }

    #[test]
    fn suspicious_flag_in_every_accepted_spelling() {
        let input = b"ip,lat,lon,timestamp,suspicious\n\
                      1.1.1.1,0,0,1736919120,0\n\
                      1.1.1.1,0,0,1736919120,1\n\
                      1.1.1.1,0,0,1736919120,0.0\n\
                      1.1.1.1,0,0,1736919120,1.0\n\
                      1.1.1.1,0,0,1736919120,true\n\
                      1.1.1.1,0,0,1736919120,False\n\
                      1.1.1.1,0,0,1736919120,\n";
        let flags: Vec<bool> = events(input).iter().map(|e| e.suspicious).collect();
        assert_eq!(flags, [false, true, false, true, true, false, false]);
    }

    #[test]
    fn damaged_rows_are_reported_with_line_and_reason_and_reading_goes_on() {
        let input = format!(
            "{COURSE_HEADER}\n\
             1.1.1.1,1,2,1736919120,0.0\n\
             2.2.2.2,1,2,17369x9120,0.0\n\
             3.3.3.3,91.5,2,1736919120,0.0\n\
             3.3.3.4,1,-180.5,1736919120,0.0\n\
             not-an-ip,1,2,1736919120,0.0\n\
             5.5.5.5,north,2,1736919120,0.0\n\
             6.6.6.6,1,2,1736919120\n\
             7.7.7.7,1,2,1736919120,0.0,extra\n\
             8.8.8.8,1,2,1736919120,0.5\n\
             ,1,2,1736919120,0.0\n\
             9.9.9.9,1,2,1736919121,1.0\n"
        );
        let want: Vec<(u64, Result<String, String>)> = vec![
            (2, Ok("1.1.1.1".into())),
            (
                3,
                Err(
                    "timestamp: \"17369x9120\" is neither a unix time nor a date-time like \
                     2025-01-15T05:32:00Z"
                        .into(),
                ),
            ),
            (4, Err("latitude: 91.5 is out of range -90..=90".into())),
            (
                5,
                Err("longitude: -180.5 is out of range -180..=180".into()),
            ),
            (
                6,
                Err("ip: \"not-an-ip\" is not an IPv4 or IPv6 address".into()),
            ),
            (7, Err("latitude: \"north\" is not a number".into())),
            (8, Err("has 4 fields, the header has 5".into())),
            (9, Err("has 6 fields, the header has 5".into())),
            (10, Err("suspicious: 0.5 is not 0 or 1".into())),
            (11, Err("ip: is empty".into())),
            (12, Ok("9.9.9.9".into())),
        ];
        assert_eq!(outcomes(input.as_bytes()), want);
        let first_error = read(input.as_bytes())
            .into_iter()
            .find_map(Result::err)
            .unwrap();
        assert!(first_error.is_row());
        assert!(
            first_error
                .to_string()
                .starts_with("line 3: timestamp: \"17369x9120\"")
        );
    }

    #[test]
    fn non_utf8_bytes_in_a_row_are_a_row_error_not_fatal() {
        let mut input = format!("{COURSE_HEADER}\n1.1.1.1,1,2,1736919120,0\n").into_bytes();
        input.extend_from_slice(b"2.2.2.\xff,1,2,1736919120,0\n3.3.3.3,1,2,1736919120,0\n");
        assert_eq!(
            outcomes(&input),
            [
                (2, Ok("1.1.1.1".into())),
                (3, Err("ip: \"2.2.2.\u{fffd}\" is not valid UTF-8".into())),
                (4, Ok("3.3.3.3".into())),
            ]
        );
    }

    #[test]
    fn non_utf8_bytes_in_an_ignored_column_do_not_matter() {
        let input = b"ip,lat,lon,ts,note\n4.4.4.4,1,2,1736919120,caf\xe9\n";
        assert_eq!(outcomes(input), [(2, Ok("4.4.4.4".into()))]);
    }

    #[test]
    fn rows_out_of_time_order_are_passed_on_in_file_order() {
        let input = b"ip,lat,lon,ts\n\
                      1.1.1.1,0,0,1736919130\n\
                      2.2.2.2,0,0,1736919120\n\
                      3.3.3.3,0,0,1736919125\n";
        let times: Vec<f64> = events(input).iter().map(|e| e.timestamp).collect();
        assert_eq!(times, [1736919130.0, 1736919120.0, 1736919125.0]);
    }

    #[test]
    fn line_numbers_stay_right_across_read_buffer_boundaries() {
        // Enough rows (~60 KB) to cross the csv crate's 8 KB buffer many times, with a blank
        // line after every seventh row and CRLF ends.
        let mut input = format!("{COURSE_HEADER}\r\n");
        let mut want = Vec::new();
        let mut line = 1;
        for i in 0..1500u32 {
            line += 1;
            input.push_str(&format!(
                "10.{}.{}.1,1.5,2.5,{},0.0\r\n",
                i / 256,
                i % 256,
                1736919120 + i
            ));
            want.push(line);
            if i % 7 == 6 {
                input.push_str("\r\n");
                line += 1;
            }
        }
        let got = read(input.as_bytes());
        assert!(got.iter().all(Result::is_ok));
        assert_eq!(lines(input.as_bytes()), want);
    }

    /// Yields `data`, then fails.
    struct FailingReader<'a> {
        data: &'a [u8],
    }

    impl Read for FailingReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.data.read(buf)?;
            Ok(n)
        }
    }

    #[test]
    fn io_error_is_reported_once_and_ends_the_rows() {
        let data = format!("{COURSE_HEADER}\n1.1.1.1,1,2,1736919120,0\n");
        let reader = CsvReader::new(FailingReader {
            data: data.as_bytes(),
        })
        .unwrap();
        let items: Vec<_> = reader.collect();
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].as_ref().unwrap().line, 2);
        match &items[1] {
            Err(e @ ReadError::Io(_)) => {
                assert!(!e.is_row());
                assert_eq!(e.to_string(), "reading CSV: disk on fire");
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn io_error_while_reading_the_header_fails_new() {
        let result = CsvReader::new(FailingReader { data: b"ip,la" });
        assert!(matches!(result, Err(ReadError::Io(_))));
    }

    #[test]
    fn from_path_names_the_path_when_the_file_cannot_be_opened() {
        let path = "/nonexistent/traffic-globe/nothing.csv";
        match CsvReader::from_path(path) {
            Err(e @ ReadError::Io(_)) => assert!(e.to_string().contains(path), "{e}"),
            Err(other) => panic!("expected an I/O error, got {other}"),
            Ok(_) => panic!("expected an I/O error"),
        }
    }
}
