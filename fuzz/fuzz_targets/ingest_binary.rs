//! `traffic::ingest::binary::parse` over arbitrary bytes: it must never panic, what it
//! accepts must respect the item limit and be in range, and accepted events written again
//! must read back as themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic::ingest::IngestError;
use traffic::ingest::binary::{encode, parse};

/// A small limit, so that the "too many items" path is reached by short inputs too.
const MAX_ITEMS: usize = 8;

fuzz_target!(|body: &[u8]| {
    match parse(body, MAX_ITEMS) {
        Ok(events) => {
            assert!(events.len() <= MAX_ITEMS, "{} events", events.len());
            for e in &events {
                assert_eq!(e.latitude.is_some(), e.longitude.is_some(), "{e:?}");
                if let Some((lat, lon)) = e.coordinates() {
                    assert!((-90.0..=90.0).contains(&lat), "{e:?}");
                    assert!((-180.0..=180.0).contains(&lon), "{e:?}");
                }
                assert!(e.path.as_ref().is_none_or(|p| p.len() <= traffic::event::MAX_PATH_BYTES), "{e:?}");
                assert!(e.timestamp.is_finite(), "{e:?}");
                assert!(e.status.is_none_or(|s| (100..=599).contains(&s)), "{e:?}");
            }
            assert_eq!(parse(&encode(&events), MAX_ITEMS).as_ref(), Ok(&events));
        }
        Err(IngestError::TooManyItems { max }) => assert_eq!(max, MAX_ITEMS),
        Err(_) => {}
    }
});
