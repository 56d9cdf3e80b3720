//! Access control, table-driven: every route of `server::routes::table()` with no, bad,
//! expired and valid credentials of each role. A new route is covered by being in the
//! table; a route added any other way fails `no_route_is_added_outside_the_table`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use server::auth::session::{self, Claims};
use server::auth::store::{now_unix, random_token};
use server::auth::{Access, Role};
use server::{AppState, Config, Geocoder, app, routes};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cred {
    None,
    NotBearer,
    UnknownToken,
    RevokedToken,
    ForgedSession,
    ExpiredAdmin,
    RemovedUser,
    Ingest,
    Viewer,
    Admin,
}

const ALL: [Cred; 10] = [
    Cred::None,
    Cred::NotBearer,
    Cred::UnknownToken,
    Cred::RevokedToken,
    Cred::ForgedSession,
    Cred::ExpiredAdmin,
    Cred::RemovedUser,
    Cred::Ingest,
    Cred::Viewer,
    Cred::Admin,
];

struct Fixture {
    state: AppState,
    ingest_token: String,
    revoked_token: String,
}

fn fixture(config: Config) -> Fixture {
    let state = AppState::new(config, Geocoder::shared(), CancellationToken::new());
    let (ingest_token, revoked_token) = state
        .auth
        .update(|f| {
            f.set_user("ann", Role::Admin, "admin password")?;
            f.set_user("val", Role::Viewer, "viewer password")?;
            f.set_user("gone", Role::Admin, "removed password")?;
            let ingest = f.add_token("sender")?;
            let revoked = f.add_token("old")?;
            Ok((ingest, revoked))
        })
        .unwrap();
    Fixture {
        state,
        ingest_token,
        revoked_token,
    }
}

impl Fixture {
    fn cookie(&self, user: &str, exp: i64) -> String {
        let key = self.state.auth.read(|f| f.session_key().unwrap());
        let claims = Claims {
            sid: random_token(),
            user: user.into(),
            exp,
        };
        format!("{}={}", session::COOKIE, session::sign(&key, &claims))
    }

    fn request(&self, method: &str, path: &str, cred: Cred, peer: SocketAddr) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(path);
        let later = now_unix() + 3600;
        builder = match cred {
            Cred::None => builder,
            Cred::NotBearer => builder.header("authorization", "Basic YW5uOnB3"),
            Cred::UnknownToken => builder.header("authorization", "Bearer tgi_nothing"),
            Cred::RevokedToken => {
                builder.header("authorization", format!("Bearer {}", self.revoked_token))
            }
            Cred::ForgedSession => {
                builder.header("cookie", format!("{}=e30.AAAA", session::COOKIE))
            }
            Cred::ExpiredAdmin => builder.header("cookie", self.cookie("ann", now_unix() - 1)),
            Cred::RemovedUser => builder.header("cookie", self.cookie("gone", later)),
            Cred::Ingest => {
                builder.header("authorization", format!("Bearer {}", self.ingest_token))
            }
            Cred::Viewer => builder.header("cookie", self.cookie("val", later)),
            Cred::Admin => builder.header("cookie", self.cookie("ann", later)),
        };
        let body = if method == "GET" {
            Body::empty()
        } else {
            builder = builder.header("content-type", "application/json");
            Body::from("{}")
        };
        let mut request = builder.body(body).unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    async fn status(&self, method: &str, path: &str, cred: Cred, peer: SocketAddr) -> StatusCode {
        let response = app(self.state.clone())
            .oneshot(self.request(method, path, cred, peer))
            .await
            .unwrap();
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            assert_eq!(response.headers()["content-type"], "application/json");
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let code = if status == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "forbidden"
            };
            assert_eq!(json["error"], code, "{json}");
        }
        status
    }

    fn remove_gone(&self) {
        self.state
            .auth
            .update(|f| {
                f.remove_user("gone");
                f.revoke_token("old");
                Ok(())
            })
            .unwrap();
    }
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "nobody")
}

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50000);
const REMOTE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)),
    50000,
);

/// What `cred` must get on a route needing `access` when nothing is open without
/// credentials: `None` for "let in" (any status but 401 and 403).
fn expected(access: Access, path: &str, cred: Cred) -> Option<StatusCode> {
    let bad = !matches!(cred, Cred::Ingest | Cred::Viewer | Cred::Admin);
    if access == Access::Public {
        // Public routes never refuse; /api/me says 401 to whoever is nobody.
        return (path == "/api/me" && bad).then_some(StatusCode::UNAUTHORIZED);
    }
    if bad {
        return Some(StatusCode::UNAUTHORIZED);
    }
    let allowed = matches!(
        (access, cred),
        (_, Cred::Admin) | (Access::Ingest, Cred::Ingest) | (Access::Viewer, Cred::Viewer)
    );
    (!allowed).then_some(StatusCode::FORBIDDEN)
}

#[tokio::test]
async fn every_route_answers_each_credential_as_its_access_rule_says() {
    let mut config = Config::default_for_tests();
    config.require_auth = true;
    let fixture = fixture(config);
    fixture.remove_gone();
    let table = routes::table();
    assert!(table.len() >= 17);
    for route in &table {
        let path = concrete(route.path);
        for cred in ALL {
            for peer in [LOOPBACK, REMOTE] {
                let status = fixture
                    .status(route.method.as_str(), &path, cred, peer)
                    .await;
                match expected(route.access, route.path, cred) {
                    Some(want) => assert_eq!(
                        status, want,
                        "{} {path} ({:?}) with {cred:?} from {peer}",
                        route.method, route.access
                    ),
                    None => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{} {path} ({:?}) with {cred:?} from {peer}: {status}",
                        route.method,
                        route.access
                    ),
                }
            }
        }
    }
}

/// The access rule of `method path` in the route table, if it is there.
fn access_of(method: &str, path: &str) -> Option<Access> {
    routes::table()
        .iter()
        .find(|r| r.method.as_str() == method && r.path == path)
        .map(|r| r.access)
}

/// The generator's rows of the table: watching it is a viewer's, steering it an admin's.
#[tokio::test]
async fn the_generator_is_a_viewers_to_watch_and_an_admins_to_start_stop_change_and_burst() {
    let access = access_of;
    assert_eq!(access("GET", "/api/generator"), Some(Access::Viewer));
    for (method, path) in [
        ("PUT", "/api/generator"),
        ("POST", "/api/generator/start"),
        ("POST", "/api/generator/stop"),
        ("POST", "/api/generator/burst"),
    ] {
        assert_eq!(access(method, path), Some(Access::Admin), "{method} {path}");
    }
    let fixture = fixture(Config::default_for_tests());
    let start = |cred| fixture.status("POST", "/api/generator/start", cred, LOOPBACK);
    assert_eq!(start(Cred::Viewer).await, StatusCode::FORBIDDEN);
    assert_eq!(start(Cred::Ingest).await, StatusCode::FORBIDDEN);
    assert_eq!(
        fixture
            .status("GET", "/api/generator", Cred::Viewer, REMOTE)
            .await,
        StatusCode::OK
    );
    assert_eq!(start(Cred::Admin).await, StatusCode::OK);
    assert_eq!(
        fixture
            .status("POST", "/api/generator/stop", Cred::Admin, REMOTE)
            .await,
        StatusCode::OK
    );
}

/// The housekeeping rows of the table: jobs and retention are an admin's; the daily
/// summaries a viewer's, as the history is.
#[tokio::test]
async fn housekeeping_jobs_and_retention_are_an_admins_and_daily_summaries_a_viewers() {
    let access = access_of;
    for (method, path) in [
        ("GET", "/api/jobs"),
        ("POST", "/api/jobs/{name}/pause"),
        ("POST", "/api/jobs/{name}/resume"),
        ("POST", "/api/jobs/{name}/run"),
        ("GET", "/api/retention"),
        ("PUT", "/api/retention"),
    ] {
        assert_eq!(access(method, path), Some(Access::Admin), "{method} {path}");
    }
    assert_eq!(access("GET", "/api/history/daily"), Some(Access::Viewer));
    let fixture = fixture(Config::default_for_tests());
    let pause = |cred| fixture.status("POST", "/api/jobs/retention/pause", cred, LOOPBACK);
    assert_eq!(pause(Cred::Viewer).await, StatusCode::FORBIDDEN);
    assert_eq!(pause(Cred::None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(pause(Cred::Admin).await, StatusCode::OK);
    assert_eq!(
        fixture
            .status("GET", "/api/jobs", Cred::Viewer, LOOPBACK)
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        fixture
            .status("GET", "/api/jobs", Cred::Admin, REMOTE)
            .await,
        StatusCode::OK
    );
}

/// Importing a CSV file writes (backdated) events into the history: an admin's alone; an
/// ingest token posts live events to /api/events and nothing else.
#[tokio::test]
async fn importing_a_file_is_an_admins_and_not_an_ingest_tokens_or_a_viewers() {
    let table = routes::table();
    let import = table
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.path == "/api/import")
        .map(|r| r.access);
    assert_eq!(import, Some(Access::Admin));
    let fixture = fixture(Config::default_for_tests());
    for (cred, want) in [
        (Cred::None, StatusCode::UNAUTHORIZED),
        (Cred::Ingest, StatusCode::FORBIDDEN),
        (Cred::Viewer, StatusCode::FORBIDDEN),
        // Let in; `--store memory` has no history to import into.
        (Cred::Admin, StatusCode::NOT_FOUND),
    ] {
        let status = fixture.status("POST", "/api/import", cred, LOOPBACK).await;
        assert_eq!(status, want, "{cred:?}");
    }
}

#[tokio::test]
async fn without_credentials_ingest_and_viewing_are_open_only_to_this_machine_on_loopback() {
    let fixture = fixture(Config::default_for_tests());
    for route in routes::table() {
        let path = concrete(route.path);
        let method = route.method.as_str();
        let local = fixture.status(method, &path, Cred::None, LOOPBACK).await;
        let remote = fixture.status(method, &path, Cred::None, REMOTE).await;
        let what = format!("{method} {path} ({:?})", route.access);
        match route.access {
            Access::Ingest | Access::Viewer => {
                assert!(local != StatusCode::UNAUTHORIZED, "{what}: {local}");
                assert_eq!(remote, StatusCode::UNAUTHORIZED, "{what}");
            }
            Access::Admin => {
                assert_eq!(local, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(remote, StatusCode::UNAUTHORIZED, "{what}");
            }
            Access::Public => {}
        }
    }
    // Through a proxy on this machine (web), the forwarded client address decides.
    let mut request = fixture.request("GET", "/api/stats", Cred::None, LOOPBACK);
    request
        .headers_mut()
        .insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
    let response = app(fixture.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut request = fixture.request("GET", "/api/stats", Cred::None, LOOPBACK);
    request
        .headers_mut()
        .insert("x-forwarded-for", "127.0.0.1".parse().unwrap());
    let response = app(fixture.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A request that did not come over a socket has no address: remote.
    let request = Request::get("/api/stats").body(Body::empty()).unwrap();
    let response = app(fixture.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_open_anyone_may_ingest_and_view_but_admin_still_needs_an_admin() {
    let mut config = Config::default_for_tests();
    config.open = true;
    let fixture = fixture(config);
    assert_eq!(
        fixture
            .status("GET", "/api/stats", Cred::None, REMOTE)
            .await,
        StatusCode::OK
    );
    assert_eq!(
        fixture
            .status("GET", "/api/audit", Cred::None, REMOTE)
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fixture
            .status("GET", "/api/audit", Cred::Viewer, REMOTE)
            .await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_ingest_token_from_the_environment_may_ingest_and_nothing_more() {
    let token = "a-shared-token-of-at-least-32-characters";
    let mut config = Config::default_for_tests();
    config.require_auth = true;
    config.ingest_token = Some(token.parse().unwrap());
    config.validate().unwrap();
    let fixture = fixture(config);
    let with = |path: &str, bearer: &str| {
        let method = if path == "/api/events" { "POST" } else { "GET" };
        let mut request = fixture.request(method, path, Cred::None, REMOTE);
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
        app(fixture.state.clone()).oneshot(request)
    };
    let ingest = with("/api/events", token).await.unwrap();
    assert_eq!(ingest.status(), StatusCode::UNPROCESSABLE_ENTITY); // let in; `{}` is no event
    assert_eq!(
        with("/api/stats", token).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let other = with("/api/events", "a-shared-token-of-at-least-32-characterZ");
    assert_eq!(other.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let mut short = Config::default_for_tests();
    short.ingest_token = Some("short".parse().unwrap());
    let error = short.validate().unwrap_err().to_string();
    assert!(
        error.starts_with("--ingest-token must be at least 32"),
        "{error}"
    );
}

#[tokio::test]
async fn a_listener_off_loopback_needs_credentials_even_from_this_machine() {
    let mut config = Config::default_for_tests();
    config.listen = "0.0.0.0:3000".parse().unwrap();
    let fixture = fixture(config);
    assert_eq!(
        fixture
            .status("GET", "/api/stats", Cred::None, LOOPBACK)
            .await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cross_origin_state_change_is_refused_and_a_same_origin_one_is_not() {
    let fixture = fixture(Config::default_for_tests());
    let send = |origin: Option<&'static str>, host: &'static str| {
        let mut request = fixture.request("POST", "/api/tokens", Cred::Admin, LOOPBACK);
        request.headers_mut().insert("host", host.parse().unwrap());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        app(fixture.state.clone()).oneshot(request)
    };
    let evil = send(Some("http://evil.example"), "localhost:8080")
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    let own = send(Some("http://localhost:8080"), "localhost:8080")
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::BAD_REQUEST); // let in; `{}` lacks a name
    let curl = send(None, "localhost:8080").await.unwrap();
    assert_eq!(curl.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_admin_action_is_in_the_audit_log_with_who_and_the_outcome() {
    let fixture = fixture(Config::default_for_tests());
    let mut request = fixture.request("POST", "/api/tokens", Cred::Admin, LOOPBACK);
    *request.body_mut() = Body::from(r#"{"name":"ci"}"#);
    let response = app(fixture.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    fixture
        .status("DELETE", "/api/users/nobody", Cred::Admin, REMOTE)
        .await;
    fixture
        .status("GET", "/api/audit", Cred::Viewer, LOOPBACK)
        .await;
    let entries: Vec<String> = fixture
        .state
        .auth
        .audit
        .recent(10)
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {} {}", e.action, e.actor, e.client, e.outcome))
        .collect();
    assert_eq!(
        entries,
        [
            "POST /api/tokens ann 127.0.0.1 ok",
            "DELETE /api/users/nobody ann 203.0.113.7 404",
        ]
    );
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_for_limits_and_audit_and_others_cannot() {
    let mut config = Config::default_for_tests();
    config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    let fixture = fixture(config);
    let proxy: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    for peer in [proxy, REMOTE] {
        let mut request = fixture.request("POST", "/api/login", Cred::None, peer);
        *request.body_mut() = Body::from(r#"{"user":"val","password":"wrong password"}"#);
        request
            .headers_mut()
            .insert("x-forwarded-for", "198.51.100.9".parse().unwrap());
        let response = app(fixture.state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let clients: Vec<String> = fixture
        .state
        .auth
        .audit
        .recent(2)
        .unwrap()
        .into_iter()
        .map(|e| e.client)
        .collect();
    assert_eq!(clients, ["198.51.100.9", "203.0.113.7"]);
}

#[test]
fn no_route_is_added_outside_the_table() {
    let lib = include_str!("../src/lib.rs");
    assert_eq!(
        lib.matches(".route(").count(),
        1,
        "routes are added only from routes::table() in app()"
    );
    for (name, source) in [
        ("api.rs", include_str!("../src/api.rs")),
        ("stream.rs", include_str!("../src/stream.rs")),
        ("auth/handlers.rs", include_str!("../src/auth/handlers.rs")),
    ] {
        assert!(!source.contains(".route("), "{name} adds a route");
        assert!(!source.contains(".nest("), "{name} nests a router");
    }
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_login_gives_an_httponly_strict_cookie_that_opens_the_stream_and_logout_ends_it() {
    let mut config = Config::default_for_tests();
    config.require_auth = true;
    let server = support::TestServer::start(config).await;
    server
        .state
        .auth
        .update(|f| f.set_user("val", Role::Viewer, "viewer password").map(drop))
        .unwrap();
    let base = server.url("");
    let client = reqwest::Client::new();
    let refused = client
        .get(format!("{base}/api/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let wrong = login(&client, &base, "val", "not the password").await;
    assert_eq!(wrong.status(), 401);
    let ok = login(&client, &base, "val", "viewer password").await;
    assert_eq!(ok.status(), 200);
    let set = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();

    let me: serde_json::Value = client
        .get(format!("{base}/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"], "val");
    assert_eq!(me["role"], "viewer");

    let stream = client
        .get(format!("{base}/api/stream"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();
    assert!(body.next().await.unwrap().is_ok());

    let out = client
        .post(format!("{base}/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    // The stream ends (bounded: a keep-alive would come only after 15 s).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session's logout");
    let again = client
        .get(format!("{base}/api/stats"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    let audit: Vec<String> = server
        .state
        .auth
        .audit
        .recent(10)
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {}", e.action, e.actor, e.outcome))
        .collect();
    assert_eq!(
        audit,
        ["login val bad_credentials", "login val ok", "logout val ok"]
    );
    server.shutdown.cancel();
}

#[tokio::test]
async fn after_ten_failed_logins_even_the_right_password_is_refused_for_a_while() {
    let server = support::TestServer::start(Config::default_for_tests()).await;
    server
        .state
        .auth
        .update(|f| f.set_user("ann", Role::Admin, "admin password").map(drop))
        .unwrap();
    let base = server.url("");
    let client = reqwest::Client::new();
    for _ in 0..server::auth::LOGIN_MAX_FAILURES {
        assert_eq!(login(&client, &base, "ann", "guess").await.status(), 401);
    }
    let limited = login(&client, &base, "ann", "admin password").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    server.shutdown.cancel();
}

#[tokio::test]
async fn the_setup_token_creates_the_first_admin_once() {
    let server = support::TestServer::start(Config::default_for_tests()).await;
    let secret = server.state.auth.begin_setup().expect("no admin yet");
    let base = server.url("");
    let client = reqwest::Client::new();
    let setup = |token: String| {
        client
            .post(format!("{base}/api/setup"))
            .json(
                &serde_json::json!({"token": token, "user": "root", "password": "first admin pw"}),
            )
            .send()
    };
    assert_eq!(setup("wrong".into()).await.unwrap().status(), 401);
    let ok = setup(secret.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().contains_key("set-cookie"));
    assert_eq!(setup(secret).await.unwrap().status(), 409);
    assert!(server.state.auth.read(|f| f.has_admin()));
    assert!(server.state.auth.begin_setup().is_none());
    server.shutdown.cancel();
}
