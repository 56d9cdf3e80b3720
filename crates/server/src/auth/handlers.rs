//! The endpoints of access control: login, logout, who am I, first-admin setup, users,
//! ingest tokens and the audit log. Who may call each is in [`crate::routes`].

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::audit::Entry;
use super::store::{self, AuthFile};
use super::{Principal, Role, client_text, session};
use crate::AppState;
use crate::error::ApiError;

/// Largest JSON body of these endpoints.
const MAX_BODY: usize = 16 * 1024;

/// `POST /api/login` and `POST /api/setup` bodies.
#[derive(Debug, Deserialize)]
pub struct Login {
    user: String,
    password: String,
    /// Only for setup: the one-time secret from the log.
    #[serde(default)]
    token: Option<String>,
}

/// Who is asking (`GET /api/me`, and the answer to a login).
#[derive(Debug, Serialize)]
pub struct Me {
    user: Option<String>,
    role: Option<Role>,
    /// Whether ingest and viewing are open to this client without credentials.
    open: bool,
    /// Whether the first admin is still to be created (`POST /api/setup`).
    setup_required: bool,
    /// Unix seconds when the session ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<i64>,
}

/// Runs `f` (which writes the auth file) on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn json_body<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge(format!("the body must be at most {MAX_BODY} bytes")))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Malformed(e.to_string()))
}

/// `POST /api/login`: `{"user","password"}` → a session cookie.
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    let client = client_text(&state.auth, &request);
    let body: Login = match json_body(request).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let auth = &state.auth;
    let (client_key, user_key) = (format!("client:{client}"), format!("user:{}", body.user));
    if let Err(wait) = auth
        .by_client
        .check(&client_key)
        .and(auth.by_user.check(&user_key))
    {
        auth.audit
            .record(Entry::now("login", &body.user, &client, "rate_limited"));
        return ApiError::TooManyRequests(wait).into_response();
    }
    let hash = auth.read(|f| f.user(&body.user).map(|u| u.password_hash.clone()));
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| store::dummy_hash().to_owned());
    let password = body.password;
    let ok = auth
        .password_checks
        .run(move || store::verify_password(&password, &hash))
        .await
        && known;
    if !ok {
        auth.by_client.failed(&client_key);
        auth.by_user.failed(&user_key);
        auth.audit
            .record(Entry::now("login", &body.user, &client, "bad_credentials"));
        return ApiError::Unauthorized("wrong user name or password".into()).into_response();
    }
    auth.by_user.succeeded(&user_key);
    auth.audit
        .record(Entry::now("login", &body.user, &client, "ok"));
    logged_in(&state, &body.user)
}

/// The answer to a successful login or setup: the cookie and who is logged in.
fn logged_in(state: &AppState, user: &str) -> Response {
    let auth = &state.auth;
    let (cookie, claims) = auth.start_session(user);
    let me = Me {
        user: Some(user.to_owned()),
        role: auth.read(|f| f.user(user).map(|u| u.role)),
        open: false,
        setup_required: false,
        expires: Some(claims.exp),
    };
    let set = session::set_cookie(
        &cookie,
        auth.policy.session_secs,
        auth.policy.secure_cookies,
    );
    let mut response = Json(me).into_response();
    if let Ok(value) = HeaderValue::from_str(&set) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /api/logout`: ends this session (and its open streams) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    request: Request,
) -> Result<Response, ApiError> {
    if let Some(Extension(Principal::Session { user, claims, .. })) = principal {
        let auth = Arc::clone(&state.auth);
        blocking(move || auth.end_session(&claims)).await?;
        state.auth.audit.record(Entry::now(
            "logout",
            &user,
            &client_text(&state.auth, &request),
            "ok",
        ));
    }
    let set = session::set_cookie("", 0, state.auth.policy.secure_cookies);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&set) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /api/me`: who is asking; 401 when nobody is and nothing is open to them.
pub async fn me(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<Me>, ApiError> {
    let setup_required = state.auth.setup_pending();
    let me = match principal.map(|Extension(p)| p) {
        None => {
            return Err(ApiError::Unauthorized(if setup_required {
                "no admin yet: create one with the setup token from the server's log".into()
            } else {
                "not logged in".into()
            }));
        }
        Some(Principal::Open) => Me {
            user: None,
            role: None,
            open: true,
            setup_required,
            expires: None,
        },
        Some(Principal::Token(name)) => Me {
            user: Some(name),
            role: Some(Role::Ingest),
            open: false,
            setup_required,
            expires: None,
        },
        Some(Principal::Session { user, role, claims }) => Me {
            user: Some(user),
            role: Some(role),
            open: false,
            setup_required,
            expires: Some(claims.exp),
        },
    };
    Ok(Json(me))
}

/// `POST /api/setup`: `{"token","user","password"}` creates the first admin with the
/// one-time secret from the log, and logs them in.
pub async fn setup(State(state): State<AppState>, request: Request) -> Response {
    let client = client_text(&state.auth, &request);
    let client_key = format!("client:{client}");
    if let Err(wait) = state.auth.by_client.check(&client_key) {
        return ApiError::TooManyRequests(wait).into_response();
    }
    let body: Login = match json_body(request).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let auth = &state.auth;
    if auth.read(AuthFile::has_admin) {
        return ApiError::Conflict("setup is done: an admin exists; log in".into()).into_response();
    }
    if !auth.take_setup(body.token.as_deref().unwrap_or("")) {
        auth.by_client.failed(&client_key);
        auth.audit
            .record(Entry::now("setup", &body.user, &client, "bad_token"));
        return ApiError::Unauthorized("wrong setup token (see the server's log)".into())
            .into_response();
    }
    let (user, password) = (body.user.clone(), body.password);
    let auth_for_update = Arc::clone(&state.auth);
    let added =
        blocking(move || auth_for_update.update(|f| f.set_user(&user, Role::Admin, &password)))
            .await;
    if let Err(e) = added {
        // The secret stays usable for a corrected attempt.
        *auth.setup.lock().unwrap_or_else(|e| e.into_inner()) = body.token.map(super::Secret);
        return ApiError::Invalid {
            message: format!("{e:#}"),
            item: 0,
            field: None,
            reason: format!("{e:#}"),
        }
        .into_response();
    }
    auth.audit
        .record(Entry::now("setup", &body.user, &client, "ok").on(&body.user));
    logged_in(&state, &body.user)
}

/// A user as listed (no hash).
#[derive(Debug, Serialize)]
pub struct UserInfo {
    name: String,
    role: Role,
    created: i64,
}

/// `GET /api/users`.
pub async fn list_users(State(state): State<AppState>) -> Json<Vec<UserInfo>> {
    Json(state.auth.read(|f| {
        f.users
            .iter()
            .map(|u| UserInfo {
                name: u.name.clone(),
                role: u.role,
                created: u.created,
            })
            .collect()
    }))
}

/// `POST /api/users` body.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    name: String,
    role: Role,
    password: String,
}

/// `POST /api/users`: adds a user, or sets an existing one's role and password.
pub async fn add_user(
    State(state): State<AppState>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let body: NewUser = json_body(request).await?;
    let auth = Arc::clone(&state.auth);
    let new = blocking(move || auth.update(|f| f.set_user(&body.name, body.role, &body.password)))
        .await
        .map_err(|e| ApiError::Malformed(format!("{e:#}")))?;
    Ok(if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// `DELETE /api/users/{name}`: removes a user and ends their sessions; the last admin
/// cannot be removed.
pub async fn remove_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auth = Arc::clone(&state.auth);
    let target = name.clone();
    let removed = blocking(move || {
        auth.update(|f| {
            let admins = f.users.iter().filter(|u| u.role == Role::Admin).count();
            if admins == 1 && f.user(&target).is_some_and(|u| u.role == Role::Admin) {
                return Ok(None);
            }
            Ok(Some(f.remove_user(&target)))
        })
    })
    .await?;
    match removed {
        None => Err(ApiError::Conflict(
            "the last admin cannot be removed".into(),
        )),
        Some(false) => Err(ApiError::NotFound(format!("user {name}"))),
        Some(true) => {
            state.auth.end_sessions_of_missing_users();
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// A token as listed (no secret).
#[derive(Debug, Serialize)]
pub struct TokenInfo {
    name: String,
    created: i64,
}

/// `GET /api/tokens`.
pub async fn list_tokens(State(state): State<AppState>) -> Json<Vec<TokenInfo>> {
    Json(state.auth.read(|f| {
        f.tokens
            .iter()
            .map(|t| TokenInfo {
                name: t.name.clone(),
                created: t.created,
            })
            .collect()
    }))
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    name: String,
}

/// `POST /api/tokens`: a new ingest token, shown this once.
pub async fn add_token(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let body: NewToken = json_body(request).await?;
    let auth = Arc::clone(&state.auth);
    let name = body.name.clone();
    let token = blocking(move || auth.update(|f| f.add_token(&name)))
        .await
        .map_err(|e| ApiError::Malformed(format!("{e:#}")))?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "name": body.name, "token": token })),
    )
        .into_response())
}

/// `DELETE /api/tokens/{name}`: revokes an ingest token at once.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auth = Arc::clone(&state.auth);
    let target = name.clone();
    if blocking(move || auth.update(|f| Ok(f.revoke_token(&target)))).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("token {name}")))
    }
}

/// `GET /api/audit` query.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Newest entries to return (default 200, at most 10000).
    limit: Option<usize>,
}

/// `GET /api/audit`: the newest audit entries, newest last.
pub async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let limit = query.limit.unwrap_or(200).min(10_000);
    let auth = Arc::clone(&state.auth);
    let entries = blocking(move || auth.audit.recent(limit)).await?;
    Ok(Json(entries))
}
