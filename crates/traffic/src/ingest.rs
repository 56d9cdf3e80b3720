//! The ingest contract: turning the body of `POST /api/events` into events, or into an error
//! that names the item, the field and the reason.
//!
//! The body is one event object or an array of them. Field values are read leniently, with
//! the same rules as the CSV reader (see [`crate::event`]): numbers may come as JSON numbers
//! or numeric strings, the time as unix seconds/milliseconds or date-time text, the flag as a
//! bool, 0/1 or text. Keys are matched through the same table of names as the CSV header
//! ([`crate::event::field_named`]): `ip_address`, `ip address`, `source_ip`, `Latitude`,
//! `lng`, `Timestamp`, `ts`, `length`, `status_code`, ... (when two keys name one field, the
//! later one counts). Unknown keys are ignored. Only `ip` and `timestamp` are required;
//! `latitude`/`longitude` come both or neither; `suspicious` left out means false; the
//! request fields (`bytes`, `protocol`, `status`, `method`, `path`, `dest_ip`) are optional,
//! null meaning absent, and text is cut to its limit (see [`crate::event`]).
//!
//! Parsing borrows strings from the body and never builds a generic JSON tree, so it costs
//! little more than the validation itself.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::event::{self, Event, Field, FieldError};

pub mod binary;

/// How a body is written, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// JSON: one event object or an array of them ([`parse_body`]).
    Json,
    /// The compact binary layout ([`binary`]).
    Binary,
}

impl BodyFormat {
    /// The format a `Content-Type` value names: `application/json` (or any
    /// `application/...+json`) or [`binary::CONTENT_TYPE`], parameters ignored; `None`
    /// for anything else.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case(binary::CONTENT_TYPE) {
            return Some(BodyFormat::Binary);
        }
        let is_json = essence.eq_ignore_ascii_case("application/json")
            || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
                kind.to_ascii_lowercase().starts_with("application/")
                    && suffix.eq_ignore_ascii_case("json")
            });
        is_json.then_some(BodyFormat::Json)
    }

    /// Parses `body` in this format, all or nothing, with at most `max_items` events.
    pub fn parse(self, body: &[u8], max_items: usize) -> Result<Vec<Event>, IngestError> {
        match self {
            BodyFormat::Json => parse_body(body, max_items),
            BodyFormat::Binary => binary::parse(body, max_items),
        }
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// Not JSON, or JSON that is neither an object nor an array; or a binary body that
    /// cannot be read as its layout (HTTP 400).
    #[error("malformed body: {0}")]
    Malformed(String),
    /// Well-formed JSON with an item that is not a usable event (HTTP 422).
    #[error("item {item}: {problem}")]
    Invalid {
        /// Index of the item in the array; 0 for a single object.
        item: usize,
        /// What is wrong with it.
        problem: ItemProblem,
    },
    /// More items than the server takes in one request (HTTP 413). Reading stops at the
    /// first item over the limit, so the body's full count is not known.
    #[error("more than {max} items in one request; at most {max} are accepted")]
    TooManyItems {
        /// The configured limit.
        max: usize,
    },
}

/// What is wrong with one item.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ItemProblem {
    /// The item is not a JSON object.
    #[error("expected an event object, found {0}")]
    NotAnObject(&'static str),
    /// A required field is absent (or null).
    #[error("{0}: is missing")]
    Missing(Field),
    /// A field has a value that cannot be used.
    #[error("{0}")]
    Field(FieldError),
}

impl ItemProblem {
    /// The field concerned, if the problem is with one field.
    pub fn field(&self) -> Option<Field> {
        match self {
            ItemProblem::NotAnObject(_) => None,
            ItemProblem::Missing(field) => Some(*field),
            ItemProblem::Field(e) => Some(e.field),
        }
    }

    /// The reason without the field name.
    pub fn reason(&self) -> String {
        match self {
            ItemProblem::NotAnObject(kind) => format!("expected an event object, found {kind}"),
            ItemProblem::Missing(_) => "is missing".to_owned(),
            ItemProblem::Field(e) => e.reason.clone(),
        }
    }
}

/// Parses a request body into events, all or nothing: the first bad item fails the whole body
/// so a client never has to guess which of its events were kept.
///
/// An array is read item by item: each is validated as it is read, and reading stops at
/// item `max_items + 1` (the body is refused without reading the rest). Precedence is that of
/// reading the whole body first: a syntax error before that point is `Malformed`, too many
/// items is `TooManyItems`, and only then is the first bad item `Invalid`.
pub fn parse_body(body: &[u8], max_items: usize) -> Result<Vec<Event>, IngestError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => parse_array(body, max_items),
        Some(b'{') => {
            let item = match std::str::from_utf8(body) {
                Ok(text) => serde_json::from_str::<RawItem<'_>>(text),
                Err(_) => serde_json::from_slice::<RawItem<'_>>(body),
            }
            .map_err(|e| IngestError::Malformed(e.to_string()))?;
            if max_items == 0 {
                return Err(IngestError::TooManyItems { max: max_items });
            }
            let event = item
                .validate()
                .map_err(|problem| IngestError::Invalid { item: 0, problem })?;
            Ok(vec![event])
        }
        Some(_) => Err(IngestError::Malformed(
            "expected an event object or an array of them".to_owned(),
        )),
        None => Err(IngestError::Malformed("the body is empty".to_owned())),
    }
}

fn parse_array(body: &[u8], max_items: usize) -> Result<Vec<Event>, IngestError> {
    // An event object takes ~30 bytes at the least and typically 150 or more: reserving for
    // one per 128 bytes (within the item limit) spares most of the growth's copies of the
    // events without reserving much more than the body's own size.
    let mut outcome = BatchOutcome {
        events: Vec::with_capacity((body.len() / 128).min(max_items)),
        ..BatchOutcome::default()
    };
    // The body checked as UTF-8 once, in one pass, spares the parser checking each string
    // of it (about 2% of the server's CPU in an access log's import); a body that is not
    // UTF-8 is read as bytes, for the parser's own message naming where.
    let read = match std::str::from_utf8(body) {
        Ok(text) => read_array(
            serde_json::Deserializer::from_str(text),
            max_items,
            &mut outcome,
        ),
        Err(_) => read_array(
            serde_json::Deserializer::from_slice(body),
            max_items,
            &mut outcome,
        ),
    };
    if outcome.too_many {
        return Err(IngestError::TooManyItems { max: max_items });
    }
    read.map_err(|e| IngestError::Malformed(e.to_string()))?;
    match outcome.first_invalid {
        Some(e) => Err(e),
        None => Ok(outcome.events),
    }
}

/// Reads the array `deserializer` holds into `outcome`, then checks nothing follows it.
fn read_array<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
    max_items: usize,
    outcome: &mut BatchOutcome,
) -> Result<(), serde_json::Error> {
    deserializer
        .deserialize_seq(BatchVisitor { max_items, outcome })
        .and_then(|()| deserializer.end())
}

/// What reading an array found, filled in by [`BatchVisitor`].
#[derive(Default)]
struct BatchOutcome {
    events: Vec<Event>,
    /// The first item that is not a usable event; later items are only checked for syntax.
    first_invalid: Option<IngestError>,
    /// Item `max_items + 1` was seen; reading stopped there.
    too_many: bool,
}

/// Reads an array item by item, validating each, and stops at one item over the limit.
struct BatchVisitor<'o> {
    max_items: usize,
    outcome: &'o mut BatchOutcome,
}

impl<'de> Visitor<'de> for BatchVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of event objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(raw) = seq.next_element::<RawItem<'de>>()? {
            if index == self.max_items {
                self.outcome.too_many = true;
                return Err(de::Error::custom("too many items"));
            }
            if self.outcome.first_invalid.is_none() {
                match raw.validate() {
                    Ok(event) => self.outcome.events.push(event),
                    Err(problem) => {
                        self.outcome.first_invalid = Some(IngestError::Invalid {
                            item: index,
                            problem,
                        });
                        // Nothing will be kept: free what was.
                        self.outcome.events = Vec::new();
                    }
                }
            }
            index += 1;
        }
        Ok(())
    }
}

/// A JSON scalar as sent, before validation.
#[derive(Debug)]
enum Value<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
    /// An object or array where a scalar belongs.
    Other(&'static str),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Text(_) => "a string",
            Value::Other(kind) => kind,
        }
    }
}

/// One array item as sent: an object with whatever known fields it has, or something else.
#[derive(Debug, Default)]
struct RawItem<'a> {
    not_an_object: Option<&'static str>,
    ip: Option<Value<'a>>,
    latitude: Option<Value<'a>>,
    longitude: Option<Value<'a>>,
    timestamp: Option<Value<'a>>,
    suspicious: Option<Value<'a>>,
    bytes: Option<Value<'a>>,
    protocol: Option<Value<'a>>,
    status: Option<Value<'a>>,
    method: Option<Value<'a>>,
    path: Option<Value<'a>>,
    dest_ip: Option<Value<'a>>,
    src_port: Option<Value<'a>>,
    dest_port: Option<Value<'a>>,
    packets: Option<Value<'a>>,
}

impl RawItem<'_> {
    fn validate(self) -> Result<Event, ItemProblem> {
        if let Some(kind) = self.not_an_object {
            return Err(ItemProblem::NotAnObject(kind));
        }
        let ip = match required(Field::Ip, self.ip)? {
            Value::Text(text) => event::parse_ip(&text),
            other => Err(wrong_type(Field::Ip, &other, "a string")),
        };
        let latitude = optional(self.latitude)
            .map(|v| coordinate(Field::Latitude, v))
            .transpose();
        let longitude = optional(self.longitude)
            .map(|v| coordinate(Field::Longitude, v))
            .transpose();
        let timestamp = match required(Field::Timestamp, self.timestamp)? {
            Value::Number(n) => event::timestamp_from_number(n),
            Value::Text(text) => event::parse_timestamp(&text),
            other => Err(wrong_type(Field::Timestamp, &other, "a number or a string")),
        };
        let suspicious = match self.suspicious.unwrap_or(Value::Null) {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(b),
            Value::Number(n) => event::suspicious_from_number(n),
            Value::Text(text) => event::parse_suspicious(&text),
            other => Err(wrong_type(Field::Suspicious, &other, "a boolean, 0 or 1")),
        };
        let bytes = match optional(self.bytes) {
            None => Ok(None),
            Some(Value::Number(n)) => event::bytes_from_number(n).map(Some),
            Some(Value::Text(text)) => event::parse_bytes(&text),
            Some(other) => Err(wrong_type(Field::Bytes, &other, "a number")),
        };
        let status = match optional(self.status) {
            None => Ok(None),
            Some(Value::Number(n)) => event::status_from_number(n).map(Some),
            Some(Value::Text(text)) => event::parse_status(&text),
            Some(other) => Err(wrong_type(Field::Status, &other, "a number")),
        };
        let dest_ip = match optional(self.dest_ip) {
            None => Ok(None),
            Some(Value::Text(text)) => event::parse_dest_ip(&text),
            Some(other) => Err(wrong_type(Field::DestIp, &other, "a string")),
        };
        let port = |field: Field, value: Option<Value<'_>>| match optional(value) {
            None => Ok(None),
            Some(Value::Number(n)) => event::port_from_number(field, n).map(Some),
            Some(Value::Text(text)) => event::parse_port(field, &text),
            Some(other) => Err(wrong_type(field, &other, "a number")),
        };
        let packets = match optional(self.packets) {
            None => Ok(None),
            Some(Value::Number(n)) => event::packets_from_number(n).map(Some),
            Some(Value::Text(text)) => event::parse_packets(&text),
            Some(other) => Err(wrong_type(Field::Packets, &other, "a number")),
        };
        let field = ItemProblem::Field;
        let ip = ip.map_err(field)?;
        let coordinates = event::coordinates(latitude.map_err(field)?, longitude.map_err(field)?)
            .map_err(field)?;
        Ok(Event {
            ip,
            latitude: coordinates.map(|c| c.0),
            longitude: coordinates.map(|c| c.1),
            timestamp: timestamp.map_err(field)?,
            suspicious: suspicious.map_err(field)?,
            bytes: bytes.map_err(field)?,
            protocol: text(Field::Protocol, self.protocol).map_err(field)?,
            status: status.map_err(field)?,
            method: text(Field::Method, self.method).map_err(field)?,
            path: text(Field::Path, self.path).map_err(field)?,
            dest_ip: dest_ip.map_err(field)?,
            src_port: port(Field::SrcPort, self.src_port).map_err(field)?,
            dest_port: port(Field::DestPort, self.dest_port).map_err(field)?,
            packets: packets.map_err(field)?,
        })
    }
}

/// A value that may be left out: absent and null are the same.
fn optional(value: Option<Value<'_>>) -> Option<Value<'_>> {
    match value {
        None | Some(Value::Null) => None,
        value => value,
    }
}

/// An optional text field, bounded; numbers are taken as their text (`"protocol": 6`).
fn text(field: Field, value: Option<Value<'_>>) -> Result<Option<String>, FieldError> {
    match optional(value) {
        None => Ok(None),
        Some(Value::Text(text)) => Ok(event::bounded_text(field, &text)),
        Some(Value::Number(n)) => Ok(event::bounded_text(field, &n.to_string())),
        Some(other) => Err(wrong_type(field, &other, "a string")),
    }
}

fn required(field: Field, value: Option<Value<'_>>) -> Result<Value<'_>, ItemProblem> {
    match value {
        None | Some(Value::Null) => Err(ItemProblem::Missing(field)),
        Some(value) => Ok(value),
    }
}

fn wrong_type(field: Field, value: &Value<'_>, expected: &str) -> FieldError {
    FieldError::new(
        field,
        format!("expected {expected}, found {}", value.kind()),
    )
}

fn coordinate(field: Field, value: Value<'_>) -> Result<f64, FieldError> {
    match value {
        Value::Number(n) if field == Field::Latitude => event::check_latitude(n),
        Value::Number(n) => event::check_longitude(n),
        Value::Text(text) => event::parse_coordinate(field, &text),
        other => Err(wrong_type(field, &other, "a number")),
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Value::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Value::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Value::Text(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an object"))
    }
}

/// An object key, matched against the field names where it lies in the body: no `String` per
/// key (serde's `Deserialize` for `Cow<str>` always builds an owned one).
struct FieldKey(Option<Field>);

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(FieldKeyVisitor)
    }
}

struct FieldKeyVisitor;

impl Visitor<'_> for FieldKeyVisitor {
    type Value = FieldKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, v: &str) -> Result<FieldKey, E> {
        Ok(FieldKey(event::field_named(v)))
    }
}

impl<'de> Deserialize<'de> for RawItem<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl ItemVisitor {
    fn not_an_object<'a>(kind: &'static str) -> RawItem<'a> {
        RawItem {
            not_an_object: Some(kind),
            ..RawItem::default()
        }
    }
}

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = RawItem<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut item = RawItem::default();
        while let Some(FieldKey(field)) = map.next_key()? {
            let slot = match field {
                Some(Field::Ip) => &mut item.ip,
                Some(Field::Latitude) => &mut item.latitude,
                Some(Field::Longitude) => &mut item.longitude,
                Some(Field::Timestamp) => &mut item.timestamp,
                Some(Field::Suspicious) => &mut item.suspicious,
                Some(Field::Bytes) => &mut item.bytes,
                Some(Field::Protocol) => &mut item.protocol,
                Some(Field::Status) => &mut item.status,
                Some(Field::Method) => &mut item.method,
                Some(Field::Path) => &mut item.path,
                Some(Field::DestIp) => &mut item.dest_ip,
                Some(Field::SrcPort) => &mut item.src_port,
                Some(Field::DestPort) => &mut item.dest_port,
                Some(Field::Packets) => &mut item.packets,
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(item)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::not_an_object("an array"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("null"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("a string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"ip":"173.198.105.40","latitude":35.3696,"longitude":-119.0105,"timestamp":1736919120,"suspicious":0.0}"#;

    fn invalid(body: &str) -> (usize, Option<Field>, String) {
        match parse_body(body.as_bytes(), 1000) {
            Err(IngestError::Invalid { item, problem }) => {
                (item, problem.field(), problem.reason())
            }
            other => panic!("expected Invalid for {body}, got {other:?}"),
        }
    }

    #[test]
    fn a_single_object_is_one_event() {
        let events = parse_body(GOOD.as_bytes(), 1000).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.ip.to_string(), "173.198.105.40");
        assert_eq!(e.coordinates(), Some((35.3696, -119.0105)));
        assert_eq!(e.timestamp, 1_736_919_120.0);
        assert!(!e.suspicious);
    }

    #[test]
    fn an_array_keeps_its_order_and_lenient_spellings_are_read() {
        let body = r#"[
            {"ip":"2001:4860::8888","latitude":"51.5","longitude":"-0.12","timestamp":"2025-01-15T05:32:00Z","suspicious":true,"bytes":512},
            {"ip":"8.8.8.8","latitude":-33.9,"longitude":151.2,"timestamp":1736919121500,"suspicious":"1.0"},
            {"ip":"1.1.1.1","latitude":0,"longitude":0,"timestamp":1736919122.25}
        ]"#;
        let events = parse_body(body.as_bytes(), 1000).unwrap();
        assert_eq!(events.len(), 3);
        assert!(events[0].ip.is_ipv6());
        assert_eq!(events[0].latitude, Some(51.5));
        assert_eq!(events[0].bytes, Some(512));
        assert!(events[0].suspicious);
        assert_eq!(events[1].timestamp, 1_736_919_121.5);
        assert!(events[1].suspicious);
        assert_eq!(events[2].timestamp, 1_736_919_122.25);
        assert!(!events[2].suspicious, "a missing flag means not suspicious");
    }

    #[test]
    fn ports_and_packet_counts_are_read_by_their_names_and_spellings() {
        let body = r#"[
            {"ip":"1.1.1.1","timestamp":1736919120,"src_port":40000,"dest_port":443,"packets":12},
            {"ip":"1.1.1.2","timestamp":1736919120,"sport":"53","dst_port":"5353","pkts":"3"},
            {"ip":"1.1.1.3","timestamp":1736919120,"src_port":null,"dest_port":"-"}
        ]"#;
        let events = parse_body(body.as_bytes(), 1000).unwrap();
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.src_port, e.dest_port, e.packets))
            .collect();
        assert_eq!(
            got,
            [
                (Some(40000), Some(443), Some(12)),
                (Some(53), Some(5353), Some(3)),
                (None, None, None)
            ]
        );
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["src_port"], 40000);
        assert_eq!(json["dest_port"], 443);
        assert_eq!(json["packets"], 12);
        let plain = serde_json::to_value(&events[2]).unwrap();
        assert!(plain.get("packets").is_none(), "absent fields are left out");
    }

    #[test]
    fn course_style_spellings_are_read_like_the_csv_header() {
        let body = r#"[
            {"ip_address":"173.198.105.40","Latitude":35.3696,"Longitude":-119.0105,"Timestamp":1736919120,"suspicious":0.0},
            {"ip address":"8.8.8.8","lat":"1.5","lng":"2.5","ts":"2025-01-15T05:32:00Z","suspicious":1.0},
            {"source_ip":"1.1.1.1","timestamp":1736919120,"length":1514,"protocol":"TCP","dst_ip":"10.0.0.2"},
            {"src_ip":"1.1.1.2","time":1736919120,"bytes_sent":"-","status_code":"404","method":"GET","url":"/.env"}
        ]"#;
        let events = parse_body(body.as_bytes(), 1000).unwrap();
        assert_eq!(events[0].ip.to_string(), "173.198.105.40");
        assert_eq!(events[0].coordinates(), Some((35.3696, -119.0105)));
        assert!(!events[0].suspicious);
        assert_eq!(events[1].coordinates(), Some((1.5, 2.5)));
        assert!(events[1].suspicious);
        assert_eq!(
            events[2].coordinates(),
            None,
            "no coordinates: placed by IP later"
        );
        assert_eq!(events[2].bytes, Some(1514));
        assert_eq!(events[2].protocol.as_deref(), Some("TCP"));
        assert_eq!(events[2].dest_ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(events[3].bytes, None);
        assert_eq!(events[3].status, Some(404));
        assert_eq!(events[3].method.as_deref(), Some("GET"));
        assert_eq!(events[3].path.as_deref(), Some("/.env"));
    }

    #[test]
    fn an_ip_and_a_time_make_an_event_and_long_paths_are_cut() {
        let path = format!("/{}", "a".repeat(10_000));
        let body = format!(
            r#"{{"ip":"2001:db8::1","timestamp":1736919120,"path":"{path}","latitude":null,"longitude":null}}"#
        );
        let events = parse_body(body.as_bytes(), 10).unwrap();
        assert_eq!(events[0].coordinates(), None);
        assert_eq!(
            events[0].path.as_ref().map(String::len),
            Some(event::MAX_PATH_BYTES)
        );
    }

    #[test]
    fn keys_are_matched_even_when_written_with_escapes() {
        let body = r#"[{"\u0069p":"10.0.0.1","l\u0061titude":1.5,"longitude":2,"Time\u0020Stamp":1736919120,"suspicious\u0078":1}]"#;
        let events = parse_body(body.as_bytes(), 1000).unwrap();
        assert_eq!(events[0].ip.to_string(), "10.0.0.1");
        assert_eq!(events[0].latitude, Some(1.5));
        assert_eq!(events[0].timestamp, 1_736_919_120.0);
        // "suspiciousx" is an unknown key, ignored: the flag is left false.
        assert!(!events[0].suspicious);
    }

    #[test]
    fn an_empty_array_is_accepted_as_nothing() {
        assert!(parse_body(b" [ ] ", 1000).unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_and_non_event_bodies_are_malformed() {
        for body in [
            "",
            "   ",
            "{\"ip\":",
            "[1,2",
            "42",
            "\"text\"",
            "{} trailing",
        ] {
            assert!(
                matches!(
                    parse_body(body.as_bytes(), 1000),
                    Err(IngestError::Malformed(_))
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed_naming_where_and_utf8_text_is_kept() {
        // Bytes that are not UTF-8 inside a string, in an array and in a single object.
        for body in [
            b"[{\"ip\":\"10.0.0.1\",\"timestamp\":1,\"path\":\"/\xff\"}]".as_slice(),
            b"{\"ip\":\"10.0.0.1\",\"timestamp\":1,\"path\":\"/\xc3\"}".as_slice(),
        ] {
            match parse_body(body, 1000) {
                Err(IngestError::Malformed(message)) => {
                    assert!(message.contains("line 1 column"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let body = r#"[{"ip":"10.0.0.1","timestamp":1736919120,"path":"/caf\u00e9/ü/😀\n"}]"#;
        let events = parse_body(body.as_bytes(), 1000).unwrap();
        assert_eq!(events[0].path.as_deref(), Some("/café/ü/😀"));
    }

    #[test]
    fn a_bad_item_is_named_by_index_field_and_reason() {
        let body = format!(
            r#"[{GOOD},{{"ip":"10.0.0.1","latitude":95,"longitude":1,"timestamp":1736919120}}]"#
        );
        let (item, field, reason) = invalid(&body);
        assert_eq!((item, field), (1, Some(Field::Latitude)));
        assert!(reason.contains("95"), "{reason}");
    }

    #[test]
    fn each_field_rule_is_enforced() {
        let cases = [
            (
                r#"{"latitude":1,"longitude":1,"timestamp":1736919120}"#,
                Field::Ip,
                "missing",
            ),
            (
                r#"{"ip":"x.y","latitude":1,"longitude":1,"timestamp":1736919120}"#,
                Field::Ip,
                "not an IPv4",
            ),
            (
                r#"{"ip":7,"latitude":1,"longitude":1,"timestamp":1736919120}"#,
                Field::Ip,
                "expected a string",
            ),
            (
                r#"{"ip":"1.2.3.4","latitude":null,"longitude":1,"timestamp":1736919120}"#,
                Field::Latitude,
                "both or neither",
            ),
            (
                r#"{"ip":"1.2.3.4","lat":1,"timestamp":1736919120}"#,
                Field::Longitude,
                "both or neither",
            ),
            (
                r#"{"ip":"1.2.3.4","timestamp":1736919120,"status":700}"#,
                Field::Status,
                "100..=599",
            ),
            (
                r#"{"ip":"1.2.3.4","timestamp":1736919120,"bytes":-1}"#,
                Field::Bytes,
                "whole number",
            ),
            (
                r#"{"ip":"1.2.3.4","timestamp":1736919120,"dest_ip":"nowhere"}"#,
                Field::DestIp,
                "not an IPv4",
            ),
            (
                r#"{"ip":"1.2.3.4","timestamp":1736919120,"dest_port":65536}"#,
                Field::DestPort,
                "not a port",
            ),
            (
                r#"{"ip":"1.2.3.4","timestamp":1736919120,"src_port":"http"}"#,
                Field::SrcPort,
                "not a port",
            ),
            (
                r#"{"ip":"1.2.3.4","timestamp":1736919120,"packets":0}"#,
                Field::Packets,
                "at least 1",
            ),
            (
                r#"{"ip":"1.2.3.4","latitude":1,"longitude":-181,"timestamp":1736919120}"#,
                Field::Longitude,
                "out of range",
            ),
            (
                r#"{"ip":"1.2.3.4","latitude":1,"longitude":[1],"timestamp":1736919120}"#,
                Field::Longitude,
                "found an array",
            ),
            (
                r#"{"ip":"1.2.3.4","latitude":1,"longitude":1,"timestamp":"17369x9120"}"#,
                Field::Timestamp,
                "neither",
            ),
            (
                r#"{"ip":"1.2.3.4","latitude":1,"longitude":1,"timestamp":true}"#,
                Field::Timestamp,
                "found a boolean",
            ),
            (
                r#"{"ip":"1.2.3.4","latitude":1,"longitude":1,"timestamp":1736919120,"suspicious":2}"#,
                Field::Suspicious,
                "not 0 or 1",
            ),
        ];
        for (body, want_field, want_reason) in cases {
            let (item, field, reason) = invalid(body);
            assert_eq!(item, 0, "{body}");
            assert_eq!(field, Some(want_field), "{body}");
            assert!(reason.contains(want_reason), "{body}: {reason}");
        }
    }

    #[test]
    fn a_non_object_item_is_invalid_not_malformed() {
        let (item, field, reason) = invalid(&format!("[{GOOD}, 5]"));
        assert_eq!((item, field), (1, None));
        assert!(reason.contains("found a number"), "{reason}");
    }

    #[test]
    fn too_many_items_are_refused_before_validation() {
        let body = format!("[{GOOD},{GOOD},{GOOD}]");
        assert_eq!(
            parse_body(body.as_bytes(), 2),
            Err(IngestError::TooManyItems { max: 2 })
        );
        let bad_first = format!(r#"[{{"ip":"x"}},{GOOD},{GOOD}]"#);
        assert_eq!(
            parse_body(bad_first.as_bytes(), 2),
            Err(IngestError::TooManyItems { max: 2 }),
            "413 takes precedence over 422, as when the whole body was read first"
        );
        assert_eq!(
            parse_body(GOOD.as_bytes(), 0),
            Err(IngestError::TooManyItems { max: 0 })
        );
    }

    #[test]
    fn reading_stops_at_the_first_item_over_the_limit() {
        // Items 1..=max+1 are tiny and well-formed; item max+2 is not even JSON. Only a
        // parser that stopped at max+1 can call this too many rather than malformed.
        let max = 1000;
        let body = format!("[{}nonsense]", "0,".repeat(max + 1));
        assert_eq!(
            parse_body(body.as_bytes(), max),
            Err(IngestError::TooManyItems { max })
        );
        let exactly = format!("[{}0]", "0,".repeat(max - 1));
        assert!(
            matches!(
                parse_body(exactly.as_bytes(), max),
                Err(IngestError::Invalid { item: 0, .. })
            ),
            "at the limit, items are read and validated"
        );
    }

    #[test]
    fn a_syntax_error_after_a_bad_item_is_still_malformed() {
        let body = format!(r#"[{GOOD},{{"ip":"x"}},{GOOD}"#);
        assert!(matches!(
            parse_body(body.as_bytes(), 10),
            Err(IngestError::Malformed(_))
        ));
        let body = format!(r#"[{GOOD},{{"ip":"x"}},5,{GOOD}]"#);
        assert!(
            matches!(
                parse_body(body.as_bytes(), 10),
                Err(IngestError::Invalid { item: 1, .. })
            ),
            "the first bad item is named, not a later one"
        );
    }

    #[test]
    fn escaped_strings_are_read_too() {
        let body = r#"{"ip":"1.2.3.\u0034","latitude":1,"longitude":1,"timestamp":1736919120}"#;
        assert_eq!(
            parse_body(body.as_bytes(), 10).unwrap()[0].ip.to_string(),
            "1.2.3.4"
        );
    }
}
