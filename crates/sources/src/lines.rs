//! Lines of bounded length from any reader, in constant memory; and [`open`] for paths.
//!
//! The reader keeps one buffer (a little over the longest allowed line) and hands out lines
//! as slices of it, without copying. A line longer than the limit is not kept: it is skipped
//! up to its end and reported as [`Line::TooLong`] with its number, and reading goes on.
//! A trailing `\r` is removed; the last line may lack its `\n`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The default longest line, in bytes (without the line end).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

const MIN_BUFFER: usize = 256 * 1024;

/// One line of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line within the limit, without its line end.
    Text {
        /// 1-based line number.
        line: u64,
        /// The bytes of the line.
        text: &'a [u8],
    },
    /// A line over the limit, skipped.
    TooLong {
        /// 1-based line number.
        line: u64,
        /// Its length in bytes (without the line end).
        len: u64,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Text(u64),
    TooLong(u64, u64),
}

/// Reads lines of at most `max_line` bytes from `R` (see the module documentation).
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    filled: usize,
    /// The current line, `buf[cur.0..cur.1]`.
    cur: (usize, usize),
    line: u64,
    /// Bytes of input before `buf[pos]`.
    offset: u64,
    max_line: usize,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    /// Lines of at most [`MAX_LINE_BYTES`].
    pub fn new(inner: R) -> Self {
        Self::with_max_line(inner, MAX_LINE_BYTES)
    }

    /// Lines of at most `max_line` bytes (at least 1).
    pub fn with_max_line(inner: R, max_line: usize) -> Self {
        Self::with_buffer(inner, max_line, MIN_BUFFER)
    }

    /// Lines of at most `max_line` bytes (at least 1), read through a buffer of `buffer` bytes
    /// (at least `max_line + 2`; the default is 256 KiB).
    pub fn with_buffer(inner: R, max_line: usize, buffer: usize) -> Self {
        let max_line = max_line.max(1);
        LineReader {
            inner,
            buf: vec![0; (max_line + 2).max(buffer)],
            pos: 0,
            filled: 0,
            cur: (0, 0),
            line: 0,
            offset: 0,
            max_line,
            eof: false,
        }
    }

    /// The longest line read, in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Number of the last line returned (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// Bytes of input consumed by the lines returned so far (where the next line starts).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next line, `None` at the end of the input.
    pub fn next_line(&mut self) -> Option<io::Result<Line<'_>>> {
        match self.advance() {
            Ok(None) => None,
            Ok(Some(Step::Text(line))) => Some(Ok(Line::Text {
                line,
                text: self.text(),
            })),
            Ok(Some(Step::TooLong(line, len))) => Some(Ok(Line::TooLong { line, len })),
            Err(e) => Some(Err(e)),
        }
    }

    /// The text of the last [`Step::Text`].
    pub(crate) fn text(&self) -> &[u8] {
        &self.buf[self.cur.0..self.cur.1]
    }

    /// Reads more input after `filled`; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn emit(&mut self, start: usize, end: usize, consumed: usize) -> Step {
        let mut e = end;
        if e > start && self.buf[e - 1] == b'\r' {
            e -= 1;
        }
        self.cur = (start, e);
        self.pos = start + consumed;
        self.offset += consumed as u64;
        self.line += 1;
        Step::Text(self.line)
    }

    pub(crate) fn advance(&mut self) -> io::Result<Option<Step>> {
        let mut scanned = self.pos;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..self.filled]) {
                let (start, end) = (self.pos, scanned + i);
                let text_len = end - start;
                // A `\r` before the `\n` does not count against the limit.
                let limit = self.max_line + usize::from(end > start && self.buf[end - 1] == b'\r');
                if text_len > limit {
                    self.pos = end + 1;
                    self.offset += (text_len + 1) as u64;
                    self.line += 1;
                    return Ok(Some(Step::TooLong(self.line, text_len as u64)));
                }
                return Ok(Some(self.emit(start, end, text_len + 1)));
            }
            let pending = self.filled - self.pos;
            if pending > self.max_line + 1 {
                return self.skip_long().map(Some);
            }
            // `fill` moves the pending bytes to the front of the buffer.
            let scanned_rel = self.filled - self.pos;
            if !self.fill()? {
                if self.filled == self.pos {
                    return Ok(None);
                }
                let (start, end) = (self.pos, self.filled);
                if end - start > self.max_line + usize::from(self.buf[end - 1] == b'\r') {
                    self.pos = end;
                    self.offset += (end - start) as u64;
                    self.line += 1;
                    return Ok(Some(Step::TooLong(self.line, (end - start) as u64)));
                }
                return Ok(Some(self.emit(start, end, end - start)));
            }
            scanned = self.pos + scanned_rel;
        }
    }

    /// Skips the rest of a line over the limit (its start is in the buffer, no `\n` there).
    fn skip_long(&mut self) -> io::Result<Step> {
        let mut len = (self.filled - self.pos) as u64;
        self.pos = self.filled;
        loop {
            if !self.fill()? {
                self.offset += len;
                self.line += 1;
                return Ok(Step::TooLong(self.line, len));
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
                len += i as u64;
                self.pos += i + 1;
                self.offset += len + 1;
                self.line += 1;
                return Ok(Step::TooLong(self.line, len));
            }
            len += (self.filled - self.pos) as u64;
            self.pos = self.filled;
        }
    }
}

/// Opens `path` for reading: `-` is standard input; gzip input (by its magic bytes, whatever
/// the name) is decompressed, concatenated members too.
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path)?)
    };
    maybe_gunzip(raw)
}

/// Decompresses `input` if it starts with the gzip magic bytes, else passes it through.
pub fn maybe_gunzip(mut input: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let chained: Box<dyn Read + Send> = Box::new(io::Cursor::new(head[..n].to_vec()).chain(input));
    if n == 2 && head == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(chained)))
    } else {
        Ok(chained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::with_max_line(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line() {
            out.push(match l.expect("in-memory reads do not fail") {
                Line::Text { line, text } => format!("{line}:{}", String::from_utf8_lossy(text)),
                Line::TooLong { line, len } => format!("{line}:too long {len}"),
            });
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_lose_their_line_ends() {
        assert_eq!(all(b"a\r\nbb\n\nccc", 10), ["1:a", "2:bb", "3:", "4:ccc"]);
    }

    #[test]
    fn a_too_long_line_is_an_error_for_that_line_only() {
        assert_eq!(
            all(b"abc\nabcdefgh\nab\nabcdefgh", 4),
            ["1:abc", "2:too long 8", "3:ab", "4:too long 8"]
        );
    }

    #[test]
    fn a_line_exactly_at_the_limit_is_read_with_or_without_cr() {
        assert_eq!(
            all(b"abcd\r\nabcd\nabcd", 4),
            ["1:abcd", "2:abcd", "3:abcd"]
        );
    }

    /// A reader that returns one byte per read, to cross every buffer boundary.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn lines_longer_than_the_buffer_are_skipped_in_constant_memory() {
        let mut input = vec![b'x'; 3 * MIN_BUFFER];
        input.extend_from_slice(b"\nok\n");
        input.extend(vec![b'y'; MIN_BUFFER + 7]);
        let mut r = LineReader::with_max_line(Trickle(&input), 100);
        let mut got = Vec::new();
        while let Some(l) = r.next_line() {
            got.push(format!("{:?}", l.expect("no error")));
        }
        assert_eq!(r.buf.len(), MIN_BUFFER, "the buffer never grows");
        assert_eq!(
            got,
            [
                format!("TooLong {{ line: 1, len: {} }}", 3 * MIN_BUFFER),
                "Text { line: 2, text: [111, 107] }".to_string(),
                format!("TooLong {{ line: 3, len: {} }}", MIN_BUFFER + 7),
            ]
        );
        assert_eq!(r.offset(), input.len() as u64);
    }

    #[test]
    fn a_small_buffer_reads_the_same_lines() {
        let input = b"a\r\nbbbb\ncc\r\ntoolongline\n\nd\r";
        let mut want = Vec::new();
        let mut r = LineReader::with_max_line(&input[..], 4);
        while let Some(l) = r.next_line() {
            want.push(format!("{:?}", l.expect("no error")));
        }
        for buffer in 0..16 {
            let mut r = LineReader::with_buffer(Trickle(input), 4, buffer);
            let mut got = Vec::new();
            while let Some(l) = r.next_line() {
                got.push(format!("{:?}", l.expect("no error")));
            }
            assert_eq!(got, want, "buffer {buffer}");
            assert_eq!(r.offset(), input.len() as u64);
        }
        assert_eq!(want.len(), 6);
    }

    #[test]
    fn offsets_point_after_each_line() {
        let mut r = LineReader::new(&b"ab\r\ncd\nef"[..]);
        let mut offsets = Vec::new();
        while r.next_line().is_some() {
            offsets.push(r.offset());
        }
        assert_eq!(offsets, [4, 7, 9]);
    }

    #[test]
    fn gzip_input_is_recognised_by_its_magic_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"one\ntwo\n").expect("write to memory");
        let mut data = gz.finish().expect("finish");
        // A second member, as `cat a.gz b.gz` makes.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"three\n").expect("write to memory");
        data.extend(gz.finish().expect("finish"));
        let mut text = String::new();
        maybe_gunzip(Box::new(io::Cursor::new(data)))
            .expect("gzip")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "one\ntwo\nthree\n");
        let mut plain = String::new();
        maybe_gunzip(Box::new(&b"x"[..]))
            .expect("plain")
            .read_to_string(&mut plain)
            .expect("read");
        assert_eq!(plain, "x");
    }

    #[test]
    fn open_reads_a_gz_file() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("sources-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("access.log.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a\nb\n").expect("write");
        std::fs::write(&path, gz.finish().expect("finish")).expect("write file");
        let mut text = String::new();
        open(&path)
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(text, "a\nb\n");
    }
}
