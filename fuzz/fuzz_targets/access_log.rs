//! `sources` parsers over arbitrary bytes, through the bounded line reader (the first byte
//! picks the format, the default line limit or a tiny one, the default buffer or the
//! smallest): never a panic; the reader numbers lines 1, 2, 3, ... up to the input's line
//! count and ends at the input's end; every record and every line error names a line in
//! range, in increasing order; timestamps are finite; detection and the suspicious rules
//! never panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sources::suspicious::Rules;
use sources::{AnyParser, Format, Line, LineReader, MAX_LINE_BYTES, ParseError, Records, detect};

/// Built once: compiling the rules costs far more than one input.
static RULES: LazyLock<Rules> = LazyLock::new(Rules::default);

fuzz_target!(|input: &[u8]| {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    let max_line = if control & 0x80 == 0 {
        MAX_LINE_BYTES
    } else {
        usize::from(control & 0x3f) + 1
    };
    // A small buffer crosses its boundaries often (and keeps runs fast); bit 6 picks the default.
    let buffer = if control & 0x40 == 0 { 0 } else { 1 << 18 };
    let newlines = data.iter().filter(|&&c| c == b'\n').count() as u64;
    let total = newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"));

    let mut reader = LineReader::with_buffer(data, max_line, buffer);
    let mut expected = 0;
    while let Some(line) = reader.next_line() {
        expected += 1;
        match line.expect("reading memory does not fail") {
            Line::Text { line, text } => {
                assert_eq!(line, expected);
                assert!(text.len() <= max_line, "line {line} over the limit");
            }
            Line::TooLong { line, len } => {
                assert_eq!(line, expected);
                assert!(len > max_line as u64);
            }
        }
    }
    assert_eq!(expected, total, "every line read once");
    assert_eq!(reader.offset(), data.len() as u64, "read to the end");

    let _ = detect(data);
    let rules = &*RULES;
    let format = Format::ALL[usize::from(control) % Format::ALL.len()];
    let parser = AnyParser::new(format, &[]).expect("no key map");
    let mut records = Records::new(LineReader::with_buffer(data, max_line, buffer), parser);
    let mut last = 0;
    while let Some(r) = records.next_record() {
        let line = match r {
            Ok(mut rec) => {
                assert!(rec.timestamp.is_finite());
                rules.apply(&mut rec);
                rec.line
            }
            Err(ParseError::Line(e)) => e.line,
            Err(ParseError::Io(e)) => panic!("reading memory failed: {e}"),
        };
        assert!(
            line > last && line <= total,
            "line {line} after {last}, of {total}"
        );
        last = line;
    }
});
