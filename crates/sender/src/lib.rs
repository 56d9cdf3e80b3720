//! The traffic-globe sender: replays traffic rows from a CSV file or an access log to the
//! server as JSON POSTs, each row at the instant its timestamp says (scaled by a speed
//! factor), or as fast as the server takes them (`--speed max`).
//!
//! [`run`] is the whole program behind the binary's command line; [`source`] turns the input
//! into rows; [`replay::replay`] is the paced loop, and [`import::import`] the unpaced one,
//! both generic over a [`Transport`] so that tests drive them against fakes.

pub mod capture;
pub mod config;
pub mod follow;
pub mod http;
pub mod import;
pub mod live;
pub mod progress;
pub mod replay;
pub mod source;
pub mod summary;
pub mod transport;

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use traffic::generate::write_csv_scripted;

pub use config::{CaptureArgs, Cli, Command, Config, GenerateArgs, Secret, Speed};
pub use http::HttpTransport;
pub use progress::Progress;
pub use replay::{Options, ReplayError, replay};
pub use summary::{Summary, Verdict, exit};
pub use transport::{PostError, Transport, batch_key, new_run_id};

/// How long before a row is due the replay stops sleeping and spins: tokio's timers wake
/// 1-3 ms late, measured.
const SPIN: Duration = Duration::from_millis(3);

/// Replays `config.csv` to the server at `config.url` until the file ends (or forever with
/// `--loop`), or `shutdown` is cancelled. Prints the one-line summary on stderr in every case.
///
/// `Ok` carries the summary, whose [`Summary::verdict`] says whether every row, or every
/// usable row, was accepted; `Err` means the replay stopped early (unreadable file, server
/// refusing or unreachable, strict mode).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let token = config.token.as_ref().map(|t| t.0.as_str());
    let mut transport = HttpTransport::new(&config.url, config.timeout, token)
        .with_context(|| format!("while preparing to post to {}", config.url))?
        .with_format(config.body.into());
    let path = config.csv.as_path();
    config.check().map_err(anyhow::Error::msg)?;
    let rules = match &config.rules {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("while reading the rules file {}", file.display()))?;
            sources::suspicious::Rules::parse(&text)
                .with_context(|| format!("in the rules file {}", file.display()))?
        }
        None => sources::suspicious::Rules::default(),
    };
    if config.follow {
        return run_follow(&config, transport, rules, &shutdown).await;
    }
    let mut spec = source::Spec {
        path: path.to_owned(),
        format: config.format,
        map: config.map.clone().unwrap_or_default().0,
        rules: Arc::new(rules),
    };
    // Open once up front so that a missing file or a bad header fails before anything is
    // sent; the first pass reads this opening (standard input can only be read once).
    let opened =
        source::open(&spec).with_context(|| format!("while opening {}", path.display()))?;
    spec.format = opened.format;
    let mut first = Some(opened.rows);
    let open = move || match first.take() {
        Some(rows) => Ok(rows),
        None => source::open(&spec).map(|o| o.rows),
    };

    let progress = if config.quiet {
        Progress::off()
    } else if std::io::stderr().is_terminal() {
        // The bar's length is only known for a single pass of a plain file; counting is a
        // byte scan.
        let total = if config.looping
            || source::is_stdin(path)
            || is_gzip(path)
            || matches!(
                opened.format,
                source::InputFormat::Pcap | source::InputFormat::TsharkJson
            ) {
            None
        } else {
            count_data_lines(path, opened.format == source::InputFormat::Csv).ok()
        };
        Progress::bar(total)
    } else {
        Progress::log()
    };
    let run_id = transport::new_run_id();
    info!(
        file = %path.display(),
        format = %opened.format,
        endpoint = %transport.endpoint(),
        speed = ?config.speed,
        looping = config.looping,
        run_id = %run_id,
        "replaying"
    );
    let (summary, result) = match config.speed {
        Speed::Max => {
            let options = import::Options {
                strict: config.strict,
                max_batch: config.batch_size(),
                in_flight: import::IN_FLIGHT,
                give_up_after: config.give_up_after,
                run_id,
            };
            import::import(open, &transport, &options, progress, &shutdown).await
        }
        Speed::Factor(speed) => {
            let options = Options {
                speed,
                looping: config.looping,
                strict: config.strict,
                max_batch: config.batch_size(),
                max_gap: config.max_gap,
                give_up_after: config.give_up_after,
                spin: SPIN,
                run_id,
                endless: false,
            };
            replay(open, &mut transport, &options, progress, &shutdown).await
        }
    };
    eprintln!("sender: {summary}");
    if summary.cancelled {
        warn!(not_sent = summary.not_sent, "stopped before the end");
    }
    result.with_context(|| format!("while replaying {}", path.display()))?;
    Ok(summary)
}

/// `--follow`: follows the file until shut down; the summary says what was sent.
async fn run_follow(
    config: &Config,
    transport: HttpTransport,
    rules: sources::suspicious::Rules,
    shutdown: &CancellationToken,
) -> anyhow::Result<Summary> {
    let path = config.csv.clone();
    let options = follow::Options {
        checkpoint: config
            .checkpoint
            .clone()
            .unwrap_or_else(|| follow::default_checkpoint(&path)),
        path,
        format: config.format,
        map: config.map.clone().unwrap_or_default().0,
        rules: Arc::new(rules),
        start: if config.from_beginning {
            follow::tail::Start::Beginning
        } else {
            follow::tail::Start::End
        },
        max_batch: config.batch_size().get(),
        strict: config.strict,
        give_up_after: config.give_up_after,
        poll: follow::POLL,
    };
    info!(
        file = %options.path.display(),
        checkpoint = %options.checkpoint.display(),
        endpoint = %transport.endpoint(),
        "following"
    );
    let (summary, result) = follow::follow(options, transport, shutdown).await;
    eprintln!("sender: {summary}");
    result.with_context(|| format!("while following {}", config.csv.display()))?;
    Ok(summary)
}

/// True when the file starts with the gzip magic bytes.
fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == [0x1f, 0x8b])
}

/// The exit status for an outcome of [`run`] (see [`exit`]), logging why it is not 0.
pub fn exit_status(outcome: &anyhow::Result<Summary>) -> u8 {
    match outcome {
        Ok(summary) => {
            let verdict = summary.verdict();
            match verdict {
                Verdict::Complete => {}
                Verdict::RowsSkipped(skipped) => {
                    warn!(skipped, "finished, but rows were skipped as unreadable");
                }
                Verdict::Incomplete => error!("not every usable row was accepted"),
            }
            verdict.exit_code()
        }
        Err(e) => {
            error!("{e:#}");
            let unauthorized = e
                .chain()
                .any(|c| matches!(c.downcast_ref(), Some(ReplayError::Unauthorized(_))));
            if unauthorized {
                exit::UNAUTHORIZED
            } else {
                exit::FAILED
            }
        }
    }
}

/// `sender generate --live` (see [`live::run`]): sends generated events until the rows or
/// seconds asked for are sent, or `shutdown`. Returns the exit status: 0 when it ended that
/// way and the server took every event sent (a stop by signal is a normal end for a
/// generator: what was made but not yet due is not lost), 1 when the server refused events
/// or could not be reached for `--give-up-after`, 4 on refused credentials.
pub async fn generate_live(args: &GenerateArgs, quiet: bool, shutdown: CancellationToken) -> u8 {
    let outcome = live::run(args, quiet, SPIN, shutdown).await;
    match &outcome {
        Ok(summary) if summary.rejected == 0 => exit::COMPLETE,
        _ => exit_status(&outcome),
    }
}

/// Writes a synthetic traffic CSV as `sender generate` asks: to `args.output`, or stdout.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let config = args.to_config();
    let rows = match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("while creating {}", path.display()))?;
            write_csv_scripted(&config, &args.bursts, file)
                .with_context(|| format!("while writing {}", path.display()))?
        }
        None => write_csv_scripted(&config, &args.bursts, std::io::stdout().lock())
            .context("while writing to stdout")?,
    };
    info!(
        rows,
        output = %args.output.as_deref().map_or("stdout".into(), |p| p.display().to_string()),
        "generated"
    );
    Ok(())
}

/// Lines (after the header, for a CSV), counted by a byte scan for LF in constant memory
/// (blank lines count too: this is for a progress bar, not for the summary).
fn count_data_lines(path: &Path, header: bool) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 16];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buffer[n - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines.saturating_sub(u64::from(header)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_are_counted_without_the_header() {
        let dir = std::env::temp_dir().join(format!("sender-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let with_newline = dir.join("a.csv");
        std::fs::write(&with_newline, "h\n1\n2\n").unwrap();
        assert_eq!(count_data_lines(&with_newline, true).unwrap(), 2);
        let without = dir.join("b.csv");
        std::fs::write(&without, "h\r\n1\r\n2").unwrap();
        assert_eq!(count_data_lines(&without, true).unwrap(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
