//! Access control: who may send (ingest), watch (viewer) and change things (admin).
//!
//! Every route is declared once in [`crate::routes`] with the [`Access`] it needs; the router
//! is built from that table and puts [`guard`] in front of each route, so a handler never
//! checks a credential itself and no route exists without a rule.
//!
//! Credentials: an ingest token (`Authorization: Bearer tgi_...`) or a session cookie (from
//! `POST /api/login`). Without any, ingest and viewing are open only when the server
//! listens on loopback and the client is on this machine (see [`Policy`]), or with `--open`.
//! No credentials or bad ones: 401; the wrong role: 403.

pub mod audit;
mod guard;
pub(crate) mod handlers;
pub mod limit;
pub mod session;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use audit::AuditLog;
pub use guard::client_addr;
pub(crate) use guard::{client_text, guard};
use limit::{Limiter, PasswordChecks};
use store::AuthFile;
pub use traffic::Secret;

/// What a credential lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May POST events (ingest tokens).
    Ingest,
    /// May open the page, the stream, stats and history.
    Viewer,
    /// Everything, including every endpoint that changes configuration or data.
    Admin,
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, login); credentials are read if present but never refused.
    Public,
    /// An ingest token or an admin; open on loopback / with `--open`.
    Ingest,
    /// A viewer or an admin; open on loopback / with `--open`.
    Viewer,
    /// An admin session, always.
    Admin,
}

/// Who is making a request (a request extension set by [`guard`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Nobody, let in because ingest and viewing are open here.
    Open,
    /// A sender with the ingest token of this name.
    Token(String),
    /// A person logged in.
    Session {
        /// User name.
        user: String,
        /// Their role now (looked up on each request).
        role: Role,
        /// The session's claims.
        claims: session::Claims,
    },
}

impl Principal {
    /// The role this principal acts with (`None` for [`Principal::Open`]).
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::Open => None,
            Principal::Token(_) => Some(Role::Ingest),
            Principal::Session { role, .. } => Some(*role),
        }
    }

    fn may(&self, access: Access) -> bool {
        matches!(
            (access, self.role()),
            (Access::Public, _)
                | (_, Some(Role::Admin))
                | (Access::Ingest, Some(Role::Ingest))
                | (Access::Viewer, Some(Role::Viewer))
                | (Access::Ingest | Access::Viewer, None)
        )
    }
}

/// When requests without credentials may ingest and view.
#[derive(Debug)]
pub struct Policy {
    /// `--open`: from anywhere.
    pub open: bool,
    /// `--require-auth`: never, not even on loopback.
    pub require_auth: bool,
    /// Whether the listening socket is on a loopback address (set when it is bound).
    pub loopback_listener: AtomicBool,
    /// Session lifetime.
    pub session_secs: i64,
    /// Whether cookies get `Secure` (`--secure-cookies`).
    pub secure_cookies: bool,
    /// `--ingest-token`: accepted besides the tokens in the file, as `env`.
    pub ingest_token: Option<Secret>,
    /// `--trusted-proxies`: peers whose `X-Forwarded-For` names the client (for login
    /// limits and the audit log; loopback peers always are).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The auth state shared by all requests.
#[derive(Debug)]
pub struct Auth {
    path: Option<PathBuf>,
    file: RwLock<Loaded>,
    /// Logins, logouts and admin actions.
    pub audit: AuditLog,
    /// Failed logins per client address.
    pub by_client: Limiter,
    /// Failed logins per user name.
    pub by_user: Limiter,
    /// Login password checks, a few at a time.
    pub password_checks: PasswordChecks,
    /// Cancellation of the open responses (streams) of each session, by session id, with
    /// the user: an entry lives while a response of that session is open (each holds a
    /// clone of the `Arc`), so the map is bounded by the open connections.
    sessions: Mutex<HashMap<String, (String, Arc<CancellationToken>)>>,
    /// The one-time secret that creates the first admin, while there is none.
    setup: Mutex<Option<Secret>>,
    /// When credentials are needed.
    pub policy: Policy,
    shutdown: CancellationToken,
}

struct Loaded {
    file: AuthFile,
    key: Vec<u8>,
}

/// Never the key, the hashes or the file's session key: `Auth` is `Debug`, and a debug print
/// must not put a secret in a log.
impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("users", &self.file.users.len())
            .field("tokens", &self.file.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Failed logins allowed per client and per user within [`LOGIN_WINDOW`].
pub const LOGIN_MAX_FAILURES: u32 = 10;
/// See [`LOGIN_MAX_FAILURES`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

impl Auth {
    /// The state in `dir/auth.json` (created with a fresh key if missing), or in memory only
    /// when `dir` is `None` (tests).
    pub fn open(
        dir: Option<&std::path::Path>,
        policy: Policy,
        audit_max_bytes: u64,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let path = dir.map(|d| d.join(store::FILE_NAME));
        let file = match &path {
            Some(path) => match AuthFile::load(path)? {
                Some(file) => file,
                None => {
                    let file = AuthFile::new();
                    file.save(path)
                        .context("while creating the auth state (--data-dir)")?;
                    file
                }
            },
            None => AuthFile::new(),
        };
        let key = file.session_key()?;
        let audit = match dir {
            Some(dir) => AuditLog::in_dir(dir, audit_max_bytes),
            None => AuditLog::in_memory(),
        };
        Ok(Self {
            path,
            file: RwLock::new(Loaded { file, key }),
            audit,
            by_client: Limiter::new(LOGIN_MAX_FAILURES, LOGIN_WINDOW),
            by_user: Limiter::new(LOGIN_MAX_FAILURES, LOGIN_WINDOW),
            password_checks: PasswordChecks::per_cpu(),
            sessions: Mutex::default(),
            setup: Mutex::default(),
            policy,
            shutdown,
        })
    }

    /// Reads the current state.
    pub fn read<T>(&self, f: impl FnOnce(&AuthFile) -> T) -> T {
        f(&self.file.read().unwrap_or_else(|e| e.into_inner()).file)
    }

    /// Changes the state: re-reads the file first (the CLI may have changed it), applies
    /// `f`, and writes it back atomically.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut AuthFile) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut loaded = self.file.write().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = &self.path
            && let Some(fresh) = AuthFile::load(path)?
        {
            loaded.key = fresh.session_key()?;
            loaded.file = fresh;
        }
        let mut file = loaded.file.clone();
        let out = f(&mut file)?;
        if let Some(path) = &self.path {
            file.save(path)?;
        }
        loaded.file = file;
        Ok(out)
    }

    /// Re-reads the file if it changed on disk since it was last read (the CLI added or
    /// revoked something); returns whether it did.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        // The file is small: comparing contents is cheap and, unlike modification times,
        // never misses two changes within one tick of the file system's clock.
        let Some(fresh) = AuthFile::load(path)? else {
            return Ok(false);
        };
        let mut loaded = self.file.write().unwrap_or_else(|e| e.into_inner());
        if loaded.file == fresh {
            return Ok(false);
        }
        loaded.key = fresh.session_key()?;
        loaded.file = fresh;
        drop(loaded);
        self.end_sessions_of_missing_users();
        Ok(true)
    }

    fn key(&self) -> Vec<u8> {
        self.file
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .key
            .clone()
    }

    /// If there is no admin, makes and returns the one-time setup secret (replacing any
    /// earlier one).
    pub fn begin_setup(&self) -> Option<String> {
        if self.read(AuthFile::has_admin) {
            return None;
        }
        let secret = store::random_token();
        *self.setup.lock().unwrap_or_else(|e| e.into_inner()) = Some(Secret(secret.clone()));
        Some(secret)
    }

    /// Uses up the setup secret if `presented` is it (compared in constant time).
    fn take_setup(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut setup = self.setup.lock().unwrap_or_else(|e| e.into_inner());
        let matches = setup
            .as_ref()
            .is_some_and(|s| bool::from(s.0.as_bytes().ct_eq(presented.as_bytes())));
        if matches {
            *setup = None;
        }
        matches
    }

    /// Whether the setup secret is still waiting to be used.
    pub fn setup_pending(&self) -> bool {
        self.setup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
            && !self.read(AuthFile::has_admin)
    }

    /// Starts a session for `user`: its cookie value and claims.
    fn start_session(&self, user: &str) -> (String, session::Claims) {
        let now = store::now_unix();
        let claims = session::Claims {
            sid: store::random_token(),
            user: user.to_owned(),
            exp: now + self.policy.session_secs,
        };
        (session::sign(&self.key(), &claims), claims)
    }

    /// The token that ends the open responses of session `claims` on logout; hold it for
    /// as long as the response is open.
    fn session_token(&self, claims: &session::Claims) -> Arc<CancellationToken> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= 1024 {
            // Forget sessions with no response open (only the map holds their token).
            sessions.retain(|_, (_, token)| Arc::strong_count(token) > 1);
        }
        let (_, token) = sessions
            .entry(claims.sid.clone())
            .or_insert_with(|| (claims.user.clone(), Arc::new(self.shutdown.child_token())));
        Arc::clone(token)
    }

    /// Ends session `claims`: it is refused from now on, and its open streams end.
    fn end_session(&self, claims: &session::Claims) -> anyhow::Result<()> {
        self.update(|file| {
            file.revoke_session(&claims.sid, claims.exp, store::now_unix());
            Ok(())
        })?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, token)) = sessions.remove(&claims.sid) {
            token.cancel();
        }
        Ok(())
    }

    /// Ends the open streams of users that no longer exist.
    fn end_sessions_of_missing_users(&self) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, (user, token)| {
            let exists = self.read(|f| f.user(user).is_some());
            if !exists {
                token.cancel();
            }
            exists
        });
    }

    /// Who presents `headers`: `Ok(None)` without credentials, `Err` with bad ones.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    ApiError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into())
                })?;
            let token = token.trim();
            let from_env = self.policy.ingest_token.as_ref().is_some_and(|t| {
                use sha2::Digest;
                use subtle::ConstantTimeEq;
                // Equal-length digests, so the comparison time says nothing about the token.
                let (a, b) = (sha2::Sha256::digest(&t.0), sha2::Sha256::digest(token));
                bool::from(a.as_slice().ct_eq(b.as_slice()))
            });
            if from_env {
                return Ok(Some(Principal::Token("env".into())));
            }
            return match self.read(|f| f.token_name(token).map(str::to_owned)) {
                Some(name) => Ok(Some(Principal::Token(name))),
                None => Err(ApiError::Unauthorized(
                    "unknown or revoked token (an admin makes one with `server token add NAME`)"
                        .into(),
                )),
            };
        }
        let Some(value) = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| session::cookie(v, session::COOKIE))
        else {
            return Ok(None);
        };
        let claims = session::verify(&self.key(), value, store::now_unix()).map_err(|e| {
            ApiError::Unauthorized(match e {
                session::Invalid::Expired => "the session has expired; log in again".into(),
                session::Invalid::Forged => "invalid session; log in again".into(),
            })
        })?;
        let role = self.read(|f| {
            if f.is_revoked(&claims.sid) {
                return None;
            }
            f.user(&claims.user).map(|u| u.role)
        });
        let role = role
            .ok_or_else(|| ApiError::Unauthorized("the session has ended; log in again".into()))?;
        Ok(Some(Principal::Session {
            user: claims.user.clone(),
            role,
            claims,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            open: false,
            require_auth: true,
            loopback_listener: AtomicBool::new(true),
            session_secs: 3600,
            secure_cookies: false,
            ingest_token: None,
            trusted_proxies: Vec::new(),
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn changes_the_cli_makes_on_disk_reach_the_running_server_on_reload() {
        let dir = std::env::temp_dir().join(format!("tg-reload-{}", store::random_token()));
        let auth = Auth::open(Some(&dir), policy(), 1 << 20, CancellationToken::new()).unwrap();
        assert!(!auth.reload_if_changed().unwrap());
        // What `server token add` does, from another process.
        let path = dir.join(store::FILE_NAME);
        let mut file = AuthFile::load(&path).unwrap().unwrap();
        let token = file.add_token("cli").unwrap();
        file.save(&path).unwrap();
        assert!(auth.authenticate(&bearer(&token)).is_err());
        assert!(auth.reload_if_changed().unwrap());
        assert_eq!(
            auth.authenticate(&bearer(&token)).unwrap(),
            Some(Principal::Token("cli".into()))
        );
        // And `server token revoke`.
        let mut file = AuthFile::load(&path).unwrap().unwrap();
        file.revoke_token("cli");
        file.save(&path).unwrap();
        assert!(auth.reload_if_changed().unwrap());
        assert!(auth.authenticate(&bearer(&token)).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_debug_print_of_the_auth_state_shows_no_secret() {
        let auth = Auth::open(None, policy(), 1 << 20, CancellationToken::new()).unwrap();
        auth.update(|f| f.set_user("ann", Role::Viewer, "viewer password").map(drop))
            .unwrap();
        let token = auth.update(|f| f.add_token("box")).unwrap();
        let setup = auth.begin_setup().expect("no admin yet");
        let printed = format!("{auth:?}");
        let (hash, digest, key) = auth.read(|f| {
            (
                f.users[0].password_hash.clone(),
                f.tokens[0].sha256.clone(),
                f.session_key.clone(),
            )
        });
        for secret in [&setup, &token, &hash, &digest, &key] {
            assert!(!printed.contains(secret.as_str()), "{printed}");
        }
        assert!(printed.contains("Auth"), "{printed}");
    }

    #[test]
    fn removing_a_user_ends_their_open_sessions() {
        let auth = Auth::open(None, policy(), 1 << 20, CancellationToken::new()).unwrap();
        auth.update(|f| f.set_user("val", Role::Viewer, "viewer password").map(drop))
            .unwrap();
        let (_, claims) = auth.start_session("val");
        let streams = auth.session_token(&claims);
        auth.update(|f| Ok(f.remove_user("val"))).unwrap();
        assert!(!streams.is_cancelled());
        auth.end_sessions_of_missing_users();
        assert!(streams.is_cancelled());
    }

    #[test]
    fn sessions_without_an_open_response_are_forgotten_so_the_map_stays_bounded() {
        let auth = Auth::open(None, policy(), 1 << 20, CancellationToken::new()).unwrap();
        let (_, open) = auth.start_session("val");
        let held = auth.session_token(&open);
        for _ in 0..5000 {
            let (_, claims) = auth.start_session("val");
            drop(auth.session_token(&claims));
        }
        let sessions = auth.sessions.lock().unwrap();
        assert!(sessions.len() <= 1024, "{}", sessions.len());
        assert!(sessions.contains_key(&open.sid));
        drop(sessions);
        drop(held);
    }
}
