//! Line and cell splitting for [`super::CsvReader`], in bounded memory: one line is one
//! row, whatever its quotes, and no line costs more than the read buffer and `max_line`
//! bytes (see the parent module's docs for the rules).

use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;

/// The UTF-8 byte order mark, skipped at the start of the input.
pub(super) const BOM: &[u8] = b"\xef\xbb\xbf";

/// Size of the read buffer.
pub(super) const READ_BUFFER_BYTES: usize = 64 * 1024;

/// One line as [`Lines::next_line`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// A line that fits; its text is in [`Lines::text`].
    Fits {
        /// 1-based line number.
        number: u64,
    },
    /// A line longer than the limit; its text was dropped.
    TooLong {
        /// 1-based line number.
        number: u64,
        /// Its length in bytes, without the line end.
        len: u64,
    },
}

/// Passes bytes through, less a UTF-8 BOM at the very start.
struct SkipBom<R> {
    inner: R,
    /// The first bytes of the input (up to three), read to look for a BOM.
    head: [u8; 3],
    /// How many of `head` were read, and how many of those were passed on (or skipped).
    head_len: usize,
    head_pos: usize,
    /// The head is complete (three bytes or the whole input) and was checked.
    checked: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            checked: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.checked {
            match self.inner.read(&mut self.head[self.head_len..]) {
                Ok(0) => self.checked = true,
                Ok(n) => {
                    self.head_len += n;
                    self.checked = self.head_len == self.head.len();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.checked && self.head[..self.head_len] == *BOM {
                self.head_pos = self.head_len;
            }
        }
        if self.head_pos < self.head_len {
            let rest = &self.head[self.head_pos..self.head_len];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.head_pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Splits input into lines (LF, CRLF or lone CR), counting them, in bounded memory: the read
/// buffer and a line buffer of at most `max_line` bytes are all it holds.
pub(super) struct Lines<R> {
    input: BufReader<SkipBom<R>>,
    /// The current line's text, when it fits.
    text: Vec<u8>,
    pub(super) max_line: usize,
    /// Number of the next line to be read.
    next_number: u64,
    /// The last line ended with a CR: a LF that comes next belongs to that line end.
    after_cr: bool,
}

impl<R: Read> Lines<R> {
    pub(super) fn new(input: R, max_line: usize) -> Self {
        Self {
            input: BufReader::with_capacity(READ_BUFFER_BYTES, SkipBom::new(input)),
            text: Vec::new(),
            max_line,
            next_number: 1,
            after_cr: false,
        }
    }

    /// The text of the last line read that fits.
    pub(super) fn text(&self) -> &[u8] {
        &self.text
    }

    /// Reads the next line; `None` at the end of the input.
    pub(super) fn next_line(&mut self) -> io::Result<Option<Line>> {
        self.text.clear();
        let number = self.next_number;
        let mut len: u64 = 0;
        let mut started = false;
        // Whitespace only so far: such a line is blank, however long.
        let mut blank = true;
        loop {
            let buffer = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buffer.is_empty() {
                if !started {
                    return Ok(None);
                }
                break;
            }
            if std::mem::take(&mut self.after_cr) && buffer[0] == b'\n' {
                self.input.consume(1);
                continue;
            }
            started = true;
            let (piece, end) = match memchr::memchr2(b'\n', b'\r', buffer) {
                Some(at) => (at, Some(buffer[at])),
                None => (buffer.len(), None),
            };
            len += piece as u64;
            blank = blank && buffer[..piece].iter().all(u8::is_ascii_whitespace);
            if len <= self.max_line as u64 {
                // Grow by doubling, but never past the limit: the capacity stays <= max_line.
                let needed = self.text.len() + piece;
                if needed > self.text.capacity() {
                    let target = needed.max(self.text.capacity() * 2).min(self.max_line);
                    self.text.reserve_exact(target - self.text.len());
                }
                self.text.extend_from_slice(&buffer[..piece]);
            }
            self.input.consume(piece + usize::from(end.is_some()));
            if let Some(end) = end {
                self.after_cr = end == b'\r';
                break;
            }
        }
        self.next_number += 1;
        if len > self.max_line as u64 {
            self.text.clear();
            if !blank {
                return Ok(Some(Line::TooLong { number, len }));
            }
        }
        Ok(Some(Line::Fits { number }))
    }

    /// Bytes held by the buffers.
    pub(super) fn capacity(&self) -> usize {
        self.input.capacity() + self.text.capacity()
    }
}

/// Splits one line into cells (see the module docs): records the value range of each of the
/// first `keep` cells in `cells` and returns how many cells the line has, or why it cannot
/// be split. Memory: at most `keep` ranges, whatever the line.
pub(super) fn split_cells(
    line: &[u8],
    keep: usize,
    cells: &mut Vec<Range<usize>>,
) -> Result<usize, String> {
    cells.clear();
    let mut count = 0;
    let mut at = 0;
    loop {
        let lead = line[at..]
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .map_or(line.len(), |n| at + n);
        let (value, comma) = if line.get(lead) == Some(&b'"') {
            let close = closing_quote(line, lead + 1).ok_or_else(|| {
                format!(
                    "cell {} opens a quote that does not close on this line",
                    count + 1
                )
            })?;
            let comma = memchr::memchr(b',', &line[close + 1..]).map(|n| close + 1 + n);
            let end = comma.unwrap_or(line.len());
            if line[close + 1..end].trim_ascii().is_empty() {
                (trimmed(line, lead + 1..close), comma)
            } else {
                // Text after the closing quote: keep the cell as written, quotes and all.
                (trimmed(line, at..end), comma)
            }
        } else {
            let comma = memchr::memchr(b',', &line[at..]).map(|n| at + n);
            (trimmed(line, at..comma.unwrap_or(line.len())), comma)
        };
        if count < keep {
            cells.push(value);
        }
        count += 1;
        match comma {
            Some(comma) => at = comma + 1,
            None => return Ok(count),
        }
    }
}

/// The index of the quote that closes a quoted cell whose text starts at `from` (`""` is an
/// escaped quote), if it is on this line.
fn closing_quote(line: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let quote = from + memchr::memchr(b'"', line.get(from..)?)?;
        if line.get(quote + 1) == Some(&b'"') {
            from = quote + 2;
        } else {
            return Some(quote);
        }
    }
}

/// `range` of `line` without leading and trailing ASCII whitespace.
fn trimmed(line: &[u8], range: Range<usize>) -> Range<usize> {
    let text = &line[range.clone()];
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |n| n + 1);
    range.start + start..range.start + end
}
