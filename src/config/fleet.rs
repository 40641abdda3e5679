//! `[fleet]`: fleet mode's settings, as plain types, and their checks. Off by default.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Validator;
use crate::fleet::message::HostName;

/// `[fleet]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawFleet {
    /// Fleet mode on.
    #[serde(default)]
    pub enabled: bool,
    /// NATS servers, `nats://HOST:PORT` or `tls://HOST:PORT`.
    #[serde(default)]
    pub servers: Vec<String>,
    /// This host's name in the fleet (default: the system's host name, at start).
    #[serde(default)]
    pub host: String,
    /// The first token(s) of every subject.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// What this host publishes: `blocks`, `probes`.
    #[serde(default = "default_kinds")]
    pub share: Vec<String>,
    /// What it takes from the others: `blocks`, `probes`.
    #[serde(default = "default_kinds")]
    pub accept: Vec<String>,
    /// The longest block taken from another host.
    #[serde(default = "default_max_block_for")]
    pub max_block_for: String,
    /// Blocks taken from one origin in a minute at most.
    #[serde(default = "default_per_origin")]
    pub max_blocks_per_origin_per_minute: i64,
    /// The hosts whose blocks by hand wider than an IPv4 /24 or an IPv6 /48 are taken.
    #[serde(default)]
    pub accept_wide: RawAcceptWide,
    /// The fleet's members' addresses, as the administrator gives them: never blocked here.
    #[serde(default)]
    pub members: Vec<String>,
    /// Credentials: a user and a file holding the password.
    #[serde(default)]
    pub user: String,
    /// The password's file.
    #[serde(default)]
    pub password_file: String,
    /// Credentials: a NATS creds file (JWT and nkey seed).
    #[serde(default)]
    pub creds_file: String,
    /// Credentials: an nkey seed file.
    #[serde(default)]
    pub nkey_file: String,
    /// TLS: the CA that signed the servers' certificates.
    #[serde(default)]
    pub tls_ca: String,
    /// TLS: this host's client certificate.
    #[serde(default)]
    pub tls_cert: String,
    /// TLS: its key.
    #[serde(default)]
    pub tls_key: String,
    /// `[fleet.sweep]`.
    #[serde(default)]
    pub sweep: RawSweep,

    // The transport (issue 24).
    /// Allow `nats://` servers without TLS (a lab): messages in clear, and whoever reaches the
    /// server may publish.
    #[serde(default)]
    pub insecure: bool,
}

/// `[fleet.sweep]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSweep {
    /// Distinct hosts probed on one port that make a sweep.
    #[serde(default = "default_sweep_hosts")]
    pub hosts: i64,
    /// Distinct (host, port) pairs that make a sweep.
    #[serde(default = "default_sweep_pairs")]
    pub pairs: i64,
    /// Over how long.
    #[serde(default = "default_sweep_window")]
    pub window: String,
}

impl Default for RawFleet {
    fn default() -> Self {
        toml::from_str("").expect("the built-in [fleet] parses")
    }
}

impl Default for RawSweep {
    fn default() -> Self {
        toml::from_str("").expect("the built-in [fleet.sweep] parses")
    }
}

fn default_prefix() -> String {
    "scansentry".into()
}
fn default_kinds() -> Vec<String> {
    vec!["blocks".into(), "probes".into()]
}
fn default_max_block_for() -> String {
    "1d".into()
}
fn default_per_origin() -> i64 {
    60
}
fn default_sweep_hosts() -> i64 {
    8
}
fn default_sweep_pairs() -> i64 {
    16
}
fn default_sweep_window() -> String {
    "60s".into()
}

/// How this host proves who it is to the NATS servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// None (a lab, or a server that trusts its network).
    None,
    /// A user, and the file holding the password.
    Password {
        /// The user.
        user: String,
        /// The password's file.
        file: PathBuf,
    },
    /// A creds file (a JWT and an nkey seed).
    Creds(PathBuf),
    /// An nkey seed file.
    Nkey(PathBuf),
}

/// TLS to the servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The CA of the servers' certificates.
    pub ca: PathBuf,
    /// This host's certificate and key, when the servers ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// `[fleet] accept-wide` as written: a list of host names; a bool (its old form) or anything
/// else is kept to be refused with what to write instead.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAcceptWide {
    /// The hosts named.
    Hosts(Vec<String>),
    /// `true` or `false`, the old form.
    Flag(bool),
    /// Anything else.
    Other(toml::Value),
}

impl Default for RawAcceptWide {
    fn default() -> Self {
        RawAcceptWide::Hosts(Vec::new())
    }
}

/// `[fleet]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    /// The NATS servers.
    pub servers: Vec<String>,
    /// This host's name (`None`: the system's host name, at start).
    pub host: Option<HostName>,
    /// The subjects' prefix.
    pub prefix: String,
    /// Publish this host's blocks.
    pub share_blocks: bool,
    /// Publish this host's probe summaries.
    pub share_probes: bool,
    /// Take the others' blocks.
    pub accept_blocks: bool,
    /// Count the others' probe summaries (sweep detection).
    pub accept_probes: bool,
    /// The longest block taken from another host.
    pub max_block_for: Duration,
    /// Blocks taken from one origin in a minute at most.
    pub max_per_origin_per_minute: u32,
    /// The hosts whose blocks by hand wider than an IPv4 /24 or an IPv6 /48 are taken (and
    /// count their real size against their caps); none by default.
    pub accept_wide: Vec<HostName>,
    /// The members' addresses and networks (`[fleet] members`): on the never-block list.
    pub members: Vec<ipnet::IpNet>,
    /// Credentials.
    pub credentials: Credentials,
    /// TLS, when asked for.
    pub tls: Option<Tls>,
    /// Distinct hosts probed on one port that make a sweep.
    pub sweep_hosts: u32,
    /// Distinct (host, port) pairs that make a sweep.
    pub sweep_pairs: u32,
    /// The sweep window.
    pub sweep_window: Duration,
    /// `nats://` without TLS allowed (a warning at every start).
    pub insecure: bool,
}

impl FleetConfig {
    /// The servers reached without TLS (`nats://` with no `tls-ca`; only with `insecure`).
    pub fn plain_servers(&self) -> Vec<&str> {
        if self.tls.is_some() {
            return Vec::new();
        }
        self.servers
            .iter()
            .filter(|s| s.starts_with("nats://"))
            .map(String::as_str)
            .collect()
    }

    /// The servers given by address (`nats://198.51.100.250:4222`, `tls://[2001:db8::1]:4222`),
    /// with their URL: they go on the never-block list, so that no forged scan cuts a host off
    /// its fleet. Servers given by name are not resolved (the main loop never waits on DNS).
    pub fn server_addresses(&self) -> Vec<(std::net::IpAddr, String)> {
        self.servers
            .iter()
            .filter_map(|url| {
                let hostport = url.split_once("://").map_or(url.as_str(), |(_, hp)| hp);
                let (host, _) = hostport.rsplit_once(':')?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some((host.parse().ok()?, url.clone()))
            })
            .collect()
    }
}

impl Validator {
    /// `[fleet] accept-wide`: the host names, each checked; the old `true`/`false` refused,
    /// saying the new form.
    fn accept_wide(&mut self, raw: &RawAcceptWide) -> Vec<HostName> {
        match raw {
            RawAcceptWide::Hosts(hosts) => hosts
                .iter()
                .filter_map(|h| {
                    HostName::new(h)
                        .map_err(|e| self.problem(format!("[fleet] accept-wide: {h:?}: {e}")))
                        .ok()
                })
                .collect(),
            RawAcceptWide::Flag(flag) => {
                self.problem(format!(
                    "[fleet] accept-wide = {flag}: name the hosts whose wide blocks by hand \
                     this host takes instead, e.g. accept-wide = [\"admin-1\"] (none: [])"
                ));
                Vec::new()
            }
            RawAcceptWide::Other(value) => {
                self.problem(format!(
                    "[fleet] accept-wide = {value}: expected a list of host names, e.g. \
                     accept-wide = [\"admin-1\"]"
                ));
                Vec::new()
            }
        }
    }

    /// `[fleet]`: `None` when it is off (the other keys are still checked).
    pub(super) fn fleet(&mut self, raw: &RawFleet) -> Option<FleetConfig> {
        self.fleet_servers(raw);
        let host = if raw.host.is_empty() {
            None
        } else {
            HostName::new(&raw.host)
                .map_err(|e| self.problem(format!("[fleet] host: {e}")))
                .ok()
        };
        self.subject_prefix(&raw.subject_prefix);
        let (share_blocks, share_probes) = self.kinds("share", &raw.share);
        let (accept_blocks, accept_probes) = self.kinds("accept", &raw.accept);
        let max_block_for = self.duration(
            "[fleet] max-block-for",
            &raw.max_block_for,
            Duration::from_secs(1),
            super::MAX_BLOCK_FOR,
        );
        let per_origin = self.integer(
            "[fleet] max-blocks-per-origin-per-minute",
            raw.max_blocks_per_origin_per_minute,
            1,
            100_000,
        );
        let credentials = self.credentials(raw);
        let tls = self.tls(raw);
        let accept_wide = self.accept_wide(&raw.accept_wide);
        let members = self.members(&raw.members);
        self.plain_nats(raw, tls.is_some(), &credentials);
        // Three hosts at least: two could be one forger's pair of addresses, or one member and
        // a forged probe.
        let sweep_hosts = self.integer("[fleet.sweep] hosts", raw.sweep.hosts, 3, 4096);
        let sweep_pairs = self.integer("[fleet.sweep] pairs", raw.sweep.pairs, 3, 4096);
        let sweep_window = self.duration(
            "[fleet.sweep] window",
            &raw.sweep.window,
            Duration::from_secs(1),
            Duration::from_secs(86_400),
        );
        raw.enabled.then(|| FleetConfig {
            servers: raw.servers.clone(),
            host,
            prefix: raw.subject_prefix.clone(),
            share_blocks,
            share_probes,
            accept_blocks,
            accept_probes,
            max_block_for,
            max_per_origin_per_minute: u32::try_from(per_origin).unwrap_or(1),
            accept_wide,
            members,
            credentials,
            tls,
            sweep_hosts: u32::try_from(sweep_hosts).unwrap_or(3),
            sweep_pairs: u32::try_from(sweep_pairs).unwrap_or(3),
            sweep_window,
            insecure: raw.insecure,
        })
    }

    /// `[fleet] servers`: each `nats://HOST:PORT` or `tls://HOST:PORT`; some when enabled.
    fn fleet_servers(&mut self, raw: &RawFleet) {
        for server in &raw.servers {
            let hostport = server
                .strip_prefix("nats://")
                .or_else(|| server.strip_prefix("tls://"));
            let ok = hostport.is_some_and(|hp| {
                hp.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            });
            if !ok {
                self.problem(format!(
                    "[fleet] servers: {server:?}: expected nats://HOST:PORT or tls://HOST:PORT"
                ));
            }
        }
        if raw.enabled && raw.servers.is_empty() {
            self.problem("[fleet] enabled = true: set `servers`".into());
        }
    }

    /// `[fleet] subject-prefix`: NATS subject tokens separated by dots.
    fn subject_prefix(&mut self, prefix: &str) {
        let prefix_ok = prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !prefix_ok {
            self.problem(format!(
                "[fleet] subject-prefix = {prefix:?}: NATS subject tokens (letters, digits, '-', \
                 '_') separated by '.'"
            ));
        }
    }

    /// `[fleet] share` or `accept`: (blocks, probes).
    fn kinds(&mut self, key: &str, list: &[String]) -> (bool, bool) {
        for item in list {
            if !matches!(item.as_str(), "blocks" | "probes") {
                self.problem(format!(
                    "[fleet] {key} = {item:?}: expected \"blocks\" or \"probes\""
                ));
            }
        }
        (
            list.iter().any(|i| i == "blocks"),
            list.iter().any(|i| i == "probes"),
        )
    }

    /// `[fleet] key = path`: `None` for `""`, else the path, which must be absolute.
    fn fleet_file(&mut self, key: &str, path: &str) -> Option<PathBuf> {
        (!path.is_empty()).then(|| self.absolute(&format!("[fleet] {key}"), path))
    }

    /// `[fleet]`'s one way to log in: user and password-file, creds-file, or nkey-file.
    fn credentials(&mut self, raw: &RawFleet) -> Credentials {
        let password = self.fleet_file("password-file", &raw.password_file);
        let creds = self.fleet_file("creds-file", &raw.creds_file);
        let nkey = self.fleet_file("nkey-file", &raw.nkey_file);
        let ways = [
            !raw.user.is_empty() || password.is_some(),
            creds.is_some(),
            nkey.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            self.problem(
                "[fleet]: one way to log in: user and password-file, creds-file, or nkey-file"
                    .into(),
            );
        }
        match (raw.user.as_str(), password, creds, nkey) {
            (_, _, Some(c), _) => Credentials::Creds(c),
            (_, _, _, Some(n)) => Credentials::Nkey(n),
            ("", None, ..) => Credentials::None,
            (user, Some(file), ..) if !user.is_empty() => Credentials::Password {
                user: user.to_string(),
                file,
            },
            _ => {
                self.problem("[fleet]: user and password-file go together".into());
                Credentials::None
            }
        }
    }

    /// `[fleet]`'s TLS: the CA, and a client certificate with its key (both or neither).
    fn tls(&mut self, raw: &RawFleet) -> Option<Tls> {
        let ca = self.fleet_file("tls-ca", &raw.tls_ca);
        let cert = self.fleet_file("tls-cert", &raw.tls_cert);
        let tls_key = self.fleet_file("tls-key", &raw.tls_key);
        let client = match (cert, tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                self.problem("[fleet]: tls-cert and tls-key go together".into());
                None
            }
        };
        let tls = match ca {
            Some(ca) => Some(Tls { ca, client }),
            None if client.is_some() => {
                self.problem("[fleet]: a client certificate needs tls-ca too".into());
                None
            }
            None => None,
        };
        let uses_tls = raw.servers.iter().any(|s| s.starts_with("tls://"));
        if uses_tls && tls.is_none() {
            self.problem("[fleet] servers: tls:// needs tls-ca".into());
        }
        tls
    }

    /// `[fleet] members`: addresses or networks of a /24 or /48 at most, above the floor.
    fn members(&mut self, texts: &[String]) -> Vec<ipnet::IpNet> {
        let mut members = Vec::new();
        for text in texts {
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(net) if net != net.trunc() => self.problem(format!(
                    "[fleet] members: {text:?}: host bits set (did you mean {}?)",
                    net.trunc()
                )),
                Ok(net) => match crate::fleet::floor::refuses(&net, false) {
                    Some(crate::fleet::floor::Floor::Wide { min, .. }) => self.problem(format!(
                        "[fleet] members: {text:?}: wider than a /{min} (a member is an \
                         address, or a network of a /24 or /48 at most)"
                    )),
                    Some(why) => self.problem(format!("[fleet] members: {text:?}: {why}")),
                    None => members.push(net),
                },
                Err(_) => self.problem(format!(
                    "[fleet] members: {text:?}: expected an address or a network (CIDR)"
                )),
            }
        }
        members
    }

    /// Plain NATS, and a password without TLS, only with `insecure`.
    fn plain_nats(&mut self, raw: &RawFleet, tls: bool, credentials: &Credentials) {
        // With tls-ca every server is reached over TLS, nats:// ones too; without it, nats://
        // is in clear: refused unless the administrator says it is meant.
        if tls || raw.insecure {
            return;
        }
        for server in raw.servers.iter().filter(|s| s.starts_with("nats://")) {
            self.problem(format!(
                "[fleet] servers: {server:?} is plain NATS, without TLS: messages go in \
                 clear and anyone who reaches the server can publish; use tls:// with \
                 tls-ca (and a client certificate), or set insecure = true for a lab"
            ));
        }
        if matches!(credentials, Credentials::Password { .. }) {
            self.problem(
                "[fleet] password-file: the password would be sent without TLS; set \
                 tls-ca, or insecure = true for a lab"
                    .into(),
            );
        }
    }
}
