//! `sources::tshark_json::TsharkJsonRecords` over arbitrary bytes (seeded with a real
//! `tshark -T json` export): never a panic; record numbers increase; no more records than
//! `{` bytes in the input; timestamps finite and not negative; nothing after a fatal error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sources::ParseError;
use sources::tshark_json::TsharkJsonRecords;

fuzz_target!(|data: &[u8]| {
    let objects = data.iter().filter(|&&b| b == b'{').count() as u64;
    let mut last = 0;
    let mut ended = false;
    for r in TsharkJsonRecords::new(data) {
        assert!(!ended, "a record after a fatal error");
        let number = match r {
            Ok(rec) => {
                assert!(rec.timestamp.is_finite() && rec.timestamp >= 0.0);
                rec.line
            }
            Err(ParseError::Line(e)) => e.line,
            Err(ParseError::Io(_)) => {
                ended = true;
                continue;
            }
        };
        assert!(number > last && number <= objects, "record {number} after {last}, {objects} objects");
        last = number;
    }
});
