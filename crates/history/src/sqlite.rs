//! The embedded store: one SQLite file in WAL mode, written by one connection in batched
//! transactions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use traffic::{Event, Place};

use crate::codec::{Decoder, Encoder, Row, Where};
use crate::range::{
    Filter, OpenReader, RangeCountry, RangePlace, RangeSummary, RangeTimeline, Reader, TimeRange,
    bucket_secs, timeline_start,
};
use crate::{Durability, Error, KeyRecord, Located, NewEvent, Result, Store, StoredEvent};

/// The schema migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_events.sql"),
    include_str!("../migrations/sqlite/0002_blocks_and_rollups.sql"),
];

/// The file in the data directory.
pub const FILE_NAME: &str = "history.sqlite3";

/// The SQLite store.
pub struct Sqlite {
    connection: Connection,
    path: PathBuf,
    /// The seq the next stored event must have.
    next_seq: u64,
    /// Places already in `places`: their country codes, by key.
    places: HashMap<u64, String>,
    epoch: String,
    secret: [u64; 2],
    /// Reused between commits (its buffers keep their capacity).
    encoder: Encoder,
    /// Rollups of the events after `meta.rolled_up`, not written yet.
    pending: Rollups,
    /// When rollups were last written (or the store opened).
    rolled_at: Instant,
    /// How long rollups may stay pending.
    rollup_every: Duration,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Sqlite {
    /// Opens (creating if needed) the store in `dir`, migrating its schema to this build's.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let mut connection = Connection::open(&path)?;
        // WAL: readers never block the writer, and a commit is one sequential append.
        // synchronous=NORMAL in WAL mode: a commit survives the process being killed (the
        // WAL is written before COMMIT returns) but is only fsynced at checkpoints; FULL
        // fsyncs the WAL at every commit.
        let synchronous = match durability {
            Durability::Process => "NORMAL",
            Durability::Disk => "FULL",
        };
        connection.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA busy_timeout = 5000; PRAGMA cache_size = -8192;"
        ))?;
        migrate(&mut connection)?;
        let epoch = meta_or_insert(&connection, "epoch", || {
            format!("{:x}", crate::random_u128() as u64)
        })?;
        let secret = meta_or_insert(&connection, "secret", || {
            format!("{:032x}", crate::random_u128())
        })?;
        let secret = u128::from_str_radix(&secret, 16).map_err(|e| Error::Corrupt {
            seq: 0,
            reason: format!("meta secret: {e}"),
        })?;
        let last: i64 = connection
            .query_row(
                "SELECT last_seq FROM blocks ORDER BY first_seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        // Retention may have deleted the newest blocks: the sequence continues from the
        // highest seq ever stored, remembered then.
        let last = last.max(meta_u64(&connection, LAST_SEQ)? as i64);
        let places: HashMap<u64, String> = read_places(&connection)?
            .into_iter()
            .map(|p| (p.key, p.country_code))
            .collect();
        // The events the rollups do not count yet are counted again, in memory.
        let mut pending = Rollups::default();
        let rolled = rolled_up(&connection)?;
        {
            let mut statement = connection.prepare(
                "SELECT first_seq, data FROM blocks WHERE last_seq > ?1 ORDER BY first_seq",
            )?;
            let mut rows = statement.query([rolled as i64])?;
            while let Some(row) = rows.next()? {
                decode_block(row, &mut |stored| {
                    if stored.seq > rolled {
                        let (located, country) = match &stored.located {
                            Located::Event(key) => (Where::Event(*key), places.get(key)),
                            Located::Ip { place, .. } => {
                                (Where::Ip(*place, 0.0, 0.0), places.get(place))
                            }
                            Located::Unlocated(reason) => (Where::Unlocated(reason), None),
                        };
                        pending.add(located, country.map(String::as_str), &stored.event);
                    }
                    true
                })?;
            }
        }
        Ok(Self {
            connection,
            path,
            next_seq: last as u64 + 1,
            places,
            epoch,
            secret: [(secret >> 64) as u64, secret as u64],
            encoder: Encoder::default(),
            pending,
            rolled_at: Instant::now(),
            rollup_every: ROLLUP_EVERY,
        })
    }

    /// Writes the rollups at most `every` apart (default 1 s; `Duration::ZERO`: with every
    /// commit). Answers are the same whatever it is; it trades commit cost for the events a
    /// range question decodes.
    pub fn set_rollup_every(&mut self, every: Duration) {
        self.rollup_every = every;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Applies the migrations the database has not seen yet, each in its own transaction
/// together with the version bump.
fn migrate(connection: &mut Connection) -> Result<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(Error::TooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        if i + 1 == 2 {
            convert_v1_events(&transaction)?;
        }
        transaction.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        transaction.commit()?;
    }
    Ok(())
}

fn meta_or_insert(
    connection: &Connection,
    name: &str,
    new: impl FnOnce() -> String,
) -> Result<String> {
    let found: Option<String> = connection
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(value) = found {
        return Ok(value);
    }
    let value = new();
    connection.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)",
        params![name, value],
    )?;
    Ok(value)
}

/// Most events in one block: a range query's edges and a page decode at most a few blocks.
const BLOCK_EVENTS: usize = 4096;

/// An event on its way into a block, with the country its place is in.
struct Item<'a> {
    row: Row<'a>,
    country: Option<&'a str>,
}

/// The writer's per-event maps: foldhash, randomly seeded, as in the aggregates (much
/// cheaper than SipHash, still keyed).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Minute rollup key: (minute, placed, place key, suspicious, protocol id, status class).
type PlaceKey = (i64, bool, u64, bool, u32, i64);
/// Minute timeline key: (minute, country code id, suspicious, protocol id, status class).
type TimelineKey = (i64, u32, bool, u32, i64);

/// Rollup rows not yet written: counted in memory and written every [`ROLLUP_EVERY`] (or
/// [`ROLLUP_EVENTS`], or [`ROLLUP_ROWS`]) in the transaction of a commit, with the seq they reach
/// (`meta.rolled_up`). Readers count the events after that seq from the blocks, so answers
/// are exact whatever is pending; on open, the blocks after it are counted again.
#[derive(Default)]
pub(crate) struct Rollups {
    /// Texts (protocols, country codes) by id; id 0 is "".
    texts: Vec<String>,
    ids: FastMap<String, u32>,
    places: FastMap<PlaceKey, (u64, f64, f64)>,
    timeline: FastMap<TimelineKey, u64>,
    /// Events counted.
    events: u64,
}

/// Rollups pending at most this long (a reader then decodes at most this much of the
/// newest events in the window).
const ROLLUP_EVERY: Duration = Duration::from_secs(1);
/// ... or this many events.
const ROLLUP_EVENTS: u64 = 1_000_000;
/// ... or this many distinct minute rows (bounds the writer's memory whatever the data).
const ROLLUP_ROWS: usize = 100_000;

/// The bucket of `timestamp` in buckets of `width` seconds: `floor(timestamp / width)`,
/// exact at the edges (`bucket * width <= timestamp < (bucket + 1) * width`).
fn bucket_of(timestamp: f64, width: f64) -> i64 {
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

    fn add(&mut self, located: Where<'_>, country: Option<&str>, e: &Event) {
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

    /// Adds `other`'s counts.
    fn merge(&mut self, other: Rollups) {
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

    /// Adds the rows to the minute and hour tables (nothing is cleared).
    fn write(&self, transaction: &Transaction<'_>) -> Result<()> {
        self.write_tables(transaction, true)
    }

    /// Adds the rows to the minute tables, and the hour tables if `hours`.
    fn write_tables(&self, transaction: &Transaction<'_>, with_hours: bool) -> Result<()> {
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
        let place_tables = [
            ("rollup_places_minute", &self.places),
            ("rollup_places_hour", &hours),
        ];
        for (table, rows) in place_tables
            .into_iter()
            .take(if with_hours { 2 } else { 1 })
        {
            let mut upsert = transaction.prepare_cached(&format!(
                "INSERT INTO {table} (bucket, placed, place_key, suspicious, protocol, \
                 status_class, events, first, latest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT DO UPDATE SET events = events + excluded.events, \
                 first = min(first, excluded.first), latest = max(latest, excluded.latest)"
            ))?;
            for (&(bucket, placed, key, suspicious, protocol, class), &(n, first, latest)) in rows {
                upsert.execute(params![
                    bucket,
                    placed,
                    key as i64,
                    suspicious,
                    self.text(protocol),
                    class,
                    n as i64,
                    first,
                    latest
                ])?;
            }
        }
        let mut timeline_hours: FastMap<TimelineKey, u64> = FastMap::default();
        for (&(minute, country, suspicious, protocol, class), &n) in &self.timeline {
            *timeline_hours
                .entry((minute.div_euclid(60), country, suspicious, protocol, class))
                .or_insert(0) += n;
        }
        let timeline_tables = [
            ("rollup_timeline_minute", &self.timeline),
            ("rollup_timeline_hour", &timeline_hours),
        ];
        for (table, rows) in timeline_tables
            .into_iter()
            .take(if with_hours { 2 } else { 1 })
        {
            let mut upsert = transaction.prepare_cached(&format!(
                "INSERT INTO {table} (bucket, country_code, suspicious, protocol, status_class, \
                 events) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT DO UPDATE SET events = events + excluded.events"
            ))?;
            for (&(bucket, country, suspicious, protocol, class), &n) in rows {
                upsert.execute(params![
                    bucket,
                    self.text(country),
                    suspicious,
                    self.text(protocol),
                    class,
                    n as i64
                ])?;
            }
        }
        Ok(())
    }
}

/// Stores `items` (seq `first_seq` onwards) as blocks; returns their rollups.
fn write_items(
    transaction: &Transaction<'_>,
    encoder: &mut Encoder,
    first_seq: u64,
    items: &[Item<'_>],
) -> Result<Rollups> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO blocks (first_seq, last_seq, min_timestamp, max_timestamp, data) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
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
        let data = encoder.finish();
        let last = seq + block.len() as u64 - 1;
        insert.execute(params![seq as i64, last as i64, min, max, data])?;
        seq = last + 1;
    }
    Ok(rollups)
}

/// Records that the rollups count every event up to `seq`.
fn set_rolled_up(transaction: &Transaction<'_>, seq: u64) -> Result<()> {
    transaction.execute(
        "INSERT OR REPLACE INTO meta (name, value) VALUES ('rolled_up', ?1)",
        [seq.to_string()],
    )?;
    Ok(())
}

/// The seq up to which the rollups count every event (0: none).
fn rolled_up(connection: &Connection) -> Result<u64> {
    meta_u64(connection, "rolled_up")
}

/// The `meta` entry where [`Store::delete_before`] keeps the newest seq ever stored (the
/// blocks may no longer hold it).
const LAST_SEQ: &str = "last_seq";

/// A number kept in `meta` (0: none).
fn meta_u64(connection: &Connection, name: &str) -> Result<u64> {
    let value: Option<String> = connection
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    value.map_or(Ok(0), |v| {
        v.parse().map_err(|e| Error::Corrupt {
            seq: 0,
            reason: format!("meta {name} {v:?}: {e}"),
        })
    })
}

/// Encodes `events` (consecutive seqs, oldest first) as one block.
fn insert_block(
    transaction: &Transaction<'_>,
    encoder: &mut Encoder,
    events: &[StoredEvent],
) -> Result<()> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(());
    };
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for stored in events {
        encoder.push(&Row {
            received_ms: stored.received_ms,
            event: &stored.event,
            located: where_of(&stored.located),
            network: stored.network.as_ref().map(|(asn, name)| crate::Network {
                asn: *asn,
                name: name.as_str(),
            }),
        });
        min = min.min(stored.event.timestamp);
        max = max.max(stored.event.timestamp);
    }
    transaction
        .prepare_cached(
            "INSERT INTO blocks (first_seq, last_seq, min_timestamp, max_timestamp, data) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            first.seq as i64,
            last.seq as i64,
            min,
            max,
            encoder.finish()
        ])?;
    Ok(())
}

/// A stored placement as the encoder and the rollups take it.
fn where_of(located: &Located<u64>) -> Where<'_> {
    match located {
        Located::Event(key) => Where::Event(*key),
        Located::Ip {
            place,
            latitude,
            longitude,
        } => Where::Ip(*place, *latitude, *longitude),
        Located::Unlocated(reason) => Where::Unlocated(reason),
    }
}

impl Store for Sqlite {
    fn append(&mut self, events: &[NewEvent<'_>], keys: &[KeyRecord]) -> Result<()> {
        if let Some(first) = events.first()
            && first.seq != self.next_seq
        {
            return Err(Error::OutOfSequence {
                expected: self.next_seq,
                got: first.seq,
            });
        }
        for (i, new) in events.iter().enumerate() {
            let expected = self.next_seq + i as u64;
            if new.seq != expected {
                return Err(Error::OutOfSequence {
                    expected,
                    got: new.seq,
                });
            }
        }
        let transaction = self.connection.transaction()?;
        let mut added_places = Vec::new();
        let mut items = Vec::with_capacity(events.len());
        let flushed;
        let mut unflushed = None;
        {
            let mut insert_place = transaction.prepare_cached(
                "INSERT OR IGNORE INTO places (key, city, region, country_code, country, \
                 latitude, longitude) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for new in events {
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
                    && !self.places.contains_key(&place.key)
                    && !added_places.iter().any(|p: &&Place| p.key == place.key)
                {
                    insert_place.execute(params![
                        place.key as i64,
                        place.city,
                        place.region,
                        place.country_code,
                        place.country,
                        place.latitude,
                        place.longitude
                    ])?;
                    added_places.push(place);
                }
                items.push(Item {
                    row: Row {
                        received_ms: new.received_ms,
                        event: new.event,
                        located,
                        network: new.network,
                    },
                    country: place.map(|p| p.country_code.as_str()),
                });
            }
            let delta = write_items(&transaction, &mut self.encoder, self.next_seq, &items)?;
            flushed = self.pending.events + delta.events >= ROLLUP_EVENTS
                || self.pending.places.len() + delta.places.len() >= ROLLUP_ROWS
                || self.rolled_at.elapsed() >= self.rollup_every;
            if flushed {
                self.pending.write(&transaction)?;
                delta.write(&transaction)?;
                set_rolled_up(&transaction, self.next_seq + events.len() as u64 - 1)?;
            } else {
                unflushed = Some(delta);
            }
            let mut insert_key = transaction.prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, status, body, \
                 stored_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for key in keys {
                insert_key.execute(params![
                    key.key,
                    key.fingerprint.to_be_bytes().as_slice(),
                    key.status,
                    key.body,
                    key.stored_ms as i64
                ])?;
            }
        }
        transaction.commit()?;
        // Only now: a failed commit is retried with the same events.
        if flushed {
            self.pending = Rollups::default();
            self.rolled_at = Instant::now();
        } else if let Some(delta) = unflushed {
            self.pending.merge(delta);
        }
        self.next_seq += events.len() as u64;
        for place in added_places {
            self.places.insert(place.key, place.country_code.clone());
        }
        Ok(())
    }

    fn last_seq(&self) -> Result<u64> {
        Ok(self.next_seq - 1)
    }

    fn places(&self) -> Result<Vec<Place>> {
        read_places(&self.connection)
    }

    fn scan(&self, after: u64, visit: &mut dyn FnMut(StoredEvent)) -> Result<()> {
        let start = block_of(&self.connection, after + 1)?;
        let mut statement = self.connection.prepare(
            "SELECT first_seq, data FROM blocks WHERE first_seq >= ?1 ORDER BY first_seq",
        )?;
        let mut rows = statement.query([start as i64])?;
        while let Some(row) = rows.next()? {
            decode_block(row, &mut |stored| {
                if stored.seq > after {
                    visit(stored);
                }
                true
            })?;
        }
        Ok(())
    }

    fn keys_since(&self, since_ms: u64) -> Result<Vec<KeyRecord>> {
        let mut statement = self.connection.prepare(
            "SELECT key, fingerprint, status, body, stored_ms FROM idempotency_keys \
             WHERE stored_ms >= ?1 ORDER BY stored_ms, rowid",
        )?;
        let keys = statement
            .query_map([since_ms as i64], |r| {
                let fingerprint: Vec<u8> = r.get(1)?;
                let fingerprint =
                    <[u8; 16]>::try_from(fingerprint.as_slice()).map_or(0, u128::from_be_bytes);
                Ok(KeyRecord {
                    key: r.get(0)?,
                    fingerprint,
                    status: r.get(2)?,
                    body: r.get(3)?,
                    stored_ms: r.get::<_, i64>(4)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(keys)
    }

    fn forget_keys_before(&mut self, before_ms: u64) -> Result<usize> {
        Ok(self.connection.execute(
            "DELETE FROM idempotency_keys WHERE stored_ms < ?1",
            [before_ms as i64],
        )?)
    }

    /// One transaction: the pending rollups are written first (so the hour rollups count
    /// every event ever stored, and no minute row of a deleted minute is written later);
    /// blocks wholly older than `cutoff` are dropped; a block holding older and newer events
    /// is replaced by one block per run of consecutive seqs it keeps (blocks decode by
    /// consecutive seqs); minute rollups before the cutoff's minute are dropped and the
    /// cutoff's own minute is counted again from the events it keeps. The newest seq is
    /// remembered in `meta`, so the sequence continues even when every block is gone. The
    /// file does not shrink: SQLite reuses the freed pages.
    fn delete_before(&mut self, cutoff: f64) -> Result<u64> {
        if cutoff.is_nan() {
            return Ok(0);
        }
        let last = self.next_seq - 1;
        let transaction = self.connection.transaction()?;
        self.pending.write(&transaction)?;
        set_rolled_up(&transaction, last)?;
        transaction.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
            params![LAST_SEQ, last.to_string()],
        )?;
        let whole: i64 = transaction.query_row(
            "SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM blocks \
             WHERE max_timestamp < ?1",
            [cutoff],
            |r| r.get(0),
        )?;
        transaction.execute("DELETE FROM blocks WHERE max_timestamp < ?1", [cutoff])?;
        let mut deleted = whole as u64;
        let mixed: Vec<(i64, Vec<u8>)> = transaction
            .prepare("SELECT first_seq, data FROM blocks WHERE min_timestamp < ?1")?
            .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (first, data) in mixed {
            let mut kept: Vec<StoredEvent> = Vec::new();
            decode_data(first as u64, &data, &mut |stored| {
                if stored.event.timestamp >= cutoff {
                    kept.push(stored);
                } else {
                    deleted += 1;
                }
                true
            })?;
            transaction.execute("DELETE FROM blocks WHERE first_seq = ?1", [first])?;
            for run in kept.chunk_by(|a, b| a.seq + 1 == b.seq) {
                insert_block(&transaction, &mut self.encoder, run)?;
            }
        }
        if cutoff == f64::INFINITY {
            transaction.execute_batch(
                "DELETE FROM rollup_places_minute; DELETE FROM rollup_timeline_minute;",
            )?;
        } else if cutoff > f64::NEG_INFINITY {
            let minute = bucket_of(cutoff, 60.0);
            for table in ["rollup_places_minute", "rollup_timeline_minute"] {
                transaction
                    .execute(&format!("DELETE FROM {table} WHERE bucket <= ?1"), [minute])?;
            }
            // The cutoff's minute again, from what is left of it.
            let (lo, hi) = (minute as f64 * 60.0, (minute + 1) as f64 * 60.0);
            let mut again = Rollups::default();
            let mut statement = transaction.prepare(
                "SELECT first_seq, data FROM blocks WHERE max_timestamp >= ?1 \
                 AND min_timestamp < ?2",
            )?;
            let mut rows = statement.query(params![lo, hi])?;
            while let Some(row) = rows.next()? {
                decode_block(row, &mut |stored| {
                    let t = stored.event.timestamp;
                    if lo <= t && t < hi {
                        let country = match &stored.located {
                            Located::Event(key) | Located::Ip { place: key, .. } => {
                                self.places.get(key).map(String::as_str)
                            }
                            Located::Unlocated(_) => None,
                        };
                        again.add(where_of(&stored.located), country, &stored.event);
                    }
                    true
                })?;
            }
            drop(rows);
            drop(statement);
            again.write_tables(&transaction, false)?;
        }
        transaction.commit()?;
        self.pending = Rollups::default();
        self.rolled_at = Instant::now();
        Ok(deleted)
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn readers(&self) -> Box<dyn OpenReader> {
        Box::new(SqliteReaders {
            path: self.path.clone(),
        })
    }

    fn secret(&self) -> [u64; 2] {
        self.secret
    }
}

fn read_places(connection: &Connection) -> Result<Vec<Place>> {
    let mut statement = connection.prepare(
        "SELECT key, city, region, country_code, country, latitude, longitude FROM places",
    )?;
    let places = statement
        .query_map([], |r| {
            Ok(Place {
                key: r.get::<_, i64>(0)? as u64,
                city: r.get(1)?,
                region: r.get(2)?,
                country_code: r.get(3)?,
                country: r.get(4)?,
                latitude: r.get(5)?,
                longitude: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(places)
}

/// The first seq of the block holding `seq` (blocks are consecutive), or `seq` itself when
/// no block starts at or before it.
fn block_of(connection: &Connection, seq: u64) -> Result<u64> {
    let first: Option<i64> = connection
        .query_row(
            "SELECT first_seq FROM blocks WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1",
            [seq as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(first.map_or(seq, |f| f as u64))
}

/// Visits the events of a `(first_seq, data)` row until `visit` says stop (false).
fn decode_block(
    row: &rusqlite::Row<'_>,
    visit: &mut dyn FnMut(StoredEvent) -> bool,
) -> Result<bool> {
    let first = row.get::<_, i64>(0)? as u64;
    let data = row.get_ref(1)?.as_blob().map_err(|e| Error::Corrupt {
        seq: first,
        reason: format!("block: {e}"),
    })?;
    decode_data(first, data, visit)
}

fn decode_data(
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

/// Opens read-only connections on one SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteReaders {
    path: PathBuf,
}

impl OpenReader for SqliteReaders {
    fn open_reader(&self) -> Result<Box<dyn Reader>> {
        use rusqlite::OpenFlags;
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536;")?;
        let places = read_places(&connection)?
            .into_iter()
            .map(|p| (p.key, p))
            .collect();
        Ok(Box::new(SqliteReader { connection, places }))
    }
}

struct SqliteReader {
    connection: Connection,
    places: HashMap<u64, Place>,
}

/// How a window splits into what rollups answer and what is counted from the events:
/// whole hours, whole minutes outside them, and the parts of a minute at either end.
#[derive(Debug)]
struct Plan {
    /// Hours `[from, to)` (bucket numbers).
    hours: (i64, i64),
    /// Minutes outside those hours, `[from, to)` each.
    minutes: Vec<(i64, i64)>,
    /// Data time counted from the events, `[from, to)` each.
    raw: Vec<(f64, f64)>,
}

impl Plan {
    fn new(range: TimeRange) -> Self {
        let (from, to) = bounds(range);
        // First whole bucket at or after `from`, first bucket not wholly before `to`.
        let first_whole = |w: f64| match range.from {
            None => i64::MIN,
            Some(f) => {
                let b = bucket_of(f, w);
                if b as f64 * w >= f { b } else { b + 1 }
            }
        };
        let end_whole = |w: f64| range.to.map_or(i64::MAX, |t| bucket_of(t, w));
        let (m_lo, m_hi) = (first_whole(60.0), end_whole(60.0));
        if m_lo >= m_hi {
            // Within one minute or two partial ones: all from the events.
            return Self {
                hours: (0, 0),
                minutes: Vec::new(),
                raw: vec![(from, to)],
            };
        }
        let (h_lo, h_hi) = (first_whole(3600.0), end_whole(3600.0));
        let hours = if h_lo < h_hi { (h_lo, h_hi) } else { (0, 0) };
        let minutes = if hours.0 < hours.1 {
            vec![
                (m_lo, hours.0.saturating_mul(60)),
                (hours.1.saturating_mul(60), m_hi),
            ]
        } else {
            vec![(m_lo, m_hi)]
        };
        let mut raw = Vec::new();
        if range.from.is_some() {
            raw.push((from, m_lo as f64 * 60.0));
        }
        if range.to.is_some() {
            raw.push((m_hi as f64 * 60.0, to));
        }
        Self {
            hours,
            minutes: minutes.into_iter().filter(|(a, b)| a < b).collect(),
            raw: raw.into_iter().filter(|(a, b)| a < b).collect(),
        }
    }
}

/// The bounds as SQL parameters: an open end is the largest finite value.
fn bounds(range: TimeRange) -> (f64, f64) {
    (range.from.unwrap_or(f64::MIN), range.to.unwrap_or(f64::MAX))
}

/// SQL conditions and their values for the rollup columns a filter constrains.
fn rollup_filter(filter: &Filter, country_column: bool) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::new();
    let mut values = Vec::new();
    if let Some(s) = filter.suspicious {
        sql.push_str(" AND suspicious = ?");
        values.push(Value::Integer(i64::from(s)));
    }
    if let Some(p) = &filter.protocol {
        sql.push_str(" AND protocol = ?");
        values.push(Value::Text(p.clone()));
    }
    if let Some(c) = filter.status_class {
        sql.push_str(" AND status_class = ?");
        values.push(Value::Integer(i64::from(c)));
    }
    if country_column && let Some(c) = &filter.country {
        sql.push_str(" AND country_code = ?");
        values.push(Value::Text(c.clone()));
    }
    (sql, values)
}

/// Counts gathered for a summary.
#[derive(Default)]
struct Tally {
    total: u64,
    suspicious: u64,
    first: Option<f64>,
    latest: Option<f64>,
    /// (count, suspicious) per place key.
    places: HashMap<u64, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, place: Option<u64>, events: u64, suspicious: u64, first: f64, latest: f64) {
        self.total += events;
        self.suspicious += suspicious;
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.latest = Some(self.latest.map_or(latest, |l| l.max(latest)));
        if let Some(place) = place {
            let counts = self.places.entry(place).or_default();
            counts.0 += events;
            counts.1 += suspicious;
        }
    }
}

impl SqliteReader {
    fn country_of(&self, located: &Located<u64>) -> Option<&str> {
        match located {
            Located::Event(key) | Located::Ip { place: key, .. } => {
                self.places.get(key).map(|p| p.country_code.as_str())
            }
            Located::Unlocated(_) => None,
        }
    }

    /// Visits the events with `from <= timestamp < to` that pass `filter`.
    fn each_raw(
        &self,
        (from, to): (f64, f64),
        filter: &Filter,
        visit: &mut dyn FnMut(&StoredEvent),
    ) -> Result<()> {
        let blocks: Vec<i64> = self
            .connection
            .prepare_cached(
                "SELECT first_seq FROM blocks WHERE max_timestamp >= ?1 AND min_timestamp < ?2",
            )?
            .query_map(params![from, to], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut data = self
            .connection
            .prepare_cached("SELECT first_seq, data FROM blocks WHERE first_seq = ?1")?;
        for first in blocks {
            let mut rows = data.query([first])?;
            if let Some(row) = rows.next()? {
                decode_block(row, &mut |stored| {
                    let t = stored.event.timestamp;
                    if from <= t
                        && t < to
                        && filter.matches(&stored.event, self.country_of(&stored.located))
                    {
                        visit(&stored);
                    }
                    true
                })?;
            }
        }
        Ok(())
    }

    /// Adds the place rollup rows of `table` with buckets in `[lo, hi)` to `tally`.
    fn tally_rollup(
        &self,
        table: &str,
        (lo, hi): (i64, i64),
        filter: &Filter,
        tally: &mut Tally,
    ) -> Result<()> {
        let (conditions, mut values) = rollup_filter(filter, false);
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT placed, place_key, suspicious, sum(events), min(first), max(latest) \
             FROM {table} WHERE bucket >= ? AND bucket < ?{conditions} \
             GROUP BY placed, place_key, suspicious"
        ))?;
        values.insert(0, rusqlite::types::Value::Integer(hi));
        values.insert(0, rusqlite::types::Value::Integer(lo));
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            let placed: bool = row.get(0)?;
            let key = row.get::<_, i64>(1)? as u64;
            if let Some(country) = &filter.country {
                let here = self.places.get(&key).map(|p| &p.country_code);
                if !placed || here != Some(country) {
                    continue;
                }
            }
            let events = row.get::<_, i64>(3)? as u64;
            let suspicious = if row.get(2)? { events } else { 0 };
            tally.add(
                placed.then_some(key),
                events,
                suspicious,
                row.get(4)?,
                row.get(5)?,
            );
        }
        Ok(())
    }

    /// Adds the timeline rollup rows of `table` (buckets of `width` seconds) in `[lo, hi)`
    /// to `buckets`.
    fn timeline_rollup(
        &self,
        (table, width): (&str, f64),
        (lo, hi): (i64, i64),
        filter: &Filter,
        (start, bucket): (f64, f64),
        buckets: &mut [(u64, u64)],
    ) -> Result<()> {
        let (conditions, mut values) = rollup_filter(filter, true);
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT bucket, suspicious, sum(events) FROM {table} \
             WHERE bucket >= ? AND bucket < ?{conditions} GROUP BY bucket, suspicious"
        ))?;
        values.insert(0, rusqlite::types::Value::Integer(hi));
        values.insert(0, rusqlite::types::Value::Integer(lo));
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        let last = buckets.len() - 1;
        while let Some(row) = rows.next()? {
            let at = row.get::<_, i64>(0)? as f64 * width;
            let i = (((at - start) / bucket).floor().max(0.0) as usize).min(last);
            let events = row.get::<_, i64>(2)? as u64;
            buckets[i].0 += events;
            if row.get(1)? {
                buckets[i].1 += events;
            }
        }
        Ok(())
    }
}

impl Reader for SqliteReader {
    fn summary(&self, range: TimeRange, filter: &Filter, top: usize) -> Result<RangeSummary> {
        // One snapshot for every read below (the writer may commit meanwhile).
        let snapshot = self.connection.unchecked_transaction()?;
        let rolled = rolled_up(&self.connection)?;
        let plan = Plan::new(range);
        let mut tally = Tally::default();
        if plan.hours.0 < plan.hours.1 {
            self.tally_rollup("rollup_places_hour", plan.hours, filter, &mut tally)?;
        }
        for &minutes in &plan.minutes {
            self.tally_rollup("rollup_places_minute", minutes, filter, &mut tally)?;
        }
        for &raw in &plan.raw {
            self.each_raw(raw, filter, &mut |stored| {
                let place = match stored.located {
                    Located::Event(key) | Located::Ip { place: key, .. } => Some(key),
                    Located::Unlocated(_) => None,
                };
                let t = stored.event.timestamp;
                tally.add(place, 1, u64::from(stored.event.suspicious), t, t);
            })?;
        }
        // The newest events, not in the rollups yet: counted from their blocks wherever the
        // rollups would have counted them (the raw parts above have them already).
        let mut tail: Vec<(f64, bool)> = Vec::new();
        {
            let start = block_of(&self.connection, rolled + 1)?;
            let mut statement = self.connection.prepare_cached(
                "SELECT first_seq, data FROM blocks WHERE first_seq >= ?1 ORDER BY first_seq",
            )?;
            let mut rows = statement.query([start as i64])?;
            let (from, to) = bounds(range);
            while let Some(row) = rows.next()? {
                decode_block(row, &mut |stored| {
                    let t = stored.event.timestamp;
                    let e = &stored.event;
                    if stored.seq > rolled
                        && from <= t
                        && t < to
                        && !plan.raw.iter().any(|&(a, b)| a <= t && t < b)
                        && filter.matches(e, self.country_of(&stored.located))
                    {
                        let place = match stored.located {
                            Located::Event(key) | Located::Ip { place: key, .. } => Some(key),
                            Located::Unlocated(_) => None,
                        };
                        tally.add(place, 1, u64::from(e.suspicious), t, t);
                        tail.push((t, e.suspicious));
                    }
                    true
                })?;
            }
        }
        let mut places: Vec<(u64, (u64, u64))> =
            tally.places.iter().map(|(&k, &v)| (k, v)).collect();
        places.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
        let mut countries: HashMap<&str, (&str, u64, u64)> = HashMap::new();
        for &(key, (n, s)) in &places {
            if let Some(place) = self.places.get(&key) {
                let c = countries.entry(place.country_code.as_str()).or_insert((
                    place.country.as_str(),
                    0,
                    0,
                ));
                c.1 += n;
                c.2 += s;
            }
        }
        let mut countries: Vec<_> = countries.into_iter().collect();
        countries.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(b.0)));
        let top_countries = countries
            .into_iter()
            .take(top)
            .map(|(code, (name, count, suspicious))| RangeCountry {
                country_code: code.to_owned(),
                country: name.to_owned(),
                count,
                suspicious,
            })
            .collect();
        let top_places = places
            .iter()
            .filter_map(|&(key, (count, suspicious))| {
                let place = self.places.get(&key)?;
                Some(RangePlace {
                    key,
                    city: place.city.clone(),
                    country_code: place.country_code.clone(),
                    count,
                    suspicious,
                })
            })
            .take(top)
            .collect();
        let timeline = match (tally.first, tally.latest) {
            (Some(first), Some(latest)) => {
                let width = bucket_secs(first, latest);
                let start = timeline_start(first, width);
                let len = ((latest - start) / width as f64).floor() as usize + 1;
                let mut buckets = vec![(0u64, 0u64); len];
                let w = width as f64;
                let count_raw = |raw: (f64, f64), buckets: &mut Vec<(u64, u64)>| {
                    self.each_raw(raw, filter, &mut |stored| {
                        let t = stored.event.timestamp;
                        let i = (((t - start) / w).floor().max(0.0) as usize).min(len - 1);
                        buckets[i].0 += 1;
                        buckets[i].1 += u64::from(stored.event.suspicious);
                    })
                };
                if width.is_multiple_of(60) {
                    let by = (start, w);
                    if plan.hours.0 < plan.hours.1 {
                        if width.is_multiple_of(3600) {
                            let t = ("rollup_timeline_hour", 3600.0);
                            self.timeline_rollup(t, plan.hours, filter, by, &mut buckets)?;
                        } else {
                            let minutes = (
                                plan.hours.0.saturating_mul(60),
                                plan.hours.1.saturating_mul(60),
                            );
                            let t = ("rollup_timeline_minute", 60.0);
                            self.timeline_rollup(t, minutes, filter, by, &mut buckets)?;
                        }
                    }
                    for &minutes in &plan.minutes {
                        let t = ("rollup_timeline_minute", 60.0);
                        self.timeline_rollup(t, minutes, filter, by, &mut buckets)?;
                    }
                    for &raw in &plan.raw {
                        count_raw(raw, &mut buckets)?;
                    }
                    for &(t, suspicious) in &tail {
                        let i = (((t - start) / w).floor().max(0.0) as usize).min(len - 1);
                        buckets[i].0 += 1;
                        buckets[i].1 += u64::from(suspicious);
                    }
                } else {
                    count_raw(bounds(range), &mut buckets)?;
                }
                let peak = (0..len).max_by_key(|&i| (buckets[i].0, std::cmp::Reverse(i)));
                RangeTimeline {
                    start,
                    bucket_secs: width,
                    buckets,
                    peak,
                }
            }
            _ => RangeTimeline {
                start: range.from.unwrap_or(0.0),
                bucket_secs: 1,
                buckets: Vec::new(),
                peak: None,
            },
        };
        drop(snapshot);
        Ok(RangeSummary {
            total: tally.total,
            suspicious: tally.suspicious,
            first_timestamp: tally.first,
            latest_timestamp: tally.latest,
            top_places,
            top_countries,
            timeline,
        })
    }

    fn events(
        &self,
        range: TimeRange,
        filter: &Filter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let (from, to) = bounds(range);
        let start = block_of(&self.connection, after.saturating_add(1))?;
        // `+` keeps SQLite on the sequence order (the time index would sort the blobs).
        let mut statement = self.connection.prepare_cached(
            "SELECT first_seq, data FROM blocks WHERE first_seq >= ?1 \
             AND +max_timestamp >= ?2 AND +min_timestamp < ?3 ORDER BY first_seq",
        )?;
        let mut rows = statement.query(params![start as i64, from, to])?;
        let mut events = Vec::new();
        while events.len() < limit
            && let Some(row) = rows.next()?
        {
            decode_block(row, &mut |stored| {
                let t = stored.event.timestamp;
                if stored.seq > after
                    && from <= t
                    && t < to
                    && filter.matches(&stored.event, self.country_of(&stored.located))
                {
                    events.push(stored);
                }
                events.len() < limit
            })?;
        }
        Ok(events)
    }
}

/// Version 2's migration of version 1's events: re-encoded into blocks with their rollups,
/// in the migration's transaction; then their table is dropped.
fn convert_v1_events(transaction: &Transaction<'_>) -> Result<()> {
    let countries: HashMap<u64, String> = read_places(transaction)?
        .into_iter()
        .map(|p| (p.key, p.country_code))
        .collect();
    let mut encoder = Encoder::default();
    let mut rollups = Rollups::default();
    let mut statement = transaction.prepare(
        "SELECT seq, received_ms, timestamp, ip, latitude, longitude, suspicious, located, \
         place_key, ip_latitude, ip_longitude, unlocated, bytes, protocol, status, method, path, \
         dest_ip FROM events ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    let mut chunk: Vec<StoredEvent> = Vec::with_capacity(BLOCK_EVENTS);
    let mut flush = |chunk: &mut Vec<StoredEvent>| -> Result<()> {
        let Some(first) = chunk.first().map(|e| e.seq) else {
            return Ok(());
        };
        let items: Vec<Item<'_>> = chunk
            .iter()
            .map(|stored| {
                let (located, key) = match &stored.located {
                    Located::Event(key) => (Where::Event(*key), Some(key)),
                    Located::Ip {
                        place,
                        latitude,
                        longitude,
                    } => (Where::Ip(*place, *latitude, *longitude), Some(place)),
                    Located::Unlocated(reason) => (Where::Unlocated(reason), None),
                };
                Item {
                    row: Row {
                        received_ms: stored.received_ms,
                        event: &stored.event,
                        located,
                        network: None,
                    },
                    country: key.and_then(|k| countries.get(k)).map(String::as_str),
                }
            })
            .collect();
        let delta = write_items(transaction, &mut encoder, first, &items)?;
        rollups.merge(delta);
        if rollups.places.len() > 100_000 {
            std::mem::take(&mut rollups).write(transaction)?;
        }
        chunk.clear();
        Ok(())
    };
    let mut expected = None;
    while let Some(row) = rows.next()? {
        let stored = read_v1_event(row)?;
        // Version 1 numbered without gaps; a block must not hide one.
        if expected.is_some_and(|e| e != stored.seq) {
            flush(&mut chunk)?;
        }
        expected = Some(stored.seq + 1);
        chunk.push(stored);
        if chunk.len() == BLOCK_EVENTS {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    rollups.write(transaction)?;
    if let Some(last) = expected {
        set_rolled_up(transaction, last - 1)?;
    }
    drop(rows);
    drop(statement);
    transaction.execute_batch("DROP TABLE events;")?;
    Ok(())
}

/// A row of version 1's `events` table.
fn read_v1_event(row: &rusqlite::Row<'_>) -> Result<StoredEvent> {
    let seq = row.get::<_, i64>(0)? as u64;
    let corrupt = |reason: String| Error::Corrupt { seq, reason };
    let ip: String = row.get(3)?;
    let ip = ip.parse().map_err(|e| corrupt(format!("ip {ip:?}: {e}")))?;
    let dest_ip = match row.get::<_, Option<String>>(17)? {
        Some(text) => Some(
            text.parse()
                .map_err(|e| corrupt(format!("dest_ip {text:?}: {e}")))?,
        ),
        None => None,
    };
    let place = row.get::<_, Option<i64>>(8)?.map(|k| k as u64);
    let located = match (row.get::<_, i64>(7)?, place) {
        (1, Some(place)) => Located::Event(place),
        (2, Some(place)) => Located::Ip {
            place,
            latitude: row.get(9)?,
            longitude: row.get(10)?,
        },
        (0, _) => Located::Unlocated(row.get::<_, Option<String>>(11)?.unwrap_or_default()),
        (other, _) => return Err(corrupt(format!("located = {other} without a place"))),
    };
    Ok(StoredEvent {
        seq,
        received_ms: row.get::<_, i64>(1)? as u64,
        event: Event {
            ip,
            latitude: row.get(4)?,
            longitude: row.get(5)?,
            timestamp: row.get(2)?,
            suspicious: row.get(6)?,
            bytes: row.get::<_, Option<i64>>(12)?.map(|b| b as u64),
            protocol: row.get(13)?,
            status: row.get(14)?,
            method: row.get(15)?,
            path: row.get(16)?,
            dest_ip,
            // Not kept by the store yet (ports and packet counts of live captures).
            src_port: None,
            dest_port: None,
            packets: None,
        },
        located,
        network: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "history-sqlite-{name}-{}-{:x}",
            std::process::id(),
            crate::random_u128() as u32
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn sqlite_passes_the_conformance_suite_in_both_durabilities() {
        // Rollups written with every commit, never (all counted from the blocks), and as
        // by default: the same answers.
        for (durability, every) in [
            (Durability::Process, Duration::ZERO),
            (Durability::Process, Duration::MAX),
            (Durability::Process, ROLLUP_EVERY),
            (Durability::Disk, Duration::ZERO),
        ] {
            for (name, test) in conformance::ALL {
                let dir = temp_dir(name);
                let mut reopen = {
                    let dir = dir.clone();
                    move || -> Box<dyn Store> {
                        let mut store = Sqlite::open(&dir, durability).expect("opens");
                        store.set_rollup_every(every);
                        Box::new(store)
                    }
                };
                test(&mut reopen);
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }

    #[test]
    fn a_store_from_a_newer_build_is_refused_not_rewritten() {
        let dir = temp_dir("newer");
        drop(Sqlite::open(&dir, Durability::Process).unwrap());
        let connection = Connection::open(dir.join(FILE_NAME)).unwrap();
        connection
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        drop(connection);
        let error = Sqlite::open(&dir, Durability::Process).unwrap_err();
        assert!(
            matches!(
                error,
                Error::TooNew {
                    found: 99,
                    known: 2
                }
            ),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_1_store_opens_migrated_with_every_event_and_its_rollups() {
        let dir = temp_dir("v1");
        std::fs::create_dir_all(&dir).unwrap();
        {
            // A store as version 1 wrote it: one row per event.
            let connection = Connection::open(dir.join(FILE_NAME)).unwrap();
            connection.execute_batch(MIGRATIONS[0]).unwrap();
            connection
                .execute_batch(
                    "PRAGMA user_version = 1; PRAGMA synchronous = OFF;
                     INSERT INTO meta VALUES ('epoch', 'e1'), ('secret', '0123456789abcdef0123456789abcdef');
                     INSERT INTO places VALUES (5, 'Paris', 'IDF', 'FR', 'France', 48.8, 2.3);",
                )
                .unwrap();
            let mut insert = connection
                .prepare(
                    "INSERT INTO events (seq, received_ms, timestamp, ip, latitude, longitude, \
                     suspicious, located, place_key, ip_latitude, ip_longitude, unlocated, bytes, \
                     protocol, status, method, path, dest_ip) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .unwrap();
            for seq in 1..=10_000i64 {
                let (located, place, unlocated) = match seq % 3 {
                    0 => (0, None, Some("private")),
                    1 => (1, Some(5i64), None),
                    _ => (2, Some(5), None),
                };
                insert
                    .execute(params![
                        seq,
                        1_700_000_000_000i64 + seq,
                        1_736_900_000.0 + seq as f64 * 7.5,
                        format!("10.0.{}.{}", seq / 256 % 256, seq % 256),
                        (located == 1).then_some(48.8),
                        (located == 1).then_some(2.3),
                        seq % 4 == 0,
                        located,
                        place,
                        (located == 2).then_some(1.5),
                        (located == 2).then_some(-1.5),
                        unlocated,
                        (seq % 2 == 0).then_some(seq * 10),
                        (seq % 5 == 0).then_some("HTTP/2"),
                        (seq % 7 == 0).then_some(301),
                        Some("GET"),
                        Some(format!("/p/{seq}")),
                        (seq % 11 == 0).then_some("2001:db8::7"),
                    ])
                    .unwrap();
            }
        }
        let store = Sqlite::open(&dir, Durability::Process).unwrap();
        assert_eq!(store.last_seq().unwrap(), 10_000);
        assert_eq!(store.epoch(), "e1");
        let mut back = Vec::new();
        store.scan(0, &mut |e| back.push(e)).unwrap();
        assert_eq!(back.len(), 10_000);
        for (i, e) in back.iter().enumerate() {
            let seq = i as u64 + 1;
            assert_eq!(e.seq, seq);
            assert_eq!(e.received_ms, 1_700_000_000_000 + seq);
            assert_eq!(e.event.timestamp, 1_736_900_000.0 + seq as f64 * 7.5);
            assert_eq!(e.event.path.as_deref(), Some(format!("/p/{seq}").as_str()));
            assert_eq!(e.event.bytes, seq.is_multiple_of(2).then_some(seq * 10));
            assert_eq!(e.event.status, seq.is_multiple_of(7).then_some(301));
            assert_eq!(e.event.dest_ip.is_some(), seq.is_multiple_of(11));
            let expected = match seq % 3 {
                0 => Located::Unlocated("private".to_owned()),
                1 => Located::Event(5),
                _ => Located::Ip {
                    place: 5,
                    latitude: 1.5,
                    longitude: -1.5,
                },
            };
            assert_eq!(e.located, expected);
        }
        let reader = store.readers().open_reader().unwrap();
        let summary = reader
            .summary(TimeRange::default(), &Filter::default(), 5)
            .unwrap();
        assert_eq!(summary.total, 10_000);
        assert_eq!(summary.top_places[0].count, 6_667, "placed: seq % 3 != 0");
        let table: i64 = store
            .connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(table, 0, "the version 1 table is gone");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rollups_pending_at_a_restart_are_counted_again_and_written_once() {
        let dir = temp_dir("pending");
        let place = Place {
            key: 3,
            city: "Lyon".to_owned(),
            region: "ARA".to_owned(),
            country_code: "FR".to_owned(),
            country: "France".to_owned(),
            latitude: 45.7,
            longitude: 4.8,
        };
        let events: Vec<Event> = (0..500u32)
            .map(|i| {
                Event::new(
                    std::net::IpAddr::from([10, 0, 0, 1]),
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
                    located: Located::Event(&place),
                    network: None,
                })
                .collect()
        };
        let total = |store: &Sqlite| {
            let reader = store.readers().open_reader().unwrap();
            let whole = reader.summary(TimeRange::default(), &Filter::default(), 1);
            let from_rollups: i64 = store
                .connection
                .query_row("SELECT sum(events) FROM rollup_places_hour", [], |r| {
                    r.get(0)
                })
                .unwrap_or(0);
            (whole.unwrap().total, from_rollups)
        };
        {
            let mut store = Sqlite::open(&dir, Durability::Process).unwrap();
            store.set_rollup_every(Duration::ZERO);
            store.append(&rows(0..100), &[]).unwrap();
            store.set_rollup_every(Duration::MAX);
            store.append(&rows(100..300), &[]).unwrap();
            assert_eq!(
                total(&store),
                (300, 100),
                "200 pending, counted from the blocks"
            );
        }
        let mut store = Sqlite::open(&dir, Durability::Process).unwrap();
        assert_eq!(total(&store), (300, 100));
        store.set_rollup_every(Duration::ZERO);
        store.append(&rows(300..500), &[]).unwrap();
        assert_eq!(total(&store), (500, 500), "the pending 200 written once");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pending_rollups_are_written_once_they_reach_their_row_bound_whatever_the_time() {
        let dir = temp_dir("rows");
        let events: Vec<Event> = (0..ROLLUP_ROWS as u32 + 10)
            .map(|i| {
                // Each in a minute of its own: one pending row each.
                Event::new(
                    std::net::IpAddr::from([10, 0, 0, 2]),
                    1_000_000_000.0 + f64::from(i) * 60.0,
                    false,
                )
            })
            .collect();
        let rows: Vec<NewEvent<'_>> = events
            .iter()
            .enumerate()
            .map(|(i, event)| NewEvent {
                seq: i as u64 + 1,
                received_ms: 1,
                event,
                located: Located::Unlocated("private".to_owned()),
                network: None,
            })
            .collect();
        let mut store = Sqlite::open(&dir, Durability::Process).unwrap();
        store.set_rollup_every(Duration::MAX);
        store.append(&rows[..ROLLUP_ROWS - 1], &[]).unwrap();
        assert_eq!(rolled_up(&store.connection).unwrap(), 0);
        store.append(&rows[ROLLUP_ROWS - 1..], &[]).unwrap();
        assert_eq!(
            rolled_up(&store.connection).unwrap(),
            events.len() as u64,
            "written with the commit that reached the bound"
        );
        assert!(store.pending.places.is_empty());
        drop(rows);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_store_runs_in_wal_mode_with_the_chosen_sync() {
        let dir = temp_dir("wal");
        for (durability, expected) in [(Durability::Process, 1), (Durability::Disk, 2)] {
            let store = Sqlite::open(&dir, durability).unwrap();
            let mode: String = store
                .connection
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            let sync: i64 = store
                .connection
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!((mode.as_str(), sync), ("wal", expected));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
