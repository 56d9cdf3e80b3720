//! The generated access log: every line parses, the pool is used, the disorder is there.

use std::collections::HashSet;

use sources::clf::{ClfParser, Variant};
use sources::generate::{Config, combined_log};
use sources::suspicious::Rules;
use sources::{Format, LineReader, Records, detect};

#[test]
fn generated_lines_all_parse_use_the_pool_and_begin_out_of_order() {
    let cfg = Config {
        lines: 20_000,
        distinct_ips: 1_000,
        ..Config::default()
    };
    let log = combined_log(cfg);
    assert_eq!(detect(&log), Some(Format::Combined));
    let rules = Rules::default();
    let mut records = Records::new(LineReader::new(&log[..]), ClfParser::new(Variant::Combined));
    let (mut n, mut earlier, mut flagged, mut v6, mut no_method) = (0, 0, 0, 0, 0);
    let mut ips = HashSet::new();
    let mut last = f64::MIN;
    while let Some(r) = records.next_record() {
        let mut r = r.unwrap_or_else(|e| panic!("generated line does not parse: {e}"));
        n += 1;
        assert_eq!(r.line, n);
        earlier += u64::from(r.timestamp < last);
        last = r.timestamp;
        ips.insert(r.ip);
        v6 += u64::from(r.ip.is_ipv6());
        no_method += u64::from(r.method.is_none());
        rules.apply(&mut r);
        flagged += u64::from(r.suspicious == Some(true));
    }
    assert_eq!(n, 20_000);
    assert!(ips.len() > 990, "{} distinct of 1000", ips.len());
    assert!(
        earlier > 1_000,
        "only {earlier} lines stamped before the previous one"
    );
    assert!((200..1_000).contains(&flagged), "{flagged} flagged");
    assert!(v6 > 100, "{v6} IPv6 lines");
    assert!(no_method > 0, "some malformed requests");
}
