//! [`Secret`]: a token or password given on the command line or in the environment, kept
//! out of `Debug` output (and so out of logs that print a config).

/// A secret from the command line or environment, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token is printable ASCII without spaces".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_trimmed_and_never_shown_by_debug() {
        let secret: Secret = " tgi_abc \n".parse().unwrap();
        assert_eq!(secret.0, "tgi_abc");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!("two words".parse::<Secret>().is_err());
        assert!("".parse::<Secret>().is_err());
    }
}
