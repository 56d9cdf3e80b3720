//! One serving process per data directory: two servers writing the same history would both
//! number events from their own counters (doubled or lost rows), and both rewrite the same
//! users and settings. The lock is an exclusive advisory lock (`flock`) on
//! `<data-dir>/server.lock`, held while the server runs; the kernel drops it when the process
//! ends, however it ends, so a killed server never leaves a stale lock behind. The CLI
//! subcommands (`server user ...`) do not take it: they are meant to run beside a server.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The file locked, in the data directory.
pub const FILE_NAME: &str = "server.lock";

/// Held while the server runs; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Locks `dir` (created if missing) for this process, or fails naming the directory and,
    /// when it is known, the process holding it.
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the data directory {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("while opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (process {holder})")
                };
                anyhow::bail!(
                    "another server is already running on the data directory {}{by}: two \
                     would number and store the same events twice; stop it, or give this one \
                     its own --data-dir",
                    dir.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("while locking {}", path.display()));
            }
        }
        // Who holds it, for the message above (the lock, not this text, is what counts).
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(Self { _file: file, path })
    }

    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_directory_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("tg-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = DataDirLock::acquire(&dir).unwrap();
        assert!(first.path().ends_with(FILE_NAME));
        let refused = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            refused.contains("another server is already running"),
            "{refused}"
        );
        assert!(
            refused.contains(&format!("process {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        let again = DataDirLock::acquire(&dir).expect("free once the first is dropped");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
