//! Load for `scripts/bench-capture`: sends UDP datagrams to 127.0.0.1 at a steady rate.
//!
//! `udp-blast PORT RATE SECONDS [PAYLOAD]`: RATE datagrams per second for SECONDS seconds
//! (sent in bursts every millisecond, on an absolute schedule), PAYLOAD bytes each (default
//! 100). Prints the number sent and the seconds it took (longer than SECONDS when this
//! machine cannot send that fast). Loopback only.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize, default: Option<u64>| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .or(default)
            .unwrap_or_else(|| {
                eprintln!("usage: udp-blast PORT RATE SECONDS [PAYLOAD]");
                std::process::exit(2)
            })
    };
    let (port, rate, seconds) = (number(1, None), number(2, None), number(3, None));
    let payload = vec![7u8; number(4, Some(100)) as usize];
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(("127.0.0.1", port as u16))?;
    let start = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    let mut tick = 0u64;
    while sent < total {
        tick += 1;
        // Due by the end of this millisecond, on the absolute schedule.
        let due = (rate * tick / 1000).min(total);
        while sent < due {
            // A full socket buffer (ENOBUFS) is retried: the count is of datagrams sent.
            if socket.send(&payload).is_ok() {
                sent += 1;
            }
        }
        let next = start + Duration::from_millis(tick);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    println!("{sent} {:.3}", start.elapsed().as_secs_f64());
    Ok(())
}
