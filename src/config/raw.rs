//! The configuration file as written: serde only, no validation beyond TOML types and the key
//! names (unknown keys are rejected with their line and column). Every field has a named default.
//! Every key is described for users in [`super::reference`], whose tests walk these types and
//! fail when a key is missing there.

use serde::Deserialize;

use crate::detect::{DetectorConfig, Weights};

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// `[detect]`.
    #[serde(default)]
    pub detect: RawDetect,
    /// `[respond]`.
    #[serde(default)]
    pub respond: RawRespond,
    /// `[never-block]`.
    #[serde(default)]
    pub never_block: RawNeverBlock,
    /// `[firewall]`.
    #[serde(default)]
    pub firewall: RawFirewall,
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: RawDaemon,
    /// `[capture]`.
    #[serde(default)]
    pub capture: RawCapture,
    /// `[log]`.
    #[serde(default)]
    pub log: RawLog,
    /// `[audit]`.
    #[serde(default)]
    pub audit: RawAudit,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// `[fleet]`.
    #[serde(default)]
    pub fleet: super::fleet::RawFleet,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawMetrics {
    /// `""` (off), `ADDRESS:PORT`, or an absolute path for a Unix socket.
    #[serde(default)]
    pub listen: String,
}

/// `[audit]`: the local exposure audit.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawAudit {
    /// Run the audit in the daemon.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often, humantime.
    #[serde(default = "default_audit_interval")]
    pub interval: String,
    /// Look at TCP listeners.
    #[serde(default = "yes")]
    pub tcp: bool,
    /// Look at UDP sockets.
    #[serde(default = "yes")]
    pub udp: bool,
    /// Only ports in this range: `"lo-hi"`.
    #[serde(default = "default_audit_ports")]
    pub ports: RawPort,
    /// `"error"`, `"warning"` or `"info"`: how the daemon logs findings.
    #[serde(default = "default_audit_severity")]
    pub severity: String,
    /// Must be open, on every address.
    #[serde(default)]
    pub required: Vec<String>,
    /// May be open.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Never reported.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Not looked at.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Listen here.
    #[serde(default)]
    pub expect: Vec<String>,
    /// A file of further `expect` rules (`expect = [...]`); `""` for none.
    #[serde(default = "default_audit_expect_file")]
    pub expect_file: String,
    /// `[audit.address."ADDR"]`: the lists for one address.
    #[serde(default)]
    pub address: std::collections::BTreeMap<String, RawAuditLists>,
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            enabled: true,
            interval: default_audit_interval(),
            tcp: true,
            udp: true,
            ports: default_audit_ports(),
            severity: default_audit_severity(),
            required: Vec::new(),
            optional: Vec::new(),
            ignore: Vec::new(),
            skip: Vec::new(),
            expect: Vec::new(),
            expect_file: default_audit_expect_file(),
            address: std::collections::BTreeMap::new(),
        }
    }
}

/// The five policy lists, each of `"port/proto"` or `"rpcname/proto"`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawAuditLists {
    /// Must be open.
    #[serde(default)]
    pub required: Vec<String>,
    /// May be open.
    #[serde(default)]
    pub optional: Vec<String>,
    /// Never reported.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Not looked at.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Listen here.
    #[serde(default)]
    pub expect: Vec<String>,
}

fn default_audit_expect_file() -> String {
    crate::config::DEFAULT_EXPECT_FILE.into()
}

fn default_audit_interval() -> String {
    "5m".into()
}

fn default_audit_ports() -> RawPort {
    RawPort::Text("1-65535".into())
}

fn default_audit_severity() -> String {
    "warning".into()
}

/// `[log]`: where the daemon's event lines go, and how they are written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawLog {
    /// `"stdout"`, `"syslog"` or `"journald"`.
    #[serde(default = "default_log_target")]
    pub target: String,
    /// `"text"` or `"json"`.
    #[serde(default = "default_log_format")]
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            target: default_log_target(),
            format: default_log_format(),
        }
    }
}

fn default_log_target() -> String {
    "stdout".into()
}
fn default_log_format() -> String {
    "text".into()
}

/// `[capture]`: where and how packets are captured.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawCapture {
    /// `["ALL_NLO"]`, `["ALL"]`, `["any"]` or interface names.
    #[serde(default = "default_interfaces")]
    pub interfaces: Vec<String>,
    /// Hand each frame over at once (lowest latency) rather than in batches.
    #[serde(default = "default_immediate")]
    pub immediate: bool,
    /// `"pcap"` or `"connect"`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Connect mode: a line written to TCP clients before they are disconnected.
    #[serde(default)]
    pub banner: String,
}

fn default_method() -> String {
    "pcap".into()
}

impl Default for RawCapture {
    fn default() -> Self {
        RawCapture {
            interfaces: default_interfaces(),
            immediate: default_immediate(),
            method: default_method(),
            banner: String::new(),
        }
    }
}

fn default_interfaces() -> Vec<String> {
    vec!["ALL_NLO".into()]
}
fn default_immediate() -> bool {
    true
}

/// `[daemon]`: where the daemon keeps its socket and state.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawDaemon {
    /// The control socket.
    #[serde(default = "default_socket")]
    pub socket: String,
    /// The state directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            socket: default_socket(),
            state_dir: default_state_dir(),
        }
    }
}

fn default_socket() -> String {
    crate::config::DEFAULT_SOCKET.into()
}
fn default_state_dir() -> String {
    "/var/lib/scansentry".into()
}

/// `[detect]`: which ports are traps, and how probes are scored.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawDetect {
    /// `"unused"` or `"listed"`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// A named PortSentry port list, for `listed` mode.
    #[serde(default)]
    pub preset: Option<String>,
    /// TCP trap ports for `listed` mode: numbers or `"lo-hi"` strings.
    #[serde(default)]
    pub tcp_ports: Vec<RawPort>,
    /// UDP trap ports for `listed` mode.
    #[serde(default)]
    pub udp_ports: Vec<RawPort>,
    /// TCP ports that are never traps.
    #[serde(default = "default_exclude_tcp")]
    pub exclude_tcp: Vec<RawPort>,
    /// UDP ports that are never traps.
    #[serde(default = "default_exclude_udp")]
    pub exclude_udp: Vec<RawPort>,
    /// UDP ports exempt as the local ephemeral range: `"auto"`, `"none"` or `"lo-hi"`.
    #[serde(default = "default_ephemeral_udp")]
    pub ephemeral_udp: String,
    /// TCP tripwire ports: one probe makes a detection.
    #[serde(default)]
    pub tripwire_tcp: Vec<RawPort>,
    /// UDP tripwire ports.
    #[serde(default)]
    pub tripwire_udp: Vec<RawPort>,
    /// Score at which a source is a scanner.
    #[serde(default = "default_threshold")]
    pub threshold: i64,
    /// Sliding window, humantime.
    #[serde(default = "default_window")]
    pub window: String,
    /// Sources tracked at most.
    #[serde(default = "default_max_sources")]
    pub max_sources: i64,
    /// Distinct ports kept per source at most.
    #[serde(default = "default_max_ports_per_source")]
    pub max_ports_per_source: i64,
    /// IPv4 sources are counted per prefix of this length.
    #[serde(default = "default_ipv4_prefix")]
    pub ipv4_prefix: i64,
    /// IPv6 sources are counted per prefix of this length.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: i64,
    /// Leave traffic from the host's own addresses alone (PortSentry's local check).
    #[serde(default = "yes")]
    pub local_check: bool,
    /// `[detect.weights]`.
    #[serde(default)]
    pub weights: RawWeights,
}

impl Default for RawDetect {
    fn default() -> Self {
        RawDetect {
            mode: default_mode(),
            preset: None,
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            exclude_tcp: default_exclude_tcp(),
            exclude_udp: default_exclude_udp(),
            ephemeral_udp: default_ephemeral_udp(),
            tripwire_tcp: Vec::new(),
            tripwire_udp: Vec::new(),
            threshold: default_threshold(),
            window: default_window(),
            max_sources: default_max_sources(),
            max_ports_per_source: default_max_ports_per_source(),
            ipv4_prefix: default_ipv4_prefix(),
            ipv6_prefix: default_ipv6_prefix(),
            local_check: true,
            weights: RawWeights::default(),
        }
    }
}

/// A port or a range, as written.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RawPort {
    /// `22`
    Number(i64),
    /// `"6000-6063"` (or `"22"`).
    Text(String),
}

/// `[detect.weights]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawWeights {
    /// Ports below 1024.
    #[serde(default = "default_weight_privileged")]
    pub privileged_port: i64,
    /// Ports from 1024.
    #[serde(default = "default_weight_unprivileged")]
    pub unprivileged_port: i64,
    /// SYN and UDP.
    #[serde(default = "default_weight_ordinary")]
    pub ordinary: i64,
    /// FIN, Maimon, other odd flag sets.
    #[serde(default = "default_weight_stealth")]
    pub stealth: i64,
    /// NULL, XMAS, SYN+FIN, SYN+RST.
    #[serde(default = "default_weight_impossible")]
    pub impossible: i64,
}

impl Default for RawWeights {
    fn default() -> Self {
        RawWeights {
            privileged_port: default_weight_privileged(),
            unprivileged_port: default_weight_unprivileged(),
            ordinary: default_weight_ordinary(),
            stealth: default_weight_stealth(),
            impossible: default_weight_impossible(),
        }
    }
}

/// `[respond]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRespond {
    /// How long a first block lasts, humantime.
    #[serde(default = "default_block_for")]
    pub block_for: String,
    /// Each repeat offence multiplies the duration by this.
    #[serde(default = "default_repeat_factor")]
    pub repeat_factor: i64,
    /// The longest a block gets, however often the source comes back.
    #[serde(default = "default_max_block_for")]
    pub max_block_for: String,
    /// How long offences are remembered for escalation.
    #[serde(default = "default_remember_offences")]
    pub remember_offences: String,
    /// Refresh the block of a source that is detected again while blocked.
    #[serde(default)]
    pub refresh: bool,
    /// Log "would block" instead of blocking.
    #[serde(default)]
    pub dry_run: bool,
    /// Blocks active at most; past it new detections are logged and refused.
    #[serde(default = "default_max_blocks")]
    pub max_blocks: i64,
    /// New blocks per second at most (a burst of as many is allowed).
    #[serde(default = "default_max_new_blocks_per_second")]
    pub max_new_blocks_per_second: i64,
    /// No automatic block on fewer distinct trap ports than this.
    #[serde(default = "default_min_ports")]
    pub min_ports: i64,
    /// "strict", "loose" or "off": the reverse-path check of a detection's source.
    #[serde(default = "default_reverse_path")]
    pub reverse_path: String,
    /// "established" or "none": whether a source with an established connection may be
    /// blocked on probe evidence.
    #[serde(default = "default_protect")]
    pub protect: String,
    /// How long a conversation of a minute or more protects its peer after it ended.
    #[serde(default = "default_protect_for")]
    pub protect_for: String,
    /// A program run on each block: argv, no shell, with placeholders.
    #[serde(default)]
    pub on_block: Vec<String>,
    /// How long the program may run before it is killed.
    #[serde(default = "default_on_block_timeout")]
    pub on_block_timeout: String,
    /// Run the program for what a dry run would block too (PortSentry's `BLOCK_* = 2`).
    #[serde(default)]
    pub on_block_in_dry_run: bool,
    /// An append-only log of blocks in PortSentry's history format; `""` for none.
    #[serde(default)]
    pub history_file: String,
}

impl Default for RawRespond {
    fn default() -> Self {
        RawRespond {
            block_for: default_block_for(),
            repeat_factor: default_repeat_factor(),
            max_block_for: default_max_block_for(),
            remember_offences: default_remember_offences(),
            refresh: false,
            dry_run: false,
            max_blocks: default_max_blocks(),
            max_new_blocks_per_second: default_max_new_blocks_per_second(),
            min_ports: default_min_ports(),
            reverse_path: default_reverse_path(),
            protect: default_protect(),
            protect_for: default_protect_for(),
            on_block: Vec::new(),
            on_block_timeout: default_on_block_timeout(),
            on_block_in_dry_run: false,
            history_file: String::new(),
        }
    }
}

/// `[firewall]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawFirewall {
    /// `"nft"` or `"route"`.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// `"own"` or `"attach"`.
    #[serde(default = "default_firewall_mode")]
    pub mode: String,
    /// Own mode: `"input"` or `"prerouting"`.
    #[serde(default)]
    pub hook: Option<String>,
    /// Own mode, hook input: also drop blocked sources' forwarded traffic.
    #[serde(default)]
    pub forward: Option<bool>,
    /// Own mode: the chain's priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Own mode: the kernel's first line (on by default).
    #[serde(default)]
    pub first_line: Option<bool>,
    /// How long the first line holds a source.
    #[serde(default = "default_first_line_hold")]
    pub first_line_hold: String,
    /// The nfnetlink_log group the first line reports holds to.
    #[serde(default = "default_first_line_log_group")]
    pub first_line_log_group: i64,
    /// Attach mode: the table's family.
    #[serde(default)]
    pub family: Option<String>,
    /// Attach mode: the table.
    #[serde(default)]
    pub table: Option<String>,
    /// Attach mode: the IPv4 block set.
    #[serde(default)]
    pub set4: Option<String>,
    /// Attach mode: the IPv6 block set.
    #[serde(default)]
    pub set6: Option<String>,
}

impl Default for RawFirewall {
    fn default() -> Self {
        RawFirewall {
            backend: default_backend(),
            mode: default_firewall_mode(),
            hook: None,
            forward: None,
            priority: None,
            first_line: None,
            first_line_hold: default_first_line_hold(),
            first_line_log_group: default_first_line_log_group(),
            family: None,
            table: None,
            set4: None,
            set6: None,
        }
    }
}

/// `[never-block]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNeverBlock {
    /// Addresses and CIDRs.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// A file with one address or CIDR per line; `""` for none.
    #[serde(default = "default_ignore_file")]
    pub file: String,
}

impl Default for RawNeverBlock {
    fn default() -> Self {
        RawNeverBlock {
            addresses: Vec::new(),
            file: default_ignore_file(),
        }
    }
}

fn default_ignore_file() -> String {
    crate::config::DEFAULT_IGNORE_FILE.into()
}

fn default_backend() -> String {
    "nft".into()
}

fn default_first_line_hold() -> String {
    "5s".into()
}

fn default_first_line_log_group() -> i64 {
    2701
}

fn default_mode() -> String {
    "unused".into()
}
/// PortSentry's ADVANCED_EXCLUDE_TCP: ident (mail and IRC servers call back) and NetBIOS.
fn default_exclude_tcp() -> Vec<RawPort> {
    [113, 139].map(RawPort::Number).to_vec()
}
/// PortSentry's ADVANCED_EXCLUDE_UDP (DHCP server, NetBIOS, RIP) plus the DHCP client port.
fn default_exclude_udp() -> Vec<RawPort> {
    [67, 68, 137, 138, 520].map(RawPort::Number).to_vec()
}
fn default_ephemeral_udp() -> String {
    "auto".into()
}
fn default_threshold() -> i64 {
    i64::from(DetectorConfig::default().threshold)
}
/// The detector's default window, written as an administrator would.
fn default_window() -> String {
    format!("{}s", DetectorConfig::default().window.as_secs())
}
fn default_max_sources() -> i64 {
    i64::try_from(DetectorConfig::default().max_sources).unwrap_or(i64::MAX)
}
fn default_max_ports_per_source() -> i64 {
    i64::try_from(DetectorConfig::default().max_ports_per_source).unwrap_or(i64::MAX)
}
fn default_ipv4_prefix() -> i64 {
    i64::from(DetectorConfig::default().ipv4_prefix)
}
fn yes() -> bool {
    true
}

fn default_ipv6_prefix() -> i64 {
    i64::from(DetectorConfig::default().ipv6_prefix)
}
fn default_weight_privileged() -> i64 {
    i64::from(Weights::DEFAULT.privileged_port)
}
fn default_weight_unprivileged() -> i64 {
    i64::from(Weights::DEFAULT.unprivileged_port)
}
fn default_weight_ordinary() -> i64 {
    i64::from(Weights::DEFAULT.ordinary)
}
fn default_weight_stealth() -> i64 {
    i64::from(Weights::DEFAULT.stealth)
}
fn default_weight_impossible() -> i64 {
    i64::from(Weights::DEFAULT.impossible)
}
fn default_block_for() -> String {
    "1h".into()
}
fn default_max_blocks() -> i64 {
    65_536
}
fn default_repeat_factor() -> i64 {
    2
}
fn default_max_block_for() -> String {
    "7d".into()
}
fn default_remember_offences() -> String {
    "30d".into()
}
fn default_protect() -> String {
    "established".into()
}
fn default_protect_for() -> String {
    "24h".into()
}
fn default_reverse_path() -> String {
    "strict".into()
}
fn default_min_ports() -> i64 {
    3
}
fn default_max_new_blocks_per_second() -> i64 {
    50
}
fn default_on_block_timeout() -> String {
    "10s".into()
}
fn default_firewall_mode() -> String {
    "own".into()
}
