-- traffic-globe history, schema version 2 (SQLite).
-- Applied once, in a transaction, when PRAGMA user_version < 2. The events of version 1's
-- `events` table are then re-encoded into `blocks` (with their rollups) by the migration
-- code in src/sqlite.rs, and `events` is dropped, in the same transaction.

-- Accepted events in blocks of consecutive sequence numbers: one row per block, the events
-- encoded one after the other (src/codec.rs), so storing an event is no B-tree insert of
-- its own. A block holds first_seq..=last_seq, with data times in
-- [min_timestamp, max_timestamp].
CREATE TABLE blocks (
    first_seq     INTEGER PRIMARY KEY,
    last_seq      INTEGER NOT NULL,
    min_timestamp REAL    NOT NULL,
    max_timestamp REAL    NOT NULL,
    data          BLOB    NOT NULL
);
CREATE INDEX blocks_by_time ON blocks (max_timestamp, min_timestamp);

-- Rollups by data time, maintained by the writer in the transaction of the events: events
-- per minute (bucket = floor(timestamp / 60)) and per hour (floor(timestamp / 3600)), by
-- place and by the filters' dimensions. `placed` 0 is the unplaced events (place_key 0);
-- `protocol` '' is none; `status_class` is status / 100, -1 when none. `first` and
-- `latest` are the oldest and newest data time counted in the row.
CREATE TABLE rollup_places_minute (
    bucket       INTEGER NOT NULL,
    placed       INTEGER NOT NULL,
    place_key    INTEGER NOT NULL,
    suspicious   INTEGER NOT NULL,
    protocol     TEXT    NOT NULL,
    status_class INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    first        REAL    NOT NULL,
    latest       REAL    NOT NULL,
    PRIMARY KEY (bucket, placed, place_key, suspicious, protocol, status_class)
) WITHOUT ROWID;
CREATE TABLE rollup_places_hour (
    bucket       INTEGER NOT NULL,
    placed       INTEGER NOT NULL,
    place_key    INTEGER NOT NULL,
    suspicious   INTEGER NOT NULL,
    protocol     TEXT    NOT NULL,
    status_class INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    first        REAL    NOT NULL,
    latest       REAL    NOT NULL,
    PRIMARY KEY (bucket, placed, place_key, suspicious, protocol, status_class)
) WITHOUT ROWID;

-- The same counts by country instead of place (fewer rows): what timelines are drawn from.
-- `country_code` '' is the unplaced events.
CREATE TABLE rollup_timeline_minute (
    bucket       INTEGER NOT NULL,
    country_code TEXT    NOT NULL,
    suspicious   INTEGER NOT NULL,
    protocol     TEXT    NOT NULL,
    status_class INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    PRIMARY KEY (bucket, country_code, suspicious, protocol, status_class)
) WITHOUT ROWID;
CREATE TABLE rollup_timeline_hour (
    bucket       INTEGER NOT NULL,
    country_code TEXT    NOT NULL,
    suspicious   INTEGER NOT NULL,
    protocol     TEXT    NOT NULL,
    status_class INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    PRIMARY KEY (bucket, country_code, suspicious, protocol, status_class)
) WITHOUT ROWID;
