//! The PostgreSQL store: the same blocks and rollups as [`crate::Sqlite`] in a database
//! named by a `postgres://` URL, written by one connection in batched transactions (the
//! server's writer thread), read by a small pool of read-only connections.
//!
//! The client is the `postgres` crate's synchronous one: every call comes from a thread of
//! its own (the writer, blocking tasks), never from async code. Each connection runs its
//! own small runtime, so one must not be dropped inside an async context either; the pool
//! hands its idle connections to a thread to close.

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement, Transaction};
use traffic::Place;

use crate::blocks::{self, Item, Pending, Rollups};
use crate::codec::Encoder;
use crate::query::{self, Param, PlaceSum, Source, Width};
use crate::range::{Filter, OpenReader, RangeSummary, Reader, TimeRange};
use crate::{Durability, Error, KeyRecord, NewEvent, Result, Store, StoredEvent};

/// The schema migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[include_str!(
    "../migrations/postgres/0001_blocks_and_rollups.sql"
)];

/// Blocks fetched per round trip when reading in sequence order.
const PAGE_BLOCKS: i64 = 16;

/// Idle read connections kept for the next range question.
const IDLE_READERS: usize = 4;

/// The PostgreSQL store.
pub struct Postgres {
    client: RefCell<Client>,
    url: String,
    insert_block: Statement,
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

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &redact(&self.url))
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// `url` with its password (if any) replaced by `***`: what may be logged. Handles URLs
/// (`postgres://user:secret@host/db`, `?password=secret`) and key=value strings
/// (`host=h password=secret`).
pub fn redact(url: &str) -> String {
    let mask_params = |text: &str, separator: char| -> String {
        text.split(separator)
            .map(|part| match part.split_once('=') {
                Some((key, _)) if key.trim() == "password" => format!("{key}=***"),
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(&separator.to_string())
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return mask_params(url, ' ');
    };
    // The login ends at the last '@' (the client reads a password with '/' or '?' in it
    // that way too); one in the query instead hides more than the password, never less.
    let (login, rest) = match rest.rsplit_once('@') {
        Some((user_info, after)) => match user_info.split_once(':') {
            Some((user, _)) => (format!("{user}:***@"), after),
            None => (format!("{user_info}@"), after),
        },
        None => (String::new(), rest),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => format!("{path}?{}", mask_params(query, '&')),
        None => rest.to_owned(),
    };
    format!("{scheme}://{login}{rest}")
}

/// Whether `url` is a connection string the store can use (what `--database` takes); the
/// error says why not (without the password).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "{} is not a postgres:// URL",
            redact(url).chars().take(80).collect::<String>()
        ));
    }
    postgres::Config::from_str(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How long [`Postgres::open_exclusive`] waits for another writer's lock before failing.
const WRITER_LOCK_WAIT: Duration = Duration::from_secs(3);

fn connect(url: &str) -> Result<Client> {
    let config = postgres::Config::from_str(url)?;
    let mut config = config;
    config
        .application_name("traffic-globe")
        .connect_timeout(Duration::from_secs(10));
    Ok(config.connect(NoTls)?)
}

impl Postgres {
    /// Connects to the database at `url`, migrating its schema to this build's. With
    /// [`Durability::Process`] commits are asynchronous (`synchronous_commit = off`): a
    /// commit survives this process being killed, since PostgreSQL has it, but the last
    /// fraction of a second of commits can be lost if PostgreSQL itself or its machine
    /// crashes. [`Durability::Disk`] waits for the WAL flush of every commit.
    pub fn open(url: &str, durability: Durability) -> Result<Self> {
        Self::open_with(url, durability, false)
    }

    /// As [`Postgres::open`], as the schema's only writer: a session advisory lock on the
    /// schema is held while the store lives (PostgreSQL drops it with the connection, also
    /// when the process is killed). Another `open_exclusive` of the same schema meanwhile
    /// fails with [`Error::InUse`]: two servers writing one history would number the same
    /// events twice.
    pub fn open_exclusive(url: &str, durability: Durability) -> Result<Self> {
        Self::open_with(url, durability, true)
    }

    fn open_with(url: &str, durability: Durability, exclusive: bool) -> Result<Self> {
        let mut client = connect(url)?;
        if exclusive {
            // Waited for a little: the connection of a writer killed a moment ago may not
            // have been noticed closed yet.
            client.batch_execute(&format!(
                "SET lock_timeout = '{}ms'",
                WRITER_LOCK_WAIT.as_millis()
            ))?;
            let held = match client.execute(
                "SELECT pg_advisory_lock(hashtext(current_schema() || '.traffic_globe_writer'))",
                &[],
            ) {
                Ok(_) => true,
                Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => false,
                Err(e) => return Err(e.into()),
            };
            client.batch_execute("RESET lock_timeout")?;
            if !held {
                let schema: String = client.query_one("SELECT current_schema()", &[])?.get(0);
                return Err(Error::InUse(format!(
                    "another server is already writing the history in this database (schema \
                     {schema}): two would number and store the same events twice; stop it, or \
                     give this one its own database or schema"
                )));
            }
        }
        let synchronous = match durability {
            Durability::Process => "off",
            Durability::Disk => "on",
        };
        client.batch_execute(&format!("SET synchronous_commit = {synchronous}"))?;
        migrate(&mut client)?;
        let epoch = meta_or_insert(&mut client, "epoch", || {
            format!("{:x}", crate::random_u128() as u64)
        })?;
        let secret = meta_or_insert(&mut client, "secret", || {
            format!("{:032x}", crate::random_u128())
        })?;
        let secret = u128::from_str_radix(&secret, 16).map_err(|e| Error::Corrupt {
            seq: 0,
            reason: format!("meta secret: {e}"),
        })?;
        let last: i64 = client
            .query_opt(
                "SELECT last_seq FROM blocks ORDER BY first_seq DESC LIMIT 1",
                &[],
            )?
            .map_or(0, |row| row.get(0));
        // Retention may have deleted the newest blocks: the sequence continues from the
        // newest seq ever stored, remembered then.
        let last = last.max(meta_u64(&mut client, LAST_SEQ)? as i64);
        let places: blocks::Countries = read_places(&mut client)?
            .into_iter()
            .map(|p| (p.key, p.country_code))
            .collect();
        // The events the rollups do not count yet are counted again, in memory.
        let rolled = rolled_up(&mut client)?;
        let mut pending = Rollups::default();
        let start = block_of(&mut client, rolled + 1)?;
        each_block_after(&mut client, start, full_span(), &mut |first, data| {
            blocks::decode(first, data, &mut |stored| {
                if stored.seq > rolled {
                    pending.add_stored(&stored, &places);
                }
                true
            })?;
            Ok(true)
        })?;
        let insert_block = client.prepare(
            "INSERT INTO blocks (first_seq, last_seq, min_timestamp, max_timestamp, data) \
             VALUES ($1, $2, $3, $4, $5)",
        )?;
        Ok(Self {
            client: RefCell::new(client),
            url: url.to_owned(),
            insert_block,
            next_seq: last as u64 + 1,
            places,
            epoch,
            secret: [(secret >> 64) as u64, secret as u64],
            encoder: Encoder::default(),
            pending: Pending::new(pending),
        })
    }

    /// Writes the rollups at most `every` apart (default 1 s; `Duration::ZERO`: with every
    /// commit). Answers are the same whatever it is.
    pub fn set_rollup_every(&mut self, every: Duration) {
        self.pending.every = every;
    }
}

impl crate::conformance::RollupHooks for Postgres {
    fn set_rollup_every(&mut self, every: Duration) {
        Postgres::set_rollup_every(self, every);
    }

    fn hour_rollup_events(&self) -> u64 {
        self.client
            .borrow_mut()
            .query_one(
                "SELECT coalesce(sum(events), 0)::bigint FROM rollup_places_hour",
                &[],
            )
            .map_or(0, |row| row.get::<_, i64>(0) as u64)
    }
}

/// Applies the migrations the database has not seen yet, in one transaction holding an
/// advisory lock (two servers starting at once migrate one after the other).
fn migrate(client: &mut Client) -> Result<()> {
    let mut transaction = client.transaction()?;
    transaction.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.traffic_globe_history'));
         CREATE TABLE IF NOT EXISTS schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )?;
    let version: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?
        .get(0);
    let known = MIGRATIONS.len() as i64;
    if i64::from(version) > known {
        return Err(Error::TooNew {
            found: i64::from(version),
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(sql)?;
        transaction.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

fn meta_or_insert(client: &mut Client, name: &str, new: impl FnOnce() -> String) -> Result<String> {
    client.execute(
        "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&name, &new()],
    )?;
    Ok(client
        .query_one("SELECT value FROM meta WHERE name = $1", &[&name])?
        .get(0))
}

/// Records that the rollups count every event up to `seq`.
fn set_rolled_up(transaction: &mut Transaction<'_>, seq: u64) -> Result<()> {
    set_meta_u64(transaction, "rolled_up", seq)
}

/// Sets a number kept in `meta`.
fn set_meta_u64(transaction: &mut Transaction<'_>, name: &str, value: u64) -> Result<()> {
    transaction.execute(
        "INSERT INTO meta (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[&name, &value.to_string()],
    )?;
    Ok(())
}

/// The seq up to which the rollups count every event (0: none).
fn rolled_up(client: &mut impl postgres::GenericClient) -> Result<u64> {
    meta_u64(client, "rolled_up")
}

/// The `meta` entry where [`Store::delete_before`] keeps the newest seq ever stored (the
/// blocks may no longer hold it).
const LAST_SEQ: &str = "last_seq";

/// A number kept in `meta` (0: none).
fn meta_u64(client: &mut impl postgres::GenericClient, name: &str) -> Result<u64> {
    let value: Option<String> = client
        .query_opt("SELECT value FROM meta WHERE name = $1", &[&name])?
        .map(|row| row.get(0));
    value.map_or(Ok(0), |v| {
        v.parse().map_err(|e| Error::Corrupt {
            seq: 0,
            reason: format!("meta {name} {v:?}: {e}"),
        })
    })
}

fn read_places(client: &mut impl postgres::GenericClient) -> Result<Vec<Place>> {
    Ok(client
        .query(
            "SELECT key, city, region, country_code, country, latitude, longitude FROM places",
            &[],
        )?
        .into_iter()
        .map(|r| Place {
            key: r.get::<_, i64>(0) as u64,
            city: r.get(1),
            region: r.get(2),
            country_code: r.get(3),
            country: r.get(4),
            latitude: r.get(5),
            longitude: r.get(6),
        })
        .collect())
}

/// The first seq of the block holding `seq`, or `seq` itself when no block starts at or
/// before it.
fn block_of(client: &mut impl postgres::GenericClient, seq: u64) -> Result<u64> {
    let first: Option<i64> = client
        .query_opt(
            "SELECT first_seq FROM blocks WHERE first_seq <= $1 ORDER BY first_seq DESC LIMIT 1",
            &[&(seq as i64)],
        )?
        .map(|row| row.get(0));
    Ok(first.map_or(seq, |f| f as u64))
}

/// Every data time.
fn full_span() -> (f64, f64) {
    (f64::MIN, f64::MAX)
}

/// Visits the blocks with `first_seq >= start` meeting `[from, to)` in sequence order, a
/// page of blocks per round trip (one, then twice as many each time up to
/// [`PAGE_BLOCKS`]: a page of events usually needs one or two), until `visit` says stop.
fn each_block_after(
    client: &mut impl postgres::GenericClient,
    start: u64,
    (from, to): (f64, f64),
    visit: &mut dyn FnMut(u64, &[u8]) -> Result<bool>,
) -> Result<()> {
    let mut start = start as i64;
    let mut page = 1i64;
    loop {
        let rows = client.query(
            "SELECT first_seq, data FROM blocks WHERE first_seq >= $1 \
             AND max_timestamp >= $2 AND min_timestamp < $3 ORDER BY first_seq LIMIT $4",
            &[&start, &from, &to, &page],
        )?;
        for row in &rows {
            let first: i64 = row.get(0);
            if !visit(first as u64, row.get(1))? {
                return Ok(());
            }
            start = first + 1;
        }
        if (rows.len() as i64) < page {
            return Ok(());
        }
        page = (page * 2).min(PAGE_BLOCKS);
    }
}

/// Adds the rollup rows to the minute tables and, if `hours`, the hour tables (nothing is
/// cleared), one statement per table with the rows as arrays.
fn write_rollups(rollups: &Rollups, transaction: &mut Transaction<'_>, hours: bool) -> Result<()> {
    let tables = if hours { 2 } else { 1 };
    for (table, rows) in rollups.place_rows().into_iter().take(tables) {
        if rows.is_empty() {
            continue;
        }
        let bucket: Vec<i64> = rows.iter().map(|r| r.bucket).collect();
        let placed: Vec<bool> = rows.iter().map(|r| r.placed).collect();
        let key: Vec<i64> = rows.iter().map(|r| r.place_key as i64).collect();
        let suspicious: Vec<bool> = rows.iter().map(|r| r.suspicious).collect();
        let protocol: Vec<&str> = rows.iter().map(|r| r.protocol).collect();
        let class: Vec<i64> = rows.iter().map(|r| r.status_class).collect();
        let events: Vec<i64> = rows.iter().map(|r| r.events as i64).collect();
        let first: Vec<f64> = rows.iter().map(|r| r.first).collect();
        let latest: Vec<f64> = rows.iter().map(|r| r.latest).collect();
        transaction.execute(
            &format!(
                "INSERT INTO {table} AS t (bucket, placed, place_key, suspicious, protocol, \
                 status_class, events, first, latest) \
                 SELECT * FROM unnest($1::bigint[], $2::boolean[], $3::bigint[], $4::boolean[], \
                 $5::text[], $6::bigint[], $7::bigint[], $8::float8[], $9::float8[]) \
                 ON CONFLICT (bucket, placed, place_key, suspicious, protocol, status_class) \
                 DO UPDATE SET events = t.events + excluded.events, \
                 first = least(t.first, excluded.first), latest = greatest(t.latest, excluded.latest)"
            ),
            &[
                &bucket,
                &placed,
                &key,
                &suspicious,
                &protocol,
                &class,
                &events,
                &first,
                &latest,
            ],
        )?;
    }
    for (table, rows) in rollups.timeline_rows().into_iter().take(tables) {
        if rows.is_empty() {
            continue;
        }
        let bucket: Vec<i64> = rows.iter().map(|r| r.bucket).collect();
        let country: Vec<&str> = rows.iter().map(|r| r.country_code).collect();
        let suspicious: Vec<bool> = rows.iter().map(|r| r.suspicious).collect();
        let protocol: Vec<&str> = rows.iter().map(|r| r.protocol).collect();
        let class: Vec<i64> = rows.iter().map(|r| r.status_class).collect();
        let events: Vec<i64> = rows.iter().map(|r| r.events as i64).collect();
        transaction.execute(
            &format!(
                "INSERT INTO {table} AS t (bucket, country_code, suspicious, protocol, \
                 status_class, events) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::text[], \
                 $5::bigint[], $6::bigint[]) \
                 ON CONFLICT (bucket, country_code, suspicious, protocol, status_class) \
                 DO UPDATE SET events = t.events + excluded.events"
            ),
            &[&bucket, &country, &suspicious, &protocol, &class, &events],
        )?;
    }
    Ok(())
}

/// Stores `items` (seq `first_seq` onwards) as blocks; returns their rollups.
fn write_items(
    transaction: &mut Transaction<'_>,
    insert_block: &Statement,
    encoder: &mut Encoder,
    first_seq: u64,
    items: &[Item<'_>],
) -> Result<Rollups> {
    blocks::encode(encoder, first_seq, items, &mut |block| {
        transaction.execute(
            insert_block,
            &[
                &(block.first_seq as i64),
                &(block.last_seq as i64),
                &block.min_timestamp,
                &block.max_timestamp,
                &block.data,
            ],
        )?;
        Ok(())
    })
}

fn insert_places(transaction: &mut Transaction<'_>, places: &[&Place]) -> Result<()> {
    if places.is_empty() {
        return Ok(());
    }
    let key: Vec<i64> = places.iter().map(|p| p.key as i64).collect();
    let city: Vec<&str> = places.iter().map(|p| p.city.as_str()).collect();
    let region: Vec<&str> = places.iter().map(|p| p.region.as_str()).collect();
    let code: Vec<&str> = places.iter().map(|p| p.country_code.as_str()).collect();
    let country: Vec<&str> = places.iter().map(|p| p.country.as_str()).collect();
    let latitude: Vec<f64> = places.iter().map(|p| p.latitude).collect();
    let longitude: Vec<f64> = places.iter().map(|p| p.longitude).collect();
    transaction.execute(
        "INSERT INTO places (key, city, region, country_code, country, latitude, longitude) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::float8[], $7::float8[]) ON CONFLICT (key) DO NOTHING",
        &[&key, &city, &region, &code, &country, &latitude, &longitude],
    )?;
    Ok(())
}

fn insert_keys(transaction: &mut Transaction<'_>, keys: &[KeyRecord]) -> Result<()> {
    // A key given twice: the last answer wins, as a replace would.
    let mut last: Vec<&KeyRecord> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        if !keys[i + 1..].iter().any(|later| later.key == key.key) {
            last.push(key);
        }
    }
    for key in last {
        transaction.execute(
            "INSERT INTO idempotency_keys AS k (key, fingerprint, status, body, stored_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET \
             fingerprint = excluded.fingerprint, status = excluded.status, \
             body = excluded.body, stored_ms = excluded.stored_ms, position = excluded.position",
            &[
                &key.key,
                &key.fingerprint.to_be_bytes().as_slice(),
                &i32::from(key.status),
                &key.body,
                &(key.stored_ms as i64),
            ],
        )?;
    }
    Ok(())
}

impl Store for Postgres {
    fn append(&mut self, events: &[NewEvent<'_>], keys: &[KeyRecord]) -> Result<()> {
        blocks::check_sequence(self.next_seq, events)?;
        let (items, added_places) = blocks::items(events, &self.places);
        let client = self.client.get_mut();
        let mut transaction = client.transaction()?;
        insert_places(&mut transaction, &added_places)?;
        let delta = write_items(
            &mut transaction,
            &self.insert_block,
            &mut self.encoder,
            self.next_seq,
            &items,
        )?;
        let written = self.pending.due(&delta);
        if written {
            write_rollups(&self.pending.rollups, &mut transaction, true)?;
            write_rollups(&delta, &mut transaction, true)?;
            set_rolled_up(&mut transaction, self.next_seq + events.len() as u64 - 1)?;
        }
        insert_keys(&mut transaction, keys)?;
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
        read_places(&mut *self.client.borrow_mut())
    }

    fn scan(&self, after: u64, visit: &mut dyn FnMut(StoredEvent)) -> Result<()> {
        let client = &mut *self.client.borrow_mut();
        let start = block_of(client, after + 1)?;
        each_block_after(client, start, full_span(), &mut |first, data| {
            blocks::decode(first, data, &mut |stored| {
                if stored.seq > after {
                    visit(stored);
                }
                true
            })?;
            Ok(true)
        })
    }

    fn keys_since(&self, since_ms: u64) -> Result<Vec<KeyRecord>> {
        let rows = self.client.borrow_mut().query(
            "SELECT key, fingerprint, status, body, stored_ms FROM idempotency_keys \
             WHERE stored_ms >= $1 ORDER BY stored_ms, position",
            &[&(since_ms as i64)],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let fingerprint: Vec<u8> = r.get(1);
                KeyRecord {
                    key: r.get(0),
                    fingerprint: <[u8; 16]>::try_from(fingerprint.as_slice())
                        .map_or(0, u128::from_be_bytes),
                    status: u16::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                    body: r.get(3),
                    stored_ms: r.get::<_, i64>(4) as u64,
                }
            })
            .collect())
    }

    fn forget_keys_before(&mut self, before_ms: u64) -> Result<usize> {
        Ok(self.client.get_mut().execute(
            "DELETE FROM idempotency_keys WHERE stored_ms < $1",
            &[&(before_ms as i64)],
        )? as usize)
    }

    /// As for SQLite, in one transaction: pending rollups written, wholly older blocks
    /// dropped, mixed blocks rewritten as runs of consecutive seqs, minute rollups before the
    /// cutoff's minute dropped and its own minute counted again, the newest seq kept in
    /// `meta`. The table's space is reused after autovacuum.
    fn delete_before(&mut self, cutoff: f64) -> Result<u64> {
        if cutoff.is_nan() || cutoff == f64::NEG_INFINITY {
            return Ok(0);
        }
        let last = self.next_seq - 1;
        let client = self.client.get_mut();
        let mut transaction = client.transaction()?;
        write_rollups(&self.pending.rollups, &mut transaction, true)?;
        set_rolled_up(&mut transaction, last)?;
        set_meta_u64(&mut transaction, LAST_SEQ, last)?;
        let whole: i64 = transaction
            .query_one(
                "SELECT coalesce(sum(last_seq - first_seq + 1), 0)::bigint FROM blocks \
                 WHERE max_timestamp < $1",
                &[&cutoff],
            )?
            .get(0);
        transaction.execute("DELETE FROM blocks WHERE max_timestamp < $1", &[&cutoff])?;
        let mut deleted = whole as u64;
        // A few mixed blocks at a time (each up to a few hundred kB), in seq order.
        let mut after = 0i64;
        loop {
            let mixed = transaction.query(
                "SELECT first_seq, data FROM blocks WHERE min_timestamp < $1 \
                 AND first_seq > $2 ORDER BY first_seq LIMIT $3",
                &[&cutoff, &after, &blocks::REWRITE_PAGE],
            )?;
            let Some(last_first) = mixed.last().map(|row| row.get::<_, i64>(0)) else {
                break;
            };
            for row in &mixed {
                let first: i64 = row.get(0);
                let (runs, gone) = blocks::split_block(first as u64, row.get(1), cutoff)?;
                deleted += gone;
                transaction.execute("DELETE FROM blocks WHERE first_seq = $1", &[&first])?;
                for run in &runs {
                    let items = blocks::stored_items(run);
                    write_items(
                        &mut transaction,
                        &self.insert_block,
                        &mut self.encoder,
                        run[0].seq,
                        &items,
                    )?;
                }
            }
            after = last_first;
        }
        match blocks::cutoff_minute(cutoff) {
            None => transaction.batch_execute(
                "DELETE FROM rollup_places_minute; DELETE FROM rollup_timeline_minute;",
            )?,
            Some(minute) => {
                for table in ["rollup_places_minute", "rollup_timeline_minute"] {
                    transaction.execute(
                        &format!("DELETE FROM {table} WHERE bucket <= $1"),
                        &[&minute],
                    )?;
                }
                // The cutoff's minute again, from what is left of it.
                let again = blocks::recount_minute(minute, &self.places, |span, visit| {
                    each_block_after(&mut transaction, 0, span, &mut |first, data| {
                        visit(first, data)?;
                        Ok(true)
                    })
                })?;
                write_rollups(&again, &mut transaction, false)?;
            }
        }
        transaction.commit()?;
        self.pending.committed(true, Rollups::default());
        Ok(deleted)
    }

    fn readers(&self) -> Box<dyn OpenReader> {
        Box::new(PostgresReaders {
            url: self.url.clone(),
            idle: Arc::new(Mutex::new(Vec::new())),
        })
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn secret(&self) -> [u64; 2] {
        self.secret
    }
}

/// Opens read connections on one PostgreSQL store, keeping a few idle ones.
pub struct PostgresReaders {
    url: String,
    idle: Arc<Mutex<Vec<Client>>>,
}

impl std::fmt::Debug for PostgresReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReaders")
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresReaders {
    fn drop(&mut self) {
        // Closing a connection stops its runtime, which must not happen on an async
        // thread (where the server drops its state).
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        if !idle.is_empty() {
            std::thread::spawn(move || drop(idle));
        }
    }
}

impl OpenReader for PostgresReaders {
    fn open_reader(&self) -> Result<Box<dyn Reader>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => connect(&self.url)?,
        };
        let places = read_places(&mut client)?
            .into_iter()
            .map(|p| (p.key, p))
            .collect();
        Ok(Box::new(PostgresReader {
            client: RefCell::new(Some(client)),
            places,
            idle: Arc::clone(&self.idle),
        }))
    }
}

struct PostgresReader {
    /// Always `Some` until dropped (then back to the idle ones).
    client: RefCell<Option<Client>>,
    places: HashMap<u64, Place>,
    idle: Arc<Mutex<Vec<Client>>>,
}

impl Drop for PostgresReader {
    fn drop(&mut self) {
        // A reader dropped by a panic may be inside its snapshot's transaction: pooled, the
        // next reader's BEGIN would be ignored and it would read that old snapshot. Closed
        // instead (this is a blocking thread: readers are used off the async workers).
        if std::thread::panicking() {
            return;
        }
        if let Some(client) = self.client.get_mut().take()
            && !client.is_closed()
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(client);
            }
        }
    }
}

impl PostgresReader {
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let mut client = self.client.borrow_mut();
        let client = client.as_mut().ok_or_else(|| Error::Corrupt {
            seq: 0,
            reason: "reader used after it was closed".to_owned(),
        })?;
        f(client)
    }
}

/// SQL conditions (`AND column = $n`, numbered after `first` parameters) and their values.
fn sql_conditions(
    conditions: &[(&'static str, Param)],
    first: usize,
) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut sql = String::new();
    let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    for (i, (column, value)) in conditions.iter().enumerate() {
        sql.push_str(&format!(" AND {column} = ${}", first + i + 1));
        values.push(match value {
            Param::Bool(b) => Box::new(*b),
            Param::Int(n) => Box::new(*n),
            Param::Text(t) => Box::new(t.clone()),
        });
    }
    (sql, values)
}

impl Source for PostgresReader {
    fn places(&self) -> &HashMap<u64, Place> {
        &self.places
    }

    fn rolled_up(&self) -> Result<u64> {
        self.with(rolled_up)
    }

    fn block_of(&self, seq: u64) -> Result<u64> {
        self.with(|client| block_of(client, seq))
    }

    fn blocks_after(
        &self,
        start: u64,
        span: (f64, f64),
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.with(|client| each_block_after(client, start, span, visit))
    }

    fn blocks_in(
        &self,
        (from, to): (f64, f64),
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.with(|client| {
            let firsts: Vec<i64> = client
                .query(
                    "SELECT first_seq FROM blocks WHERE max_timestamp >= $1 AND min_timestamp < $2",
                    &[&from, &to],
                )?
                .into_iter()
                .map(|row| row.get(0))
                .collect();
            for page in firsts.chunks(PAGE_BLOCKS as usize) {
                let rows = client.query(
                    "SELECT first_seq, data FROM blocks WHERE first_seq = ANY($1)",
                    &[&page],
                )?;
                for row in &rows {
                    visit(row.get::<_, i64>(0) as u64, row.get(1))?;
                }
            }
            Ok(())
        })
    }

    fn place_rollups(
        &self,
        width: Width,
        (lo, hi): (i64, i64),
        conditions: &[(&'static str, Param)],
        visit: &mut dyn FnMut(PlaceSum),
    ) -> Result<()> {
        let (conditions, values) = sql_conditions(conditions, 2);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&lo, &hi];
        params.extend(values.iter().map(|v| &**v));
        let rows = self.with(|client| {
            Ok(client.query(
                &format!(
                    "SELECT placed, place_key, suspicious, sum(events)::bigint, min(first), \
                     max(latest) FROM rollup_places_{} WHERE bucket >= $1 AND bucket < $2\
                     {conditions} GROUP BY placed, place_key, suspicious",
                    width.suffix()
                ),
                &params,
            )?)
        })?;
        for row in rows {
            visit(PlaceSum {
                placed: row.get(0),
                place_key: row.get::<_, i64>(1) as u64,
                suspicious: row.get(2),
                events: row.get::<_, i64>(3) as u64,
                first: row.get(4),
                latest: row.get(5),
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
        let (conditions, values) = sql_conditions(conditions, 2);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&lo, &hi];
        params.extend(values.iter().map(|v| &**v));
        let rows = self.with(|client| {
            Ok(client.query(
                &format!(
                    "SELECT bucket, suspicious, sum(events)::bigint FROM rollup_timeline_{} \
                     WHERE bucket >= $1 AND bucket < $2{conditions} GROUP BY bucket, suspicious",
                    width.suffix()
                ),
                &params,
            )?)
        })?;
        for row in rows {
            visit(row.get(0), row.get(1), row.get::<_, i64>(2) as u64);
        }
        Ok(())
    }
}

impl Reader for PostgresReader {
    fn summary(&self, range: TimeRange, filter: &Filter, top: usize) -> Result<RangeSummary> {
        // One snapshot for every read (the writer may commit meanwhile).
        self.with(|client| {
            Ok(client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?)
        })?;
        let summary = query::summary(self, range, filter, top);
        let end = self.with(|client| Ok(client.batch_execute("COMMIT")?));
        let summary = summary?;
        end?;
        Ok(summary)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use crate::testing::TestSchema;

    #[test]
    fn postgres_passes_the_conformance_suite_in_both_durabilities() {
        // Rollups written with every commit, never (all counted from the blocks), and as
        // by default: the same answers as SQLite gives.
        for (durability, every) in [
            (Durability::Process, Duration::ZERO),
            (Durability::Process, Duration::MAX),
            (Durability::Process, blocks::ROLLUP_EVERY),
            (Durability::Disk, Duration::ZERO),
        ] {
            for (name, test) in conformance::ALL {
                let Some(schema) = TestSchema::create(name) else {
                    return;
                };
                let url = schema.url().to_owned();
                let mut reopen = move || -> Box<dyn Store> {
                    let mut store = Postgres::open(&url, durability).expect("opens");
                    store.set_rollup_every(every);
                    Box::new(store)
                };
                test(&mut reopen);
            }
        }
    }

    #[test]
    fn a_reader_dropped_by_a_panic_is_not_pooled_with_its_transaction_open() {
        let Some(schema) = TestSchema::create("reader_panic") else {
            return;
        };
        let store = Postgres::open(schema.url(), Durability::Process).unwrap();
        let readers = PostgresReaders {
            url: schema.url().to_owned(),
            idle: Arc::new(Mutex::new(Vec::new())),
        };
        drop(readers.open_reader().unwrap());
        assert_eq!(
            readers.idle.lock().unwrap().len(),
            1,
            "a reader done is pooled"
        );
        let idle = Arc::clone(&readers.idle);
        let url = schema.url().to_owned();
        let unwound = std::thread::spawn(move || {
            let reader = PostgresReader {
                client: RefCell::new(Some(connect(&url).unwrap())),
                places: HashMap::new(),
                idle,
            };
            reader
                .with(|c| Ok(c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?))
                .unwrap();
            panic!("a bug inside a snapshot");
        })
        .join();
        assert!(unwound.is_err());
        assert_eq!(
            readers.idle.lock().unwrap().len(),
            1,
            "the panicking reader's connection was not pooled"
        );
        drop(readers);
        drop(store);
    }

    #[test]
    fn a_second_exclusive_writer_of_one_schema_is_refused_until_the_first_is_gone() {
        let Some(schema) = TestSchema::create("exclusive") else {
            return;
        };
        let first = Postgres::open_exclusive(schema.url(), Durability::Process).unwrap();
        let Err(error) = Postgres::open_exclusive(schema.url(), Durability::Process) else {
            panic!("a second writer was let in");
        };
        assert!(matches!(error, Error::InUse(_)), "{error}");
        assert!(error.to_string().contains("already writing"), "{error}");
        drop(first);
        drop(Postgres::open_exclusive(schema.url(), Durability::Process).expect("free again"));
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused_not_rewritten() {
        let Some(schema) = TestSchema::create("newer") else {
            return;
        };
        drop(Postgres::open(schema.url(), Durability::Process).unwrap());
        schema.query_text("INSERT INTO schema_version (version) VALUES (99)");
        let error = Postgres::open(schema.url(), Durability::Process).unwrap_err();
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
        assert_eq!(
            schema
                .query_text("SELECT count(*) FROM schema_version")
                .as_deref(),
            Some("2"),
            "nothing migrated"
        );
    }

    #[test]
    fn two_databases_have_different_epochs_and_secrets() {
        let (Some(a), Some(b)) = (TestSchema::create("epoch_a"), TestSchema::create("epoch_b"))
        else {
            return;
        };
        let a = Postgres::open(a.url(), Durability::Process).unwrap();
        let b = Postgres::open(b.url(), Durability::Process).unwrap();
        assert_ne!(a.epoch(), b.epoch());
        assert_ne!(a.secret(), b.secret());
    }

    #[test]
    fn commits_are_asynchronous_unless_durable() {
        let Some(schema) = TestSchema::create("sync") else {
            return;
        };
        for (durability, expected) in [(Durability::Process, "off"), (Durability::Disk, "on")] {
            let store = Postgres::open(schema.url(), durability).unwrap();
            let setting: String = store
                .client
                .borrow_mut()
                .query_one("SHOW synchronous_commit", &[])
                .unwrap()
                .get(0);
            assert_eq!(setting, expected);
        }
    }

    #[test]
    fn rollups_pending_at_a_restart_are_counted_again_and_written_once() {
        let Some(schema) = TestSchema::create("pending") else {
            return;
        };
        conformance::rollups_pending_at_a_restart_are_counted_again_and_written_once(&mut || {
            Postgres::open(schema.url(), Durability::Process).unwrap()
        });
    }

    #[test]
    fn a_password_never_shows_in_what_is_logged() {
        for (url, expected) in [
            (
                "postgres://globe:s3cr3t@db.example:5432/history",
                "postgres://globe:***@db.example:5432/history",
            ),
            (
                "postgresql://globe:p@ss@h1,h2/db?sslmode=disable",
                "postgresql://globe:***@h1,h2/db?sslmode=disable",
            ),
            (
                "postgres://globe@localhost/db?password=s3cr3t&application_name=x",
                "postgres://globe@localhost/db?password=***&application_name=x",
            ),
            ("postgres://localhost/db", "postgres://localhost/db"),
            (
                "postgres://globe:pa/ss?x@db.example/history",
                "postgres://globe:***@db.example/history",
            ),
            (
                "postgres://globe:s3cr3t@h/db?options=a@b",
                "postgres://globe:***@b",
            ),
            (
                "host=localhost password=s3cr3t user=globe",
                "host=localhost password=*** user=globe",
            ),
        ] {
            assert_eq!(redact(url), expected);
            assert!(!redact(url).contains("s3cr3t") && !redact(url).contains("pa/ss"));
        }
        let error = check_url("mysql://root:s3cr3t@localhost/x").unwrap_err();
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(check_url("postgres://globe:s3cr3t@localhost:5432/db").is_ok());
        assert!(check_url("postgres://globe@localhost:notaport/db").is_err());
    }
}
