//! Session tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(key, claims))`, sent
//! as the `tg_session` cookie (HttpOnly, SameSite=Strict, Path=/). The role is not in the
//! token: it is looked up on every request, so removing a user or changing their role takes
//! effect at once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "tg_session";

/// What a session token says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Session id (random), for logout.
    pub sid: String,
    /// User name.
    pub user: String,
    /// Unix seconds after which the session is over.
    pub exp: i64,
}

/// Why a presented session is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a token we signed (malformed, or the signature does not match).
    Forged,
    /// Signed by us but past its expiry.
    Expired,
}

/// Signs `claims` with `key`.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    // Serializing three plain fields cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signature = URL_SAFE_NO_PAD.encode(mac(key, payload.as_bytes()).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// The claims of `token` if `key` signed it (checked in constant time) and it has not
/// expired by `now`.
pub fn verify(key: &[u8], token: &str, now: i64) -> Result<Claims, Invalid> {
    let (payload, signature) = token.split_once('.').ok_or(Invalid::Forged)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Invalid::Forged)?;
    mac(key, payload.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| Invalid::Forged)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Invalid::Forged)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| Invalid::Forged)?;
    if claims.exp <= now {
        return Err(Invalid::Expired);
    }
    Ok(claims)
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(payload);
    mac
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// A `Set-Cookie` value carrying `token` for `max_age` seconds (0: delete the cookie).
pub fn set_cookie(token: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sid: "s1".into(),
            user: "ann".into(),
            exp,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = sign(b"0123456789abcdef0123456789abcdef", &claims(100));
        assert_eq!(
            verify(b"0123456789abcdef0123456789abcdef", &token, 99),
            Ok(claims(100))
        );
        assert_eq!(
            verify(b"0123456789abcdef0123456789abcdef", &token, 100),
            Err(Invalid::Expired)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_or_altered_is_forged() {
        let key = b"0123456789abcdef0123456789abcdef";
        let token = sign(key, &claims(100));
        assert_eq!(
            verify(b"another key, also 32 bytes long!", &token, 0),
            Err(Invalid::Forged)
        );
        let (payload, signature) = token.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(br#"{"sid":"s1","user":"root","exp":100}"#);
        assert_eq!(
            verify(key, &format!("{other}.{signature}"), 0),
            Err(Invalid::Forged)
        );
        assert_eq!(verify(key, payload, 0), Err(Invalid::Forged));
        assert_eq!(verify(key, "", 0), Err(Invalid::Forged));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_httponly_and_strict() {
        assert_eq!(cookie("a=1; tg_session=x.y; b=2", COOKIE), Some("x.y"));
        assert_eq!(cookie("tg_sessionx=1", COOKIE), None);
        let set = set_cookie("x.y", 60, false);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set_cookie("x", 60, true).ends_with("; Secure"));
    }
}
