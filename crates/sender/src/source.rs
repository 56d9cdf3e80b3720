//! Where the rows come from: a traffic CSV or an access log (any format of the `sources`
//! crate), from a file, a `.gz` file or standard input (`-`), turned into one iterator of
//! [`Row`]s (line number and [`Event`]) or row errors, so the replay does not care which.
//!
//! With `--format auto` the first lines decide: a CSV when the first non-blank line is a
//! header the CSV reader accepts, otherwise the access-log format [`sources::detect`] finds.
//! Access-log records are flagged suspicious by the rules ([`sources::suspicious::Rules`]:
//! the default set unless `--rules FILE`); CSV rows keep their own flag.

use std::fmt;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sources::suspicious::Rules;
use sources::{AnyParser, Format, LineReader, ParseError, RecordRef, Records};
use traffic::Event;
use traffic::csv::{CsvReader, ReadError, Row};
use traffic::event::{Field, bounded_text, status_from_number};

/// How much of the input detection looks at.
const HEAD_BYTES: usize = 64 * 1024;

/// `--format`: what the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Decided from the first lines.
    #[default]
    Auto,
    /// The traffic CSV (header: ip, timestamp, ...).
    Csv,
    /// A pcap or pcapng capture.
    Pcap,
    /// A `tshark -T json` export (one array, streamed).
    TsharkJson,
    /// An access log.
    Log(Format),
}

/// Every name `--format` takes, for messages.
pub const FORMAT_NAMES: &str = "auto, csv, pcap, tshark-json, combined, common, vcombined, caddy, nginx-json, sshd, zeek, tshark-fields, tshark-ek";

impl FromStr for InputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(InputFormat::Auto),
            "csv" => Ok(InputFormat::Csv),
            "pcap" | "pcapng" => Ok(InputFormat::Pcap),
            "tshark-json" => Ok(InputFormat::TsharkJson),
            other => other
                .parse()
                .map(InputFormat::Log)
                .map_err(|_| format!("unknown format {s:?} (formats: {FORMAT_NAMES})")),
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputFormat::Auto => f.write_str("auto"),
            InputFormat::Csv => f.write_str("csv"),
            InputFormat::Pcap => f.write_str("pcap"),
            InputFormat::TsharkJson => f.write_str("tshark-json"),
            InputFormat::Log(format) => f.write_str(format.name()),
        }
    }
}

/// `--map`: `field=key` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyMap(pub Vec<(String, String)>);

/// Parses `--map field=key,...` into pairs.
pub fn parse_map(text: &str) -> Result<KeyMap, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (field, key) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not field=key"))?;
            let (field, key) = (field.trim(), key.trim());
            if field.is_empty() || key.is_empty() {
                return Err(format!("{pair:?} is not field=key"));
            }
            Ok((field.to_owned(), key.to_owned()))
        })
        .collect::<Result<_, _>>()
        .map(KeyMap)
}

/// What to read and how.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file, or `-` for standard input.
    pub path: PathBuf,
    /// The format, or auto.
    pub format: InputFormat,
    /// `field=key` pairs for the JSON formats.
    pub map: Vec<(String, String)>,
    /// Suspicious rules for access logs.
    pub rules: Arc<Rules>,
}

/// Rows of either kind (static dispatch; `Send` so the replay can run on any thread).
// One per run: the CSV variant's size (its column map) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Rows {
    /// A traffic CSV.
    Csv(CsvReader<Box<dyn Read + Send>>),
    /// An access log.
    Log(LogRows),
    /// A capture.
    Packets(PacketRows),
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rows::Csv(_) => f.write_str("Rows::Csv"),
            Rows::Log(_) => f.write_str("Rows::Log"),
            Rows::Packets(_) => f.write_str("Rows::Packets"),
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Rows::Csv(rows) => rows.next(),
            Rows::Log(rows) => rows.next(),
            Rows::Packets(rows) => rows.next(),
        }
    }
}

/// Access-log records as rows: suspicious by the rules, text fields bounded as the CSV
/// reader bounds them, an out-of-range status a row error.
pub struct LogRows {
    records: Records<Box<dyn Read + Send>, AnyParser>,
    rules: Arc<Rules>,
}

impl Iterator for LogRows {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next_record()?;
        Some(rule_row(record, &self.rules))
    }
}

/// A record flagged by the rules, as a row; a parse error as a row error.
fn rule_row(record: Result<RecordRef<'_>, ParseError>, rules: &Rules) -> Result<Row, ReadError> {
    match record {
        Ok(mut record) => {
            rules.apply(&mut record);
            to_row(&record)
        }
        Err(ParseError::Line(e)) => Err(ReadError::Row {
            line: e.line,
            reason: e.reason,
        }),
        Err(ParseError::Io(e)) => Err(ReadError::Io(e)),
    }
}

/// Records that are not lines (packets of a capture or of a `tshark -T json` array).
type RecordIter = Box<dyn Iterator<Item = Result<RecordRef<'static>, ParseError>> + Send>;

/// Packets as rows, numbered by packet, suspicious by the rules (which look at paths and user
/// agents, so none is flagged today).
pub struct PacketRows {
    packets: RecordIter,
    rules: Arc<Rules>,
}

impl Iterator for PacketRows {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(rule_row(self.packets.next()?, &self.rules))
    }
}

/// One record as an event (no coordinates: the server places it by its IP).
pub fn to_row(record: &RecordRef<'_>) -> Result<Row, ReadError> {
    let status = match record.status {
        Some(status) => {
            Some(
                status_from_number(f64::from(status)).map_err(|e| ReadError::Row {
                    line: record.line,
                    reason: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    let text = |field, value: &Option<std::borrow::Cow<'_, str>>| {
        value.as_deref().and_then(|v| bounded_text(field, v))
    };
    Ok(Row {
        line: record.line,
        event: Event {
            bytes: record.bytes,
            status,
            method: text(Field::Method, &record.method),
            path: text(Field::Path, &record.path),
            protocol: text(Field::Protocol, &record.protocol),
            dest_ip: record.dest_ip,
            src_port: record.src_port,
            dest_port: record.dest_port,
            ..Event::new(record.ip, record.timestamp, record.suspicious == Some(true))
        },
    })
}

/// The input opened and its format decided.
#[derive(Debug)]
pub struct Opened {
    /// The rows.
    pub rows: Rows,
    /// The format read (never `Auto`).
    pub format: InputFormat,
}

/// Opens `spec.path` (`-`: standard input; gzip by its magic bytes) and decides its format.
pub fn open(spec: &Spec) -> Result<Opened, ReadError> {
    let with_path = |e: io::Error| {
        ReadError::Io(io::Error::new(
            e.kind(),
            format!("{}: {e}", spec.path.display()),
        ))
    };
    let mut input = sources::open(&spec.path).map_err(with_path)?;
    let head = read_head(&mut input).map_err(with_path)?;
    let format = match spec.format {
        InputFormat::Auto if sources::pcap::is_capture(&head) => InputFormat::Pcap,
        InputFormat::Auto if sources::tshark_json::is_tshark_json(&head) => InputFormat::TsharkJson,
        InputFormat::Auto => detect(&head).ok_or_else(|| {
            ReadError::Header(format!(
                "{}: the format is not recognised: the first lines are neither a CSV with a \
                 header (ip, timestamp, ...) nor an access log of a known format; name it \
                 with --format ({FORMAT_NAMES})",
                spec.path.display()
            ))
        })?,
        known => known,
    };
    let input: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(input));
    let rows = match format {
        InputFormat::Pcap | InputFormat::TsharkJson if !spec.map.is_empty() => {
            return Err(ReadError::Header(format!(
                "--map applies to the JSON access-log formats (caddy, nginx-json), not to {format}"
            )));
        }
        InputFormat::Pcap => Rows::Packets(PacketRows {
            packets: Box::new(sources::pcap::PcapRecords::new(input).map_err(with_path)?),
            rules: Arc::clone(&spec.rules),
        }),
        InputFormat::TsharkJson => Rows::Packets(PacketRows {
            packets: Box::new(sources::tshark_json::TsharkJsonRecords::new(input)),
            rules: Arc::clone(&spec.rules),
        }),
        InputFormat::Log(format) => {
            let parser = AnyParser::new(format, &spec.map)
                .map_err(|e| ReadError::Header(format!("--map: {e}")))?;
            Rows::Log(LogRows {
                records: Records::new(LineReader::new(input), parser),
                rules: Arc::clone(&spec.rules),
            })
        }
        _ if !spec.map.is_empty() => {
            return Err(ReadError::Header(
                "--map applies to the JSON access-log formats (caddy, nginx-json), not to CSV"
                    .into(),
            ));
        }
        _ => Rows::Csv(CsvReader::new(input).map_err(|e| match e {
            ReadError::Io(e) => with_path(e),
            other => other,
        })?),
    };
    Ok(Opened { rows, format })
}

/// The format of an input starting with `head`: CSV when its first non-blank line is a header
/// the CSV reader accepts, else the access-log format detected, else `None`.
pub fn detect(head: &[u8]) -> Option<InputFormat> {
    let first = head
        .split(|&b| b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())?;
    if CsvReader::new(first).is_ok() {
        return Some(InputFormat::Csv);
    }
    sources::detect(head).map(InputFormat::Log)
}

/// Up to [`HEAD_BYTES`] from the start of the input.
fn read_head(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    input.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// True for standard input, which can be read only once.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = "\
203.0.113.9 - - [15/Jan/2025:05:32:00 +0000] \"GET /index.html HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"
203.0.113.10 - - [15/Jan/2025:05:32:01 +0000] \"GET /.env HTTP/1.1\" 404 - \"-\" \"curl/8\"
2001:db8::7 - - [15/Jan/2025:05:32:02 +0000] \"POST /api HTTP/2.0\" 201 17 \"-\" \"sqlmap/1.7\"
";

    fn spec(path: &Path, format: InputFormat) -> Spec {
        Spec {
            path: path.to_owned(),
            format,
            map: Vec::new(),
            rules: Arc::new(Rules::default()),
        }
    }

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("sender-source-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(spec: &Spec) -> (InputFormat, Vec<Result<Row, String>>) {
        let opened = open(spec).unwrap();
        let rows = opened.rows.map(|r| r.map_err(|e| e.to_string())).collect();
        (opened.format, rows)
    }

    #[test]
    fn captures_exports_and_auth_logs_are_detected_not_taken_for_csv() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sources/tests/fixtures/");
        for (name, format, rows) in [
            ("tshark-fields.csv", Format::TsharkFields, 14),
            ("tshark.ek.json", Format::TsharkEk, 5),
            ("auth.log", Format::Sshd, 7),
            ("conn.log", Format::Zeek, 4),
        ] {
            let path = PathBuf::from(dir).join(name);
            let (got, read) = read(&spec(&path, InputFormat::Auto));
            assert_eq!(got, InputFormat::Log(format), "{name}");
            assert_eq!(read.len(), rows, "{name}");
        }
        for (name, format, packets) in [
            ("lo-microsecond.pcap", InputFormat::Pcap, 14),
            ("lo-nanosecond.pcapng", InputFormat::Pcap, 14),
            ("tshark.json", InputFormat::TsharkJson, 4),
        ] {
            let path = PathBuf::from(dir).join(name);
            let (got, read) = read(&spec(&path, InputFormat::Auto));
            assert_eq!(got, format, "{name}");
            assert_eq!(read.len(), packets, "{name}");
            let first = read[0].as_ref().unwrap();
            assert_eq!(first.line, 1);
            assert_eq!(first.event.bytes, Some(49));
            assert_eq!(first.event.dest_ip, Some("127.0.0.1".parse().unwrap()));
            if format == InputFormat::Pcap {
                assert!(
                    first.event.dest_port.is_some(),
                    "{name}: ports of {first:?}"
                );
            }
        }
    }

    #[test]
    fn formats_are_named_auto_csv_or_an_access_log_format() {
        assert_eq!("auto".parse(), Ok(InputFormat::Auto));
        assert_eq!("CSV".parse(), Ok(InputFormat::Csv));
        assert_eq!(
            "nginx-json".parse(),
            Ok(InputFormat::Log(Format::NginxJson))
        );
        let err = "apache".parse::<InputFormat>().unwrap_err();
        assert!(err.contains(FORMAT_NAMES), "{err}");
        assert_eq!(
            parse_map("ip=remote, timestamp=t").unwrap().0,
            [
                ("ip".to_owned(), "remote".to_owned()),
                ("timestamp".to_owned(), "t".to_owned())
            ]
        );
        assert!(parse_map("ip").is_err());
    }

    #[test]
    fn a_combined_log_is_detected_and_its_records_become_events_flagged_by_the_rules() {
        let path = temp("combined.log", COMBINED.as_bytes());
        let (format, rows) = read(&spec(&path, InputFormat::Auto));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(format, InputFormat::Log(Format::Combined));
        let rows: Vec<Row> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        let first = &rows[0];
        assert_eq!(first.line, 1);
        assert_eq!(first.event.ip.to_string(), "203.0.113.9");
        assert_eq!(first.event.timestamp, 1_736_919_120.0);
        assert_eq!(first.event.coordinates(), None);
        assert_eq!(first.event.bytes, Some(512));
        assert_eq!(first.event.status, Some(200));
        assert_eq!(first.event.method.as_deref(), Some("GET"));
        assert_eq!(first.event.path.as_deref(), Some("/index.html"));
        assert_eq!(first.event.protocol.as_deref(), Some("HTTP/1.1"));
        assert!(!first.event.suspicious);
        assert_eq!(rows[1].event.bytes, None, "`-` bytes");
        assert!(rows[1].event.suspicious, "probe path /.env");
        assert!(rows[2].event.suspicious, "scanner agent");
        assert_eq!(rows[2].event.ip.to_string(), "2001:db8::7");
    }

    #[test]
    fn without_rules_nothing_is_flagged() {
        let path = temp("norules.log", COMBINED.as_bytes());
        let mut spec = spec(&path, InputFormat::Log(Format::Combined));
        spec.rules = Arc::new(Rules::none());
        let (_, rows) = read(&spec);
        std::fs::remove_file(&path).unwrap();
        assert!(rows.iter().all(|r| !r.as_ref().unwrap().event.suspicious));
    }

    #[test]
    fn a_csv_header_is_detected_as_csv_and_gzip_is_read_through() {
        use std::io::Write;
        let csv = "ip address,Latitude,Longitude,Timestamp,suspicious\n1.1.1.1,1,2,1736919120,1\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(csv.as_bytes()).unwrap();
        let path = temp("traffic.csv.gz", &gz.finish().unwrap());
        let (format, rows) = read(&spec(&path, InputFormat::Auto));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(format, InputFormat::Csv);
        let row = rows[0].as_ref().unwrap();
        assert_eq!((row.line, row.event.suspicious), (2, true));
        assert_eq!(row.event.coordinates(), Some((1.0, 2.0)));
    }

    #[test]
    fn an_unrecognised_input_is_an_error_naming_the_formats() {
        let path = temp("what.txt", b"hello world\nnothing here\n");
        let err = open(&spec(&path, InputFormat::Auto))
            .unwrap_err()
            .to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("not recognised"), "{err}");
        assert!(err.contains(FORMAT_NAMES), "{err}");
    }

    #[test]
    fn bad_lines_are_row_errors_with_their_line_numbers() {
        let text = format!(
            "{COMBINED}garbage line\n1.2.3.4 - - [15/Jan/2025:05:32:03 +0000] \"GET / HTTP/1.1\" 999 1 \"-\" \"x\"\n"
        );
        let path = temp("bad.log", text.as_bytes());
        let (_, rows) = read(&spec(&path, InputFormat::Log(Format::Combined)));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(rows.len(), 5);
        let e4 = rows[3].as_ref().unwrap_err();
        assert!(e4.starts_with("line 4: "), "{e4}");
        let e5 = rows[4].as_ref().unwrap_err();
        assert!(e5.starts_with("line 5: status"), "{e5}");
    }

    #[test]
    fn a_map_is_refused_for_csv_and_clf() {
        let path = temp("map.log", COMBINED.as_bytes());
        let mut spec = spec(&path, InputFormat::Auto);
        spec.map = vec![("ip".into(), "remote".into())];
        let err = open(&spec).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("--map"), "{err}");
    }
}
