//! What every store writes the same way: events encoded into blocks of consecutive sequence
//! numbers (src/codec.rs), one row per block, and their rollups per minute and per hour by
//! data time, counted in memory and written now and then in the transaction of a commit.
//! The backends only say how a block row and a rollup row reach their database.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use traffic::{Event, Place};

use crate::codec::{Decoder, Encoder, Row, Where};
use crate::{Error, Located, NewEvent, Result, StoredEvent};

/// Most events in one block: a range query's edges and a page decode at most a few blocks.
pub(crate) const BLOCK_EVENTS: usize = 4096;

/// Rollups pending at most this long (a reader then decodes at most this much of the
/// newest events in the window).
pub(crate) const ROLLUP_EVERY: Duration = Duration::from_secs(1);
/// ... or this many events.
const ROLLUP_EVENTS: u64 = 1_000_000;
/// ... or this many distinct minute rows (bounds the writer's memory whatever the data).
pub(crate) const ROLLUP_ROWS: usize = 100_000;

/// The country code of each stored place, by place key: looked up for every event a commit
/// stores, so with foldhash (randomly seeded) rather than SipHash.
pub(crate) type Countries = HashMap<u64, String, foldhash::fast::RandomState>;

/// An event on its way into a block, with the country its place is in.
pub(crate) struct Item<'a> {
    pub row: Row<'a>,
    pub country: Option<&'a str>,
}

/// A block ready to store: events `first_seq..=last_seq`, data times in `[min, max]`; its
/// data borrowed from the encoder's buffer, which the next block reuses.
pub(crate) struct Block<'a> {
    pub first_seq: u64,
    pub last_seq: u64,
    pub min_timestamp: f64,
    pub max_timestamp: f64,
    pub data: &'a [u8],
}

/// Checks that `events` continue the stored sequence (the next is `next_seq`), one by one.
pub(crate) fn check_sequence(next_seq: u64, events: &[NewEvent<'_>]) -> Result<()> {
    for (i, new) in events.iter().enumerate() {
        let expected = next_seq + i as u64;
        if new.seq != expected {
            return Err(Error::OutOfSequence {
                expected,
                got: new.seq,
            });
        }
    }
    Ok(())
}

/// The items of `events`, and the places they refer to that `known` (places stored, by
/// key) does not have yet, each once.
pub(crate) fn items<'a>(
    events: &'a [NewEvent<'a>],
    known: &Countries,
) -> (Vec<Item<'a>>, Vec<&'a Place>) {
    let mut added: Vec<&Place> = Vec::new();
    // Beside `added`: a commit of 100,000 events can bring thousands of new places.
    let mut added_keys: HashSet<u64, foldhash::fast::RandomState> = HashSet::default();
    let items = events
        .iter()
        .map(|new| {
            let (place, located) = match &new.located {
                Located::Event(place) => (Some(*place), Where::Event(place.key)),
                Located::Ip {
                    place,
                    latitude,
                    longitude,
                } => (Some(*place), Where::Ip(place.key, *latitude, *longitude)),
                Located::Unlocated(reason) => (None, Where::Unlocated(reason)),
            };
            if let Some(place) = place
                && !known.contains_key(&place.key)
                && added_keys.insert(place.key)
            {
                added.push(place);
            }
            Item {
                row: Row {
                    received_ms: new.received_ms,
                    event: new.event,
                    located,
                    network: new.network,
                },
                country: place.map(|p| p.country_code.as_str()),
            }
        })
        .collect();
    (items, added)
}

/// Encodes `items` (seq `first_seq` onwards) into blocks, handing each to `store`; returns
/// their rollups.
pub(crate) fn encode(
    encoder: &mut Encoder,
    first_seq: u64,
    items: &[Item<'_>],
    store: &mut dyn FnMut(Block<'_>) -> Result<()>,
) -> Result<Rollups> {
    let mut rollups = Rollups::default();
    let mut seq = first_seq;
    for block in items.chunks(BLOCK_EVENTS) {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for item in block {
            encoder.push(&item.row);
            let t = item.row.event.timestamp;
            min = min.min(t);
            max = max.max(t);
            rollups.add(item.row.located, item.country, item.row.event);
        }
        debug_assert_eq!(encoder.len(), block.len());
        let last = seq + block.len() as u64 - 1;
        store(Block {
            first_seq: seq,
            last_seq: last,
            min_timestamp: min,
            max_timestamp: max,
            data: encoder.finish(),
        })?;
        seq = last + 1;
    }
    Ok(rollups)
}

/// Visits the events of the block whose first event has seq `first` until `visit` says
/// stop (false); returns whether it went to the end.
pub(crate) fn decode(
    first: u64,
    data: &[u8],
    visit: &mut dyn FnMut(StoredEvent) -> bool,
) -> Result<bool> {
    let mut decoder = Decoder::new(data, first);
    let mut seq = first;
    while let Some(event) = decoder.next_event() {
        let event = event.map_err(|reason| Error::Corrupt { seq, reason })?;
        seq += 1;
        if !visit(event) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Blocks that hold events on both sides of a retention cutoff, read and rewritten this many
/// at a time (memory stays a few blocks' worth whatever their number); one at a time in
/// this crate's tests, so the conformance case goes through several pages.
pub(crate) const REWRITE_PAGE: i64 = if cfg!(test) { 1 } else { 16 };

/// What retention keeps of the block whose first event has seq `first`: its events at or
/// after `cutoff` as runs of consecutive seqs (a block decodes by consecutive seqs, so each
/// run becomes a block of its own), and how many it deletes.
pub(crate) fn split_block(
    first: u64,
    data: &[u8],
    cutoff: f64,
) -> Result<(Vec<Vec<StoredEvent>>, u64)> {
    let mut runs: Vec<Vec<StoredEvent>> = Vec::new();
    let mut deleted = 0;
    decode(first, data, &mut |stored| {
        if stored.event.timestamp < cutoff {
            deleted += 1;
        } else {
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|last| last.seq + 1 == stored.seq) => {
                    run.push(stored);
                }
                _ => runs.push(vec![stored]),
            }
        }
        true
    })?;
    Ok((runs, deleted))
}

/// Stored events as items to encode again (their country is not needed: the rollups of an
/// encoding are not used when a block is rewritten).
pub(crate) fn stored_items(events: &[StoredEvent]) -> Vec<Item<'_>> {
    events
        .iter()
        .map(|stored| Item {
            row: Row {
                received_ms: stored.received_ms,
                event: &stored.event,
                located: match &stored.located {
                    Located::Event(key) => Where::Event(*key),
                    Located::Ip {
                        place,
                        latitude,
                        longitude,
                    } => Where::Ip(*place, *latitude, *longitude),
                    Located::Unlocated(reason) => Where::Unlocated(reason),
                },
                network: stored.network.as_ref().map(|(asn, name)| crate::Network {
                    asn: *asn,
                    name: name.as_str(),
                }),
            },
            country: None,
        })
        .collect()
}

/// The rollups of retention's cutoff `minute` counted again from what is left of it:
/// `blocks` hands each stored block (first seq, data) that overlaps the minute's `[from, to)`
/// to its visitor.
pub(crate) fn recount_minute(
    minute: i64,
    countries: &Countries,
    blocks: impl FnOnce((f64, f64), &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<()>,
) -> Result<Rollups> {
    let (lo, hi) = (minute as f64 * 60.0, (minute + 1) as f64 * 60.0);
    let mut again = Rollups::default();
    blocks((lo, hi), &mut |first, data| {
        decode(first, data, &mut |stored| {
            let t = stored.event.timestamp;
            if lo <= t && t < hi {
                again.add_stored(&stored, countries);
            }
            true
        })?;
        Ok(())
    })?;
    Ok(again)
}

/// The minute bucket retention cuts at: minute rows before it are deleted, its own row is
/// counted again from the events it keeps. `None` when the cutoff deletes every minute
/// (infinite) or none (negative infinity).
pub(crate) fn cutoff_minute(cutoff: f64) -> Option<i64> {
    cutoff.is_finite().then(|| bucket_of(cutoff, 60.0))
}

/// The writer's per-event maps: foldhash, randomly seeded, as in the aggregates (much
/// cheaper than SipHash, still keyed).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Minute rollup key: (minute, placed, place key, suspicious, protocol id, status class).
type PlaceKey = (i64, bool, u64, bool, u32, i64);
/// Minute timeline key: (minute, country code id, suspicious, protocol id, status class).
type TimelineKey = (i64, u32, bool, u32, i64);

/// Rollup counts by place and by country, per minute; hours are summed from the minutes
/// when written.
#[derive(Default)]
pub(crate) struct Rollups {
    /// Texts (protocols, country codes) by id; id 0 is "".
    texts: Vec<String>,
    ids: FastMap<String, u32>,
    pub(crate) places: FastMap<PlaceKey, (u64, f64, f64)>,
    timeline: FastMap<TimelineKey, u64>,
    /// Events counted.
    pub(crate) events: u64,
}

/// One row of a place rollup table (`rollup_places_minute` / `_hour`).
pub(crate) struct PlaceRow<'a> {
    pub bucket: i64,
    pub placed: bool,
    pub place_key: u64,
    pub suspicious: bool,
    pub protocol: &'a str,
    pub status_class: i64,
    pub events: u64,
    pub first: f64,
    pub latest: f64,
}

/// One row of a timeline rollup table (`rollup_timeline_minute` / `_hour`).
pub(crate) struct TimelineRow<'a> {
    pub bucket: i64,
    pub country_code: &'a str,
    pub suspicious: bool,
    pub protocol: &'a str,
    pub status_class: i64,
    pub events: u64,
}

/// The bucket of `timestamp` in buckets of `width` seconds: `floor(timestamp / width)`,
/// exact at the edges (`bucket * width <= timestamp < (bucket + 1) * width`).
pub(crate) fn bucket_of(timestamp: f64, width: f64) -> i64 {
    let mut b = (timestamp / width).floor();
    if b * width > timestamp {
        b -= 1.0;
    } else if (b + 1.0) * width <= timestamp {
        b += 1.0;
    }
    b as i64
}

fn status_class(status: Option<u16>) -> i64 {
    status.map_or(-1, |s| i64::from(s / 100))
}

impl Rollups {
    fn id(&mut self, text: &str) -> u32 {
        if text.is_empty() {
            return 0;
        }
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        if self.texts.is_empty() {
            self.texts.push(String::new());
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", String::as_str)
    }

    /// Counts one event, placed as `located`, in `country` (none: not placed).
    pub(crate) fn add(&mut self, located: Where<'_>, country: Option<&str>, e: &Event) {
        let (placed, key) = match located {
            Where::Event(key) | Where::Ip(key, ..) => (true, key),
            Where::Unlocated(_) => (false, 0),
        };
        let minute = bucket_of(e.timestamp, 60.0);
        let protocol = self.id(e.protocol.as_deref().unwrap_or(""));
        let country = self.id(country.unwrap_or(""));
        let class = status_class(e.status);
        let t = e.timestamp;
        self.places
            .entry((minute, placed, key, e.suspicious, protocol, class))
            .and_modify(|(n, first, latest)| {
                *n += 1;
                *first = first.min(t);
                *latest = latest.max(t);
            })
            .or_insert((1, t, t));
        *self
            .timeline
            .entry((minute, country, e.suspicious, protocol, class))
            .or_insert(0) += 1;
        self.events += 1;
    }

    /// Counts a stored event again (the rollups pending when a store was closed), its
    /// place's country from `countries`.
    pub(crate) fn add_stored(&mut self, stored: &StoredEvent, countries: &Countries) {
        let (located, country) = match &stored.located {
            Located::Event(key) => (Where::Event(*key), countries.get(key)),
            Located::Ip { place, .. } => (Where::Ip(*place, 0.0, 0.0), countries.get(place)),
            Located::Unlocated(reason) => (Where::Unlocated(reason), None),
        };
        self.add(located, country.map(String::as_str), &stored.event);
    }

    /// Adds `other`'s counts.
    pub(crate) fn merge(&mut self, other: Rollups) {
        // Other's text ids as this one's.
        let ids: Vec<u32> = other.texts.iter().map(|t| self.id(t)).collect();
        let id = |i: u32| ids.get(i as usize).copied().unwrap_or(0);
        for (key, (n, first, latest)) in other.places {
            let (minute, placed, place, suspicious, protocol, class) = key;
            let protocol = id(protocol);
            self.places
                .entry((minute, placed, place, suspicious, protocol, class))
                .and_modify(|(m, f, l)| {
                    *m += n;
                    *f = f.min(first);
                    *l = l.max(latest);
                })
                .or_insert((n, first, latest));
        }
        for ((minute, country, suspicious, protocol, class), n) in other.timeline {
            let (country, protocol) = (id(country), id(protocol));
            *self
                .timeline
                .entry((minute, country, suspicious, protocol, class))
                .or_insert(0) += n;
        }
        self.events += other.events;
    }

    /// The rows to add to `rollup_places_minute` and `rollup_places_hour`, by table name.
    pub(crate) fn place_rows(&self) -> [(&'static str, Vec<PlaceRow<'_>>); 2] {
        let mut hours: FastMap<PlaceKey, (u64, f64, f64)> = FastMap::default();
        for (&(minute, placed, key, suspicious, protocol, class), &(n, first, latest)) in
            &self.places
        {
            hours
                .entry((
                    minute.div_euclid(60),
                    placed,
                    key,
                    suspicious,
                    protocol,
                    class,
                ))
                .and_modify(|(m, f, l)| {
                    *m += n;
                    *f = f.min(first);
                    *l = l.max(latest);
                })
                .or_insert((n, first, latest));
        }
        let rows = |map: &FastMap<PlaceKey, (u64, f64, f64)>| -> Vec<PlaceRow<'_>> {
            map.iter()
                .map(
                    |(&(bucket, placed, place_key, suspicious, protocol, status_class), &v)| {
                        PlaceRow {
                            bucket,
                            placed,
                            place_key,
                            suspicious,
                            protocol: self.text(protocol),
                            status_class,
                            events: v.0,
                            first: v.1,
                            latest: v.2,
                        }
                    },
                )
                .collect()
        };
        [
            ("rollup_places_minute", rows(&self.places)),
            ("rollup_places_hour", rows(&hours)),
        ]
    }

    /// The rows to add to `rollup_timeline_minute` and `rollup_timeline_hour`, by table name.
    pub(crate) fn timeline_rows(&self) -> [(&'static str, Vec<TimelineRow<'_>>); 2] {
        let mut hours: FastMap<TimelineKey, u64> = FastMap::default();
        for (&(minute, country, suspicious, protocol, class), &n) in &self.timeline {
            *hours
                .entry((minute.div_euclid(60), country, suspicious, protocol, class))
                .or_insert(0) += n;
        }
        let rows = |map: &FastMap<TimelineKey, u64>| -> Vec<TimelineRow<'_>> {
            map.iter()
                .map(
                    |(&(bucket, country, suspicious, protocol, status_class), &events)| {
                        TimelineRow {
                            bucket,
                            country_code: self.text(country),
                            suspicious,
                            protocol: self.text(protocol),
                            status_class,
                            events,
                        }
                    },
                )
                .collect()
        };
        [
            ("rollup_timeline_minute", rows(&self.timeline)),
            ("rollup_timeline_hour", rows(&hours)),
        ]
    }
}

/// The rollups of the events after `meta.rolled_up`, not written yet: counted in memory and
/// written every [`ROLLUP_EVERY`] (or [`ROLLUP_EVENTS`], or [`ROLLUP_ROWS`]) in the
/// transaction of a commit, with the seq they reach. Readers count the events after that seq
/// from the blocks, so answers are exact whatever is pending; on open, the blocks after it
/// are counted again.
pub(crate) struct Pending {
    pub(crate) rollups: Rollups,
    /// When rollups were last written (or the store opened).
    rolled_at: Instant,
    /// How long rollups may stay pending.
    pub(crate) every: Duration,
}

impl Pending {
    /// Pending `rollups` (counted again on open), none written yet.
    pub(crate) fn new(rollups: Rollups) -> Self {
        Self {
            rollups,
            rolled_at: Instant::now(),
            every: ROLLUP_EVERY,
        }
    }

    /// Whether the commit that adds `delta` is to write the rollups.
    pub(crate) fn due(&self, delta: &Rollups) -> bool {
        self.rollups.events + delta.events >= ROLLUP_EVENTS
            || self.rollups.places.len() + delta.places.len() >= ROLLUP_ROWS
            || self.rolled_at.elapsed() >= self.every
    }

    /// After a commit: the rollups were written with it (`delta` was too) or `delta` waits.
    /// Only called once the commit succeeded, so a failed one is retried with the same
    /// events.
    pub(crate) fn committed(&mut self, written: bool, delta: Rollups) {
        if written {
            self.rollups = Rollups::default();
            self.rolled_at = Instant::now();
        } else {
            self.rollups.merge(delta);
        }
    }
}
