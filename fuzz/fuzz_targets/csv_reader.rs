//! `traffic::csv::CsvReader` over arbitrary bytes, with the default line limit and a tiny
//! one: it must never panic; every error after the header is a row error naming a line
//! that exists in the input; each non-blank line after the header gives exactly one item,
//! with that line's number (one line is one row, whatever its quotes); every row read is in
//! range; and the buffers stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic::csv::{CsvReader, MAX_LINE_BYTES, ReadError};

/// The input's lines, split independently of the reader: LF, CRLF and lone CR each end one.
fn lines_of(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                lines.push(&data[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&data[start..i]);
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(&data[start..]);
    lines
}

/// 1-based numbers of the non-blank lines after the header (the first non-blank line).
fn expected_row_lines(data: &[u8]) -> Vec<u64> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut numbered = lines_of(data)
        .into_iter()
        .zip(1u64..)
        .filter(|(line, _)| !line.trim_ascii().is_empty())
        .map(|(_, number)| number);
    numbered.next(); // the header
    numbered.collect()
}

fn check(data: &[u8], max_line: usize) {
    let reader = match CsvReader::with_max_line(data, max_line) {
        Ok(reader) => reader,
        Err(ReadError::Header(_)) => return,
        Err(other) => panic!("reading a byte slice failed with {other}"),
    };
    let lines = lines_of(data).len() as u64;
    let mut items = Vec::new();
    // The read buffer, one line, and a cell table as wide as the header (itself one line).
    let bound = 64 * 1024 + max_line + (max_line + 1) * 16;
    let mut reader = reader;
    let mut last = 0;
    while let Some(item) = reader.next() {
        let line = match item {
            Ok(row) => {
                let e = row.event;
                assert_eq!(e.latitude.is_some(), e.longitude.is_some(), "{e:?}");
                if let Some((lat, lon)) = e.coordinates() {
                    assert!((-90.0..=90.0).contains(&lat), "{e:?}");
                    assert!((-180.0..=180.0).contains(&lon), "{e:?}");
                }
                assert!(e.path.as_ref().is_none_or(|p| p.len() <= traffic::event::MAX_PATH_BYTES), "{e:?}");
                assert!(e.timestamp.is_finite(), "{e:?}");
                row.line
            }
            Err(ReadError::Row { line, reason }) => {
                assert!(!reason.is_empty(), "line {line}: empty reason");
                line
            }
            Err(other) => panic!("not a row error: {other}"),
        };
        assert!(line >= 1 && line <= lines, "line {line} of {lines}");
        assert!(line > last, "line {line} after line {last}");
        last = line;
        items.push(line);
        assert!(
            reader.buffer_capacity() <= bound,
            "{} bytes buffered",
            reader.buffer_capacity()
        );
    }
    assert_eq!(items, expected_row_lines(data), "one item per non-blank line");
}

fuzz_target!(|data: &[u8]| {
    check(data, MAX_LINE_BYTES);
    check(data, 16);
});
