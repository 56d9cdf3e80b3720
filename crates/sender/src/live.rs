//! `sender generate --live`: the live generator's events sent to the server as they are made.
//!
//! The generator stamps event `n` with the run's start plus `n / rate` seconds; those rows
//! then go through the same paced loop as a replayed file ([`crate::replay::replay`] at speed
//! 1), so pacing on an absolute schedule, batching of what is due together, idempotency keys,
//! retries with backoff and the summary are the replay's, not a second copy.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::info;
use traffic::csv::{ReadError, Row};
use traffic::generate::{LiveConfig, LiveGenerator};

use crate::config::PACED_BATCH;
use crate::replay::{Options, replay};
use crate::{GenerateArgs, HttpTransport, Progress, Summary, Transport};

/// The generator's events as rows of a never-ending file, from `start_unix` on.
pub struct LiveRows {
    generator: LiveGenerator,
    start_unix: f64,
    /// Events still to make (`None`: no limit).
    left: Option<u64>,
    /// Seconds from the start after which no event is made (`None`: no limit).
    until: Option<f64>,
}

impl LiveRows {
    /// Rows of `config` stamped from `start_unix`, at most `rows` of them and none due
    /// `duration` or later after the start.
    pub fn new(
        config: LiveConfig,
        start_unix: f64,
        rows: Option<u64>,
        duration: Option<Duration>,
    ) -> Result<Self, traffic::generate::LiveConfigError> {
        Ok(Self {
            generator: LiveGenerator::new(config)?,
            start_unix,
            left: rows,
            until: duration.map(|d| d.as_secs_f64()),
        })
    }
}

impl Iterator for LiveRows {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == Some(0)
            || self
                .until
                .is_some_and(|until| self.generator.next_due() >= until)
        {
            return None;
        }
        let event = self
            .generator
            .due(f64::INFINITY, self.start_unix, 1)
            .pop()?;
        if let Some(left) = &mut self.left {
            *left -= 1;
        }
        Some(Ok(Row {
            line: self.generator.generated(),
            event,
        }))
    }
}

/// Runs `sender generate --live` through `transport` until the rows or duration asked for
/// are sent, or `shutdown`; the summary in every case, and the error that stopped it if any.
pub async fn send<T: Transport>(
    rows: LiveRows,
    transport: &mut T,
    options: &Options,
    progress: Progress,
    shutdown: &CancellationToken,
) -> (Summary, Result<(), crate::ReplayError>) {
    let mut rows = Some(rows);
    // Called once: the replay opens its source again only when looping.
    let open = move || Ok(rows.take().into_iter().flatten());
    replay(open, transport, options, progress, shutdown).await
}

/// The replay options of a live run: paced at the generator's own clock, with retries.
pub fn options(args: &GenerateArgs, spin: Duration) -> Options {
    Options {
        speed: 1.0,
        looping: false,
        strict: true,
        max_batch: PACED_BATCH,
        max_gap: None,
        give_up_after: args.live_args.give_up_after,
        spin,
        run_id: crate::new_run_id(),
        endless: true,
    }
}

/// `sender generate --live` as the binary runs it: prints the one-line summary on stderr.
pub async fn run(
    args: &GenerateArgs,
    quiet: bool,
    spin: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<Summary> {
    let config = args.to_live_config().map_err(anyhow::Error::msg)?;
    let live = &args.live_args;
    let token = live.token.as_ref().map(|t| t.0.as_str());
    let mut transport = HttpTransport::new(&live.url, live.timeout, token)
        .with_context(|| format!("while preparing to post to {}", live.url))?
        .with_format(live.body.into());
    let start_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let rows = LiveRows::new(
        config.clone(),
        start_unix,
        args.rows,
        args.duration.map(Duration::from_secs),
    )
    .map_err(anyhow::Error::msg)?;
    let options = options(args, spin);
    info!(
        endpoint = %transport.endpoint(),
        rate = config.rate,
        seed = config.seed,
        sources = config.sources,
        networks = config.networks,
        places = config.places,
        bursts = config.bursts.len(),
        run_id = %options.run_id,
        "generating live"
    );
    let progress = if quiet {
        Progress::off()
    } else {
        Progress::log()
    };
    let (summary, result) = send(rows, &mut transport, &options, progress, &shutdown).await;
    eprintln!("sender: {summary}");
    result.context("while sending generated events")?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PostError;
    use clap::Parser;

    /// Accepts everything, failing the first `fail` attempts; remembers every attempt.
    #[derive(Default)]
    struct Fake {
        fail: usize,
        attempts: Vec<(String, Vec<traffic::Event>, tokio::time::Instant)>,
    }

    impl Transport for Fake {
        async fn post(&mut self, key: &str, events: &[traffic::Event]) -> Result<u64, PostError> {
            self.attempts
                .push((key.to_owned(), events.to_vec(), tokio::time::Instant::now()));
            if self.fail > 0 {
                self.fail -= 1;
                return Err(PostError::Transient("down".into()));
            }
            Ok(events.len() as u64)
        }
    }

    fn args(extra: &[&str]) -> GenerateArgs {
        let cli = crate::Cli::try_parse_from(
            ["sender", "generate", "--live"]
                .iter()
                .chain(extra)
                .copied(),
        )
        .unwrap();
        match cli.command {
            Some(crate::Command::Generate(args)) => args,
            _ => panic!("generate not parsed"),
        }
    }

    async fn run_fake(args: &GenerateArgs, fake: &mut Fake) -> Summary {
        let rows = LiveRows::new(
            args.to_live_config().unwrap(),
            1_767_225_600.0,
            args.rows,
            args.duration.map(Duration::from_secs),
        )
        .unwrap();
        let options = options(args, Duration::ZERO);
        let (summary, result) = send(
            rows,
            fake,
            &options,
            Progress::off(),
            &CancellationToken::new(),
        )
        .await;
        result.unwrap();
        summary
    }

    #[tokio::test(start_paused = true)]
    async fn events_go_out_at_the_rate_in_batches_of_what_is_due_each_under_its_own_key() {
        let args = args(&["--rate", "100", "--duration", "3"]);
        let mut fake = Fake::default();
        let started = tokio::time::Instant::now();
        let summary = run_fake(&args, &mut fake).await;
        assert_eq!(summary.accepted, 300, "events due in the first 3 s");
        let sent: Vec<&traffic::Event> = fake.attempts.iter().flat_map(|a| &a.1).collect();
        assert_eq!(sent.len(), 300);
        // Each event leaves at its own timestamp's offset (the schedule rounds up to 1 ms).
        for (key, events, at) in &fake.attempts {
            let offset = events[0].timestamp - 1_767_225_600.0;
            let late = at.duration_since(started).as_secs_f64() - offset;
            assert!((0.0..0.002).contains(&late), "{key}: {late}");
        }
        let keys: std::collections::HashSet<&String> = fake.attempts.iter().map(|a| &a.0).collect();
        assert_eq!(keys.len(), fake.attempts.len(), "one key per batch");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_retried_under_the_same_key_and_nothing_is_lost() {
        let args = args(&["--rate", "20", "--rows", "50"]);
        let mut fake = Fake {
            fail: 2,
            ..Fake::default()
        };
        let summary = run_fake(&args, &mut fake).await;
        assert_eq!(summary.accepted, 50);
        assert_eq!(summary.retries, 2);
        assert_eq!(fake.attempts[0].0, fake.attempts[1].0);
        assert_eq!(fake.attempts[1].0, fake.attempts[2].0);
        assert_eq!(
            fake.attempts[0].1, fake.attempts[2].1,
            "the same batch again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_sends_the_same_events_and_another_seed_does_not() {
        let events = |seed: &str| {
            let args = args(&["--rows", "200", "--rate", "1000", "--seed", seed]);
            async move {
                let mut fake = Fake::default();
                run_fake(&args, &mut fake).await;
                fake.attempts
                    .into_iter()
                    .flat_map(|a| a.1)
                    .collect::<Vec<_>>()
            }
        };
        let a = events("7").await;
        assert_eq!(a.len(), 200);
        assert_eq!(a, events("7").await);
        assert_ne!(a, events("8").await);
    }

    #[test]
    fn live_flags_reach_the_generator_and_a_bad_one_is_named() {
        let config = args(&[
            "--rate",
            "500",
            "--sources",
            "100",
            "--networks",
            "20",
            "--places",
            "5",
            "--protocols",
            "TCP=1,QUIC=3",
            "--bytes",
            "none",
            "--bytes-by-protocol",
            "QUIC:1200=1",
            "--suspicious-share",
            "0.5",
            "--burst",
            "203.0.113.0/24:0.3:60-90",
        ])
        .to_live_config()
        .unwrap();
        assert_eq!(config.rate, 500.0);
        assert_eq!(
            (config.sources, config.networks, config.places),
            (100, 20, 5)
        );
        assert_eq!(config.protocols["QUIC"], 3.0);
        assert!(config.bytes.is_empty());
        assert_eq!(config.bytes_by_protocol.len(), 1);
        assert_eq!(config.bytes_by_protocol["QUIC"][&1200], 1.0);
        assert_eq!(config.suspicious_share, 0.5);
        assert_eq!(config.bursts[0].to_string(), "203.0.113.0/24:0.3:60-90");
        assert_eq!(args(&[]).to_live_config().unwrap(), LiveConfig::default());
        for (flags, named) in [
            (&["--rate", "0"][..], "--rate:"),
            (&["--networks", "10", "--sources", "5"][..], "--sources:"),
            (&["--protocols", "TCP=-1"][..], "--protocols:"),
            (
                &["--bytes-by-protocol", "UDP:0=1"][..],
                "--bytes-by-protocol:",
            ),
            (&["--suspicious-share", "2"][..], "--suspicious-share:"),
        ] {
            let error = args(flags).to_live_config().unwrap_err();
            assert!(error.starts_with(named), "{flags:?}: {error}");
        }
        // Live-only flags need --live; file-only flags refuse it.
        for bad in [
            &["sender", "generate", "--rate", "5"][..],
            &["sender", "generate", "--live", "--output", "x.csv"][..],
            &["sender", "generate", "--live", "--start", "1767225600"][..],
        ] {
            assert!(crate::Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
