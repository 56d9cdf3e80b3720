//! The audit log: one JSON object per line in `audit.log` under `--data-dir`, for every
//! login (success or failure), logout and admin action. When the file passes its size limit
//! it is renamed to `audit.log.1` (the older `.1` to `.2`, and so on, keeping
//! [`KEEP`] old files) and a new one is started.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The file name under `--data-dir`.
pub const FILE_NAME: &str = "audit.log";

/// Rotated files kept (`audit.log.1` ..= `audit.log.KEEP`).
pub const KEEP: usize = 3;

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub time: String,
    /// What happened: `login`, `logout`, `setup`, `user.add`, `token.revoke`, or for any
    /// other admin endpoint `METHOD /path`.
    pub action: String,
    /// Who did it: a user name, `cli`, or the name tried at a failed login.
    pub actor: String,
    /// The client's address (`cli` for the command line).
    pub client: String,
    /// `ok`, or why not (`bad_credentials`, `rate_limited`, an HTTP status...).
    pub outcome: String,
    /// What it was done to (a user or token name), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Longest actor or target written: a valid name is at most 64 characters, so anything
/// longer is what a client sent at a failed login, kept only in part (`…` marks the cut).
pub const MAX_NAME_CHARS: usize = 64;

fn shown(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

impl Entry {
    /// An entry stamped now (`actor` cut to [`MAX_NAME_CHARS`]).
    pub fn now(action: &str, actor: &str, client: &str, outcome: &str) -> Self {
        Self {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            action: action.to_owned(),
            actor: shown(actor),
            client: client.to_owned(),
            outcome: outcome.to_owned(),
            target: None,
        }
    }

    /// The same entry about `target` (cut to [`MAX_NAME_CHARS`]).
    pub fn on(mut self, target: &str) -> Self {
        self.target = Some(shown(target));
        self
    }
}

/// Appends entries to the audit log, rotating it by size. Without a folder (tests), entries
/// are only kept in memory.
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    max_bytes: u64,
    lock: Mutex<Vec<Entry>>,
}

/// Entries kept in memory when there is no folder.
const MEMORY_ENTRIES: usize = 10_000;

impl AuditLog {
    /// A log in `dir`, rotated past `max_bytes`.
    pub fn in_dir(dir: &Path, max_bytes: u64) -> Self {
        Self {
            path: Some(dir.join(FILE_NAME)),
            max_bytes,
            lock: Mutex::default(),
        }
    }

    /// A log kept in memory only.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            max_bytes: u64::MAX,
            lock: Mutex::default(),
        }
    }

    /// Writes `entry`; a failure to write is logged, never fatal to the request.
    pub fn record(&self, entry: Entry) {
        tracing::info!(
            action = %entry.action,
            actor = %entry.actor,
            client = %entry.client,
            outcome = %entry.outcome,
            target = entry.target.as_deref().unwrap_or(""),
            "audit"
        );
        let mut memory = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.path else {
            if memory.len() >= MEMORY_ENTRIES {
                memory.remove(0);
            }
            memory.push(entry);
            return;
        };
        if let Err(e) = append(path, self.max_bytes, &entry) {
            tracing::error!(path = %path.display(), error = format!("{e:#}"), "cannot write the audit log");
        }
    }

    /// The newest `limit` entries, newest last.
    pub fn recent(&self, limit: usize) -> anyhow::Result<Vec<Entry>> {
        let memory = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.path else {
            return Ok(memory[memory.len().saturating_sub(limit)..].to_vec());
        };
        let mut entries = Vec::new();
        // The current file, then older ones, until enough.
        for n in 0..=KEEP {
            let text = match std::fs::read_to_string(rotated(path, n)) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).context("while reading the audit log"),
            };
            let mut older: Vec<Entry> = text
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect();
            older.append(&mut entries);
            entries = older;
            if entries.len() >= limit {
                break;
            }
        }
        Ok(entries[entries.len().saturating_sub(limit)..].to_vec())
    }
}

/// `audit.log` for 0, `audit.log.N` otherwise.
fn rotated(path: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return path.to_owned();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn append(path: &Path, max_bytes: u64, entry: &Entry) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size >= max_bytes {
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(rotated(path, n), rotated(path, n + 1));
        }
        std::fs::rename(path, rotated(path, 1))?;
    }
    let mut line = serde_json::to_vec(entry)?;
    line.push(b'\n');
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(&line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_json_lines_rotated_by_size_and_read_back_newest_last() {
        let dir =
            std::env::temp_dir().join(format!("tg-audit-{}", super::super::store::random_token()));
        let log = AuditLog::in_dir(&dir, 300);
        for i in 0..20 {
            log.record(Entry::now("login", &format!("user{i}"), "127.0.0.1", "ok"));
        }
        assert!(rotated(&dir.join(FILE_NAME), 1).exists());
        assert!(!rotated(&dir.join(FILE_NAME), KEEP + 1).exists());
        for line in std::fs::read_to_string(dir.join(FILE_NAME))
            .unwrap()
            .lines()
        {
            serde_json::from_str::<Entry>(line).unwrap();
        }
        let recent = log.recent(3).unwrap();
        let actors: Vec<&str> = recent.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, ["user17", "user18", "user19"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_name_longer_than_any_user_is_cut_in_the_log_and_a_real_one_kept() {
        let long = "é".repeat(16 * 1024);
        let entry = Entry::now("login", &long, "127.0.0.1", "bad_credentials").on(&long);
        let cut = format!("{}…", "é".repeat(MAX_NAME_CHARS));
        assert_eq!(entry.actor, cut);
        assert_eq!(entry.target.as_deref(), Some(cut.as_str()));
        let name = "a".repeat(MAX_NAME_CHARS);
        assert_eq!(Entry::now("login", &name, "cli", "ok").actor, name);
    }
}
