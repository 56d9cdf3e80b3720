//! `POST /api/import`: a CSV file into the history, through the same path as ingested
//! events (placed, counted, streamed live, stored), deduplicated against what is stored.
//!
//! The body is the file itself, read as it arrives by our CSV reader (the formats the
//! sender takes, so an export of `/api/history/export` as it is) on a blocking thread, in
//! chunks of [`CHUNK_ROWS`] rows: memory stays bounded whatever the file's size (see
//! `--max-import-bytes` for its limit). Each row is accepted, a duplicate, or rejected (its
//! line and the reason, the first [`MAX_LISTED_ERRORS`] listed, all counted).
//!
//! # The dedupe rule
//! A row's fingerprint is every field of its event (not its sequence number, arrival time
//! or place, which the server gives). A fingerprint stored `S` times before the import
//! began and found `F` times in the file is imported `max(0, F - S)` times: the k-th
//! occurrence in the file is a duplicate when `k <= S`. So importing a file twice adds
//! nothing the second time, and a file with two identical rows imports both into an empty
//! store. "Stored before the import began" is every event with a sequence number up to the
//! last one published when it began; events ingested live while it runs are not compared.
//!
//! For each chunk, the stored events of the part of its data-time range not yet read are
//! read through the history's [`Reader`] and their fingerprints counted; a row matching
//! an unmatched stored copy uses it up. Memory is the fingerprints of stored events in the
//! time the file covers that the file has not matched yet (none when the store holds
//! nothing there), 16 bytes and a count each.
//!
//! One import runs at a time (another gets 409), and its answer comes once its events are
//! committed to the store, so the next import sees them.

mod dedupe;

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use history::range::OpenReader;
use serde::Serialize;
use tokio::sync::mpsc;
use traffic::Event;
use traffic::csv::{CsvReader, ReadError};

use crate::AppState;
use crate::error::{ApiError, json_response};
use crate::hub::Pending;
use dedupe::Stored;

/// Rows read before they are deduplicated, placed and handed to the hub together (a few in
/// tests, so that small files span chunks).
const CHUNK_ROWS: usize = if cfg!(test) { 3 } else { 10_000 };
/// Rejected rows listed in the report by line and reason (all are counted).
pub const MAX_LISTED_ERRORS: usize = 100;
/// Body chunks queued between the connection and the CSV reader.
const BODY_CHUNKS_QUEUED: usize = 8;

/// The answer: what became of each row of the file.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Data rows read (header and blank lines not counted): accepted + duplicates +
    /// rejected.
    pub rows: u64,
    /// Rows imported as new events.
    pub accepted: u64,
    /// Rows whose event was already stored (see the module's dedupe rule).
    pub duplicates: u64,
    /// Rows that could not be used.
    pub rejected: u64,
    /// The first [`MAX_LISTED_ERRORS`] rejected rows, in file order.
    pub errors: Vec<RowError>,
    /// Which header column fed which field, as the sender logs it.
    pub columns: String,
}

/// A rejected row.
#[derive(Debug, Serialize)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Why the worker stopped without a report.
enum Failure {
    /// No usable header.
    Header(String),
    /// The body failed before the header was read.
    Body,
    /// The history could not be read: the report covers the rows settled before.
    Store(history::Error, Box<Report>),
    /// The handler went away (the client disconnected).
    Gone,
}

/// `POST /api/import`: the CSV file is the body. 200 with a [`Report`]; 400 when the file
/// has no usable header; 404 without a history (`--store memory`: nothing to deduplicate
/// against, so nothing is imported); 409 while another import runs; 413 over
/// `--max-import-bytes` (rows before the cut are imported, and reported); 500 when the
/// history cannot be read to compare with (rows before it are imported, and reported).
pub async fn import(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // On a task of its own: a client that goes away mid-import (a time-out, a proxy) does
    // not cancel it half-way. It ends with its body, and holds the one-import lock until
    // every row it pushed is committed, so the next import compares with them.
    let task = tokio::spawn(async move { run(state, &headers, body).await });
    match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            ApiError::Internal(anyhow::Error::new(e).context("the import stopped")).into_response()
        }
    }
}

async fn run(state: AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let readers = state.readers.clone().ok_or(ApiError::NoHistory)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ApiError::BadCsv(
            "send the CSV file itself as the body (Content-Type: text/csv), not a form".into(),
        ));
    }
    let max = state.config.max_import_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(ApiError::TooLarge(too_large(max)));
    }
    let _running = Arc::clone(&state.imports).try_lock_owned().map_err(|_| {
        ApiError::Conflict(
            "an import is already running; send this one once it has answered".into(),
        )
    })?;
    let started = Instant::now();
    // Everything published is stored: the events the file is compared with.
    let (baseline, _) = state.hub.published();
    let (chunks, chunks_in) = mpsc::channel(BODY_CHUNKS_QUEUED);
    let (batches, mut batches_in) = mpsc::channel::<Vec<Pending>>(2);
    let worker = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let body = BodyReader {
                chunks: chunks_in,
                current: Bytes::new(),
            };
            work(&state, &*readers, baseline, body, &batches)
        })
    };
    let push = async {
        let mut last = 0;
        while let Some(batch) = batches_in.recv().await {
            last = crate::api::push_placed(&state, batch).await;
        }
        // The answer waits for the commit: the next import compares with these events.
        state.hub.wait_committed(last).await;
    };
    let (stop, (), worked) = tokio::join!(feed(body, max, chunks), push, worker);
    let worked = worked.map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("while importing a CSV file"))
    })?;
    let report = match worked {
        Ok(report) => report,
        Err(Failure::Header(reason)) if stop.is_none() => {
            return Err(ApiError::BadCsv(format!("header: {reason}")));
        }
        Err(Failure::Store(e, report)) => {
            tracing::error!(
                error = %e,
                rows = report.rows,
                accepted = report.accepted,
                "import stopped: the history could not be read"
            );
            return Ok(json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                to_json(&ImportAnswer::Cut {
                    error: "store_read_failed",
                    // The store's own error is in the server's log, not in the answer.
                    message: "reading the history to compare the file with failed (the \
                              server's log says why); the rows the report counts as accepted \
                              were imported: import the file again once the history is \
                              readable (it adds only what is missing)"
                        .to_owned(),
                    report: &report,
                }),
            ));
        }
        Err(Failure::Header(_) | Failure::Body | Failure::Gone) => Report::default(),
    };
    tracing::info!(
        rows = report.rows,
        accepted = report.accepted,
        duplicates = report.duplicates,
        rejected = report.rejected,
        elapsed_ms = started.elapsed().as_millis() as u64,
        cut = stop.is_some(),
        "import done"
    );
    Ok(match stop {
        None => json_response(StatusCode::OK, to_json(&ImportAnswer::Done(&report))),
        Some(Stop::TooLarge) => json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            to_json(&ImportAnswer::Cut {
                error: "too_large",
                message: format!(
                    "{}; the rows before the cut were imported: split the file (importing \
                     a part again adds only what is missing) or raise --max-import-bytes",
                    too_large(max)
                ),
                report: &report,
            }),
        ),
        Some(Stop::Body(reason)) => json_response(
            StatusCode::BAD_REQUEST,
            to_json(&ImportAnswer::Cut {
                error: "body_read_failed",
                message: format!(
                    "reading the file failed ({reason}); the rows before it were imported"
                ),
                report: &report,
            }),
        ),
    })
}

fn too_large(max: u64) -> String {
    format!("the file is larger than {max} bytes (--max-import-bytes)")
}

/// What the answer's body is.
#[derive(Serialize)]
#[serde(untagged)]
enum ImportAnswer<'a> {
    Done(&'a Report),
    /// The file was cut short: an error, with what was imported before.
    Cut {
        error: &'static str,
        message: String,
        report: &'a Report,
    },
}

fn to_json(answer: &ImportAnswer<'_>) -> Bytes {
    // Strings and numbers: cannot fail.
    Bytes::from(serde_json::to_vec(answer).unwrap_or_default())
}

/// Why the body ended early.
enum Stop {
    TooLarge,
    Body(String),
}

/// Passes the body's chunks to the reader, up to `max` bytes.
async fn feed(body: Body, max: u64, chunks: mpsc::Sender<io::Result<Bytes>>) -> Option<Stop> {
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let reason = e.to_string();
                let _ = chunks.send(Err(io::Error::other(reason.clone()))).await;
                return Some(Stop::Body(reason));
            }
        };
        read += chunk.len() as u64;
        if read > max {
            let _ = chunks.send(Err(io::Error::other(too_large(max)))).await;
            return Some(Stop::TooLarge);
        }
        if chunks.send(Ok(chunk)).await.is_err() {
            // The reader stopped (no header, or the history failed): its error answers.
            return None;
        }
    }
    None
}

/// The body as a blocking [`Read`], for the CSV reader on its own thread.
struct BodyReader {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.current = chunk?,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Reads the file, sorts its rows, and hands the new ones, placed, to `batches`.
fn work(
    state: &AppState,
    readers: &dyn OpenReader,
    baseline: u64,
    body: BodyReader,
    batches: &mpsc::Sender<Vec<Pending>>,
) -> Result<Report, Failure> {
    let csv = CsvReader::new(body).map_err(|e| match e {
        ReadError::Header(reason) => Failure::Header(reason),
        _ => Failure::Body,
    })?;
    let mut report = Report {
        columns: csv.columns().to_string(),
        ..Report::default()
    };
    let reader = match readers.open_reader() {
        Ok(reader) => reader,
        Err(e) => return Err(Failure::Store(e, Box::new(report))),
    };
    let mut stored = Stored::new(reader, baseline);
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
    let mut flush = |chunk: &mut Vec<Event>, report: &mut Report| -> Result<(), Failure> {
        if let Err(e) = stored.read_range_of(chunk) {
            // This chunk's rows are neither imported nor compared: the report counts the
            // rows settled before it, and every rejected row read so far.
            report.rows -= chunk.len() as u64;
            report.duplicates = report.rows - report.accepted - report.rejected;
            return Err(Failure::Store(e, Box::new(std::mem::take(report))));
        }
        let fresh: Vec<Event> = chunk
            .drain(..)
            .filter(|event| !stored.take(event))
            .collect();
        report.accepted += fresh.len() as u64;
        if fresh.is_empty() {
            return Ok(());
        }
        let batch = Pending::imported(crate::api::locate(state, fresh));
        batches.blocking_send(batch).map_err(|_| Failure::Gone)
    };
    for item in csv {
        match item {
            Ok(row) => {
                report.rows += 1;
                chunk.push(row.event);
                if chunk.len() == CHUNK_ROWS {
                    flush(&mut chunk, &mut report)?;
                }
            }
            Err(ReadError::Row { line, reason }) => {
                report.rows += 1;
                report.rejected += 1;
                if report.errors.len() < MAX_LISTED_ERRORS {
                    report.errors.push(RowError { line, reason });
                }
            }
            // The body ended early (too large, or the connection failed): what was read
            // is imported, and the answer says why it stopped.
            Err(_) => break,
        }
    }
    flush(&mut chunk, &mut report)?;
    report.duplicates = report.rows - report.accepted - report.rejected;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use axum::http::Request;
    use http_body_util::BodyExt;
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use super::*;
    use crate::persist::StoreKind;
    use crate::{Config, Geocoder, app};

    /// Which store a test server keeps its history in.
    #[derive(Debug, Clone, Copy)]
    enum Kind {
        Sqlite,
        /// A schema of its own on the test database (`history::testing`).
        Postgres,
    }

    /// Each named test (an `async fn(Kind)` below) on SQLite and on PostgreSQL.
    macro_rules! on_both_stores {
        ($($name:ident),* $(,)?) => {
            $(
                mod $name {
                    #[tokio::test]
                    async fn sqlite() {
                        super::$name(super::Kind::Sqlite).await;
                    }

                    #[tokio::test]
                    async fn postgres() {
                        let probe = stringify!($name);
                        if history::testing::TestSchema::create(probe).is_none() {
                            return; // skipped, as the history tests are
                        }
                        super::$name(super::Kind::Postgres).await;
                    }
                }
            )*
        };
    }

    /// A server state with its history (in a directory or a schema of its own), and its
    /// writer running.
    struct Server {
        state: AppState,
        stop: CancellationToken,
        background: tokio::task::JoinHandle<()>,
        dir: PathBuf,
        schema: Option<history::testing::TestSchema>,
    }

    impl Server {
        async fn start(name: &str) -> Self {
            Self::start_on(name, Kind::Sqlite).await
        }

        async fn start_on(name: &str, kind: Kind) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "server-import-{name}-{kind:?}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let mut config = Config::default_for_tests();
            config.data_dir = dir.clone();
            let schema = match kind {
                Kind::Sqlite => {
                    config.store = StoreKind::Sqlite;
                    None
                }
                Kind::Postgres => {
                    let schema = history::testing::TestSchema::create(name)
                        .expect("a test database (the wrapper checked)");
                    config.store = StoreKind::Postgres;
                    config.database = Some(schema.url().parse().unwrap());
                    Some(schema)
                }
            };
            let state = AppState::open(config, Geocoder::shared(), CancellationToken::new())
                .await
                .unwrap();
            let stop = CancellationToken::new();
            let background = state.spawn_background(stop.clone());
            Self {
                state,
                stop,
                background,
                dir,
                schema,
            }
        }

        async fn stop(self) {
            self.stop.cancel();
            self.background.await.unwrap();
            // The store's connections go before its schema.
            drop(self.state);
            drop(self.schema);
            let _ = std::fs::remove_dir_all(&self.dir);
        }

        async fn import(&self, csv: impl Into<Body>) -> (StatusCode, serde_json::Value) {
            send(&self.state, Request::post("/api/import"), csv).await
        }

        /// Everything stored, as JSON lines without what the server gives (seq, arrival).
        async fn stored(&self) -> Vec<serde_json::Value> {
            let text = get(&self.state, "/api/history/export?format=jsonl").await;
            text.lines()
                .map(|line| {
                    let mut hit: serde_json::Value = serde_json::from_str(line).unwrap();
                    let fields = hit.as_object_mut().unwrap();
                    fields.remove("seq");
                    fields.remove("received");
                    hit
                })
                .collect()
        }

        async fn total(&self) -> u64 {
            self.state.hub.stats().summary.total
        }
    }

    async fn send(
        state: &AppState,
        request: axum::http::request::Builder,
        body: impl Into<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let request = crate::as_admin(
            state,
            request
                .header("content-type", "text/csv")
                .body(body.into())
                .unwrap(),
        );
        let response = app(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"));
        (status, json)
    }

    async fn get(state: &AppState, path: &str) -> String {
        let request = crate::from_loopback(Request::get(path).body(Body::empty()).unwrap());
        let response = app(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Rows of every kind: coordinates or none (placed by IP), the optional fields, text
    /// that needs quoting, fractional times, out of time order, and two identical rows.
    const MIXED: &str = "\
ip,latitude,longitude,timestamp,suspicious,bytes,protocol,status,method,path,dest_ip
173.198.105.40,35.3696,-119.0105,1736919125,1,512,HTTP,404,GET,/a?b=1,10.0.0.1
5.165.146.0,56.1089,47.4821,1736919120.25,0,,,,,,
2001:db8::1,,,1736919121,0,,TCP,,,,
8.8.8.8,48.8566,2.3522,1736919122,1,7,HTTP,200,POST,\"/x,y\",
8.8.8.8,48.8566,2.3522,1736919122,1,7,HTTP,200,POST,\"/x,y\",
192.0.2.7,-33.8688,151.2093,1736919100,0,0,UDP,,,,2001:db8::2
";

    on_both_stores!(
        export_then_import_into_an_empty_server_gives_the_same_events,
        importing_the_same_file_twice_adds_nothing_the_second_time,
        identical_rows_import_as_often_as_the_file_has_them_beyond_the_stored_copies,
    );

    async fn export_then_import_into_an_empty_server_gives_the_same_events(kind: Kind) {
        let a = Server::start_on("round-a", kind).await;
        let (status, report) = a.import(MIXED).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["accepted"], 6, "{report}");
        let exported = get(&a.state, "/api/history/export").await;
        let b = Server::start_on("round-b", kind).await;
        let (status, report) = b.import(exported.clone()).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(
            (&report["rows"], &report["accepted"], &report["duplicates"]),
            (&6.into(), &6.into(), &0.into()),
            "{report}"
        );
        assert_eq!(get(&b.state, "/api/history/export").await, exported);
        let stored = a.stored().await;
        assert_eq!(stored.len(), 6);
        assert_eq!(
            b.stored().await,
            stored,
            "times, ips, places and fields alike"
        );
        assert_eq!(b.total().await, 6, "counted live too");
        a.stop().await;
        b.stop().await;
    }

    async fn importing_the_same_file_twice_adds_nothing_the_second_time(kind: Kind) {
        let server = Server::start_on("twice", kind).await;
        let (_, first) = server.import(MIXED).await;
        assert_eq!(first["accepted"], 6);
        // Answered once committed (published follows the commit): the next import sees them.
        assert_eq!(server.state.hub.published().0, 6);
        assert_eq!(server.state.hub.uncommitted(), 0);
        let (status, second) = server.import(MIXED).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (&second["accepted"], &second["duplicates"], &second["rows"]),
            (&0.into(), &6.into(), &6.into()),
            "{second}"
        );
        assert_eq!(server.total().await, 6);
        assert_eq!(server.stored().await.len(), 6);
        server.stop().await;
    }

    #[tokio::test]
    async fn a_file_with_fields_the_history_does_not_keep_imported_twice_adds_nothing() {
        let server = Server::start("ports").await;
        let csv = "ip,latitude,longitude,timestamp,suspicious,src_port,dest_port,packets\n\
                   1.2.3.4,10,20,1736919120,0,5000,443,3\n";
        assert_eq!(server.import(csv).await.1["accepted"], 1);
        let (_, again) = server.import(csv).await;
        assert_eq!(
            (&again["accepted"], &again["duplicates"]),
            (&0.into(), &1.into())
        );
        server.stop().await;
    }

    async fn identical_rows_import_as_often_as_the_file_has_them_beyond_the_stored_copies(
        kind: Kind,
    ) {
        let server = Server::start_on("copies", kind).await;
        let header = "ip,latitude,longitude,timestamp,suspicious\n";
        let row = "9.9.9.9,1.5,2.5,1736919200,0\n";
        let other = "9.9.9.8,1.5,2.5,1736919201,0\n";
        let (_, report) = server.import(format!("{header}{row}{other}{row}")).await;
        assert_eq!(report["accepted"], 3, "both copies: {report}");
        let (_, report) = server
            .import(format!("{header}{row}{row}{row}{other}{row}"))
            .await;
        assert_eq!(
            (&report["accepted"], &report["duplicates"]),
            (&2.into(), &3.into()),
            "4 copies in the file, 2 stored: 2 more; {report}"
        );
        assert_eq!(server.total().await, 5);
        server.stop().await;
    }

    #[tokio::test]
    async fn a_bad_row_is_reported_by_its_line_and_the_others_are_imported() {
        let server = Server::start("bad-row").await;
        let csv = "ip address,Latitude,Longitude,Timestamp,suspicious\r\n\
                   1.2.3.4,10,20,1736919120,0.0\r\n\
                   \r\n\
                   1.2.3.5,10,20,17369x9120,0.0\r\n\
                   1.2.3.6,10,20,1736919121,1.0\r\n\
                   not-an-ip,10,20,1736919121,1.0\r\n";
        let (status, report) = server.import(csv).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (&report["accepted"], &report["rejected"], &report["rows"]),
            (&2.into(), &2.into(), &4.into()),
            "{report}"
        );
        assert_eq!(report["errors"][0]["line"], 4, "{report}");
        let reason = report["errors"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("timestamp"), "{reason}");
        assert_eq!(report["errors"][1]["line"], 6, "{report}");
        assert_eq!(server.total().await, 2);
        server.stop().await;
    }

    /// Readers whose event reads fail once `allowed` of them were made (the store going
    /// bad in the middle of an import).
    struct FailingReaders {
        inner: Arc<dyn history::range::OpenReader>,
        allowed: Arc<std::sync::atomic::AtomicUsize>,
    }

    struct FailingReader {
        inner: Box<dyn history::range::Reader>,
        allowed: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl history::range::OpenReader for FailingReaders {
        fn open_reader(&self) -> history::Result<Box<dyn history::range::Reader>> {
            Ok(Box::new(FailingReader {
                inner: self.inner.open_reader()?,
                allowed: Arc::clone(&self.allowed),
            }))
        }
    }

    impl history::range::Reader for FailingReader {
        fn summary(
            &self,
            range: history::range::TimeRange,
            filter: &history::range::Filter,
            top: usize,
        ) -> history::Result<history::range::RangeSummary> {
            self.inner.summary(range, filter, top)
        }

        fn events(
            &self,
            range: history::range::TimeRange,
            filter: &history::range::Filter,
            after: u64,
            limit: usize,
        ) -> history::Result<Vec<history::StoredEvent>> {
            let left = self.allowed.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
            if left.is_err() {
                return Err(history::Error::Corrupt {
                    seq: 0,
                    reason: "the test's store went bad".into(),
                });
            }
            self.inner.events(range, filter, after, limit)
        }
    }

    #[tokio::test]
    async fn a_store_that_fails_mid_import_answers_500_with_the_report_of_what_was_imported() {
        let server = Server::start("store-fails").await;
        let header = "ip,latitude,longitude,timestamp,suspicious\n";
        // Something stored, so that the import compares with the store.
        let (status, _) = server
            .import(format!("{header}9.9.9.1,1,2,1736900000,0\n"))
            .await;
        assert_eq!(status, StatusCode::OK);
        // Chunks of 3 rows in tests: the first chunk's stretch reads the store once and
        // succeeds, the second (an hour later) needs another read, which fails.
        let mut csv = String::from(header);
        for (i, t) in [1736919000, 1736919001, 1736919002].into_iter().enumerate() {
            csv.push_str(&format!("9.9.9.{},1,2,{t},0\n", i + 2));
        }
        csv.push_str("not-an-ip,1,2,1736919003,0\n");
        for (i, t) in [1736922600, 1736922601, 1736922602].into_iter().enumerate() {
            csv.push_str(&format!("9.9.8.{},1,2,{t},0\n", i + 2));
        }
        let mut state = server.state.clone();
        state.shared_mut().readers = Some(Arc::new(FailingReaders {
            inner: server.state.readers.clone().unwrap(),
            allowed: Arc::new(1.into()),
        }));
        let (status, answer) = send(&state, Request::post("/api/import"), csv).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
        assert_eq!(answer["error"], "store_read_failed", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            !message.contains("the test's store went bad"),
            "the store's error stays in the log: {message}"
        );
        let report = &answer["report"];
        assert_eq!(
            (
                &report["rows"],
                &report["accepted"],
                &report["duplicates"],
                &report["rejected"]
            ),
            (&4.into(), &3.into(), &0.into(), &1.into()),
            "the first chunk imported, the bad row counted, the last chunk not: {answer}"
        );
        assert_eq!(report["errors"][0]["line"], 5, "{answer}");
        // What the report says was imported is stored, and nothing else.
        assert_eq!(server.total().await, 1 + 3);
        assert_eq!(server.stored().await.len(), 1 + 3);
        server.stop().await;
    }

    #[tokio::test]
    async fn only_the_first_hundred_errors_are_listed_and_all_are_counted() {
        let server = Server::start("many-errors").await;
        let mut csv = String::from("ip,timestamp\n");
        for _ in 0..150 {
            csv.push_str("1.2.3.4,never\n");
        }
        let (_, report) = server.import(csv).await;
        assert_eq!(report["rejected"], 150);
        let errors = report["errors"].as_array().unwrap();
        assert_eq!(errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(errors[99]["line"], 101);
        server.stop().await;
    }

    #[tokio::test]
    async fn the_course_file_imports_with_totals_equal_to_its_rows() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ip_addresses.csv");
        let csv = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("the course file is expected at {path:?}: {e}"));
        let rows = traffic::csv::CsvReader::new(&csv[..]).unwrap().count() as u64;
        let suspicious = traffic::csv::CsvReader::new(&csv[..])
            .unwrap()
            .filter(|row| row.as_ref().is_ok_and(|r| r.event.suspicious))
            .count() as u64;
        let server = Server::start("course").await;
        let (status, report) = server.import(csv.clone()).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["accepted"], rows, "{report}");
        let stats = server.state.hub.stats();
        assert_eq!(
            (stats.summary.total, stats.summary.suspicious),
            (rows, suspicious)
        );
        let (_, again) = server.import(csv).await;
        assert_eq!(
            (&again["accepted"], &again["duplicates"]),
            (&0.into(), &rows.into())
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn a_file_without_a_usable_header_is_refused_and_a_form_upload_is_explained() {
        let server = Server::start("header").await;
        let (status, body) = server.import("name,when\nx,y\n").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_csv");
        assert!(
            body["message"].as_str().unwrap().starts_with("header:"),
            "{body}"
        );
        let form =
            Request::post("/api/import").header("content-type", "multipart/form-data; boundary=x");
        let request = crate::as_admin(&server.state, form.body(Body::from("--x")).unwrap());
        let response = app(server.state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        server.stop().await;
    }

    #[tokio::test]
    async fn a_file_over_the_limit_is_413_with_what_came_before_the_cut_imported() {
        let mut server = Server::start("limit").await;
        let mut config = Config::clone(&server.state.config);
        config.max_import_bytes = 100;
        server.state.shared_mut().config = std::sync::Arc::new(config);
        // Declared: refused before reading.
        let (status, body) = server.import("x".repeat(101)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"], "too_large");
        // Streamed without a length: cut where it passes the limit.
        let lines: Vec<Result<Bytes, io::Error>> = [
            "ip,latitude,longitude,timestamp,suspicious\n",
            "1.1.1.1,1,2,1736919120,0\n",
            "1.1.1.2,1,2,1736919121,0\n",
            "1.1.1.3,1,2,1736919122,0\n",
        ]
        .into_iter()
        .map(|line| Ok(Bytes::from(line)))
        .collect();
        let stream = Body::from_stream(futures_util::stream::iter(lines));
        let (status, body) = server.import(stream).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["report"]["accepted"], 2, "{body}");
        assert_eq!(server.total().await, 2);
        server.stop().await;
    }

    #[tokio::test]
    async fn a_client_gone_mid_import_leaves_it_running_to_the_end_of_its_body() {
        let server = Server::start("gone").await;
        let (rows, rows_out) = mpsc::channel::<Result<Bytes, io::Error>>(4);
        rows.send(Ok(Bytes::from(
            "ip,latitude,longitude,timestamp,suspicious\n1.1.1.1,1,2,1736919120,0\n\
             1.1.1.2,1,2,1736919121,0\n1.1.1.3,1,2,1736919122,1\n",
        )))
        .await
        .unwrap();
        let body = futures_util::stream::unfold(rows_out, |mut out| async move {
            out.recv().await.map(|item| (item, out))
        });
        let mut call = Box::pin(server.import(Body::from_stream(body)));
        // Until the import has begun (it holds the lock); bounded.
        for _ in 0..1000 {
            tokio::select! {
                _ = &mut call => panic!("the import ended while its body was open"),
                () = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
            }
            if server.state.imports.try_lock().is_err() {
                break;
            }
        }
        // The client goes away; the import goes on, so another must wait.
        drop(call);
        let (status, body) = server.import(MIXED).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        // Its body ends: it imports what it read, commits it and lets the next one in.
        drop(rows);
        for _ in 0..1000 {
            if server.state.imports.try_lock().is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(server.total().await, 3);
        let (status, body) = server.import(MIXED).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.stop().await;
    }

    #[tokio::test]
    async fn imported_rows_are_history_and_raise_no_alert() {
        let server = Server::start("quiet").await;
        // The same large UDP packet posted live raises the built-in large_packet alert.
        let csv = "ip,latitude,longitude,timestamp,suspicious,bytes,protocol\n\
                   198.51.100.7,35.6762,139.6503,1736919120,0,9000,UDP\n";
        let (status, body) = server.import(csv).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(server.total().await, 1);
        let live = r#"[{"ip":"198.51.100.8","latitude":35.6762,"longitude":139.6503,"timestamp":1736919121,"suspicious":false,"bytes":9000,"protocol":"UDP"}]"#;
        let (status, _) = crate::call_json(&server.state, "POST", "/api/events", live).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        for _ in 0..1000 {
            if server.total().await == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let alerts: serde_json::Value =
            serde_json::from_str(&get(&server.state, "/api/alerts").await).unwrap();
        let keys: Vec<&str> = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(keys, ["198.51.100.8"], "{alerts}");
        server.stop().await;
    }

    #[tokio::test]
    async fn one_import_at_a_time_and_none_without_a_history() {
        let server = Server::start("one").await;
        let running = std::sync::Arc::clone(&server.state.imports)
            .try_lock_owned()
            .unwrap();
        let (status, body) = server.import(MIXED).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::CONFLICT, &"conflict".into())
        );
        drop(running);
        assert_eq!(server.import(MIXED).await.0, StatusCode::OK);
        server.stop().await;
        let memory = AppState::new(
            Config::default_for_tests(),
            Geocoder::shared(),
            CancellationToken::new(),
        );
        let (status, body) = send(&memory, Request::post("/api/import"), MIXED).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &"no_history".into())
        );
    }
}
