//! Property tests of the compiled conditions against a reference: random conditions over
//! random events (from a seeded generator; the seed is in every failure message), each
//! checked by the compiled predicate and by a plain interpreter of the written condition
//! that works on the event as JSON, with none of the compiled form's types.

use serde_json::{Value, json};

use super::condition::{Condition, FIELDS, FieldType, Subject, compile};
use crate::event::Event;

/// splitmix64: a small, seeded, reproducible source of randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const IPS: [&str; 6] = [
    "203.0.113.9",
    "203.0.113.200",
    "198.51.100.7",
    "10.1.2.3",
    "2001:db8::1",
    "2001:db8:ff::9",
];
const NETS: [&str; 8] = [
    "203.0.113.0/24",
    "203.0.113.9",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "2001:db8::/32",
    "2001:db8::1",
    "198.51.100.0/25",
    "::/0",
];
const PROTOCOLS: [&str; 5] = ["TCP", "udp", "ICMP", "SSH", "HTTP/1.1"];
const METHODS: [&str; 3] = ["GET", "post", "HEAD"];
const PATHS: [&str; 5] = ["/", "/wp-login.php", "/index.html", "/.env", "/WP-ADMIN/x"];
const COUNTRIES: [&str; 4] = ["FR", "kp", "IR", "US"];
const CITIES: [&str; 3] = ["Paris", "Tokyo", "paris"];
const PATTERNS: [&str; 4] = ["^/wp-", "(?i)^/wp-", "\\.env$", "^/$"];
const NUMBERS: [f64; 10] = [
    0.0,
    22.0,
    80.0,
    443.0,
    1400.0,
    1500.0,
    404.0,
    503.0,
    64500.0,
    1_736_919_120.0,
];

struct Drawn {
    event: Event,
    country: Option<&'static str>,
    city: Option<&'static str>,
    asn: Option<u32>,
}

fn draw_event(rng: &mut Rng) -> Drawn {
    let mut event = Event::new(
        rng.pick(&IPS)
            .parse()
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
        1_736_919_120.0 + rng.below(3) as f64,
        rng.chance(30),
    );
    if rng.chance(60) {
        event.latitude = Some(*rng.pick(&[48.85, -33.0, 0.0]));
        event.longitude = Some(*rng.pick(&[2.35, 151.0, 0.0]));
    }
    let num = |rng: &mut Rng| *rng.pick(&NUMBERS);
    if rng.chance(60) {
        event.bytes = Some(num(rng) as u64);
    }
    if rng.chance(60) {
        event.status = Some(*rng.pick(&[200u16, 404, 500, 503]));
    }
    if rng.chance(60) {
        event.dest_port = Some(*rng.pick(&[22u16, 80, 443, 3389]));
    }
    if rng.chance(40) {
        event.src_port = Some(*rng.pick(&[22u16, 40000, 64500]));
    }
    if rng.chance(30) {
        event.packets = Some(*rng.pick(&[1u64, 22, 80]));
    }
    if rng.chance(60) {
        event.protocol = Some(rng.pick(&PROTOCOLS).to_string());
    }
    if rng.chance(50) {
        event.method = Some(rng.pick(&METHODS).to_string());
    }
    if rng.chance(50) {
        event.path = Some(rng.pick(&PATHS).to_string());
    }
    if rng.chance(50) {
        event.dest_ip = Some(rng.pick(&IPS).parse().unwrap_or(event.ip));
    }
    Drawn {
        event,
        country: rng.chance(70).then(|| *rng.pick(&COUNTRIES)),
        city: rng.chance(50).then(|| *rng.pick(&CITIES)),
        asn: rng.chance(40).then(|| *rng.pick(&[0u32, 22, 64500])),
    }
}

fn draw_value(rng: &mut Rng, kind: FieldType, op: &str) -> Value {
    let one = |rng: &mut Rng| -> Value {
        match kind {
            FieldType::Ip => json!(rng.pick(&NETS)),
            FieldType::Number => json!(rng.pick(&NUMBERS)),
            FieldType::Text => {
                let pool: Vec<&str> = PROTOCOLS
                    .iter()
                    .chain(&METHODS)
                    .chain(&PATHS)
                    .chain(&COUNTRIES)
                    .chain(&CITIES)
                    .copied()
                    .collect();
                json!(rng.pick(&pool))
            }
            FieldType::Flag => json!(rng.chance(50)),
        }
    };
    match op {
        "in" | "not_in" => {
            let n = 1 + rng.below(4);
            Value::Array((0..n).map(|_| one(rng)).collect())
        }
        "matches" => json!(rng.pick(&PATTERNS)),
        _ => one(rng),
    }
}

fn draw_condition(rng: &mut Rng, depth: u32) -> Condition {
    if depth < 3 && rng.chance(35) {
        let n = 1 + rng.below(3) as usize;
        let items = (0..n).map(|_| draw_condition(rng, depth + 1)).collect();
        return match rng.below(3) {
            0 => Condition::all(items),
            1 => Condition::any(items),
            _ => Condition::negate(draw_condition(rng, depth + 1)),
        };
    }
    let (field, kind) = *rng.pick(&FIELDS);
    let ops: &[&str] = match kind {
        FieldType::Ip => &["==", "!=", "in", "not_in", "exists"],
        FieldType::Number => &["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "exists"],
        FieldType::Text => &["==", "!=", "in", "not_in", "matches", "exists"],
        FieldType::Flag => &["==", "!=", "exists"],
    };
    if rng.chance(10) {
        return Condition::flag(field);
    }
    let op = *rng.pick(ops);
    if op == "exists" {
        return Condition {
            op: Some("exists".into()),
            ..Condition::flag(field)
        };
    }
    Condition::test(field, op, draw_value(rng, kind, op))
}

/// The event as the reference sees it: a JSON object of the fields it has.
fn as_json(d: &Drawn) -> serde_json::Map<String, Value> {
    let mut map = match serde_json::to_value(&d.event) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(c) = d.country {
        map.insert("country".into(), json!(c));
    }
    if let Some(c) = d.city {
        map.insert("city".into(), json!(c));
    }
    if let Some(a) = d.asn {
        map.insert("asn".into(), json!(a));
    }
    map
}

/// Whether the address `have` is in `net` (an address or `addr/len`), compared as text
/// bits: independent of the compiled form's 128-bit masks.
fn reference_in_net(have: &str, net: &str) -> bool {
    fn bits(ip: std::net::IpAddr) -> String {
        match ip {
            std::net::IpAddr::V4(v4) => v4.octets().iter().map(|o| format!("{o:08b}")).collect(),
            std::net::IpAddr::V6(v6) => v6.octets().iter().map(|o| format!("{o:08b}")).collect(),
        }
    }
    let (addr, len) = net.split_once('/').unwrap_or((net, ""));
    let (Ok(have), Ok(addr)) = (
        have.parse::<std::net::IpAddr>(),
        addr.parse::<std::net::IpAddr>(),
    ) else {
        return false;
    };
    if have.is_ipv4() != addr.is_ipv4() {
        return false;
    }
    let (a, b) = (bits(have), bits(addr));
    let len = len.parse::<usize>().unwrap_or(a.len());
    a[..len] == b[..len]
}

fn reference(c: &Condition, e: &serde_json::Map<String, Value>) -> bool {
    if let Some(all) = &c.all {
        return all.iter().all(|c| reference(c, e));
    }
    if let Some(any) = &c.any {
        return any.iter().any(|c| reference(c, e));
    }
    if let Some(not) = &c.not {
        return !reference(not, e);
    }
    let field = c.field.as_deref().unwrap_or_default();
    let have = e.get(field);
    let op = c.op.as_deref();
    if field == "suspicious" {
        let flag = have.and_then(Value::as_bool).unwrap_or(false);
        return match (op, &c.value) {
            (None, _) => flag,
            (Some("exists"), _) => true,
            (Some("=="), Some(v)) => Some(flag) == v.as_bool(),
            (Some("!="), Some(v)) => Some(flag) != v.as_bool(),
            _ => false,
        };
    }
    let Some(have) = have else { return false };
    let op = op.unwrap_or("exists");
    if op == "exists" {
        return true;
    }
    let value = c.value.clone().unwrap_or(Value::Null);
    let folds = matches!(field, "protocol" | "method" | "country");
    let equal = |want: &Value| -> bool {
        if field == "ip" || field == "dest_ip" {
            return reference_in_net(have.as_str().unwrap_or(""), want.as_str().unwrap_or(""));
        }
        match (have, want) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::String(a), Value::String(b)) if folds => a.to_lowercase() == b.to_lowercase(),
            (Value::String(a), Value::String(b)) => a == b,
            _ => false,
        }
    };
    let number = || have.as_f64().unwrap_or(f64::NAN);
    let bound = value.as_f64().unwrap_or(f64::NAN);
    match op {
        "==" => equal(&value),
        "!=" => !equal(&value),
        "<" => number() < bound,
        "<=" => number() <= bound,
        ">" => number() > bound,
        ">=" => number() >= bound,
        "in" => value.as_array().is_some_and(|l| l.iter().any(equal)),
        "not_in" => value.as_array().is_some_and(|l| !l.iter().any(equal)),
        "matches" => regex::Regex::new(value.as_str().unwrap_or(""))
            .is_ok_and(|r| r.is_match(have.as_str().unwrap_or(""))),
        _ => false,
    }
}

#[test]
fn compiled_conditions_agree_with_the_reference_on_random_events() {
    for seed in 0..40u64 {
        let mut rng = Rng(seed);
        let events: Vec<Drawn> = (0..200).map(|_| draw_event(&mut rng)).collect();
        let mut held = 0;
        for _ in 0..60 {
            let condition = draw_condition(&mut rng, 0);
            let predicate = compile(&condition)
                .unwrap_or_else(|e| panic!("seed {seed}: {condition:?} does not compile: {e:?}"));
            for d in &events {
                let subject = Subject {
                    event: &d.event,
                    country: d.country,
                    city: d.city,
                    asn: d.asn,
                };
                let want = reference(&condition, &as_json(d));
                assert_eq!(
                    predicate.matches(&subject),
                    want,
                    "seed {seed}: {} on {:?}",
                    serde_json::to_string(&condition).unwrap_or_default(),
                    as_json(d)
                );
                held += usize::from(want);
            }
        }
        // Both outcomes occur: the test would catch a predicate stuck at either.
        assert!(held > 500 && held < 11_500, "seed {seed}: {held} held");
    }
}
