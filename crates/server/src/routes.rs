//! The one table of routes and who may call them. [`crate::app`] builds the router from it
//! alone, putting [`auth::guard`] with the route's [`Access`] in front of each handler, so
//! a route cannot exist without a rule.
//!
//! Adding an endpoint: add one [`Route`] line below (method, path, access, handler). Data-
//! or configuration-changing endpoints are [`Access::Admin`]. The table-driven test in
//! `tests/access.rs` then exercises the new line with no, bad, expired and valid credentials
//! of every role and checks the answer against its access level; nothing else to write.

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

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route of the server.
pub fn table() -> Vec<Route> {
    use Access::{Admin, Ingest, Public, Viewer};
    use auth::handlers as h;
    vec![
        // The body limit is applied by the handler itself (it also refuses a declared
        // Content-Length over the limit before reading).
        route(Method::POST, "/api/events", Ingest, post(api::ingest)),
        // A live capture's counters (kernel and queue drops), from the capturing sender.
        route(Method::POST, "/api/capture", Ingest, post(capture::report)),
        route(Method::GET, "/api/stream", Viewer, get(stream::stream)),
        route(Method::GET, "/api/stats", Viewer, get(api::stats)),
        route(Method::GET, "/api/info", Viewer, get(api::info)),
        // Any past window, and its export: a viewer's, as the stream and stats are (issue 11:
        // viewers may open history and exports; importing and deleting will be an admin's).
        route(Method::GET, "/api/history", Viewer, get(past::history)),
        route(
            Method::GET,
            "/api/history/export",
            Viewer,
            get(past::export),
        ),
        // Importing a CSV file into the history changes what is stored (backdated events
        // included): an admin's. Senders post live events to /api/events instead.
        route(Method::POST, "/api/import", Admin, post(import::import)),
        // Windowed analytics and alerts; changing the settings is an admin's.
        route(
            Method::GET,
            "/api/analytics",
            Viewer,
            get(analytics::report),
        ),
        route(Method::GET, "/api/alerts", Viewer, get(analytics::alerts)),
        // The alert rules: reading them is a viewer's, replacing them an admin's.
        route(
            Method::GET,
            "/api/alerts/rules",
            Viewer,
            get(analytics::rules),
        ),
        route(
            Method::PUT,
            "/api/alerts/rules",
            Admin,
            put(analytics::set_rules),
        ),
        route(
            Method::GET,
            "/api/analytics/config",
            Viewer,
            get(analytics::config),
        ),
        route(
            Method::PUT,
            "/api/analytics/config",
            Admin,
            put(analytics::set_config),
        ),
        // The built-in traffic generator: watching it is a viewer's, steering it an admin's.
        route(Method::GET, "/api/generator", Viewer, get(generator::show)),
        route(Method::PUT, "/api/generator", Admin, put(generator::update)),
        route(
            Method::POST,
            "/api/generator/start",
            Admin,
            post(generator::start),
        ),
        route(
            Method::POST,
            "/api/generator/stop",
            Admin,
            post(generator::stop),
        ),
        route(
            Method::POST,
            "/api/generator/burst",
            Admin,
            post(generator::burst),
        ),
        // Probes and scrapers: counts only, no addresses.
        route(Method::GET, "/healthz", Public, get(api::healthz)),
        route(Method::GET, "/metrics", Public, get(api::metrics)),
        // Sessions.
        route(Method::POST, "/api/login", Public, post(h::login)),
        route(Method::POST, "/api/logout", Public, post(h::logout)),
        route(Method::GET, "/api/me", Public, get(h::me)),
        route(Method::POST, "/api/setup", Public, post(h::setup)),
        // Administration.
        route(Method::GET, "/api/users", Admin, get(h::list_users)),
        route(Method::POST, "/api/users", Admin, post(h::add_user)),
        route(
            Method::DELETE,
            "/api/users/{name}",
            Admin,
            delete(h::remove_user),
        ),
        route(Method::GET, "/api/tokens", Admin, get(h::list_tokens)),
        route(Method::POST, "/api/tokens", Admin, post(h::add_token)),
        route(
            Method::DELETE,
            "/api/tokens/{name}",
            Admin,
            delete(h::revoke_token),
        ),
        route(Method::GET, "/api/audit", Admin, get(h::audit)),
        // Housekeeping: the jobs, the retention setting (an admin's), the daily summaries
        // (a viewer's, as the history is).
        route(Method::GET, "/api/jobs", Admin, get(jobs::list)),
        route(
            Method::POST,
            "/api/jobs/{name}/pause",
            Admin,
            post(jobs::pause),
        ),
        route(
            Method::POST,
            "/api/jobs/{name}/resume",
            Admin,
            post(jobs::resume),
        ),
        route(Method::POST, "/api/jobs/{name}/run", Admin, post(jobs::run)),
        route(
            Method::GET,
            "/api/retention",
            Admin,
            get(housekeeping::retention),
        ),
        route(
            Method::PUT,
            "/api/retention",
            Admin,
            put(housekeeping::set_retention),
        ),
        route(
            Method::GET,
            "/api/history/daily",
            Viewer,
            get(housekeeping::daily),
        ),
    ]
}
