//! The built frontend: files from the dist folder, the single-page fallback, and the
//! headers that go with them (cache lifetimes, Content-Security-Policy).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Only our own origin: scripts, styles, images, workers and connections (the stream).
/// No inline scripts or styles; Vite's build emits none and three.js needs none.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; worker-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Vite puts content-hashed files here: their name changes when they do.
const HASHED_PREFIX: &str = "/assets/";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Files from `dist`, with `index.html` for any path that looks like a page of the app.
pub(crate) fn service(dist: &Path) -> ServeDir<Router> {
    let fallback = Router::new()
        .fallback(spa_fallback)
        .with_state(Arc::new(dist.join("index.html")));
    ServeDir::new(dist)
        .append_index_html_on_directories(true)
        .fallback(fallback)
}

/// `index.html` for client-side routes (`/about`), 404 for anything that names a file.
async fn spa_fallback(State(index): State<Arc<PathBuf>>, request: Request) -> Response {
    let path = request.uri().path();
    let names_a_file = path.starts_with(HASHED_PREFIX)
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'));
    let page_request = matches!(*request.method(), Method::GET | Method::HEAD);
    if names_a_file || !page_request {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match ServeFile::new(index.as_path()).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => {
            tracing::error!(error = %e, "cannot read index.html");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Long caching for hashed assets; every other page or file is revalidated each time, so a
/// new build is picked up at once.
pub(crate) async fn cache_headers(request: Request, next: Next) -> Response {
    let hashed = request.uri().path().starts_with(HASHED_PREFIX);
    let mut response = next.run(request).await;
    let value = if hashed && response.status().is_success() {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}
