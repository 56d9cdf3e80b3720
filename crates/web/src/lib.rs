//! traffic-globe web: serves the built frontend (the Three.js globe) and forwards `/api/*`
//! to the server, so the browser talks to one origin.
//!
//! [`app`] builds the router (tests drive it with `oneshot` or on a real socket); [`serve`]
//! runs it on a listener with graceful shutdown; [`run`] is what `main` calls.

mod assets;
mod config;
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// HTTP client for the upstream (connection pool shared by all requests).
    client: reqwest::Client,
    /// Upstream base URL without a trailing slash.
    upstream: Arc<str>,
    /// Cancelled on shutdown; ends forwarded streams.
    shutdown: CancellationToken,
}

impl AppState {
    /// State for `config`.
    pub fn new(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            // The upstream is a neighbour on our network: no proxies, no redirects followed
            // on the browser's behalf.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("while building the upstream HTTP client")?;
        Ok(Self {
            client,
            upstream: config.upstream_base().into(),
            shutdown,
        })
    }
}

/// The router: `/healthz`, `/api/*` forwarded upstream, everything else from `dist`.
pub fn app(config: &Config, state: AppState) -> Router {
    let static_files = Router::new()
        .fallback_service(assets::service(&config.dist))
        .layer(axum::middleware::from_fn(assets::cache_headers))
        // Event streams are never compressed (the default predicate skips them), and the
        // API is not routed through here anyway.
        .layer(CompressionLayer::new().gzip(true));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api", any(proxy::forward))
        .route("/api/{*rest}", any(proxy::forward))
        .with_state(state)
        .merge(static_files)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Serves on `listener` until `shutdown` is cancelled, then drains (open streams end too).
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState::new(config, shutdown.clone())?;
    // Each browser connection may hold one to the upstream too.
    let limits = config.serve_limits().within_open_file_limit(64, 2);
    traffic::service::serve(listener, app(config, state), limits, shutdown)
        .await
        .context("while serving HTTP")
}

/// Asks a running web at `address` (`host:port`) whether it is healthy: `GET /healthz` must
/// answer 200 within `timeout`.
pub async fn probe(address: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .context("while building the probe's HTTP client")?;
    let url = format!("http://{address}/healthz");
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("while asking {url}"))?;
    anyhow::ensure!(
        response.status() == reqwest::StatusCode::OK,
        "{url} answered {}",
        response.status()
    );
    Ok(())
}

/// Checks the config, binds `config.listen` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate()?;
    if !config.dist.join("index.html").is_file() {
        tracing::warn!(
            dist = %config.dist.display(),
            "no index.html in the dist folder; build the frontend (npm run build in frontend/)"
        );
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        upstream = %config.upstream,
        dist = %config.dist.display(),
        "listening"
    );
    serve(listener, &config, shutdown).await
}
