//! The dedupe rule of an import (see [`super`]): the stored events it is compared with,
//! counted by fingerprint, read range by range as the file's rows come.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::quality::FixedState;
use history::range::{Filter, Reader, TimeRange};
use traffic::Event;

/// Stored events read per step while counting fingerprints.
const STORE_PAGE: usize = 10_000;

/// Rows closer in data time than this are compared with one stretch of the store; a gap
/// wider than it is not read (a fingerprint holds the exact time, so only stored events at
/// the file's own times can match): a file with a row from last year and rows from today
/// reads two short stretches, not the year between.
const STRETCH_GAP_SECS: f64 = 60.0;

/// The stored events an import is compared with: those with `seq <= baseline`, counted by
/// fingerprint over the data time read so far.
pub(super) struct Stored {
    reader: Box<dyn Reader>,
    baseline: u64,
    /// Stored copies of each fingerprint not yet matched by a row of the file.
    unmatched: HashMap<u128, u32>,
    /// Data time already read from the store: sorted, disjoint `[from, to)` intervals.
    covered: Vec<(f64, f64)>,
    hashers: (FixedState, FixedState),
}

impl Stored {
    pub(super) fn new(reader: Box<dyn Reader>, baseline: u64) -> Self {
        Self {
            reader,
            baseline,
            unmatched: HashMap::new(),
            covered: Vec::new(),
            hashers: (FixedState::with_seed(0x1a2b), FixedState::with_seed(0x3c4d)),
        }
    }

    /// Counts the stored events of the data time `events` span that were not read before.
    pub(super) fn read_range_of(&mut self, events: &[Event]) -> history::Result<()> {
        if self.baseline == 0 || events.is_empty() {
            return Ok(());
        }
        for wanted in stretches(events) {
            self.read_stretch(wanted)?;
        }
        Ok(())
    }

    /// Counts the stored events of `[from, to)` that were not read before.
    fn read_stretch(&mut self, wanted: (f64, f64)) -> history::Result<()> {
        for (from, to) in gaps(&self.covered, wanted) {
            let range = TimeRange {
                from: Some(from),
                to: Some(to),
            };
            let mut after = 0;
            'pages: loop {
                let page = self
                    .reader
                    .events(range, &Filter::default(), after, STORE_PAGE)?;
                let full = page.len() == STORE_PAGE;
                for stored in page {
                    if stored.seq > self.baseline {
                        break 'pages;
                    }
                    after = stored.seq;
                    let key = fingerprint(&self.hashers, &stored.event);
                    *self.unmatched.entry(key).or_default() += 1;
                }
                if !full {
                    break;
                }
            }
        }
        cover(&mut self.covered, wanted);
        Ok(())
    }

    /// Whether `event` matches a stored copy not matched yet (and uses it up). Its data
    /// time must have been read ([`Stored::read_range_of`]).
    pub(super) fn take(&mut self, event: &Event) -> bool {
        if self.baseline == 0 {
            return false;
        }
        let key = fingerprint(&self.hashers, event);
        match self.unmatched.get_mut(&key) {
            None => false,
            Some(1) => {
                self.unmatched.remove(&key);
                true
            }
            Some(copies) => {
                *copies -= 1;
                true
            }
        }
    }
}

/// The stretches of data time `events` cover, `[first, latest]` of each run of times no
/// more than [`STRETCH_GAP_SECS`] apart, as `[from, to)` intervals in time order.
fn stretches(events: &[Event]) -> Vec<(f64, f64)> {
    let mut times: Vec<f64> = events.iter().map(|e| e.timestamp).collect();
    times.sort_by(f64::total_cmp);
    let mut out: Vec<(f64, f64)> = Vec::new();
    for t in times {
        match out.last_mut() {
            Some((_, to)) if t - *to <= STRETCH_GAP_SECS => *to = to.max(t.next_up()),
            _ => out.push((t, t.next_up())),
        }
    }
    out
}

/// 128 bits of every field of `event` the history keeps (a new field of [`Event`] fails
/// to compile here until it is added, or said to be left out).
fn fingerprint(hashers: &(FixedState, FixedState), event: &Event) -> u128 {
    let hash = |state: &FixedState| {
        let mut hasher = state.build_hasher();
        feed_fields(&mut hasher, event);
        hasher.finish()
    };
    (u128::from(hash(&hashers.0)) << 64) | u128::from(hash(&hashers.1))
}

fn feed_fields(hasher: &mut impl Hasher, event: &Event) {
    let Event {
        ip,
        latitude,
        longitude,
        timestamp,
        suspicious,
        bytes,
        protocol,
        status,
        method,
        path,
        dest_ip,
        // Not kept by the history (README, export): a stored copy has none, so a file
        // carrying them would never match it. Hash them once the store keeps them.
        src_port: _,
        dest_port: _,
        packets: _,
    } = event;
    ip.hash(hasher);
    latitude.map(f64::to_bits).hash(hasher);
    longitude.map(f64::to_bits).hash(hasher);
    timestamp.to_bits().hash(hasher);
    suspicious.hash(hasher);
    bytes.hash(hasher);
    protocol.hash(hasher);
    status.hash(hasher);
    method.hash(hasher);
    path.hash(hasher);
    dest_ip.hash(hasher);
}

/// The parts of `[from, to)` outside the sorted, disjoint intervals of `covered`.
fn gaps(covered: &[(f64, f64)], (from, to): (f64, f64)) -> Vec<(f64, f64)> {
    let mut gaps = Vec::new();
    let mut at = from;
    for &(start, end) in covered {
        if end <= at {
            continue;
        }
        if start >= to {
            break;
        }
        if start > at {
            gaps.push((at, start));
        }
        at = end;
        if at >= to {
            break;
        }
    }
    if at < to {
        gaps.push((at, to));
    }
    gaps
}

/// Adds `[from, to)` to `covered`, keeping it sorted and disjoint (touching intervals merge).
fn cover(covered: &mut Vec<(f64, f64)>, interval: (f64, f64)) {
    covered.push(interval);
    covered.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(covered.len());
    for &(start, end) in covered.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *covered = merged;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    use history::range::RangeSummary;
    use history::{Located, StoredEvent};

    use super::*;

    /// A store in memory that pages as the real one does, counting the events it reads.
    struct Memory {
        events: Vec<StoredEvent>,
        read: Arc<AtomicUsize>,
    }

    impl Reader for Memory {
        fn summary(&self, _: TimeRange, _: &Filter, _: usize) -> history::Result<RangeSummary> {
            unreachable!("not asked")
        }

        fn events(
            &self,
            range: TimeRange,
            _: &Filter,
            after: u64,
            limit: usize,
        ) -> history::Result<Vec<StoredEvent>> {
            let page: Vec<StoredEvent> = self
                .events
                .iter()
                .filter(|e| e.seq > after)
                .filter(|e| range.from.is_none_or(|f| f <= e.event.timestamp))
                .filter(|e| range.to.is_none_or(|t| e.event.timestamp < t))
                .take(limit)
                .cloned()
                .collect();
            self.read.fetch_add(page.len(), Relaxed);
            Ok(page)
        }
    }

    fn event(i: u8, timestamp: f64) -> Event {
        Event::at(
            std::net::IpAddr::from([10, 0, 0, i]),
            1.0,
            2.0,
            timestamp,
            false,
        )
    }

    fn stored(events: &[Event]) -> (Box<dyn Reader>, Arc<AtomicUsize>) {
        let read = Arc::new(AtomicUsize::new(0));
        let events = events
            .iter()
            .enumerate()
            .map(|(i, e)| StoredEvent {
                seq: i as u64 + 1,
                received_ms: 0,
                event: e.clone(),
                located: Located::Event(0),
                network: None,
            })
            .collect();
        let reader = Memory {
            events,
            read: Arc::clone(&read),
        };
        (Box::new(reader), read)
    }

    #[test]
    fn gaps_are_what_the_covered_intervals_leave_of_a_range() {
        let mut covered = Vec::new();
        assert_eq!(gaps(&covered, (0.0, 10.0)), vec![(0.0, 10.0)]);
        cover(&mut covered, (2.0, 4.0));
        cover(&mut covered, (6.0, 8.0));
        assert_eq!(
            gaps(&covered, (0.0, 10.0)),
            vec![(0.0, 2.0), (4.0, 6.0), (8.0, 10.0)]
        );
        assert_eq!(gaps(&covered, (3.0, 7.0)), vec![(4.0, 6.0)]);
        assert_eq!(gaps(&covered, (2.5, 3.5)), vec![]);
        cover(&mut covered, (4.0, 6.0));
        assert_eq!(covered, vec![(2.0, 8.0)], "touching intervals merge");
        cover(&mut covered, (0.0, 1.0));
        assert_eq!(covered, vec![(0.0, 1.0), (2.0, 8.0)]);
    }

    #[test]
    fn each_stored_copy_matches_one_row_and_the_rest_are_new_whatever_the_chunks() {
        let (a, b, c) = (event(1, 10.0), event(2, 20.0), event(3, 15.0));
        // Stored: a twice, b once; and, after the baseline, c (not compared).
        let (reader, read) = stored(&[a.clone(), b.clone(), a.clone(), c.clone()]);
        let mut store = Stored::new(reader, 3);
        // The file: a three times, b twice, c once, in chunks out of time order.
        let chunks = [
            vec![b.clone(), a.clone()],
            vec![c.clone(), a.clone()],
            vec![a.clone(), b.clone()],
        ];
        let mut duplicates = Vec::new();
        for chunk in &chunks {
            store.read_range_of(chunk).unwrap();
            for e in chunk {
                duplicates.push(store.take(e));
            }
        }
        assert_eq!(
            duplicates,
            [true, true, false, true, false, false],
            "b, a stored; c new; a stored; a and b beyond their stored copies"
        );
        // The first chunk spans all four (c read and left); later chunks read nothing again.
        assert_eq!(read.load(Relaxed), 4, "each stored event read once");
    }

    #[test]
    fn rows_far_apart_in_time_read_only_the_store_near_them_not_the_time_between() {
        // A year of stored events, one a day; the file has a row from its first day and one
        // from its last.
        let year: Vec<Event> = (0..365u32)
            .map(|day| event((day % 250) as u8, f64::from(day) * 86_400.0))
            .collect();
        let (reader, read) = stored(&year);
        let mut store = Stored::new(reader, 365);
        let chunk = [year[364].clone(), year[0].clone()];
        store.read_range_of(&chunk).unwrap();
        assert!(store.take(&chunk[0]) && store.take(&chunk[1]));
        assert_eq!(read.load(Relaxed), 2, "the two days, not the 363 between");
        assert!(store.unmatched.is_empty());
    }

    #[test]
    fn with_nothing_stored_nothing_is_read_and_every_row_is_new() {
        let (reader, read) = stored(&[event(1, 10.0)]);
        let mut store = Stored::new(reader, 0);
        let chunk = [event(1, 10.0)];
        store.read_range_of(&chunk).unwrap();
        assert!(!store.take(&chunk[0]));
        assert_eq!(read.load(Relaxed), 0);
    }

    #[test]
    fn a_fingerprint_changes_with_every_field_the_history_keeps() {
        let hashers = (FixedState::with_seed(1), FixedState::with_seed(2));
        let base = Event {
            bytes: Some(10),
            protocol: Some("TCP".into()),
            status: Some(200),
            method: Some("GET".into()),
            path: Some("/".into()),
            dest_ip: Some([10, 0, 0, 9].into()),
            src_port: Some(1),
            dest_port: Some(2),
            packets: Some(3),
            ..event(1, 10.0)
        };
        let variants = [
            Event {
                ip: [10, 0, 0, 2].into(),
                ..base.clone()
            },
            Event {
                latitude: Some(1.5),
                ..base.clone()
            },
            Event {
                longitude: Some(2.5),
                ..base.clone()
            },
            Event {
                latitude: None,
                longitude: None,
                ..base.clone()
            },
            Event {
                timestamp: 10.5,
                ..base.clone()
            },
            Event {
                suspicious: true,
                ..base.clone()
            },
            Event {
                bytes: None,
                ..base.clone()
            },
            Event {
                protocol: Some("UDP".into()),
                ..base.clone()
            },
            Event {
                status: Some(404),
                ..base.clone()
            },
            Event {
                method: None,
                ..base.clone()
            },
            Event {
                path: Some("/a".into()),
                ..base.clone()
            },
            Event {
                dest_ip: None,
                ..base.clone()
            },
        ];
        let key = fingerprint(&hashers, &base);
        for variant in &variants {
            assert_ne!(key, fingerprint(&hashers, variant), "{variant:?}");
        }
        // What the history drops (ports, packets) cannot tell a file's row from its copy.
        let unkept = Event {
            src_port: None,
            dest_port: Some(9),
            packets: None,
            ..base.clone()
        };
        assert_eq!(key, fingerprint(&hashers, &unkept));
    }
}
