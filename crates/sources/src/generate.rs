//! A deterministic generator of `combined` access logs, for benchmarks and tests.
//!
//! Lines come from a pool of `distinct_ips` public addresses (about 3% IPv6; half the lines
//! from a hot 2% of the pool, half uniform, so a million lines use nearly the whole pool), a
//! realistic mix of methods, paths (about 2% probes), statuses, sizes (`-` for 304s), referers
//! and user agents (a few scanners, an occasional escaped quote), and a rare malformed request.
//! Timestamps advance at `rate` lines per second, each stamped with when its request began:
//! the clock minus a duration (usually under a second, sometimes up to a minute), so lines are
//! in the end-before-begin disorder real logs have. Same configuration, same bytes.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::time::{MONTHS, civil_from_days};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Number of lines.
    pub lines: u64,
    /// Size of the address pool.
    pub distinct_ips: u32,
    /// Seed of the pseudo-random sequence.
    pub seed: u64,
    /// Unix seconds of the first line's clock.
    pub start: i64,
    /// Lines per second of log time.
    pub rate: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lines: 1_000_000,
            distinct_ips: 100_000,
            seed: 1,
            start: 1_767_225_600, // 2026-01-01T00:00:00Z
            rate: 200.0,
        }
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// First octets of public IPv4 space, skipping 0, 10, 100 (shared), 127, 169, 172, 192, 198,
/// 203 and multicast/reserved, so every generated IPv4 address is public.
const FIRST_OCTETS: [u8; 40] = [
    1, 2, 3, 5, 8, 12, 13, 18, 23, 24, 31, 37, 41, 45, 46, 49, 50, 52, 58, 62, 66, 68, 72, 77, 78,
    80, 81, 82, 88, 91, 93, 95, 104, 109, 151, 176, 185, 188, 195, 213,
];

/// The `i`th address of the pool of `seed`.
pub fn pool_ip(seed: u64, i: u32) -> IpAddr {
    let h = splitmix(seed ^ (u64::from(i) << 20) ^ 0x5151);
    if h % 100 < 3 {
        let g = splitmix(h);
        IpAddr::V6(Ipv6Addr::new(
            0x2a00 | (g & 0xf) as u16,
            (g >> 8) as u16,
            (g >> 24) as u16,
            (g >> 40) as u16,
            0,
            0,
            (h >> 16) as u16,
            (h >> 32) as u16 | 1,
        ))
    } else {
        let first = FIRST_OCTETS[((h >> 8) % FIRST_OCTETS.len() as u64) as usize];
        IpAddr::V4(Ipv4Addr::new(
            first,
            (h >> 16) as u8,
            (h >> 24) as u8,
            ((h >> 32) as u8).max(1),
        ))
    }
}

const PATHS: [&str; 16] = [
    "/",
    "/index.html",
    "/about",
    "/blog/",
    "/blog/2025/11/rust-parsers.html",
    "/static/app.js",
    "/static/style.css",
    "/images/logo.png",
    "/favicon.ico",
    "/robots.txt",
    "/api/v1/items?page=2",
    "/api/v1/login",
    "/search?q=globe+traffic",
    "/feed.xml",
    "/docs/getting-started",
    "/products/42",
];

const PROBES: [&str; 8] = [
    "/.env",
    "/wp-login.php",
    "/phpmyadmin/index.php",
    "/.git/config",
    "/xmlrpc.php",
    "/cgi-bin/luci",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/boaform/admin/formLogin",
];

const AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
];

const SCANNERS: [&str; 3] = [
    "sqlmap/1.8.11#stable (https://sqlmap.org)",
    "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:map_codes)",
];

/// Writes the lines of a `combined` access log (see the module documentation).
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: Config,
    state: u64,
    n: u64,
    day: i64,
    day_text: [u8; 11],
}

impl Generator {
    /// A generator of `cfg`.
    pub fn new(cfg: Config) -> Generator {
        Generator {
            state: splitmix(cfg.seed),
            cfg,
            n: 0,
            day: i64::MIN,
            day_text: [0; 11],
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix(self.state)
    }

    fn pick<'s>(&mut self, list: &[&'s str]) -> &'s str {
        list[(self.next() % list.len() as u64) as usize]
    }

    /// Appends the next line (with its `\n`) to `out`; false after the configured count.
    pub fn line(&mut self, out: &mut Vec<u8>) -> bool {
        if self.n >= self.cfg.lines {
            return false;
        }
        let clock = self.cfg.start as f64 + self.n as f64 / self.cfg.rate.max(1e-9);
        self.n += 1;
        let r = self.next();
        let pool = self.cfg.distinct_ips.max(1);
        let idx = if r & 1 == 0 {
            ((r >> 1) % u64::from((pool / 50).max(1))) as u32
        } else {
            ((r >> 1) % u64::from(pool)) as u32
        };
        let ip = pool_ip(self.cfg.seed, idx);
        let r = self.next();
        let duration = match r % 100 {
            0..=79 => 0,
            80..=97 => (r >> 8) % 3,
            _ => (r >> 8) % 60,
        };
        let ts = clock as i64 - duration as i64;
        let day = ts.div_euclid(86_400);
        if day != self.day {
            let (y, m, d) = civil_from_days(day);
            let s = format!("{d:02}/{}/{y:04}", MONTHS[(m - 1) as usize]);
            self.day_text.copy_from_slice(&s.as_bytes()[..11]);
            self.day = day;
        }
        let secs = ts.rem_euclid(86_400);
        let r = self.next();
        let probe = r % 100 < 2;
        let scanner = r % 1000 == 7;
        let malformed = r % 5000 == 11;
        let method = match (r >> 12) % 20 {
            0..=15 => "GET",
            16..=17 => "POST",
            18 => "HEAD",
            _ => "GET",
        };
        let path = if probe {
            self.pick(&PROBES)
        } else {
            self.pick(&PATHS)
        };
        let status = if malformed {
            400
        } else if probe {
            404
        } else {
            match (r >> 20) % 100 {
                0..=79 => 200,
                80..=87 => 304,
                88..=92 => 301,
                93..=97 => 404,
                _ => 500,
            }
        };
        let size = (r >> 32) % 60_000 + 200;
        let ua = if scanner {
            self.pick(&SCANNERS)
        } else {
            self.pick(&AGENTS)
        };
        let quoted_ua = r % 997 == 3;
        let referer = if (r >> 40).is_multiple_of(3) {
            "https://example.com/"
        } else {
            "-"
        };
        let _ = write!(
            out,
            "{ip} - - [{}:{:02}:{:02}:{:02} +0000] ",
            std::str::from_utf8(&self.day_text).unwrap_or("01/Jan/1970"),
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        if malformed {
            out.extend_from_slice(
                b"\"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03\" 400 157",
            );
        } else {
            let _ = write!(out, "\"{method} {path} HTTP/1.1\" {status} ");
            if status == 304 {
                out.push(b'-');
            } else {
                let _ = write!(out, "{size}");
            }
        }
        let _ = write!(out, " \"{referer}\" \"{ua}");
        if quoted_ua {
            out.extend_from_slice(br#" (quoted \"build\")"#);
        }
        out.extend_from_slice(b"\"\n");
        true
    }

    /// Writes all remaining lines to `w`.
    pub fn write_all<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 << 16);
        while self.line(&mut buf) {
            if buf.len() > 60_000 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    }
}

/// The whole log of `cfg` in memory.
pub fn combined_log(cfg: Config) -> Vec<u8> {
    let mut out = Vec::new();
    let mut g = Generator::new(cfg);
    while g.line(&mut out) {}
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_configuration_gives_the_same_bytes() {
        let cfg = Config {
            lines: 500,
            ..Config::default()
        };
        assert_eq!(combined_log(cfg.clone()), combined_log(cfg));
    }

    #[test]
    fn pool_addresses_are_public() {
        for i in 0..20_000 {
            let ip = pool_ip(1, i);
            let public = match ip {
                IpAddr::V4(v4) => {
                    !(v4.is_private()
                        || v4.is_loopback()
                        || v4.is_link_local()
                        || v4.is_documentation()
                        || v4.is_unspecified()
                        || v4.is_multicast()
                        || v4.octets()[0] == 100)
                }
                IpAddr::V6(v6) => (v6.segments()[0] & 0xe000) == 0x2000,
            };
            assert!(public, "{ip}");
        }
    }
}
