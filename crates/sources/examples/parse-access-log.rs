//! Parses a log file (or `-`, `.gz`) end to end and prints the count and lines/s:
//! `cargo run --release -p sources --example parse-access-log -- FILE [FORMAT]`.
//! The format is detected from the first 64 KiB when not given.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use sources::suspicious::Rules;
use sources::{AnyParser, Format, LineReader, ParseError, Records, detect, open};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: parse-access-log FILE [FORMAT]");
        return ExitCode::from(2);
    };
    let t = Instant::now();
    let mut input = match open(Path::new(path)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut head = vec![0; 64 * 1024];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    head.truncate(n);
    let format = match args.get(1) {
        Some(f) => match f.parse::<Format>() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => match detect(&head) {
            Some(f) => f,
            None => {
                eprintln!("error: {path}: format not recognised");
                return ExitCode::FAILURE;
            }
        },
    };
    let parser = match AnyParser::new(format, &[]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rules = Rules::default();
    let reader = LineReader::new(std::io::Cursor::new(head).chain(input));
    let mut records = Records::new(reader, parser);
    let (mut ok, mut bad, mut suspicious) = (0u64, 0u64, 0u64);
    while let Some(r) = records.next_record() {
        match r {
            Ok(mut r) => {
                rules.apply(&mut r);
                ok += 1;
                suspicious += u64::from(r.suspicious == Some(true));
            }
            Err(ParseError::Line(_)) => bad += 1,
            Err(ParseError::Io(e)) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let lines = records.lines().line_number();
    println!(
        "{format}: {lines} lines, {ok} records, {bad} errors, {suspicious} suspicious in {secs:.3} s: {:.0} lines/s",
        lines as f64 / secs
    );
    ExitCode::SUCCESS
}
