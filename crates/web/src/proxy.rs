//! Forwarding of `/api/*` to the upstream server.
//!
//! Bodies stream both ways, chunk by chunk: an SSE response reaches the browser event by
//! event, with nothing buffered here. Request headers go through (`Last-Event-ID` among
//! them) except the hop-by-hop ones. Forwarded responses end when the web binary shuts
//! down, so an open event stream never holds up a graceful shutdown.
//!
//! The upstream learns who the client is from `X-Forwarded-For` (this connection's peer
//! address, replacing whatever the client sent, so no client can claim to be local) and
//! which origin the page was loaded from from `X-Forwarded-Host` (the Host the browser
//! used, for the server's CSRF origin check). Cookies and `Set-Cookie` pass through as they
//! are: the login session lives in a cookie.
//!
//! Only paths under `/api` are forwarded, and only in a form that no later step can turn
//! into another path: the URL library on the way upstream resolves `..` and `%2e%2e`
//! (WHATWG URL rules), so a path with a dot segment, an empty segment, a backslash or an
//! encoded separator in any spelling is refused here with a 404 before it is built.

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::AppState;

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Any method on `/api/*`: the same request to the upstream, its answer streamed back.
pub(crate) async fn forward(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if !is_forwardable(parts.uri.path()) {
        tracing::debug!(
            path = parts.uri.path(),
            "refused a path that is not plainly under /api"
        );
        return not_found();
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{}", state.upstream, path_and_query);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    set_forwarding(&mut headers, peer);
    let mut upstream = state.client.request(parts.method, &url).headers(headers);
    // A GET has no body; streaming an empty one would turn it into a chunked request.
    if http_body_is_empty(&body) {
        upstream = upstream.body(reqwest::Body::from(bytes::Bytes::new()));
    } else {
        upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let response = match upstream.send().await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(url, error = %e, "upstream request failed");
            return bad_gateway();
        }
    };
    let status = response.status();
    let mut headers = response.headers().clone();
    strip_hop_by_hop(&mut headers);
    let shutdown = state.shutdown.clone().cancelled_owned();
    let body = Body::from_stream(response.bytes_stream().take_until(shutdown));
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Whether `path` (as sent, still percent-encoded) is `/api` or below it, with every
/// segment a plain name: not `.` or `..` in any spelling, not empty (`//`), and without a
/// `/`, `\\` or control character, raw or percent-encoded. A trailing `/` is allowed.
fn is_forwardable(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return false; // `/apix`
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.is_empty() || rest.split('/').all(is_plain_segment)
}

fn is_plain_segment(segment: &str) -> bool {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
    let dots = decoded.iter().all(|&b| b == b'.');
    !decoded.is_empty()
        && !dots
        && !decoded
            .iter()
            .any(|&b| b == b'/' || b == b'\\' || b == b'%' || b.is_ascii_control())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"error":"not_found","message":"only plain paths under /api/ are forwarded"}"#,
    )
        .into_response()
}

fn http_body_is_empty(body: &Body) -> bool {
    use axum::body::HttpBody;
    body.size_hint().exact() == Some(0)
}

/// Replaces the client's own forwarding headers with what this proxy knows: its peer's
/// address (`unknown` if it has none, which the server treats as remote) and the Host the
/// client asked for; the `Host` itself becomes the upstream's.
fn set_forwarding(headers: &mut HeaderMap, peer: Option<SocketAddr>) {
    let host = headers.remove(header::HOST);
    headers.remove(header::FORWARDED);
    headers.remove("x-forwarded-host");
    let client = peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
    if let Ok(value) = HeaderValue::from_str(&client) {
        headers.insert("x-forwarded-for", value);
    }
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
}

fn bad_gateway() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"error":"the traffic-globe server is not reachable"}"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_under_api_are_forwardable() {
        for ok in [
            "/api",
            "/api/",
            "/api/stream",
            "/api/events/",
            "/api/a%20b",
            "/api/v1.2/x",
        ] {
            assert!(is_forwardable(ok), "{ok}");
        }
        for bad in [
            "/",
            "/apix",
            "/metrics",
            "/api/..",
            "/api/../metrics",
            "/api/./stats",
            "/api/.../x",
            "/api/%2e%2e/metrics",
            "/api/%2E%2E/metrics",
            "/api/.%2e/metrics",
            "/api/%2e/metrics",
            "/api/..%2fmetrics",
            "/api/x%2F..%2F..%2Fmetrics",
            "/api/..%5cmetrics",
            "/api/..\\metrics",
            "/api//metrics",
            "/api/x/../../metrics",
            "/api/%252e%252e/metrics",
            "/api/a%00b",
        ] {
            assert!(!is_forwardable(bad), "{bad}");
        }
    }

    #[test]
    fn the_client_address_and_host_replace_whatever_the_client_claimed() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        headers.insert("forwarded", HeaderValue::from_static("for=127.0.0.1"));
        headers.insert("x-forwarded-host", HeaderValue::from_static("evil"));
        headers.insert(header::HOST, HeaderValue::from_static("globe.example:8080"));
        headers.insert(header::COOKIE, HeaderValue::from_static("tg_session=a.b"));
        set_forwarding(&mut headers, Some(([203, 0, 113, 7], 5555).into()));
        assert_eq!(headers["x-forwarded-for"], "203.0.113.7");
        assert_eq!(headers["x-forwarded-host"], "globe.example:8080");
        assert_eq!(headers[header::COOKIE], "tg_session=a.b");
        assert!(!headers.contains_key(header::HOST));
        assert!(!headers.contains_key(header::FORWARDED));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        set_forwarding(&mut headers, None);
        assert_eq!(headers["x-forwarded-for"], "unknown");
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("last-event-id", HeaderValue::from_static("abc-7"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["last-event-id"], "abc-7");
    }
}
