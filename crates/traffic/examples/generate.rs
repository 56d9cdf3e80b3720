//! Writes synthetic traffic in the course's CSV format, as `sender generate` does.
//!
//! ```text
//! cargo run -p traffic --example generate -- [--rows N] [--duration SECS] [--start UNIX]
//!     [--seed N] [--suspicious-share F] [-o PATH]
//! ```
//! Defaults are [`GenerateConfig::default`]; without `-o` the CSV goes to stdout.

use std::fs::File;
use std::io::{self, Write};
use std::str::FromStr;

use traffic::generate::{GenerateConfig, write_csv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = GenerateConfig::default();
    let mut output = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => config.rows = parse(&value()?)?,
            "--duration" => config.duration_secs = parse(&value()?)?,
            "--start" => config.start = parse(&value()?)?,
            "--seed" => config.seed = parse(&value()?)?,
            "--suspicious-share" => config.suspicious_share = parse(&value()?)?,
            "-o" | "--output" => output = Some(value()?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let rows = match &output {
        Some(path) => write_csv(&config, File::create(path)?)?,
        None => {
            let mut stdout = io::stdout().lock();
            let rows = write_csv(&config, &mut stdout)?;
            stdout.flush()?;
            rows
        }
    };
    eprintln!("wrote {rows} rows");
    Ok(())
}

fn parse<T: FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| format!("{text:?}: {e}"))
}
