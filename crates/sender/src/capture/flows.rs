//! Per-flow aggregation of captured packets: one event per 5-tuple (source and destination
//! address, protocol, ports) per second of capture time, with its packet and byte counts.
//!
//! Pure and synchronous: the capture thread feeds it packets and takes the finished events.
//! A second's flows are finished when a packet of a later second arrives, when the clock
//! passes the second ([`Flows::finish_before`]), or at the end ([`Flows::finish`]). A second
//! with more than `max_flows` distinct flows is finished early, in parts (a flow may then
//! give two events in that second): memory stays bounded and no packet goes uncounted.

use std::collections::HashMap;

use sources::pcap::Packet;
use traffic::Event;

/// One captured packet: its headers, capture time (Unix seconds) and length on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Captured {
    /// What its headers say.
    pub packet: Packet,
    /// Capture time, Unix seconds.
    pub timestamp: f64,
    /// Length on the wire, in bytes.
    pub length: u32,
}

impl Captured {
    /// The packet as an event of its own (`--per packet`).
    pub fn to_event(&self) -> Event {
        Event {
            bytes: Some(u64::from(self.length)),
            ..flow_event(&self.packet, self.timestamp)
        }
    }
}

/// An event carrying a packet's addresses, protocol and ports.
fn flow_event(packet: &Packet, timestamp: f64) -> Event {
    Event {
        protocol: Some(packet.protocol.to_owned()),
        dest_ip: Some(packet.dst),
        src_port: packet.src_port,
        dest_port: packet.dest_port,
        ..Event::new(packet.src, timestamp, false)
    }
}

/// A flow's counts within one second.
#[derive(Debug, Clone, Copy)]
struct Counts {
    first: f64,
    packets: u64,
    bytes: u64,
}

/// The flows of the current second (see the module documentation).
#[derive(Debug)]
pub struct Flows {
    second: Option<i64>,
    index: HashMap<Packet, usize>,
    flows: Vec<(Packet, Counts)>,
    max_flows: usize,
}

impl Flows {
    /// An empty table finishing a second early past `max_flows` distinct flows (at least 1).
    pub fn new(max_flows: usize) -> Flows {
        Flows {
            second: None,
            index: HashMap::new(),
            flows: Vec::new(),
            max_flows: max_flows.max(1),
        }
    }

    /// Counts `captured`; flows it finishes are appended to `out`, in first-seen order.
    pub fn add(&mut self, captured: &Captured, out: &mut Vec<Event>) {
        let second = captured.timestamp.floor() as i64;
        if self.second.is_some_and(|s| s != second) {
            self.finish(out);
        }
        self.second = Some(second);
        let length = u64::from(captured.length);
        match self.index.get(&captured.packet) {
            Some(&i) => {
                let counts = &mut self.flows[i].1;
                counts.packets += 1;
                counts.bytes += length;
            }
            None => {
                if self.flows.len() >= self.max_flows {
                    self.finish(out);
                    self.second = Some(second);
                }
                self.index.insert(captured.packet, self.flows.len());
                let counts = Counts {
                    first: captured.timestamp,
                    packets: 1,
                    bytes: length,
                };
                self.flows.push((captured.packet, counts));
            }
        }
    }

    /// Finishes the current second if `now` (Unix seconds) is past it.
    pub fn finish_before(&mut self, now: f64, out: &mut Vec<Event>) {
        if self.second.is_some_and(|s| (s as f64) + 1.0 <= now) {
            self.finish(out);
        }
    }

    /// Finishes every flow counted so far.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.index.clear();
        self.second = None;
        out.extend(self.flows.drain(..).map(|(packet, c)| Event {
            bytes: Some(c.bytes),
            packets: Some(c.packets),
            ..flow_event(&packet, c.first)
        }));
    }

    /// Flows counted and not yet finished.
    pub fn pending(&self) -> usize {
        self.flows.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn udp(src_port: u16, timestamp: f64, length: u32) -> Captured {
        Captured {
            packet: Packet {
                src: IpAddr::from([127, 0, 0, 1]),
                dst: IpAddr::from([127, 0, 0, 2]),
                protocol: "UDP",
                src_port: Some(src_port),
                dest_port: Some(53),
            },
            timestamp,
            length,
        }
    }

    /// Source port, time, packets, bytes.
    type Brief = (Option<u16>, f64, Option<u64>, Option<u64>);

    fn summary(events: &[Event]) -> Vec<Brief> {
        events
            .iter()
            .map(|e| (e.src_port, e.timestamp, e.packets, e.bytes))
            .collect()
    }

    #[test]
    fn packets_of_one_five_tuple_in_one_second_make_one_event_with_their_counts() {
        let mut flows = Flows::new(100);
        let mut out = Vec::new();
        for (port, t, len) in [(1, 10.1, 100), (2, 10.2, 50), (1, 10.9, 60), (1, 11.0, 70)] {
            flows.add(&udp(port, t, len), &mut out);
        }
        assert_eq!(
            summary(&out),
            [
                (Some(1), 10.1, Some(2), Some(160)),
                (Some(2), 10.2, Some(1), Some(50))
            ],
            "second 10 finished when second 11 began, in first-seen order"
        );
        assert_eq!(flows.pending(), 1);
        flows.finish_before(11.5, &mut out);
        assert_eq!(flows.pending(), 1, "second 11 is not over at 11.5");
        flows.finish_before(12.0, &mut out);
        assert_eq!(summary(&out[2..]), [(Some(1), 11.0, Some(1), Some(70))]);
        let e = &out[0];
        assert_eq!(e.protocol.as_deref(), Some("UDP"));
        assert_eq!(
            (e.dest_ip, e.dest_port),
            (Some(IpAddr::from([127, 0, 0, 2])), Some(53))
        );
    }

    #[test]
    fn a_second_with_too_many_flows_is_finished_in_parts_without_losing_a_packet() {
        let mut flows = Flows::new(2);
        let mut out = Vec::new();
        for port in [1, 2, 3, 1] {
            flows.add(&udp(port, 5.5, 10), &mut out);
        }
        flows.finish(&mut out);
        assert_eq!(
            summary(&out),
            [
                (Some(1), 5.5, Some(1), Some(10)),
                (Some(2), 5.5, Some(1), Some(10)),
                (Some(3), 5.5, Some(1), Some(10)),
                (Some(1), 5.5, Some(1), Some(10))
            ]
        );
        let packets: u64 = out.iter().filter_map(|e| e.packets).sum();
        assert_eq!(packets, 4);
    }

    #[test]
    fn a_packet_alone_is_an_event_with_its_length_and_no_count() {
        let e = udp(7, 3.25, 42).to_event();
        assert_eq!(
            (e.timestamp, e.bytes, e.packets, e.src_port),
            (3.25, Some(42), None, Some(7))
        );
    }
}
