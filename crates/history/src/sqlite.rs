//! The embedded store: one SQLite file in WAL mode, written by one connection in batched
//! transactions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};
use traffic::{Event, Place};

use crate::range::{
    OpenReader, RangeCountry, RangePlace, RangeSummary, RangeTimeline, Reader, TimeRange,
    bucket_secs,
};
use crate::{Durability, Error, KeyRecord, Located, NewEvent, Result, Store, StoredEvent};

/// The schema migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_events.sql")];

/// The file in the data directory.
pub const FILE_NAME: &str = "history.sqlite3";

/// The SQLite store.
pub struct Sqlite {
    connection: Connection,
    path: PathBuf,
    /// The seq the next stored event must have.
    next_seq: u64,
    /// Place keys already in `places`.
    known_places: HashSet<u64>,
    epoch: String,
    secret: [u64; 2],
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
        let last: i64 =
            connection.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?;
        let known_places = {
            let mut statement = connection.prepare("SELECT key FROM places")?;
            statement
                .query_map([], |r| r.get::<_, i64>(0))?
                .map(|k| k.map(|k| k as u64))
                .collect::<rusqlite::Result<HashSet<u64>>>()?
        };
        Ok(Self {
            connection,
            path,
            next_seq: last as u64 + 1,
            known_places,
            epoch,
            secret: [(secret >> 64) as u64, secret as u64],
        })
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

const INSERT_EVENT: &str = "INSERT INTO events (seq, received_ms, timestamp, ip, latitude, \
    longitude, suspicious, located, place_key, ip_latitude, ip_longitude, unlocated, bytes, \
    protocol, status, method, path, dest_ip) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

const SELECT_EVENTS: &str = "SELECT seq, received_ms, timestamp, ip, latitude, longitude, \
    suspicious, located, place_key, ip_latitude, ip_longitude, unlocated, bytes, protocol, \
    status, method, path, dest_ip FROM events WHERE seq > ?1 ORDER BY seq";

impl Store for Sqlite {
    fn append(&mut self, events: &[NewEvent<'_>], keys: &[KeyRecord]) -> Result<()> {
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
        {
            let mut insert = transaction.prepare_cached(INSERT_EVENT)?;
            let mut insert_place = transaction.prepare_cached(
                "INSERT OR IGNORE INTO places (key, city, region, country_code, country, \
                 latitude, longitude) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for new in events {
                let e = new.event;
                let (located, place, at, unlocated) = match &new.located {
                    Located::Event(place) => (1, Some(*place), None, None),
                    Located::Ip {
                        place,
                        latitude,
                        longitude,
                    } => (2, Some(*place), Some((*latitude, *longitude)), None),
                    Located::Unlocated(reason) => (0, None, None, Some(reason.as_str())),
                };
                if let Some(place) = place
                    && !self.known_places.contains(&place.key)
                    && !added_places.contains(&place.key)
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
                    added_places.push(place.key);
                }
                insert.execute(params![
                    new.seq as i64,
                    new.received_ms as i64,
                    e.timestamp,
                    crate::ip_text(e.ip),
                    e.latitude,
                    e.longitude,
                    e.suspicious,
                    located,
                    place.map(|p| p.key as i64),
                    at.map(|a| a.0),
                    at.map(|a| a.1),
                    unlocated,
                    e.bytes.map(|b| b as i64),
                    e.protocol,
                    e.status,
                    e.method,
                    e.path,
                    e.dest_ip.map(crate::ip_text),
                ])?;
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
        self.next_seq += events.len() as u64;
        self.known_places.extend(added_places);
        Ok(())
    }

    fn last_seq(&self) -> Result<u64> {
        Ok(self.next_seq - 1)
    }

    fn places(&self) -> Result<Vec<Place>> {
        let mut statement = self.connection.prepare(
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

    fn scan(&self, after: u64, visit: &mut dyn FnMut(StoredEvent)) -> Result<()> {
        let mut statement = self.connection.prepare(SELECT_EVENTS)?;
        let mut rows = statement.query([after as i64])?;
        while let Some(row) = rows.next()? {
            visit(read_event(row)?);
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
        connection.execute_batch("PRAGMA busy_timeout = 5000;")?;
        Ok(Box::new(SqliteReader { connection }))
    }
}

struct SqliteReader {
    connection: Connection,
}

/// The bounds as SQL parameters: an open end is the largest finite value.
fn bounds(range: TimeRange) -> (f64, f64) {
    (range.from.unwrap_or(f64::MIN), range.to.unwrap_or(f64::MAX))
}

const IN_RANGE: &str = "timestamp >= ?1 AND timestamp < ?2";

impl Reader for SqliteReader {
    fn summary(&self, range: TimeRange, top: usize) -> Result<RangeSummary> {
        let (from, to) = bounds(range);
        let c = &self.connection;
        let (total, suspicious, first, latest): (i64, i64, Option<f64>, Option<f64>) = c
            .query_row(
                &format!(
                    "SELECT count(*), coalesce(sum(suspicious), 0), min(timestamp), \
                     max(timestamp) FROM events WHERE {IN_RANGE}"
                ),
                params![from, to],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
        let top_places = c
            .prepare(
                "SELECT e.place_key, p.city, p.country_code, count(*) AS n, sum(e.suspicious) \
                 FROM events e JOIN places p ON p.key = e.place_key \
                 WHERE e.timestamp >= ?1 AND e.timestamp < ?2 \
                 GROUP BY e.place_key ORDER BY n DESC, e.place_key LIMIT ?3",
            )?
            .query_map(params![from, to, top as i64], |r| {
                Ok(RangePlace {
                    key: r.get::<_, i64>(0)? as u64,
                    city: r.get(1)?,
                    country_code: r.get(2)?,
                    count: r.get::<_, i64>(3)? as u64,
                    suspicious: r.get::<_, i64>(4)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let top_countries = c
            .prepare(
                "SELECT p.country_code, p.country, count(*) AS n, sum(e.suspicious) \
                 FROM events e JOIN places p ON p.key = e.place_key \
                 WHERE e.timestamp >= ?1 AND e.timestamp < ?2 \
                 GROUP BY p.country_code ORDER BY n DESC, p.country_code LIMIT ?3",
            )?
            .query_map(params![from, to, top as i64], |r| {
                Ok(RangeCountry {
                    country_code: r.get(0)?,
                    country: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                    suspicious: r.get::<_, i64>(3)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let timeline = match (first, latest) {
            (Some(first), Some(latest)) => {
                let start = first.floor();
                let width = bucket_secs(start, latest);
                let len = ((latest - start) / width as f64).floor() as usize + 1;
                let mut buckets = vec![(0u64, 0u64); len];
                let mut statement = c.prepare(&format!(
                    "SELECT CAST((timestamp - ?3) / ?4 AS INTEGER) AS b, count(*), \
                     sum(suspicious) FROM events WHERE {IN_RANGE} GROUP BY b"
                ))?;
                let mut rows = statement.query(params![from, to, start, width as f64])?;
                while let Some(row) = rows.next()? {
                    let b = row.get::<_, i64>(0)?.clamp(0, len as i64 - 1) as usize;
                    buckets[b].0 += row.get::<_, i64>(1)? as u64;
                    buckets[b].1 += row.get::<_, i64>(2)? as u64;
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
        Ok(RangeSummary {
            total: total as u64,
            suspicious: suspicious as u64,
            first_timestamp: first,
            latest_timestamp: latest,
            top_places,
            top_countries,
            timeline,
        })
    }

    fn events(&self, range: TimeRange, after: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let (from, to) = bounds(range);
        let sql = SELECT_EVENTS.replace(
            "WHERE seq > ?1 ORDER BY seq",
            "WHERE seq > ?3 AND timestamp >= ?1 AND timestamp < ?2 ORDER BY seq LIMIT ?4",
        );
        let mut statement = self.connection.prepare(&sql)?;
        let mut rows = statement.query(params![from, to, after as i64, limit as i64])?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(read_event(row)?);
        }
        Ok(events)
    }
}

fn read_event(row: &Row<'_>) -> Result<StoredEvent> {
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
        for durability in [Durability::Process, Durability::Disk] {
            for (name, test) in conformance::ALL {
                let dir = temp_dir(name);
                let mut reopen = {
                    let dir = dir.clone();
                    move || -> Box<dyn Store> {
                        Box::new(Sqlite::open(&dir, durability).expect("opens"))
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
                    known: 1
                }
            ),
            "{error}"
        );
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
