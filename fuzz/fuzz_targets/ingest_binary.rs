//! `traffic::ingest::binary::parse` over arbitrary bytes: it must never panic, what it
//! accepts must respect the item limit and be in range, and accepted events written again
//! must read back as themselves.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use traffic::ingest::IngestError;
use traffic::ingest::binary::{encode, parse};

/// A small limit, so that the "too many items" path is reached by short inputs too.
const MAX_ITEMS: usize = 8;

fuzz_target!(|body: &[u8]| {
    match parse(body, MAX_ITEMS) {
        Ok(events) => {
            assert!(events.len() <= MAX_ITEMS, "{} events", events.len());
            events.iter().for_each(common::assert_in_range);
            assert_eq!(parse(&encode(&events), MAX_ITEMS).as_ref(), Ok(&events));
        }
        Err(IngestError::TooManyItems { max }) => assert_eq!(max, MAX_ITEMS),
        Err(_) => {}
    }
});
