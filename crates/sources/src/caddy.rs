//! Caddy's JSON access logs (`http.log.access`): a [`JsonMapParser`] with [`KeyMap::caddy`].
//!
//! ```json
//! {"level":"info","ts":1646861401.52,"logger":"http.log.access","msg":"handled request",
//!  "request":{"remote_ip":"10.0.0.1","client_ip":"203.0.113.9","proto":"HTTP/2.0",
//!  "method":"GET","host":"example.com","uri":"/","headers":{"User-Agent":["curl/8.0"]}},
//!  "size":10900,"status":200}
//! ```
//!
//! The client is `request.client_ip` (Caddy ≥ 2.7, the address after trusted proxies), else
//! `request.remote_ip`.

use crate::json_map::{JsonMapParser, KeyMap};
use crate::record::{LineError, LineParser, RecordRef};

/// The Caddy access-log parser.
#[derive(Debug, Clone)]
pub struct CaddyParser(JsonMapParser);

impl Default for CaddyParser {
    fn default() -> Self {
        CaddyParser(JsonMapParser::new(KeyMap::caddy()))
    }
}

impl LineParser for CaddyParser {
    fn parse<'a>(&mut self, line: u64, text: &'a [u8]) -> Result<RecordRef<'a>, LineError> {
        self.0.parse(line, text)
    }
}
