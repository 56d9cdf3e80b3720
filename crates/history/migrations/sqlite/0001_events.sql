-- traffic-globe history, schema version 1 (SQLite).
-- Applied once, in a transaction, when PRAGMA user_version < 1.

-- Every accepted event, by its sequence number (the stream's event id within the store's
-- epoch). Integers that are u64 in Rust are stored bit for bit as i64.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    received_ms  INTEGER NOT NULL,   -- server wall clock at receipt, unix milliseconds
    timestamp    REAL    NOT NULL,   -- the data's own time, unix seconds
    ip           TEXT    NOT NULL,
    latitude     REAL,               -- the event's own coordinates, if it had them
    longitude    REAL,
    suspicious   INTEGER NOT NULL,
    located      INTEGER NOT NULL,   -- 0 unlocated, 1 by its coordinates, 2 by its IP address
    place_key    INTEGER,            -- places.key when located
    ip_latitude  REAL,               -- where the IP database put it (located = 2)
    ip_longitude REAL,
    unlocated    TEXT,               -- why not located (located = 0)
    bytes        INTEGER,
    protocol     TEXT,
    status       INTEGER,
    method       TEXT,
    path         TEXT,
    dest_ip      TEXT
);
CREATE INDEX events_by_timestamp ON events (timestamp);

-- The places events were resolved to, by their stable key.
CREATE TABLE places (
    key          INTEGER PRIMARY KEY,
    city         TEXT NOT NULL,
    region       TEXT NOT NULL,
    country_code TEXT NOT NULL,
    country      TEXT NOT NULL,
    latitude     REAL NOT NULL,
    longitude    REAL NOT NULL
);

-- Idempotency keys of accepted POSTs, written in the same transaction as their events.
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint BLOB    NOT NULL,    -- 16 bytes, big-endian
    status      INTEGER NOT NULL,
    body        BLOB    NOT NULL,
    stored_ms   INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (stored_ms);

-- Facts about the store itself: `epoch` (names the sequence in stream ids), `secret`
-- (keys the idempotency fingerprints).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
