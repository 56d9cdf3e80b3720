//! The layer in front of every route ([`guard`]) and what it decides by: where a request
//! comes from ([`client_addr`]), whether ingest and viewing are open to it, and whether a
//! state-changing request comes from the page's own origin.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::audit::Entry;
use super::{Access, Auth, Principal};
use crate::error::ApiError;

/// Where a request comes from: the TCP peer, or for a peer on loopback or in `trusted`
/// (`--trusted-proxies`: the `web` proxy) the last address in `X-Forwarded-For`. `None`
/// for a request that did not come over a socket (in-process tests): treated as remote.
pub fn client_addr(request: &Request, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip();
    if !peer.is_loopback() && !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    match forwarded_for(request.headers()) {
        Some(Some(ip)) => Some(ip),
        Some(None) => None,
        None => Some(peer),
    }
}

/// The last `X-Forwarded-For` address: `None` without the header, `Some(None)` if it is
/// unreadable.
fn forwarded_for(headers: &HeaderMap) -> Option<Option<IpAddr>> {
    let values: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    let last = values.last()?;
    Some(
        last.to_str()
            .ok()
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok()),
    )
}

/// Whether a request without credentials may ingest and view.
fn open_to(auth: &Auth, request: &Request) -> bool {
    if auth.policy.open {
        return true;
    }
    if auth.policy.require_auth || !auth.policy.loopback_listener.load(Relaxed) {
        return false;
    }
    // Another proxy on this machine would make every client look local: a request that
    // says it was forwarded in any other way counts as remote.
    if request.headers().contains_key(header::FORWARDED) {
        return false;
    }
    // On a loopback listener every peer is on loopback: trusted proxies play no part here.
    client_addr(request, &[]).is_some_and(|ip| ip.is_loopback())
}

/// CSRF: a state-changing request from a browser must come from the page's own origin.
fn same_origin(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refused = || ApiError::Forbidden("cross-origin request refused".into());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|h| h.to_str().ok())
            .ok_or_else(refused)?;
        let origin = origin.to_str().map_err(|_| refused())?;
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .ok_or_else(refused)?;
        return if authority.eq_ignore_ascii_case(host) {
            Ok(())
        } else {
            Err(refused())
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site" | "same-site") => Err(refused()),
        _ => Ok(()),
    }
}

/// The client as text for the audit log and rate limits.
pub(crate) fn client_text(auth: &Auth, request: &Request) -> String {
    client_addr(request, &auth.policy.trusted_proxies)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The layer in front of every route: checks the origin of state-changing requests, who is
/// asking and whether `access` lets them; records admin actions; ties a session's responses
/// to the session, so logout ends its open streams.
pub(crate) async fn guard(
    State((auth, access)): State<(Arc<Auth>, Access)>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &*auth;
    if let Err(e) = same_origin(request.method(), request.headers()) {
        return e.into_response();
    }
    let principal = match auth.authenticate(request.headers()) {
        Ok(principal) => principal,
        Err(_) if access == Access::Public => None,
        Err(e) => return e.into_response(),
    };
    let principal = match principal {
        Some(p) => Some(p),
        None if access == Access::Public => open_to(auth, &request).then_some(Principal::Open),
        None if access != Access::Admin && open_to(auth, &request) => Some(Principal::Open),
        None => {
            return ApiError::Unauthorized(match access {
                Access::Admin => "log in as an admin (POST /api/login)".into(),
                _ => "credentials required: log in (POST /api/login) or send `Authorization: Bearer TOKEN`".into(),
            })
            .into_response();
        }
    };
    if let Some(p) = &principal
        && !p.may(access)
    {
        return ApiError::Forbidden(format!(
            "this needs the {} role",
            match access {
                Access::Ingest => "ingest",
                Access::Viewer => "viewer",
                _ => "admin",
            }
        ))
        .into_response();
    }
    let audit = (access == Access::Admin).then(|| {
        let actor = match &principal {
            Some(Principal::Session { user, .. }) => user.clone(),
            _ => "?".to_owned(),
        };
        (
            format!("{} {}", request.method(), request.uri().path()),
            actor,
            client_text(auth, &request),
        )
    });
    let session = match &principal {
        Some(Principal::Session { claims, .. }) => Some(auth.session_token(claims)),
        _ => None,
    };
    // Who it was, for the request log.
    let caller = match &principal {
        Some(Principal::Session { user, .. }) => Some(user.clone()),
        Some(Principal::Token(name)) => Some(format!("token:{name}")),
        _ => None,
    };
    if let Some(p) = principal {
        request.extensions_mut().insert(p);
    }
    let mut response = next.run(request).await;
    if let Some(caller) = caller {
        response
            .extensions_mut()
            .insert(crate::reqlog::Caller(caller));
    }
    if let Some((action, actor, client)) = audit {
        let status = response.status();
        let outcome = if status.is_success() {
            "ok".to_owned()
        } else {
            status.as_u16().to_string()
        };
        auth.audit
            .record(Entry::now(&action, &actor, &client, &outcome));
    }
    match session {
        Some(ended) => {
            let (parts, body) = response.into_parts();
            let ended = async move { ended.cancelled().await };
            let body = body.into_data_stream().take_until(ended);
            Response::from_parts(parts, axum::body::Body::from_stream(body))
        }
        None => response,
    }
}
