//! Each format parsed from fixtures, awkward lines included.

use std::net::IpAddr;

use sources::{AnyParser, Format, LineError, LineReader, ParseError, Record, Records, detect};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str, format: Format) -> Vec<Result<Record, LineError>> {
    let parser = AnyParser::new(format, &[]).expect("no key map");
    Records::new(LineReader::new(&fixture(name)[..]), parser)
        .map(|r| match r {
            Ok(r) => Ok(r),
            Err(ParseError::Line(e)) => Err(e),
            Err(ParseError::Io(e)) => panic!("in-memory read failed: {e}"),
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn ok(r: &Result<Record, LineError>) -> &Record {
    r.as_ref()
        .unwrap_or_else(|e| panic!("expected a record, got {e}"))
}

fn err_at(r: &Result<Record, LineError>, line: u64, needle: &str) {
    match r {
        Err(e) => {
            assert_eq!(e.line, line, "{e}");
            assert!(e.reason.contains(needle), "`{}` lacks `{needle}`", e.reason);
        }
        Ok(r) => panic!("expected an error on line {line}, got {r:?}"),
    }
}

#[test]
fn combined_fixture_reads_ipv6_dashes_escapes_and_garbage_and_names_bad_lines() {
    let got = parse("combined.log", Format::Combined);
    assert_eq!(got.len(), 13, "the blank line 6 is skipped");

    let r = ok(&got[0]);
    assert_eq!(
        *r,
        Record {
            line: 1,
            ip: ip("203.0.113.9"),
            timestamp: 971_211_336.0,
            bytes: Some(2326),
            status: Some(200),
            method: Some("GET".into()),
            path: Some("/apache_pb.gif".into()),
            protocol: Some("HTTP/1.0".into()),
            dest_ip: None,
            src_port: None,
            dest_port: None,
            user_agent: Some("Mozilla/4.08 [en] (Win98; I ;Nav)".into()),
            suspicious: None,
        }
    );
    let r = ok(&got[1]);
    assert_eq!(r.ip, ip("2001:db8:85a3::8a2e:370:7334"));
    assert_eq!((r.status, r.bytes), (Some(302), None), "`-` bytes is none");
    assert_eq!(r.path.as_deref(), Some("/api/v1/login?next=%2F"));
    assert_eq!(r.protocol.as_deref(), Some("HTTP/2.0"));

    let r = ok(&got[2]);
    assert_eq!(r.timestamp, 971_211_338.0);
    assert_eq!(
        r.user_agent.as_deref(),
        Some(r#"Mozilla/5.0 ("quoted" build) Gecko"#)
    );

    for (i, bytes) in [(3, Some(0)), (4, Some(157))] {
        let r = ok(&got[i]);
        assert_eq!(
            (r.method.as_deref(), r.path.as_deref()),
            (None, None),
            "line {}",
            r.line
        );
        assert_eq!(
            (r.status, r.bytes, r.user_agent.as_deref()),
            (Some(400), bytes, None)
        );
    }

    let r = ok(&got[5]);
    assert_eq!(
        (r.line, r.ip),
        (7, ip("192.0.2.10")),
        "IPv4-mapped becomes IPv4"
    );
    assert_eq!(r.path.as_deref(), Some("/.env"));

    let r = ok(&got[6]);
    assert_eq!(
        (r.line, r.bytes, r.user_agent.as_deref()),
        (8, Some(612), None),
        "a common line"
    );

    let r = ok(&got[7]);
    assert_eq!(r.line, 9);
    assert_eq!(
        r.path.as_deref(),
        Some(r#"/a"b"#),
        "user with a space, escaped quote in path"
    );
    assert_eq!(
        r.user_agent.as_deref(),
        Some("x"),
        "extra trailing field ignored"
    );

    err_at(&got[8], 10, "not an IP address");
    err_at(&got[9], 11, "date");
    err_at(&got[10], 12, "no closing quote");
    err_at(&got[11], 13, "status");
    err_at(&got[12], 14, "bytes");
}

#[test]
fn common_fixture_reads_dash_bytes_http09_requests_and_missing_bytes() {
    let got = parse("common.log", Format::Common);
    let r = ok(&got[0]);
    assert_eq!(
        (r.ip, r.timestamp, r.bytes),
        (ip("127.0.0.1"), 971_211_336.0, Some(2326))
    );
    assert_eq!(r.user_agent, None);
    let r = ok(&got[1]);
    assert_eq!(
        (r.ip, r.method.as_deref(), r.bytes),
        (ip("2001:db8::1"), Some("HEAD"), None)
    );
    let r = ok(&got[2]);
    assert_eq!(
        r.timestamp, 1_709_247_599.0,
        "+0100 is an hour ahead of UTC"
    );
    assert_eq!(
        (r.path.as_deref(), r.protocol.as_deref()),
        (Some("/x"), None)
    );
    let r = ok(&got[3]);
    assert_eq!(
        (r.status, r.bytes),
        (None, None),
        "`-` status, bytes missing"
    );
}

#[test]
fn vcombined_fixture_skips_the_virtual_host_with_or_without_port() {
    let got = parse("vcombined.log", Format::VCombined);
    assert_eq!(ok(&got[0]).ip, ip("203.0.113.9"));
    let r = ok(&got[1]);
    assert_eq!(
        (r.ip, r.status, r.bytes),
        (ip("2001:db8::2"), Some(301), None)
    );
    assert_eq!(r.user_agent.as_deref(), Some(r#"Mozilla/5.0 ("x")"#));
    let r = ok(&got[2]);
    assert_eq!(
        (r.ip, r.user_agent.as_deref()),
        (ip("203.0.113.10"), Some("sqlmap/1.8"))
    );
    err_at(&got[3], 4, "no client address");
}

#[test]
fn caddy_fixture_prefers_client_ip_and_falls_back_to_remote_ip() {
    let got = parse("caddy.log", Format::Caddy);
    let r = ok(&got[0]);
    assert_eq!(
        *r,
        Record {
            line: 1,
            ip: ip("203.0.113.9"),
            timestamp: 1_646_861_401.524_102_4,
            bytes: Some(10900),
            status: Some(200),
            method: Some("GET".into()),
            path: Some("/".into()),
            protocol: Some("HTTP/2.0".into()),
            dest_ip: None,
            src_port: None,
            dest_port: None,
            user_agent: Some("curl/7.82.0".into()),
            suspicious: None,
        }
    );
    let r = ok(&got[1]);
    assert_eq!((r.ip, r.timestamp), (ip("2001:db8::7"), 1_646_861_402.25));
    assert_eq!(
        (r.path.as_deref(), r.bytes, r.user_agent.as_deref()),
        (Some(r#"/.git/config?x="y""#), Some(0), None)
    );
    err_at(&got[2], 3, "not an IP address");
    err_at(&got[3], 4, "no client address");
    err_at(&got[4], 5, "not JSON");
}

#[test]
fn nginx_json_fixture_reads_string_numbers_request_lines_and_any_date() {
    let got = parse("nginx.json", Format::NginxJson);
    let r = ok(&got[0]);
    assert_eq!(
        (r.ip, r.timestamp, r.status, r.bytes),
        (ip("203.0.113.9"), 971_211_336.0, Some(200), Some(612))
    );
    assert_eq!(
        (
            r.method.as_deref(),
            r.path.as_deref(),
            r.protocol.as_deref()
        ),
        (Some("GET"), Some(r#"/index.html?a="b""#), Some("HTTP/1.1"))
    );
    assert_eq!(r.user_agent.as_deref(), Some(r#"Mozilla/5.0 ("quoted")"#));
    assert_eq!(r.dest_ip, Some(ip("192.0.2.1")));
    let r = ok(&got[1]);
    assert_eq!(
        (r.timestamp, r.status, r.bytes, r.user_agent.as_deref()),
        (971_211_337.0, Some(304), None, None)
    );
    assert_eq!(
        (r.method.as_deref(), r.protocol.as_deref()),
        (Some("HEAD"), Some("HTTP/2.0"))
    );
    let r = ok(&got[2]);
    assert_eq!(
        (r.timestamp, r.method.as_deref()),
        (971_211_338.25, None),
        "msec, `-` request"
    );
    err_at(&got[3], 4, "not a status");
    err_at(&got[4], 5, "no timestamp");
    err_at(&got[5], 6, "not a JSON object");
}

#[test]
fn a_key_map_reads_json_with_other_names() {
    let line = br#"{"who":{"addr":"203.0.113.1"},"when":"2000-10-10T20:55:36Z","code":201,"flag":true,"ua":["a","b"]}"#;
    let map = sources::json_map::parse_map_arg(
        "ip=who.addr,timestamp=when,status=code,suspicious=flag,user_agent=ua",
    )
    .expect("valid map");
    let parser = AnyParser::new(Format::NginxJson, &map).expect("json format");
    let got: Vec<_> = Records::new(LineReader::new(&line[..]), parser).collect();
    let r = got[0].as_ref().expect("record");
    assert_eq!(
        (r.ip, r.timestamp, r.status, r.suspicious),
        (ip("203.0.113.1"), 971_211_336.0, Some(201), Some(true))
    );
    assert_eq!(r.user_agent.as_deref(), Some("a"));
    assert!(
        AnyParser::new(Format::Combined, &map).is_err(),
        "no key map for access logs"
    );
}

#[test]
fn detection_names_each_fixture_format() {
    for (name, format) in [
        ("combined.log", Format::Combined),
        ("common.log", Format::Common),
        ("vcombined.log", Format::VCombined),
        ("caddy.log", Format::Caddy),
        ("nginx.json", Format::NginxJson),
    ] {
        assert_eq!(detect(&fixture(name)), Some(format), "{name}");
    }
}

#[test]
fn detection_ignores_a_cut_last_line_and_refuses_unknown_text() {
    let mut sample = fixture("common.log");
    sample.extend_from_slice(
        br#"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "Moz"#,
    );
    assert_eq!(
        detect(&sample),
        Some(Format::Common),
        "a cut combined line does not count"
    );
    assert_eq!(detect(b"ts,lat,lon\n1,2,3\n"), None);
    assert_eq!(detect(b""), None);
    assert_eq!(detect(b"\n\n  \n"), None);
}

#[test]
fn the_default_rules_flag_fixture_probes_and_scanners() {
    let rules = sources::suspicious::Rules::default();
    let text = fixture("combined.log");
    let mut records = Records::new(
        LineReader::new(&text[..]),
        AnyParser::new(Format::Combined, &[]).expect("parser"),
    );
    let mut flagged = Vec::new();
    while let Some(r) = records.next_record() {
        if let Ok(mut r) = r {
            rules.apply(&mut r);
            if r.suspicious == Some(true) {
                flagged.push(r.line);
            }
        }
    }
    assert_eq!(flagged, [7]);
}

#[test]
fn a_too_long_line_is_one_error_and_the_next_line_still_parses() {
    let good = br#"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "x""#;
    let mut input = good.to_vec();
    input.push(b'\n');
    input.extend_from_slice(&good[..good.len() - 1]);
    input.extend(std::iter::repeat_n(b'y', 300));
    input.extend_from_slice(b"\"\n");
    input.extend_from_slice(good);
    let parser = AnyParser::new(Format::Combined, &[]).expect("parser");
    let got: Vec<_> = Records::new(LineReader::with_max_line(&input[..], 200), parser)
        .map(|r| r.map(|r| r.line).map_err(|e| e.to_string()))
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().ok(), Some(&1));
    let e = got[1].as_ref().expect_err("too long");
    assert!(
        e.starts_with("line 2: line is longer than 200 bytes"),
        "{e}"
    );
    assert_eq!(got[2].as_ref().ok(), Some(&3));
}

#[test]
fn sshd_fixture_reads_failures_only_from_syslog_iso_and_journal_lines() {
    let got = parse("auth.log", Format::Sshd);
    let lines: Vec<u64> = got
        .iter()
        .map(|r| match r {
            Ok(r) => r.line,
            Err(e) => e.line,
        })
        .collect();
    assert_eq!(
        lines,
        [2, 3, 4, 6, 7, 9, 10],
        "other programs and accepted logins skipped"
    );
    let r = ok(&got[0]);
    assert_eq!(r.ip, ip("203.0.113.9"));
    assert_eq!(r.protocol.as_deref(), Some("SSH"));
    assert_eq!(r.suspicious, Some(true));
    assert_eq!(ok(&got[1]).ip, ip("198.51.100.7"));
    assert_eq!(
        ok(&got[3]).ip,
        ip("2001:db8::7"),
        "quoted user names and IPv6"
    );
    assert_eq!(ok(&got[4]).timestamp, 1_736_919_127.25);
    err_at(&got[5], 9, "ip:");
    let j = ok(&got[6]);
    assert_eq!((j.ip, j.timestamp), (ip("203.0.113.11"), 1_736_919_130.5));
}

#[test]
fn zeek_tsv_fixture_reads_its_header_and_names_bad_lines() {
    let got = parse("conn.log", Format::Zeek);
    assert_eq!(got.len(), 4, "header lines are skipped");
    let r = ok(&got[0]);
    assert_eq!(r.line, 9);
    assert_eq!(
        (r.ip, r.dest_ip),
        (ip("203.0.113.9"), Some(ip("192.0.2.10")))
    );
    assert_eq!(r.timestamp, 1_736_919_123.1);
    assert_eq!(r.protocol.as_deref(), Some("SSL"));
    assert_eq!(r.bytes, Some(517 + 4130));
    let v6 = ok(&got[1]);
    assert_eq!((v6.ip, v6.bytes), (ip("2001:db8::9"), Some(40)));
    assert_eq!(v6.protocol.as_deref(), Some("DNS"));
    let unset = ok(&got[2]);
    assert_eq!(
        (unset.protocol.as_deref(), unset.bytes),
        (Some("TCP"), None)
    );
    err_at(&got[3], 12, "ip:");
}

#[test]
fn zeek_json_fixture_reads_numbers_and_iso_times() {
    let got = parse("conn.json", Format::Zeek);
    assert_eq!(got.len(), 4);
    let r = ok(&got[0]);
    assert_eq!((r.ip, r.bytes), (ip("203.0.113.9"), Some(4647)));
    assert_eq!(r.protocol.as_deref(), Some("SSL"));
    assert_eq!(ok(&got[1]).timestamp, 1_736_919_124.25);
    assert_eq!(ok(&got[2]).protocol.as_deref(), Some("TCP"));
    err_at(&got[3], 4, "ip:");
}

#[test]
fn tshark_fields_fixture_from_a_real_capture_reads_ipv4_and_ipv6() {
    let got = parse("tshark-fields.csv", Format::TsharkFields);
    assert_eq!(got.len(), 14, "14 packets, the header skipped");
    let r = ok(&got[0]);
    assert_eq!(
        (r.line, r.ip, r.dest_ip),
        (2, ip("127.0.0.1"), Some(ip("127.0.0.1")))
    );
    assert_eq!((r.bytes, r.protocol.as_deref()), (Some(49), Some("UDP")));
    assert!((r.timestamp - 1_795_977_479.605_024).abs() < 1e-5);
    assert_eq!(ok(&got[3]).ip, ip("::1"));
    assert_eq!(ok(&got[7]).protocol.as_deref(), Some("HTTP"));
    assert!(got.iter().all(Result::is_ok));
}

#[test]
fn tshark_ek_fixture_from_a_real_capture_skips_index_lines() {
    let got = parse("tshark.ek.json", Format::TsharkEk);
    assert_eq!(got.len(), 5, "10 lines, every other one an index line");
    let r = ok(&got[0]);
    assert_eq!((r.line, r.ip, r.bytes), (2, ip("127.0.0.1"), Some(49)));
    assert_eq!(r.protocol.as_deref(), Some("UDP"));
    assert!((r.timestamp - 1_795_977_479.605_024).abs() < 1e-5);
    let v6 = ok(&got[3]);
    assert_eq!(
        (v6.ip, v6.dest_ip, v6.bytes),
        (ip("::1"), Some(ip("::1")), Some(70))
    );
}

#[test]
fn detection_names_the_new_formats() {
    for (name, format) in [
        ("auth.log", Format::Sshd),
        ("conn.log", Format::Zeek),
        ("conn.json", Format::Zeek),
        ("tshark-fields.csv", Format::TsharkFields),
        ("tshark.ek.json", Format::TsharkEk),
    ] {
        assert_eq!(detect(&fixture(name)), Some(format), "{name}");
    }
}

/// Time, source, destination, length and protocol column of each packet, as tshark read them.
fn tshark_oracle() -> Vec<(f64, IpAddr, IpAddr, u64, String)> {
    let text = String::from_utf8(fixture("tshark-fields.csv")).expect("UTF-8");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let (src, dst) = if f[1].is_empty() {
                (f[3], f[4])
            } else {
                (f[1], f[2])
            };
            (
                f[0].parse().expect("time"),
                ip(src),
                ip(dst),
                f[5].parse().expect("length"),
                f[6].to_owned(),
            )
        })
        .collect()
}

fn capture(name: &str) -> Vec<Record> {
    sources::pcap::PcapRecords::new(&fixture(name)[..])
        .expect("a capture")
        .map(|r| r.expect("every packet reads").to_record())
        .collect()
}

#[test]
fn pcapng_with_nanosecond_resolution_agrees_with_tshark_packet_by_packet() {
    let got = capture("lo-nanosecond.pcapng");
    let want = tshark_oracle();
    assert_eq!(got.len(), want.len());
    for (i, (r, (t, src, dst, len, column))) in got.iter().zip(&want).enumerate() {
        assert_eq!(r.line, i as u64 + 1);
        assert_eq!(
            (r.ip, r.dest_ip, r.bytes),
            (*src, Some(*dst), Some(*len)),
            "packet {}",
            i + 1
        );
        // f64 keeps about 0.2 µs at this epoch; a microsecond reading would be off by up to 1 µs.
        assert!(
            (r.timestamp - t).abs() < 5e-7,
            "packet {}: {} vs {t}",
            i + 1,
            r.timestamp
        );
        let transport = if column == "HTTP" {
            "TCP"
        } else {
            column.as_str()
        };
        assert_eq!(r.protocol.as_deref(), Some(transport));
    }
}

#[test]
fn microsecond_pcap_reads_the_same_packets_to_the_microsecond() {
    let got = capture("lo-microsecond.pcap");
    let want = tshark_oracle();
    assert_eq!(got.len(), want.len());
    for (r, (t, src, _, len, _)) in got.iter().zip(&want) {
        assert_eq!((r.ip, r.bytes), (*src, Some(*len)));
        assert!((r.timestamp - t).abs() < 1.5e-6);
        assert!(
            (r.timestamp * 1e6 - (r.timestamp * 1e6).round()).abs() < 0.3,
            "whole microseconds"
        );
    }
}

#[test]
fn tshark_json_fixture_from_a_real_capture_is_streamed_packet_by_packet() {
    let got: Vec<Record> =
        sources::tshark_json::TsharkJsonRecords::new(&fixture("tshark.json")[..])
            .map(|r| r.expect("every packet reads").to_record())
            .collect();
    let want = tshark_oracle();
    assert_eq!(got.len(), 4, "the fixture holds the first 4 packets");
    for (r, (t, src, dst, len, _)) in got.iter().zip(&want) {
        assert_eq!((r.ip, r.dest_ip, r.bytes), (*src, Some(*dst), Some(*len)));
        assert!((r.timestamp - t).abs() < 5e-7);
        assert_eq!(r.protocol.as_deref(), Some("UDP"));
    }
    assert!(sources::tshark_json::is_tshark_json(&fixture(
        "tshark.json"
    )));
    assert!(!sources::tshark_json::is_tshark_json(&fixture(
        "tshark.ek.json"
    )));
}
