//! The capture itself: a libpcap handle on one interface (through the `pcap` crate), read on
//! a thread of its own, each packet decoded ([`sources::pcap::decode_packet`]) and turned
//! into events (one per packet, or per flow and second, see [`super::flows`]), handed to
//! the sending side in chunks over a bounded queue.
//!
//! Nothing is dropped silently: the kernel's counters (`pcap_stats`: packets dropped because
//! the capture buffer was full, and by the interface) and the packets this side had to drop
//! because the queue to the sending side was full are kept in [`Counters`], which the
//! sender reports in its progress, its summary and to the server.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{FutureExt, StreamExt};
use pcap::{Active, Capture, Device};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use traffic::Event;

use super::flows::{Captured, Flows};
use crate::config::{Direction, Per};

/// Bytes kept of each packet: enough for every header we read (Ethernet, VLAN, IPv6 with
/// extension headers, TCP with options); the wire length comes from the packet header.
const SNAPLEN: i32 = 256;
/// How long a read waits for packets before the loop looks at the stop flag and the clock.
const READ_TIMEOUT_MS: i32 = 50;
/// Events are handed over at least this often, or when a chunk is this full.
const HAND_OVER_EVERY: Duration = Duration::from_millis(50);
const CHUNK: usize = 1024;
/// The kernel's counters are read this often.
const STATS_EVERY: Duration = Duration::from_millis(200);
/// Flows of a second are finished this long after the second ended (packets of the second
/// still in the kernel's buffer arrive in the meantime).
const FLOW_GRACE: f64 = 0.5;
/// After the stop, the kernel's buffer is read for at most this long (packets that keep
/// coming meanwhile are not waited for).
const STOP_DRAIN: Duration = Duration::from_secs(2);
/// After the stop, reading ends once no packet came for this long: three read time-outs,
/// the longest the kernel keeps a block of packets before handing it over.
const STOP_QUIET: Duration = Duration::from_millis(3 * READ_TIMEOUT_MS as u64);
/// Most distinct flows kept for one second before it is finished early.
const MAX_FLOWS: usize = 100_000;

/// How to capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name, as `ip link` shows it.
    pub interface: String,
    /// BPF filter, as tcpdump takes it.
    pub filter: Option<String>,
    /// Which packets.
    pub direction: Direction,
    /// One event per packet or per flow and second.
    pub per: Per,
    /// Kernel capture buffer, bytes.
    pub buffer_bytes: i32,
}

/// What the capture counted so far (absolute values, shared with the sending side).
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets read from the capture (after the filter).
    pub captured: AtomicU64,
    /// Packets passed over because they are not IP (ARP, ...).
    pub not_ip: AtomicU64,
    /// Packets the kernel dropped because the capture buffer was full (`ps_drop`).
    pub kernel_dropped: AtomicU64,
    /// Packets the interface or its driver dropped (`ps_ifdrop`).
    pub interface_dropped: AtomicU64,
    /// Packets this sender dropped because its queue to the server was full.
    pub queue_dropped: AtomicU64,
}

/// A read of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Drops {
    /// Packets read from the capture.
    pub captured: u64,
    /// Packets passed over as not IP.
    pub not_ip: u64,
    /// Dropped by the kernel (buffer full).
    pub kernel_dropped: u64,
    /// Dropped by the interface.
    pub interface_dropped: u64,
    /// Dropped by this sender (queue full).
    pub queue_dropped: u64,
}

impl Counters {
    /// The counters now.
    pub fn read(&self) -> Drops {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Drops {
            captured: get(&self.captured),
            not_ip: get(&self.not_ip),
            kernel_dropped: get(&self.kernel_dropped),
            interface_dropped: get(&self.interface_dropped),
            queue_dropped: get(&self.queue_dropped),
        }
    }
}

/// An open capture, ready to run.
pub struct Live {
    capture: Capture<Active>,
    linktype: i32,
    /// `Some`: pcap cannot select the direction here; keep packets by the interface's
    /// addresses instead (inbound: to one of them; outbound: from one of them).
    by_address: Option<Vec<IpAddr>>,
    options: LiveOptions,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("linktype", &self.linktype)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Opens the capture: the interface, the filter, the direction. The error says what to do.
pub fn open(options: LiveOptions) -> Result<Live, String> {
    let name = options.interface.as_str();
    let capture = Capture::from_device(name)
        .and_then(|c| {
            c.snaplen(SNAPLEN)
                .timeout(READ_TIMEOUT_MS)
                .buffer_size(options.buffer_bytes)
                .promisc(false)
                .open()
        })
        .map_err(|e| open_error(name, &e.to_string()))?;
    let mut capture = capture;
    if let Some(filter) = &options.filter {
        capture
            .filter(filter, true)
            .map_err(|e| format!("--filter {filter:?}: {e}"))?;
    }
    let wanted = match options.direction {
        Direction::In => pcap::Direction::In,
        Direction::Out => pcap::Direction::Out,
        Direction::Both => pcap::Direction::InOut,
    };
    let by_address = match capture.direction(wanted) {
        Ok(()) => None,
        Err(e) if options.direction != Direction::Both => {
            let addresses: Vec<IpAddr> = Device::list()
                .unwrap_or_default()
                .into_iter()
                .filter(|d| d.name == name)
                .flat_map(|d| d.addresses.into_iter().map(|a| a.addr))
                .collect();
            warn!(
                interface = name,
                reason = %e,
                ?addresses,
                "this system cannot select packets by direction; deciding by the interface's addresses"
            );
            Some(addresses)
        }
        Err(_) => None,
    };
    let linktype = capture.get_datalink().0;
    Ok(Live {
        capture,
        linktype,
        by_address,
        options,
    })
}

/// The message for a capture that could not be opened: the rights and how to get them, or
/// the interfaces there are.
pub fn open_error(interface: &str, error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        format!(
            "cannot capture on {interface}: {error}. Capturing needs the right to: run as root, \
             or give the binary the capabilities once with \
             `sudo setcap cap_net_raw,cap_net_admin+ep $(command -v sender)`, or in Docker \
             compose add `cap_add: [NET_RAW, NET_ADMIN]` and `network_mode: host` (the \
             `capture` profile does)"
        )
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        let names: Vec<String> = Device::list()
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.name)
            .collect();
        format!(
            "cannot capture on {interface}: {error}; interfaces here: {}",
            names.join(", ")
        )
    } else {
        format!("cannot capture on {interface}: {error}")
    }
}

impl Live {
    /// Reads packets until `stop` is set or the capture fails, handing events to `queue`;
    /// at the end every flow still counted is handed over too (waiting for room: this is
    /// what was captured before the stop). Runs on a thread of its own.
    ///
    /// The handle is non-blocking and waited on with the thread's own event loop (`pcap`'s
    /// packet stream): on Linux a blocking read with a time-out never returns while no
    /// packet comes (the kernel only hands over blocks that hold packets), so it could not
    /// see the stop.
    pub fn run(
        self,
        queue: mpsc::Sender<Vec<Event>>,
        counters: Arc<Counters>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("capture thread: {e}"))?;
        runtime.block_on(self.read_loop(queue, counters, stop))
    }

    async fn read_loop(
        self,
        queue: mpsc::Sender<Vec<Event>>,
        counters: Arc<Counters>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), String> {
        let Live {
            capture,
            linktype,
            by_address,
            options,
        } = self;
        let failed = |e: &dyn std::fmt::Display| format!("capture on {}: {e}", options.interface);
        let mut packets = capture
            .setnonblock()
            .and_then(|c| c.stream(Decoder { linktype }))
            .map_err(|e| failed(&e))?;
        let keeps = |packet: &sources::pcap::Packet| match (&by_address, options.direction) {
            (None, _) | (_, Direction::Both) => true,
            (Some(mine), Direction::In) => mine.contains(&packet.dst),
            (Some(mine), Direction::Out) => mine.contains(&packet.src),
        };
        let mut flows = Flows::new(MAX_FLOWS);
        let mut out: Vec<Event> = Vec::with_capacity(CHUNK);
        let mut handed = Instant::now();
        let mut stats_read = Instant::now();
        let mut stopped_at: Option<Instant> = None;
        let result = 'reading: loop {
            if stopped_at.is_none() && stop.load(Ordering::Relaxed) {
                stopped_at = Some(Instant::now());
            }
            // After the stop, what the kernel's buffer holds is read too (it was captured
            // before the stop): until it has been quiet for STOP_QUIET (longer than the
            // kernel takes to hand over a block), for at most STOP_DRAIN if packets keep coming.
            let first = match stopped_at {
                Some(at) if at.elapsed() >= STOP_DRAIN => break Ok(()),
                Some(_) => match tokio::time::timeout(STOP_QUIET, packets.next()).await {
                    Ok(Some(item)) => Some(item),
                    _ => break Ok(()),
                },
                None => tokio::select! {
                    item = packets.next() => item,
                    () = tokio::time::sleep(HAND_OVER_EVERY) => None,
                },
            };
            // The first packet, then what else is there already (bounded, to look at the
            // clock and the stop flag in between).
            let mut item = first;
            let mut read = 0;
            while let Some(decoded) = item {
                let decoded = match decoded {
                    Ok(decoded) => decoded,
                    Err(e) => break 'reading Err(failed(&e)),
                };
                counters.captured.fetch_add(1, Ordering::Relaxed);
                match decoded {
                    Ok(Some(captured)) if keeps(&captured.packet) => match options.per {
                        Per::Packet => out.push(captured.to_event()),
                        Per::Flow => flows.add(&captured, &mut out),
                    },
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        counters.not_ip.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => break 'reading Err(failed(&e)),
                }
                read += 1;
                if read >= CHUNK {
                    break;
                }
                item = packets.next().now_or_never().flatten();
            }
            if handed.elapsed() >= HAND_OVER_EVERY || out.len() >= CHUNK {
                flows.finish_before(unix_now() - FLOW_GRACE, &mut out);
                if stopped_at.is_some() {
                    // Stopping: wait for room rather than drop (the sender drains the queue).
                    let chunk = std::mem::replace(&mut out, Vec::with_capacity(CHUNK));
                    if !chunk.is_empty() && queue.send(chunk).await.is_err() {
                        warn!("the sending side has stopped: the last events were not sent");
                    }
                } else {
                    hand_over(&queue, &mut out, &counters);
                }
                handed = Instant::now();
            }
            if stats_read.elapsed() >= STATS_EVERY {
                read_stats(packets.capture_mut(), &counters);
                stats_read = Instant::now();
            }
        };
        read_stats(packets.capture_mut(), &counters);
        flows.finish(&mut out);
        // The last chunk waits for room: the sending side drains the queue until it closes.
        if !out.is_empty() && queue.send(out).await.is_err() {
            warn!("the sending side has stopped: the last flows were not sent");
        }
        debug!(counters = ?counters.read(), "capture stopped");
        result
    }
}

/// Decodes each packet where it lies in the capture buffer (no copy): `Ok(None)` for a
/// packet that is not IP, `Err` for a link type we do not read.
struct Decoder {
    linktype: i32,
}

impl pcap::PacketCodec for Decoder {
    type Item = Result<Option<Captured>, String>;

    fn decode(&mut self, p: pcap::Packet<'_>) -> Self::Item {
        let ts = p.header.ts;
        let timestamp = ts.tv_sec as f64 + ts.tv_usec as f64 / 1e6;
        let packet = sources::pcap::decode_packet(self.linktype, p.data)?;
        Ok(packet.map(|packet| Captured {
            packet,
            timestamp,
            length: p.header.len,
        }))
    }
}

/// Copies the kernel's drop counters into `counters`.
fn read_stats(capture: &mut Capture<Active>, counters: &Counters) {
    if let Ok(stat) = capture.stats() {
        counters
            .kernel_dropped
            .store(u64::from(stat.dropped), Ordering::Relaxed);
        counters
            .interface_dropped
            .store(u64::from(stat.if_dropped), Ordering::Relaxed);
    }
}

/// Hands `out` to the queue at once: a full queue drops the chunk, counting its packets.
fn hand_over(queue: &mpsc::Sender<Vec<Event>>, out: &mut Vec<Event>, counters: &Counters) {
    if out.is_empty() {
        return;
    }
    let chunk = std::mem::replace(out, Vec::with_capacity(CHUNK));
    let packets = |chunk: &[Event]| chunk.iter().map(|e| e.packets.unwrap_or(1)).sum::<u64>();
    let lost = queue.try_send(chunk).err().map(|e| match e {
        mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
    });
    if let Some(chunk) = lost {
        counters
            .queue_dropped
            .fetch_add(packets(&chunk), Ordering::Relaxed);
    }
}

/// The wall clock, Unix seconds (the capture's timestamps are on it).
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_right_names_root_setcap_and_compose() {
        let e = open_error(
            "eth0",
            "eth0: You don't have permission to perform this capture on that device (socket: Operation not permitted)",
        );
        for fix in [
            "root",
            "setcap cap_net_raw,cap_net_admin+ep",
            "NET_RAW, NET_ADMIN",
            "network_mode: host",
        ] {
            assert!(e.contains(fix), "{fix} in {e}");
        }
        let e = open_error("nope0", "nope0: No such device exists");
        assert!(e.contains("interfaces here:"), "{e}");
        assert!(!e.contains("setcap"), "{e}");
    }

    #[test]
    fn a_full_queue_counts_the_packets_of_the_chunk_it_drops() {
        let (tx, _rx) = mpsc::channel(1);
        let counters = Counters::default();
        let flow = Event {
            packets: Some(5),
            ..Event::new(IpAddr::from([127, 0, 0, 1]), 1.0, false)
        };
        let mut out = vec![flow.clone()];
        hand_over(&tx, &mut out, &counters);
        assert_eq!(counters.read().queue_dropped, 0);
        let mut out = vec![flow, Event::new(IpAddr::from([127, 0, 0, 1]), 1.0, false)];
        hand_over(&tx, &mut out, &counters);
        assert_eq!(counters.read().queue_dropped, 6, "a flow of 5 and a packet");
        assert!(out.is_empty());
    }
}
