//! The shipped sample, `data/sample.csv`, is exactly what the generator makes by default.

use traffic::csv::CsvReader;
use traffic::generate::{GenerateConfig, write_csv};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample.csv");

#[test]
fn shipped_sample_is_the_default_generator_output() {
    let shipped = std::fs::read(SAMPLE).unwrap_or_else(|e| panic!("reading {SAMPLE}: {e}"));
    let mut generated = Vec::new();
    write_csv(&GenerateConfig::default(), &mut generated).unwrap();
    assert!(
        shipped == generated,
        "data/sample.csv differs from the default generator output; regenerate it with \
         `cargo run -p traffic --example generate -- -o data/sample.csv` (see data/README.md)"
    );
}

#[test]
fn shipped_sample_reads_without_errors() {
    let reader = CsvReader::from_path(SAMPLE).unwrap();
    let (mut rows, mut suspicious) = (0, 0);
    for item in reader {
        let row = item.unwrap();
        rows += 1;
        suspicious += u32::from(row.event.suspicious);
    }
    assert_eq!(rows, 3000);
    // awk -F, 'NR>1 && $5+0==1 {n++} END {print n}' data/sample.csv   => 81
    assert_eq!(suspicious, 81);
}
