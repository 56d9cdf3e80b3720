//! The behaviour every [`Store`] must have, as functions a backend's tests call with a way
//! to (re)open a store on the same data. SQLite runs them in its tests; PostgreSQL is to run
//! the same list.

use std::net::IpAddr;

use traffic::{Event, Place};

use crate::range::{Filter, TimeRange, bucket_secs, timeline_start};

use crate::{Error, KeyRecord, Located, Network, NewEvent, Store, StoredEvent};

/// Opens the store under test on the same data each time it is called (the first call on
/// an empty store).
pub trait Reopen {
    /// A fresh handle on the same data; the previous handle has been dropped.
    fn reopen(&mut self) -> Box<dyn Store>;
}

impl<F: FnMut() -> Box<dyn Store>> Reopen for F {
    fn reopen(&mut self) -> Box<dyn Store> {
        self()
    }
}

/// One check: its name and the function.
pub type Check = (&'static str, fn(&mut dyn Reopen));

/// Every check, by name.
pub const ALL: &[Check] = &[
    (
        "every_field_reads_back_after_reopening",
        every_field_reads_back_after_reopening,
    ),
    (
        "a_batch_that_does_not_continue_the_sequence_is_refused",
        a_batch_that_does_not_continue_the_sequence_is_refused,
    ),
    (
        "scan_starts_after_the_given_seq",
        scan_starts_after_the_given_seq,
    ),
    (
        "epoch_and_secret_are_created_once_and_kept",
        epoch_and_secret_are_created_once_and_kept,
    ),
    (
        "idempotency_keys_are_kept_with_their_answers_until_forgotten_by_age",
        idempotency_keys_are_kept_with_their_answers_until_forgotten_by_age,
    ),
    (
        "range_questions_match_a_brute_force_count",
        range_questions_match_a_brute_force_count,
    ),
    (
        "filtered_range_questions_over_random_events_match_a_brute_force_count",
        filtered_range_questions_over_random_events_match_a_brute_force_count,
    ),
    (
        "delete_before_deletes_exactly_the_older_events_and_keeps_hour_rollups_and_the_sequence",
        delete_before_deletes_exactly_the_older_events_and_keeps_hour_rollups_and_the_sequence,
    ),
];

fn place(key: u64, city: &str, country_code: &str) -> Place {
    Place {
        key,
        city: city.to_owned(),
        region: "Region".to_owned(),
        country_code: country_code.to_owned(),
        country: format!("Country {country_code}"),
        latitude: 10.5,
        longitude: -20.25,
    }
}

/// Three events covering every way of being placed and every optional field.
fn sample() -> (Vec<Event>, Vec<Place>) {
    let mut full = Event::at(
        "2001:db8::1".parse().expect("valid"),
        48.8566,
        2.3522,
        1_736_919_120.25,
        true,
    );
    full.bytes = Some(u64::MAX);
    full.protocol = Some("HTTP/1.1".to_owned());
    full.status = Some(404);
    full.method = Some("GET".to_owned());
    full.path = Some("/a b/ünï".to_owned());
    full.dest_ip = Some("192.0.2.9".parse().expect("valid"));
    full.src_port = Some(65_535);
    full.dest_port = Some(443);
    full.packets = Some(u64::MAX);
    let by_ip = Event::new(IpAddr::from([8, 8, 8, 8]), 1_736_919_121.0, false);
    let unlocated = Event::new(IpAddr::from([10, 0, 0, 1]), 1_736_919_122.5, false);
    (
        vec![full, by_ip, unlocated],
        vec![
            place(1 << 40, "Paris", "FR"),
            place(7, "Mountain View", "US"),
        ],
    )
}

fn new_events<'a>(first: u64, events: &'a [Event], places: &'a [Place]) -> Vec<NewEvent<'a>> {
    let locations = [
        Located::Event(&places[0]),
        Located::Ip {
            place: &places[1],
            latitude: 37.386,
            longitude: -122.0838,
        },
        Located::Unlocated("private".to_owned()),
    ];
    events
        .iter()
        .zip(locations)
        .enumerate()
        .map(|(i, (event, located))| NewEvent {
            seq: first + i as u64,
            received_ms: 1_700_000_000_000 + i as u64,
            event,
            located,
            network: (i == 1).then_some(Network {
                asn: 15169,
                name: "Google LLC",
            }),
        })
        .collect()
}

fn scan_all(store: &dyn Store, after: u64) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    store.scan(after, &mut |e| all.push(e)).expect("scan works");
    all
}

/// Events, places and the sequence read back exactly as written, from a reopened store.
pub fn every_field_reads_back_after_reopening(open: &mut dyn Reopen) {
    let (events, places) = sample();
    {
        let mut store = open.reopen();
        assert_eq!(store.last_seq().expect("last_seq"), 0);
        assert!(scan_all(&*store, 0).is_empty());
        store
            .append(&new_events(1, &events, &places), &[])
            .expect("append");
        store
            .append(&new_events(4, &events, &places), &[])
            .expect("append");
    }
    let store = open.reopen();
    assert_eq!(store.last_seq().expect("last_seq"), 6);
    let back = scan_all(&*store, 0);
    let seqs: Vec<u64> = back.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    for (stored, written) in back.iter().zip(new_events(1, &events, &places)) {
        assert_eq!(&stored.event, written.event);
        assert_eq!(
            stored.network,
            written.network.map(|n| (n.asn, n.name.to_owned())),
            "the AS network is kept"
        );
        assert_eq!(stored.received_ms % 1000, written.received_ms % 1000);
    }
    assert_eq!(back[0].received_ms, 1_700_000_000_000);
    assert_eq!(back[0].located, Located::Event(1 << 40));
    assert_eq!(
        back[1].located,
        Located::Ip {
            place: 7,
            latitude: 37.386,
            longitude: -122.0838
        }
    );
    assert_eq!(back[2].located, Located::Unlocated("private".to_owned()));
    let mut stored_places = store.places().expect("places");
    stored_places.sort_by_key(|p| p.key);
    let mut expected = places.clone();
    expected.sort_by_key(|p| p.key);
    assert_eq!(stored_places, expected);
}

/// A gap or a repeat in the sequence is an error and stores nothing.
pub fn a_batch_that_does_not_continue_the_sequence_is_refused(open: &mut dyn Reopen) {
    let (events, places) = sample();
    let mut store = open.reopen();
    store
        .append(&new_events(1, &events, &places), &[])
        .expect("append");
    for first in [3, 5] {
        let error = store
            .append(&new_events(first, &events, &places), &[])
            .expect_err("out of sequence");
        assert!(
            matches!(error, Error::OutOfSequence { expected: 4, got } if got == first),
            "{error}"
        );
    }
    drop(store);
    let store = open.reopen();
    assert_eq!(store.last_seq().expect("last_seq"), 3);
    assert_eq!(scan_all(&*store, 0).len(), 3);
}

/// `scan(after)` visits only later events, in order.
pub fn scan_starts_after_the_given_seq(open: &mut dyn Reopen) {
    let (events, places) = sample();
    let mut store = open.reopen();
    for first in [1, 4, 7] {
        store
            .append(&new_events(first, &events, &places), &[])
            .expect("append");
    }
    let seqs: Vec<u64> = scan_all(&*store, 5).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [6, 7, 8, 9]);
    assert!(scan_all(&*store, 9).is_empty());
}

/// The epoch and the secret do not change when the store is reopened, and differ between
/// stores (checked by the backend's own tests with two stores).
pub fn epoch_and_secret_are_created_once_and_kept(open: &mut dyn Reopen) {
    let (epoch, secret) = {
        let store = open.reopen();
        (store.epoch().to_owned(), store.secret())
    };
    assert!(!epoch.is_empty() && !epoch.contains('-'), "{epoch}");
    assert_ne!(secret, [0, 0]);
    let store = open.reopen();
    assert_eq!(store.epoch(), epoch);
    assert_eq!(store.secret(), secret);
}

/// Keys are stored with their events, read back by age, and forgotten by age.
pub fn idempotency_keys_are_kept_with_their_answers_until_forgotten_by_age(open: &mut dyn Reopen) {
    let (events, places) = sample();
    let key = |name: &str, stored_ms| KeyRecord {
        key: name.to_owned(),
        fingerprint: u128::MAX - stored_ms as u128,
        status: 202,
        body: br#"{"accepted":3}"#.to_vec(),
        stored_ms,
    };
    {
        let mut store = open.reopen();
        store
            .append(&new_events(1, &events, &places), &[key("old", 1_000)])
            .expect("append");
        store
            .append(&new_events(4, &events, &places), &[key("new", 5_000)])
            .expect("append");
        store.append(&[], &[key("alone", 6_000)]).expect("append");
    }
    let mut store = open.reopen();
    assert_eq!(
        store.keys_since(0).expect("keys"),
        [key("old", 1_000), key("new", 5_000), key("alone", 6_000)]
    );
    assert_eq!(
        store.keys_since(5_000).expect("keys"),
        [key("new", 5_000), key("alone", 6_000)]
    );
    assert_eq!(store.forget_keys_before(5_000).expect("forget"), 1);
    drop(store);
    let store = open.reopen();
    assert_eq!(store.keys_since(0).expect("keys").len(), 2);
}

/// Range summaries and pages agree with a count done by hand over the same events.
pub fn range_questions_match_a_brute_force_count(open: &mut dyn Reopen) {
    let paris = place(1, "Paris", "FR");
    let lyon = place(2, "Lyon", "FR");
    let austin = place(3, "Austin", "US");
    let places = [&paris, &lyon, &austin];
    // 1,000 events over 2,000 s of data time, spread over the three places.
    let events: Vec<Event> = (0..1000u32)
        .map(|i| {
            Event::at(
                IpAddr::from([10, 0, (i >> 8) as u8, i as u8]),
                1.0,
                2.0,
                1_000_000.0 + f64::from(i) * 2.0 + 0.5,
                i % 7 == 0,
            )
        })
        .collect();
    let place_of = |i: usize| places[(i * i) % 3];
    let mut store = open.reopen();
    let rows: Vec<NewEvent<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, event)| NewEvent {
            seq: i as u64 + 1,
            received_ms: 5,
            event,
            located: Located::Event(place_of(i)),
            network: None,
        })
        .collect();
    store.append(&rows, &[]).expect("append");
    let reader = store.readers().open_reader().expect("reader");
    for (from, to) in [
        (None, None),
        (Some(1_000_100.0), Some(1_000_700.0)),
        (Some(1_000_100.5), None),
        // Both ends on an event: the first is in, the last is not.
        (Some(1_000_100.5), Some(1_000_200.5)),
        (None, Some(999_999.0)),
    ] {
        let range = TimeRange { from, to };
        let inside: Vec<usize> = (0..events.len())
            .filter(|&i| {
                let t = events[i].timestamp;
                from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
            })
            .collect();
        let summary = reader
            .summary(range, &Filter::default(), 2)
            .expect("summary");
        assert_eq!(summary.total, inside.len() as u64, "{range:?}");
        let suspicious = inside.iter().filter(|&&i| events[i].suspicious).count() as u64;
        assert_eq!(summary.suspicious, suspicious);
        let mut per_place = [0u64; 4];
        for &i in &inside {
            per_place[place_of(i).key as usize] += 1;
        }
        let mut expected: Vec<(u64, u64)> = (1..4u64)
            .map(|k| (per_place[k as usize], k))
            .filter(|&(n, _)| n > 0)
            .collect();
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        expected.truncate(2);
        let got: Vec<(u64, u64)> = summary
            .top_places
            .iter()
            .map(|p| (p.count, p.key))
            .collect();
        assert_eq!(got, expected, "{range:?}");
        let countries: u64 = summary.top_countries.iter().map(|c| c.count).sum();
        assert_eq!(countries, inside.len() as u64, "FR and US are all there is");
        let timeline = &summary.timeline;
        let bucketed: u64 = timeline.buckets.iter().map(|b| b.0).sum();
        assert_eq!(bucketed, inside.len() as u64);
        assert!(timeline.buckets.len() <= 601, "{}", timeline.buckets.len());
        for &i in &inside {
            let b = ((events[i].timestamp - timeline.start) / timeline.bucket_secs as f64) as usize;
            assert!(b < timeline.buckets.len());
        }
        // Paged: 300 at a time, every event of the range exactly once, in order.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = reader
                .events(range, &Filter::default(), after, 300)
                .expect("page");
            let Some(last) = page.last() else { break };
            after = last.seq;
            paged.extend(page.iter().map(|e| e.seq as usize - 1));
        }
        assert_eq!(paged, inside, "{range:?}");
    }
}

/// A small deterministic generator (xorshift64*), so failures repeat.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Summaries and pages over random events (three days of data time, out of order, written
/// in several batches, some outliers), random windows (open, aligned to minutes and hours,
/// or not, tiny ones) and every filter, each against a count done by hand: totals, first and
/// latest, top places and countries, every timeline bucket, every page.
pub fn filtered_range_questions_over_random_events_match_a_brute_force_count(
    open: &mut dyn Reopen,
) {
    const DAY: f64 = 86_400.0;
    let base = 1_736_899_200.0; // a midnight
    let places = [
        place(11, "Paris", "FR"),
        place(12, "Lyon", "FR"),
        place(13, "Austin", "US"),
        place(14, "Osaka", "JP"),
    ];
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let protocols = [None, Some("HTTP/1.1"), Some("TCP")];
    let statuses = [None, Some(200), Some(204), Some(404), Some(503)];
    let events: Vec<Event> = (0..6000u32)
        .map(|i| {
            let mut t = base + (random.below(3 * 86_400_000) as f64) / 1000.0;
            if i % 1000 == 999 {
                t += 400.0 * DAY; // an outlier far ahead
            }
            let mut e = Event::new(
                std::net::IpAddr::from([10, 1, (i >> 8) as u8, i as u8]),
                t,
                random.below(4) == 0,
            );
            e.protocol = protocols[random.below(3) as usize].map(str::to_owned);
            e.status = statuses[random.below(5) as usize];
            e
        })
        .collect();
    // Place index per event; 4 is unplaced.
    let where_: Vec<usize> = (0..events.len())
        .map(|_| match random.below(10) {
            0 => 4,
            n => (n as usize * 7) % 4,
        })
        .collect();
    let mut store = open.reopen();
    let rows: Vec<NewEvent<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, event)| NewEvent {
            seq: i as u64 + 1,
            received_ms: 7,
            event,
            located: match where_[i] {
                4 => Located::Unlocated("private".to_owned()),
                p if i % 2 == 0 => Located::Event(&places[p]),
                p => Located::Ip {
                    place: &places[p],
                    latitude: 1.0,
                    longitude: 2.0,
                },
            },
            network: None,
        })
        .collect();
    // Uneven batches: the same minutes and hours get counts from several commits.
    let mut at = 0;
    for size in [1, 999, 2000, 3000] {
        store.append(&rows[at..at + size], &[]).expect("append");
        at += size;
    }
    drop(rows);
    let reader = store.readers().open_reader().expect("reader");
    let mut windows: Vec<(Option<f64>, Option<f64>)> = vec![
        (None, None),
        (Some(base), Some(base + DAY)),
        (Some(base + 3600.0), Some(base + 7200.0)),
        (Some(base + 120.0), Some(base + 180.0)),
        (Some(base + 61.5), Some(base + 62.5)),
        (Some(base + 1.25 * DAY), None),
        (None, Some(base + 0.5 * DAY + 0.001)),
        (Some(base + 400.0 * DAY), None),
    ];
    for _ in 0..12 {
        let a = base - 1000.0 + random.below(4 * 86_400_000) as f64 / 1000.0;
        let b = a + random.below(2 * 86_400_000) as f64 / 1000.0;
        windows.push((Some(a), Some(b)));
        windows.push((Some(a.floor()), Some(b.floor())));
    }
    let filters = [
        Filter::default(),
        Filter {
            suspicious: Some(true),
            ..Filter::default()
        },
        Filter {
            suspicious: Some(false),
            country: Some("FR".to_owned()),
            ..Filter::default()
        },
        Filter {
            protocol: Some("TCP".to_owned()),
            ..Filter::default()
        },
        Filter {
            status_class: Some(2),
            country: Some("US".to_owned()),
            ..Filter::default()
        },
        Filter {
            country: Some("XX".to_owned()),
            ..Filter::default()
        },
    ];
    for &(from, to) in &windows {
        let range = TimeRange { from, to };
        for filter in &filters {
            let inside: Vec<usize> = (0..events.len())
                .filter(|&i| {
                    let t = events[i].timestamp;
                    let country = places.get(where_[i]).map(|p| p.country_code.as_str());
                    from.is_none_or(|f| t >= f)
                        && to.is_none_or(|e| t < e)
                        && filter.matches(&events[i], country)
                })
                .collect();
            let what = format!("{range:?} {filter:?}");
            let summary = reader.summary(range, filter, 3).expect("summary");
            assert_eq!(summary.total, inside.len() as u64, "{what}");
            let suspicious = inside.iter().filter(|&&i| events[i].suspicious).count();
            assert_eq!(summary.suspicious, suspicious as u64, "{what}");
            let times = inside.iter().map(|&i| events[i].timestamp);
            let first = times.clone().reduce(f64::min);
            let latest = times.reduce(f64::max);
            assert_eq!(
                (summary.first_timestamp, summary.latest_timestamp),
                (first, latest),
                "{what}"
            );
            // Places: (count desc, key asc), top 3.
            let mut per_place = [(0u64, 0u64); 5];
            for &i in &inside {
                per_place[where_[i]].0 += 1;
                per_place[where_[i]].1 += u64::from(events[i].suspicious);
            }
            let mut expected: Vec<(u64, u64, u64)> = (0..4)
                .filter(|&p| per_place[p].0 > 0)
                .map(|p| (per_place[p].0, places[p].key, per_place[p].1))
                .collect();
            expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            expected.truncate(3);
            let got: Vec<(u64, u64, u64)> = summary
                .top_places
                .iter()
                .map(|p| (p.count, p.key, p.suspicious))
                .collect();
            assert_eq!(got, expected, "{what}");
            let mut per_country: Vec<(u64, &str)> = ["FR", "JP", "US"]
                .into_iter()
                .map(|c| {
                    let n = (0..4)
                        .filter(|&p| places[p].country_code == c)
                        .map(|p| per_place[p].0)
                        .sum();
                    (n, c)
                })
                .filter(|&(n, _)| n > 0)
                .collect();
            per_country.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            let got: Vec<(u64, &str)> = summary
                .top_countries
                .iter()
                .map(|c| (c.count, c.country_code.as_str()))
                .collect();
            assert_eq!(got, per_country, "{what}");
            // Timeline: its shape follows from first and latest; every bucket exact.
            let timeline = &summary.timeline;
            if let (Some(first), Some(latest)) = (first, latest) {
                let width = bucket_secs(first, latest);
                assert_eq!(timeline.bucket_secs, width, "{what}");
                assert_eq!(timeline.start, timeline_start(first, width), "{what}");
                let mut buckets = vec![(0u64, 0u64); timeline.buckets.len()];
                for &i in &inside {
                    let b = ((events[i].timestamp - timeline.start) / width as f64).floor();
                    let b = b as usize;
                    assert!(b < buckets.len(), "{what}: event {i} past the timeline");
                    buckets[b].0 += 1;
                    buckets[b].1 += u64::from(events[i].suspicious);
                }
                assert_eq!(timeline.buckets, buckets, "{what}");
                let peak = (0..buckets.len()).max_by_key(|&b| (buckets[b].0, std::cmp::Reverse(b)));
                assert_eq!(timeline.peak, peak, "{what}");
            } else {
                assert!(timeline.buckets.is_empty(), "{what}");
            }
            // Pages of 700: each event of the window once, in order.
            let mut paged = Vec::new();
            let mut after = 0;
            loop {
                let page = reader.events(range, filter, after, 700).expect("page");
                let Some(last) = page.last() else { break };
                assert!(page.len() <= 700);
                after = last.seq;
                paged.extend(page.iter().map(|e| e.seq as usize - 1));
            }
            assert_eq!(paged, inside, "{what}");
        }
    }
}

/// Retention: `delete_before` deletes exactly the events older than the cutoff (events out
/// of data-time order, so blocks hold older and newer ones), whatever was pending; what is
/// left reads back and answers range questions as a brute-force count of it; whole hours
/// before the cutoff still total what they did (hour rollups are kept); the sequence goes
/// on from where it was, across a reopen, even once every event is deleted.
pub fn delete_before_deletes_exactly_the_older_events_and_keeps_hour_rollups_and_the_sequence(
    open: &mut dyn Reopen,
) {
    let base = 1_736_899_200.0; // a midnight
    let places = [
        place(21, "Paris", "FR"),
        place(22, "Austin", "US"),
        place(23, "Osaka", "JP"),
    ];
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    // 10,000 events over two days of data time, mostly in order with a tenth anywhere.
    let events: Vec<Event> = (0..10_000u32)
        .map(|i| {
            let t = if random.below(10) == 0 {
                base + random.below(2 * 86_400_000) as f64 / 1000.0
            } else {
                base + f64::from(i) * 17.28 + random.below(1000) as f64 / 1000.0
            };
            let mut e = Event::new(
                IpAddr::from([10, 2, (i >> 8) as u8, i as u8]),
                t,
                random.below(5) == 0,
            );
            e.protocol = (i % 3 == 0).then(|| "TCP".to_owned());
            e
        })
        .collect();
    let where_: Vec<usize> = (0..events.len())
        .map(|_| random.below(4) as usize)
        .collect();
    let rows: Vec<NewEvent<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, event)| NewEvent {
            seq: i as u64 + 1,
            received_ms: 1_700_000_000_000 + i as u64,
            event,
            located: match where_[i] {
                3 => Located::Unlocated("private".to_owned()),
                p => Located::Event(&places[p]),
            },
            network: (i % 5 == 0).then_some(Network {
                asn: 64_500,
                name: "Example AS",
            }),
        })
        .collect();
    let country = |i: usize| places.get(where_[i]).map(|p| p.country_code.as_str());
    // 36 h in, 1234.567 s into an hour, not on a minute.
    let cutoff = base + 36.0 * 3600.0 + 1234.567;
    let hour_of_cutoff = base + 36.0 * 3600.0;
    let count = |from: f64, to: f64, filter: &Filter, only_kept: bool| -> (u64, u64) {
        let inside = (0..events.len()).filter(|&i| {
            let t = events[i].timestamp;
            from <= t
                && t < to
                && (!only_kept || t >= cutoff)
                && filter.matches(&events[i], country(i))
        });
        inside.fold((0, 0), |(n, s), i| {
            (n + 1, s + u64::from(events[i].suspicious))
        })
    };
    let older = events.iter().filter(|e| e.timestamp < cutoff).count() as u64;
    assert!(
        older > 5_000 && older < 9_000,
        "a cut through the data: {older}"
    );
    {
        let mut store = open.reopen();
        store.append(&rows[..6_000], &[]).expect("append");
        drop(store);
        // Reopened (whatever was pending is counted again), then more in two batches.
        let mut store = open.reopen();
        store.append(&rows[6_000..9_000], &[]).expect("append");
        store.append(&rows[9_000..], &[]).expect("append");
        assert_eq!(store.delete_before(cutoff).expect("delete"), older);
        assert_eq!(
            store.delete_before(cutoff).expect("again"),
            0,
            "nothing left to delete"
        );
        assert_eq!(store.last_seq().expect("last_seq"), 10_000);
    }
    let mut store = open.reopen();
    assert_eq!(
        store.last_seq().expect("last_seq"),
        10_000,
        "after a reopen too"
    );
    let kept: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].timestamp >= cutoff)
        .collect();
    let back = scan_all(&*store, 0);
    let seqs: Vec<usize> = back.iter().map(|e| e.seq as usize - 1).collect();
    assert_eq!(seqs, kept, "exactly the newer events, in sequence order");
    for stored in &back {
        let i = stored.seq as usize - 1;
        assert_eq!(&stored.event, &events[i]);
        assert_eq!(stored.received_ms, rows[i].received_ms);
        assert_eq!(stored.network.is_some(), i.is_multiple_of(5));
    }
    let after: Vec<u64> = scan_all(&*store, 9_990).iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = kept
        .iter()
        .map(|&i| i as u64 + 1)
        .filter(|&s| s > 9_990)
        .collect();
    assert_eq!(after, expected);
    let reader = store.readers().open_reader().expect("reader");
    let filters = [
        Filter::default(),
        Filter {
            suspicious: Some(true),
            ..Filter::default()
        },
        Filter {
            country: Some("US".to_owned()),
            protocol: Some("TCP".to_owned()),
            ..Filter::default()
        },
    ];
    // The remaining range, and windows from inside the cutoff's hour: the minute before
    // the cutoff, the cutoff's minute, a partial one, no whole hour before the cutoff.
    let minute_of_cutoff = (cutoff / 60.0).floor() * 60.0;
    for (from, to) in [
        (cutoff, f64::INFINITY),
        (cutoff, cutoff + 5_000.0),
        (minute_of_cutoff, cutoff + 3_600.0),
        (minute_of_cutoff - 60.0, minute_of_cutoff + 60.0),
        (cutoff - 600.25, base + 2.0 * 86_400.0),
        (hour_of_cutoff + 30.0, cutoff + 0.5),
    ] {
        let range = TimeRange {
            from: Some(from),
            to: to.is_finite().then_some(to),
        };
        for filter in &filters {
            let summary = reader.summary(range, filter, 3).expect("summary");
            let (n, s) = count(from, to, filter, true);
            assert_eq!(
                (summary.total, summary.suspicious),
                (n, s),
                "{range:?} {filter:?}"
            );
            let bucketed: u64 = summary.timeline.buckets.iter().map(|b| b.0).sum();
            assert_eq!(bucketed, n, "{range:?} {filter:?}");
            let mut paged = Vec::new();
            let mut after = 0;
            loop {
                let page = reader.events(range, filter, after, 500).expect("page");
                let Some(last) = page.last() else { break };
                after = last.seq;
                paged.extend(page.iter().map(|e| e.seq as usize - 1));
            }
            let inside: Vec<usize> = kept
                .iter()
                .copied()
                .filter(|&i| {
                    let t = events[i].timestamp;
                    from <= t && t < to && filter.matches(&events[i], country(i))
                })
                .collect();
            assert_eq!(paged, inside, "{range:?} {filter:?}");
        }
    }
    // Whole hours before the cutoff's hour: counted by the hour rollups, as before.
    for (from, to) in [
        (base, base + 3_600.0),
        (base + 5.0 * 3_600.0, hour_of_cutoff),
        (base, hour_of_cutoff),
    ] {
        let range = TimeRange {
            from: Some(from),
            to: Some(to),
        };
        for filter in &filters {
            let summary = reader.summary(range, filter, 3).expect("summary");
            let (n, s) = count(from, to, filter, false);
            assert!(n > 0);
            assert_eq!(
                (summary.total, summary.suspicious),
                (n, s),
                "{range:?} {filter:?}"
            );
        }
    }
    drop(reader);
    // The sequence goes on; then everything is deleted and it still goes on.
    let (more, more_places) = sample();
    store
        .append(&new_events(10_001, &more, &more_places), &[])
        .expect("continues the sequence");
    let newest = more.iter().map(|e| e.timestamp).fold(f64::MIN, f64::max);
    let all = events.iter().map(|e| e.timestamp).fold(newest, f64::max);
    let left = kept.len() as u64 + 3;
    assert_eq!(store.delete_before(all + 1.0).expect("delete all"), left);
    assert!(scan_all(&*store, 0).is_empty());
    assert_eq!(store.last_seq().expect("last_seq"), 10_003);
    drop(store);
    let mut store = open.reopen();
    assert_eq!(
        store.last_seq().expect("last_seq"),
        10_003,
        "none left, none reused"
    );
    store
        .append(&new_events(10_004, &more, &more_places), &[])
        .expect("continues after everything was deleted");
    let seqs: Vec<u64> = scan_all(&*store, 0).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [10_004, 10_005, 10_006]);
}

/// What [`rollups_pending_at_a_restart_are_counted_again_and_written_once`] needs of a
/// backend besides [`Store`]: timing its rollup writes, and what its hour rollups count.
pub trait RollupHooks: Store {
    /// Writes the rollups at most `every` apart (`Duration::ZERO`: with every commit).
    fn set_rollup_every(&mut self, every: std::time::Duration);

    /// Events counted by the hour place rollups as stored (pending ones not included).
    fn hour_rollup_events(&self) -> u64;
}

/// Rollups not yet written when a store is closed are counted again from the blocks on
/// reopening (answers stay exact) and written once, not twice, with a later commit.
pub fn rollups_pending_at_a_restart_are_counted_again_and_written_once<S: RollupHooks>(
    open: &mut dyn FnMut() -> S,
) {
    use std::time::Duration;
    let lyon = place(3, "Lyon", "FR");
    let events: Vec<Event> = (0..500u32)
        .map(|i| {
            Event::new(
                IpAddr::from([10, 0, 0, 1]),
                1_736_900_000.0 + f64::from(i) * 30.0,
                i % 2 == 0,
            )
        })
        .collect();
    let rows = |range: std::ops::Range<usize>| -> Vec<NewEvent<'_>> {
        range
            .map(|i| NewEvent {
                seq: i as u64 + 1,
                received_ms: 1,
                event: &events[i],
                located: Located::Event(&lyon),
                network: None,
            })
            .collect()
    };
    let total = |store: &S| {
        let reader = store.readers().open_reader().expect("reader");
        let whole = reader
            .summary(TimeRange::default(), &Filter::default(), 1)
            .expect("summary");
        (whole.total, store.hour_rollup_events())
    };
    {
        let mut store = open();
        store.set_rollup_every(Duration::ZERO);
        store.append(&rows(0..100), &[]).expect("append");
        store.set_rollup_every(Duration::MAX);
        store.append(&rows(100..300), &[]).expect("append");
        assert_eq!(
            total(&store),
            (300, 100),
            "200 pending, counted from the blocks"
        );
    }
    let mut store = open();
    assert_eq!(total(&store), (300, 100));
    store.set_rollup_every(Duration::ZERO);
    store.append(&rows(300..500), &[]).expect("append");
    assert_eq!(total(&store), (500, 500), "the pending 200 written once");
}
