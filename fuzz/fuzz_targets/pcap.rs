//! `sources::pcap::PcapRecords` over arbitrary bytes (seeded with real pcap and pcapng
//! captures): never a panic or a hang; packet numbers increase by at least one per record;
//! there are no more packets than 16-byte record headers fit in the input; timestamps are
//! finite and not negative; after an error that ends the capture, nothing more is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sources::ParseError;
use sources::pcap::PcapRecords;

fuzz_target!(|data: &[u8]| {
    let Ok(records) = PcapRecords::new(data) else {
        return;
    };
    let mut last = 0;
    let mut ended = false;
    for r in records {
        assert!(!ended, "a record after the capture ended");
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
        assert!(number > last, "packet {number} after {last}");
        assert!(number as usize <= data.len() / 12 + 1, "more packets than the input holds");
        last = number;
    }
});
