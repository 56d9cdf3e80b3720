//! The web binary's configuration: command-line flags, each with an environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use std::time::Duration;
use traffic::service::ServeLimits;

/// traffic-globe web: serves the built globe frontend and forwards /api/* to the server, so
/// the browser talks to one origin.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    /// Address and port to listen on (loopback by default: the page is for this machine
    /// unless you choose otherwise; the server then asks remote browsers to log in).
    #[arg(long, env = "WEB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Base URL of the traffic-globe server; every request under /api/ is forwarded there.
    #[arg(long, env = "WEB_UPSTREAM", default_value = "http://127.0.0.1:3000")]
    pub upstream: reqwest::Url,

    /// Folder with the built frontend (`npm run build` in frontend/ writes it).
    #[arg(long, env = "WEB_DIST", default_value = "frontend/dist")]
    pub dist: PathBuf,

    /// Seconds to wait for a connection to the upstream before answering 502.
    #[arg(long, env = "WEB_CONNECT_TIMEOUT_SECS", default_value_t = 5)]
    pub connect_timeout_secs: u64,

    /// Seconds a client has to send a request's head (request line and headers), counted
    /// from when the connection is ready for one; a keep-alive connection with no next
    /// request is closed after this too.
    #[arg(long, env = "WEB_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a connection may go without a byte read or written before it is closed. Must
    /// exceed the server's --keep-alive-secs (15), so forwarded idle streams are not cut.
    #[arg(long, env = "WEB_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Most connections open at once (lowered to fit the open-file limit, keeping room for
    /// as many upstream connections); beyond it new connections wait to be accepted until
    /// one closes.
    #[arg(long, env = "WEB_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Threads that accept and serve connections, each with its own single-threaded
    /// runtime, so a connection's work never wakes another thread (0: one per core).
    #[arg(long, env = "WEB_SERVE_THREADS", default_value_t = 0)]
    pub serve_threads: usize,

    /// Instead of serving, check a running web: GET /healthz at this HOST:PORT and exit 0 if
    /// it answers 200, 1 otherwise (for container health checks; no curl needed).
    #[arg(long, value_name = "HOST:PORT")]
    pub probe: Option<String>,
}

impl Config {
    /// The defaults, as if started with no flags and no environment (for tests).
    pub fn default_for_tests() -> Self {
        Self::parse_from(["web"])
    }

    /// Checks values clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.upstream.scheme() == "http",
            "--upstream must be an http:// URL (the server speaks plain HTTP), got {}",
            self.upstream
        );
        anyhow::ensure!(
            self.upstream.host().is_some(),
            "--upstream must name a host, got {}",
            self.upstream
        );
        self.serve_limits().validate()
    }

    /// The connection limits for the serving loop.
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
            threads: self.serve_threads,
        }
    }

    /// The upstream base without a trailing slash, ready to have a path appended.
    pub(crate) fn upstream_base(&self) -> String {
        self.upstream.as_str().trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ports_and_folder() {
        let config = Config::default_for_tests();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.upstream_base(), "http://127.0.0.1:3000");
        assert_eq!(config.dist, PathBuf::from("frontend/dist"));
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn an_https_upstream_is_refused_with_a_reason() {
        let config = Config::parse_from(["web", "--upstream", "https://example.test"]);
        let error = config.validate().expect_err("https is not supported");
        assert!(error.to_string().contains("http://"), "{error}");
    }

    #[test]
    fn a_path_on_the_upstream_is_kept_without_its_trailing_slash() {
        let config = Config::parse_from(["web", "--upstream", "http://server:3000/base/"]);
        assert_eq!(config.upstream_base(), "http://server:3000/base");
    }
}
