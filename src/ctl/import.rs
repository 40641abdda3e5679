//! `sentryctl import-portsentry`: a PortSentry 1.x or 2.0 `portsentry.conf` (and the ignore
//! file it names) as a `scansentry.toml`, with a list of what could not be carried over and
//! why. **Pure**: text in, text out; the subcommand reads the files.

use std::fmt::Write as _;

/// What the conversion made.
#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    /// The new configuration file.
    pub toml: String,
    /// One line for each setting that was not carried over, or changed meaning, and why.
    pub notes: Vec<String>,
    /// The ignore file the configuration names, if any (the caller reads it and calls
    /// [`ignore_entries`]).
    pub ignore_file: Option<String>,
}

/// A PortSentry configuration: `KEY="value"` lines (`KEY = "value"` and unquoted values
/// also occur), `#` comments. Later lines win, as in PortSentry.
fn settings(text: &str) -> Vec<(String, String, usize)> {
    let mut out: Vec<(String, String, usize)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        // PortSentry 2.0 reads INTERFACES as INTERFACE: one setting, the later line wins.
        let key = match key.trim() {
            "INTERFACES" => "INTERFACE".to_string(),
            other => other.to_string(),
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.rfind('"').map(|end| &v[..end]))
            .unwrap_or(value)
            .to_string();
        out.retain(|(k, _, _)| *k != key);
        out.push((key, value, n + 1));
    }
    out
}

/// PortSentry's port lists: `1,7,9,11-15` (2.0 allows ranges), as TOML list items.
fn ports(value: &str) -> Result<Vec<String>, String> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0);
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((lo, hi)) => match (port(lo), port(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Ok(format!("\"{lo}-{hi}\"")),
                _ => Err(format!("{p:?} is not a range of ports")),
            },
            None => port(p)
                .map(|n| n.to_string())
                .ok_or_else(|| format!("{p:?} is not a port")),
        })
        .collect()
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// PortSentry settings scansentry has no counterpart for, each with why.
const NOT_IMPORTED: &[(&str, &str)] = &[
    (
        "KILL_RUN_CMD_FIRST",
        "the on-block program always runs after the block is in the kernel",
    ),
    (
        "KILL_ROUTE",
        "a shell command per block; scansentry blocks in its own nftables set over netlink \
         (see [firewall])",
    ),
    (
        "KILL_HOSTS_DENY",
        "hosts.deny only covers TCP-wrapped services; the nftables block covers everything",
    ),
    (
        "PORT_BANNER",
        "scansentry watches packets and opens no port, so it has no banner to send",
    ),
    (
        "RESOLVE_HOST",
        "scansentry never resolves names (an attacker's DNS would see every detection)",
    ),
    (
        "HISTORY_FILE",
        "blocks and history are kept in /var/lib/scansentry/state.json ([daemon] state-dir)",
    ),
    (
        "BLOCKED_FILE",
        "blocks and history are kept in /var/lib/scansentry/state.json ([daemon] state-dir)",
    ),
];

/// Converts `conf`, the text of a portsentry.conf. With `advanced`, the trap ports are
/// PortSentry's advanced (stealth) range, 1 to `ADVANCED_PORTS_*`, instead of the
/// `TCP_PORTS`/`UDP_PORTS` lists.
pub fn convert(conf: &str, source: &str, advanced: bool) -> Imported {
    let mut c = Conversion::default();
    for (key, value, line) in settings(conf) {
        let at = format!("{source}:{line}: {key}");
        if let Err(why) = c.setting(&key, value, &at) {
            c.notes.push(format!("{at}: not imported: {why}"));
        }
    }
    c.trap_ports(source, advanced);
    c.block_level(source);
    c.finish(source)
}

/// What the settings read so far make: the sections' lines, and what is decided once all are
/// read.
#[derive(Default)]
struct Conversion {
    notes: Vec<String>,
    detect: String,
    weights: String,
    respond: String,
    capture: String,
    ignore_file: Option<String>,
    block_tcp: Option<String>,
    block_udp: Option<String>,
    tcp_ports: Option<Vec<String>>,
    udp_ports: Option<Vec<String>>,
    advanced_tcp: Option<u16>,
    advanced_udp: Option<u16>,
    /// Where KILL_RUN_CMD was, and its `on-block` line.
    on_block: Option<(String, String)>,
}

impl Conversion {
    /// One setting (`at` names its file, line and key); `Err` says why it is not imported.
    fn setting(&mut self, key: &str, value: String, at: &str) -> Result<(), String> {
        if let Some((_, why)) = NOT_IMPORTED.iter().find(|(k, _)| *k == key) {
            return Err((*why).to_string());
        }
        let port = |v: &str| {
            v.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{v:?} is not a port"))
        };
        match key {
            "TCP_PORTS" => self.tcp_ports = Some(ports(&value)?),
            "UDP_PORTS" => self.udp_ports = Some(ports(&value)?),
            "ADVANCED_PORTS_TCP" => self.advanced_tcp = Some(port(&value)?),
            "ADVANCED_PORTS_UDP" => self.advanced_udp = Some(port(&value)?),
            "ADVANCED_EXCLUDE_TCP" => {
                let _ = writeln!(self.detect, "exclude-tcp = [{}]", ports(&value)?.join(", "));
            }
            "ADVANCED_EXCLUDE_UDP" => {
                let _ = writeln!(self.detect, "exclude-udp = [{}]", ports(&value)?.join(", "));
            }
            "SCAN_TRIGGER" => self.scan_trigger(&value, at)?,
            "IGNORE_FILE" => self.ignore_file = Some(value),
            "BLOCK_TCP" => self.block_tcp = Some(value),
            "BLOCK_UDP" => self.block_udp = Some(value),
            "KILL_RUN_CMD" => {
                let argv: Vec<String> = run_cmd(&value)?.iter().map(|a| toml_string(a)).collect();
                let line = format!("on-block = [{}]\n", argv.join(", "));
                self.on_block = Some((at.to_string(), line));
            }
            "INTERFACE" => {
                let names = interfaces(&value)?;
                let _ = writeln!(self.capture, "interfaces = [{}]", names.join(", "));
            }
            _ => return Err("not a setting scansentry knows".into()),
        }
        Ok(())
    }

    /// SCAN_TRIGGER: PortSentry reacts on the (n+1)th connection to a watched port; here every
    /// distinct watched port counts 1 (every weight 1), so the threshold is n+1.
    fn scan_trigger(&mut self, value: &str, at: &str) -> Result<(), String> {
        let n = value
            .parse::<u32>()
            .ok()
            .filter(|&n| n < 65_536)
            .ok_or_else(|| format!("{value:?} is not a number from 0 to 65535"))?;
        let _ = writeln!(self.detect, "threshold = {}", n + 1);
        // Each port counts 1: the source must be able to hold that many ports.
        if n + 1 > 64 {
            let _ = writeln!(self.detect, "max-ports-per-source = {}", n + 1);
        }
        self.weights.push_str(
            "privileged-port = 1\nunprivileged-port = 1\nordinary = 1\nstealth = 1\n\
             impossible = 1\n",
        );
        self.notes.push(format!(
            "{at}: threshold = {} with every weight 1: scansentry counts distinct \
             ports, where PortSentry counted connections",
            n + 1
        ));
        Ok(())
    }

    /// The trap ports: the lists, or with `advanced` the advanced range; none is `unused` mode.
    fn trap_ports(&mut self, source: &str, advanced: bool) {
        let (tcp, udp) = if advanced {
            for (proto, n) in [("TCP", self.advanced_tcp), ("UDP", self.advanced_udp)] {
                if n.is_none() {
                    self.notes.push(format!(
                        "{source}: --advanced, but no ADVANCED_PORTS_{proto}: no {proto} trap ports"
                    ));
                }
            }
            let range = |n: Option<u16>| n.map(|n| vec![format!("\"1-{n}\"")]);
            (range(self.advanced_tcp), range(self.advanced_udp))
        } else {
            if self.advanced_tcp.is_some() || self.advanced_udp.is_some() {
                self.notes.push(format!(
                    "{source}: ADVANCED_PORTS_*: used only with --advanced (PortSentry's \
                     -atcp/-audp modes); scansentry's default mode = \"unused\" watches every \
                     unbound port"
                ));
            }
            (self.tcp_ports.take(), self.udp_ports.take())
        };
        let (tcp, udp) = (tcp.unwrap_or_default(), udp.unwrap_or_default());
        if tcp.is_empty() && udp.is_empty() {
            self.notes.push(format!(
                "{source}: no trap ports imported: mode = \"unused\" (every port without a \
                 listener is a trap)"
            ));
        } else {
            let mut head = String::from("mode = \"listed\"\n");
            let _ = writeln!(head, "tcp-ports = [{}]", tcp.join(", "));
            let _ = writeln!(head, "udp-ports = [{}]", udp.join(", "));
            self.detect.insert_str(0, &head);
        }
    }

    /// BLOCK_*: 0 logs only, 1 blocks (and runs KILL_RUN_CMD), 2 runs KILL_RUN_CMD only.
    /// scansentry answers a scanner whatever protocol it used, so the more active one wins.
    fn block_level(&mut self, source: &str) {
        let level = |v: &Option<String>| match v.as_deref() {
            None | Some("1") => 1,
            Some("2") => 2,
            _ => 0,
        };
        let rank = |l: u8| match l {
            1 => 2,
            2 => 1,
            _ => 0,
        };
        let (tcp_level, udp_level) = (level(&self.block_tcp), level(&self.block_udp));
        let chosen = if rank(tcp_level) >= rank(udp_level) {
            tcp_level
        } else {
            udp_level
        };
        if tcp_level != udp_level {
            self.notes.push(format!(
                "{source}: BLOCK_TCP and BLOCK_UDP differ: scansentry answers a scanner whatever \
                 the protocol it scanned with, so both act as BLOCK_*=\"{chosen}\""
            ));
        }
        match chosen {
            1 => {}
            2 => {
                self.respond
                    .push_str("dry-run = true\non-block-in-dry-run = true\n");
                self.notes.push(format!(
                    "{source}: BLOCK_* = 2: dry-run = true with on-block-in-dry-run: nothing is \
                     blocked, detections are logged and the program runs"
                ));
            }
            _ => {
                self.respond.push_str("dry-run = true\n");
                self.notes.push(format!(
                    "{source}: BLOCK_* = 0: dry-run = true: nothing is blocked, detections are \
                     logged"
                ));
                if let Some((at, _)) = self.on_block.take() {
                    self.notes.push(format!(
                        "{at}: not imported: with BLOCK_* = 0 PortSentry does not run it"
                    ));
                }
            }
        }
        if let Some((_, line)) = self.on_block.take() {
            self.respond.push_str(&line);
        }
    }

    /// The file, its sections in order, each only when it has a line.
    fn finish(self, source: &str) -> Imported {
        let mut toml = format!(
            "# Imported from {source} by sentryctl import-portsentry. Check it with\n\
             # `sentryctl validate FILE`; every key not written here has its default (see\n\
             # scansentry.toml(5)).\n\n[detect]\n{}",
            self.detect
        );
        for (name, lines) in [
            ("detect.weights", &self.weights),
            ("respond", &self.respond),
            ("capture", &self.capture),
        ] {
            if !lines.is_empty() {
                let _ = write!(toml, "\n[{name}]\n{lines}");
            }
        }
        Imported {
            toml,
            notes: self.notes,
            ignore_file: self.ignore_file,
        }
    }
}

/// PortSentry 2.0's interfaces: `ALL_NLO`, `ALL`, or names, as TOML list items.
fn interfaces(value: &str) -> Result<Vec<String>, String> {
    let names: Vec<&str> = value.split([',', ' ']).filter(|s| !s.is_empty()).collect();
    let special = |n: &str| ["ALL_NLO", "ALL", "any"].contains(&n);
    match names.as_slice() {
        [] => Err("no interface named".into()),
        [one] if special(one) => Ok(vec![toml_string(one)]),
        many => many
            .iter()
            .map(|&n| {
                let valid = !special(n)
                    && n.len() < 16
                    && !n.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control());
                if valid {
                    Ok(toml_string(n))
                } else {
                    Err(format!(
                        "{n:?} is not an interface name (or not alone in the list)"
                    ))
                }
            })
            .collect(),
    }
}

/// KILL_RUN_CMD as an argument vector: PortSentry ran it through a shell; scansentry runs a
/// program directly, so only a plain command line converts.
fn run_cmd(cmd: &str) -> Result<Vec<String>, String> {
    if cmd.trim().is_empty() {
        return Err("empty".into());
    }
    if let Some(c) = cmd.chars().find(|c| c.is_control()) {
        return Err(format!("{c:?} is not something a command line holds"));
    }
    if let Some(c) = cmd.chars().find(|c| matches!(c, '{' | '}')) {
        return Err(format!(
            "{c:?} has a meaning in scansentry's placeholders; put the command in a script"
        ));
    }
    if let Some(c) = cmd.chars().find(|c| {
        matches!(
            c,
            '|' | ';' | '&' | '>' | '<' | '`' | '\'' | '"' | '(' | '*'
        )
    }) {
        return Err(format!(
            "{c:?} needs a shell; put the command in a script and name the script"
        ));
    }
    let argv: Vec<String> = cmd
        .split_whitespace()
        .map(|a| {
            a.replace("$TARGET$", "{addr}")
                .replace("$PORT$", "{ports}")
                .replace("$MODE$", "{kind}")
        })
        .collect();
    if !argv[0].starts_with('/') {
        return Err(format!("{:?} is not an absolute path", argv[0]));
    }
    if let Some(a) = argv.iter().find(|a| a.contains('$')) {
        return Err(format!(
            "{a:?}: only $TARGET$, $PORT$ and $MODE$ have a meaning here"
        ));
    }
    Ok(argv)
}

/// The lines of a PortSentry ignore file as `[never-block] addresses`: addresses, and
/// `address/bits` networks (PortSentry 1.2 also allowed a dotted mask). Loopback and `0.0.0.0`
/// are left out (loopback is always on the list; `0.0.0.0` matches nothing). Returns the TOML
/// line and notes.
pub fn ignore_entries(text: &str, path: &str) -> (String, Vec<String>) {
    let mut nets = Vec::new();
    let mut notes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let parsed = match line.split_once('/') {
            Some((addr, mask)) => addr.parse::<std::net::IpAddr>().ok().and_then(|a| {
                let bits = mask.parse::<u8>().ok().or_else(|| {
                    mask.parse::<std::net::Ipv4Addr>()
                        .ok()
                        .and_then(|m| u8::try_from(m.to_bits().count_ones()).ok())
                })?;
                ipnet::IpNet::new(a, bits).ok().map(|n| n.trunc())
            }),
            None => line
                .parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from),
        };
        match parsed {
            Some(net) if net.addr().is_loopback() || net.addr().is_unspecified() => {}
            Some(net) => nets.push(toml_string(&crate::report::source_text(&net))),
            None => notes.push(format!(
                "{path}:{}: not imported: {line:?} is not an address or network",
                n + 1
            )),
        }
    }
    (format!("addresses = [{}]\n", nets.join(", ")), notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PortSentry 1.2's stock portsentry.conf, as Debian ships it (comments shortened).
    const PORTSENTRY_1_2: &str = r#"
# PortSentry Configuration
TCP_PORTS="1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771,32772,32773,32774,40421,49724,54320"
UDP_PORTS="1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321"
ADVANCED_PORTS_TCP="1023"
ADVANCED_PORTS_UDP="1023"
ADVANCED_EXCLUDE_TCP="113,139"
ADVANCED_EXCLUDE_UDP="520,138,137,67"
IGNORE_FILE="/etc/portsentry/portsentry.ignore"
HISTORY_FILE="/var/lib/portsentry/portsentry.history"
BLOCKED_FILE="/var/lib/portsentry/portsentry.blocked"
RESOLVE_HOST = "0"
BLOCK_UDP="1"
BLOCK_TCP="1"
KILL_ROUTE="/sbin/route add -host $TARGET$ reject"
KILL_HOSTS_DENY="ALL: $TARGET$ : DENY"
#KILL_RUN_CMD_FIRST = "0"
#KILL_RUN_CMD="/some/path/here/script $TARGET$ $PORT$ $MODE$"
#PORT_BANNER="** UNAUTHORIZED ACCESS PROHIBITED *** YOUR CONNECTION ATTEMPT HAS BEEN LOGGED. GO AWAY."
SCAN_TRIGGER="0"
"#;

    /// PortSentry 2.0's stock portsentry.conf (comments shortened).
    const PORTSENTRY_2_0: &str = r#"
# Portsentry 2.0 Configuration
TCP_PORTS="1,7,9,11,15,70,79,80,109,110,111,119,138,139,143,512,513,514,515,540,635,1080,1524,2000,2001,4000,4001,5742,6000,6001,6667,12345,12346,20034,27665,30303,32771,32772,32773,32774,31337,40421,40425,49724,54320"
UDP_PORTS="1,7,9,66,67,68,69,111,137,138,161,162,474,513,517,518,635,640,641,666,700,2049,31335,27444,34555,32770,32771,32772,32773,32774,31337,54321"
IGNORE_FILE="/etc/portsentry/portsentry.ignore"
HISTORY_FILE="/var/lib/portsentry/portsentry.history"
BLOCKED_FILE="/var/lib/portsentry/portsentry.blocked"
RESOLVE_HOST = "0"
BLOCK_UDP="0"
BLOCK_TCP="0"
KILL_ROUTE="/sbin/iptables -I INPUT -s $TARGET$ -j DROP"
KILL_HOSTS_DENY="ALL: $TARGET$ : DENY"
KILL_RUN_CMD="/usr/local/bin/notify-admin $TARGET$ $PORT$ $MODE$"
SCAN_TRIGGER="0"
"#;

    const IGNORE: &str = "# PortSentry ignore file\n127.0.0.1/32\n0.0.0.0\n\
                          198.51.100.7\n203.0.113.0/255.255.255.0\n2001:db8::/32\nnot-an-ip\n";

    fn valid(toml: &str) -> crate::config::Config {
        crate::config::from_toml(toml, std::path::Path::new("imported.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{toml}"))
    }

    #[test]
    fn portsentry_1_2_stock_config() {
        let i = convert(PORTSENTRY_1_2, "portsentry.conf", false);
        let c = valid(&i.toml);
        assert_eq!(
            i.ignore_file.as_deref(),
            Some("/etc/portsentry/portsentry.ignore")
        );
        match &c.traps.mode {
            crate::detect::traps::TrapMode::Listed { tcp, udp } => {
                assert_eq!((tcp.len(), udp.len()), (26, 21));
                assert!(tcp.contains(31337) && udp.contains(54321) && !tcp.contains(22));
            }
            other => panic!("{other:?}"),
        }
        assert!(c.traps.exclude_tcp.contains(113) && c.traps.exclude_udp.contains(520));
        // SCAN_TRIGGER="0": the first watched port is enough.
        assert_eq!(c.detector.threshold, 1);
        assert!(!c.respond.dry_run);
        let joined = i.notes.join("\n");
        for key in [
            "KILL_ROUTE",
            "KILL_HOSTS_DENY",
            "RESOLVE_HOST",
            "HISTORY_FILE",
            "BLOCKED_FILE",
            "ADVANCED_PORTS_*",
        ] {
            assert!(joined.contains(key), "no note on {key}:\n{joined}");
        }
        assert!(joined.contains("portsentry.conf:15: KILL_ROUTE: not imported"));
    }

    #[test]
    fn the_advanced_range_on_request() {
        let i = convert(PORTSENTRY_1_2, "portsentry.conf", true);
        match valid(&i.toml).traps.mode {
            crate::detect::traps::TrapMode::Listed { tcp, udp } => {
                assert_eq!((tcp.len(), udp.len()), (1023, 1023));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn portsentry_2_0_stock_config() {
        let i = convert(PORTSENTRY_2_0, "/etc/portsentry/portsentry.conf", false);
        let c = valid(&i.toml);
        // BLOCK_* = 0: logging only, and no KILL_RUN_CMD either.
        assert!(c.respond.dry_run);
        assert!(c.respond.on_block.is_empty());
        assert!(i.notes.iter().any(|n| {
            n.contains("KILL_RUN_CMD: not imported: with BLOCK_* = 0 PortSentry does not run it")
        }));
        // BLOCK_* = 2: the program runs, nothing is blocked.
        let run_only = PORTSENTRY_2_0
            .replace("BLOCK_UDP=\"0\"", "BLOCK_UDP=\"2\"")
            .replace("BLOCK_TCP=\"0\"", "BLOCK_TCP=\"2\"");
        let c2 = valid(&convert(&run_only, "p.conf", false).toml);
        assert!(c2.respond.dry_run && c2.respond.on_block_in_dry_run);
        assert!(!c.respond.on_block_in_dry_run);
        assert_eq!(
            c2.respond.on_block,
            ["/usr/local/bin/notify-admin", "{addr}", "{ports}", "{kind}"]
        );
        match &c.traps.mode {
            crate::detect::traps::TrapMode::Listed { tcp, .. } => assert_eq!(tcp.len(), 45),
            other => panic!("{other:?}"),
        }
        assert!(i.notes.iter().any(|n| n.contains("dry-run = true")));
    }

    #[test]
    fn shell_commands_and_unknown_keys_are_listed_not_guessed() {
        let i = convert(
            "KILL_RUN_CMD=\"/bin/echo $TARGET$ >> /tmp/log\"\nFOO=\"1\"\nTCP_PORTS=\"1,x\"\n",
            "p.conf",
            false,
        );
        valid(&i.toml);
        assert_eq!(
            i.notes[..3],
            [
                "p.conf:1: KILL_RUN_CMD: not imported: '>' needs a shell; put the command in a \
                 script and name the script",
                "p.conf:2: FOO: not imported: not a setting scansentry knows",
                "p.conf:3: TCP_PORTS: not imported: \"x\" is not a port",
            ]
        );
    }

    #[test]
    fn the_ignore_file_becomes_addresses() {
        let (line, notes) = ignore_entries(IGNORE, "portsentry.ignore");
        assert_eq!(
            line,
            "addresses = [\"198.51.100.7\", \"203.0.113.0/24\", \"2001:db8::/32\"]\n"
        );
        assert_eq!(
            notes,
            ["portsentry.ignore:7: not imported: \"not-an-ip\" is not an address or network"]
        );
        valid(&format!("[never-block]\n{line}"));
    }

    /// Found by fuzzing: port 0, a backwards range, a huge SCAN_TRIGGER, odd interfaces and
    /// braces in a command once made a configuration the daemon refuses.
    /// Issue 25: every setting PortSentry has and scansentry has not, and each decision taken
    /// once all are read, named with why, word for word (convert became a table and steps).
    #[test]
    fn every_setting_left_out_and_every_decision_is_noted_word_for_word() {
        let conf = "KILL_RUN_CMD_FIRST=\"1\"\nKILL_ROUTE=\"/sbin/route add $TARGET$\"\n\
                    KILL_HOSTS_DENY=\"ALL: $TARGET$\"\nPORT_BANNER=\"go\"\nRESOLVE_HOST=\"0\"\n\
                    HISTORY_FILE=\"/h\"\nBLOCKED_FILE=\"/b\"\nBLOCK_TCP=\"0\"\nBLOCK_UDP=\"2\"\n\
                    KILL_RUN_CMD=\"/bin/notify $TARGET$\"\nADVANCED_PORTS_UDP=\"1024\"\n\
                    SCAN_TRIGGER=\"2\"\n";
        let i = convert(conf, "p.conf", false);
        valid(&i.toml);
        assert_eq!(
            i.notes,
            [
                "p.conf:1: KILL_RUN_CMD_FIRST: not imported: the on-block program always runs \
                 after the block is in the kernel",
                "p.conf:2: KILL_ROUTE: not imported: a shell command per block; scansentry \
                 blocks in its own nftables set over netlink (see [firewall])",
                "p.conf:3: KILL_HOSTS_DENY: not imported: hosts.deny only covers TCP-wrapped \
                 services; the nftables block covers everything",
                "p.conf:4: PORT_BANNER: not imported: scansentry watches packets and opens no \
                 port, so it has no banner to send",
                "p.conf:5: RESOLVE_HOST: not imported: scansentry never resolves names (an \
                 attacker's DNS would see every detection)",
                "p.conf:6: HISTORY_FILE: not imported: blocks and history are kept in \
                 /var/lib/scansentry/state.json ([daemon] state-dir)",
                "p.conf:7: BLOCKED_FILE: not imported: blocks and history are kept in \
                 /var/lib/scansentry/state.json ([daemon] state-dir)",
                "p.conf:12: SCAN_TRIGGER: threshold = 3 with every weight 1: scansentry counts \
                 distinct ports, where PortSentry counted connections",
                "p.conf: ADVANCED_PORTS_*: used only with --advanced (PortSentry's -atcp/-audp \
                 modes); scansentry's default mode = \"unused\" watches every unbound port",
                "p.conf: no trap ports imported: mode = \"unused\" (every port without a \
                 listener is a trap)",
                "p.conf: BLOCK_TCP and BLOCK_UDP differ: scansentry answers a scanner whatever \
                 the protocol it scanned with, so both act as BLOCK_*=\"2\"",
                "p.conf: BLOCK_* = 2: dry-run = true with on-block-in-dry-run: nothing is \
                 blocked, detections are logged and the program runs",
            ]
        );
        let off = convert(
            "BLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\nKILL_RUN_CMD=\"/bin/x\"\n",
            "p.conf",
            true,
        );
        assert_eq!(
            off.notes,
            [
                "p.conf: --advanced, but no ADVANCED_PORTS_TCP: no TCP trap ports",
                "p.conf: --advanced, but no ADVANCED_PORTS_UDP: no UDP trap ports",
                "p.conf: no trap ports imported: mode = \"unused\" (every port without a \
                 listener is a trap)",
                "p.conf: BLOCK_* = 0: dry-run = true: nothing is blocked, detections are logged",
                "p.conf:3: KILL_RUN_CMD: not imported: with BLOCK_* = 0 PortSentry does not run it",
            ]
        );
        assert!(!off.toml.contains("on-block"), "{}", off.toml);
    }

    #[test]
    fn what_the_daemon_would_refuse_is_listed_not_written() {
        let i = convert(
            "TCP_PORTS=\"0,11,15\"\nUDP_PORTS=\"9-1,7\"\nSCAN_TRIGGER=\"4294967295\"\n\
             INTERFACE=\"ALL,eth0\"\nKILL_RUN_CMD=\"/bin/notify {x}\"\nADVANCED_PORTS_TCP=\"0\"\n",
            "p.conf",
            false,
        );
        valid(&i.toml);
        let notes = i.notes.join("\n");
        for expected in [
            "TCP_PORTS: not imported: \"0\" is not a port",
            "UDP_PORTS: not imported: \"9-1\" is not a range of ports",
            "SCAN_TRIGGER: not imported: \"4294967295\" is not a number from 0 to 65535",
            "INTERFACE: not imported: \"ALL\" is not an interface name (or not alone in the list)",
            "KILL_RUN_CMD: not imported: '{' has a meaning in scansentry's placeholders",
            "ADVANCED_PORTS_TCP: not imported: \"0\" is not a port",
        ] {
            assert!(notes.contains(expected), "no {expected:?} in:\n{notes}");
        }
        // Found by fuzzing too: INTERFACE and INTERFACES are one setting (once two keys).
        let both = convert("INTERFACE=\"eth0\"\nINTERFACES=\"eth1\"\n", "p.conf", false);
        assert_eq!(
            valid(&both.toml).capture.interfaces,
            crate::capture::bpf::Interfaces::Named(vec!["eth1".into()])
        );
        // A high trigger: every source must be able to hold that many ports.
        let high = valid(&convert("SCAN_TRIGGER=\"321\"\n", "p.conf", false).toml);
        assert_eq!(
            (high.detector.threshold, high.detector.max_ports_per_source),
            (322, 322)
        );
    }
}
