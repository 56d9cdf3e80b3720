//! Suspicious requests where the source has no flag: a small rule set.
//!
//! Default rules ([`Rules::default`], also [`DEFAULT_RULES`] in the rules-file syntax):
//! - `path` rules: requests for well-known probe paths — `/.env`, `/.git/`, `/wp-login.php`,
//!   `/xmlrpc.php`, `/wp-admin`, `/phpmyadmin`, `/pma`, `/.aws/`, `/.ssh/`, `/cgi-bin/`,
//!   `/boaform`, `/HNAP1`, `/actuator`, `/server-status`, `/vendor/phpunit`, `/etc/passwd`,
//!   `/shell`, `/.DS_Store`, `/config.json`. A path rule matches, ignoring ASCII case, where the
//!   pattern occurs in the path (before `?` or `#`) and ends at the end of the path or before a
//!   `/`: `/.env` matches `/.env` and `/app/.env` but not `/.environment`; a pattern ending in
//!   `/` matches anything under it.
//! - `agent` rules: scanner user agents, matched as substrings ignoring ASCII case — `sqlmap`,
//!   `nikto`, `masscan`, `zgrab`, `nmap`, `nuclei`, `gobuster`, `dirbuster`, `wpscan`,
//!   `censysinspect`, `l9explore`, `fuzz faster u fool`.
//!
//! A match sets `suspicious: Some(true)`; no match leaves the record's value as it is (a source's
//! own flag is kept). The rules file has one rule a line, `path PATTERN` or `agent PATTERN`;
//! `#` starts a comment.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::record::RecordRef;

/// The default rules in the rules-file syntax.
pub const DEFAULT_RULES: &str = "\
# Well-known probe paths.
path /.env
path /.git/
path /wp-login.php
path /xmlrpc.php
path /wp-admin
path /phpmyadmin
path /pma
path /.aws/
path /.ssh/
path /cgi-bin/
path /boaform
path /HNAP1
path /actuator
path /server-status
path /vendor/phpunit
path /etc/passwd
path /shell
path /.DS_Store
path /config.json
# Scanner user agents.
agent sqlmap
agent nikto
agent masscan
agent zgrab
agent nmap
agent nuclei
agent gobuster
agent dirbuster
agent wpscan
agent censysinspect
agent l9explore
agent fuzz faster u fool
";

/// A rules file line that is no rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rules line {line}: {reason}")]
pub struct RulesError {
    /// 1-based line number in the rules text.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Compiled rules (see the module documentation).
#[derive(Debug, Clone)]
pub struct Rules {
    paths: Option<AhoCorasick>,
    path_patterns: Vec<Vec<u8>>,
    agents: Option<Substrings>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules::parse(DEFAULT_RULES).unwrap_or_else(|_| Rules::none())
    }
}

/// Patterns are lowered and matched against lowered text: a case-sensitive automaton keeps
/// its fast SIMD prefilter, which ASCII case folding would lose.
fn automaton(patterns: &[Vec<u8>]) -> Option<AhoCorasick> {
    if patterns.is_empty() {
        return None;
    }
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::Standard)
        .build(patterns.iter().map(|p| p.to_ascii_lowercase()))
        .ok()
}

/// Lowered patterns found anywhere in lowered text: SIMD (Teddy) where the CPU has it.
#[derive(Debug, Clone)]
enum Substrings {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Substrings {
    fn new(patterns: &[Vec<u8>]) -> Option<Substrings> {
        let lowered: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
        if lowered.is_empty() {
            return None;
        }
        let mut b = aho_corasick::packed::Config::new().builder();
        b.extend(&lowered);
        match b.build() {
            Some(s) => Some(Substrings::Packed(s)),
            None => automaton(&lowered).map(Substrings::Automaton),
        }
    }

    fn is_match(&self, text: &[u8]) -> bool {
        match self {
            Substrings::Packed(s) => s.find(text).is_some(),
            Substrings::Automaton(a) => a.is_match(text),
        }
    }
}

/// Text up to this long is lowered on the stack; longer text in a fresh buffer.
const STACK_TEXT: usize = 512;

/// Calls `f` with `text` in ASCII lower case, without allocating for short text.
fn with_lowered<T>(text: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    if text.len() <= STACK_TEXT {
        let mut buf = [0u8; STACK_TEXT];
        let out = &mut buf[..text.len()];
        for (o, c) in out.iter_mut().zip(text) {
            *o = c.to_ascii_lowercase();
        }
        f(out)
    } else {
        f(&text.to_ascii_lowercase())
    }
}

impl Rules {
    /// No rules: nothing is flagged.
    pub fn none() -> Rules {
        Rules {
            paths: None,
            path_patterns: Vec::new(),
            agents: None,
        }
    }

    /// Rules from a rules file's text.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let mut paths = Vec::new();
        let mut agents = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let l = raw.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            let err = |reason: &str| RulesError {
                line: i + 1,
                reason: reason.to_string(),
            };
            let (kind, pattern) = l
                .split_once(char::is_whitespace)
                .ok_or_else(|| err("expected `path PATTERN` or `agent PATTERN`"))?;
            let pattern = pattern.trim();
            match kind {
                "path" if pattern.starts_with('/') => paths.push(pattern.as_bytes().to_vec()),
                "path" => return Err(err("a path pattern starts with /")),
                "agent" => agents.push(pattern.as_bytes().to_vec()),
                _ => return Err(err("a rule is `path PATTERN` or `agent PATTERN`")),
            }
        }
        Ok(Rules {
            paths: automaton(&paths),
            path_patterns: paths,
            agents: Substrings::new(&agents),
        })
    }

    /// True when the path or the user agent matches a rule.
    pub fn matches(&self, path: Option<&str>, user_agent: Option<&str>) -> bool {
        if let (Some(ac), Some(path)) = (&self.paths, path) {
            let b = path.as_bytes();
            let end = memchr::memchr2(b'?', b'#', b).unwrap_or(b.len());
            let hit = with_lowered(&b[..end], |b| {
                ac.find_overlapping_iter(b).any(|m| {
                    let pattern = &self.path_patterns[m.pattern().as_usize()];
                    pattern.ends_with(b"/") || m.end() == b.len() || b[m.end()] == b'/'
                })
            });
            if hit {
                return true;
            }
        }
        if let (Some(ac), Some(ua)) = (&self.agents, user_agent) {
            return with_lowered(ua.as_bytes(), |ua| ac.is_match(ua));
        }
        false
    }

    /// Sets `suspicious: Some(true)` on a match; leaves it as it is otherwise.
    pub fn apply(&self, rec: &mut RecordRef<'_>) {
        if self.matches(rec.path.as_deref(), rec.user_agent.as_deref()) {
            rec.suspicious = Some(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_flag_probe_paths_anywhere_in_the_path() {
        let r = Rules::default();
        for p in [
            "/.env",
            "/app/.env",
            "/.git/config",
            "/wp-login.php?redirect=1",
            "/blog/WP-LOGIN.PHP",
            "/phpMyAdmin/index.php",
            "/cgi-bin/luci",
            "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
        ] {
            assert!(r.matches(Some(p), None), "{p}");
        }
    }

    #[test]
    fn default_rules_leave_ordinary_paths_alone() {
        let r = Rules::default();
        for p in [
            "/",
            "/index.html",
            "/.environment",
            "/search?q=/.env",
            "/pmag",
            "/gitbook/",
            "/shells.png",
        ] {
            assert!(
                !r.matches(Some(p), Some("Mozilla/5.0 (X11; Linux x86_64)")),
                "{p}"
            );
        }
    }

    #[test]
    fn default_rules_flag_scanner_agents() {
        let r = Rules::default();
        for ua in [
            "sqlmap/1.7#stable (https://sqlmap.org)",
            "Mozilla/5.00 (Nikto/2.1.6)",
            "masscan/1.3",
            "Mozilla/5.0 zgrab/0.x",
            "Nmap Scripting Engine",
        ] {
            assert!(r.matches(Some("/"), Some(ua)), "{ua}");
        }
    }

    #[test]
    fn apply_sets_true_on_a_match_and_keeps_the_source_flag_otherwise() {
        let r = Rules::default();
        let ip = "203.0.113.1".parse().expect("ip");
        let mut hit = RecordRef::new(1, ip, 0.0);
        hit.path = Some("/.env".into());
        r.apply(&mut hit);
        assert_eq!(hit.suspicious, Some(true));
        let mut plain = RecordRef::new(1, ip, 0.0);
        plain.path = Some("/".into());
        r.apply(&mut plain);
        assert_eq!(plain.suspicious, None);
        plain.suspicious = Some(false);
        r.apply(&mut plain);
        assert_eq!(plain.suspicious, Some(false));
    }

    #[test]
    fn rules_files_are_checked_line_by_line() {
        let r = Rules::parse("# mine\npath /secret/\nagent evilbot # comment\n").expect("valid");
        assert!(r.matches(Some("/secret/x"), None));
        assert!(r.matches(None, Some("EvilBot/1")));
        assert!(
            !r.matches(Some("/.env"), None),
            "the file replaces the defaults"
        );
        assert_eq!(
            Rules::parse("path /ok\nfoo bar")
                .expect_err("bad kind")
                .line,
            2
        );
        assert!(Rules::parse("path noslash").is_err());
        assert!(!Rules::none().matches(Some("/.env"), Some("sqlmap")));
    }
}
