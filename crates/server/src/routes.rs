//! The one table of routes and who may call them. [`crate::app`] builds the router from it
//! alone, putting [`auth::guard`] with the route's [`Access`] in front of each handler, so
//! a route cannot exist without a rule.
//!
//! Adding an endpoint: add one line below (`Route::post(path, access, handler)`). Data-
//! or configuration-changing endpoints are [`Access::Admin`]. The table-driven test in
//! `tests/access.rs` then exercises the new line with no, bad, expired and valid credentials
//! of every role and checks the answer against its access level; nothing else to write.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::auth::{self, Access};
use crate::{
    AppState, analytics, api, capture, generator, housekeeping, import, jobs, past, stream,
};

/// One endpoint and the access it needs.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, in axum's syntax (`/api/users/{name}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

impl Route {
    fn on(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            access,
            handler,
        }
    }
}

/// `Route::get(path, access, handler)` and its siblings: the method is named once.
macro_rules! constructors {
    ($($name:ident => $method:ident),*) => {
        impl Route {
            $(
                fn $name<H: Handler<T, AppState>, T: 'static>(
                    path: &'static str,
                    access: Access,
                    handler: H,
                ) -> Self {
                    Self::on(Method::$method, path, access, $name(handler))
                }
            )*
        }
    };
}

constructors!(get => GET, post => POST, put => PUT, delete => DELETE);

/// Every route of the server.
pub fn table() -> Vec<Route> {
    use Access::{Admin, Ingest, Public, Viewer};
    use auth::handlers as h;
    vec![
        // The body limit is applied by the handler itself (it also refuses a declared
        // Content-Length over the limit before reading).
        Route::post("/api/events", Ingest, api::ingest),
        // A live capture's counters (kernel and queue drops), from the capturing sender.
        Route::post("/api/capture", Ingest, capture::report),
        Route::get("/api/stream", Viewer, stream::stream),
        Route::get("/api/stats", Viewer, api::stats),
        Route::get("/api/info", Viewer, api::info),
        // Any past window, and its export: a viewer's, as the stream and stats are (issue 11:
        // viewers may open history and exports; importing and deleting will be an admin's).
        Route::get("/api/history", Viewer, past::history),
        Route::get("/api/history/export", Viewer, past::export),
        // Importing a CSV file into the history changes what is stored (backdated events
        // included): an admin's. Senders post live events to /api/events instead.
        Route::post("/api/import", Admin, import::import),
        // Windowed analytics and alerts; changing the settings is an admin's.
        Route::get("/api/analytics", Viewer, analytics::report),
        Route::get("/api/alerts", Viewer, analytics::alerts),
        // The alert rules: reading them is a viewer's, replacing them an admin's.
        Route::get("/api/alerts/rules", Viewer, analytics::rules),
        Route::put("/api/alerts/rules", Admin, analytics::set_rules),
        Route::get("/api/analytics/config", Viewer, analytics::config),
        Route::put("/api/analytics/config", Admin, analytics::set_config),
        // The built-in traffic generator: watching it is a viewer's, steering it an admin's.
        Route::get("/api/generator", Viewer, generator::show),
        Route::put("/api/generator", Admin, generator::update),
        Route::post("/api/generator/start", Admin, generator::start),
        Route::post("/api/generator/stop", Admin, generator::stop),
        Route::post("/api/generator/burst", Admin, generator::burst),
        // Probes and scrapers: counts only, no addresses.
        Route::get("/healthz", Public, api::healthz),
        Route::get("/metrics", Public, api::metrics),
        // Sessions.
        Route::post("/api/login", Public, h::login),
        Route::post("/api/logout", Public, h::logout),
        Route::get("/api/me", Public, h::me),
        Route::post("/api/setup", Public, h::setup),
        // Administration.
        Route::get("/api/users", Admin, h::list_users),
        Route::post("/api/users", Admin, h::add_user),
        Route::delete("/api/users/{name}", Admin, h::remove_user),
        Route::get("/api/tokens", Admin, h::list_tokens),
        Route::post("/api/tokens", Admin, h::add_token),
        Route::delete("/api/tokens/{name}", Admin, h::revoke_token),
        Route::get("/api/audit", Admin, h::audit),
        // Housekeeping: the jobs, the retention setting (an admin's), the daily summaries
        // (a viewer's, as the history is).
        Route::get("/api/jobs", Admin, jobs::list),
        Route::post("/api/jobs/{name}/pause", Admin, jobs::pause),
        Route::post("/api/jobs/{name}/resume", Admin, jobs::resume),
        Route::post("/api/jobs/{name}/run", Admin, jobs::run),
        Route::get("/api/retention", Admin, housekeeping::retention),
        Route::put("/api/retention", Admin, housekeeping::set_retention),
        Route::get("/api/history/daily", Viewer, housekeeping::daily),
    ]
}
