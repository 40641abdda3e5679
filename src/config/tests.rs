use super::*;
use crate::wire::Proto;

fn check(text: &str) -> Result<Config, String> {
    from_toml(text, Path::new("/etc/scansentry/scansentry.toml")).map_err(|e| e.to_string())
}

fn problems(text: &str) -> Vec<String> {
    match from_toml(text, Path::new("t.toml")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected semantic problems, got {other:?}"),
    }
}

#[test]
fn an_empty_file_is_the_built_in_default() {
    assert_eq!(check("").expect("valid"), Config::default());
}

#[test]
fn the_default_matches_the_detector_defaults_and_is_safe() {
    let c = Config::default();
    assert_eq!(c.detector, DetectorConfig::default());
    assert_eq!(c.traps.mode, TrapMode::Unused);
    assert!(c.traps.exclude_tcp.contains(113) && c.traps.exclude_udp.contains(137));
    assert_eq!(c.traps.ephemeral_udp, EphemeralUdp::Auto);
    assert_eq!(c.respond.block_for, Duration::from_secs(3600));
    assert!(!c.respond.dry_run);
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let err = check("[detect]\nthreshold = 5\ntreshold = 20\n").unwrap_err();
    assert!(
        err.starts_with(
            "invalid configuration in /etc/scansentry/scansentry.toml\n\
             TOML parse error at line 3, column 1"
        ),
        "{err}"
    );
    assert!(err.contains("unknown field `treshold`"), "{err}");
    let err = check("[detcet]\n").unwrap_err();
    assert!(
        err.contains("line 1, column 2") && err.contains("unknown field `detcet`"),
        "{err}"
    );
}

#[test]
fn wrong_types_are_parse_errors_with_a_position() {
    let err = check("[respond]\ndry-run = \"yes\"\n").unwrap_err();
    assert!(err.contains("line 2, column 11"), "{err}");
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let p = problems(
        r#"
[detect]
mode = "listed"
preset = "anal"
tcp-ports = [0, "6063-6000", 70000, "ssh", 22]
window = "0s"
threshold = 0
ipv6-prefix = 8

[detect.weights]
stealth = 0

[respond]
block-for = "1 fortnight"

[never-block]
addresses = ["198.51.100.7", "10.0.0.300/8", "198.51.100.7/24", "2001:db8::/32"]
"#,
    );
    assert_eq!(
        p,
        [
            "[detect.weights] stealth = 0: must be from 1 to 1000",
            "[detect] threshold = 0: must be from 1 to 1000000",
            "[detect] window = \"0s\": must be at least 1s",
            "[detect] ipv6-prefix = 8: must be from 32 to 128",
            "[detect] tcp-ports: port 0 is not a valid port (1-65535)",
            "[detect] tcp-ports: range \"6063-6000\" is backwards (write \"6000-6063\")",
            "[detect] tcp-ports: 70000 is not a valid port (1-65535)",
            "[detect] tcp-ports: \"ssh\" is not a port or a range like \"6000-6063\"",
            "[detect] preset = \"anal\": unknown preset, expected one of \"paranoid\", \"aware\", \"bare-bones\"",
            "[respond] block-for = \"1 fortnight\": not a duration (unknown unit \"fortnight\"); write it like \"90s\", \"15m\", \"1h\" or \"7d\"",
            "[never-block] addresses: \"10.0.0.300/8\" is not an IP address or CIDR (like \"198.51.100.7\" or \"2001:db8::/32\")",
            "[never-block] addresses: \"198.51.100.7/24\" is not an IP address or CIDR (like \"198.51.100.7\" or \"2001:db8::/32\")",
        ]
    );
}

#[test]
fn invalid_errors_print_one_line_per_problem_with_the_path() {
    let err = check("[detect]\nwindow = \"0s\"\nthreshold = 0\n").unwrap_err();
    assert_eq!(
        err,
        "/etc/scansentry/scansentry.toml: [detect] threshold = 0: must be from 1 to 1000000\n\
         /etc/scansentry/scansentry.toml: [detect] window = \"0s\": must be at least 1s"
    );
}

#[test]
fn listed_mode_with_a_preset_and_extra_ports() {
    let c = check(
        "[detect]\nmode = \"listed\"\npreset = \"aware\"\ntcp-ports = [\"6000-6063\", 8080]\n",
    )
    .expect("valid");
    let TrapMode::Listed { tcp, udp } = &c.traps.mode else {
        panic!("listed mode expected");
    };
    assert!(tcp.contains(31337) && tcp.contains(6000) && tcp.contains(6063) && tcp.contains(8080));
    assert!(!tcp.contains(6064));
    assert!(udp.contains(31335));
}

#[test]
fn listed_mode_needs_ports_and_unused_mode_refuses_them() {
    assert_eq!(
        problems("[detect]\nmode = \"listed\"\n"),
        ["[detect] mode = \"listed\": no trap ports; set tcp-ports, udp-ports or a preset"]
    );
    assert_eq!(
        problems("[detect]\ntcp-ports = [1]\n"),
        [
            "[detect] mode = \"unused\": preset, tcp-ports and udp-ports only apply to mode = \"listed\""
        ]
    );
    assert_eq!(
        problems("[detect]\nmode = \"stealth\"\n"),
        ["[detect] mode = \"stealth\": expected \"unused\" or \"listed\""]
    );
}

#[test]
fn a_threshold_that_can_never_be_reached_is_refused() {
    assert_eq!(
        problems("[detect]\nthreshold = 1000\nmax-ports-per-source = 10\n"),
        [
            "[detect] threshold = 1000: can never be reached with max-ports-per-source = 10 and these weights"
        ]
    );
}

#[test]
fn ephemeral_udp_accepts_auto_none_or_a_range() {
    let range = |t: &str| check(&format!("[detect]\nephemeral-udp = {t:?}\n"));
    assert_eq!(
        range("none").unwrap().traps.ephemeral_udp,
        EphemeralUdp::None
    );
    assert_eq!(
        range("49152-65535").unwrap().traps.ephemeral_udp,
        EphemeralUdp::Range(49152..=65535)
    );
    assert_eq!(
        problems("[detect]\nephemeral-udp = \"high\"\n"),
        [
            "[detect] ephemeral-udp = \"high\": \"high\" is not a port or a range like \"6000-6063\"; or \"auto\", or \"none\""
        ]
    );
}

#[test]
fn never_block_file_must_be_absolute() {
    assert_eq!(
        problems("[never-block]\nfile = \"ignore.txt\"\n"),
        ["[never-block] file = \"ignore.txt\": must be an absolute path (or \"\" for none)"]
    );
    assert_eq!(
        check("").unwrap().never_block.file.as_deref(),
        Some(Path::new(crate::config::DEFAULT_IGNORE_FILE))
    );
    assert_eq!(
        check("[never-block]\nfile = \"\"\n")
            .unwrap()
            .never_block
            .file,
        None
    );
    let c =
        check("[never-block]\nfile = \"/etc/scansentry/ignore\"\naddresses = [\"2001:db8::1\"]\n")
            .unwrap();
    assert_eq!(
        c.never_block.file.as_deref(),
        Some(Path::new("/etc/scansentry/ignore"))
    );
    assert_eq!(
        c.never_block.addresses,
        ["2001:db8::1/128".parse::<IpNet>().unwrap()]
    );
}

#[test]
fn the_shipped_example_validates_and_differs_from_nothing_it_claims() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/scansentry.toml");
    let text = std::fs::read_to_string(&path).expect("packaging/scansentry.toml exists");
    let c = from_toml(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    // The example documents the defaults: loading it must give the built-in default.
    assert_eq!(c, Config::default());
}

#[test]
fn a_file_writable_by_others_gets_a_warning() {
    let path = Path::new("/etc/scansentry/scansentry.toml");
    let text = "[respond]\nblock-for = \"2h\"\n";
    let loaded = from_file(path, text, Some(0o100_666)).unwrap();
    assert_eq!(loaded.config.respond.block_for, Duration::from_secs(7200));
    assert_eq!(loaded.origin, Origin::File(path.to_path_buf()));
    assert_eq!(
        loaded.warnings,
        [
            "/etc/scansentry/scansentry.toml is writable by other users, and it controls the \
          firewall: chmod o-w /etc/scansentry/scansentry.toml"
        ]
    );
    for mode in [Some(0o100_644), Some(0o100_664), Some(0o100_600), None] {
        assert!(
            from_file(path, text, mode).unwrap().warnings.is_empty(),
            "{mode:?}"
        );
    }
}

#[test]
fn a_bad_file_names_itself_whatever_its_mode() {
    let err = from_file(
        Path::new("x.toml"),
        "[detect]\nwindow = \"0s\"\n",
        Some(0o666),
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "x.toml: [detect] window = \"0s\": must be at least 1s"
    );
}

#[test]
fn firewall_own_mode_hooks_and_priorities() {
    let c = check("[firewall]\nhook = \"prerouting\"\n").unwrap();
    assert_eq!(
        c.backend,
        crate::config::Backend::Nft(NftConfig::Own {
            forward: false,
            hook: Hook::Prerouting,
            priority: -300,
            set_size: 2 * 65536 + 1024,
            first_line: Some(FIRST_LINE),
        })
    );
    let c = check("[firewall]\npriority = -150\n[respond]\nmax-blocks = 1000\n").unwrap();
    assert_eq!(
        c.backend,
        crate::config::Backend::Nft(NftConfig::Own {
            forward: true,
            hook: Hook::Input,
            priority: -150,
            set_size: 3024,
            first_line: Some(FIRST_LINE),
        })
    );
    let c = check(
        "[firewall]
forward = false
",
    )
    .unwrap();
    assert!(matches!(
        c.backend,
        crate::config::Backend::Nft(NftConfig::Own { forward: false, .. })
    ));
    assert_eq!(
        problems(
            "[firewall]
hook = \"prerouting\"\nforward = true\n"
        ),
        [
            "[firewall] forward: only applies to hook = \"input\" (a prerouting chain drops \
          forwarded traffic too)"
        ]
    );
}

/// The first line's defaults.
const FIRST_LINE: crate::config::FirstLine = crate::config::FirstLine {
    hold: std::time::Duration::from_secs(5),
    log_group: 2701,
};

/// Issue 27: the kernel's first line is on by default in own mode, off elsewhere, and
/// `first-line = true` where it cannot be is refused with why.
#[test]
fn the_first_line_is_on_in_own_mode_and_refused_where_it_cannot_be() {
    let own = |text: &str| match check(text).unwrap().backend {
        crate::config::Backend::Nft(NftConfig::Own { first_line, .. }) => first_line,
        other => panic!("{other:?}"),
    };
    assert_eq!(own(""), Some(FIRST_LINE));
    assert_eq!(own("[firewall]\nfirst-line = false\n"), None);
    assert_eq!(
        own("[firewall]\nfirst-line-hold = \"60s\"\nfirst-line-log-group = 0\n"),
        Some(crate::config::FirstLine {
            hold: std::time::Duration::from_secs(60),
            log_group: 0
        })
    );
    assert_eq!(
        problems("[firewall]\nfirst-line-hold = \"500ms\"\nfirst-line-log-group = 65536\n"),
        [
            "[firewall] first-line-hold = \"500ms\": must be at least 1s",
            "[firewall] first-line-log-group = 65536: must be from 0 to 65535",
        ]
    );
    assert_eq!(
        problems("[firewall]\nfirst-line-hold = \"61s\"\n"),
        ["[firewall] first-line-hold = \"61s\": must be at most 1m"]
    );
    // The route backend has no first line; asking for one is an error. Attach mode's is off
    // unless asked for (tested below).
    assert_eq!(
        problems("[firewall]\nbackend = \"route\"\nfirst-line = true\n"),
        [
            "[firewall] first-line = true: the kernel's first line needs nftables \
             (backend = \"nft\")"
        ]
    );
    assert!(check("[firewall]\nbackend = \"route\"\nfirst-line = false\n").is_ok());
}

/// Issue 27: the first line counts every port nothing listens on, so with listed trap ports
/// (and in connect mode, whose traps are sentryd's own listeners) it is off unless asked for,
/// and asking for it is refused with why.
#[test]
fn the_first_line_is_off_with_listed_traps_and_in_connect_mode() {
    let first_line = |text: &str| match check(text).unwrap().backend {
        crate::config::Backend::Nft(NftConfig::Own { first_line, .. }) => first_line,
        other => panic!("{other:?}"),
    };
    let listed = "[detect]\nmode = \"listed\"\npreset = \"bare-bones\"\n";
    let connect = format!("{listed}[capture]\nmethod = \"connect\"\n");
    assert_eq!(first_line(listed), None);
    assert_eq!(first_line(&connect), None);
    assert_eq!(
        first_line(&format!("{listed}[firewall]\nfirst-line = false\n")),
        None
    );
    assert_eq!(
        problems(&format!("{listed}[firewall]\nfirst-line = true\n")),
        [
            "[firewall] first-line = true: the kernel's first line counts every port nothing \
             listens on, which does not fit [detect] mode = \"listed\" (only the listed ports \
             are traps)"
        ]
    );
    assert_eq!(
        problems(&format!("{connect}[firewall]\nfirst-line = true\n")),
        [
            "[firewall] first-line = true: the kernel's first line counts every port nothing \
             listens on, which does not fit [capture] method = \"connect\" (its trap ports \
             are sentryd's own listeners)"
        ]
    );
}

/// Issue 27: attach mode's first line (the shipped snippet in the administrator's inet table)
/// is off unless asked for; on, it takes first-line-hold and first-line-log-group as own mode
/// does; an ip or ip6 table cannot hold it.
#[test]
fn the_first_line_in_attach_mode_is_off_by_default_and_needs_an_inet_table() {
    let attach = "[firewall]\nmode = \"attach\"\ntable = \"filter\"\nset4 = \"s\"\n";
    let first_line = |text: &str| match check(text).unwrap().backend {
        crate::config::Backend::Nft(NftConfig::Attach { first_line, .. }) => first_line,
        other => panic!("{other:?}"),
    };
    assert_eq!(first_line(attach), None);
    assert_eq!(first_line(&format!("{attach}first-line = false\n")), None);
    assert_eq!(
        first_line(&format!("{attach}first-line = true\n")),
        Some(FIRST_LINE)
    );
    assert_eq!(
        first_line(&format!(
            "{attach}first-line = true\nfirst-line-hold = \"10s\"\nfirst-line-log-group = 7\n"
        )),
        Some(crate::config::FirstLine {
            hold: std::time::Duration::from_secs(10),
            log_group: 7
        })
    );
    assert_eq!(
        problems(&format!("{attach}first-line-hold = \"0s\"\n")),
        ["[firewall] first-line-hold = \"0s\": must be at least 1s"],
        "checked even while off"
    );
    assert_eq!(
        problems(
            "[firewall]\nmode = \"attach\"\nfamily = \"ip\"\ntable = \"filter\"\nset4 = \"s\"\n\
             first-line = true\n"
        ),
        [
            "[firewall] first-line = true: the kernel's first line needs an inet table \
             (family = \"inet\", not \"ip\"): its rules look at IPv4 and IPv6 alike"
        ]
    );
    assert!(
        check(
            "[firewall]\nmode = \"attach\"\nfamily = \"ip6\"\ntable = \"filter\"\n\
             set6 = \"s\"\nfirst-line = false\n"
        )
        .is_ok()
    );
    // Where the first line does not fit the traps, it does not in attach mode either.
    let listed = "[detect]\nmode = \"listed\"\npreset = \"bare-bones\"\n";
    assert_eq!(
        problems(&format!("{listed}{attach}first-line = true\n")),
        [
            "[firewall] first-line = true: the kernel's first line counts every port nothing \
             listens on, which does not fit [detect] mode = \"listed\" (only the listed ports \
             are traps)"
        ]
    );
}

#[test]
fn firewall_attach_mode_needs_a_table_and_a_set_and_refuses_own_keys() {
    let c = check(
        "[firewall]\nmode = \"attach\"\nfamily = \"ip6\"\ntable = \"filter\"\nset6 = \"scanners\"\n",
    )
    .unwrap();
    assert_eq!(
        c.backend,
        crate::config::Backend::Nft(NftConfig::Attach {
            family: Family::Ip6,
            table: NftName::new("filter").unwrap(),
            set4: None,
            set6: Some(NftName::new("scanners").unwrap()),
            first_line: None,
        })
    );
    assert_eq!(
        problems("[firewall]\nmode = \"attach\"\nhook = \"input\"\n"),
        [
            "[firewall] hook: only applies to mode = \"own\"",
            "[firewall] mode = \"attach\": set `table` to the table that holds the sets",
            "[firewall] mode = \"attach\": set `set4`, `set6` or both",
        ]
    );
    assert_eq!(
        problems("[firewall]\ntable = \"filter\"\n"),
        ["[firewall] table: only applies to mode = \"attach\""]
    );
    assert_eq!(
        problems("[firewall]\nmode = \"attach\"\ntable = \"my table\"\nset4 = \"4set\"\n"),
        [
            "[firewall] table = \"my table\": not an nftables name (a letter, then letters, digits, _ - . /; at most 255)",
            "[firewall] set4 = \"4set\": not an nftables name (a letter, then letters, digits, _ - . /; at most 255)",
        ]
    );
}

#[test]
fn respond_escalation_budget_and_hook_are_checked() {
    assert_eq!(
        problems(
            "[respond]\nblock-for = \"2h\"\nmax-block-for = \"1h\"\nrepeat-factor = 0\n\
             max-new-blocks-per-second = 0\non-block = [\"notify\", \"{address}\"]\n"
        ),
        [
            "[respond] repeat-factor = 0: must be from 1 to 100",
            "[respond] max-new-blocks-per-second = 0: must be from 1 to 1000000",
            "[respond] on-block: the program \"notify\" must be an absolute path (it is run directly, without a shell)",
            "[respond] on-block: \"{address}\" has an unknown placeholder; known: {addr} {source} {kind} {ports} {duration}",
        ]
    );
    assert_eq!(
        problems("[respond]\nblock-for = \"2h\"\nmax-block-for = \"1h\"\n"),
        ["[respond] max-block-for = \"1h\": shorter than block-for = \"2h\""]
    );
    let c = check(
        "[respond]\non-block = [\"/usr/bin/logger\", \"scan from {addr}: {kind} on {ports}\"]\n",
    )
    .unwrap();
    assert_eq!(c.respond.on_block.len(), 2);
}

#[test]
fn capture_interfaces_are_special_words_or_names() {
    assert_eq!(
        Config::default().capture.interfaces,
        Interfaces::AllButLoopback
    );
    let c = check("[capture]\ninterfaces = [\"eth0\", \"eth1\"]\nimmediate = false\n").unwrap();
    assert_eq!(
        c.capture.interfaces,
        Interfaces::Named(vec!["eth0".into(), "eth1".into()])
    );
    assert!(!c.capture.immediate);
    assert_eq!(
        check("[capture]\ninterfaces = [\"any\"]\n")
            .unwrap()
            .capture
            .interfaces,
        Interfaces::All
    );
    assert_eq!(
        problems("[capture]\ninterfaces = [\"eth0\", \"ALL\", \"bad name\"]\n"),
        [
            "[capture] interfaces: \"ALL\" must be alone in the list",
            "[capture] interfaces: \"bad name\" is not an interface name",
        ]
    );
    assert_eq!(
        problems("[capture]\ninterfaces = []\n"),
        ["[capture] interfaces = []: name at least one, or \"ALL_NLO\""]
    );
}

#[test]
fn log_target_and_format() {
    let c = check("[log]\ntarget = \"journald\"\nformat = \"json\"\n").unwrap();
    assert_eq!(
        c.log,
        LogConfig {
            target: LogTarget::Journald,
            format: LogFormat::Json
        }
    );
    assert_eq!(
        problems("[log]\ntarget = \"file\"\nformat = \"xml\"\n"),
        [
            "[log] target = \"file\": expected \"stdout\", \"syslog\" or \"journald\"",
            "[log] format = \"xml\": expected \"text\" or \"json\"",
        ]
    );
}

#[test]
fn the_route_backend_and_its_refusals() {
    let c = check("[firewall]\nbackend = \"route\"\nhook = \"input\"\n").unwrap();
    assert_eq!(c.backend, crate::config::Backend::Route);
    assert!(matches!(
        check("").unwrap().backend,
        crate::config::Backend::Nft(NftConfig::Own { .. })
    ));
    assert_eq!(
        problems(
            "[firewall]\nbackend = \"route\"\nmode = \"attach\"\ntable = \"filter\"\nset4 = \"s\"\n"
        ),
        [
            "[firewall] mode: only applies to backend = \"nft\"",
            "[firewall] table: only applies to backend = \"nft\"",
            "[firewall] set4: only applies to backend = \"nft\"",
        ]
    );
    assert_eq!(
        problems("[firewall]\nbackend = \"iptables\"\n"),
        ["[firewall] backend = \"iptables\": expected \"nft\" or \"route\""]
    );
}

#[test]
fn connect_mode_needs_listed_ports_and_only_it_takes_a_banner() {
    let c = check(
        "[detect]\nmode = \"listed\"\npreset = \"bare-bones\"\n[capture]\nmethod = \"connect\"\nbanner = \"go away\"\n",
    )
    .unwrap();
    assert_eq!(c.capture.method, crate::config::Method::Connect);
    assert_eq!(c.capture.banner.as_deref(), Some("go away"));
    assert_eq!(
        problems("[capture]\nmethod = \"connect\"\n"),
        [
            "[capture] method = \"connect\": needs [detect] mode = \"listed\" (connect mode binds each trap port; \"unused\" would be every free port)"
        ]
    );
    assert_eq!(
        problems("[capture]\nbanner = \"hello\"\n"),
        ["[capture] banner = \"hello\": only applies to method = \"connect\""]
    );
    assert_eq!(
        problems("[capture]\nmethod = \"tap\"\n"),
        ["[capture] method = \"tap\": expected \"pcap\", \"raw\" or \"connect\""]
    );
}

#[test]
fn issue_14_trust_keys_are_checked() {
    assert_eq!(
        problems(
            "[respond]\nreverse-path = \"sometimes\"\nprotect = \"maybe\"\nmin-ports = 0\n\
             protect-for = \"400d\"\n"
        ),
        [
            "[respond] min-ports = 0: must be from 1 to 1024",
            "[respond] reverse-path = \"sometimes\": expected \"strict\", \"loose\", \"off\" or \"kernel\"",
            "[respond] protect = \"maybe\": expected \"established\" or \"none\"",
            "[respond] protect-for = \"400d\": must be at most 30d",
        ]
    );
    let c = Config::default();
    assert_eq!(c.respond.min_ports, 3);
    assert_eq!(c.respond.reverse_path, crate::trust::ReversePath::Strict);
    assert_eq!(c.respond.protect, crate::trust::Protect::Established);
    assert_eq!(c.respond.protect_for, Duration::from_secs(86_400));
}

#[test]
fn metrics_listen_is_off_an_address_or_a_socket_path() {
    assert_eq!(check("").unwrap().metrics, None);
    assert_eq!(
        check("[metrics]\nlisten = \"127.0.0.1:9464\"\n")
            .unwrap()
            .metrics,
        Some(crate::config::MetricsListen::Tcp(
            "127.0.0.1:9464".parse().unwrap()
        ))
    );
    assert_eq!(
        check("[metrics]\nlisten = \"/run/scansentry/metrics.sock\"\n")
            .unwrap()
            .metrics,
        Some(crate::config::MetricsListen::Unix(
            "/run/scansentry/metrics.sock".into()
        ))
    );
    assert_eq!(
        problems("[metrics]\nlisten = \"localhost:9464\"\n"),
        [
            "[metrics] listen = \"localhost:9464\": expected \"ADDRESS:PORT\" (\"127.0.0.1:9464\", \
          \"[::1]:9464\"), an absolute path for a Unix socket, or \"\" for none"
        ]
    );
}

#[test]
fn fleet_is_off_by_default_and_checked_when_written() {
    assert_eq!(check("").unwrap().fleet, None);
    let c = check(
        "[fleet]\nenabled = true\nservers = [\"tls://198.51.100.10:4222\"]\nhost = \"web-3\"\n\
         creds-file = \"/etc/scansentry/fleet.creds\"\ntls-ca = \"/etc/scansentry/ca.pem\"\n\
         share = [\"blocks\"]\n[fleet.sweep]\nhosts = 12\n",
    )
    .unwrap()
    .fleet
    .unwrap();
    assert_eq!(c.host.as_ref().map(|h| h.as_str()), Some("web-3"));
    assert_eq!(c.prefix, "scansentry");
    assert!(c.share_blocks && !c.share_probes && c.accept_blocks && c.accept_probes);
    assert_eq!(
        c.credentials,
        crate::config::fleet::Credentials::Creds("/etc/scansentry/fleet.creds".into())
    );
    assert_eq!(c.max_block_for, Duration::from_secs(86_400));
    assert_eq!(
        (c.max_per_origin_per_minute, c.sweep_hosts, c.sweep_pairs),
        (60, 12, 16)
    );
    assert_eq!(
        problems(
            "[fleet]\nenabled = true\nservers = [\"198.51.100.10:4222\", \"tls://x:4222\"]\n\
             host = \"web.3\"\nsubject-prefix = \"a..b\"\nshare = [\"everything\"]\n\
             user = \"web-3\"\ncreds-file = \"fleet.creds\"\nmax-block-for = \"2years\"\n"
        ),
        [
            "[fleet] servers: \"198.51.100.10:4222\": expected nats://HOST:PORT or tls://HOST:PORT",
            "[fleet] host: host name \"web.3\": 1 to 64 letters, digits, '-' or '_' (it is a \
             token of a NATS subject)",
            "[fleet] subject-prefix = \"a..b\": NATS subject tokens (letters, digits, '-', '_') \
             separated by '.'",
            "[fleet] share = \"everything\": expected \"blocks\" or \"probes\"",
            "[fleet] max-block-for = \"2years\": must be at most 1y",
            "[fleet] creds-file = \"fleet.creds\": must be an absolute path",
            "[fleet]: one way to log in: user and password-file, creds-file, or nkey-file",
            "[fleet] servers: tls:// needs tls-ca",
        ]
    );
    assert_eq!(
        problems("[fleet]\nenabled = true\n"),
        ["[fleet] enabled = true: set `servers`"]
    );
}

/// Issue 24 (red team, open): `[fleet] accept-wide` names the hosts whose wide blocks by hand
/// are taken; none by default; the old `true` is refused saying the new form, and every
/// problem is listed.
#[test]
fn fleet_accept_wide_names_hosts_and_refuses_the_old_bool() {
    let base = "[fleet]\nenabled = true\nhost = \"web-1\"\nservers = [\"nats://198.51.100.250:4222\"]\n\
                insecure = true\n";
    let c = check(base).unwrap().fleet.unwrap();
    assert!(c.accept_wide.is_empty());
    assert_eq!(
        problems(&format!("{base}accept-wide = true\n")),
        [
            "[fleet] accept-wide = true: name the hosts whose wide blocks by hand this host takes \
          instead, e.g. accept-wide = [\"admin-1\"] (none: [])"
        ]
    );
    assert_eq!(
        problems(&format!(
            "{base}accept-wide = [\"admin.1\", \"admin-2\", \"\"]\nmax-block-for = \"2years\"\n"
        )),
        [
            "[fleet] max-block-for = \"2years\": must be at most 1y",
            "[fleet] accept-wide: \"admin.1\": host name \"admin.1\": 1 to 64 letters, digits, '-' \
             or '_' (it is a token of a NATS subject)",
            "[fleet] accept-wide: \"\": host name \"\": 1 to 64 letters, digits, '-' or '_' (it \
             is a token of a NATS subject)",
        ]
    );
    assert_eq!(
        problems(&format!("{base}accept-wide = \"admin-1\"\n")),
        [
            "[fleet] accept-wide = \"admin-1\": expected a list of host names, e.g. accept-wide = \
          [\"admin-1\"]"
        ]
    );
}

/// Issue 24: `[fleet] members` are addresses or networks no wider than a /24 or /48, routable;
/// every problem is listed; they join the never-block list as "fleet member", with the servers.
#[test]
fn fleet_members_are_checked_and_go_on_the_never_block_list() {
    let c = check(
        "[fleet]\nenabled = true\nhost = \"web-1\"\nservers = [\"nats://198.51.100.250:4222\"]\n\
         members = [\"198.51.100.1\", \"2001:db8::1\", \"203.0.113.0/24\", \"2001:db8:1::/48\"]\n\
         accept-wide = [\"admin-1\"]\ninsecure = true\n",
    )
    .unwrap()
    .fleet
    .unwrap();
    assert_eq!(
        c.accept_wide,
        [crate::fleet::message::HostName::new("admin-1").unwrap()]
    );
    let entries: Vec<String> = crate::never_block::fleet_entries(&c)
        .iter()
        .map(|e| format!("{} {}", e.net, e.reason))
        .collect();
    assert_eq!(
        entries,
        [
            "198.51.100.250/32 fleet server nats://198.51.100.250:4222",
            "198.51.100.1/32 fleet member",
            "2001:db8::1/128 fleet member",
            "203.0.113.0/24 fleet member",
            "2001:db8:1::/48 fleet member",
        ]
    );
    assert_eq!(
        problems(
            "[fleet]\nenabled = true\nservers = [\"nats://198.51.100.250:4222\"]\n\
             members = [\"198.51.0.0/16\", \"2001:db8::/32\", \"169.254.169.254\", \"fe80::1\", \
             \"web-2\", \"198.51.100.1/24\"]\ninsecure = true\n[fleet.sweep]\nhosts = 2\npairs = 2\n"
        ),
        [
            "[fleet] members: \"198.51.0.0/16\": wider than a /24 (a member is an address, or \
             a network of a /24 or /48 at most)",
            "[fleet] members: \"2001:db8::/32\": wider than a /48 (a member is an address, or \
             a network of a /24 or /48 at most)",
            "[fleet] members: \"169.254.169.254\": it is link-local address space",
            "[fleet] members: \"fe80::1\": it is link-local address space",
            "[fleet] members: \"web-2\": expected an address or a network (CIDR)",
            "[fleet] members: \"198.51.100.1/24\": host bits set (did you mean 198.51.100.0/24?)",
            "[fleet.sweep] hosts = 2: must be from 3 to 4096",
            "[fleet.sweep] pairs = 2: must be from 3 to 4096",
        ]
    );
}

/// Issue 24 (finding 8): plain NATS, or a password sent in clear, only when asked for.
#[test]
fn issue_24_plain_nats_and_a_password_in_clear_are_refused_unless_insecure() {
    let plain =
        "[fleet]\nenabled = true\nhost = \"web-1\"\nservers = [\"nats://198.51.100.250:4222\"]\n";
    assert_eq!(
        problems(plain),
        [
            "[fleet] servers: \"nats://198.51.100.250:4222\" is plain NATS, without TLS: messages \
          go in clear and anyone who reaches the server can publish; use tls:// with tls-ca \
          (and a client certificate), or set insecure = true for a lab"
        ]
    );
    let password =
        format!("{plain}user = \"web-1\"\npassword-file = \"/etc/scansentry/nats.pass\"\n");
    assert!(
        problems(&password).contains(
            &"[fleet] password-file: the password would be sent without TLS; set tls-ca, or \
              insecure = true for a lab"
                .to_string()
        ),
        "{:?}",
        problems(&password)
    );
    let c = check(&format!("{password}insecure = true\n"))
        .unwrap()
        .fleet
        .unwrap();
    assert!(c.insecure);
    assert_eq!(c.plain_servers(), ["nats://198.51.100.250:4222"]);
    // With tls-ca, a nats:// server is reached over TLS too: nothing in clear.
    let c = check(&format!("{plain}tls-ca = \"/etc/scansentry/ca.pem\"\n"))
        .unwrap()
        .fleet
        .unwrap();
    assert!(c.plain_servers().is_empty());
    assert_eq!(
        problems(
            "[fleet]\nenabled = true\nhost = \"web-1\"\nservers = [\"tls://198.51.100.250:4222\"]\n\
             insecure = true\n"
        ),
        ["[fleet] servers: tls:// needs tls-ca"]
    );
}

#[test]
fn fleet_servers_given_by_address_are_known_for_the_never_block_list() {
    let c = check(
        "[fleet]\nenabled = true\nhost = \"web-1\"\nservers = [\"nats://198.51.100.250:4222\", \
         \"nats://[2001:db8::250]:4222\", \"nats://nats.example.org:4222\"]\ninsecure = true\n",
    )
    .unwrap()
    .fleet
    .unwrap();
    assert_eq!(
        c.server_addresses(),
        [
            (
                "198.51.100.250".parse().unwrap(),
                "nats://198.51.100.250:4222".to_string()
            ),
            (
                "2001:db8::250".parse().unwrap(),
                "nats://[2001:db8::250]:4222".to_string()
            ),
        ]
    );
}

/// Issue 25: the firewall's words, checked by one `choice`, say what was written and what is
/// accepted, as before.
#[test]
fn firewall_words_outside_their_lists_are_refused_with_the_accepted_ones() {
    assert_eq!(
        problems("[firewall]\nhook = \"output\"\n"),
        ["[firewall] hook = \"output\": expected \"input\" or \"prerouting\""]
    );
    assert_eq!(
        problems("[firewall]\nmode = \"attach\"\nfamily = \"arp\"\ntable = \"t\"\nset4 = \"s\"\n"),
        ["[firewall] family = \"arp\": expected \"inet\", \"ip\" or \"ip6\""]
    );
    assert_eq!(
        problems("[firewall]\nmode = \"borrow\"\n"),
        ["[firewall] mode = \"borrow\": expected \"own\" or \"attach\""]
    );
}

/// Issue 25: the pairs of `[fleet]` keys that go together, and the attach-mode sets a family
/// cannot hold, refused in order with the same words since `fleet` and `firewall` became small
/// validators.
#[test]
fn keys_that_go_together_and_sets_a_family_cannot_hold_are_refused_in_order() {
    assert_eq!(
        problems(
            "[fleet]\naccept = [\"all\"]\nuser = \"web-3\"\ntls-cert = \"/c.pem\"\n\
             servers = [\"nats://198.51.100.10:4222\"]\n"
        ),
        [
            "[fleet] accept = \"all\": expected \"blocks\" or \"probes\"",
            "[fleet]: user and password-file go together",
            "[fleet]: tls-cert and tls-key go together",
            "[fleet] servers: \"nats://198.51.100.10:4222\" is plain NATS, without TLS: \
             messages go in clear and anyone who reaches the server can publish; use tls:// \
             with tls-ca (and a client certificate), or set insecure = true for a lab",
        ]
    );
    assert_eq!(
        problems("[fleet]\ntls-cert = \"/c.pem\"\ntls-key = \"/c.key\"\n"),
        ["[fleet]: a client certificate needs tls-ca too"]
    );
    assert_eq!(
        problems(
            "[firewall]\nmode = \"attach\"\nfamily = \"ip6\"\ntable = \"t\"\nset4 = \"a\"\n\
             hook = \"input\"\n"
        ),
        [
            "[firewall] hook: only applies to mode = \"own\"",
            "[firewall] set4: an ip6 table holds no IPv4 set",
        ]
    );
    assert_eq!(
        problems("[firewall]\nmode = \"attach\"\nfamily = \"ip\"\ntable = \"t\"\nset6 = \"a\"\n"),
        ["[firewall] set6: an ip table holds no IPv6 set"]
    );
}

/// Issue 26, 11: a TOML error in one line names the file, the line and the key (what the
/// journal says of a refused reload, and the first line of `sentryctl reload`'s answer);
/// toml's report, with the line quoted, is kept for a terminal.
#[test]
fn issue_26_a_toml_error_in_one_line_names_file_line_and_key() {
    let e = from_toml("[respond]\nmax-block = 3\n", Path::new("/etc/s.toml")).unwrap_err();
    let line = "invalid configuration: /etc/s.toml: at line 2, column 1: unknown key \
                \"max-block\" in [respond]; did you mean \"max-blocks\"?";
    assert_eq!(e.one_line(), line);
    assert!(e.report().unwrap().contains("2 | max-block = 3"));
    // `sentryctl validate` (and sentryd at start) end with the same words.
    let shown = e.to_string();
    assert!(
        shown.ends_with(
            "\n/etc/s.toml: at line 2, column 1: unknown key \"max-block\" in \
                         [respond]; did you mean \"max-blocks\"?"
        ),
        "{shown}"
    );
}

/// Issue 27: tripwire ports, off by default; in `listed` mode they are traps too.
#[test]
fn tripwires_parse_and_are_traps_in_listed_mode() {
    assert!(Config::default().detector.tripwire.is_empty());
    let c = check(
        "[detect]\nmode = \"listed\"\ntcp-ports = [1]\ntripwire-tcp = [2323, \"6000-6002\"]\n\
         tripwire-udp = [31337]\n",
    )
    .expect("valid");
    let t = &c.detector.tripwire;
    assert!(t.contains(Proto::Tcp, 2323) && t.contains(Proto::Tcp, 6002));
    assert!(t.contains(Proto::Udp, 31337) && !t.contains(Proto::Tcp, 31337));
    let TrapMode::Listed { tcp, udp } = &c.traps.mode else {
        panic!("listed")
    };
    assert!(tcp.contains(2323) && tcp.contains(6001) && udp.contains(31337));
}

#[test]
fn bad_tripwires_are_refused_with_one_line_each() {
    assert_eq!(
        problems("[detect]\ntripwire-tcp = [0]\n"),
        ["[detect] tripwire-tcp: port 0 is not a valid port (1-65535)"]
    );
    assert_eq!(
        problems("[detect]\ntripwire-udp = [\"40-30\"]\n"),
        ["[detect] tripwire-udp: range \"40-30\" is backwards (write \"30-40\")"]
    );
    assert_eq!(
        problems("[detect]\ntripwire-tcp = [113]\n"),
        ["[detect] tripwire-tcp: port 113 is also in exclude-tcp, where it is never a trap"]
    );
    assert_eq!(
        problems("[detect]\nephemeral-udp = \"32768-60999\"\ntripwire-udp = [40000]\n"),
        [
            "[detect] tripwire-udp: port 40000 is in ephemeral-udp = \"32768-60999\", where it \
          is never a trap"
        ]
    );
}
