//! A `tail -F` for one path, read by polling: complete lines in chunks with their byte range,
//! surviving rotation by rename (the old file is finished first, then the new file at the path
//! is read from its start) and truncation (copytruncate: the file shrinks, or its first line
//! changes, and is read again from its start).
//!
//! A file is known by its [`FileId`]: device, inode and a fingerprint of its first line (as
//! Vector's file source fingerprints by a checksum of the first line; the inode alone is
//! reused after a copytruncate and by new files). Reads are positional (`read_at`) from the
//! offset after the last complete line, so nothing depends on the file's cursor. A partial last
//! line is held (at most [`MAX_LINE_BYTES`] of it) until its newline arrives; a line longer
//! than that is skipped and reported by number, as the batch readers do.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use sources::MAX_LINE_BYTES;

/// Bytes of the first line that make the fingerprint.
pub const FINGERPRINT_BYTES: usize = 256;
/// Bytes read per `read_at`.
const READ_BYTES: usize = 64 * 1024;

/// Which file: device and inode, and the fingerprint of its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// FNV-1a of the first line (up to [`FINGERPRINT_BYTES`], newline included).
    pub fingerprint: u64,
}

impl FileId {
    /// A short stable name for the file, used in idempotency keys: 16 hex digits.
    pub fn key(&self) -> String {
        let mut h = Fnv::default();
        h.write(&self.dev.to_le_bytes());
        h.write(&self.ino.to_le_bytes());
        h.write(&self.fingerprint.to_le_bytes());
        format!("{:016x}", h.0)
    }
}

/// FNV-1a, 64 bits: stable across runs and platforms (std's hashers are not).
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The fingerprint of a file: FNV-1a of its first line up to [`FINGERPRINT_BYTES`], `None`
/// while that is incomplete (no newline yet and shorter than the limit).
pub fn fingerprint(file: &File) -> io::Result<Option<u64>> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        let k = file.read_at(&mut head[n..], n as u64)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let first = match memchr::memchr(b'\n', &head[..n]) {
        Some(i) => &head[..=i],
        None if n == FINGERPRINT_BYTES => &head[..],
        None => return Ok(None),
    };
    let mut h = Fnv::default();
    h.write(first);
    Ok(Some(h.0))
}

/// One line read: its number and text (without the line end), or its number and length when
/// it is longer than [`MAX_LINE_BYTES`] and was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailLine {
    /// A line within the limit.
    Text(u64, Vec<u8>),
    /// A line over the limit: number and length.
    TooLong(u64, u64),
}

/// Consecutive complete lines of one file and the bytes they span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file they come from.
    pub file: FileId,
    /// Offset of the first line's first byte.
    pub start: u64,
    /// Offset after the last line's newline.
    pub end: u64,
    /// Number of the line before the first (lines are numbered from 1 in each file).
    pub line_before: u64,
    /// The lines.
    pub lines: Vec<TailLine>,
}

/// Where a file is read from, as a checkpoint stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The file.
    pub file: FileId,
    /// Offset after the last line consumed.
    pub offset: u64,
    /// Number of that line.
    pub line: u64,
}

/// What happened to the path since the last look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The file at the path was replaced (rename rotation); the old one was finished.
    Rotated,
    /// The file shrank or its first line changed (copytruncate): read again from its start.
    Truncated {
        /// Where reading was.
        was_at: u64,
    },
}

/// The open file being read.
#[derive(Debug)]
struct Current {
    file: File,
    dev: u64,
    ino: u64,
    /// `None` until the first line is complete.
    fingerprint: Option<u64>,
    /// Offset after the last complete line handed out.
    offset: u64,
    line: u64,
    /// Bytes read after `offset`: the start of an incomplete line.
    partial: Vec<u8>,
    /// Skipping a line over the limit: its number is `line + 1`, this many bytes so far.
    skipping: Option<u64>,
    /// The path now names another file; finish this one first.
    rotated: bool,
}

impl Current {
    fn open(path: &Path) -> io::Result<Option<Current>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let fingerprint = fingerprint(&file)?;
        Ok(Some(Current {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint,
            offset: 0,
            line: 0,
            partial: Vec::new(),
            skipping: None,
            rotated: false,
        }))
    }

    fn id(&self) -> Option<FileId> {
        Some(FileId {
            dev: self.dev,
            ino: self.ino,
            fingerprint: self.fingerprint?,
        })
    }

    fn restart(&mut self) {
        self.offset = 0;
        self.line = 0;
        self.partial.clear();
        self.skipping = None;
    }

    /// Reads complete lines into `out` (at most `max` in all, and not past `limit`); returns
    /// whether the file had more bytes than were there before.
    fn read_lines(
        &mut self,
        out: &mut Vec<TailLine>,
        max: usize,
        limit: Option<u64>,
    ) -> io::Result<bool> {
        let mut grew = false;
        let mut buf = vec![0u8; READ_BYTES];
        while out.len() < max && limit.is_none_or(|l| self.offset < l) {
            // Lines already complete in `partial` come first.
            if let Some(i) = memchr::memchr(b'\n', &self.partial) {
                self.take_line(i, out);
                continue;
            }
            let at = self.offset + self.skipped_len() + self.partial.len() as u64;
            let n = self.file.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            grew = true;
            match self.skipping.as_mut() {
                Some(len) => match memchr::memchr(b'\n', &buf[..n]) {
                    Some(i) => {
                        let total = *len + i as u64;
                        self.skipping = None;
                        self.line += 1;
                        self.offset += total + 1;
                        out.push(TailLine::TooLong(self.line, total));
                        self.partial.extend_from_slice(&buf[i + 1..n]);
                    }
                    None => *len += n as u64,
                },
                None => self.partial.extend_from_slice(&buf[..n]),
            }
            if self.skipping.is_none()
                && self.partial.len() > MAX_LINE_BYTES + 1
                && memchr::memchr(b'\n', &self.partial).is_none()
            {
                self.skipping = Some(self.partial.len() as u64);
                self.partial.clear();
            }
        }
        if self.fingerprint.is_none() && self.line > 0 {
            self.fingerprint = fingerprint(&self.file)?;
        }
        Ok(grew)
    }

    fn skipped_len(&self) -> u64 {
        self.skipping.unwrap_or(0)
    }

    fn take_line(&mut self, newline: usize, out: &mut Vec<TailLine>) {
        let mut text: Vec<u8> = self.partial.drain(..=newline).collect();
        self.offset += text.len() as u64;
        self.line += 1;
        text.pop();
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        if text.len() > MAX_LINE_BYTES {
            out.push(TailLine::TooLong(self.line, text.len() as u64));
        } else {
            out.push(TailLine::Text(self.line, text));
        }
    }
}

/// Follows one path (see the module documentation).
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    current: Option<Current>,
    /// A rotated file found at start (the checkpoint's file under another name), read first.
    events: Vec<Event>,
}

/// Where to start when there is no usable checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the first line of the file.
    Beginning,
    /// After the last complete line there now (what is written from now on).
    End,
}

/// What opening from a checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// The checkpoint's file is at the path: read on from its offset.
    SameFile,
    /// The checkpoint's file was rotated to this name: it is finished first.
    Rotated(PathBuf),
    /// The checkpoint's file is at the path but shorter than the offset: read from its start.
    Truncated,
    /// The checkpoint's file is gone: the file at the path is read from its start.
    Gone,
    /// No checkpoint.
    Fresh,
}

impl Tailer {
    /// Starts following `path`: from `checkpoint` when its file is found (at the path, or
    /// renamed beside it by a rotation), else as `start` says. The path need not exist yet.
    pub fn open(
        path: &Path,
        checkpoint: Option<Position>,
        start: Start,
    ) -> io::Result<(Tailer, Resumed)> {
        let mut tailer = Tailer {
            path: path.to_owned(),
            current: None,
            events: Vec::new(),
        };
        let Some(cp) = checkpoint else {
            tailer.current = Current::open(path)?;
            if start == Start::End
                && let Some(cur) = tailer.current.as_mut()
            {
                tailer_skip_to_end(cur)?;
            }
            return Ok((tailer, Resumed::Fresh));
        };
        if let Some(mut cur) = Current::open(path)?
            && cur.id() == Some(cp.file)
        {
            let size = cur.file.metadata()?.len();
            if size < cp.offset {
                return Ok((
                    Tailer {
                        current: Some(cur),
                        ..tailer
                    },
                    Resumed::Truncated,
                ));
            }
            cur.offset = cp.offset;
            cur.line = cp.line;
            tailer.current = Some(cur);
            return Ok((tailer, Resumed::SameFile));
        }
        if let Some(renamed) = find_renamed(path, cp.file)?
            && let Some(mut cur) = Current::open(&renamed)?
            && cur.id() == Some(cp.file)
            && cur.file.metadata()?.len() >= cp.offset
        {
            cur.offset = cp.offset;
            cur.line = cp.line;
            cur.rotated = true;
            tailer.current = Some(cur);
            return Ok((tailer, Resumed::Rotated(renamed)));
        }
        tailer.current = Current::open(path)?;
        Ok((tailer, Resumed::Gone))
    }

    /// The position after the last line handed out, once the file has a fingerprint.
    pub fn position(&self) -> Option<Position> {
        let cur = self.current.as_ref()?;
        Some(Position {
            file: cur.id()?,
            offset: cur.offset,
            line: cur.line,
        })
    }

    /// Up to `max` bytes from the start of the file being read (empty when there is none):
    /// its header lines, for detection and for parsers that read headers.
    pub fn head(&self, max: usize) -> io::Result<Vec<u8>> {
        let Some(cur) = self.current.as_ref() else {
            return Ok(Vec::new());
        };
        let mut head = vec![0u8; max];
        let mut n = 0;
        while n < max {
            let k = cur.file.read_at(&mut head[n..], n as u64)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        head.truncate(n);
        Ok(head)
    }

    /// What happened to the path since the last call (rotations, truncations).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The next complete lines, at most `max` (at least 1), not past `limit` if given (to
    /// read a range again exactly); `None` when there is nothing new now. Notices rotation
    /// and truncation on the way (see [`Tailer::take_events`]).
    pub fn read_chunk(&mut self, max: usize, limit: Option<u64>) -> io::Result<Option<Chunk>> {
        let max = max.max(1);
        for _ in 0..3 {
            let Some(cur) = self.current.as_mut() else {
                self.current = Current::open(&self.path)?;
                if self.current.is_none() {
                    return Ok(None);
                }
                continue;
            };
            if !cur.rotated && limit.is_none() {
                // Copytruncate: the file shrank below what was read, or its first line changed.
                let size = cur.file.metadata()?.len();
                let read = cur.offset + cur.skipped_len() + cur.partial.len() as u64;
                let changed =
                    cur.fingerprint.is_some() && fingerprint(&cur.file)? != cur.fingerprint;
                if size < read || changed {
                    self.events.push(Event::Truncated { was_at: cur.offset });
                    cur.restart();
                    cur.fingerprint = fingerprint(&cur.file)?;
                }
            }
            let (start, line_before) = (cur.offset, cur.line);
            let mut lines = Vec::new();
            cur.read_lines(&mut lines, max, limit)?;
            if !lines.is_empty() {
                let Some(file) = cur.id() else {
                    // A first line is complete, so its fingerprint exists; unless the file
                    // changed under us: read again next time.
                    cur.restart();
                    return Ok(None);
                };
                return Ok(Some(Chunk {
                    file,
                    start,
                    end: cur.offset,
                    line_before,
                    lines,
                }));
            }
            if limit.is_some() {
                return Ok(None);
            }
            // At the end of this file: has the path moved on to another file?
            if !cur.rotated {
                match fs::metadata(&self.path) {
                    Ok(meta) if (meta.dev(), meta.ino()) != (cur.dev, cur.ino) => {
                        // Finish the old file: one more read, after this look.
                        cur.rotated = true;
                        continue;
                    }
                    _ => return Ok(None),
                }
            }
            // Rotated and nothing more in the old file: its incomplete last line will not be
            // completed by the writer; hand it out as the file's last line.
            if !cur.partial.is_empty() {
                cur.partial.push(b'\n');
                let i = cur.partial.len() - 1;
                let mut out = Vec::new();
                cur.take_line(i, &mut out);
                cur.offset -= 1; // the newline was ours, not the file's
                if let Some(file) = cur.id() {
                    return Ok(Some(Chunk {
                        file,
                        start,
                        end: cur.offset,
                        line_before,
                        lines: out,
                    }));
                }
            }
            self.events.push(Event::Rotated);
            self.current = Current::open(&self.path)?;
            if self.current.is_none() {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// Positions `cur` after its last complete line.
fn tailer_skip_to_end(cur: &mut Current) -> io::Result<()> {
    let mut sink = Vec::new();
    loop {
        sink.clear();
        cur.read_lines(&mut sink, 4096, None)?;
        if sink.is_empty() {
            return Ok(());
        }
    }
}

/// A file beside `path` (same directory, name starting with the path's name, e.g.
/// `access.log.1`) that is `id`'s device and inode: where a rename rotation put it.
fn find_renamed(path: &Path, id: FileId) -> io::Result<Option<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(other) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if other == name || !other.starts_with(name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.dev() == id.dev && meta.ino() == id.ino {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}
