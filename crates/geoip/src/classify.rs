//! Which addresses have no place on a map, decided without any database.
//!
//! The ranges (IANA special-purpose registries, RFC 6890 and successors), in the order they
//! are checked. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
//! reports for an IPv4 peer) is classified as the IPv4 address it carries.
//!
//! | reason     | IPv4                                                                                 | IPv6 |
//! |------------|--------------------------------------------------------------------------------------|------|
//! | `loopback` | 127.0.0.0/8                                                                          | ::1/128 |
//! | `private`  | 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918); 100.64.0.0/10 (carrier-grade NAT, RFC 6598); 169.254.0.0/16 (link-local) | fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10 (old site-local) |
//! | `reserved` | 0.0.0.0/8 ("this network", incl. unspecified); 192.0.0.0/24 (IETF protocol assignments); 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (documentation); 198.18.0.0/15 (benchmarking); 224.0.0.0/4 (multicast); 240.0.0.0/4 (future use, incl. broadcast 255.255.255.255) | ::/128 (unspecified); ff00::/8 (multicast); 2001:db8::/32 and 3fff::/20 (documentation); 2001:2::/48 (benchmarking); 100::/64 (discard-only); everything outside 2000::/3 that is not listed above (not allocated as global unicast, e.g. the deprecated IPv4-compatible ::/96) |
//!
//! Everything else is public and goes to the database. Carrier-grade NAT space counts as
//! private: like RFC 1918 space it is never seen on the public Internet, only behind an ISP's
//! NAT, so no database can place it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Unlocated;

/// Why `ip` has no place on a map, or `None` for a public address that a database may know.
///
/// Needs no database; see the module docs for the exact ranges.
pub fn classify(ip: IpAddr) -> Option<Unlocated> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// `ip` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into its IPv4 address.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: u128, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(ip) & mask == net & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<Unlocated> {
    const LOOPBACK: &[([u8; 4], u32)] = &[([127, 0, 0, 0], 8)];
    const PRIVATE: &[([u8; 4], u32)] = &[
        ([10, 0, 0, 0], 8),
        ([172, 16, 0, 0], 12),
        ([192, 168, 0, 0], 16),
        ([100, 64, 0, 0], 10),
        ([169, 254, 0, 0], 16),
    ];
    const RESERVED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([198, 18, 0, 0], 15),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    let hit = |nets: &[([u8; 4], u32)]| nets.iter().any(|&(net, len)| in_v4(ip, net, len));
    if hit(LOOPBACK) {
        Some(Unlocated::Loopback)
    } else if hit(PRIVATE) {
        Some(Unlocated::Private)
    } else if hit(RESERVED) {
        Some(Unlocated::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Unlocated> {
    const PRIVATE: &[(u128, u32)] = &[(0xfc00 << 112, 7), (0xfe80 << 112, 10), (0xfec0 << 112, 10)];
    const RESERVED: &[(u128, u32)] = &[
        (0xff00 << 112, 8),
        (0x2001_0db8 << 96, 32),
        (0x3fff << 112, 20),
        (0x2001_0002 << 96, 48),
        (0x0100 << 112, 64),
    ];
    if ip == Ipv6Addr::LOCALHOST {
        return Some(Unlocated::Loopback);
    }
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(Unlocated::Reserved);
    }
    let hit = |nets: &[(u128, u32)]| nets.iter().any(|&(net, len)| in_v6(ip, net, len));
    if hit(PRIVATE) {
        Some(Unlocated::Private)
    } else if hit(RESERVED) || !in_v6(ip, 0x2000 << 112, 3) {
        Some(Unlocated::Reserved)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn reason(ip: &str) -> Option<Unlocated> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn loopback_addresses_are_loopback() {
        for ip in ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(reason(ip), Some(Unlocated::Loopback), "{ip}");
        }
    }

    #[test]
    fn private_link_local_and_cgnat_addresses_are_private() {
        for ip in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.10.20",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "::ffff:192.168.0.1",
        ] {
            assert_eq!(reason(ip), Some(Unlocated::Private), "{ip}");
        }
    }

    #[test]
    fn documentation_multicast_broadcast_and_unspecified_are_reserved() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.200",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "100::1",
            "::1.2.3.4",
            "4000::1",
        ] {
            assert_eq!(reason(ip), Some(Unlocated::Reserved), "{ip}");
        }
    }

    #[test]
    fn public_addresses_next_to_the_special_ranges_are_public() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2001:4860:4860::8888",
            "2a00:1450::1",
            "2001:db9::1",
            "2001:3::1",
            "3ffe::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }
}
