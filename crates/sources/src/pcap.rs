//! pcap and pcapng captures, read natively (`pcap-parser` for the containers, `etherparse`
//! for the packets), in constant memory: one record per IP packet.
//!
//! A record: `ip` the source address, `dest_ip` the destination, `timestamp` the capture time
//! (microsecond or nanosecond pcap; pcapng in each interface's own resolution, `if_tsresol`,
//! and offset, `if_tsoffset`), `bytes` the packet's length on the wire, `protocol` the
//! transport (`TCP`, `UDP`, `ICMP`, `ICMPv6`, else `IP`), `src_port`/`dest_port` for TCP and
//! UDP. Its number is the packet's number
//! in the file (1-based, as Wireshark counts). Packets that are not IP (ARP, ...) are passed
//! over. Link types: Ethernet (with VLAN tags), raw IP, BSD loopback (`NULL`, `LOOP`) and
//! Linux cooked captures (`SLL`, `SLL2`, what `-i any` writes); a packet of another link type
//! is an error naming the packet. A damaged container ends the reading with an error naming
//! the packet after the last good one.

use std::borrow::Cow;
use std::io::{self, Read};
use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, Linktype, PcapBlockOwned, PcapError};

use crate::record::{LineError, ParseError, RecordRef};

/// Buffer of the container reader: more than the largest block (snap length 262,144).
const BUFFER: usize = 1 << 20;

/// True when `head` starts with a pcap or pcapng magic number.
pub fn is_capture(head: &[u8]) -> bool {
    matches!(
        head.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

/// One pcapng interface: link type, units per second, offset in seconds.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: Linktype,
    resolution: u64,
    offset: i64,
}

/// The packets of a capture as records (see the module documentation).
pub struct PcapRecords<'r> {
    reader: Box<dyn PcapReaderIterator + Send + 'r>,
    /// Legacy pcap: link type and fraction units per second.
    legacy: Option<(Linktype, f64)>,
    interfaces: Vec<Interface>,
    packet: u64,
    done: bool,
}

impl std::fmt::Debug for PcapRecords<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapRecords")
            .field("packet", &self.packet)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<'r> PcapRecords<'r> {
    /// Reads a capture from `input` (pcap or pcapng, either byte order).
    pub fn new<R: Read + Send + 'r>(input: R) -> io::Result<PcapRecords<'r>> {
        let reader = pcap_parser::create_reader(BUFFER, input).map_err(|e| match e {
            PcapError::Eof => invalid("the capture is empty".into()),
            other => invalid(format!("not a pcap or pcapng capture: {other:?}")),
        })?;
        Ok(PcapRecords {
            reader,
            legacy: None,
            interfaces: Vec::new(),
            packet: 0,
            done: false,
        })
    }

    /// The next packet's record or error, `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<RecordRef<'static>, ParseError>> {
        // Each turn consumes a block or refills the buffer; a reader that makes no progress
        // ends in an error from the container reader (UnexpectedEof), not a loop.
        while !self.done {
            let PcapRecords {
                reader,
                legacy,
                interfaces,
                packet,
                done,
            } = self;
            match reader.next() {
                Ok((offset, block)) => {
                    let out = handle(block, legacy, interfaces, packet);
                    reader.consume(offset);
                    if out.is_some() {
                        return out;
                    }
                }
                Err(PcapError::Eof) => *done = true,
                Err(PcapError::Incomplete(_)) => {
                    if let Err(e) = reader.refill() {
                        let message = format!("packet {}: reading the capture: {e:?}", *packet + 1);
                        *done = true;
                        return Some(Err(ParseError::Io(invalid(message))));
                    }
                }
                Err(e) => {
                    let message = format!("packet {}: damaged capture: {e:?}", *packet + 1);
                    *done = true;
                    return Some(Err(ParseError::Io(invalid(message))));
                }
            }
        }
        None
    }
}

impl Iterator for PcapRecords<'_> {
    type Item = Result<RecordRef<'static>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

/// Takes note of headers and interfaces; a packet's record, error, or `None` (not IP).
fn handle(
    block: PcapBlockOwned<'_>,
    legacy: &mut Option<(Linktype, f64)>,
    interfaces: &mut Vec<Interface>,
    packet: &mut u64,
) -> Option<Result<RecordRef<'static>, ParseError>> {
    let (linktype, timestamp, data, wire_len) = match block {
        PcapBlockOwned::LegacyHeader(h) => {
            let units = if h.is_nanosecond_precision() {
                1e9
            } else {
                1e6
            };
            *legacy = Some((h.network, units));
            return None;
        }
        PcapBlockOwned::Legacy(b) => {
            *packet += 1;
            let (linktype, units) = (*legacy)?;
            let t = f64::from(b.ts_sec) + f64::from(b.ts_usec) / units;
            (linktype, t, b.data, b.origlen)
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
            interfaces.clear();
            return None;
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            interfaces.push(Interface {
                linktype: idb.linktype,
                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                offset: idb.ts_offset(),
            });
            return None;
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            *packet += 1;
            let Some(iface) = interfaces.get(epb.if_id as usize) else {
                let e = format!("interface {} is not described", epb.if_id);
                return Some(Err(LineError::new(*packet, e).into()));
            };
            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let res = iface.resolution.max(1);
            let t = (ts / res) as f64 + (ts % res) as f64 / res as f64 + iface.offset as f64;
            let len = (epb.caplen as usize).min(epb.data.len());
            (iface.linktype, t, &epb.data[..len], epb.origlen)
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            *packet += 1;
            // No time in a simple packet block: it cannot be placed in time.
            let _ = spb;
            let e = "a simple packet block has no timestamp";
            return Some(Err(LineError::new(*packet, e).into()));
        }
        PcapBlockOwned::NG(_) => return None,
    };
    packet_record(*packet, linktype, timestamp, data, wire_len).map(|r| r.map_err(ParseError::Line))
}

/// The record of one packet's bytes; `None` when it is not IP.
fn packet_record(
    number: u64,
    linktype: Linktype,
    timestamp: f64,
    data: &[u8],
    wire_len: u32,
) -> Option<Result<RecordRef<'static>, LineError>> {
    let packet = match decode_packet(linktype.0, data) {
        Ok(packet) => packet?,
        Err(e) => return Some(Err(LineError::new(number, e))),
    };
    if !timestamp.is_finite() || timestamp < 0.0 {
        return Some(Err(LineError::new(number, "timestamp: before 1970")));
    }
    let mut rec = RecordRef::new(number, packet.src, timestamp);
    rec.dest_ip = Some(packet.dst);
    rec.bytes = Some(u64::from(wire_len));
    rec.protocol = Some(Cow::Borrowed(packet.protocol));
    rec.src_port = packet.src_port;
    rec.dest_port = packet.dest_port;
    Some(Ok(rec))
}

/// What one IP packet's headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Source address (an IPv4-mapped IPv6 address is given as IPv4).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The transport: `TCP`, `UDP`, `ICMP`, `ICMPv6`, else `IP`.
    pub protocol: &'static str,
    /// TCP or UDP source port.
    pub src_port: Option<u16>,
    /// TCP or UDP destination port.
    pub dest_port: Option<u16>,
}

/// Decodes the headers of one packet of link type `linktype` (a pcap `LINKTYPE_` number):
/// `Ok(None)` when it is not IP (ARP, ...), `Err` naming the problem for a link type that is
/// not supported or a packet shorter than its link header. Used for capture files and live
/// captures alike.
pub fn decode_packet(linktype: i32, data: &[u8]) -> Result<Option<Packet>, String> {
    let short = || Err("packet shorter than its link header".to_owned());
    let sliced = match linktype {
        1 => LaxSlicedPacket::from_ethernet(data).ok(),
        // Raw IP (101, 228, 229; 12 and 14 on some systems).
        12 | 14 | 101 | 228 | 229 => LaxSlicedPacket::from_ip(data).ok(),
        // BSD loopback: a 4-byte address family, then IP.
        0 | 108 => match data.get(4..) {
            Some(rest) => LaxSlicedPacket::from_ip(rest).ok(),
            None => return Ok(None),
        },
        113 => {
            let Some(proto) = data.get(14..16) else {
                return short();
            };
            let ether = EtherType(u16::from_be_bytes([proto[0], proto[1]]));
            Some(LaxSlicedPacket::from_ether_type(ether, &data[16..]))
        }
        276 => {
            let (Some(proto), Some(rest)) = (data.get(0..2), data.get(20..)) else {
                return short();
            };
            let ether = EtherType(u16::from_be_bytes([proto[0], proto[1]]));
            Some(LaxSlicedPacket::from_ether_type(ether, rest))
        }
        other => {
            return Err(format!(
                "link type {other} is not supported (Ethernet, raw IP, loopback, Linux cooked)"
            ));
        }
    };
    let Some(sliced) = sliced else {
        return Ok(None);
    };
    let (src, dst): (IpAddr, IpAddr) = match sliced.net.as_ref() {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        Some(LaxNetSlice::Arp(_)) | None => return Ok(None),
    };
    let (protocol, ports) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => ("TCP", Some((t.source_port(), t.destination_port()))),
        Some(TransportSlice::Udp(u)) => ("UDP", Some((u.source_port(), u.destination_port()))),
        Some(TransportSlice::Icmpv4(_)) => ("ICMP", None),
        Some(TransportSlice::Icmpv6(_)) => ("ICMPv6", None),
        _ => ("IP", None),
    };
    Ok(Some(Packet {
        src: src.to_canonical(),
        dst: dst.to_canonical(),
        protocol,
        src_port: ports.map(|p| p.0),
        dest_port: ports.map(|p| p.1),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_magic_numbers_are_recognised() {
        assert!(is_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]));
        assert!(is_capture(&[0x0a, 0x0d, 0x0d, 0x0a]));
        assert!(!is_capture(b"1.2.3.4 - -"));
        assert!(!is_capture(&[0xd4]));
    }

    #[test]
    fn a_packet_is_decoded_with_its_ports_and_a_foreign_link_type_is_named() {
        // Ethernet, IPv4 127.0.0.1 -> 127.0.0.1, UDP 40000 -> 53, 4 bytes of payload.
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ]);
        frame.extend_from_slice(&40000u16.to_be_bytes());
        frame.extend_from_slice(&53u16.to_be_bytes());
        frame.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
        let packet = decode_packet(1, &frame).unwrap().unwrap();
        assert_eq!(packet.src, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(packet.dst, IpAddr::from([127, 0, 0, 2]));
        assert_eq!(packet.protocol, "UDP");
        assert_eq!((packet.src_port, packet.dest_port), (Some(40000), Some(53)));
        assert_eq!(decode_packet(1, &frame[..10]).unwrap(), None, "not IP");
        let e = decode_packet(147, &frame).unwrap_err();
        assert!(e.contains("link type 147"), "{e}");
    }

    #[test]
    fn an_empty_or_foreign_input_is_an_error_not_a_panic() {
        assert!(PcapRecords::new(&b""[..]).is_err());
        assert!(PcapRecords::new(&b"hello world, this is not a capture at all"[..]).is_err());
    }

    #[test]
    fn a_truncated_capture_ends_with_an_error_naming_the_packet() {
        let mut data = Vec::new();
        // Microsecond pcap, Ethernet, then a packet header promising more than there is.
        data.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        data.extend_from_slice(&[0; 8]);
        data.extend_from_slice(&65535u32.to_le_bytes());
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 1, 2]);
        let got: Vec<_> = PcapRecords::new(&data[..]).unwrap().collect();
        assert_eq!(got.len(), 1, "{got:?}");
        let e = got[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("packet 1"), "{e}");
    }
}
