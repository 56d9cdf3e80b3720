//! Conditions over one event's fields, as a rule file writes them (a small JSON shape), and
//! their compiled form: a tree of typed tests with every literal parsed, every regex built
//! and every field resolved once, so checking an event is a few branches and comparisons.
//!
//! The shape (documented in the README):
//! - `{"field": F, "op": OP, "value": V}`: a test of one field; `OP` is one of `==`, `!=`,
//!   `<`, `<=`, `>`, `>=` (numbers), `in`, `not_in` (a list), `matches` (a regex, text fields),
//!   `exists` (no value);
//! - `{"field": F}` alone: `suspicious` is set, or for any other field, it is present;
//! - `{"all": [C, ...]}`, `{"any": [C, ...]}`, `{"not": C}`.
//!
//! A test of a field the event does not have is false, whatever the operator (`!=` and
//! `not_in` included): `{"not": ...}` turns that around. Text comparisons of `protocol`,
//! `method` and `country` ignore ASCII case; `path` and `city` compare exactly (`matches`
//! takes `(?i)` for that). An `ip`/`dest_ip` value is an address or a network (`10.0.0.0/8`).

use std::net::IpAddr;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Event;

/// A condition as written in a rule: exactly one of a field test (`field`, `op`, `value`),
/// `all`, `any` or `not`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The event field tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The operator (see the module's documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// What the field is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Every one of these holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Condition>>,
    /// At least one of these holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<Condition>>,
    /// This does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<Condition>>,
}

impl Condition {
    /// `field op value`.
    pub fn test(field: &str, op: &str, value: Value) -> Self {
        Self {
            field: Some(field.to_owned()),
            op: Some(op.to_owned()),
            value: Some(value),
            ..Self::default()
        }
    }

    /// `{"field": field}`: a flag that is set, or a field that is present.
    pub fn flag(field: &str) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::default()
        }
    }

    /// Every one of `conditions`.
    pub fn all(conditions: Vec<Condition>) -> Self {
        Self {
            all: Some(conditions),
            ..Self::default()
        }
    }

    /// Any of `conditions`.
    pub fn any(conditions: Vec<Condition>) -> Self {
        Self {
            any: Some(conditions),
            ..Self::default()
        }
    }

    /// Not `condition`.
    pub fn negate(condition: Condition) -> Self {
        Self {
            not: Some(Box::new(condition)),
            ..Self::default()
        }
    }
}

/// What a rule's condition sees of an event: the event, and what the server worked out
/// about it (the place's country and city, the AS number), when it did.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The event as ingested.
    pub event: &'a Event,
    /// ISO code of the country it was placed in.
    pub country: Option<&'a str>,
    /// The city it was placed in.
    pub city: Option<&'a str>,
    /// The AS number of its source address.
    pub asn: Option<u32>,
}

impl<'a> Subject<'a> {
    /// `event` with nothing worked out about it.
    pub fn bare(event: &'a Event) -> Self {
        Self {
            event,
            country: None,
            city: None,
            asn: None,
        }
    }
}

/// A condition that cannot be compiled: where (a JSON path below the condition, e.g.
/// `all[1].value`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionError {
    /// Path below the condition (empty: the condition itself).
    pub position: String,
    /// Why.
    pub reason: String,
}

/// The fields a condition may test, with their types.
pub const FIELDS: [(&str, FieldType); 17] = [
    ("ip", FieldType::Ip),
    ("dest_ip", FieldType::Ip),
    ("latitude", FieldType::Number),
    ("longitude", FieldType::Number),
    ("timestamp", FieldType::Number),
    ("suspicious", FieldType::Flag),
    ("bytes", FieldType::Number),
    ("status", FieldType::Number),
    ("dest_port", FieldType::Number),
    ("src_port", FieldType::Number),
    ("packets", FieldType::Number),
    ("asn", FieldType::Number),
    ("protocol", FieldType::Text),
    ("method", FieldType::Text),
    ("path", FieldType::Text),
    ("country", FieldType::Text),
    ("city", FieldType::Text),
];

/// The type of a field, which decides the operators it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// An address: `==`, `!=`, `in`, `not_in`, with addresses or networks.
    Ip,
    /// A number: comparisons, `in`, `not_in`.
    Number,
    /// Text: `==`, `!=`, `in`, `not_in`, `matches`.
    Text,
    /// A flag: `==`, `!=` with `true`/`false`, or alone.
    Flag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumField {
    Latitude,
    Longitude,
    Timestamp,
    Bytes,
    Status,
    DestPort,
    SrcPort,
    Packets,
    Asn,
}

impl NumField {
    #[inline]
    fn get(self, s: &Subject<'_>) -> Option<f64> {
        let e = s.event;
        match self {
            NumField::Latitude => e.latitude,
            NumField::Longitude => e.longitude,
            NumField::Timestamp => Some(e.timestamp),
            NumField::Bytes => e.bytes.map(|b| b as f64),
            NumField::Status => e.status.map(f64::from),
            NumField::DestPort => e.dest_port.map(f64::from),
            NumField::SrcPort => e.src_port.map(f64::from),
            NumField::Packets => e.packets.map(|p| p as f64),
            NumField::Asn => s.asn.map(f64::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Protocol,
    Method,
    Path,
    Country,
    City,
}

impl TextField {
    #[inline]
    fn get<'a>(self, s: &Subject<'a>) -> Option<&'a str> {
        match self {
            TextField::Protocol => s.event.protocol.as_deref(),
            TextField::Method => s.event.method.as_deref(),
            TextField::Path => s.event.path.as_deref(),
            TextField::Country => s.country,
            TextField::City => s.city,
        }
    }

    /// Whether comparisons ignore ASCII case.
    fn folds(self) -> bool {
        matches!(
            self,
            TextField::Protocol | TextField::Method | TextField::Country
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpField {
    Source,
    Dest,
}

impl IpField {
    /// The address as 128 bits, and whether it is IPv4.
    #[inline]
    fn get(self, s: &Subject<'_>) -> Option<(u128, bool)> {
        let ip = match self {
            IpField::Source => s.event.ip,
            IpField::Dest => s.event.dest_ip?,
        };
        Some((ip_bits(ip), ip.is_ipv4()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub struct Predicate(Node);

#[derive(Debug, Clone)]
enum Node {
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    Suspicious(bool),
    Present(Presence),
    Num {
        field: NumField,
        cmp: Cmp,
        value: f64,
    },
    NumIn {
        field: NumField,
        values: Box<[f64]>,
        negate: bool,
    },
    Text {
        field: TextField,
        value: Box<str>,
        negate: bool,
    },
    TextIn {
        field: TextField,
        values: Box<[Box<str>]>,
        negate: bool,
    },
    Matches {
        field: TextField,
        regex: Regex,
    },
    Ip {
        field: IpField,
        /// Networks: (bits, mask, IPv4); an IPv6 one never holds an IPv4 address.
        nets: Box<[(u128, u128, bool)]>,
        negate: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum Presence {
    Num(NumField),
    Text(TextField),
    Ip(IpField),
}

impl Predicate {
    /// Whether `subject` meets the condition.
    #[inline]
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        self.0.eval(subject)
    }
}

impl Node {
    fn eval(&self, s: &Subject<'_>) -> bool {
        match self {
            Node::All(nodes) => nodes.iter().all(|n| n.eval(s)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(s)),
            Node::Not(node) => !node.eval(s),
            Node::Suspicious(want) => s.event.suspicious == *want,
            Node::Present(p) => match *p {
                Presence::Num(f) => f.get(s).is_some(),
                Presence::Text(f) => f.get(s).is_some(),
                Presence::Ip(f) => f.get(s).is_some(),
            },
            Node::Num { field, cmp, value } => field.get(s).is_some_and(|v| match cmp {
                Cmp::Eq => v == *value,
                Cmp::Ne => v != *value,
                Cmp::Lt => v < *value,
                Cmp::Le => v <= *value,
                Cmp::Gt => v > *value,
                Cmp::Ge => v >= *value,
            }),
            Node::NumIn {
                field,
                values,
                negate,
            } => field.get(s).is_some_and(|v| values.contains(&v) != *negate),
            Node::Text {
                field,
                value,
                negate,
            } => field
                .get(s)
                .is_some_and(|v| text_eq(*field, v, value) != *negate),
            Node::TextIn {
                field,
                values,
                negate,
            } => field
                .get(s)
                .is_some_and(|v| values.iter().any(|want| text_eq(*field, v, want)) != *negate),
            Node::Matches { field, regex } => field.get(s).is_some_and(|v| regex.is_match(v)),
            Node::Ip {
                field,
                nets,
                negate,
            } => field.get(s).is_some_and(|(ip, v4)| {
                nets.iter()
                    .any(|&(net, mask, net_v4)| v4 == net_v4 && ip & mask == net)
                    != *negate
            }),
        }
    }
}

#[inline]
fn text_eq(field: TextField, have: &str, want: &str) -> bool {
    if field.folds() {
        have.eq_ignore_ascii_case(want)
    } else {
        have == want
    }
}

/// An address as 128 bits, IPv4 in its IPv4-mapped IPv6 form.
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Most characters of a `matches` pattern; its compiled size is bounded too.
const MAX_PATTERN: usize = 1024;
/// Most items of an `in` list.
const MAX_LIST: usize = 4096;
/// Deepest nesting of `all`/`any`/`not`.
const MAX_DEPTH: usize = 16;

/// Compiles `condition`; an error says where below it and why.
pub fn compile(condition: &Condition) -> Result<Predicate, ConditionError> {
    compile_at(condition, String::new(), 0).map(Predicate)
}

fn err(position: &str, name: &str, reason: impl Into<String>) -> ConditionError {
    let position = match (position.is_empty(), name.is_empty()) {
        (_, true) => position.to_owned(),
        (true, false) => name.to_owned(),
        (false, false) => format!("{position}.{name}"),
    };
    ConditionError {
        position,
        reason: reason.into(),
    }
}

fn compile_at(c: &Condition, at: String, depth: usize) -> Result<Node, ConditionError> {
    if depth > MAX_DEPTH {
        return Err(err(&at, "", format!("nested deeper than {MAX_DEPTH}")));
    }
    let forms = [
        c.field.is_some() || c.op.is_some() || c.value.is_some(),
        c.all.is_some(),
        c.any.is_some(),
        c.not.is_some(),
    ];
    if forms.iter().filter(|&&f| f).count() != 1 {
        return Err(err(
            &at,
            "",
            "a condition is exactly one of {\"field\", \"op\", \"value\"}, {\"all\": [..]}, \
             {\"any\": [..]} or {\"not\": {..}}",
        ));
    }
    let list = |name: &str, items: &[Condition]| -> Result<Box<[Node]>, ConditionError> {
        if items.is_empty() {
            return Err(err(&at, name, "is an empty list"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let here = if at.is_empty() {
                    format!("{name}[{i}]")
                } else {
                    format!("{at}.{name}[{i}]")
                };
                compile_at(item, here, depth + 1)
            })
            .collect()
    };
    if let Some(all) = &c.all {
        return Ok(Node::All(list("all", all)?));
    }
    if let Some(any) = &c.any {
        return Ok(Node::Any(list("any", any)?));
    }
    if let Some(not) = &c.not {
        let here = if at.is_empty() {
            "not".to_owned()
        } else {
            format!("{at}.not")
        };
        return Ok(Node::Not(Box::new(compile_at(not, here, depth + 1)?)));
    }
    compile_test(c, &at)
}

fn compile_test(c: &Condition, at: &str) -> Result<Node, ConditionError> {
    let Some(name) = c.field.as_deref() else {
        return Err(err(at, "field", "is missing"));
    };
    let Some(&(_, kind)) = FIELDS.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
        return Err(err(
            at,
            "field",
            format!("{name:?} is not a field; one of {}", known.join(", ")),
        ));
    };
    let op = c.op.as_deref();
    let presence = match name {
        "ip" => Presence::Ip(IpField::Source),
        "dest_ip" => Presence::Ip(IpField::Dest),
        "protocol" => Presence::Text(TextField::Protocol),
        "method" => Presence::Text(TextField::Method),
        "path" => Presence::Text(TextField::Path),
        "country" => Presence::Text(TextField::Country),
        "city" => Presence::Text(TextField::City),
        _ => Presence::Num(num_field(name).unwrap_or(NumField::Timestamp)),
    };
    match (op, &c.value) {
        (None, None) | (Some("exists"), None) => {
            return Ok(if kind == FieldType::Flag && op.is_none() {
                Node::Suspicious(true)
            } else if kind == FieldType::Flag {
                // The flag is always there.
                Node::All(Box::new([]))
            } else {
                Node::Present(presence)
            });
        }
        (Some("exists"), Some(_)) => return Err(err(at, "value", "exists takes no value")),
        (None, Some(_)) => return Err(err(at, "op", "is missing (a value needs an operator)")),
        (Some(_), None) => return Err(err(at, "value", "is missing")),
        _ => {}
    }
    // Both present from here.
    let (Some(op), Some(value)) = (op, &c.value) else {
        return Err(err(at, "op", "is missing"));
    };
    let ops: &[&str] = match kind {
        FieldType::Ip => &["==", "!=", "in", "not_in"],
        FieldType::Number => &["==", "!=", "<", "<=", ">", ">=", "in", "not_in"],
        FieldType::Text => &["==", "!=", "in", "not_in", "matches"],
        FieldType::Flag => &["==", "!="],
    };
    if !ops.contains(&op) {
        return Err(err(
            at,
            "op",
            format!(
                "{op:?} does not apply to {name}; use one of {}, exists",
                ops.join(", ")
            ),
        ));
    }
    let listed = op == "in" || op == "not_in";
    let negate = op == "!=" || op == "not_in";
    let items: Vec<(String, &Value)> = if listed {
        let Value::Array(items) = value else {
            return Err(err(at, "value", format!("{op} takes a list, e.g. [1, 2]")));
        };
        if items.is_empty() || items.len() > MAX_LIST {
            return Err(err(
                at,
                "value",
                format!("{op} takes a list of 1 to {MAX_LIST} items"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("value[{i}]"), v))
            .collect()
    } else {
        if value.is_array() {
            return Err(err(
                at,
                "value",
                format!("{op} takes one value, not a list"),
            ));
        }
        vec![("value".to_owned(), value)]
    };
    match kind {
        FieldType::Flag => {
            let Value::Bool(b) = value else {
                return Err(err(at, "value", "is not true or false"));
            };
            Ok(Node::Suspicious(*b != negate))
        }
        FieldType::Number => {
            let field = num_field(name).unwrap_or(NumField::Timestamp);
            let mut numbers = Vec::with_capacity(items.len());
            for (where_, v) in &items {
                match v.as_f64() {
                    Some(n) if n.is_finite() => numbers.push(n),
                    _ => return Err(err(at, where_, format!("{v} is not a number"))),
                }
            }
            if listed {
                return Ok(Node::NumIn {
                    field,
                    values: numbers.into(),
                    negate,
                });
            }
            let cmp = match op {
                "==" => Cmp::Eq,
                "!=" => Cmp::Ne,
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                ">" => Cmp::Gt,
                _ => Cmp::Ge,
            };
            Ok(Node::Num {
                field,
                cmp,
                value: numbers[0],
            })
        }
        FieldType::Text => {
            let field = text_field(name).unwrap_or(TextField::Path);
            let mut texts = Vec::with_capacity(items.len());
            for (where_, v) in &items {
                match v {
                    Value::String(t) => texts.push(t.as_str()),
                    _ => return Err(err(at, where_, format!("{v} is not a string"))),
                }
            }
            if op == "matches" {
                let pattern = texts[0];
                if pattern.len() > MAX_PATTERN {
                    return Err(err(
                        at,
                        "value",
                        format!("the pattern is longer than {MAX_PATTERN} bytes"),
                    ));
                }
                let regex = RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| err(at, "value", format!("not a regex: {e}")))?;
                return Ok(Node::Matches { field, regex });
            }
            if listed {
                return Ok(Node::TextIn {
                    field,
                    values: texts.into_iter().map(Box::from).collect(),
                    negate,
                });
            }
            Ok(Node::Text {
                field,
                value: texts[0].into(),
                negate,
            })
        }
        FieldType::Ip => {
            let field = if name == "ip" {
                IpField::Source
            } else {
                IpField::Dest
            };
            let mut nets = Vec::with_capacity(items.len());
            for (where_, v) in &items {
                let net = v.as_str().and_then(parse_net).ok_or_else(|| {
                    err(
                        at,
                        where_,
                        format!("{v} is not an address or a network like \"10.0.0.0/8\""),
                    )
                })?;
                nets.push(net);
            }
            Ok(Node::Ip {
                field,
                nets: nets.into(),
                negate,
            })
        }
    }
}

fn num_field(name: &str) -> Option<NumField> {
    Some(match name {
        "latitude" => NumField::Latitude,
        "longitude" => NumField::Longitude,
        "timestamp" => NumField::Timestamp,
        "bytes" => NumField::Bytes,
        "status" => NumField::Status,
        "dest_port" => NumField::DestPort,
        "src_port" => NumField::SrcPort,
        "packets" => NumField::Packets,
        "asn" => NumField::Asn,
        _ => return None,
    })
}

fn text_field(name: &str) -> Option<TextField> {
    Some(match name {
        "protocol" => TextField::Protocol,
        "method" => TextField::Method,
        "path" => TextField::Path,
        "country" => TextField::Country,
        "city" => TextField::City,
        _ => return None,
    })
}

/// `a.b.c.d`, `a.b.c.d/n`, `v6` or `v6/n` as (network bits, mask, IPv4) over 128 bits.
fn parse_net(text: &str) -> Option<(u128, u128, bool)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix.parse::<u32>().ok()?)),
        None => (text, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let prefix = match (ip, prefix) {
        (_, None) => 128,
        (IpAddr::V4(_), Some(p)) if p <= 32 => 96 + p,
        (IpAddr::V6(_), Some(p)) if p <= 128 => p,
        _ => return None,
    };
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    Some((ip_bits(ip) & mask, mask, ip.is_ipv4()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    fn event() -> Event {
        Event {
            bytes: Some(1500),
            protocol: Some("icmp".into()),
            dest_port: Some(22),
            path: Some("/wp-login.php".into()),
            status: Some(503),
            ..Event::new("203.0.113.9".parse().unwrap(), 1_736_919_120.0, true)
        }
    }

    fn check(v: Value, subject: &Subject<'_>) -> bool {
        compile(&cond(v)).unwrap().matches(subject)
    }

    #[test]
    fn the_issues_examples_compile_and_hold_on_an_event_that_has_them() {
        let e = event();
        let s = Subject {
            country: Some("KP"),
            ..Subject::bare(&e)
        };
        for v in [
            json!({"field": "bytes", "op": ">", "value": 1400}),
            json!({"field": "protocol", "op": "==", "value": "ICMP"}),
            json!({"field": "dest_port", "op": "in", "value": [22, 3389]}),
            json!({"field": "path", "op": "matches", "value": "^/wp-login"}),
            json!({"field": "status", "op": ">=", "value": 500}),
            json!({"field": "country", "op": "in", "value": ["KP", "IR"]}),
            json!({"field": "suspicious"}),
            json!({"field": "ip", "op": "in", "value": ["203.0.113.0/24"]}),
            json!({"all": [{"field": "bytes", "op": ">", "value": 1400}, {"not": {"field": "method"}}]}),
        ] {
            assert!(check(v.clone(), &s), "{v}");
        }
    }

    #[test]
    fn a_test_of_an_absent_field_is_false_whatever_the_operator() {
        let e = Event::new("203.0.113.9".parse().unwrap(), 1_736_919_120.0, false);
        let s = Subject::bare(&e);
        for v in [
            json!({"field": "bytes", "op": "!=", "value": 1}),
            json!({"field": "protocol", "op": "not_in", "value": ["TCP"]}),
            json!({"field": "dest_ip", "op": "!=", "value": "10.0.0.1"}),
            json!({"field": "country", "op": "!=", "value": "FR"}),
            json!({"field": "path"}),
            json!({"field": "suspicious"}),
        ] {
            assert!(!check(v.clone(), &s), "{v}");
        }
        assert!(check(
            json!({"not": {"field": "bytes", "op": ">", "value": 1}}),
            &s
        ));
    }

    #[test]
    fn mistakes_are_refused_naming_their_position() {
        for (v, position, words) in [
            (
                json!({"field": "byts", "op": ">", "value": 1}),
                "field",
                "not a field",
            ),
            (
                json!({"field": "bytes", "op": "~", "value": 1}),
                "op",
                "does not apply",
            ),
            (
                json!({"field": "path", "op": ">", "value": 1}),
                "op",
                "does not apply",
            ),
            (
                json!({"field": "bytes", "op": ">", "value": "big"}),
                "value",
                "not a number",
            ),
            (json!({"field": "bytes", "op": ">"}), "value", "missing"),
            (
                json!({"all": [{"field": "bytes"}, {"field": "status", "op": "in", "value": [500, "x"]}]}),
                "all[1].value[1]",
                "not a number",
            ),
            (json!({"any": []}), "any", "empty"),
            (
                json!({"not": {"field": "path", "op": "matches", "value": "("}}),
                "not.value",
                "regex",
            ),
            (
                json!({"field": "ip", "op": "==", "value": "10.0.0.0/33"}),
                "value",
                "network",
            ),
            (json!({"field": "bytes", "all": []}), "", "exactly one"),
            (
                json!({"field": "suspicious", "op": "==", "value": 1}),
                "value",
                "true or false",
            ),
        ] {
            let e = compile(&cond(v.clone())).unwrap_err();
            assert_eq!(e.position, position, "{v}: {e:?}");
            assert!(e.reason.contains(words), "{v}: {e:?}");
        }
        let e = serde_json::from_value::<Condition>(json!({"feild": "bytes"})).unwrap_err();
        assert!(e.to_string().contains("feild"), "{e}");
    }

    #[test]
    fn networks_match_by_prefix_for_both_families() {
        assert_eq!(parse_net("10.1.2.3/8"), parse_net("10.0.0.0/8"));
        let (net, mask, v4) = parse_net("2001:db8::/32").unwrap();
        assert!(!v4);
        assert_eq!(ip_bits("2001:db8:ff::1".parse().unwrap()) & mask, net);
        assert_ne!(ip_bits("2001:db9::1".parse().unwrap()) & mask, net);
        assert_eq!(parse_net("0.0.0.0/0").unwrap().1, u128::MAX << 32);
        assert!(parse_net("::/0").is_some_and(|(n, m, v4)| n == 0 && m == 0 && !v4));
        // An IPv6 network holds no IPv4 address, even ::/0.
        let e = Event::new("10.0.0.1".parse().unwrap(), 1_736_919_120.0, false);
        let any_v6 = json!({"field": "ip", "op": "in", "value": ["::/0"]});
        assert!(!check(any_v6, &Subject::bare(&e)));
    }
}
