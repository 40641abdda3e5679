//! The binaries as an administrator runs them: arguments, output, exit codes.

#[path = "support/schema.rs"]
mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sentryd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentryd"))
        .args(args)
        .output()
        .expect("run sentryd")
}

fn sentryctl(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_sentryctl"))
        .args(args)
        .output()
        .expect("run sentryctl");
    if args.contains(&"--json") {
        // Every `--json` output is checked against the shipped schema.
        schema::check_text(&String::from_utf8_lossy(&out.stdout));
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shared(name: &str) -> String {
    root()
        .join("../shared/pcaps")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A temporary file with `text` in a directory of its own, both removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scansentry-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn validate_accepts_the_shipped_example() {
    let example = root().join("packaging/scansentry.toml");
    let o = sentryctl(&["validate", example.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: configuration is valid\n", example.display())
    );
}

#[test]
fn an_unknown_key_exits_78_with_line_and_column_from_both_binaries() {
    let f = TempFile::new("unknown.toml", "[detect]\nthreshold = 5\ntreshold = 20\n");
    for (program, o) in [
        ("sentryctl", sentryctl(&["validate", f.path()])),
        ("sentryd", sentryd(&["--check-config", f.path()])),
    ] {
        assert_eq!(o.status.code(), Some(78), "{program}");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!(
                "{program}: error: invalid configuration in {}\nTOML parse error at line 3, column 1\n",
                f.path()
            )),
            "{program}: {err}"
        );
        assert!(err.contains("unknown field `treshold`"), "{err}");
        assert_eq!(stdout(&o), "");
    }
}

#[test]
fn semantic_problems_are_all_listed_with_path_key_and_value() {
    let f = TempFile::new(
        "semantic.toml",
        "[detect]\nwindow = \"0s\"\nexclude-tcp = [0]\n[never-block]\naddresses = [\"203.0.113.0/33\"]\n",
    );
    let o = sentryd(&["--check-config", f.path()]);
    assert_eq!(o.status.code(), Some(78));
    let p = f.path();
    assert_eq!(
        stderr(&o),
        format!(
            "sentryd: error: {p}: [detect] window = \"0s\": must be at least 1s\n\
             {p}: [detect] exclude-tcp: port 0 is not a valid port (1-65535)\n\
             {p}: [never-block] addresses: \"203.0.113.0/33\" is not an IP address or CIDR \
             (like \"198.51.100.7\" or \"2001:db8::/32\")\n"
        )
    );
}

/// Issue 16, 6: `--check-config` passed a configuration whose never-block file is missing, which
/// the start refuses.
#[test]
fn issue_16_check_config_reads_the_never_block_file_as_the_start_does() {
    let f = TempFile::new(
        "nbfile.toml",
        "[never-block]\nfile = \"/nonexistent/scansentry-never-block\"\n",
    );
    for (program, o) in [
        ("sentryctl", sentryctl(&["validate", f.path()])),
        ("sentryd", sentryd(&["--check-config", f.path()])),
    ] {
        assert_eq!(o.status.code(), Some(78), "{program}");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("{program}: error: "))
                && err.contains("/nonexistent/scansentry-never-block"),
            "{program}: {err}"
        );
        assert_eq!(stdout(&o), "");
    }
}

#[test]
fn check_config_uses_the_file_given_with_c() {
    let f = TempFile::new("ok.toml", "[respond]\nblock-for = \"2h\"\n");
    let o = sentryd(&["-c", f.path(), "--check-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: configuration is valid\n", f.path())
    );
}

#[test]
fn a_missing_config_file_named_explicitly_is_an_error() {
    let o = sentryctl(&["validate", "/nonexistent/scansentry.toml"]);
    assert_eq!(o.status.code(), Some(78));
    assert_eq!(
        stderr(&o),
        "sentryctl: error: cannot read configuration /nonexistent/scansentry.toml: \
         No such file or directory (os error 2)\n"
    );
}

#[test]
fn replay_prints_one_line_per_detection_then_a_summary() {
    let o = sentryd(&["--replay", &shared("tcp_0_1000_20190821.pcap")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines: Vec<&str> = out.lines().collect();
    // Issue 27: with the kernel's first line on (own mode's default once configured), its
    // hold comes first: 20 µs before the daemon's block.
    if first_line_by_default() {
        assert_eq!(
            lines.remove(0),
            "2019-08-21T18:16:47.946624Z first line would hold 172.31.15.102 for 5s at 398/tcp \
             (SYN), 3 trap ports counted: 697/tcp 217/tcp 398/tcp"
        );
    }
    // Issue 28: masscan's SYNs carry its IP ID relation, and the detection names it.
    assert_eq!(
        lines[0],
        "2019-08-21T18:16:47.946644Z would block 172.31.15.102 for 1h: syn scan, 7 ports in \
         0.1s, masscan (SYN)"
    );
    assert!(lines[1].starts_with("replayed "), "{out}");
    assert!(
        lines[1].ends_with("tcp_0_1000_20190821.pcap: 1005 frames over 10.0s"),
        "{out}"
    );
    assert!(out.contains("local addresses (inferred from the capture): 198.124.152.15\n"));
    assert!(out.contains(
        "detections: 1 (would block 1, already blocked 0, never-block 0, over budget 0, too few \
         ports 0)"
    ));
}

#[test]
fn replay_json_is_one_object_per_line() {
    let o = sentryd(&[
        "--replay",
        &shared("tcp_0_1000_20190821.pcap"),
        "--json",
        "--local",
        "198.124.152.15",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut objects: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    for object in &objects {
        schema::check(object);
    }
    if first_line_by_default() {
        let hold = objects.remove(0);
        assert_eq!(hold["type"], "hold");
        assert_eq!(hold["address"], "172.31.15.102");
        assert_eq!(
            hold["probe"],
            serde_json::json!({"proto": "tcp", "port": 398})
        );
    }
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["type"], "detection");
    assert_eq!(objects[0]["network"], "172.31.15.102/32");
    assert_eq!(objects[0]["kinds"], serde_json::json!(["syn"]));
    assert_eq!(objects[0]["duration_s"], 3600);
    for object in &objects {
        schema::check(object);
    }
    assert_eq!(objects[1]["type"], "summary");
    assert_eq!(objects[1]["locals_inferred"], false);
    assert_eq!(objects[1]["counters"]["probes"], 999);
}

/// Whether the built-in configuration has the kernel's first line on (issue 27: own mode's
/// default), so that a replay says its holds.
fn first_line_by_default() -> bool {
    matches!(
        scansentry::config::Config::default().backend,
        scansentry::config::Backend::Nft(scansentry::config::nft::NftConfig::Own {
            first_line: Some(_),
            ..
        })
    )
}

#[test]
fn replay_of_something_that_is_not_a_capture_says_so() {
    let f = TempFile::new("not-a-capture.pcap", "hello\n");
    let o = sentryd(&["--replay", f.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "sentryd: error: cannot open capture {}: libpcap error: unknown file format\n",
            f.path()
        )
    );
}

#[test]
fn replay_with_a_bad_config_exits_78_before_reading_the_capture() {
    let f = TempFile::new("bad.toml", "[detect]\nthreshold = -1\n");
    let o = sentryd(&["-c", f.path(), "--replay", &shared("whois.pcap")]);
    assert_eq!(o.status.code(), Some(78));
    assert!(stderr(&o).contains("[detect] threshold = -1: must be from 1 to 1000000"));
}

#[test]
fn argument_errors_exit_2() {
    let o = sentryd(&["--local", "198.51.100.1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = sentryd(&["--replay", "x.pcap", "--local", "198.51.100.300"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid value '198.51.100.300' for '--local <ADDR>'"));
    let o = sentryctl(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

mod fake_daemon {
    //! A stand-in for sentryd's end of the control socket: answers each request with what the
    //! test says, and records the requests.

    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use scansentry::control::protocol::{
        Envelope, Request, Response, VERSION, read_message, write_message,
    };

    pub struct FakeDaemon {
        pub socket: PathBuf,
        pub requests: Arc<Mutex<Vec<Request>>>,
    }

    impl FakeDaemon {
        pub fn start(name: &str, answer: impl Fn(&Request) -> Response + Send + 'static) -> Self {
            let dir =
                std::env::temp_dir().join(format!("scansentry-ctl-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let socket = dir.join("control.sock");
            let _ = std::fs::remove_file(&socket);
            let listener = UnixListener::bind(&socket).unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&requests);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let Ok(req) = read_message::<Envelope<Request>>(&mut stream) else {
                        continue;
                    };
                    let response = answer(&req.body);
                    seen.lock().unwrap().push(req.body);
                    let _ = write_message(
                        &mut stream,
                        &Envelope {
                            version: VERSION,
                            body: response,
                        },
                    );
                }
            });
            FakeDaemon { socket, requests }
        }

        pub fn path(&self) -> &str {
            self.socket.to_str().unwrap()
        }
    }

    impl Drop for FakeDaemon {
        fn drop(&mut self) {
            if let Some(dir) = self.socket.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

use fake_daemon::FakeDaemon;
use scansentry::control::protocol::{
    BlockInfo, FirstLineInfo, FleetInfo, HoldInfo, NeverBlockInfo, RefusalInfo, Request, Response,
    StatusInfo,
};

fn ctl(daemon: &FakeDaemon, args: &[&str]) -> Output {
    let mut all = vec!["--socket", daemon.path()];
    all.extend_from_slice(args);
    sentryctl(&all)
}

fn a_block(i: u8) -> BlockInfo {
    BlockInfo {
        net: format!("203.0.113.{i}/32").parse().unwrap(),
        kind: "syn".into(),
        ports: vec!["22/tcp".into()],
        blocked_at: "2026-11-21T23:51:47Z".into(),
        remaining: 60,
        offence: 1,
        held: Default::default(),
        origin: None,
        signature: None,
    }
}

#[test]
fn status_prints_the_counters() {
    let d = FakeDaemon::start("status", |_| {
        Response::Status(StatusInfo {
            mode: "enforcing".into(),
            firewall: "own".into(),
            uptime: 3700,
            packets: 10,
            probes: 7,
            detections: 1,
            blocks_active: 1,
            blocks_kernel_only: 0,
            would_block: 0,
            max_blocks: 65536,
            refused: 3,
            waiting: 2,
            capture_drops: 0,
            block_latency_p50_us: 1250,
            block_latency_p99_us: 3400,
            block_latency_samples: 1,
            config: "/etc/scansentry/scansentry.toml".into(),
            not_blocked: [
                ("min-ports".to_string(), 3),
                ("reverse-path".to_string(), 2),
            ]
            .into_iter()
            .collect(),
            protected_peers: 1,
            fragments: [("reassembled".to_string(), 300), ("tiny".to_string(), 100)]
                .into_iter()
                .collect(),
            evidence: [
                ("tool-fingerprint".to_string(), 12),
                ("version-probe".to_string(), 4),
            ]
            .into_iter()
            .collect(),
            fleet: Some(FleetInfo {
                host: "web-1".into(),
                connected: true,
                server: "198.51.100.1:4222".into(),
                members: 3,
                round_trip_us: Some(210),
                queued: 0,
                dropped: 2,
                sent: 14,
                received: 30,
                taken: 1,
                refused: [("never-block".to_string(), 1)].into_iter().collect(),
                probes_sent: 120,
                probes_dropped: 0,
                probes_refused: [("reverse-path".to_string(), 16)].into_iter().collect(),
                sweeps: 1,
                dropped_in: [("over its origin's cap".to_string(), 2)]
                    .into_iter()
                    .collect(),
                bucket_refused: Some(
                    "the stream KV_scansentry-blocks is unsafe: it allows rollups".into(),
                ),
            }),
            first_line: Some(FirstLineInfo {
                holds_active: 2,
                holds: [
                    ("blocked".to_string(), 14),
                    ("lifted-listener".to_string(), 1),
                ]
                .into_iter()
                .collect(),
                score_full: 0,
                hold_full: 0,
            }),
        })
    });
    let o = ctl(&d, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "mode               enforcing (firewall: own)\n\
         uptime             1h 1m 40s\n\
         packets            10\n\
         probes             7\n\
         detections         1\n\
         blocks active      1 of at most 65536 an address family; kernel only 0\n\
         refused by budget  3 (2 waiting for it now)\n\
         not blocked        3 min-ports, 2 reverse-path\n\
         protected peers    1\n\
         fragments          300 reassembled, 100 tiny\n\
         evidence           12 tool-fingerprint, 4 version-probe\n\
         capture drops      0\n\
         block latency      1.25 ms median, 3.40 ms p99 (capture to kernel, last 1 block)\n\
         configuration      /etc/scansentry/scansentry.toml\n\
         fleet              web-1: connected to 198.51.100.1:4222, 3 members, round trip 0.21 ms, \
         0 queued, 2 dropped (2 of theirs: 2 over its origin's cap); 14 sent, 30 received, \
         1 block taken, refused 1 never-block; 120 probes told, 0 dropped, refused 16 \
         reverse-path, 1 sweep found; catch-up off: the stream KV_scansentry-blocks is unsafe: \
         it allows rollups\n\
         first line         2 holds now; since start 14 blocked, 1 lifted-listener; not counted \
         (sets full) 0, not held (hold set full) 0\n"
    );
    let o = ctl(&d, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["result"], "status");
    assert_eq!(v["blocks_active"], 1);
}

#[test]
fn list_pages_through_every_block() {
    // 1,200 blocks: pages of at most LIST_PAGE (50), so 24 requests.
    let d = FakeDaemon::start("list", |req| match req {
        Request::List { offset, limit } => Response::Blocks {
            blocks: (*offset..(*offset + *limit).min(1200))
                .map(|i| a_block(u8::try_from(i % 250).unwrap()))
                .collect(),
            total: 1200,
        },
        _ => Response::Error {
            message: "unexpected".into(),
        },
    });
    let o = ctl(&d, &["list", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v.len(), 1200);
    assert_eq!(
        d.requests.lock().unwrap().len(),
        1200_usize.div_ceil(scansentry::control::protocol::LIST_PAGE)
    );
    let o = ctl(&d, &["list"]);
    assert!(
        stdout(&o).starts_with("ADDRESS        KIND  PORTS   BLOCKED AT"),
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&o).lines().count(), 1201);
}

#[test]
fn block_and_unblock_send_what_was_asked() {
    let d = FakeDaemon::start("block", |req| match req {
        // A network of 203.0.113.128/25 is blocked as a dry-run daemon would.
        Request::Block { net, seconds } => Response::Blocked {
            net: *net,
            seconds: seconds.unwrap_or(3600),
            dry_run: net.addr() >= "203.0.113.128".parse::<std::net::IpAddr>().unwrap(),
        },
        Request::Unblock { net, .. } => Response::NotBlocked {
            net: *net,
            fleet: false,
        },
        Request::UnblockAll => Response::UnblockedAll {
            count: 3,
            dry_run: false,
        },
        _ => Response::Error {
            message: "unexpected".into(),
        },
    });
    let o = ctl(&d, &["unblock", "--all"]);
    assert_eq!(stdout(&o), "lifted 3 blocks\n", "{}", stderr(&o));
    let o = ctl(&d, &["unblock", "--all", "203.0.113.7"]);
    assert_eq!(o.status.code(), Some(2), "an address or --all, not both");
    let o = ctl(&d, &["block", "203.0.113.0/24", "--for", "90s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "blocked 203.0.113.0/24 for 1m 30s\n");
    let o = ctl(&d, &["unblock", "203.0.113.7", "--grace", "30s"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "unblocking what is not blocked is not an error"
    );
    assert_eq!(stdout(&o), "203.0.113.7 was not blocked; nothing to do\n");
    // Issue 16, 7: a dry-run daemon's answer is no block.
    let o = ctl(&d, &["block", "203.0.113.200", "--for", "1m"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "would block 203.0.113.200 for 1m (dry run: nothing is blocked)\n"
    );
    assert_eq!(
        d.requests.lock().unwrap()[1..3],
        [
            Request::Block {
                net: "203.0.113.0/24".parse().unwrap(),
                seconds: Some(90)
            },
            Request::Unblock {
                net: "203.0.113.7/32".parse().unwrap(),
                grace: Some(30),
                local: false,
            },
        ]
    );
}

#[test]
fn why_and_ignore_explain() {
    let d = FakeDaemon::start("why", |req| match req {
        Request::Why { addr } if addr.to_string() == "203.0.113.7" => Response::Why {
            addr: *addr,
            block: Some(a_block(7)),
            never_block: vec![],
            refused: None,
            first_line: Some(HoldInfo {
                held_at: "2026-11-21T23:51:46Z".into(),
                probe: "902/tcp".into(),
                hold_s: 5,
                remaining_s: None,
                outcome: Some("blocked".into()),
                line: "held by the kernel's first line for 5s after a probe to 902/tcp, 1m ago; \
                       the daemon blocked it 3 ms later"
                    .into(),
            }),
        },
        Request::Why { addr } => Response::Why {
            addr: *addr,
            block: None,
            never_block: vec![],
            first_line: None,
            refused: Some(RefusalInfo {
                at: "2026-11-29T16:00:00Z".into(),
                rule: "reverse-path".into(),
                line: "not blocking 203.0.113.2: no route back to it (reverse path): null scan, \
                       3 ports in 0.0s"
                    .into(),
            }),
        },
        Request::NeverBlock => Response::NeverBlock {
            entries: vec![NeverBlockInfo {
                net: "127.0.0.0/8".parse().unwrap(),
                reason: "loopback".into(),
            }],
        },
        _ => Response::Error {
            message: "unexpected".into(),
        },
    });
    let o = ctl(&d, &["--utc", "why", "203.0.113.7"]);
    assert_eq!(
        stdout(&o),
        "203.0.113.7 is blocked for 1m more: syn scan of 1 port (22/tcp), offence 1, since 2026-11-21T23:51:47Z\n\
         203.0.113.7 was held by the kernel's first line for 5s after a probe to 902/tcp, 1m ago; \
         the daemon blocked it 3 ms later\n"
    );
    // Issue 16, 15: in the local time zone unless --utc.
    let o = Command::new(env!("CARGO_BIN_EXE_sentryctl"))
        // A POSIX rule, which needs no time zone database (a minimal Debian has none).
        .env("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
        .args(["--socket", d.socket.to_str().unwrap(), "why", "203.0.113.7"])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains(", since 2026-11-22 00:51:47 CET\n"),
        "{}",
        stdout(&o)
    );
    let o = ctl(&d, &["--utc", "why", "203.0.113.2"]);
    assert_eq!(
        stdout(&o),
        "203.0.113.2 is not blocked\nlast detection not blocked, at 2026-11-29T16:00:00Z: not \
         blocking 203.0.113.2: no route back to it (reverse path): null scan, 3 ports in 0.0s\n"
    );
    // `ignore`, the command's name before, still works.
    for command in ["never-block", "ignore"] {
        let o = ctl(&d, &[command]);
        assert_eq!(
            stdout(&o),
            "ADDRESS      REASON\n127.0.0.0/8  loopback\n",
            "{command}"
        );
    }
}

#[test]
fn a_refusal_from_the_daemon_is_one_line_and_exit_1() {
    let d = FakeDaemon::start("reload", |_| Response::Error {
        message: "reload refused, still running on the previous configuration: x".into(),
    });
    let o = ctl(&d, &["reload"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "sentryctl: error: reload refused, still running on the previous configuration: x\n"
    );
}

#[test]
fn no_daemon_is_exit_69_with_a_hint() {
    let o = sentryctl(&["--socket", "/nonexistent/control.sock", "status"]);
    assert_eq!(o.status.code(), Some(69));
    assert_eq!(
        stderr(&o),
        "sentryctl: error: cannot reach sentryd at /nonexistent/control.sock: No such file or directory (os error 2)\n\
         hint: is the daemon running? try `systemctl status scansentry`\n"
    );
}

#[test]
fn no_permission_is_exit_77_with_a_hint() {
    use std::os::unix::fs::PermissionsExt;
    let d = FakeDaemon::start("perm", |_| Response::Error {
        message: "unreachable".into(),
    });
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let o = if root {
        // Root passes file permissions: ask as nobody.
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_sentryctl"))
            .args(["--socket", d.path(), "status"])
            .output()
            .unwrap()
    } else {
        std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        ctl(&d, &["status"])
    };
    assert_eq!(o.status.code(), Some(77), "{}", stderr(&o));
    assert!(stderr(&o).ends_with(
        "Permission denied (os error 13)\nhint: run as root or as a member of group `scansentry`\n"
    ), "{}", stderr(&o));
}

#[test]
fn a_bad_address_is_claps_error_and_exit_2() {
    let o = sentryctl(&["block", "10.0.0.300"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(
            "error: invalid value '10.0.0.300' for '<IP|CIDR>': expected an IP address or a CIDR"
        ),
        "{}",
        stderr(&o)
    );
    let o = sentryctl(&["block", "203.0.113.0/24", "--for", "1 fortnight"]);
    assert_eq!(o.status.code(), Some(2));
    // Issue 13: the kernel cannot take 1000 years (ERANGE); no block is longer than a year.
    let o = sentryctl(&["block", "203.0.113.51", "--for", "1000y"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(
            "error: invalid value '1000y' for '--for <DURATION>': must be at most 1y (the \
             longest block)"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn import_portsentry_writes_a_valid_config_and_lists_what_it_left_out() {
    let dir = std::env::temp_dir().join(format!("scansentry-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ignore = dir.join("portsentry.ignore");
    std::fs::write(&ignore, "127.0.0.1/32\n198.51.100.7\n203.0.113.0/24\n").unwrap();
    let conf = dir.join("portsentry.conf");
    std::fs::write(
        &conf,
        format!(
            "TCP_PORTS=\"1,11,15,79,111\"\nUDP_PORTS=\"1,7,9\"\nIGNORE_FILE=\"{}\"\n\
             BLOCK_TCP=\"1\"\nBLOCK_UDP=\"1\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY\"\n",
            ignore.display()
        ),
    )
    .unwrap();
    let out_file = dir.join("scansentry.toml");
    let _ = std::fs::remove_file(&out_file);
    let o = sentryctl(&[
        "import-portsentry",
        conf.to_str().unwrap(),
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("portsentry.conf:6: KILL_HOSTS_DENY: not imported"));
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert!(written.contains("addresses = [\"198.51.100.7\", \"203.0.113.0/24\"]"));
    let v = sentryctl(&["validate", out_file.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
    // An existing file is never overwritten.
    let again = sentryctl(&[
        "import-portsentry",
        conf.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("File exists"), "{}", stderr(&again));
    // A missing file: one line, exit 1.
    let missing = sentryctl(&["import-portsentry", "/nonexistent/portsentry.conf"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing).trim(),
        "sentryctl: error: cannot read /nonexistent/portsentry.conf: No such file or directory (os error 2)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_imports_nmap_scans_diffs_them_and_says_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("scansentry-ctl-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.sqlite");
    let _ = std::fs::remove_file(&db);
    let scan = |name: &str, ports: &[(u16, &str)]| {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?>\n<nmaprun scanner=\"nmap\" start=\"1763769107\">\n\
             <host><status state=\"up\"/><address addr=\"203.0.113.5\" addrtype=\"ipv4\"/><ports>\n",
        );
        for (port, service) in ports {
            xml.push_str(&format!(
                "<port protocol=\"tcp\" portid=\"{port}\"><state state=\"open\"/>\
                 <service name=\"{service}\"/></port>\n"
            ));
        }
        xml.push_str("</ports></host>\n</nmaprun>\n");
        let path = dir.join(name);
        std::fs::write(&path, xml).unwrap();
        path
    };
    let import = |file: &Path| {
        sentryctl(&[
            "audit",
            "--db",
            db.to_str().unwrap(),
            "--import-nmap",
            file.to_str().unwrap(),
        ])
    };
    let first = import(&scan("a.xml", &[(22, "ssh"), (80, "http")]));
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let second = import(&scan("b.xml", &[(22, "ssh"), (443, "https")]));
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert_eq!(
        stdout(&second).lines().skip(1).collect::<Vec<_>>(),
        ["- 203.0.113.5 80/tcp http", "+ 203.0.113.5 443/tcp https"]
    );
    let bad = sentryctl(&["audit", "--db", db.to_str().unwrap(), "--diff", "whenever"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad).trim(),
        "sentryctl: error: --diff \"whenever\": give a snapshot number, a time like \
         2026-11-21T10:00:00Z, or an age like 1d"
    );
    let missing = sentryctl(&[
        "audit",
        "--db",
        db.to_str().unwrap(),
        "--import-nmap",
        "/nonexistent.xml",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 16, 15: `--json` holds for errors and for `validate` too: scripts read one object on
/// standard output whatever happened (the human message stays on standard error).
#[test]
fn json_is_kept_for_errors_and_validate() {
    let json = |o: &Output| -> serde_json::Value {
        serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
    };
    let o = sentryctl(&["--json", "validate", "/nonexistent/scansentry.toml"]);
    assert_eq!(o.status.code(), Some(78));
    let v = json(&o);
    assert_eq!(v["valid"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("cannot read configuration /nonexistent/scansentry.toml"),
        "{v}"
    );
    let f = TempFile::new("json-valid", "[respond]\nblock-for = \"2h\"\n");
    let o = sentryctl(&["--json", "validate", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["valid"].as_bool(), v["config"].as_str()),
        (Some(true), Some(f.path()))
    );

    let o = sentryctl(&["--json", "--socket", "/nonexistent/control.sock", "status"]);
    assert_eq!(o.status.code(), Some(69));
    let v = json(&o);
    assert_eq!(v["result"], "error");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach sentryd at /nonexistent/control.sock"),
        "{v}"
    );

    let d = FakeDaemon::start("json-refused", |_| Response::Error {
        message: "203.0.113.7 is on the never-block list".into(),
    });
    let o = sentryctl(&[
        "--json",
        "--socket",
        d.socket.to_str().unwrap(),
        "block",
        "203.0.113.7",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        json(&o),
        serde_json::json!({"schema": 1, "result": "error", "message": "203.0.113.7 is on the never-block list"})
    );
}

/// Issue 16, 12: scansentry.toml(5) describes every section and key the shipped configuration
/// sets (both are made from `config::reference` since issue 25; this reads the committed files).
#[test]
fn the_configuration_man_page_describes_every_shipped_key() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("man/scansentry.toml.5")).unwrap();
    let shipped = std::fs::read_to_string(root.join("packaging/scansentry.toml")).unwrap();
    let mut checked = 0;
    for line in shipped.lines() {
        let line = line.trim_start_matches("# ").trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if !section.contains('"') {
                assert!(
                    page.contains(&format!(".SS \"[{section}]\"")),
                    "[{section}]"
                );
                checked += 1;
            }
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            continue;
        }
        let roff = key.replace('-', "\\-");
        assert!(
            page.contains(&format!("\\fB{key}\\fR")) || page.contains(&format!("\\fB{roff}\\fR")),
            "{key} is not in man/scansentry.toml.5"
        );
        checked += 1;
    }
    assert!(checked > 40, "{checked}");
}

/// Issue 24: `sentryctl fleet init` with fleet mode off, or with plain NATS and no `insecure`,
/// says so and exits 78 before it connects to anything.
#[test]
fn fleet_init_refuses_a_configuration_without_fleet_mode_or_with_plain_nats() {
    let off = TempFile::new("fleet-off.toml", "[fleet]\nenabled = false\n");
    let o = sentryctl(&["fleet", "init", "--config", off.path()]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "sentryctl: error: fleet mode is off in {}: set [fleet] enabled = true and servers\n",
            off.path()
        )
    );
    let plain = TempFile::new(
        "fleet-plain.toml",
        "[fleet]\nenabled = true\nservers = [\"nats://198.51.100.250:4222\"]\n",
    );
    let o = sentryctl(&["fleet", "init", "--config", plain.path()]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is plain NATS, without TLS"),
        "{}",
        stderr(&o)
    );
}
