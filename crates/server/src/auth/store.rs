//! The auth state on disk: users (argon2 password hashes), named ingest tokens (SHA-256 of
//! the token; a token is 32 random bytes, so a fast hash is enough) and the key that signs
//! sessions. One JSON file, `auth.json` under `--data-dir`, written atomically (a temporary
//! file renamed over it) with mode 0600; secrets are never stored in the clear.

use std::path::{Path, PathBuf};

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Role;

/// The file name under `--data-dir`.
pub const FILE_NAME: &str = "auth.json";

/// Ingest tokens start with this, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "tgi_";

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A person who logs in on the page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Argon2id, PHC string format.
    pub password_hash: String,
    /// Unix seconds.
    pub created: i64,
}

/// A named ingest token (for senders).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Token {
    /// Name chosen by the admin (e.g. the host the sender runs on).
    pub name: String,
    /// SHA-256 of the whole token, hex.
    pub sha256: String,
    /// Unix seconds.
    pub created: i64,
}

/// A session ended before its expiry (logout); kept until it would have expired.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revoked {
    /// Session id.
    pub id: String,
    /// Unix seconds when the session would have expired anyway.
    pub expires: i64,
}

/// Everything in `auth.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthFile {
    /// Format version (1).
    pub version: u32,
    /// 32 random bytes, base64url: the HMAC-SHA256 key of session tokens.
    pub session_key: String,
    /// People.
    #[serde(default)]
    pub users: Vec<User>,
    /// Ingest tokens.
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Logged-out sessions that have not expired yet.
    #[serde(default)]
    pub revoked_sessions: Vec<Revoked>,
}

impl AuthFile {
    /// A new state with a fresh session key and nobody in it.
    pub fn new() -> Self {
        Self {
            version: 1,
            session_key: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
            users: Vec::new(),
            tokens: Vec::new(),
            revoked_sessions: Vec::new(),
        }
    }

    /// The session signing key.
    pub fn session_key(&self) -> anyhow::Result<Vec<u8>> {
        let key = URL_SAFE_NO_PAD
            .decode(&self.session_key)
            .context("session_key is not base64url")?;
        anyhow::ensure!(key.len() >= 32, "session_key is shorter than 32 bytes");
        Ok(key)
    }

    /// Whether any admin exists.
    pub fn has_admin(&self) -> bool {
        self.users.iter().any(|u| u.role == Role::Admin)
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Adds a user (or replaces the password and role of an existing one); `Ok(true)` if new.
    pub fn set_user(&mut self, name: &str, role: Role, password: &str) -> anyhow::Result<bool> {
        check_name(name)?;
        anyhow::ensure!(
            role != Role::Ingest,
            "users are viewers or admins; senders use ingest tokens (server token add NAME)"
        );
        anyhow::ensure!(
            password.chars().count() >= MIN_PASSWORD_CHARS,
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        );
        let password_hash = hash_password(password)?;
        let created = now_unix();
        if let Some(user) = self.users.iter_mut().find(|u| u.name == name) {
            user.role = role;
            user.password_hash = password_hash;
            return Ok(false);
        }
        self.users.push(User {
            name: name.to_owned(),
            role,
            password_hash,
            created,
        });
        Ok(true)
    }

    /// Removes the user `name`; `false` if there was none.
    pub fn remove_user(&mut self, name: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        self.users.len() != before
    }

    /// Creates an ingest token called `name` and returns it (the only time it is seen).
    pub fn add_token(&mut self, name: &str) -> anyhow::Result<String> {
        check_name(name)?;
        anyhow::ensure!(
            self.tokens.iter().all(|t| t.name != name),
            "a token called {name:?} exists already (revoke it first)"
        );
        let token = format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        );
        self.tokens.push(Token {
            name: name.to_owned(),
            sha256: sha256_hex(&token),
            created: now_unix(),
        });
        Ok(token)
    }

    /// Removes the token called `name`; `false` if there was none.
    pub fn revoke_token(&mut self, name: &str) -> bool {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.name != name);
        self.tokens.len() != before
    }

    /// The name of the ingest token `presented`, comparing hashes in constant time (every
    /// stored token is compared, so the time does not say which one matched).
    pub fn token_name(&self, presented: &str) -> Option<&str> {
        let digest = sha256_hex(presented);
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.sha256.as_bytes().ct_eq(digest.as_bytes())) {
                found = Some(token.name.as_str());
            }
        }
        found
    }

    /// Whether session `id` was logged out.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked_sessions.iter().any(|r| r.id == id)
    }

    /// Records that session `id` (expiring at `expires`) was logged out, and forgets
    /// revocations of sessions that have expired by `now`.
    pub fn revoke_session(&mut self, id: &str, expires: i64, now: i64) {
        self.revoked_sessions.retain(|r| r.expires > now);
        if !self.is_revoked(id) {
            self.revoked_sessions.push(Revoked {
                id: id.to_owned(),
                expires,
            });
        }
    }

    /// Reads `path`; `Ok(None)` if it does not exist.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
        };
        let file: Self = serde_json::from_str(&text)
            .with_context(|| format!("while parsing {}", path.display()))?;
        anyhow::ensure!(
            file.version == 1,
            "{}: unknown version {}",
            path.display(),
            file.version
        );
        file.session_key()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(Some(file))
    }

    /// Writes to `path` atomically with mode 0600 (creating the folder).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).with_context(|| format!("while creating {}", dir.display()))?;
        let tmp = temp_path(path);
        let text = serde_json::to_vec_pretty(self).context("while serializing the auth state")?;
        write_private(&tmp, &text).with_context(|| format!("while writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("while replacing {}", path.display()))?;
        Ok(())
    }
}

impl Default for AuthFile {
    fn default() -> Self {
        Self::new()
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Creates `dir` (and its parents); a folder it creates itself is mode 0700.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Names of users and tokens: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b)),
        "a name is 1 to 64 characters from A-Z a-z 0-9 . _ @ -"
    );
    Ok(())
}

/// Argon2id with the crate's default parameters (19 MiB, 2 passes).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("while hashing a password: {e}"))
}

/// Whether `password` matches `hash` (argon2 compares in constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so that a login for an unknown
/// user takes as long as one with a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A random id or one-time secret, base64url.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<24>())
}

fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the epoch.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_itself_only_and_not_once_revoked() {
        let mut file = AuthFile::new();
        let token = file.add_token("laptop").unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(file.token_name(&token), Some("laptop"));
        assert_eq!(file.token_name(&format!("{token}x")), None);
        assert!(!file.tokens[0].sha256.contains(&token[4..]));
        assert!(file.add_token("laptop").is_err());
        assert!(file.revoke_token("laptop"));
        assert_eq!(file.token_name(&token), None);
    }

    #[test]
    fn passwords_are_stored_as_argon2_hashes_that_verify_only_the_right_password() {
        let mut file = AuthFile::new();
        assert!(file.set_user("ann", Role::Admin, "short").is_err());
        assert!(
            file.set_user("ann", Role::Ingest, "long enough pw")
                .is_err()
        );
        assert!(file.set_user("ann", Role::Admin, "long enough pw").unwrap());
        let hash = &file.user("ann").unwrap().password_hash;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("long enough pw", hash));
        assert!(!verify_password("long enough pW", hash));
        assert!(file.has_admin());
    }

    #[test]
    fn the_file_is_written_atomically_with_mode_0600_and_reads_back_the_same() {
        let dir = std::env::temp_dir().join(format!("tg-auth-{}", random_token()));
        let path = dir.join(FILE_NAME);
        assert!(AuthFile::load(&path).unwrap().is_none());
        let mut file = AuthFile::new();
        file.add_token("a").unwrap();
        file.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert_eq!(AuthFile::load(&path).unwrap(), Some(file));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn revoked_sessions_are_forgotten_once_they_would_have_expired() {
        let mut file = AuthFile::new();
        file.revoke_session("a", 100, 0);
        file.revoke_session("b", 300, 50);
        assert!(file.is_revoked("a") && file.is_revoked("b"));
        file.revoke_session("c", 400, 200);
        assert!(!file.is_revoked("a"));
        assert!(file.is_revoked("b") && file.is_revoked("c"));
    }
}
