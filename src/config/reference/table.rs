//! The table itself: every section and key of `scansentry.toml`, in the order the reference
//! shows them. Markup: `` `code` `` only; no `|` (the tables of docs/configuration.md), ASCII plus – — × µ.

use super::Ty::{Bool, Duration, HostNames, Integer, Path, PortRange, Ports, Str, Strings};
use super::{Key, Section};

/// Every section, in the order the reference shows them.
pub static SECTIONS: &[Section] = &[
    DETECT,
    WEIGHTS,
    RESPOND,
    FIREWALL,
    CAPTURE,
    LOG,
    DAEMON,
    NEVER_BLOCK,
    AUDIT,
    AUDIT_ADDRESS,
    FLEET,
    SWEEP,
    METRICS,
];

const DETECT: Section = Section {
    name: "detect",
    example_header: None,
    intro: "Which ports are traps (a probe to any other port never counts), and how the probes \
            of one source are scored.",
    keys: &[
        Key::new(&["mode"], Str, r#""unused""#,
            r#"`"unused"`: every port on which no local socket listens is a trap; a service that starts later is never mistaken for one. `"listed"`: only `tcp-ports`/`udp-ports`/`preset`, PortSentry's classic way (a port with a listener is still never a trap)."#),
        Key::unset(&["preset"], Str, "none",
            r#"`listed` mode: PortSentry 1.2's stock lists by name, `"paranoid"` (its "really anal" list), `"aware"` (the one it enables by default) or `"bare-bones"`."#)
            .examples(&[r#"preset = "aware""#]),
        Key::new(&["tcp-ports", "udp-ports"], Ports, "[]",
            r#"`listed` mode: trap ports, as numbers or `"lo-hi"` ranges; added to the preset."#)
            .examples(&[r#"tcp-ports = [1, 11, "6000-6063"]"#, "udp-ports = [31335]"]),
        Key::new(&["exclude-tcp"], Ports, "[113, 139]",
            "Never traps, in either mode (PortSentry's ADVANCED_EXCLUDE): ident and NetBIOS, whose legitimate traffic often reaches hosts that do not serve them."),
        Key::new(&["exclude-udp"], Ports, "[67, 68, 137, 138, 520]",
            "Never traps, in either mode: DHCP, NetBIOS and RIP, whose legitimate traffic often reaches hosts that do not serve them."),
        Key::new(&["ephemeral-udp"], Str, r#""auto""#,
            r#"UDP ports that are not traps because late replies (a DNS answer after a timeout) land there once their client socket has closed: `"auto"` (the kernel's `net.ipv4.ip_local_port_range`), `"none"`, or a range like `"32768-60999"`."#),
        Key::new(&["tripwire-tcp", "tripwire-udp"], Ports, "[]",
            r#"Tripwire ports, as numbers or `"lo-hi"` ranges (none by default: off): one probe of one of them (SYN, UDP or a stealth flag set; not a bare ACK) is a detection that blocks, whatever the score and `[respond] min-ports` (PortSentry's classic behaviour, for ports nobody legitimate ever touches on this host). Beware: one forged packet from a routable address can then block that address. Every other rule still holds: the direction and checksum checks, `reverse-path`, `protect`, the never-block list, grace periods, and the budget, where a tripwire counts as weak evidence (at most 16 new blocks a minute in one IPv4 /24 or IPv6 /48, and `[respond] max-blocks`). In `listed` mode they are traps too. A tripwire port in `exclude-tcp`/`exclude-udp` (or, for UDP, in an `ephemeral-udp` range) is refused; one with a listener is skipped while it listens, and the log says so."#)
            .examples(&["tripwire-tcp = [2323, \"6000-6002\"]", "tripwire-udp = [31337]"]),
        Key::new(&["threshold"], Integer, "21",
            "Score that makes a detection (1 to 1,000,000). Each distinct trap port a source probes within `window` adds port weight × evidence weight (`[detect.weights]`): with the defaults, 7 privileged SYN ports make a detection, or 21 unprivileged ones, or 4 privileged ports probed with FIN, or one NULL, XMAS or SYN+FIN probe of a privileged port."),
        Key::new(&["window"], Duration, r#""60s""#,
            "How long a probed port keeps counting (1s to 1d)."),
        Key::new(&["max-sources"], Integer, "32768",
            "Sources tracked at most, in each of the two tables (probation, for sources with one probe, and the main table); the one idle longest gives way to a new one, so memory is bounded whatever the traffic."),
        Key::new(&["max-ports-per-source"], Integer, "64",
            "Distinct ports kept per source; the oldest gives way."),
        Key::new(&["ipv4-prefix"], Integer, "32",
            "IPv4 sources are counted per prefix of this length (16 to 32): 32 counts per address, 24 per /24."),
        Key::new(&["ipv6-prefix"], Integer, "64",
            "IPv6 sources are counted (and blocked) per prefix of this length (32 to 128): an IPv6 scanner owns a whole prefix; 128 counts per address."),
        Key::new(&["local-check"], Bool, "true",
            "Leave traffic from the host's own addresses alone (a local `nmap localhost`, seen when capturing on `\"ALL\"`). `false` (or `sentryd -L`) judges it, and reports what it finds without blocking (those addresses are on the never-block list)."),
    ],
};

const WEIGHTS: Section = Section {
    name: "detect.weights",
    example_header: None,
    intro: "Each distinct trap port adds `port weight × evidence weight` (each 1 to 1000).",
    keys: &[
        Key::new(&["privileged-port"], Integer, "3", "Ports 0–1023."),
        Key::new(&["unprivileged-port"], Integer, "1", "Ports 1024–65535."),
        Key::new(
            &["ordinary"],
            Integer,
            "1",
            "SYN and UDP probes: what clients send.",
        ),
        Key::new(
            &["stealth"],
            Integer,
            "2",
            "FIN, FIN+ACK (Maimon), other odd flag sets.",
        ),
        Key::new(
            &["impossible"],
            Integer,
            "7",
            "NULL, XMAS, SYN+FIN, SYN+RST: no TCP stack sends these to open a connection.",
        ),
    ],
};

const RESPOND: Section = Section {
    name: "respond",
    example_header: None,
    intro: "How a scanner is blocked, for how long, and within what budget.",
    keys: &[
        Key::new(&["block-for"], Duration, r#""1h""#,
            "How long a first block lasts (1s to 1 year: `1y`, 365.25 days, the longest any block may be). The kernel forgets the block by itself when it expires."),
        Key::new(&["repeat-factor"], Integer, "2",
            "Each repeat offence multiplies the duration by this (1 to 100): the n-th offence within `remember-offences` is blocked for `block-for` × `repeat-factor`^(n-1), never longer than `max-block-for`."),
        Key::new(&["max-block-for"], Duration, r#""7d""#,
            "The longest a block gets by escalation (at most 1 year)."),
        Key::new(&["remember-offences"], Duration, r#""30d""#,
            r#"How long offences count towards escalation (`"0s"`: never escalate)."#),
        Key::new(&["refresh"], Bool, "false",
            "Set the block of a source detected again while blocked to the full duration again (takes effect in the kernel from Linux 6.12; tested on 6.18 by `tests/nft.rs`'s `blocking_again_refreshes_and_unblocking_removes`); `false` leaves it as it is."),
        Key::new(&["dry-run"], Bool, "false",
            r#"Decide as usual but block nothing: the log says "would block", events `would-block`, and what a dry run would block is kept apart from the blocks in force: in no kernel set, not in the state file, not an offence (the next real block of an address is its offence 1), shown as `[dry run] would block` by `sentryctl list`, `why` and `status` and counted by `scansentry_dry_run_would_block`, under the same `max-blocks`. Blocks in force when it begins by a reload are lifted from the kernel and kept (saved, still counted in force), and put back when it ends if still due; a start in a dry run leaves in the kernel what an earlier run left there (`sentryd --remove-blocks` lifts it). A reload to `false` applies nothing a dry run imagined and says so ("dry run off: N would-be blocks were not applied"). Nothing leaves the host either: no history-file line (fail2ban reads that file and would ban), and the on-block program runs only with `on-block-in-dry-run`."#),
        Key::new(&["max-blocks"], Integer, "65536",
            "Blocks active at most per address family (1 to 10,000,000), a sixteenth of it (16 to 64) in one IPv4 /24 or IPv6 /48 from detections; the last quarter is kept for strong evidence (twice `min-ports` ports or more), the last eighth for strong evidence from networks that hold no block. The kernel's block sets are twice as big and 1,024 more. Past it new detections are logged and refused, so no flood fills the kernel's sets or the daemon's memory; a forger with sources in many networks can still fill `max-blocks` itself, and a real scanner's detection then waits (up to 30s)."),
        Key::new(&["max-new-blocks-per-second"], Integer, "50",
            "New blocks per second at most, per address family, with a burst of as many (1 to 1,000,000); one IPv4 /24 or IPv6 /48 takes at most an eighth of it a second, and the last quarter is kept for scans of twice `min-ports` ports or more. A detection it refuses waits (256 at most, 4 per /24 or /48, 30 s each) and is blocked as soon as the budget allows, the networks that made fewest blocks in the last minute first."),
        Key::new(&["min-ports"], Integer, "3",
            "No automatic block on fewer distinct trap ports than this (1 to 1024), whatever the score: one forged NULL or XMAS packet weighs the whole threshold, and is reported, not blocked; its source is judged again at its next probe. Blocks by hand are not concerned."),
        Key::new(&["reverse-path"], Str, r#""strict""#,
            r#"`"strict"`: block only a source the host routes back by the interface its probe came in on (a probe forged "from" an address of another link is reported, not blocked); `"loose"`: one it routes back at all; `"off"`: no check; `"kernel"`: as the host's `rp_filter` for IPv4 (strict for IPv6). Hosts with asymmetric routing choose `"loose"`."#),
        Key::new(&["protect"], Str, r#""established""#,
            r#"`"established"`: a source with a TCP connection to this host (your SSH session) that began before its probes is reported, not blocked automatically (a block by hand still works); `"none"`: no protection."#),
        Key::new(&["protect-for"], Duration, r#""24h""#,
            r#"How long a session of a minute or more protects its peer after it ended (0s to 30 days; `"0s"`: only connections established now). Lower it on hosts whose public clients hold long connections."#),
        Key::new(&["on-block"], Strings, "[]",
            "A program run on each block: its absolute path, then arguments, run directly (no shell), with `{addr}` (the scanning address), `{source}` (what was blocked: the address or its network), `{kind}` (syn, fin, null, xmas, maimon, odd-flags, udp, ack; joined with +), `{ports}` (22/tcp,53/udp), `{duration}` (seconds) and `{signature}` (the tool the probes looked like, `nmap OS detection (SEQ1, SEQ2, SEQ3)`, or empty) filled in. It is killed after `on-block-timeout`; a failure is logged and never holds up blocking. Examples for a webhook and a mail are installed in `/usr/share/scansentry/on-block/`, with the unit drop-ins they need in `/usr/share/scansentry/systemd/`.")
            .examples(&[r#"on-block = ["/usr/local/bin/notify-scan", "{addr}", "{kind}", "{ports}"]"#]),
        Key::new(&["on-block-timeout"], Duration, r#""10s""#,
            "How long the program may run before it is killed (100ms to 1h)."),
        Key::new(&["on-block-in-dry-run"], Bool, "false",
            "Run the on-block program for what a dry run would block too, with the same placeholders (PortSentry's `BLOCK_TCP=\"2\"`: run the command, block nothing; `sentryctl import-portsentry` sets it). `false`: a dry run runs nothing."),
        Key::new(&["history-file"], Path, r#""""#,
            r#"Append each block to this file in PortSentry's history format (`1763769107 - 11/21/2025 23:51:47 Host: 198.51.100.2/198.51.100.2 Port: 1 TCP Blocked`), for the tools that read it (fail2ban's `portsentry` filter, logwatch). `""` for none; under the systemd unit the file must be in `/var/lib/scansentry`."#)
            .shown(r#"`""` (none)"#)
            .examples(&[r#"history-file = "/var/lib/scansentry/portsentry.history""#]),
    ],
};

const FIREWALL: Section = Section {
    name: "firewall",
    example_header: None,
    intro: "What blocks, and where its rules live.",
    keys: &[
        Key::new(&["backend"], Str, r#""nft""#,
            r#"`"nft"`: nftables sets (the keys below). `"route"`: a blackhole route per block (protocol 246), for hosts without nftables; the other keys of this section then do not apply."#),
        Key::new(&["mode"], Str, r#""own""#,
            r#"`"own"`: sentryd keeps its own table, `inet scansentry`, beside any other ruleset (a drop in any base chain is final). `"attach"`: you declare the sets in a table of your own (the declarations are installed in `/usr/share/scansentry/nft/`) and sentryd only changes their elements; set `table` and `set4` or `set6` then."#),
        Key::new(&["hook"], Str, r#""input""#,
            r#"Own mode: `"input"` (after routing, for traffic to this host), or `"prerouting"` to drop before connection tracking."#),
        Key::new(&["forward"], Bool, "true",
            "Own mode, hook input: a second chain on the forward hook drops blocked sources' traffic through the host too (published container ports, NodePorts, VMs behind DNAT; on a router, all they send through it). `false`: only traffic to the host itself is dropped."),
        Key::new(&["priority"], Integer, "-10",
            "Own mode: the chain's priority (-1000 to 1000); lower runs earlier.")
            .shown("`-10` (`-300` on prerouting)"),
        Key::unset(&["first-line"], Bool, "`true` (`false` in attach mode)",
            "The kernel's first line, a chain of the table (on input, after connection tracking and after own mode's block chain) that holds a source for `first-line-hold` at packet speed, before the daemon has seen a packet, once it has probed, of the ports nothing listens on, 2 privileged ones scanners probe first (23 and 25, for instance), 3 other privileged ones, or 6 unprivileged ones by SYN (one tripwire port, `[detect] tripwire-tcp`/`tripwire-udp`, is enough); the daemon then blocks it or lifts the hold. It skips the never-block list, protected peers, listening ports, RSTs, bare ACKs, UDP to the ephemeral ports and sources with no route back through their interface. `false`: only the daemon blocks. Attach mode (off by default there): include `/usr/share/scansentry/nft/first-line.nft` in your table, an `inet` one, first; sentryd refuses to start unless its sets, counters and chains are there, with `first-line-hold` and `first-line-log-group` as the file has them, and only changes its sets' elements; with it off, an included snippet is taken out of service (every address in its `allow4`/`allow6`). Needs nftables; off with `[detect] mode = \"listed\"` and `[capture] method = \"connect\"`, where it would count ports that are not traps.")
            .examples(&["first-line = true"]),
        Key::new(&["first-line-hold"], Duration, r#""5s""#,
            "How long the first line holds a source unless the daemon blocks it or lifts the hold first (1 s to 60 s); the source's packets do not make it longer. Without a daemon, this is the most a hold costs a client. Attach mode: must be the `timeout` of `hold4` and `hold6` in the included snippet (sentryd checks at start)."),
        Key::new(&["first-line-log-group"], Integer, "2701",
            "The nfnetlink_log group the first line reports each hold to, the packet with it (0 to 65535), which the daemon listens on; pick another if a program of yours uses 2701. Attach mode: must be the `group` of the log rules in the included snippet (sentryd checks at start)."),
        Key::unset(&["family"], Str, r#"`"inet"`"#,
            r#"Attach mode: the table's family, `"inet"`, `"ip"` or `"ip6"`."#)
            .examples(&[r#"family = "inet""#]),
        Key::unset(&["table"], Str, "none", "Attach mode: the table that holds the sets.")
            .examples(&[r#"table = "filter""#]),
        Key::unset(&["set4", "set6"], Str, "none",
            "Attach mode: the IPv4 and IPv6 block sets (`type ipv4_addr`/`ipv6_addr; flags interval, timeout`); at least one.")
            .examples(&[r#"set4 = "scansentry4""#, r#"set6 = "scansentry6""#]),
    ],
};

const CAPTURE: Section = Section {
    name: "capture",
    example_header: None,
    intro: "How probes are seen.",
    keys: &[
        Key::new(
            &["interfaces"],
            Strings,
            r#"["ALL_NLO"]"#,
            r#"`["ALL_NLO"]`: every interface but loopback (through the `any` device, so interfaces added later are covered); `["ALL"]` or `["any"]`: loopback too; or names, `["eth0", "eth1"]`, one capture each."#,
        ),
        Key::new(
            &["immediate"],
            Bool,
            "true",
            "Hand each frame to the detector at once (microseconds). `false`: in batches, up to 5 ms late, for less than half the CPU per frame under a flood (0.7 µs against 1.6 µs, `cargo bench --bench flood`).",
        ),
        Key::new(
            &["method"],
            Str,
            r#""pcap""#,
            r#"`"pcap"`: libpcap on `interfaces`, every probe kind (stealth scans too), nothing bound. `"raw"`: the same filter, compiled by libpcap for raw IP, on a cooked packet socket read directly (libpcap is still needed). `"connect"`: with `[detect] mode = "listed"`, bind the listed trap ports and count only completed TCP handshakes and UDP datagrams (PortSentry's classic mode; no capture privilege needed, but ports below 1024 need root or `CAP_NET_BIND_SERVICE`, and under the unit it needs `IPAddressDeny=` lifted in a drop-in)."#,
        ),
        Key::new(
            &["banner"],
            Str,
            r#""""#,
            "Connect mode: a line written to each TCP client before it is disconnected (PortSentry's `PORT_BANNER`).",
        ),
    ],
};

const LOG: Section = Section {
    name: "log",
    example_header: None,
    intro: "Where the daemon's event lines go, one event per line, facts first.",
    keys: &[
        Key::new(
            &["target"],
            Str,
            r#""stdout""#,
            r#"`"stdout"` (events on standard output, warnings on standard error; under systemd the journal takes both, as lines), `"syslog"` (`/dev/log`, facility daemon, with severities) or `"journald"` (the journal's native socket, with priorities and each decision's facts as `SCANSENTRY_*` fields)."#,
        ),
        Key::new(
            &["format"],
            Str,
            r#""text""#,
            r#"`"text"` (`<time> blocked 203.0.113.7 for 1h: syn scan, 25 ports in 3.0s (offence 2)`) or `"json"` (one object per line: `timestamp`, `level`, `message` and a decision's fields). Switched on reload. The journal takes fields, not lines: `format` does not apply to it."#,
        ),
    ],
};

const DAEMON: Section = Section {
    name: "daemon",
    example_header: None,
    intro: "",
    keys: &[
        Key::new(
            &["socket"],
            Path,
            r#""/run/scansentry/control.sock""#,
            "The control socket `sentryctl` talks to (its `--socket` option names another).",
        ),
        Key::new(
            &["state-dir"],
            Path,
            r#""/var/lib/scansentry""#,
            "Where blocks and offence history are kept across restarts.",
        ),
    ],
};

const NEVER_BLOCK: Section = Section {
    name: "never-block",
    example_header: None,
    intro: "",
    keys: &[
        Key::new(
            &["addresses"],
            Strings,
            "[]",
            "Addresses and CIDRs never acted on, on top of those found on the host (interface addresses, default gateways, nameservers, loopback). A CIDR with host bits set (`198.51.100.7/24`) is refused as a likely typo.",
        ),
        Key::new(
            &["file"],
            Path,
            r#""/etc/scansentry/ignore""#,
            r#"Absolute path of a file with one address or CIDR per line; `#` starts a comment. A bad line is reported with its number and the rest still loads. The default file may be missing; any other named here must exist. `""` for none."#,
        ),
    ],
};

const AUDIT: Section = Section {
    name: "audit",
    example_header: None,
    intro: r#"The local exposure audit: the sockets that accept traffic here (TCP listeners, bound UDP sockets, from the kernel's socket table), with their processes and names, checked against the audit's first look (its baseline, kept in the state directory) and the lists below. Rules are `"port/proto"` (`"22/tcp"`) or `"rpcname/proto"` (`"nfs/udp"`); a socket open and neither in the baseline nor in a list is reported as new, one of the baseline or of `expect` not open as gone."#,
    keys: &[
        Key::new(
            &["enabled"],
            Bool,
            "true",
            "The daemon runs the audit every `interval` (`sentryctl audit` runs it on demand).",
        ),
        Key::new(&["interval"], Duration, r#""5m""#, "How often (10s to 1d)."),
        Key::new(
            &["severity"],
            Str,
            r#""warning""#,
            r#"How the daemon logs findings: `"error"`, `"warning"` or `"info"`."#,
        ),
        Key::new(
            &["tcp", "udp"],
            Bool,
            "true",
            "Which protocols are looked at.",
        ),
        Key::new(
            &["ports"],
            PortRange,
            r#""1-65535""#,
            "Only ports in this range are looked at.",
        ),
        Key::new(
            &["required"],
            Strings,
            "[]",
            "Rules that must be open; reported as missing otherwise.",
        ),
        Key::new(&["optional"], Strings, "[]", "Rules that may be open."),
        Key::new(&["ignore"], Strings, "[]", "Rules never reported."),
        Key::new(
            &["skip"],
            Strings,
            "[]",
            "Rules not even looked at (not kept in the history either).",
        ),
        Key::new(
            &["expect"],
            Strings,
            "[]",
            "Rules that listen here: silent when open, reported as gone (at info) when not.",
        ),
        Key::new(
            &["expect-file"],
            Path,
            r#""/etc/scansentry/audit-expect.toml""#,
            r#"Absolute path of a file holding one more `expect = [...]` list, read at each audit; the packages write it at install from what listened then (`sentryctl audit --print-expect`), and never again. The default file may be missing; any other named here must exist. `""` for none."#,
        ),
    ],
};

const AUDIT_ADDRESS: Section = Section {
    name: r#"audit.address."ADDR""#,
    example_header: Some(r#"audit.address."198.51.100.1""#),
    intro: "`[audit.address.\"ADDR\"]`: the same five lists for one address, on top of those above; a service bound to every address counts for each.",
    keys: &[
        Key::unset(
            &["required"],
            Strings,
            "`[]`",
            "Rules that must be open at this address.",
        )
        .examples(&[r#"required = ["22/tcp"]"#]),
        Key::unset(
            &["optional"],
            Strings,
            "`[]`",
            "Rules that may be open at this address.",
        )
        .examples(&[r#"optional = ["443/tcp"]"#]),
        Key::unset(
            &["ignore"],
            Strings,
            "`[]`",
            "Rules never reported at this address.",
        )
        .examples(&[r#"ignore = ["68/udp"]"#]),
        Key::unset(
            &["skip"],
            Strings,
            "`[]`",
            "Rules not looked at at this address.",
        )
        .examples(&[r#"skip = ["nfs/udp"]"#]),
        Key::unset(
            &["expect"],
            Strings,
            "`[]`",
            "Rules that listen at this address.",
        )
        .examples(&[r#"expect = ["631/tcp"]"#]),
    ],
};

const FLEET: Section = Section {
    name: "fleet",
    example_header: None,
    intro: "Fleet mode: hosts share their blocks over NATS; each takes the others' through its own rules (never-block list, protected peers, the limits below). Hosts also tell each other the probes they see, and the owner of each scanner prefix's count blocks a sweep across hosts (`[fleet.sweep]`).",
    keys: &[
        Key::new(&["enabled"], Bool, "false", "Fleet mode on (it needs `servers`)."),
        Key::new(&["servers"], Strings, "[]",
            r#"NATS servers, `"tls://HOST:PORT"` (which needs `tls-ca`) or `"nats://HOST:PORT"` (over TLS too when `tls-ca` is set; without it, only with `insecure`). Those given by address are on the never-block list. Under the unit, the drop-in `/usr/share/scansentry/systemd/fleet.conf` must allow their addresses (`IPAddressAllow=`). The bucket of active blocks is made once, before the first host starts, by `sentryctl fleet init` (as a NATS user that may make streams); hosts never make it, and refuse one that allows rollups, purges or deletes, republishes, mirrors or sources."#)
            .examples(&[r#"servers = ["tls://198.51.100.10:4222"]"#]),
        Key::new(&["host"], Str, r#""""#,
            r#"This host's name in the fleet: 1 to 64 letters, digits, `-` or `_` (a token of a NATS subject); `""` for the system's host name."#),
        Key::new(&["subject-prefix"], Str, r#""scansentry""#,
            "The first tokens of every subject: PREFIX.block.HOST and so on."),
        Key::new(&["share", "accept"], Strings, r#"["blocks", "probes"]"#,
            "What this host publishes, and what it takes from the others."),
        Key::new(&["max-block-for"], Duration, r#""1d""#,
            "The longest block taken from another host; longer ones are cut to it."),
        Key::new(&["max-blocks-per-origin-per-minute"], Integer, "60",
            "Blocks taken from one origin in a minute at most (1 to 100,000), and unblocks as many; the rest are refused. One origin's blocks also take at most four /24s (1,024 IPv4 addresses) or four /48s (262,144 IPv6 /64s) of address space a minute, and hold at most a quarter of `[respond] max-blocks` and 64 /24s (16,384 IPv4 addresses) or 64 /48s (4,194,304 IPv6 /64s) of address space in force at any time (or that quarter of `max-blocks`, if larger)."),
        Key::new(&["accept-wide"], HostNames, "[]",
            r#"The hosts whose blocks by hand wider than an IPv4 /24 or an IPv6 /48 this host takes: `["admin-1"]`. A wide block counts its real size: a named host's blocks by hand take at most a /8's address space (16,777,216 IPv4 addresses; a /32's, 4,294,967,296 IPv6 /64s) a minute and in force at once, its other blocks counted in. The old form `true` is refused, saying the new one. No fleet block of an unroutable, link-local or metadata range is ever taken, nor a detection or sweep wider than a /24 or /48, nor a wide block from a host not named."#),
        Key::new(&["members"], Strings, "[]",
            r#"The fleet's members, by address or network (a /24 or /48 at most, routable): `["198.51.100.1", "2001:db8::1"]`. They go on the never-block list (`fleet member`), so no block, the fleet's or a local one, ever holds them. The addresses a member claims in its heartbeats are kept from the fleet's blocks without this."#)
            .examples(&[r#"members = ["198.51.100.1", "2001:db8::1"]"#]),
        Key::new(&["user"], Str, r#""""#,
            "The user to log in as, with `password-file`.")
            .shown("none")
            .examples(&[r#"user = "web-3""#]),
        Key::new(&["password-file", "creds-file", "nkey-file"], Path, r#""""#,
            "One way to log in: `user` with a file holding the password, a NATS creds file (a JWT and an nkey seed), or an nkey seed file (absolute paths).")
            .shown("none")
            .examples(&[
                r#"password-file = "/etc/scansentry/fleet.password""#,
                r#"creds-file = "/etc/scansentry/fleet.creds""#,
                r#"nkey-file = "/etc/scansentry/fleet.nk""#,
            ]),
        Key::new(&["tls-ca", "tls-cert", "tls-key"], Path, r#""""#,
            "TLS: the CA of the servers' certificates; this host's certificate and key when the servers ask for one (both or neither).")
            .shown("none")
            .examples(&[
                r#"tls-ca = "/etc/scansentry/fleet-ca.pem""#,
                r#"tls-cert = "/etc/scansentry/fleet.pem""#,
                r#"tls-key = "/etc/scansentry/fleet.key""#,
            ]),
        Key::new(&["insecure"], Bool, "false",
            "Allow `nats://` servers without `tls-ca`, and a password sent without TLS (a lab): messages go in clear, and anyone who reaches the server may publish. Refused otherwise; when set, a warning at every start."),
    ],
};

const SWEEP: Section = Section {
    name: "fleet.sweep",
    example_header: None,
    intro: "`[fleet.sweep]`, a sweep across the fleet by one scanner prefix: `hosts` hosts probed on one port, or `pairs` distinct (host, port) pairs, within `window`. `share` and `accept` `\"probes\"` turn telling and counting on and off.",
    keys: &[
        Key::new(
            &["hosts"],
            Integer,
            "8",
            "Distinct hosts probed on one port by one scanner prefix that make a sweep (3 to 4,096).",
        ),
        Key::new(
            &["pairs"],
            Integer,
            "16",
            "Distinct (host, port) pairs that make a sweep (3 to 4,096); one host counts for at most a third of them, so a sweep takes three hosts at least.",
        ),
        Key::new(
            &["window"],
            Duration,
            r#""60s""#,
            "Over how long (1s to 1d).",
        ),
    ],
};

const METRICS: Section = Section {
    name: "metrics",
    example_header: None,
    intro: "",
    keys: &[
        Key::new(&["listen"], Str, r#""""#,
            r#"The Prometheus endpoint (`GET /metrics`): `"ADDRESS:PORT"` (`"127.0.0.1:9464"`, `"[::1]:9464"`) or an absolute path for a Unix socket; `""` for none. Read at start (a reload that changes it says the change waits for the next start). Under the unit, TCP needs the drop-in `/usr/share/scansentry/systemd/metrics.conf`."#)
            .shown(r#"`""` (off)"#),
    ],
};
