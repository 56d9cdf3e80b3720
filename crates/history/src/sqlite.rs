//! The embedded store: one SQLite file in WAL mode, written by one connection in batched
//! transactions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use traffic::{Event, Place};

use crate::blocks::{self, BLOCK_EVENTS, Item, Pending, Rollups};
use crate::codec::{Encoder, Row, Where};
use crate::query::{self, Param, PlaceSum, Source, Width};
use crate::range::{Filter, OpenReader, RangeSummary, Reader, TimeRange};
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
    places: blocks::Countries,
    epoch: String,
    secret: [u64; 2],
    /// Reused between commits (its buffers keep their capacity).
    encoder: Encoder,
    /// Rollups of the events after `meta.rolled_up`, not written yet.
    pending: Pending,
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
        // newest seq ever stored, remembered then.
        let last = last.max(meta_u64(&connection, LAST_SEQ)? as i64);
        let places: blocks::Countries = read_places(&connection)?
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
                        pending.add_stored(&stored, &places);
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
            pending: Pending::new(pending),
        })
    }

    /// Writes the rollups at most `every` apart (default 1 s; `Duration::ZERO`: with every
    /// commit). Answers are the same whatever it is; it trades commit cost for the events a
    /// range question decodes.
    pub fn set_rollup_every(&mut self, every: Duration) {
        self.pending.every = every;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl crate::conformance::RollupHooks for Sqlite {
    fn set_rollup_every(&mut self, every: Duration) {
        Sqlite::set_rollup_every(self, every);
    }

    fn hour_rollup_events(&self) -> u64 {
        self.connection
            .query_row(
                "SELECT coalesce(sum(events), 0) FROM rollup_places_hour",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_or(0, |n| n as u64)
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

/// Adds the rollup rows to the minute tables and, if `hours`, the hour tables (nothing is
/// cleared): each table's rows in the order of its primary key (the upserts then walk the
/// B-tree from left to right instead of jumping around it), many rows to a statement.
fn write_rollups(rollups: &Rollups, transaction: &Transaction<'_>, hours: bool) -> Result<()> {
    let tables = if hours { 2 } else { 1 };
    for (table, mut rows) in rollups.place_rows().into_iter().take(tables) {
        // The key's order in SQLite: place_key as a signed integer, protocol as text.
        rows.sort_unstable_by_key(|r| {
            (
                r.bucket,
                r.placed,
                r.place_key as i64,
                r.suspicious,
                r.protocol,
                r.status_class,
            )
        });
        upsert_rows(
            transaction,
            &format!(
                "INSERT INTO {table} (bucket, placed, place_key, suspicious, protocol, \
                 status_class, events, first, latest) VALUES"
            ),
            "ON CONFLICT DO UPDATE SET events = events + excluded.events, \
             first = min(first, excluded.first), latest = max(latest, excluded.latest)",
            &rows,
            |r| {
                [
                    Value::Integer(r.bucket),
                    Value::Integer(r.placed.into()),
                    Value::Integer(r.place_key as i64),
                    Value::Integer(r.suspicious.into()),
                    Value::Text(r.protocol),
                    Value::Integer(r.status_class),
                    Value::Integer(r.events as i64),
                    Value::Real(r.first),
                    Value::Real(r.latest),
                ]
            },
        )?;
    }
    for (table, mut rows) in rollups.timeline_rows().into_iter().take(tables) {
        rows.sort_unstable_by_key(|r| {
            (
                r.bucket,
                r.country_code,
                r.suspicious,
                r.protocol,
                r.status_class,
            )
        });
        upsert_rows(
            transaction,
            &format!(
                "INSERT INTO {table} (bucket, country_code, suspicious, protocol, \
                 status_class, events) VALUES"
            ),
            "ON CONFLICT DO UPDATE SET events = events + excluded.events",
            &rows,
            |r| {
                [
                    Value::Integer(r.bucket),
                    Value::Text(r.country_code),
                    Value::Integer(r.suspicious.into()),
                    Value::Text(r.protocol),
                    Value::Integer(r.status_class),
                    Value::Integer(r.events as i64),
                ]
            },
        )?;
    }
    Ok(())
}

/// Rows per multi-row upsert: one statement's binding calls, step and reset shared by this
/// many rows instead of paid by each (9 columns: 576 parameters, far below SQLite's limit
/// of 32,766).
const UPSERT_ROWS: usize = 64;

/// Runs `insert` (an `INSERT INTO t (columns) VALUES` without its values) with `conflict`
/// (its `ON CONFLICT` clause) over `rows`, each row's values given by `values`: in
/// statements of [`UPSERT_ROWS`] rows, the rest one row at a time. The rows' keys must be
/// distinct (they come from a map), so no statement updates a row it inserted itself.
fn upsert_rows<'r, R, const N: usize>(
    transaction: &Transaction<'_>,
    insert: &str,
    conflict: &str,
    rows: &'r [R],
    values: impl Fn(&'r R) -> [Value<'r>; N],
) -> Result<()> {
    let group = |rows: usize| {
        let one = format!("({})", vec!["?"; N].join(", "));
        format!("{insert} {} {conflict}", vec![one; rows].join(", "))
    };
    let mut chunks = rows.chunks_exact(UPSERT_ROWS);
    if chunks.len() > 0 {
        let mut many = transaction.prepare_cached(&group(UPSERT_ROWS))?;
        for chunk in &mut chunks {
            let mut index = 1;
            for row in chunk {
                for value in values(row) {
                    many.raw_bind_parameter(index, value)?;
                    index += 1;
                }
            }
            many.raw_execute()?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut one = transaction.prepare_cached(&group(1))?;
        for row in rest {
            for (i, value) in values(row).into_iter().enumerate() {
                one.raw_bind_parameter(i + 1, value)?;
            }
            one.raw_execute()?;
        }
    }
    Ok(())
}

/// A value bound to an upsert's parameter, borrowing its text.
enum Value<'a> {
    Integer(i64),
    Real(f64),
    Text(&'a str),
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Integer(i) => ValueRef::Integer(i),
            Value::Real(r) => ValueRef::Real(r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
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
    blocks::encode(encoder, first_seq, items, &mut |block| {
        insert.execute(params![
            block.first_seq as i64,
            block.last_seq as i64,
            block.min_timestamp,
            block.max_timestamp,
            block.data
        ])?;
        Ok(())
    })
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

impl Store for Sqlite {
    fn append(&mut self, events: &[NewEvent<'_>], keys: &[KeyRecord]) -> Result<()> {
        blocks::check_sequence(self.next_seq, events)?;
        let transaction = self.connection.transaction()?;
        let (items, added_places) = blocks::items(events, &self.places);
        let written;
        let delta;
        {
            let mut insert_place = transaction.prepare_cached(
                "INSERT OR IGNORE INTO places (key, city, region, country_code, country, \
                 latitude, longitude) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for place in &added_places {
                insert_place.execute(params![
                    place.key as i64,
                    place.city,
                    place.region,
                    place.country_code,
                    place.country,
                    place.latitude,
                    place.longitude
                ])?;
            }
            delta = write_items(&transaction, &mut self.encoder, self.next_seq, &items)?;
            written = self.pending.due(&delta);
            if written {
                write_rollups(&self.pending.rollups, &transaction, true)?;
                write_rollups(&delta, &transaction, true)?;
                set_rolled_up(&transaction, self.next_seq + events.len() as u64 - 1)?;
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
        self.pending.committed(written, delta);
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
    /// is replaced by one block per run of consecutive seqs it keeps; minute rollups before
    /// the cutoff's minute are dropped and the cutoff's own minute is counted again from the
    /// events it keeps. The newest seq is remembered in `meta`, so the sequence continues
    /// even when every block is gone. The file does not shrink: SQLite reuses the pages.
    fn delete_before(&mut self, cutoff: f64) -> Result<u64> {
        if cutoff.is_nan() || cutoff == f64::NEG_INFINITY {
            return Ok(0);
        }
        let last = self.next_seq - 1;
        let transaction = self.connection.transaction()?;
        write_rollups(&self.pending.rollups, &transaction, true)?;
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
        // A few mixed blocks at a time (each up to a few hundred kB), in seq order.
        let mut after = 0i64;
        loop {
            let mixed: Vec<(i64, Vec<u8>)> = transaction
                .prepare_cached(
                    "SELECT first_seq, data FROM blocks WHERE min_timestamp < ?1 \
                     AND first_seq > ?2 ORDER BY first_seq LIMIT ?3",
                )?
                .query_map(params![cutoff, after, blocks::REWRITE_PAGE], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let Some(&(last_first, _)) = mixed.last() else {
                break;
            };
            for (first, data) in mixed {
                let (runs, gone) = blocks::split_block(first as u64, &data, cutoff)?;
                deleted += gone;
                transaction.execute("DELETE FROM blocks WHERE first_seq = ?1", [first])?;
                for run in &runs {
                    let items = blocks::stored_items(run);
                    write_items(&transaction, &mut self.encoder, run[0].seq, &items)?;
                }
            }
            after = last_first;
        }
        match blocks::cutoff_minute(cutoff) {
            None => transaction.execute_batch(
                "DELETE FROM rollup_places_minute; DELETE FROM rollup_timeline_minute;",
            )?,
            Some(minute) => {
                for table in ["rollup_places_minute", "rollup_timeline_minute"] {
                    transaction
                        .execute(&format!("DELETE FROM {table} WHERE bucket <= ?1"), [minute])?;
                }
                // The cutoff's minute again, from what is left of it.
                let again = blocks::recount_minute(minute, &self.places, |(lo, hi), visit| {
                    let mut statement = transaction.prepare(
                        "SELECT first_seq, data FROM blocks WHERE max_timestamp >= ?1 \
                         AND min_timestamp < ?2",
                    )?;
                    let mut rows = statement.query(params![lo, hi])?;
                    while let Some(row) = rows.next()? {
                        let (first, data) = block_row(row)?;
                        visit(first, data)?;
                    }
                    Ok(())
                })?;
                write_rollups(&again, &transaction, false)?;
            }
        }
        transaction.commit()?;
        self.pending.committed(true, Rollups::default());
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
    let (first, data) = block_row(row)?;
    blocks::decode(first, data, visit)
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

/// SQL conditions (`AND column = ?`) and their values.
fn sql_conditions(conditions: &[(&'static str, Param)]) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::new();
    let mut values = Vec::new();
    for (column, value) in conditions {
        sql.push_str(&format!(" AND {column} = ?"));
        values.push(match value {
            Param::Bool(b) => Value::Integer(i64::from(*b)),
            Param::Int(i) => Value::Integer(*i),
            Param::Text(t) => Value::Text(t.clone()),
        });
    }
    (sql, values)
}

impl Source for SqliteReader {
    fn places(&self) -> &HashMap<u64, Place> {
        &self.places
    }

    fn rolled_up(&self) -> Result<u64> {
        rolled_up(&self.connection)
    }

    fn block_of(&self, seq: u64) -> Result<u64> {
        block_of(&self.connection, seq)
    }

    fn blocks_after(
        &self,
        start: u64,
        (from, to): (f64, f64),
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        // `+` keeps SQLite on the sequence order (the time index would sort the blobs).
        let mut statement = self.connection.prepare_cached(
            "SELECT first_seq, data FROM blocks WHERE first_seq >= ?1 \
             AND +max_timestamp >= ?2 AND +min_timestamp < ?3 ORDER BY first_seq",
        )?;
        let mut rows = statement.query(params![start as i64, from, to])?;
        while let Some(row) = rows.next()? {
            let (first, data) = block_row(row)?;
            if !visit(first, data)? {
                break;
            }
        }
        Ok(())
    }

    fn blocks_in(
        &self,
        (from, to): (f64, f64),
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
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
                let (first, data) = block_row(row)?;
                visit(first, data)?;
            }
        }
        Ok(())
    }

    fn place_rollups(
        &self,
        width: Width,
        (lo, hi): (i64, i64),
        conditions: &[(&'static str, Param)],
        visit: &mut dyn FnMut(PlaceSum),
    ) -> Result<()> {
        let (conditions, mut values) = sql_conditions(conditions);
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT placed, place_key, suspicious, sum(events), min(first), max(latest) \
             FROM rollup_places_{} WHERE bucket >= ? AND bucket < ?{conditions} \
             GROUP BY placed, place_key, suspicious",
            width.suffix()
        ))?;
        values.insert(0, rusqlite::types::Value::Integer(hi));
        values.insert(0, rusqlite::types::Value::Integer(lo));
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            visit(PlaceSum {
                placed: row.get(0)?,
                place_key: row.get::<_, i64>(1)? as u64,
                suspicious: row.get(2)?,
                events: row.get::<_, i64>(3)? as u64,
                first: row.get(4)?,
                latest: row.get(5)?,
            });
        }
        Ok(())
    }

    fn timeline_rollups(
        &self,
        width: Width,
        (lo, hi): (i64, i64),
        conditions: &[(&'static str, Param)],
        visit: &mut dyn FnMut(i64, bool, u64),
    ) -> Result<()> {
        let (conditions, mut values) = sql_conditions(conditions);
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT bucket, suspicious, sum(events) FROM rollup_timeline_{} \
             WHERE bucket >= ? AND bucket < ?{conditions} GROUP BY bucket, suspicious",
            width.suffix()
        ))?;
        values.insert(0, rusqlite::types::Value::Integer(hi));
        values.insert(0, rusqlite::types::Value::Integer(lo));
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            visit(row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64);
        }
        Ok(())
    }
}

/// The `(first_seq, data)` of a block row.
fn block_row<'r>(row: &'r rusqlite::Row<'_>) -> Result<(u64, &'r [u8])> {
    let first = row.get::<_, i64>(0)? as u64;
    let data = row.get_ref(1)?.as_blob().map_err(|e| Error::Corrupt {
        seq: first,
        reason: format!("block: {e}"),
    })?;
    Ok((first, data))
}

impl Reader for SqliteReader {
    fn summary(&self, range: TimeRange, filter: &Filter, top: usize) -> Result<RangeSummary> {
        // One snapshot for every read (the writer may commit meanwhile).
        let snapshot = self.connection.unchecked_transaction()?;
        let summary = query::summary(self, range, filter, top);
        drop(snapshot);
        summary
    }

    fn events(
        &self,
        range: TimeRange,
        filter: &Filter,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        query::events(self, range, filter, after, limit)
    }
}

/// Version 2's migration of version 1's events: re-encoded into blocks with their rollups,
/// in the migration's transaction; then their table is dropped.
fn convert_v1_events(transaction: &Transaction<'_>) -> Result<()> {
    let countries: blocks::Countries = read_places(transaction)?
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
            write_rollups(&std::mem::take(&mut rollups), transaction, true)?;
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
    write_rollups(&rollups, transaction, true)?;
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
            (Durability::Process, blocks::ROLLUP_EVERY),
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
        conformance::rollups_pending_at_a_restart_are_counted_again_and_written_once(&mut || {
            Sqlite::open(&dir, Durability::Process).unwrap()
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rollup_tables_equal_a_brute_force_count_of_the_events_over_many_commits() {
        let dir = temp_dir("brute");
        let place = |key: u64, country: &str| Place {
            key,
            city: format!("City {key}"),
            region: String::new(),
            country_code: country.to_owned(),
            country: country.to_owned(),
            latitude: 1.0,
            longitude: 2.0,
        };
        let places = [place(1, "FR"), place(2, "DE"), place(u64::MAX, "US")];
        // Enough distinct rows per commit for the multi-row statements and a remainder,
        // and the same keys again in later commits (rows updated, not only inserted).
        let events: Vec<Event> = (0..1_500u32)
            .map(|i| {
                let mut e = Event::new(
                    std::net::IpAddr::from([192, 0, 2, (i % 200) as u8]),
                    1_736_900_000.0 + f64::from(i % 700) * 17.0,
                    i % 3 == 0,
                );
                e.protocol = [None, Some("HTTP"), Some("TCP")][(i % 3) as usize].map(str::to_owned);
                e.status = [None, Some(200), Some(404), Some(503)][(i % 4) as usize];
                e
            })
            .collect();
        let located = |i: usize| match i % 5 {
            0 => Located::Unlocated("private".to_owned()),
            1 => Located::Event(&places[0]),
            2 => Located::Ip {
                place: &places[1],
                latitude: 3.0,
                longitude: 4.0,
            },
            _ => Located::Event(&places[i % 3]),
        };
        let rows: Vec<NewEvent<'_>> = events
            .iter()
            .enumerate()
            .map(|(i, event)| NewEvent {
                seq: i as u64 + 1,
                received_ms: 1,
                event,
                located: located(i),
                network: None,
            })
            .collect();
        let mut store = Sqlite::open(&dir, Durability::Process).unwrap();
        store.set_rollup_every(Duration::ZERO);
        for commit in rows.chunks(400) {
            store.append(commit, &[]).unwrap();
        }

        use std::collections::BTreeMap;
        type PlaceRow = (i64, i64, i64, i64, String, i64);
        type TimelineRow = (i64, String, i64, String, i64);
        let mut places_expected: [BTreeMap<PlaceRow, (i64, f64, f64)>; 2] = Default::default();
        let mut timeline_expected: [BTreeMap<TimelineRow, i64>; 2] = Default::default();
        for row in &rows {
            let e = row.event;
            let (placed, key, country) = match &row.located {
                Located::Event(p) | Located::Ip { place: p, .. } => {
                    (1, p.key as i64, p.country_code.clone())
                }
                Located::Unlocated(_) => (0, 0, String::new()),
            };
            let protocol = e.protocol.clone().unwrap_or_default();
            let class = e.status.map_or(-1, |s| i64::from(s / 100));
            for (i, width) in [60.0, 3600.0].into_iter().enumerate() {
                let bucket = (e.timestamp / width).floor() as i64;
                let suspicious = i64::from(e.suspicious);
                let entry = places_expected[i]
                    .entry((bucket, placed, key, suspicious, protocol.clone(), class))
                    .or_insert((0, f64::INFINITY, f64::NEG_INFINITY));
                entry.0 += 1;
                entry.1 = entry.1.min(e.timestamp);
                entry.2 = entry.2.max(e.timestamp);
                *timeline_expected[i]
                    .entry((bucket, country.clone(), suspicious, protocol.clone(), class))
                    .or_insert(0) += 1;
            }
        }
        for (i, table) in ["rollup_places_minute", "rollup_places_hour"]
            .into_iter()
            .enumerate()
        {
            let mut statement = store
                .connection
                .prepare(&format!(
                    "SELECT bucket, placed, place_key, suspicious, protocol, status_class, \
                     events, first, latest FROM {table}"
                ))
                .unwrap();
            let found: BTreeMap<PlaceRow, (i64, f64, f64)> = statement
                .query_map([], |r| {
                    Ok((
                        (
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ),
                        (r.get(6)?, r.get(7)?, r.get(8)?),
                    ))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                found.len() > 2 * UPSERT_ROWS || i == 1,
                "{table}: {}",
                found.len()
            );
            assert_eq!(found, places_expected[i], "{table}");
        }
        for (i, table) in ["rollup_timeline_minute", "rollup_timeline_hour"]
            .into_iter()
            .enumerate()
        {
            let mut statement = store
                .connection
                .prepare(&format!(
                    "SELECT bucket, country_code, suspicious, protocol, status_class, events \
                     FROM {table}"
                ))
                .unwrap();
            let found: BTreeMap<TimelineRow, i64> = statement
                .query_map([], |r| {
                    Ok((
                        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                        r.get(5)?,
                    ))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(found, timeline_expected[i], "{table}");
        }
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pending_rollups_are_written_once_they_reach_their_row_bound_whatever_the_time() {
        let dir = temp_dir("rows");
        let events: Vec<Event> = (0..blocks::ROLLUP_ROWS as u32 + 10)
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
        store.append(&rows[..blocks::ROLLUP_ROWS - 1], &[]).unwrap();
        assert_eq!(rolled_up(&store.connection).unwrap(), 0);
        store.append(&rows[blocks::ROLLUP_ROWS - 1..], &[]).unwrap();
        assert_eq!(
            rolled_up(&store.connection).unwrap(),
            events.len() as u64,
            "written with the commit that reached the bound"
        );
        assert!(store.pending.rollups.places.is_empty());
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
