//! Command line and environment configuration of the sender (clap derive: the `///` comments
//! below are the `--help` text).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use reqwest::Url;
use traffic::generate::LiveConfig;

use crate::source::{InputFormat, KeyMap, parse_map};
pub use traffic::Secret;

/// Replays traffic rows from a CSV file to the traffic-globe server, each row at the moment
/// its timestamp says (scaled by --speed), as JSON POSTs to {url}/api/events.
///
/// Exit status: 0 when every row of the file was read and accepted by the server; 3 when
/// the replay finished and every usable row was accepted, but some rows were skipped as
/// unreadable (each is named with its line in a warning, and the summary starts with
/// "INCOMPLETE"); 1 when the replay failed or stopped early or the server did not accept
/// every usable row; 2 on usage errors; 4 when the server refused the credentials (401:
/// no, unknown or revoked --token; 403: the token may not ingest). Log level from RUST_LOG (default: info).
#[derive(Debug, Parser)]
#[command(name = "sender", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Something other than replaying a file.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Replay options (used when no subcommand is given).
    #[command(flatten)]
    pub replay: Config,
}

/// Subcommands of the sender.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic traffic CSV (same columns as the course file) instead of replaying.
    Generate(GenerateArgs),
    /// Capture live traffic from a network interface (libpcap) and send it to the server as
    /// it arrives, until stopped (SIGINT/SIGTERM: what was captured is sent before exit).
    /// Needs the right to capture: root, `setcap cap_net_raw,cap_net_admin+ep`, or compose
    /// `cap_add: [NET_RAW, NET_ADMIN]` with host networking. The sender's own requests to
    /// the server are left out of the capture.
    Capture(CaptureArgs),
}

/// Options of `sender capture`.
#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// Interface to capture on, as `ip link` names it (`eth0`, `lo`, `any`).
    #[arg(long, short, env = "SENDER_INTERFACE")]
    pub interface: String,

    /// BPF filter, as tcpdump takes it (e.g. `tcp port 443 or udp port 53`).
    #[arg(long, env = "SENDER_FILTER", value_name = "BPF")]
    pub filter: Option<String>,

    /// `flow`: one event per 5-tuple (addresses, protocol, ports) per second, with its
    /// packet and byte counts, so a busy link stays readable; `packet`: one event per packet.
    #[arg(long, env = "SENDER_PER", value_enum, default_value = "flow")]
    pub per: Per,

    /// Which packets: `in` (received by the interface; the default), `out` (sent by it), or
    /// `both`. Decided by libpcap from the kernel's packet type where the system supports it
    /// (Linux does), otherwise by the interface's addresses (in: to one of them).
    #[arg(long, env = "SENDER_DIRECTION", value_enum, default_value = "in")]
    pub direction: Direction,

    /// Kernel capture buffer in MiB: a larger one rides out longer bursts before the kernel
    /// drops packets (drops are counted and reported either way).
    #[arg(long, env = "SENDER_CAPTURE_BUFFER_MIB", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=2047))]
    pub buffer_mib: u16,

    /// Base URL of the server; events are POSTed to {url}/api/events, counters to
    /// {url}/api/capture. Plain http:// only.
    #[arg(long, env = "SENDER_URL", default_value = "http://127.0.0.1:3000", value_parser = parse_base_url)]
    pub url: Url,

    /// Ingest token (from `server token add NAME`), sent as `Authorization: Bearer TOKEN`.
    #[arg(long, env = "SENDER_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// Most events in one POST (default 1000).
    #[arg(long, env = "SENDER_MAX_BATCH", default_value = "1000")]
    pub max_batch: NonZeroUsize,

    /// Give up after the server has been unreachable or failing this long without a break.
    #[arg(long, env = "SENDER_GIVE_UP_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub give_up_after: Duration,

    /// Time limit for one request, after which it is retried.
    #[arg(long, env = "SENDER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How request bodies are written: `binary` or `json` (see `sender --help`).
    #[arg(long, env = "SENDER_BODY", value_enum, default_value = "binary")]
    pub body: Body,

    /// No progress lines: warnings and the final summary only.
    #[arg(long, short, env = "SENDER_QUIET", value_parser = BoolishValueParser::new())]
    pub quiet: bool,
}

/// `--per`: how packets become events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Per {
    /// One event per packet.
    Packet,
    /// One event per 5-tuple per second.
    Flow,
}

/// `--direction`: which packets of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Received by the interface.
    In,
    /// Sent by the interface.
    Out,
    /// Both.
    Both,
}

/// How to replay a file.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// File to replay: a traffic CSV (header: ip, latitude, longitude, timestamp, suspicious;
    /// names and spellings as the reader accepts them) or an access log (see --format);
    /// `-` reads standard input; gzip files are decompressed.
    #[arg(
        env = "SENDER_CSV",
        value_name = "FILE",
        default_value = "data/sample.csv"
    )]
    pub csv: PathBuf,

    /// What the file is: auto (decided from its first bytes: a pcap/pcapng capture by its
    /// magic number, a CSV when the first line is a CSV header, otherwise the format most of
    /// the first lines parse as), csv, pcap, tshark-json, combined, common, vcombined, caddy, nginx-json,
    /// sshd, zeek, tshark-fields, tshark-ek.
    #[arg(long, env = "SENDER_FORMAT", default_value = "auto")]
    pub format: InputFormat,

    /// Key map for the JSON access-log formats, `field=key,...` (e.g.
    /// `ip=remote_addr,timestamp=time_iso8601`), overriding the format's default keys.
    #[arg(long, env = "SENDER_MAP", value_name = "FIELD=KEY,...", value_parser = parse_map)]
    pub map: Option<KeyMap>,

    /// Suspicious rules for access logs, one `path PATTERN` or `agent PATTERN` a line
    /// (replacing the default rules: well-known probe paths and scanner user agents; an
    /// empty file flags nothing). CSV rows keep their own suspicious column.
    #[arg(long, env = "SENDER_RULES", value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Base URL of the server; rows are POSTed to {url}/api/events. Plain http:// only.
    #[arg(long, env = "SENDER_URL", default_value = "http://127.0.0.1:3000", value_parser = parse_base_url)]
    pub url: Url,

    /// Ingest token (from `server token add NAME`), sent as `Authorization: Bearer TOKEN`.
    /// Needed unless the server listens on loopback or runs with --open.
    #[arg(long, env = "SENDER_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// Replay speed factor: 1 is real time, 60 plays one minute of data per second; `max`
    /// imports the file as fast as the server takes it (no pacing, large batches, several
    /// requests in flight, the summary gives rows/s).
    #[arg(long, env = "SENDER_SPEED", default_value = "1", value_parser = parse_speed)]
    pub speed: Speed,

    /// Follow the file like `tail -F`: send lines as they are written (not paced; --speed
    /// does not apply), across rotation by rename and truncation, until stopped. Keeps a
    /// checkpoint (see --checkpoint) so that a restarted sender continues where it stopped.
    #[arg(long, env = "SENDER_FOLLOW", value_parser = BoolishValueParser::new())]
    pub follow: bool,

    /// With --follow: the checkpoint file (default: `.<name>.sender-checkpoint` beside the
    /// followed file).
    #[arg(long, env = "SENDER_CHECKPOINT", value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,

    /// With --follow and no checkpoint: send the lines already in the file too (default:
    /// only lines written from now on, as `tail -F -n 0`).
    #[arg(long, env = "SENDER_FROM_BEGINNING", value_parser = BoolishValueParser::new())]
    pub from_beginning: bool,

    /// At the end of the file start over, continuing the data's clock, until stopped.
    #[arg(long = "loop", env = "SENDER_LOOP", value_parser = BoolishValueParser::new())]
    pub looping: bool,

    /// Stop at the first unusable row instead of skipping it with a warning.
    #[arg(long, env = "SENDER_STRICT", value_parser = BoolishValueParser::new())]
    pub strict: bool,

    /// Most rows in one POST; rows due together or overdue are sent together
    /// (default 1000; 10000 with --speed max).
    #[arg(long, env = "SENDER_MAX_BATCH")]
    pub max_batch: Option<NonZeroUsize>,

    /// Shorten every gap between rows longer than this, in data time, to this (seconds, or
    /// 500ms, 90s, 2m, 1h); later rows keep their spacing. Timestamps sent are unchanged.
    /// Without it, gaps are kept as they are: a wait for the next row of more than a minute
    /// is logged as a warning.
    #[arg(long, env = "SENDER_MAX_GAP", value_name = "SECONDS", value_parser = parse_max_gap)]
    pub max_gap: Option<Duration>,

    /// Give up after the server has been unreachable or failing this long without a break
    /// (seconds, or with a unit: 500ms, 90s, 2m).
    #[arg(long, env = "SENDER_GIVE_UP_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub give_up_after: Duration,

    /// Time limit for one request, after which it is retried (seconds, or 500ms, 10s, 1m).
    #[arg(long, env = "SENDER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How request bodies are written: `binary` (application/vnd.traffic-globe.events, what
    /// the server reads fastest) or `json` (application/json, readable in a proxy's log).
    #[arg(long, env = "SENDER_BODY", value_enum, default_value = "binary")]
    pub body: Body,

    /// No progress bar or progress lines: warnings and the final summary only.
    #[arg(long, short, env = "SENDER_QUIET", value_parser = BoolishValueParser::new())]
    pub quiet: bool,
}

/// `--body`: how request bodies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Body {
    /// The compact binary layout.
    Binary,
    /// JSON.
    Json,
}

impl From<Body> for traffic::ingest::BodyFormat {
    fn from(body: Body) -> Self {
        match body {
            Body::Binary => traffic::ingest::BodyFormat::Binary,
            Body::Json => traffic::ingest::BodyFormat::Json,
        }
    }
}

impl Config {
    /// Combinations of options that cannot work, as a usage error's message.
    pub fn check(&self) -> Result<(), String> {
        if self.looping && (self.csv.as_os_str() == "-" || self.speed == Speed::Max) {
            return Err(
                "--loop needs a file to read again and a paced speed (not - or --speed max)".into(),
            );
        }
        if self.follow && (self.looping || self.csv.as_os_str() == "-") {
            return Err("--follow needs a file to follow (not -) and no --loop".into());
        }
        if !self.follow && (self.checkpoint.is_some() || self.from_beginning) {
            return Err("--checkpoint and --from-beginning go with --follow".into());
        }
        Ok(())
    }

    /// The largest batch: `--max-batch`, or the default for the speed.
    pub fn batch_size(&self) -> NonZeroUsize {
        let default = match self.speed {
            Speed::Max => MAX_SPEED_BATCH,
            Speed::Factor(_) => PACED_BATCH,
        };
        self.max_batch.unwrap_or(default)
    }
}

/// Default `--max-batch` when paced.
pub const PACED_BATCH: NonZeroUsize = NonZeroUsize::new(1000).expect("not zero");
/// Default `--max-batch` with `--speed max`.
pub const MAX_SPEED_BATCH: NonZeroUsize = NonZeroUsize::new(10_000).expect("not zero");

/// `--speed`: a factor over the data's own pace, or as fast as the server takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Paced by the timestamps, scaled by this factor (> 0, finite).
    Factor(f64),
    /// No pacing.
    Max,
}

/// Options of `sender generate`: a CSV file (the default), or with `--live` events sent
/// to the server at a given rate.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Number of rows to write (default 3000); with --live, stop after this many events
    /// (default: no limit).
    #[arg(long, env = "SENDER_GENERATE_ROWS")]
    pub rows: Option<u64>,

    /// Seconds of traffic the rows are spread over (default 600); with --live, stop after
    /// this many seconds (default: run until stopped).
    #[arg(long, env = "SENDER_GENERATE_DURATION")]
    pub duration: Option<u64>,

    /// Seed of the random generator: the same seed gives the same file (with --live, the
    /// same events).
    #[arg(long, env = "SENDER_GENERATE_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Unix time (seconds) of the first row (not with --live, whose events are stamped
    /// with the time they are sent).
    #[arg(
        long,
        env = "SENDER_GENERATE_START",
        default_value_t = 1_767_225_600,
        conflicts_with = "live"
    )]
    pub start: i64,

    /// Share of rows flagged suspicious, 0 to 1.
    #[arg(long, env = "SENDER_GENERATE_SUSPICIOUS_SHARE", default_value_t = 0.03)]
    pub suspicious_share: f64,

    /// Write to this file instead of standard output.
    #[arg(short, long, env = "SENDER_GENERATE_OUTPUT", conflicts_with = "live")]
    pub output: Option<PathBuf>,

    /// A scripted burst, `A.B.C.0/24:SHARE:FROM-TO`: that network sends SHARE (0 to 1) of
    /// the rows from second FROM to second TO of the file (with --live: of the run)
    /// (e.g. `203.0.113.0/24:0.3:60-90`), from one city. Repeatable; the env var takes a
    /// comma-separated list.
    #[arg(
        long = "burst",
        env = "SENDER_GENERATE_BURSTS",
        value_name = "NET:SHARE:FROM-TO",
        value_delimiter = ','
    )]
    pub bursts: Vec<traffic::generate::ScriptedBurst>,

    /// Send the events to the server at --rate as they are made (paced, batched POSTs with
    /// idempotency keys, retried like a replay) instead of writing a file.
    #[arg(long, env = "SENDER_GENERATE_LIVE", value_parser = BoolishValueParser::new())]
    pub live: bool,

    /// The settings only --live has.
    #[command(flatten)]
    pub live_args: LiveArgs,
}

/// Options of `sender generate --live`.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// With --live: base URL of the server (events go to {url}/api/events).
    #[arg(long, env = "SENDER_URL", default_value = "http://127.0.0.1:3000", value_parser = parse_base_url)]
    pub url: Url,

    /// With --live: ingest token, sent as `Authorization: Bearer TOKEN`.
    #[arg(long, env = "SENDER_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// With --live: events per second (more than 0, at most 100000; default 50).
    #[arg(long, env = "SENDER_GENERATE_RATE", requires = "live")]
    pub rate: Option<f64>,

    /// With --live: distinct source addresses, from --networks to 254 per network
    /// (default 5000).
    #[arg(long, env = "SENDER_GENERATE_SOURCES", requires = "live")]
    pub sources: Option<u32>,

    /// With --live: distinct /24 source networks, 1 to 512 per place (default 2000).
    #[arg(long, env = "SENDER_GENERATE_NETWORKS", requires = "live")]
    pub networks: Option<u32>,

    /// With --live: distinct places, the busiest cities of the generator's table, 1 to 160
    /// (default 160).
    #[arg(long, env = "SENDER_GENERATE_PLACES", requires = "live")]
    pub places: Option<u32>,

    /// With --live: protocol mix, `NAME=WEIGHT,...` (default `ICMP=5,TCP=80,UDP=15`;
    /// `none`: events carry no protocol).
    #[arg(
        long,
        env = "SENDER_GENERATE_PROTOCOLS",
        value_name = "NAME=WEIGHT,...",
        value_parser = traffic::generate::live::parse_table::<String>,
        requires = "live"
    )]
    pub protocols: Option<BTreeMap<String, f64>>,

    /// With --live: packet-size mix in bytes, `SIZE=WEIGHT,...` (default the simple IMIX
    /// `64=7,576=4,1500=1`; `none`: events carry no byte count), for the protocols that
    /// --bytes-by-protocol leaves out.
    #[arg(
        long,
        env = "SENDER_GENERATE_BYTES",
        value_name = "SIZE=WEIGHT,...",
        value_parser = traffic::generate::live::parse_table::<u64>,
        requires = "live"
    )]
    pub bytes: Option<BTreeMap<u64, f64>>,

    /// With --live: packet-size mixes of particular protocols, `NAME:SIZE=WEIGHT,...;...`
    /// (default `UDP:64=6,512=3,1200=1;ICMP:84=1`, so only TCP carries full-size packets;
    /// `none`: every protocol draws from --bytes).
    #[arg(
        long,
        env = "SENDER_GENERATE_BYTES_BY_PROTOCOL",
        value_name = "NAME:SIZE=WEIGHT,...;...",
        value_parser = traffic::generate::live::parse_protocol_tables,
        requires = "live"
    )]
    pub bytes_by_protocol: Option<BTreeMap<String, BTreeMap<u64, f64>>>,

    /// With --live: give up after the server has been unreachable or failing this long.
    #[arg(long, env = "SENDER_GIVE_UP_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub give_up_after: Duration,

    /// With --live: time limit for one request, after which it is retried.
    #[arg(long, env = "SENDER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// With --live: how request bodies are written, `binary` or `json`.
    #[arg(long, env = "SENDER_BODY", value_enum, default_value = "binary")]
    pub body: Body,
}

/// `sender generate`'s file defaults: rows and seconds.
const FILE_ROWS: u64 = 3000;
/// See [`FILE_ROWS`].
const FILE_DURATION: u64 = 600;

impl GenerateArgs {
    /// The file generator's configuration.
    pub fn to_config(&self) -> traffic::generate::GenerateConfig {
        traffic::generate::GenerateConfig {
            rows: self.rows.unwrap_or(FILE_ROWS),
            duration_secs: self.duration.unwrap_or(FILE_DURATION),
            start: self.start,
            seed: self.seed,
            suspicious_share: self.suspicious_share,
        }
    }

    /// The live generator's configuration (the generator's defaults for what is not given),
    /// or the flag that is out of range and why.
    pub fn to_live_config(&self) -> Result<LiveConfig, String> {
        let d = LiveConfig::default();
        let l = &self.live_args;
        let config = LiveConfig {
            rate: l.rate.unwrap_or(d.rate),
            seed: self.seed,
            sources: l.sources.unwrap_or(d.sources),
            networks: l.networks.unwrap_or(d.networks),
            places: l.places.unwrap_or(d.places),
            protocols: l.protocols.clone().unwrap_or(d.protocols),
            bytes: l.bytes.clone().unwrap_or(d.bytes),
            bytes_by_protocol: l.bytes_by_protocol.clone().unwrap_or(d.bytes_by_protocol),
            suspicious_share: self.suspicious_share,
            bursts: self.bursts.clone(),
        };
        config.validate().map_err(|e| {
            let setting = e.field.split('.').next().unwrap_or_default();
            let flag = match setting {
                "bursts" => "burst".to_owned(),
                other => other.replace('_', "-"),
            };
            format!("--{flag}: {e}")
        })?;
        Ok(config)
    }
}

/// Parses a server base URL: `http://host[:port][/prefix]`, no TLS, no query.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{text:?}: https is not supported (this sender is built without TLS); \
                 use http:// or put a TLS-terminating proxy in front of the server"
            ));
        }
        other => return Err(format!("{text:?}: scheme {other:?} is not http")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?}: a base URL takes no query or fragment"));
    }
    Ok(url)
}

/// Parses `--speed`: `max`, or a factor, finite and greater than 0.
fn parse_speed(text: &str) -> Result<Speed, String> {
    if text.trim().eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    let speed: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    traffic::pacing::Schedule::new(speed).map_err(|e| e.to_string())?;
    Ok(Speed::Factor(speed))
}

/// Parses a `--max-gap`: a duration greater than 0.
fn parse_max_gap(text: &str) -> Result<Duration, String> {
    let gap = parse_duration(text)?;
    if gap.is_zero() {
        return Err(format!("{text:?}: the max gap must be greater than 0"));
    }
    Ok(gap)
}

/// Parses a duration: a number of seconds (`1.5`) or a number with a unit `ms`, `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 1.5, 500ms, 90s or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1e3,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_plain_seconds_and_units() {
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn base_urls_must_be_plain_http_with_a_host() {
        assert!(parse_base_url("http://127.0.0.1:3000").is_ok());
        assert!(parse_base_url("http://server/prefix/").is_ok());
        let https = parse_base_url("https://example.com").unwrap_err();
        assert!(https.contains("https is not supported"), "{https}");
        assert!(parse_base_url("ftp://example.com").is_err());
        assert!(parse_base_url("127.0.0.1:3000").is_err());
        assert!(parse_base_url("http://h/?q=1").is_err());
    }

    fn cli_max_gap(args: &[&str]) -> Option<Duration> {
        let args = std::iter::once("sender").chain(args.iter().copied());
        Cli::try_parse_from(args).unwrap().replay.max_gap
    }

    #[test]
    fn a_file_argument_and_the_generate_subcommand_both_parse() {
        let cli = Cli::try_parse_from(["sender", "data.csv", "--speed", "60"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.replay.csv, PathBuf::from("data.csv"));
        assert_eq!(cli.replay.speed, Speed::Factor(60.0));
        assert_eq!(cli.replay.batch_size().get(), 1000);
        let max = Cli::try_parse_from(["sender", "-", "--speed", "max", "--format", "combined"])
            .unwrap()
            .replay;
        assert_eq!(max.speed, Speed::Max);
        assert_eq!(max.batch_size(), MAX_SPEED_BATCH);
        assert_eq!(max.format, InputFormat::Log(sources::Format::Combined));
        assert!(Cli::try_parse_from(["sender", "--format", "apache"]).is_err());
        let cli = Cli::try_parse_from(["sender", "generate", "--rows", "10"]).unwrap();
        let Some(Command::Generate(args)) = cli.command else {
            panic!("generate not parsed");
        };
        assert_eq!(args.rows, Some(10));
        let cli = Cli::try_parse_from([
            "sender",
            "generate",
            "--burst",
            "203.0.113.0/24:0.3:60-90",
            "--burst=198.51.100.0/24:1:0-5",
        ])
        .unwrap();
        let Some(Command::Generate(args)) = cli.command else {
            panic!("generate not parsed");
        };
        assert_eq!(args.bursts.len(), 2);
        assert_eq!(args.bursts[1].network, [198, 51, 100]);
        let error =
            Cli::try_parse_from(["sender", "generate", "--burst", "203.0.113.0/24:2:60-90"])
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("--burst") && error.contains("between 0 and 1"),
            "{error}"
        );
        let Some(Command::Generate(args)) = Cli::parse_from(["sender", "generate"]).command else {
            panic!("generate not parsed");
        };
        assert_eq!(
            args.to_config(),
            traffic::generate::GenerateConfig::default(),
            "defaults agree with the generator's"
        );
        assert!(Cli::try_parse_from(["sender", "--speed", "0"]).is_err());
        assert_eq!(cli_max_gap(&[]), None);
        assert_eq!(
            cli_max_gap(&["--max-gap", "90"]),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            cli_max_gap(&["--max-gap", "2m"]),
            Some(Duration::from_secs(120))
        );
        let zero = Cli::try_parse_from(["sender", "--max-gap", "0"]).unwrap_err();
        assert!(zero.to_string().contains("greater than 0"), "{zero}");
        assert!(Cli::try_parse_from(["sender", "--url", "https://x"]).is_err());
    }

    #[test]
    fn capture_takes_an_interface_and_defaults_to_inbound_flows() {
        let cli = Cli::try_parse_from(["sender", "capture", "--interface", "lo"]).unwrap();
        let Some(Command::Capture(args)) = cli.command else {
            panic!("capture not parsed");
        };
        assert_eq!(args.interface, "lo");
        assert_eq!((args.per, args.direction), (Per::Flow, Direction::In));
        assert_eq!(args.filter, None);
        let cli = Cli::try_parse_from([
            "sender",
            "capture",
            "-i",
            "eth0",
            "--per",
            "packet",
            "--direction",
            "both",
            "--filter",
            "udp port 53",
        ])
        .unwrap();
        let Some(Command::Capture(args)) = cli.command else {
            panic!("capture not parsed");
        };
        assert_eq!((args.per, args.direction), (Per::Packet, Direction::Both));
        assert_eq!(args.filter.as_deref(), Some("udp port 53"));
        assert!(
            Cli::try_parse_from(["sender", "capture"]).is_err(),
            "no interface"
        );
        assert!(Cli::try_parse_from(["sender", "capture", "-i", "lo", "--per", "byte"]).is_err());
    }

    #[test]
    fn follow_takes_a_file_and_refuses_stdin_loop_and_stray_checkpoints() {
        let check = |args: &[&str]| {
            let args = std::iter::once("sender").chain(args.iter().copied());
            Cli::try_parse_from(args).unwrap().replay.check()
        };
        assert_eq!(check(&["--follow", "access.log"]), Ok(()));
        assert_eq!(
            check(&[
                "--follow",
                "a.log",
                "--checkpoint",
                "cp",
                "--from-beginning"
            ]),
            Ok(())
        );
        assert!(check(&["--follow", "-"]).unwrap_err().contains("--follow"));
        assert!(
            check(&["--follow", "--loop", "a.log"])
                .unwrap_err()
                .contains("--follow")
        );
        assert!(
            check(&["a.log", "--checkpoint", "cp"])
                .unwrap_err()
                .contains("--checkpoint")
        );
    }
}
