//! Scripted bursts for the generator: "network N sends S of all traffic from second A to
//! B", so that every analytics query and alert can be shown and tested on a file whose
//! answer is known. A burst takes over that share of the rows of its seconds (the rate stays
//! the file's): their address moves into the network and their place to one city, the
//! network's own. Drawn from a random stream of their own, so a file without bursts is the
//! same bytes as before they existed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{CITIES, Generated, SplitMix64};

/// One scripted burst, written `A.B.C.0/24:SHARE:FROM-TO` (seconds from the file's start,
/// `FROM` included, `TO` not), e.g. `203.0.113.0/24:0.3:60-90`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScriptedBurst {
    /// The /24 network the burst comes from.
    pub network: [u8; 3],
    /// Share of the rows of its seconds it takes over, in `0..=1`.
    pub share: f64,
    /// First second (from the file's start).
    pub from_secs: u64,
    /// Second after the last.
    pub to_secs: u64,
}

impl FromStr for ScriptedBurst {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = |why: &str| format!("{text:?}: {why} (expected A.B.C.0/24:SHARE:FROM-TO)");
        let mut parts = text.split(':');
        let (Some(network), Some(share), Some(span), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(wrong("three parts"));
        };
        let network = network
            .strip_suffix("/24")
            .and_then(|n| n.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| wrong("the network must be a /24 like 203.0.113.0/24"))?
            .octets();
        let share: f64 = share
            .parse()
            .map_err(|_| wrong("the share must be a number"))?;
        if !(0.0..=1.0).contains(&share) {
            return Err(wrong("the share must be between 0 and 1"));
        }
        let (from, to) = span
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .filter(|(a, b)| a < b)
            .ok_or_else(|| wrong("FROM-TO must be seconds with FROM < TO"))?;
        Ok(Self {
            network: [network[0], network[1], network[2]],
            share,
            from_secs: from,
            to_secs: to,
        })
    }
}

impl fmt::Display for ScriptedBurst {
    /// The form [`FromStr`] reads: `A.B.C.0/24:SHARE:FROM-TO`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.network;
        write!(
            f,
            "{a}.{b}.{c}.0/24:{}:{}-{}",
            self.share, self.from_secs, self.to_secs
        )
    }
}

/// In JSON a burst is its text form, `"203.0.113.0/24:0.3:60-90"`.
impl Serialize for ScriptedBurst {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScriptedBurst {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ScriptedBurst {
    /// The network as text, `A.B.C.0/24` (as the analytics name it).
    pub fn network_text(&self) -> String {
        let [a, b, c] = self.network;
        format!("{a}.{b}.{c}.0/24")
    }

    /// The city the burst comes from: one of the table's, chosen by the network.
    fn city(&self) -> (f64, f64) {
        let [a, b, c] = self.network.map(usize::from);
        let (_, latitude, longitude) = CITIES[(a * 7 + b * 3 + c) % CITIES.len()];
        (latitude, longitude)
    }
}

/// The random stream of the bursts of one file (or one live run), applied row by row.
pub(super) struct Scripted {
    rng: SplitMix64,
}

impl Scripted {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed ^ 0xB0B5_7ED5_C817_7ED0),
        }
    }

    /// Moves `row` (of `second` from the start) into the first of `bursts` of that second
    /// that draws it.
    pub(super) fn apply(&mut self, bursts: &[ScriptedBurst], second: u64, row: &mut Generated) {
        for burst in bursts {
            if (burst.from_secs..burst.to_secs).contains(&second) && self.rng.chance(burst.share) {
                let [a, b, c] = burst.network;
                let d = 1 + self.rng.below(254) as u8;
                row.ip = IpAddr::V4(Ipv4Addr::new(a, b, c, d));
                (row.latitude, row.longitude) = burst.city();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{GenerateConfig, write_csv, write_csv_scripted};

    #[test]
    fn a_burst_is_written_network_share_and_seconds() {
        let burst: ScriptedBurst = "203.0.113.0/24:0.3:60-90".parse().unwrap();
        assert_eq!(
            burst,
            ScriptedBurst {
                network: [203, 0, 113],
                share: 0.3,
                from_secs: 60,
                to_secs: 90
            }
        );
        assert_eq!(burst.to_string(), "203.0.113.0/24:0.3:60-90");
        let json = serde_json::to_string(&burst).unwrap();
        assert_eq!(json, r#""203.0.113.0/24:0.3:60-90""#);
        assert_eq!(serde_json::from_str::<ScriptedBurst>(&json).unwrap(), burst);
        assert!(serde_json::from_str::<ScriptedBurst>(r#""203.0.113.0/24:2:1-2""#).is_err());
        for bad in [
            "203.0.113.0:0.3:60-90",
            "203.0.113.0/24:1.5:60-90",
            "203.0.113.0/24:0.3:90-60",
            "x",
        ] {
            assert!(bad.parse::<ScriptedBurst>().is_err(), "{bad}");
        }
    }

    fn rows(bursts: &[ScriptedBurst]) -> Vec<(i64, String)> {
        let config = GenerateConfig {
            rows: 6000,
            duration_secs: 300,
            ..GenerateConfig::default()
        };
        let mut out = Vec::new();
        write_csv_scripted(&config, bursts, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                (
                    cells[3].parse::<i64>().unwrap() - config.start,
                    cells[0].to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_network_takes_its_share_of_its_seconds_and_no_other() {
        let burst: ScriptedBurst = "203.0.113.0/24:0.3:60-90".parse().unwrap();
        let rows = rows(&[burst]);
        let (inside, outside): (Vec<_>, Vec<_>) =
            rows.iter().partition(|(s, _)| (60..90).contains(s));
        let from_net = |rows: &[&(i64, String)]| {
            rows.iter()
                .filter(|(_, ip)| ip.starts_with("203.0.113."))
                .count()
        };
        assert_eq!(from_net(&outside), 0);
        let share = from_net(&inside) as f64 / inside.len() as f64;
        assert!((0.2..0.4).contains(&share), "{share} of {}", inside.len());
    }

    #[test]
    fn without_bursts_the_file_is_the_same_bytes_and_with_them_the_same_seed_gives_the_same_file() {
        let config = GenerateConfig::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_csv(&config, &mut a).unwrap();
        write_csv_scripted(&config, &[], &mut b).unwrap();
        assert_eq!(a, b);
        let burst: ScriptedBurst = "198.51.100.0/24:0.5:10-20".parse().unwrap();
        assert_eq!(rows(&[burst]), rows(&[burst]));
        assert_ne!(rows(&[burst]), rows(&[]));
    }
}
