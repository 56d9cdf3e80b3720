//! `server user ...` and `server token ...`: manage the auth state in `--data-dir` from the
//! command line (a running server picks the change up within a few seconds). Passwords are
//! read from standard input, never from the command line; a new token is printed once.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use crate::auth::Role;
use crate::auth::audit::{AuditLog, Entry};
use crate::auth::store::{self, AuthFile};

/// Administration subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// People who log in on the page.
    #[command(subcommand)]
    User(UserCommand),
    /// Ingest tokens for senders.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `server user ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Add a user, or set an existing user's role and password. The password is the first
    /// line of standard input (e.g. `printf '%s\n' "$PW" | server user add ann`).
    Add {
        /// Login name (1 to 64 of A-Z a-z 0-9 . _ @ -).
        name: String,
        /// viewer or admin.
        #[arg(long, default_value = "viewer")]
        role: Role,
    },
    /// List users and their roles.
    List,
    /// Remove a user (their sessions end).
    Remove {
        /// Login name.
        name: String,
    },
}

/// `server token ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create an ingest token and print it (the only time it is shown).
    Add {
        /// A name for it, e.g. the sender's host.
        name: String,
    },
    /// List token names.
    List,
    /// Revoke a token: senders using it get 401 from then on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// Runs `command` on the state in `data_dir`, writing what it shows to `out` and reading a
/// password from `input`.
pub fn run(
    command: &Command,
    data_dir: &Path,
    input: &mut dyn BufRead,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let path = data_dir.join(store::FILE_NAME);
    let mut file = AuthFile::load(&path)?.unwrap_or_default();
    let audit = AuditLog::in_dir(data_dir, 10 * 1024 * 1024);
    let record = |action: &str, target: &str| {
        audit.record(Entry::now(action, "cli", "cli", "ok").on(target));
    };
    match command {
        Command::User(UserCommand::Add { name, role }) => {
            let mut password = String::new();
            input
                .read_line(&mut password)
                .context("while reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let new = file.set_user(name, *role, password)?;
            file.save(&path)?;
            record(if new { "user.add" } else { "user.update" }, name);
            writeln!(
                out,
                "{} {name} ({role:?})",
                if new { "added" } else { "updated" }
            )?;
        }
        Command::User(UserCommand::List) => {
            for user in &file.users {
                writeln!(out, "{}\t{:?}", user.name, user.role)?;
            }
        }
        Command::User(UserCommand::Remove { name }) => {
            anyhow::ensure!(file.remove_user(name), "no user called {name:?}");
            file.save(&path)?;
            record("user.remove", name);
            writeln!(out, "removed {name}")?;
        }
        Command::Token(TokenCommand::Add { name }) => {
            let token = file.add_token(name)?;
            file.save(&path)?;
            record("token.add", name);
            writeln!(out, "{token}")?;
        }
        Command::Token(TokenCommand::List) => {
            for token in &file.tokens {
                writeln!(out, "{}", token.name)?;
            }
        }
        Command::Token(TokenCommand::Revoke { name }) => {
            anyhow::ensure!(file.revoke_token(name), "no token called {name:?}");
            file.save(&path)?;
            record("token.revoke", name);
            writeln!(out, "revoked {name}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(dir: &Path, args: &[&str], input: &str) -> anyhow::Result<String> {
        use clap::Parser;
        let mut argv = vec!["server"];
        argv.extend_from_slice(args);
        let config = crate::Config::try_parse_from(argv)?;
        let mut out = Vec::new();
        run(
            config.command.as_ref().expect("a subcommand"),
            dir,
            &mut input.as_bytes(),
            &mut out,
        )?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn users_and_tokens_are_added_listed_and_revoked_and_each_change_is_audited() {
        let dir = std::env::temp_dir().join(format!("tg-cli-{}", store::random_token()));
        run_on(
            &dir,
            &["user", "add", "ann", "--role", "admin"],
            "a long password\n",
        )
        .unwrap();
        assert_eq!(run_on(&dir, &["user", "list"], "").unwrap(), "ann\tAdmin\n");
        let token = run_on(&dir, &["token", "add", "laptop"], "").unwrap();
        assert!(token.starts_with(store::TOKEN_PREFIX), "{token}");
        let file = AuthFile::load(&dir.join(store::FILE_NAME))
            .unwrap()
            .unwrap();
        assert_eq!(file.token_name(token.trim()), Some("laptop"));
        assert!(store::verify_password(
            "a long password",
            &file.users[0].password_hash
        ));
        let text = std::fs::read_to_string(dir.join(store::FILE_NAME)).unwrap();
        assert!(!text.contains(token.trim()) && !text.contains("a long password"));
        run_on(&dir, &["token", "revoke", "laptop"], "").unwrap();
        assert!(run_on(&dir, &["token", "revoke", "laptop"], "").is_err());
        assert_eq!(run_on(&dir, &["token", "list"], "").unwrap(), "");
        let audit = AuditLog::in_dir(&dir, u64::MAX).recent(10).unwrap();
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["user.add", "token.add", "token.revoke"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_subcommand_still_means_serve() {
        use clap::Parser;
        let config = crate::Config::try_parse_from(["server", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(config.command.is_none());
    }
}
