//! Reads the course's own CSV end to end through the public API.

use traffic::csv::CsvReader;

/// The course file lives outside the repository, next to it in `../shared/data/`.
const COURSE_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ip_addresses.csv"
);

#[test]
fn course_file_reads_completely_without_errors() {
    let reader = CsvReader::from_path(COURSE_FILE).unwrap_or_else(|e| {
        panic!(
            "the course file is expected at {COURSE_FILE} (../shared/data/ip_addresses.csv \
             next to the repository): {e}"
        )
    });
    assert_eq!(
        reader.columns().to_string(),
        "ip=\"ip address\" (col 1), latitude=\"Latitude\" (col 2), \
         longitude=\"Longitude\" (col 3), timestamp=\"Timestamp\" (col 4), \
         suspicious=\"suspicious\" (col 5)"
    );

    let (mut rows, mut errors, mut suspicious) = (0u64, Vec::new(), 0u64);
    let (mut first, mut last) = (None, None);
    for item in reader {
        match item {
            Ok(row) => {
                rows += 1;
                assert_eq!(row.line, rows + 1, "one row per line after the header");
                suspicious += u64::from(row.event.suspicious);
                first.get_or_insert(row.event.clone());
                last = Some(row.event);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }

    assert_eq!(errors, Vec::<String>::new());
    assert_eq!(rows, 2940);
    let (first, last) = (first.unwrap(), last.unwrap());
    assert_eq!(first.ip.to_string(), "173.198.105.40");
    assert_eq!(first.timestamp, 1_736_919_120.0);
    assert_eq!(last.ip.to_string(), "67.144.142.0");
    assert_eq!(last.timestamp, 1_736_919_720.0);
    // Counted independently of this crate:
    //   awk -F, 'NR>1 && $5+0==1 {n++} END {print n}' ../shared/data/ip_addresses.csv   => 77
    assert_eq!(suspicious, 77);
}
