//! The follow checkpoint: which file, how far its lines were accepted by the server, and the
//! range being sent, in one small JSON file replaced atomically (written beside, synced,
//! renamed over; the same dance as Vector's `checkpoints.new.json` → `checkpoints.json`).
//!
//! It is written twice per batch: before the POST with `sending` set to the batch's end
//! (so that a restarted sender sends exactly that range again, under the same idempotency
//! key, and the server does not count it twice), and after the server's 202 with `offset`
//! moved to that end.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tail::{FileId, Position};

/// What the checkpoint file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Fingerprint of its first line.
    pub fingerprint: u64,
    /// Offset after the last line accepted (or skipped as unreadable).
    pub offset: u64,
    /// Number of that line.
    pub line: u64,
    /// A batch `offset..end` was being sent and may have been counted: `(end, end line)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<(u64, u64)>,
}

impl Checkpoint {
    /// The checkpoint of `position`, nothing being sent.
    pub fn at(position: Position) -> Checkpoint {
        Checkpoint {
            dev: position.file.dev,
            ino: position.file.ino,
            fingerprint: position.file.fingerprint,
            offset: position.offset,
            line: position.line,
            sending: None,
        }
    }

    /// The position it records.
    pub fn position(&self) -> Position {
        Position {
            file: FileId {
                dev: self.dev,
                ino: self.ino,
                fingerprint: self.fingerprint,
            },
            offset: self.offset,
            line: self.line,
        }
    }
}

/// The default checkpoint path for following `file`: `.<name>.sender-checkpoint` beside it.
pub fn default_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}.sender-checkpoint"))
}

/// Reads the checkpoint at `path`; `None` when there is none.
pub fn load(path: &Path) -> io::Result<Option<Checkpoint>> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a sender checkpoint: {e}", path.display()),
        )
    })
}

/// Fails unless a checkpoint can be written at `path` (its directory exists and is
/// writable), by creating and removing the file [`store`] writes first.
pub fn check_writable(path: &Path) -> io::Result<()> {
    let tmp = tmp_path(path);
    File::create(&tmp)?;
    fs::remove_file(&tmp)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    PathBuf::from(tmp)
}

/// Replaces the checkpoint at `path` atomically: a reader (or a crash) sees the old one or
/// the new one, never a torn file.
pub fn store(path: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    let tmp = tmp_path(path);
    let text = serde_json::to_vec(checkpoint).map_err(io::Error::other)?;
    {
        let mut file = File::create(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    // The rename itself is durable once the directory is synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        dir.sync_all().ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_survives_a_store_and_load_and_replaces_the_old_one() {
        let dir = std::env::temp_dir().join(format!("sender-cp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp");
        assert_eq!(load(&path).unwrap(), None);
        let mut cp = Checkpoint {
            dev: 1,
            ino: 2,
            fingerprint: u64::MAX,
            offset: 10,
            line: 3,
            sending: Some((20, 5)),
        };
        store(&path, &cp).unwrap();
        assert_eq!(load(&path).unwrap(), Some(cp));
        cp.sending = None;
        cp.offset = 20;
        store(&path, &cp).unwrap();
        assert_eq!(load(&path).unwrap(), Some(cp));
        assert!(!dir.join("cp.new").exists());
        fs::write(&path, b"{garbage").unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a sender checkpoint")
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_default_path_is_a_hidden_file_beside_the_log() {
        assert_eq!(
            default_path(Path::new("/var/log/nginx/access.log")),
            PathBuf::from("/var/log/nginx/.access.log.sender-checkpoint")
        );
    }
}
