//! Parser throughput on a generated `combined` log (1,000,000 lines by default; set
//! `BENCH_LINES`): lines only, parse, parse + suspicious rules, parse + owned records.
//! Prints lines/s, best of three runs on one core. `cargo bench -p sources --bench parse`.

use std::hint::black_box;
use std::time::Instant;

use sources::clf::{ClfParser, Variant};
use sources::generate::{Config, combined_log};
use sources::suspicious::Rules;
use sources::{LineReader, Records};

fn best<F: FnMut() -> u64>(name: &str, lines: u64, mut f: F) {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let n = black_box(f());
        assert_eq!(n, lines, "{name}: every line counted");
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name:<28} {:>12.0} lines/s  ({:.1} ns/line)",
        lines as f64 / best,
        best * 1e9 / lines as f64
    );
}

fn main() {
    let lines: u64 = std::env::var("BENCH_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let log = combined_log(Config {
        lines,
        ..Config::default()
    });
    println!(
        "generated combined log: {lines} lines, {:.1} MB",
        log.len() as f64 / 1e6
    );

    best("lines only", lines, || {
        let mut r = LineReader::new(&log[..]);
        let mut n = 0;
        while let Some(l) = r.next_line() {
            black_box(l.ok());
            n += 1;
        }
        n
    });
    best("parse combined", lines, || {
        let mut r = Records::new(LineReader::new(&log[..]), ClfParser::new(Variant::Combined));
        let mut n = 0;
        while let Some(rec) = r.next_record() {
            black_box(rec.expect("generated lines parse"));
            n += 1;
        }
        n
    });
    let rules = Rules::default();
    best("parse combined + rules", lines, || {
        let mut r = Records::new(LineReader::new(&log[..]), ClfParser::new(Variant::Combined));
        let mut n = 0;
        while let Some(rec) = r.next_record() {
            let mut rec = rec.expect("generated lines parse");
            rules.apply(&mut rec);
            black_box(rec);
            n += 1;
        }
        n
    });
    best("parse combined, owned Record", lines, || {
        let mut n = 0;
        for r in Records::new(LineReader::new(&log[..]), ClfParser::new(Variant::Combined)) {
            black_box(r.expect("generated lines parse"));
            n += 1;
        }
        n
    });
}
