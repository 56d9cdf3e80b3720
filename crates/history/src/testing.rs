//! A PostgreSQL schema of its own for each test (this crate's and the server's): tests run
//! in parallel on one test database, each in an empty schema dropped when it is done.
//!
//! The database is named by [`URL_VAR`] (`./scripts/postgres-test-db` sets one up and prints
//! it). Without it a PostgreSQL test fails saying how to set it, unless [`SKIP_VAR`] is `1`.

/// The environment variable naming the test database.
pub const URL_VAR: &str = "TRAFFIC_GLOBE_TEST_DATABASE_URL";
/// Set to `1` to skip the PostgreSQL tests when no database is at hand.
pub const SKIP_VAR: &str = "TRAFFIC_GLOBE_SKIP_POSTGRES";

/// An empty schema on the test database, dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct TestSchema {
    base: String,
    name: String,
    url: String,
}

/// Runs `f` on a thread of its own: the synchronous client starts a runtime, which must not
/// happen on a thread that drives async tasks (the server's tests).
fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

impl TestSchema {
    /// A new schema for the test `name`, or `None` (said on stderr) when [`SKIP_VAR`] is
    /// `1` and no database is named.
    ///
    /// # Panics
    /// When [`URL_VAR`] is not set (and the tests are not skipped), with how to set it; when
    /// the database cannot be reached.
    pub fn create(name: &str) -> Option<Self> {
        let base = match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ if std::env::var(SKIP_VAR).as_deref() == Ok("1") => {
                eprintln!("{name}: skipped, no PostgreSQL ({SKIP_VAR}=1)");
                return None;
            }
            _ => panic!(
                "{name} needs a PostgreSQL database: set {URL_VAR}, e.g. \
                 `export {URL_VAR}=$(./scripts/postgres-test-db)` (installs and starts Debian's \
                 postgresql, creates a role and a database), or set {SKIP_VAR}=1 to skip the \
                 PostgreSQL tests"
            ),
        };
        Some(Self::on(&base, name))
    }

    /// A new schema for `name` on the database at `base` (a benchmark's own database).
    ///
    /// # Panics
    /// When the database cannot be reached or the schema not created.
    pub fn on(base: &str, name: &str) -> Self {
        let base = base.to_owned();
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(30)
            .collect();
        let schema = format!(
            "t_{}_{}_{:08x}",
            clean.to_ascii_lowercase(),
            std::process::id(),
            crate::random_u128() as u32
        );
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        {
            let (base, schema) = (base.clone(), schema.clone());
            off_thread(move || {
                let mut client =
                    postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| {
                        panic!(
                            "cannot reach the test database {}: {e}",
                            crate::postgres::redact(&base)
                        )
                    });
                client
                    .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                    .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
            });
        }
        Self {
            base,
            name: schema,
            url,
        }
    }

    /// The URL of the test database with this schema as the search path.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` in this schema (on a thread of its own), for a test to look at or change
    /// the stored rows; returns the first column of the first row as text, if any.
    ///
    /// # Panics
    /// When the statement fails.
    pub fn query_text(&self, sql: &str) -> Option<String> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        off_thread(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connects");
            let rows = client
                .simple_query(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.into_iter().find_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
        })
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), postgres::Error> {
            let mut client = postgres::Client::connect(&base, postgres::NoTls)?;
            client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}
