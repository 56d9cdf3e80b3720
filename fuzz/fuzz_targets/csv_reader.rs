//! `traffic::csv::CsvReader` over arbitrary bytes, with the default line limit and a tiny
//! one: it must never panic; every error after the header is a row error naming a line
//! that exists in the input, lines only go forward, and the buffers stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic::csv::{CsvReader, MAX_LINE_BYTES, ReadError};

/// Lines in `data` as the reader counts them: LF, CRLF and lone CR each end one.
fn line_count(data: &[u8]) -> u64 {
    let mut ends = 0;
    for (i, &b) in data.iter().enumerate() {
        let crlf_cr = b == b'\r' && data.get(i + 1) == Some(&b'\n');
        if b == b'\n' || (b == b'\r' && !crlf_cr) {
            ends += 1;
        }
    }
    ends + 1
}

fn check(data: &[u8], max_line: usize) {
    let reader = match CsvReader::with_max_line(data, max_line) {
        Ok(reader) => reader,
        Err(ReadError::Header(_)) => return,
        Err(other) => panic!("reading a byte slice failed with {other}"),
    };
    let lines = line_count(data);
    // The read buffer, one line, and a cell table as wide as the header (itself one line).
    let bound = 64 * 1024 + max_line + (max_line + 1) * 16;
    let mut reader = reader;
    let mut last = 0;
    while let Some(item) = reader.next() {
        let line = match item {
            Ok(row) => row.line,
            Err(ReadError::Row { line, reason }) => {
                assert!(!reason.is_empty(), "line {line}: empty reason");
                line
            }
            Err(other) => panic!("not a row error: {other}"),
        };
        assert!(line >= 1 && line <= lines, "line {line} of {lines}");
        assert!(line > last, "line {line} after line {last}");
        last = line;
        assert!(
            reader.buffer_capacity() <= bound,
            "{} bytes buffered",
            reader.buffer_capacity()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, MAX_LINE_BYTES);
    check(data, 16);
});
