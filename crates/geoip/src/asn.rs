//! Which network (autonomous system) an address belongs to, from CSV ranges.
//!
//! The files are those of the npm package `@ip-location-db/asn` (CC BY 4.0: DB-IP,
//! RouteViews, NRO), fetched by `scripts/fetch-asn` into [`DEFAULT_ASN_DIR`]: one row per
//! range, `first_ip,last_ip,as_number,as_name`, the name quoted when it holds a comma
//! (`"Cloudflare, Inc."`, with `""` for a quote). IPv4 and IPv6 rows may be in one file or
//! in two.
//!
//! Kept compact: the ranges are three sorted parallel arrays per family (start, end, network
//! index), each distinct network (number and name) stored once; a lookup is a binary search.
//! About 412,000 IPv4 and 103,000 IPv6 ranges of about 80,000 networks take some 12 MB.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where `scripts/fetch-asn` puts the AS data, relative to the repository root.
pub const DEFAULT_ASN_DIR: &str = "data/asn";

/// The AS data's file names in a directory given as `--asn`.
pub const ASN_FILES: [&str; 2] = ["asn-ipv4.csv", "asn-ipv6.csv"];

/// The credit the AS data's licences (CC BY 4.0) ask for.
pub const ASN_ATTRIBUTION: &str =
    "AS data by DB-IP (https://db-ip.com), RouteViews and the NRO, CC BY 4.0";

/// An autonomous system: its number and its holder's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Network {
    /// The AS number, e.g. 13335.
    pub asn: u32,
    /// Its holder, e.g. "Cloudflare, Inc." (may be empty).
    pub name: Arc<str>,
}

/// Why AS data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AsnError {
    /// A file could not be read.
    #[error("cannot read AS data {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A row is not `first_ip,last_ip,as_number,as_name`.
    #[error("{path} line {line}: {message}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A directory without the expected files.
    #[error("{path} holds neither asn-ipv4.csv nor asn-ipv6.csv (run scripts/fetch-asn)")]
    Empty {
        /// The directory.
        path: PathBuf,
    },
}

/// Ranges of one address family, sorted by start, not overlapping.
#[derive(Debug, Default)]
struct Ranges<T> {
    start: Vec<T>,
    end: Vec<T>,
    network: Vec<u32>,
}

impl<T: Copy + Ord> Ranges<T> {
    fn push(&mut self, start: T, end: T, network: u32) {
        self.start.push(start);
        self.end.push(end);
        self.network.push(network);
    }

    /// Sorts by start if the rows were not in order (the package's are).
    fn sort(&mut self) {
        if self.start.is_sorted() {
            return;
        }
        let mut order: Vec<usize> = (0..self.start.len()).collect();
        order.sort_by_key(|&i| self.start[i]);
        self.start = order.iter().map(|&i| self.start[i]).collect();
        self.end = order.iter().map(|&i| self.end[i]).collect();
        self.network = order.iter().map(|&i| self.network[i]).collect();
    }

    fn find(&self, ip: T) -> Option<u32> {
        // The last range starting at or before `ip`; overlaps are not expected, and if a file
        // had them the later-starting range wins.
        let i = self.start.partition_point(|&s| s <= ip).checked_sub(1)?;
        (ip <= self.end[i]).then(|| self.network[i])
    }

    fn memory(&self) -> usize {
        self.start.capacity() * 2 * size_of::<T>() + self.network.capacity() * 4
    }

    fn shrink(&mut self) {
        self.start.shrink_to_fit();
        self.end.shrink_to_fit();
        self.network.shrink_to_fit();
    }
}

/// AS data loaded into memory. Build once with [`AsnDb::open`] and share.
#[derive(Debug, Default)]
pub struct AsnDb {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    networks: Vec<Network>,
    sources: Vec<PathBuf>,
}

impl AsnDb {
    /// Loads each path: a CSV file, or a directory holding `asn-ipv4.csv` and/or
    /// `asn-ipv6.csv`.
    ///
    /// # Errors
    /// A file that cannot be read or has a malformed row (named with its line).
    pub fn open(paths: &[PathBuf]) -> Result<AsnDb, AsnError> {
        let mut db = AsnDb::default();
        let mut ids = std::collections::HashMap::<(u32, Arc<str>), u32>::new();
        for path in paths {
            let files: Vec<PathBuf> = if path.is_dir() {
                let found: Vec<PathBuf> = ASN_FILES
                    .iter()
                    .map(|f| path.join(f))
                    .filter(|f| f.is_file())
                    .collect();
                if found.is_empty() {
                    return Err(AsnError::Empty { path: path.clone() });
                }
                found
            } else {
                vec![path.clone()]
            };
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|source| AsnError::Read {
                    path: file.clone(),
                    source,
                })?;
                db.load(&file, &text, &mut ids)?;
                db.sources.push(file);
            }
        }
        db.v4.sort();
        db.v6.sort();
        db.v4.shrink();
        db.v6.shrink();
        db.networks.shrink_to_fit();
        Ok(db)
    }

    fn load(
        &mut self,
        path: &Path,
        text: &str,
        ids: &mut std::collections::HashMap<(u32, Arc<str>), u32>,
    ) -> Result<(), AsnError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let bad = |message: String| AsnError::Row {
                path: path.to_owned(),
                line: n + 1,
                message,
            };
            let (first, last, asn, name) = split_row(line)
                .ok_or_else(|| bad(format!("not first_ip,last_ip,asn,name: {line:?}")))?;
            let asn: u32 = asn
                .parse()
                .map_err(|_| bad(format!("AS number {asn:?} is not a whole number")))?;
            let first: IpAddr = first
                .parse()
                .map_err(|_| bad(format!("{first:?} is not an IP address")))?;
            let last: IpAddr = last
                .parse()
                .map_err(|_| bad(format!("{last:?} is not an IP address")))?;
            let name: Arc<str> = Arc::from(name.as_str());
            let next = self.networks.len() as u32;
            let id = *ids.entry((asn, Arc::clone(&name))).or_insert_with(|| {
                self.networks.push(Network { asn, name });
                next
            });
            match (first, last) {
                (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => self.v4.push(a.into(), b.into(), id),
                (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => self.v6.push(a.into(), b.into(), id),
                _ => {
                    return Err(bad(format!(
                        "{first} .. {last} is not a range of one family"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The network `ip` belongs to, if the data has it. IPv4-mapped IPv6 addresses are looked
    /// up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Network> {
        let id = match ip {
            IpAddr::V4(v4) => self.v4.find(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.find(v4.into()),
                None => self.v6.find(v6.into()),
            },
        }?;
        self.networks.get(id as usize)
    }

    /// Ranges loaded: (IPv4, IPv6).
    pub fn ranges(&self) -> (usize, usize) {
        (self.v4.start.len(), self.v6.start.len())
    }

    /// Distinct networks (number and name) loaded.
    pub fn networks(&self) -> usize {
        self.networks.len()
    }

    /// The files it was loaded from.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Bytes held by the ranges and networks (names included), roughly.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory()
            + self.v6.memory()
            + self.networks.capacity() * size_of::<Network>()
            + self
                .networks
                .iter()
                .map(|n| n.name.len() + 2 * size_of::<usize>())
                .sum::<usize>()
    }
}

/// `first,last,asn,name` with the name possibly quoted (`"a, b"`, `""` for a quote).
fn split_row(line: &str) -> Option<(&str, &str, &str, String)> {
    let mut parts = line.splitn(4, ',');
    let first = parts.next()?.trim();
    let last = parts.next()?.trim();
    let asn = parts.next()?.trim();
    let rest = parts.next().unwrap_or("");
    let name = match rest.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?.replace("\"\"", "\""),
        None => rest.to_owned(),
    };
    Some((first, last, asn, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A tiny AS file, written by the test (rows out of order on purpose).
    fn tiny(dir: &Path) -> PathBuf {
        let path = dir.join("asn-ipv4.csv");
        std::fs::write(
            &path,
            "8.8.8.0,8.8.8.255,15169,Google LLC\n\
             1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
             1.1.1.0,1.1.1.255,13335,\"Cloudflare, Inc.\"\n\
             9.9.9.0,9.9.9.255,19281,\"Quad \"\"9\"\"\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("asn-ipv6.csv"),
            "2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\r\n",
        )
        .unwrap();
        path
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("asn-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn asn(db: &AsnDb, ip: &str) -> Option<(u32, String)> {
        db.lookup(ip.parse().unwrap())
            .map(|n| (n.asn, n.name.to_string()))
    }

    #[test]
    fn addresses_in_a_range_get_its_network_and_others_none() {
        let dir = tempdir("ranges");
        tiny(&dir);
        let db = AsnDb::open(std::slice::from_ref(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(asn(&db, "8.8.8.8"), Some((15169, "Google LLC".into())));
        assert_eq!(
            asn(&db, "1.0.0.0"),
            Some((13335, "Cloudflare, Inc.".into()))
        );
        assert_eq!(
            asn(&db, "1.1.1.255"),
            Some((13335, "Cloudflare, Inc.".into()))
        );
        assert_eq!(asn(&db, "9.9.9.9"), Some((19281, "Quad \"9\"".into())));
        assert_eq!(asn(&db, "1.0.1.0"), None, "between two ranges");
        assert_eq!(asn(&db, "0.0.0.1"), None, "before the first");
        assert_eq!(asn(&db, "200.1.1.1"), None, "after the last");
        assert_eq!(
            asn(&db, "2001:4860:4860::8888"),
            Some((15169, "Google LLC".into()))
        );
        assert_eq!(asn(&db, "::ffff:8.8.4.4"), None);
        assert_eq!(
            asn(&db, "::ffff:8.8.8.4"),
            Some((15169, "Google LLC".into()))
        );
        assert_eq!(db.ranges(), (4, 1));
        assert_eq!(
            db.networks(),
            3,
            "one network per number and name: {:?}",
            db.networks
        );
        assert!(db.memory_bytes() > 0);
    }

    #[test]
    fn a_single_file_loads_alone_and_a_bad_row_names_its_line() {
        let dir = tempdir("single");
        let v4 = tiny(&dir);
        let db = AsnDb::open(std::slice::from_ref(&v4)).unwrap();
        assert_eq!(db.ranges(), (4, 0));
        std::fs::write(&v4, "1.0.0.0,1.0.0.255,13335,x\n1.0.1.0,nope,1,y\n").unwrap();
        let error = AsnDb::open(&[v4]).unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("nope"),
            "{error}"
        );
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let error = AsnDb::open(&[empty]).unwrap_err().to_string();
        assert!(error.contains("scripts/fetch-asn"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The real data, if scripts/fetch-asn has put it in data/asn (skipped otherwise).
    #[test]
    fn the_fetched_data_knows_well_known_networks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/asn");
        if !dir.join(ASN_FILES[0]).is_file() {
            eprintln!("skipped: no AS data (run scripts/fetch-asn)");
            return;
        }
        let db = AsnDb::open(&[dir]).unwrap();
        assert_eq!(asn(&db, "8.8.8.8").map(|n| n.0), Some(15169));
        assert_eq!(asn(&db, "1.1.1.1").map(|n| n.0), Some(13335));
        assert_eq!(asn(&db, "2606:4700:4700::1111").map(|n| n.0), Some(13335));
        let (v4, v6) = db.ranges();
        assert!(v4 > 100_000 && v6 > 10_000, "{v4} {v6}");
    }
}
