//! `traffic::ingest::parse_body` over arbitrary bytes: it must never panic, what it accepts
//! must respect the item limit, and every event it accepts must be in range.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use traffic::ingest::{IngestError, parse_body};

/// A small limit, so that the "too many items" path is reached by short inputs too.
const MAX_ITEMS: usize = 8;

fuzz_target!(|body: &[u8]| {
    match parse_body(body, MAX_ITEMS) {
        Ok(events) => {
            assert!(events.len() <= MAX_ITEMS, "{} events", events.len());
            events.iter().for_each(common::assert_in_range);
        }
        Err(IngestError::TooManyItems { max }) => {
            assert_eq!(max, MAX_ITEMS);
            // Refused early, so it must hold more than MAX_ITEMS items: without a limit the
            // same body is either more than MAX_ITEMS events or an error in a later item.
            if let Ok(events) = parse_body(body, usize::MAX) {
                assert!(events.len() > MAX_ITEMS, "{} items refused", events.len());
            }
        }
        Err(_) => {}
    }
});
