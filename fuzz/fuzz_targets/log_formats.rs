//! The line parsers added for real sources (sshd, Zeek conn.log, tshark fields and ek) over
//! arbitrary bytes, through the bounded line reader; the first byte picks the parser and the
//! line limit. Never a panic; every record and every line error names a line in range, in
//! increasing order; timestamps are finite and not negative; header lines (Zeek `#fields`,
//! tshark's header) may change the columns mid-input without harm.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sources::{AnyParser, Format, LineReader, ParseError, Records};

const FORMATS: [Format; 4] = [
    Format::Sshd,
    Format::Zeek,
    Format::TsharkFields,
    Format::TsharkEk,
];

fuzz_target!(|input: &[u8]| {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(control & 3)];
    let max_line = if control & 0x80 == 0 {
        sources::MAX_LINE_BYTES
    } else {
        usize::from(control & 0x3c) + 1
    };
    let newlines = data.iter().filter(|&&c| c == b'\n').count() as u64;
    let total = newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"));
    let parser = AnyParser::new(format, &[]).expect("no key map");
    let mut records = Records::new(LineReader::with_buffer(data, max_line, 0), parser);
    let mut last = 0;
    while let Some(r) = records.next_record() {
        let line = match r {
            Ok(rec) => {
                assert!(rec.timestamp.is_finite() && rec.timestamp >= 0.0);
                rec.line
            }
            Err(ParseError::Line(e)) => e.line,
            Err(ParseError::Io(e)) => panic!("reading memory failed: {e}"),
        };
        assert!(line > last && line <= total, "line {line} after {last}, of {total}");
        last = line;
    }
    let _ = sources::detect(data);
});
