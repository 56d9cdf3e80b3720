//! Streaming CSV reader for traffic rows. (Being written: see the API below.)

use std::io::Read;

use crate::event::Event;

/// One usable row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number in the file where the row starts (the header is line 1).
    pub line: u64,
    /// The parsed event.
    pub event: Event,
}

/// Why reading stopped or a row was skipped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A row that cannot be used; reading can go on with the next one.
    #[error("line {line}: {reason}")]
    Row {
        /// 1-based line number.
        line: u64,
        /// What is wrong, e.g. `timestamp: "17369x9120" is neither ...`.
        reason: String,
    },
    /// The header lacks a needed column or is not a header at all; fatal.
    #[error("header: {0}")]
    Header(String),
    /// The underlying reader failed; fatal.
    #[error("reading CSV: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// True when the error concerns one row only and reading may continue.
    pub fn is_row(&self) -> bool {
        matches!(self, ReadError::Row { .. })
    }
}

/// Reads traffic rows one at a time, in constant memory.
pub struct CsvReader<R: Read> {
    _inner: R,
}

impl<R: Read> CsvReader<R> {
    /// Reads and maps the header.
    pub fn new(reader: R) -> Result<Self, ReadError> {
        let _ = reader;
        todo!("csv reader")
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Row, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        todo!("csv reader")
    }
}
