//! JSON access logs, one object per line, read through a key map: nginx `escape=json` logs by
//! default, any other layout with `--map field=key`.
//!
//! A key is a top-level name (`remote_addr`) or a dotted path into nested objects
//! (`request.client_ip`; a number indexes an array, and an array where one value is wanted gives
//! its first element, so `request.headers.User-Agent` is the first `User-Agent`). A field may
//! have several keys, tried in order. Values may be JSON numbers or strings (nginx writes
//! numbers as strings); `-` and `""` mean absent.
//!
//! Fields: `ip` (required), `timestamp` (required: Unix seconds or milliseconds, ISO 8601, or
//! the access-log date), `bytes`, `status`, `method`, `path`, `protocol`, `request` (a whole
//! request line, split when method/path/protocol have no key of their own), `user_agent`,
//! `dest_ip`, `suspicious` (a boolean, `0`/`1` or `"true"`/`"false"`).

use std::borrow::Cow;

use serde_json::Value;

use crate::clf::{parse_ip, request};
use crate::record::{LineError, LineParser, RecordRef};
use crate::time::{parse_timestamp_text, unix_number};

/// The fields a key map can fill.
pub const FIELDS: [&str; 11] = [
    "ip",
    "timestamp",
    "bytes",
    "status",
    "method",
    "path",
    "protocol",
    "request",
    "user_agent",
    "dest_ip",
    "suspicious",
];

/// A bad key map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Not one of [`FIELDS`].
    #[error("unknown field `{0}` in the key map (fields: {fields})", fields = FIELDS.join(", "))]
    UnknownField(String),
    /// Not `field=key`.
    #[error("`{0}` in the key map is not field=key")]
    Syntax(String),
    /// A key map for a format that has no keys.
    #[error("a key map applies to JSON formats, not to `{0}`")]
    NotJson(&'static str),
}

/// Which JSON keys give each field (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    keys: [Vec<String>; 11],
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl KeyMap {
    /// nginx's variable names: `remote_addr`, `time_iso8601` / `time_local` / `msec`,
    /// `body_bytes_sent` / `bytes_sent`, `status`, `request_method`, `request_uri` / `uri`,
    /// `server_protocol`, `request`, `http_user_agent`, `server_addr`.
    pub fn nginx() -> KeyMap {
        KeyMap {
            keys: [
                keys(&["remote_addr", "client_ip", "ip"]),
                keys(&["time_iso8601", "time_local", "msec", "timestamp", "time"]),
                keys(&["body_bytes_sent", "bytes_sent"]),
                keys(&["status"]),
                keys(&["request_method"]),
                keys(&["request_uri", "uri"]),
                keys(&["server_protocol"]),
                keys(&["request"]),
                keys(&["http_user_agent", "user_agent"]),
                keys(&["server_addr"]),
                keys(&[]),
            ],
        }
    }

    /// Caddy's access log: `request.client_ip` (else `request.remote_ip`), `ts`, `size`,
    /// `status`, `request.method`, `request.uri`, `request.proto`,
    /// `request.headers.User-Agent`.
    pub fn caddy() -> KeyMap {
        KeyMap {
            keys: [
                keys(&["request.client_ip", "request.remote_ip"]),
                keys(&["ts"]),
                keys(&["size"]),
                keys(&["status"]),
                keys(&["request.method"]),
                keys(&["request.uri"]),
                keys(&["request.proto"]),
                keys(&[]),
                keys(&["request.headers.User-Agent"]),
                keys(&[]),
                keys(&[]),
            ],
        }
    }

    /// This map with each `(field, key)` replacing the keys of that field.
    pub fn with_overrides(mut self, map: &[(String, String)]) -> Result<KeyMap, MapError> {
        for (field, key) in map {
            let i = FIELDS
                .iter()
                .position(|f| f == field)
                .ok_or_else(|| MapError::UnknownField(field.clone()))?;
            self.keys[i] = vec![key.clone()];
        }
        Ok(self)
    }

    /// The keys tried for `field` (one of [`FIELDS`]).
    pub fn keys(&self, field: &str) -> &[String] {
        FIELDS
            .iter()
            .position(|f| *f == field)
            .map_or(&[], |i| &self.keys[i])
    }
}

/// Parses `field=key,field=key` (as `--map` takes it) into pairs.
pub fn parse_map_arg(s: &str) -> Result<Vec<(String, String)>, MapError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (f, k) = p
                .split_once('=')
                .ok_or_else(|| MapError::Syntax(p.to_string()))?;
            let (f, k) = (f.trim(), k.trim());
            if f.is_empty() || k.is_empty() {
                return Err(MapError::Syntax(p.to_string()));
            }
            if !FIELDS.contains(&f) {
                return Err(MapError::UnknownField(f.to_string()));
            }
            Ok((f.to_string(), k.to_string()))
        })
        .collect()
}

/// JSON objects, one per line, through a [`KeyMap`].
#[derive(Debug, Clone)]
pub struct JsonMapParser {
    map: KeyMap,
}

impl JsonMapParser {
    /// A parser with this key map.
    pub fn new(map: KeyMap) -> JsonMapParser {
        JsonMapParser { map }
    }
}

fn lookup<'v>(root: &'v Value, key: &str) -> Option<&'v Value> {
    let found = if let Some(v) = root.get(key) {
        v
    } else {
        let mut v = root;
        for part in key.split('.') {
            v = match v {
                Value::Object(m) => m.get(part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        v
    };
    let found = match found {
        Value::Array(a) => a.first()?,
        v => v,
    };
    match found {
        Value::Null => None,
        Value::String(s) if s.is_empty() || s == "-" => None,
        v => Some(v),
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl JsonMapParser {
    fn get<'v>(&self, root: &'v Value, field: usize) -> Option<(&'v Value, &str)> {
        self.map.keys[field]
            .iter()
            .find_map(|k| lookup(root, k).map(|v| (v, k.as_str())))
    }

    fn first_key(&self, field: usize) -> String {
        self.map.keys[field].join("` or `")
    }
}

impl LineParser for JsonMapParser {
    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        let err = |reason: String| LineError::new(line, reason);
        let root: Value =
            serde_json::from_slice(text).map_err(|e| err(format!("not JSON: {e}")))?;
        if !root.is_object() {
            return Err(err("not a JSON object".into()));
        }
        let ip = match self.get(&root, 0) {
            None => {
                return Err(err(format!(
                    "no client address (key `{}`)",
                    self.first_key(0)
                )));
            }
            Some((v, key)) => string(v)
                .and_then(|s| parse_ip(s.as_bytes()))
                .ok_or_else(|| err(format!("`{key}` is not an IP address: {v}")))?,
        };
        let timestamp = match self.get(&root, 1) {
            None => return Err(err(format!("no timestamp (key `{}`)", self.first_key(1)))),
            Some((v, key)) => match v {
                Value::Number(n) => n.as_f64().and_then(unix_number),
                Value::String(s) => parse_timestamp_text(s),
                _ => None,
            }
            .ok_or_else(|| err(format!("`{key}` is not a timestamp: {v}")))?,
        };
        let mut rec = RecordRef::new(line, ip, timestamp);
        if let Some((v, key)) = self.get(&root, 2) {
            rec.bytes =
                Some(number(v).ok_or_else(|| err(format!("`{key}` is not a number: {v}")))?);
        }
        if let Some((v, key)) = self.get(&root, 3) {
            let s = number(v).and_then(|n| u16::try_from(n).ok());
            rec.status = Some(s.ok_or_else(|| err(format!("`{key}` is not a status: {v}")))?);
        }
        let owned = |f: usize| {
            self.get(&root, f)
                .and_then(|(v, _)| string(v))
                .map(Cow::Owned)
        };
        rec.method = owned(4);
        rec.path = owned(5);
        rec.protocol = owned(6);
        if let Some(req) = owned(7) {
            let (m, p, pr) = request(req.as_bytes(), false);
            let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
            rec.method = rec.method.or(own(m));
            rec.path = rec.path.or(own(p));
            rec.protocol = rec.protocol.or(own(pr));
        }
        rec.user_agent = owned(8);
        if let Some((v, key)) = self.get(&root, 9) {
            rec.dest_ip = Some(
                string(v)
                    .and_then(|s| parse_ip(s.as_bytes()))
                    .ok_or_else(|| err(format!("`{key}` is not an IP address: {v}")))?,
            );
        }
        if let Some((v, key)) = self.get(&root, 10) {
            rec.suspicious = Some(match v {
                Value::Bool(b) => *b,
                Value::Number(n) if n.as_u64() == Some(0) => false,
                Value::Number(n) if n.as_u64() == Some(1) => true,
                Value::String(s) if s == "true" || s == "1" => true,
                Value::String(s) if s == "false" || s == "0" => false,
                _ => return Err(err(format!("`{key}` is not true or false: {v}"))),
            });
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_arguments_are_checked() {
        assert_eq!(
            parse_map_arg("ip=client, timestamp=t").expect("valid"),
            [
                ("ip".into(), "client".into()),
                ("timestamp".into(), "t".into())
            ]
        );
        assert_eq!(
            parse_map_arg("ipx=a"),
            Err(MapError::UnknownField("ipx".into()))
        );
        assert_eq!(parse_map_arg("ip"), Err(MapError::Syntax("ip".into())));
    }

    #[test]
    fn dotted_keys_reach_into_objects_and_arrays() {
        let v: Value =
            serde_json::from_str(r#"{"a":{"b":[{"c":"x"}],"h":["y","z"]},"a.b":1}"#).expect("json");
        assert_eq!(lookup(&v, "a.b.0.c"), Some(&Value::from("x")));
        assert_eq!(lookup(&v, "a.h"), Some(&Value::from("y")));
        assert_eq!(
            lookup(&v, "a.b"),
            Some(&Value::from(1)),
            "a literal key wins"
        );
        assert_eq!(lookup(&v, "a.zz"), None);
    }
}
