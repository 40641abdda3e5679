//! Configuration: `/etc/scansentry/scansentry.toml` → a validated, typed [`Config`].
//!
//! Loading happens in two stages. [`raw::RawConfig`] is serde only: TOML types and key names,
//! with unknown keys rejected by line and column. [`Config::try_from`] then checks meaning
//! (ports, ranges, durations, CIDRs, limits), collects *every* problem, and fails with all of
//! them at once so an administrator fixes the file in one pass.
//!
//! When no file exists at the default path the daemon runs on [`Config::default`], which is safe
//! on any host: `unused` traps minus PortSentry's noisy ports, a one-hour block.
//!
//! **Pure**: [`from_file`] takes the text and the file's mode bits; `config_file` reads them.

pub mod ports;
pub mod raw;
pub mod reference;
mod suggest;

pub mod fleet;
pub mod nft;

pub use nft::{Family, FirstLine, Hook, NftConfig, NftName};

use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::detect::traps::{PortSet, TrapMode, Traps, Tripwires};
use crate::detect::{DetectorConfig, Weights};
use raw::{
    RawCapture, RawConfig, RawDetect, RawFirewall, RawLog, RawNeverBlock, RawPort, RawRespond,
};

/// Where the daemon looks for its configuration.
pub const DEFAULT_PATH: &str = "/etc/scansentry/scansentry.toml";

/// Linux's default `net.ipv4.ip_local_port_range`, used for `ephemeral-udp = "auto"` when the
/// kernel's own value is not at hand (an offline replay).
pub const LINUX_EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Scoring, window and memory limits.
    pub detector: DetectorConfig,
    /// Which ports are traps.
    pub traps: TrapsConfig,
    /// `[detect] local-check`: traffic from the host's own addresses is left alone (`true`,
    /// the default), or judged like any other (`false`, `sentryd -L`; the never-block list
    /// still keeps those addresses out of the firewall).
    pub local_check: bool,
    /// What happens on a detection.
    pub respond: RespondConfig,
    /// Addresses never acted on, beyond those discovered on the host.
    pub never_block: NeverBlockConfig,
    /// What blocks: nftables sets (and how), or blackhole routes.
    pub backend: Backend,
    /// Where the daemon keeps its control socket and state.
    pub daemon: DaemonConfig,
    /// Where and how packets are captured.
    pub capture: CaptureConfig,
    /// Where and how events are logged.
    pub log: LogConfig,
    /// The local exposure audit.
    pub audit: AuditConfig,
    /// `[metrics] listen`: where the Prometheus endpoint listens (none: off).
    pub metrics: Option<MetricsListen>,
    /// `[fleet]`, when it is on.
    pub fleet: Option<fleet::FleetConfig>,
}

/// Where the Prometheus endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsListen {
    /// A TCP address and port (`127.0.0.1:9464`).
    Tcp(std::net::SocketAddr),
    /// A Unix socket, for a local scraper or proxy.
    Unix(PathBuf),
}

impl std::fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsListen::Tcp(addr) => write!(f, "http://{addr}/metrics"),
            MetricsListen::Unix(path) => write!(f, "{} (/metrics)", path.display()),
        }
    }
}

/// `[firewall] backend`, with what it needs: a route backend has no nftables settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// nftables sets with per-element timeouts (the default), used as `[firewall]` says.
    Nft(NftConfig),
    /// A blackhole route per blocked source, lifted by the daemon.
    Route,
}

impl Backend {
    /// How `status` names it: the nftables mode, or "route".
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Nft(NftConfig::Own { .. }) => "own",
            Backend::Nft(NftConfig::Attach { .. }) => "attach",
            Backend::Route => "route",
        }
    }
}

/// How serious the daemon's audit findings are, in its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Logged as errors.
    Error,
    /// Logged as warnings (the default).
    Warning,
    /// Logged as information.
    Info,
}

/// `[audit]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// The daemon runs the audit every `interval`.
    pub enabled: bool,
    /// How often.
    pub interval: Duration,
    /// How findings are logged.
    pub severity: Severity,
    /// What is looked at, and what is expected.
    pub policy: crate::audit::policy::Policy,
    /// A file of further `expect` rules for every address, read at each audit. The default
    /// one, [`DEFAULT_EXPECT_FILE`], may be missing; any other must exist.
    pub expect_file: Option<PathBuf>,
}

/// The audit's `expect` file the packages write at install (from what listened then), and the
/// default of `[audit] expect-file`.
pub const DEFAULT_EXPECT_FILE: &str = "/etc/scansentry/audit-expect.toml";

/// Where the daemon's event lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output (warnings and errors to standard error).
    Stdout,
    /// The local syslog daemon, at `/dev/log`, facility daemon.
    Syslog,
    /// systemd's journal, through its native socket.
    Journald,
}

/// How the daemon's event lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-21T23:51:47.731914Z blocked 198.51.100.2 for 1h: …`
    Text,
    /// `{"time":"…","level":"info","message":"blocked 198.51.100.2 for 1h: …"}`
    Json,
}

/// `[log]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Where.
    pub target: LogTarget,
    /// How.
    pub format: LogFormat,
}

/// Which interfaces to capture on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interfaces {
    /// Every interface but loopback: the `any` device, loopback frames dropped by the filter.
    AllButLoopback,
    /// Every interface, loopback included: the `any` device.
    All,
    /// These interfaces, one capture each.
    Named(Vec<String>),
}

/// `[capture]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Which interfaces.
    pub interfaces: Interfaces,
    /// Hand each frame over at once.
    pub immediate: bool,
    /// How probes are seen.
    pub method: Method,
    /// Connect mode: written to TCP clients before they are disconnected.
    pub banner: Option<String>,
}

/// `[capture] method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// libpcap on the interfaces: every probe kind, nothing bound (the default).
    Pcap,
    /// The listed trap ports bound as sockets: completed TCP connections and UDP datagrams.
    Connect,
    /// A packet socket read directly, with the pcap method's filter compiled by libpcap.
    Raw,
}

/// `[daemon]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The control socket.
    pub socket: PathBuf,
    /// The state directory (blocks and offences, kept across restarts).
    pub state_dir: PathBuf,
}

/// `[detect]`'s trap settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrapsConfig {
    /// `unused` or `listed` (with its ports).
    pub mode: TrapMode,
    /// TCP ports that are never traps.
    pub exclude_tcp: PortSet,
    /// UDP ports that are never traps.
    pub exclude_udp: PortSet,
    /// The UDP ephemeral-range exemption.
    pub ephemeral_udp: EphemeralUdp,
}

impl TrapsConfig {
    /// The trap decision, with `auto` resolved to `local_range` (the kernel's
    /// `ip_local_port_range`, or [`LINUX_EPHEMERAL_PORTS`]).
    pub fn build(&self, local_range: RangeInclusive<u16>) -> Traps {
        let ephemeral = match &self.ephemeral_udp {
            EphemeralUdp::Auto => Some(local_range),
            EphemeralUdp::None => None,
            EphemeralUdp::Range(r) => Some(r.clone()),
        };
        Traps::new(
            self.mode.clone(),
            self.exclude_tcp.clone(),
            self.exclude_udp.clone(),
            ephemeral,
        )
    }
}

/// Which UDP ports are exempt as the local ephemeral range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EphemeralUdp {
    /// The kernel's `ip_local_port_range`.
    Auto,
    /// No exemption.
    None,
    /// This range.
    Range(RangeInclusive<u16>),
}

/// `[respond]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RespondConfig {
    /// How long a first block lasts.
    pub block_for: Duration,
    /// Each repeat offence multiplies the duration by this.
    pub repeat_factor: u32,
    /// The longest a block gets.
    pub max_block_for: Duration,
    /// How long offences are remembered.
    pub remember_offences: Duration,
    /// Refresh the block of a source detected again while blocked.
    pub refresh: bool,
    /// Log "would block" and touch nothing.
    pub dry_run: bool,
    /// Blocks active at most.
    pub max_blocks: usize,
    /// New blocks per second at most.
    pub max_new_blocks_per_second: u32,
    /// No automatic block on fewer distinct trap ports than this, whatever the score.
    pub min_ports: usize,
    /// The reverse-path check of a detection's source.
    pub reverse_path: crate::trust::ReversePath,
    /// Whether peers of established connections are protected from automatic blocks.
    pub protect: crate::trust::Protect,
    /// How long a conversation of a minute or more protects its peer after it ended.
    pub protect_for: Duration,
    /// The program run on each block (argv with placeholders), if any.
    pub on_block: Vec<String>,
    /// How long it may run.
    pub on_block_timeout: Duration,
    /// Whether the program runs for what a dry run would block too.
    pub on_block_in_dry_run: bool,
    /// Where blocks are appended in PortSentry's history format, if anywhere.
    pub history_file: Option<PathBuf>,
}

/// The placeholders `on-block` arguments may hold.
pub const ON_BLOCK_PLACEHOLDERS: [&str; 5] =
    ["{addr}", "{source}", "{kind}", "{ports}", "{duration}"];

/// `[never-block]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeverBlockConfig {
    /// Addresses (as host prefixes) and networks.
    pub addresses: Vec<IpNet>,
    /// A file of further addresses and networks. The default one, [`DEFAULT_IGNORE_FILE`],
    /// may be missing; any other must exist.
    pub file: Option<PathBuf>,
}

/// Where the daemon listens by default (systemd's `RuntimeDirectory=scansentry`).
pub const DEFAULT_SOCKET: &str = "/run/scansentry/control.sock";

/// The never-block file the packages install, and the default of `[never-block] file`.
pub const DEFAULT_IGNORE_FILE: &str = "/etc/scansentry/ignore";

impl Default for Config {
    fn default() -> Self {
        Config::try_from(RawConfig::default()).expect("the built-in default configuration is valid")
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Not TOML, a wrong type, or an unknown key (toml's message has line, column and a snippet;
    /// `summary` says it in one line, with "did you mean" for an unknown key).
    #[error("invalid configuration in {}\n{message}\n{}: {summary}", path.display(), path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's report.
        message: String,
        /// `at line 12, column 1: unknown key "max-block" in [respond]; did you mean
        /// "max-blocks"?`: what went wrong, in one line.
        summary: String,
    },
    /// Valid TOML whose values do not make sense; every problem found.
    #[error("{}", Problems { path, problems })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// One line per problem: `[section] key = value: what is expected`.
        problems: Vec<String>,
    },
}

impl ConfigError {
    /// The error in one line, naming the file, and the line and key when it can: what the
    /// journal says of a refused reload, and `sentryctl reload` answers (`sentryctl
    /// validate` shows toml's report above the same words).
    pub fn one_line(&self) -> String {
        match self {
            ConfigError::Read { .. } => crate::text::chain(self),
            ConfigError::Parse { path, summary, .. } => {
                format!("invalid configuration: {}: {summary}", path.display())
            }
            ConfigError::Invalid { .. } => self.to_string().replace('\n', "; "),
        }
    }

    /// toml's report of a TOML error (its position, the line quoted, what was expected), for
    /// a terminal below [`ConfigError::one_line`]; `None` for other errors.
    pub fn report(&self) -> Option<String> {
        match self {
            ConfigError::Parse { message, .. } => Some(message.clone()),
            _ => None,
        }
    }
}

struct Problems<'a> {
    path: &'a Path,
    problems: &'a [String],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {p}", self.path.display())?;
        }
        Ok(())
    }
}

/// Where a loaded configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// No file at the default path: the built-in default.
    BuiltIn,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::BuiltIn => write!(f, "built-in default (no {DEFAULT_PATH})"),
        }
    }
}

/// A configuration, where it came from, and anything worth a warning.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Its origin.
    pub origin: Origin,
    /// Warnings (a file writable by other users).
    pub warnings: Vec<String>,
}

/// The configuration file the shell read (`config_file::load`): `text` parsed and validated,
/// with a warning when `mode` (the file's permission bits, if the shell could see them) lets
/// other users write it.
///
/// ```
/// use std::path::Path;
///
/// let path = Path::new("/etc/scansentry/scansentry.toml");
/// let loaded = scansentry::config::from_file(path, "", Some(0o666))?;
/// assert_eq!(loaded.origin.to_string(), "/etc/scansentry/scansentry.toml");
/// assert_eq!(
///     loaded.warnings,
///     ["/etc/scansentry/scansentry.toml is writable by other users, and it controls the \
///       firewall: chmod o-w /etc/scansentry/scansentry.toml"]
/// );
/// assert!(scansentry::config::from_file(path, "", Some(0o644))?.warnings.is_empty());
/// # Ok::<(), scansentry::config::ConfigError>(())
/// ```
///
/// # Errors
///
/// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
pub fn from_file(path: &Path, text: &str, mode: Option<u32>) -> Result<Loaded, ConfigError> {
    let config = from_toml(text, path)?;
    let mut warnings = Vec::new();
    if mode.is_some_and(|mode| mode & 0o002 != 0) {
        warnings.push(format!(
            "{} is writable by other users, and it controls the firewall: chmod o-w {}",
            path.display(),
            path.display()
        ));
    }
    Ok(Loaded {
        config,
        origin: Origin::File(path.to_path_buf()),
        warnings,
    })
}

/// Parses and validates configuration text; `path` is only used in messages.
///
/// ```
/// use std::path::Path;
/// use std::time::Duration;
///
/// let config = scansentry::config::from_toml("[respond]\nblock-for = \"2h\"\n", Path::new("x.toml"))?;
/// assert_eq!(config.respond.block_for, Duration::from_secs(7200));
///
/// let err = scansentry::config::from_toml("[detect]\nwindow = \"0s\"\n", Path::new("x.toml"))
///     .unwrap_err();
/// assert_eq!(err.to_string(), "x.toml: [detect] window = \"0s\": must be at least 1s");
/// # Ok::<(), scansentry::config::ConfigError>(())
/// ```
///
/// # Errors
///
/// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
        summary: suggest::summary(text, &e),
    })?;
    Config::try_from(raw).map_err(|problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

impl TryFrom<RawConfig> for Config {
    type Error = Vec<String>;

    /// Validates every value; the error lists every problem found.
    fn try_from(raw: RawConfig) -> Result<Config, Vec<String>> {
        // Section by section, in the file's order, so that problems are listed as they appear.
        let mut v = Validator::default();
        let detector = v.detector(&raw.detect);
        let traps = v.traps(&raw.detect);
        let respond = v.respond(&raw.respond);
        let set_size = nft::set_size(respond.max_blocks);
        let backend = v.backend(&raw.firewall, set_size);
        let capture = v.capture(&raw.capture, &raw.detect.mode);
        let backend = v.first_line_fits(backend, &traps, &capture, raw.firewall.first_line);
        let log = v.log(&raw.log);
        let audit = v.audit(&raw.audit);
        let daemon = DaemonConfig {
            socket: v.absolute("[daemon] socket", &raw.daemon.socket),
            state_dir: v.absolute("[daemon] state-dir", &raw.daemon.state_dir),
        };
        let never_block = v.never_block(&raw.never_block);
        let metrics = v.metrics(&raw.metrics);
        let fleet = v.fleet(&raw.fleet);
        v.finish(Config {
            detector,
            traps,
            local_check: raw.detect.local_check,
            respond,
            never_block,
            backend,
            daemon,
            capture,
            log,
            audit,
            metrics,
            fleet,
        })
    }
}

const DAY: Duration = Duration::from_secs(86_400);

/// The longest block: what `block-for`, `max-block-for`, `sentryctl block --for` and a restored
/// block may ask for. The kernel refuses element timeouts past about 584 years (ERANGE); a year
/// (365.25 days, humantime's `1year`) keeps far below that, and a longer block is better made
/// by a rule than by a timeout.
pub const MAX_BLOCK_FOR: Duration = Duration::from_secs(31_557_600);

/// An address (as a host prefix) or a network; host bits of a network are an error, since
/// `198.51.100.7/24` is more likely a typo than a wish to cover the /24.
pub fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<std::net::IpAddr>() {
        return Some(IpNet::from(addr));
    }
    text.parse::<IpNet>().ok().filter(|n| n.trunc() == *n)
}

/// One section's four audit lists; bad rules go to `problems`.
fn audit_lists(
    section: &str,
    raw: &raw::RawAuditLists,
    problems: &mut Vec<String>,
) -> crate::audit::policy::Lists {
    use crate::audit::policy::{Lists, Rule};
    let mut rules = |key: &str, texts: &[String]| -> Vec<Rule> {
        texts
            .iter()
            .filter_map(|t| match t.parse::<Rule>() {
                Ok(r) => Some(r),
                Err(why) => {
                    problems.push(format!("{section} {key}: {why}"));
                    None
                }
            })
            .collect()
    };
    Lists {
        required: rules("required", &raw.required),
        optional: rules("optional", &raw.optional),
        ignore: rules("ignore", &raw.ignore),
        skip: rules("skip", &raw.skip),
        expect: rules("expect", &raw.expect),
    }
}

/// Collects problems while producing placeholder values, so validation goes on after the first.
#[derive(Default)]
struct Validator {
    problems: Vec<String>,
}

impl Validator {
    fn metrics(&mut self, raw: &raw::RawMetrics) -> Option<MetricsListen> {
        let listen = raw.listen.trim();
        if listen.is_empty() {
            None
        } else if listen.starts_with('/') {
            Some(MetricsListen::Unix(PathBuf::from(listen)))
        } else if let Ok(addr) = listen.parse() {
            Some(MetricsListen::Tcp(addr))
        } else {
            self.problem(format!(
                "[metrics] listen = {listen:?}: expected \"ADDRESS:PORT\" (\"127.0.0.1:9464\", \
                 \"[::1]:9464\"), an absolute path for a Unix socket, or \"\" for none"
            ));
            None
        }
    }

    /// `[detect]`'s detector settings (and `[detect.weights]`).
    fn detector(&mut self, d: &RawDetect) -> DetectorConfig {
        let v = self;

        let weights = Weights {
            privileged_port: v.weight("privileged-port", d.weights.privileged_port),
            unprivileged_port: v.weight("unprivileged-port", d.weights.unprivileged_port),
            ordinary: v.weight("ordinary", d.weights.ordinary),
            stealth: v.weight("stealth", d.weights.stealth),
            impossible: v.weight("impossible", d.weights.impossible),
        };
        let threshold = v.integer("[detect] threshold", d.threshold, 1, 1_000_000);
        let window = v.duration("[detect] window", &d.window, Duration::from_secs(1), DAY);
        let max_sources = v.integer("[detect] max-sources", d.max_sources, 1, 10_000_000);
        let max_ports = v.integer(
            "[detect] max-ports-per-source",
            d.max_ports_per_source,
            1,
            65_536,
        );
        let ipv4_prefix = v.integer("[detect] ipv4-prefix", d.ipv4_prefix, 16, 32);
        let ipv6_prefix = v.integer("[detect] ipv6-prefix", d.ipv6_prefix, 32, 128);
        let heaviest = [weights.privileged_port, weights.unprivileged_port]
            .into_iter()
            .max()
            .map_or(0, u64::from)
            * [weights.ordinary, weights.stealth, weights.impossible]
                .into_iter()
                .max()
                .map_or(0, u64::from);
        let reachable = u64::try_from(max_ports)
            .unwrap_or(0)
            .saturating_mul(heaviest);
        if v.ok() && reachable < u64::try_from(threshold).unwrap_or(0) {
            v.problem(format!(
                "[detect] threshold = {threshold}: can never be reached with \
                 max-ports-per-source = {max_ports} and these weights"
            ));
        }
        DetectorConfig {
            threshold: u32::try_from(threshold).unwrap_or(u32::MAX),
            window,
            weights,
            max_sources: usize::try_from(max_sources).unwrap_or(usize::MAX),
            max_ports_per_source: usize::try_from(max_ports).unwrap_or(usize::MAX),
            ipv4_prefix: u8::try_from(ipv4_prefix).unwrap_or(32),
            ipv6_prefix: u8::try_from(ipv6_prefix).unwrap_or(128),
            tripwire: v.tripwires(d),
        }
    }

    /// `[detect] tripwire-tcp` and `tripwire-udp`: valid ports, none of them excluded (an
    /// excluded port is never a trap, so its tripwire could never fire), nor a UDP one in an
    /// explicit `ephemeral-udp` range.
    fn tripwires(&mut self, d: &RawDetect) -> Tripwires {
        let v = self;
        let tcp = v.ports("[detect] tripwire-tcp", &d.tripwire_tcp);
        let udp = v.ports("[detect] tripwire-udp", &d.tripwire_udp);
        // Their own problems are said where they are read (`traps`).
        let exclude_tcp = valid_ports(&d.exclude_tcp);
        let exclude_udp = valid_ports(&d.exclude_udp);
        let ephemeral = ports::parse_port_spec(&RawPort::Text(d.ephemeral_udp.clone())).ok();
        for (key, set, excluded, exclude_key) in [
            ("tripwire-tcp", &tcp, &exclude_tcp, "exclude-tcp"),
            ("tripwire-udp", &udp, &exclude_udp, "exclude-udp"),
        ] {
            if let Some(port) = set.iter().find(|&p| excluded.contains(p)) {
                v.problem(format!(
                    "[detect] {key}: port {port} is also in {exclude_key}, where it is never a trap"
                ));
            }
        }
        if let Some(range) = &ephemeral
            && let Some(port) = udp.iter().find(|p| range.contains(p))
        {
            v.problem(format!(
                "[detect] tripwire-udp: port {port} is in ephemeral-udp = {:?}, where it is \
                 never a trap",
                d.ephemeral_udp
            ));
        }
        Tripwires { tcp, udp }
    }

    /// `[detect]`'s trap ports.
    fn traps(&mut self, d: &RawDetect) -> TrapsConfig {
        let v = self;
        let mode = match d.mode.as_str() {
            "unused" => {
                if d.preset.is_some() || !d.tcp_ports.is_empty() || !d.udp_ports.is_empty() {
                    v.problem(
                        "[detect] mode = \"unused\": preset, tcp-ports and udp-ports only \
                         apply to mode = \"listed\""
                            .into(),
                    );
                }
                TrapMode::Unused
            }
            "listed" => {
                let mut tcp = v.ports("[detect] tcp-ports", &d.tcp_ports);
                let mut udp = v.ports("[detect] udp-ports", &d.udp_ports);
                match d.preset.as_deref().map(|name| (name, ports::preset(name))) {
                    Some((_, Some(p))) => {
                        p.tcp.iter().for_each(|&port| tcp.insert(port));
                        p.udp.iter().for_each(|&port| udp.insert(port));
                    }
                    Some((name, None)) => v.problem(format!(
                        "[detect] preset = {name:?}: unknown preset, expected one of {}",
                        ports::PRESETS.map(|p| format!("{:?}", p.name)).join(", ")
                    )),
                    None => {}
                }
                // A tripwire is a trap too: its one probe must reach the detector.
                // (Their problems are said where they are read: `tripwires`.)
                valid_ports(&d.tripwire_tcp)
                    .iter()
                    .for_each(|p| tcp.insert(p));
                valid_ports(&d.tripwire_udp)
                    .iter()
                    .for_each(|p| udp.insert(p));
                if v.ok() && tcp.is_empty() && udp.is_empty() {
                    v.problem(
                        "[detect] mode = \"listed\": no trap ports; set tcp-ports, udp-ports \
                         or a preset"
                            .into(),
                    );
                }
                TrapMode::Listed { tcp, udp }
            }
            other => {
                v.problem(format!(
                    "[detect] mode = {other:?}: expected \"unused\" or \"listed\""
                ));
                TrapMode::Unused
            }
        };
        let exclude_tcp = v.ports("[detect] exclude-tcp", &d.exclude_tcp);
        let exclude_udp = v.ports("[detect] exclude-udp", &d.exclude_udp);
        let ephemeral_udp = match d.ephemeral_udp.as_str() {
            "auto" => EphemeralUdp::Auto,
            "none" => EphemeralUdp::None,
            text => match ports::parse_port_spec(&RawPort::Text(text.into())) {
                Ok(r) => EphemeralUdp::Range(r),
                Err(e) => {
                    v.problem(format!(
                        "[detect] ephemeral-udp = {text:?}: {e}; or \"auto\", or \"none\""
                    ));
                    EphemeralUdp::None
                }
            },
        };
        TrapsConfig {
            mode,
            exclude_tcp,
            exclude_udp,
            ephemeral_udp,
        }
    }

    /// `[respond]`.
    fn respond(&mut self, r: &RawRespond) -> RespondConfig {
        let v = self;
        let block_for = v.duration(
            "[respond] block-for",
            &r.block_for,
            Duration::from_secs(1),
            MAX_BLOCK_FOR,
        );

        let max_blocks = v.integer("[respond] max-blocks", r.max_blocks, 1, 10_000_000);
        let repeat_factor = v.integer("[respond] repeat-factor", r.repeat_factor, 1, 100);
        let max_block_for = v.duration(
            "[respond] max-block-for",
            &r.max_block_for,
            Duration::from_secs(1),
            MAX_BLOCK_FOR,
        );
        if v.ok() && max_block_for < block_for {
            v.problem(format!(
                "[respond] max-block-for = {:?}: shorter than block-for = {:?}",
                r.max_block_for, r.block_for
            ));
        }
        let remember_offences = v.duration(
            "[respond] remember-offences",
            &r.remember_offences,
            Duration::ZERO,
            3650 * DAY,
        );
        let rate = v.integer(
            "[respond] max-new-blocks-per-second",
            r.max_new_blocks_per_second,
            1,
            1_000_000,
        );
        let min_ports = v.integer("[respond] min-ports", r.min_ports, 1, 1024);
        let (reverse_path, protect, protect_for) = v.trust(r);
        v.on_block(&r.on_block);
        let on_block_timeout = v.duration(
            "[respond] on-block-timeout",
            &r.on_block_timeout,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        );
        let history_file = match r.history_file.as_str() {
            "" => None,
            path => Some(v.absolute("[respond] history-file", path)),
        };
        RespondConfig {
            block_for,
            repeat_factor: u32::try_from(repeat_factor).unwrap_or(1),
            max_block_for,
            remember_offences,
            refresh: r.refresh,
            dry_run: r.dry_run,
            max_blocks: usize::try_from(max_blocks).unwrap_or(usize::MAX),
            max_new_blocks_per_second: u32::try_from(rate).unwrap_or(u32::MAX),
            min_ports: usize::try_from(min_ports).unwrap_or(1),
            reverse_path,
            protect,
            protect_for,
            on_block: r.on_block.clone(),
            on_block_timeout,
            on_block_in_dry_run: r.on_block_in_dry_run,
            history_file,
        }
    }

    /// `[respond]`'s evidence checks: reverse-path, protect and protect-for.
    fn trust(
        &mut self,
        r: &RawRespond,
    ) -> (crate::trust::ReversePath, crate::trust::Protect, Duration) {
        use crate::trust::{Protect, ReversePath};
        let reverse_path = self.choice(
            "[respond] reverse-path",
            &r.reverse_path,
            &[
                ("strict", ReversePath::Strict),
                ("loose", ReversePath::Loose),
                ("off", ReversePath::Off),
                ("kernel", ReversePath::Kernel),
            ],
        );
        let protect = self.choice(
            "[respond] protect",
            &r.protect,
            &[
                ("established", Protect::Established),
                ("none", Protect::None),
            ],
        );
        let protect_for = self.duration(
            "[respond] protect-for",
            &r.protect_for,
            Duration::ZERO,
            30 * DAY,
        );
        (reverse_path, protect, protect_for)
    }

    /// `[respond] on-block`: an absolute program, and arguments with known placeholders only.
    fn on_block(&mut self, argv: &[String]) {
        if let Some(program) = argv.first()
            && !program.starts_with('/')
        {
            self.problem(format!(
                "[respond] on-block: the program {program:?} must be an absolute path \
                 (it is run directly, without a shell)"
            ));
        }
        let known = |arg: &str| {
            let mut rest = arg;
            while let Some(open) = rest.find('{') {
                let tail = &rest[open..];
                match tail.find('}') {
                    Some(close) if ON_BLOCK_PLACEHOLDERS.contains(&&tail[..=close]) => {
                        rest = &tail[close + 1..];
                    }
                    _ => return false,
                }
            }
            true
        };
        for arg in argv.iter().skip(1).filter(|a| !known(a)) {
            self.problem(format!(
                "[respond] on-block: {arg:?} has an unknown placeholder; known: {}",
                ON_BLOCK_PLACEHOLDERS.join(" ")
            ));
        }
    }

    /// `[firewall]`: the backend, and nftables' settings for sets of `set_size` blocks.
    fn backend(&mut self, f: &RawFirewall, set_size: u32) -> Backend {
        let v = self;
        let nft = |v: &mut Validator| Backend::Nft(v.firewall(f, set_size));
        match f.backend.as_str() {
            "nft" => nft(v),
            "route" => {
                // hook and priority are the shipped example's (own mode's) and harmless here;
                // attach mode's keys would mean the administrator expects sets to be used.
                let nft_only = [
                    ("mode", f.mode != "own"),
                    ("family", f.family.is_some()),
                    ("table", f.table.is_some()),
                    ("set4", f.set4.is_some()),
                    ("set6", f.set6.is_some()),
                ];
                for (key, set) in nft_only {
                    if set {
                        v.problem(format!(
                            "[firewall] {key}: only applies to backend = \"nft\""
                        ));
                    }
                }
                if f.first_line == Some(true) {
                    v.problem(
                        "[firewall] first-line = true: the kernel's first line needs nftables \
                         (backend = \"nft\")"
                            .into(),
                    );
                }
                v.first_line(f);
                Backend::Route
            }
            other => {
                v.problem(format!(
                    "[firewall] backend = {other:?}: expected \"nft\" or \"route\""
                ));
                nft(v)
            }
        }
    }

    /// `[capture]` (connect mode needs `[detect] mode = "listed"`).
    fn capture(&mut self, c: &RawCapture, detect_mode: &str) -> CaptureConfig {
        let v = self;
        let interfaces = v.interfaces(&c.interfaces);
        let method = match c.method.as_str() {
            "pcap" => Method::Pcap,
            "raw" => Method::Raw,
            "connect" => {
                if detect_mode != "listed" {
                    v.problem(
                        "[capture] method = \"connect\": needs [detect] mode = \"listed\" \
                         (connect mode binds each trap port; \"unused\" would be every free port)"
                            .into(),
                    );
                }
                Method::Connect
            }
            other => {
                v.problem(format!(
                    "[capture] method = {other:?}: expected \"pcap\", \"raw\" or \"connect\""
                ));
                Method::Pcap
            }
        };
        let banner = match c.banner.as_str() {
            "" => None,
            b if method != Method::Connect => {
                v.problem(format!(
                    "[capture] banner = {b:?}: only applies to method = \"connect\""
                ));
                None
            }
            b if b.len() > 1024 || b.chars().any(char::is_control) => {
                v.problem(
                    "[capture] banner: at most 1024 characters, on one line, no control \
                     characters"
                        .into(),
                );
                None
            }
            b => Some(b.to_string()),
        };
        CaptureConfig {
            interfaces,
            immediate: c.immediate,
            method,
            banner,
        }
    }

    /// `[log]`.
    fn log(&mut self, l: &RawLog) -> LogConfig {
        let v = self;
        LogConfig {
            target: match l.target.as_str() {
                "stdout" => LogTarget::Stdout,
                "syslog" => LogTarget::Syslog,
                "journald" => LogTarget::Journald,
                other => {
                    v.problem(format!(
                        "[log] target = {other:?}: expected \"stdout\", \"syslog\" or \"journald\""
                    ));
                    LogTarget::Stdout
                }
            },
            format: match l.format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    v.problem(format!(
                        "[log] format = {other:?}: expected \"text\" or \"json\""
                    ));
                    LogFormat::Text
                }
            },
        }
    }

    /// `[never-block]`.
    fn never_block(&mut self, nb: &RawNeverBlock) -> NeverBlockConfig {
        let v = self;
        let mut addresses = Vec::with_capacity(nb.addresses.len());
        for text in &nb.addresses {
            match parse_net(text) {
                Some(net) => addresses.push(net),
                None => v.problem(format!(
                    "[never-block] addresses: {text:?} is not an IP address or CIDR \
                     (like \"198.51.100.7\" or \"2001:db8::/32\")"
                )),
            }
        }
        let file = match nb.file.as_str() {
            "" => None,
            p if !p.starts_with('/') => {
                v.problem(format!(
                    "[never-block] file = {p:?}: must be an absolute path (or \"\" for none)"
                ));
                None
            }
            p => Some(PathBuf::from(p)),
        };
        NeverBlockConfig { addresses, file }
    }

    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn finish(self, config: Config) -> Result<Config, Vec<String>> {
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(self.problems)
        }
    }

    /// `value` when it is within `min..=max`; otherwise a problem, and the nearest bound.
    fn integer(&mut self, key: &str, value: i64, min: i64, max: i64) -> i64 {
        if value < min || value > max {
            self.problem(format!("{key} = {value}: must be from {min} to {max}"));
        }
        value.clamp(min, max)
    }

    fn weight(&mut self, key: &str, value: i64) -> u16 {
        let w = self.integer(&format!("[detect.weights] {key}"), value, 1, 1000);
        u16::try_from(w).unwrap_or(1)
    }

    fn duration(&mut self, key: &str, text: &str, min: Duration, max: Duration) -> Duration {
        match humantime::parse_duration(text) {
            Ok(d) if d < min => {
                self.problem(format!(
                    "{key} = {text:?}: must be at least {}",
                    crate::text::human(min)
                ));
                min
            }
            Ok(d) if d > max => {
                self.problem(format!(
                    "{key} = {text:?}: must be at most {}",
                    crate::text::human(max)
                ));
                max
            }
            Ok(d) => d,
            Err(e) => {
                let why = match e {
                    humantime::DurationError::UnknownUnit { unit, .. } => {
                        format!(" (unknown unit {unit:?})")
                    }
                    humantime::DurationError::NumberOverflow => " (too large)".into(),
                    _ => String::new(),
                };
                self.problem(format!(
                    "{key} = {text:?}: not a duration{why}; write it like \"90s\", \"15m\", \
                     \"1h\" or \"7d\""
                ));
                min
            }
        }
    }

    /// `[firewall]` for the nft backend: own mode's or attach mode's settings, the other mode's
    /// keys refused.
    fn firewall(&mut self, raw: &raw::RawFirewall, set_size: u32) -> NftConfig {
        let own_only = [
            ("hook", raw.hook.is_some()),
            ("forward", raw.forward.is_some()),
            ("priority", raw.priority.is_some()),
        ];
        let attach_only = [
            ("family", raw.family.is_some()),
            ("table", raw.table.is_some()),
            ("set4", raw.set4.is_some()),
            ("set6", raw.set6.is_some()),
        ];
        match raw.mode.as_str() {
            "own" => {
                self.misplaced(&attach_only, "attach");
                self.own_firewall(raw, set_size)
            }
            "attach" => {
                self.misplaced(&own_only, "own");
                self.attach_firewall(raw)
            }
            other => {
                self.problem(format!(
                    "[firewall] mode = {other:?}: expected \"own\" or \"attach\""
                ));
                NftConfig::Own {
                    hook: Hook::Input,
                    forward: true,
                    priority: -10,
                    set_size,
                    first_line: None,
                }
            }
        }
    }

    /// A problem for each of `keys` that is set, naming the `mode` it belongs to.
    fn misplaced(&mut self, keys: &[(&str, bool)], mode: &str) {
        for (key, set) in keys {
            if *set {
                self.problem(format!(
                    "[firewall] {key}: only applies to mode = \"{mode}\""
                ));
            }
        }
    }

    /// `[firewall] mode = "own"`: hook, forward, priority.
    fn own_firewall(&mut self, raw: &raw::RawFirewall, set_size: u32) -> NftConfig {
        let hook = self.choice(
            "[firewall] hook",
            raw.hook.as_deref().unwrap_or("input"),
            &[("input", Hook::Input), ("prerouting", Hook::Prerouting)],
        );
        let default_priority = match hook {
            Hook::Input => -10,
            Hook::Prerouting => -300,
        };
        let priority = match raw.priority {
            None => default_priority,
            Some(p) => {
                let p = self.integer("[firewall] priority", p, -1000, 1000);
                // `integer` clamps to the range, so the value fits.
                i32::try_from(p).unwrap_or(default_priority)
            }
        };
        if hook == Hook::Prerouting && raw.forward.is_some() {
            self.problem(
                "[firewall] forward: only applies to hook = \"input\" (a prerouting \
                 chain drops forwarded traffic too)"
                    .into(),
            );
        }
        let first_line = self.first_line(raw);
        NftConfig::Own {
            hook,
            forward: hook == Hook::Input && raw.forward.unwrap_or(true),
            priority,
            set_size,
            first_line: raw.first_line.unwrap_or(true).then_some(first_line),
        }
    }

    /// The first line counts every port nothing listens on: it does not fit `[detect] mode =
    /// "listed"` (only the listed ports are traps) nor `[capture] method = "connect"` (whose
    /// trap ports are the daemon's own listeners). There it is off by default, and asking for
    /// it is a problem.
    fn first_line_fits(
        &mut self,
        backend: Backend,
        traps: &TrapsConfig,
        capture: &CaptureConfig,
        asked: Option<bool>,
    ) -> Backend {
        let unfit = if capture.method == Method::Connect {
            Some("[capture] method = \"connect\" (its trap ports are sentryd's own listeners)")
        } else if matches!(traps.mode, TrapMode::Listed { .. }) {
            Some("[detect] mode = \"listed\" (only the listed ports are traps)")
        } else {
            None
        };
        let Some(unfit) = unfit else { return backend };
        if asked == Some(true) {
            self.problem(format!(
                "[firewall] first-line = true: the kernel's first line counts every port \
                 nothing listens on, which does not fit {unfit}"
            ));
        }
        match backend {
            Backend::Nft(NftConfig::Own {
                hook,
                forward,
                priority,
                set_size,
                first_line: _,
            }) => Backend::Nft(NftConfig::Own {
                hook,
                forward,
                priority,
                set_size,
                first_line: None,
            }),
            Backend::Nft(NftConfig::Attach {
                family,
                table,
                set4,
                set6,
                first_line: _,
            }) => Backend::Nft(NftConfig::Attach {
                family,
                table,
                set4,
                set6,
                first_line: None,
            }),
            other => other,
        }
    }

    /// `[firewall] first-line-hold` and `first-line-log-group` (checked whether the first line
    /// is on or not, so that turning it on later meets no new problem).
    fn first_line(&mut self, raw: &raw::RawFirewall) -> FirstLine {
        let hold = self.duration(
            "[firewall] first-line-hold",
            &raw.first_line_hold,
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        let group = self.integer(
            "[firewall] first-line-log-group",
            raw.first_line_log_group,
            0,
            65535,
        );
        FirstLine {
            hold,
            // `integer` clamps to the range, so the value fits.
            log_group: u16::try_from(group).unwrap_or(2701),
        }
    }

    /// `[firewall] mode = "attach"`: family, table, set4 and set6, and the first line (off
    /// unless asked; an inet table only).
    fn attach_firewall(&mut self, raw: &raw::RawFirewall) -> NftConfig {
        let family = self.choice(
            "[firewall] family",
            raw.family.as_deref().unwrap_or("inet"),
            &[
                ("inet", Family::Inet),
                ("ip", Family::Ip),
                ("ip6", Family::Ip6),
            ],
        );
        let table = match raw.table.as_deref() {
            Some(t) => self.nft_name("table", t),
            None => {
                self.problem(
                    "[firewall] mode = \"attach\": set `table` to the table that holds \
                     the sets"
                        .into(),
                );
                None
            }
        };
        // A name refused above is a problem already; the placeholder never runs.
        let placeholder = || NftName::new("invalid").expect("a valid name");
        let table = table.unwrap_or_else(placeholder);
        let set4 = raw
            .set4
            .as_deref()
            .map(|s| self.nft_name("set4", s).unwrap_or_else(placeholder));
        let set6 = raw
            .set6
            .as_deref()
            .map(|s| self.nft_name("set6", s).unwrap_or_else(placeholder));
        if set4.is_none() && set6.is_none() {
            self.problem("[firewall] mode = \"attach\": set `set4`, `set6` or both".into());
        }
        if family == Family::Ip6 && set4.is_some() {
            self.problem("[firewall] set4: an ip6 table holds no IPv4 set".into());
        }
        if family == Family::Ip && set6.is_some() {
            self.problem("[firewall] set6: an ip table holds no IPv6 set".into());
        }
        // Off by default here: the administrator's firewall gets no rules they did not include.
        let first_line = self.first_line(raw);
        let first_line = raw.first_line.unwrap_or(false).then_some(first_line);
        if first_line.is_some() && family != Family::Inet {
            self.problem(format!(
                "[firewall] first-line = true: the kernel's first line needs an inet table \
                 (family = \"inet\", not {:?}): its rules look at IPv4 and IPv6 alike",
                family.as_str()
            ));
        }
        NftConfig::Attach {
            family,
            table,
            set4,
            set6,
            first_line,
        }
    }

    /// `value` among `options` (word, meaning); otherwise a problem listing the words, and the
    /// first option's meaning.
    fn choice<T: Copy>(&mut self, key: &str, value: &str, options: &[(&str, T)]) -> T {
        if let Some((_, meaning)) = options.iter().find(|(word, _)| *word == value) {
            return *meaning;
        }
        let words: Vec<String> = options.iter().map(|(w, _)| format!("{w:?}")).collect();
        let expected = match words.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        self.problem(format!("{key} = {value:?}: expected {expected}"));
        options
            .first()
            .map(|(_, m)| *m)
            .expect("at least one option")
    }

    fn interfaces(&mut self, names: &[String]) -> Interfaces {
        match names {
            [one] if one == "ALL_NLO" => Interfaces::AllButLoopback,
            [one] if one == "ALL" || one == "any" => Interfaces::All,
            [] => {
                self.problem("[capture] interfaces = []: name at least one, or \"ALL_NLO\"".into());
                Interfaces::AllButLoopback
            }
            names => {
                for name in names {
                    let special = ["ALL_NLO", "ALL", "any"].contains(&name.as_str());
                    let valid = !name.is_empty()
                        && name.len() < 16
                        && !name.contains(|c: char| c == '/' || c.is_whitespace());
                    if special {
                        self.problem(format!(
                            "[capture] interfaces: {name:?} must be alone in the list"
                        ));
                    } else if !valid {
                        self.problem(format!(
                            "[capture] interfaces: {name:?} is not an interface name"
                        ));
                    }
                }
                Interfaces::Named(names.to_vec())
            }
        }
    }

    fn audit(&mut self, a: &raw::RawAudit) -> AuditConfig {
        use crate::audit::policy::Policy;
        let interval = self.duration(
            "[audit] interval",
            &a.interval,
            Duration::from_secs(10),
            DAY,
        );
        let severity = match a.severity.as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            other => {
                self.problem(format!(
                    "[audit] severity = {other:?}: must be \"error\", \"warning\" or \"info\""
                ));
                Severity::Warning
            }
        };
        let ports = match ports::parse_port_spec(&a.ports) {
            Ok(r) => r,
            Err(why) => {
                self.problem(format!("[audit] ports: {why}"));
                1..=65535
            }
        };
        let mut problems = Vec::new();
        let everywhere = raw::RawAuditLists {
            required: a.required.clone(),
            optional: a.optional.clone(),
            ignore: a.ignore.clone(),
            skip: a.skip.clone(),
            expect: a.expect.clone(),
        };
        let all = audit_lists("[audit]", &everywhere, &mut problems);
        let mut per_address = Vec::new();
        for (addr, raw) in &a.address {
            let section = format!("[audit.address.{addr:?}]");
            let l = audit_lists(&section, raw, &mut problems);
            match addr.parse::<std::net::IpAddr>() {
                Ok(ip) => per_address.push((ip.to_canonical(), l)),
                Err(_) => problems.push(format!("{section}: {addr:?} is not an IP address")),
            }
        }
        for p in problems {
            self.problem(p);
        }
        let expect_file = match a.expect_file.as_str() {
            "" => None,
            p if !p.starts_with('/') => {
                self.problem(format!(
                    "[audit] expect-file = {p:?}: must be an absolute path (or \"\" for none)"
                ));
                None
            }
            p => Some(PathBuf::from(p)),
        };
        AuditConfig {
            enabled: a.enabled,
            interval,
            severity,
            policy: Policy {
                tcp: a.tcp,
                udp: a.udp,
                ports,
                all,
                per_address,
            },
            expect_file,
        }
    }

    fn absolute(&mut self, key: &str, path: &str) -> PathBuf {
        if !path.starts_with('/') {
            self.problem(format!("{key} = {path:?}: must be an absolute path"));
        }
        PathBuf::from(path)
    }

    /// An nftables identifier: a letter, then letters, digits, `_`, `-`, `.`, `/`; at most 255.
    fn nft_name(&mut self, key: &str, name: &str) -> Option<NftName> {
        NftName::new(name)
            .map_err(|_| {
                self.problem(format!(
                    "[firewall] {key} = {name:?}: not an nftables name (a letter, then letters, \
                     digits, _ - . /; at most 255)"
                ));
            })
            .ok()
    }

    fn ports(&mut self, key: &str, specs: &[RawPort]) -> PortSet {
        let mut set = PortSet::new();
        for spec in specs {
            match ports::parse_port_spec(spec) {
                Ok(range) => range.for_each(|p| set.insert(p)),
                Err(e) => self.problem(format!("{key}: {e}")),
            }
        }
        set
    }
}

/// The valid ports of `specs`, silently: for a second reading of a key whose problems the
/// first reading said.
fn valid_ports(specs: &[RawPort]) -> PortSet {
    let mut set = PortSet::new();
    specs
        .iter()
        .filter_map(|spec| ports::parse_port_spec(spec).ok())
        .for_each(|range| range.for_each(|p| set.insert(p)));
    set
}

#[cfg(test)]
mod tests;
