//! Writes a deterministic `combined` access log to standard output (see `sources::generate`).

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use sources::generate::{Config, Generator};

/// Writes a deterministic nginx/Apache `combined` access log to standard output.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of lines.
    #[arg(long, env = "GENERATE_LINES", default_value_t = 1_000_000)]
    lines: u64,
    /// Number of distinct client addresses in the pool.
    #[arg(long, env = "GENERATE_IPS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    ips: u32,
    /// Seed of the pseudo-random sequence.
    #[arg(long, env = "GENERATE_SEED", default_value_t = 1)]
    seed: u64,
    /// Unix seconds of the first line.
    #[arg(long, env = "GENERATE_START", default_value_t = 1_767_225_600)]
    start: i64,
    /// Lines per second of log time.
    #[arg(long, env = "GENERATE_RATE", default_value_t = 200.0)]
    rate: f64,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if !(a.rate.is_finite() && a.rate > 0.0) {
        eprintln!("error: --rate must be a positive number");
        return ExitCode::from(2);
    }
    let mut g = Generator::new(Config {
        lines: a.lines,
        distinct_ips: a.ips,
        seed: a.seed,
        start: a.start,
        rate: a.rate,
    });
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match g.write_all(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the log: {e}");
            ExitCode::FAILURE
        }
    }
}
