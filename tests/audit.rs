//! The local exposure audit against real sockets, a real (stand-in) portmapper and real nmap
//! scans, in network namespaces the tests make and remove.
//!
//! Run as root: `cargo test --test audit -- --ignored`. Without root each test fails with that
//! sentence; it never passes without running.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::netns::{KillOnDrop, Netns, NetnsPair, TempDir, require_root, wait_until};

/// `sentryctl audit ARGS…` inside `ns`, with the history in `dir`.
fn audit(ns: &str, dir: &Path, args: &[&str]) -> Output {
    let db = dir.join("audit.sqlite");
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_sentryctl")])
        .args(["audit", "--db", db.to_str().unwrap()])
        .args(args)
        .output()
        .expect("sentryctl")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A Python program in `ns` (as `user`, if given), ended on drop; it prints "ready" once its
/// sockets are bound.
fn python(ns: &str, user: Option<&str>, program: &str) -> KillOnDrop {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "timeout", "60"]);
    if let Some(uid) = user {
        cmd.args([
            "setpriv",
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
        ]);
    }
    // Debian's python3: one every user may run.
    let mut child: Child = cmd
        .args(["/usr/bin/python3", "-u", "-c", program])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = child.stdout.take().expect("piped");
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).expect("the program says ready");
    assert_eq!(&buf, b"ready\n");
    KillOnDrop(child)
}

const SERVERS: &str = "import socket, time
tcp4 = socket.create_server(('0.0.0.0', 2222))
tcp6 = socket.socket(socket.AF_INET6); tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
tcp6.bind(('::1', 8443)); tcp6.listen()
udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp4.bind(('127.0.0.1', 5353))
udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); udp6.bind(('::', 6000))
# A client socket is no service.
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); client.connect(('127.0.0.1', 9))
print('ready'); time.sleep(60)
";

#[test]
#[ignore = "needs root + netns: cargo test --test audit -- --ignored"]
fn the_audit_lists_exactly_the_sockets_with_their_processes_and_follows_changes() {
    require_root();
    let ns = Netns::new("audit");
    let dir = TempDir::new("audit");
    let servers = python(&ns.0, None, SERVERS);
    let other_user = python(
        &ns.0,
        Some("65534"),
        "import socket, time\ns = socket.create_server(('0.0.0.0', 7070))\nprint('ready'); time.sleep(60)\n",
    );

    let first = audit(&ns.0, &dir.0, &["--json"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let services: Vec<String> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}/{} {} {}",
                s["host"].as_str().unwrap(),
                s["port"],
                s["proto"].as_str().unwrap(),
                s["process"]["user"].as_str().unwrap_or("?"),
                s["process"]["pid"],
            )
        })
        .collect();
    // `ip netns exec` becomes `timeout`, which starts python (setpriv becomes python).
    let python_pid = |launcher: &KillOnDrop| -> u32 {
        let id = launcher.0.id();
        std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
            .unwrap()
            .split_whitespace()
            .next()
            .expect("timeout runs python")
            .parse()
            .unwrap()
    };
    let (root_py, nobody_py) = (python_pid(&servers), python_pid(&other_user));
    assert_eq!(
        services,
        [
            format!("0.0.0.0 2222/tcp root {root_py}"),
            format!("0.0.0.0 7070/tcp nobody {nobody_py}"),
            format!("127.0.0.1 5353/udp root {root_py}"),
            format!(":: 6000/udp root {root_py}"),
            format!("::1 8443/tcp root {root_py}"),
        ],
        "{}",
        text(&first)
    );
    let exe = report["services"][0]["process"]["exe"].as_str().unwrap();
    assert!(exe.contains("python3"), "{exe}");
    assert_eq!(report["services"][2]["name"], "maybe_mdns");
    // Nothing in the policy: everything is new.
    assert_eq!(report["findings"].as_array().unwrap().len(), 5);

    // One listener stops, another starts: - and +.
    drop(other_user);
    let _later = python(
        &ns.0,
        None,
        "import socket, time\ns = socket.create_server(('::', 9090), family=socket.AF_INET6)\nprint('ready'); time.sleep(60)\n",
    );
    assert!(wait_until(Duration::from_secs(5), || {
        !text(&ns.exec(&["ss", "-ltnH"])).contains(":7070")
    }));
    let diff = audit(&ns.0, &dir.0, &["--diff"]);
    assert_eq!(diff.status.code(), Some(1), "{}", text(&diff));
    let report = text(&diff);
    let lines: Vec<&str> = report.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{report}");
    assert!(
        lines[0].starts_with("- 0.0.0.0 7070/tcp"),
        "{}",
        text(&diff)
    );
    assert!(lines[1].starts_with("+ :: 9090/tcp"), "{}", text(&diff));
    // Nothing changed since: exit 0.
    let again = audit(&ns.0, &dir.0, &["--diff"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).ends_with("no changes\n"));
}

#[test]
#[ignore = "needs root + netns: cargo test --test audit -- --ignored"]
fn the_policy_reports_required_missing_and_leaves_optional_ignored_and_skipped_alone() {
    require_root();
    let ns = Netns::new("audit");
    let dir = TempDir::new("audit");
    let _servers = python(&ns.0, None, SERVERS);
    let config = dir.0.join("scansentry.toml");
    std::fs::write(
        &config,
        "[audit]\nrequired = [\"2222/tcp\", \"25/tcp\"]\noptional = [\"5353/udp\", \"993/tcp\"]\n\
         ignore = [\"6000/udp\"]\nskip = [\"8443/tcp\"]\n",
    )
    .unwrap();
    let out = audit(&ns.0, &dir.0, &["--json", "-c", config.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ports: Vec<u64> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["port"].as_u64().unwrap())
        .collect();
    // 8443 is skipped: not even in the snapshot.
    assert_eq!(ports, [2222, 5353, 6000]);
    assert_eq!(
        report["findings"],
        serde_json::json!([{ "finding": "missing", "host": null, "rule": "25/tcp" }])
    );
}

/// A portmapper stand-in on 127.0.0.1:111 that answers PMAPPROC_DUMP with nfs on 2049/tcp and
/// a program /etc/rpc does not name on 4045/udp, as rpcbind would.
const PORTMAPPER: &str = "import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 111))
nfs = socket.create_server(('0.0.0.0', 2049))
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); other.bind(('0.0.0.0', 4045))
print('ready')
while True:
    call, peer = s.recvfrom(1024)
    xid, kind, rpcvers, prog, vers, proc = struct.unpack('>6I', call[:24])
    if (kind, prog, vers, proc) != (0, 100000, 2, 4):
        continue
    body = struct.pack('>6I', xid, 1, 0, 0, 0, 0)
    for m in [(100000, 2, 17, 111), (100003, 3, 6, 2049), (390999, 1, 17, 4045)]:
        body += struct.pack('>5I', 1, *m)
    s.sendto(body + struct.pack('>I', 0), peer)
";

#[test]
#[ignore = "needs root + netns: cargo test --test audit -- --ignored"]
fn rpc_programs_are_named_from_the_portmappers_dump() {
    require_root();
    let ns = Netns::new("audit");
    let dir = TempDir::new("audit");
    let _portmapper = python(&ns.0, None, PORTMAPPER);
    let out = audit(&ns.0, &dir.0, &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let named: Vec<String> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{} {}",
                s["port"],
                s["proto"].as_str().unwrap(),
                s["name"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        named,
        ["2049/tcp nfs", "4045/udp RPC_390999", "111/udp portmapper"],
        "{}",
        text(&out)
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test audit -- --ignored"]
fn two_nmap_scans_of_the_lab_import_and_diff() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("audit");
    let scan = |name: &str| {
        let path = dir.0.join(name);
        let out = lab.exec(
            &lab.b,
            &[
                "timeout",
                "60",
                "nmap",
                "-n",
                "-Pn",
                "-sS",
                "-p",
                "20-30,80,8080",
                "-oX",
                path.to_str().unwrap(),
                NetnsPair::A4,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    };
    let servers = lab.listen(&[22, 8080], 60);
    let first = scan("first.xml");
    drop(servers);
    let _servers = lab.listen(&[22, 80], 60);
    let second = scan("second.xml");

    let import = |file: &Path| {
        let db = dir.0.join("audit.sqlite");
        Command::new(env!("CARGO_BIN_EXE_sentryctl"))
            .args([
                "audit",
                "--db",
                db.to_str().unwrap(),
                "--import-nmap",
                file.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let one = import(&first);
    assert_eq!(one.status.code(), Some(1), "{}", text(&one));
    assert_eq!(
        text(&one).lines().skip(1).collect::<Vec<_>>(),
        [
            "+ 198.51.100.1 (host up)",
            "+ 198.51.100.1 22/tcp ssh",
            "+ 198.51.100.1 8080/tcp http-proxy",
        ]
    );
    let two = import(&second);
    assert_eq!(two.status.code(), Some(1), "{}", text(&two));
    assert_eq!(
        text(&two).lines().skip(1).collect::<Vec<_>>(),
        [
            "+ 198.51.100.1 80/tcp http",
            "- 198.51.100.1 8080/tcp http-proxy"
        ]
    );
    // The same scan again: nothing changed, exit 0.
    let three = import(&second);
    assert_eq!(three.status.code(), Some(0), "{}", text(&three));

    // A broken file: one line naming the place, exit 2.
    let broken = dir.0.join("broken.xml");
    std::fs::write(
        &broken,
        "<nmaprun start=\"1\">\n<host>\n<port protocol=\"tcp\" portid=\"http\">\n",
    )
    .unwrap();
    let bad = import(&broken);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        format!(
            "sentryctl: error: {}:3:1: portid=\"http\" is not a port",
            broken.display()
        )
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test audit -- --ignored"]
fn the_daemon_audits_every_interval_and_logs_findings_at_the_severity() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("audit");
    let _servers = lab.listen(&[2222], 60);
    let daemon = support::netns::Daemon::spawn(
        &lab.a,
        &dir.0,
        "[audit]\ninterval = \"10s\"\nseverity = \"error\"\nrequired = [\"25/tcp\"]\n",
    );
    assert!(
        wait_until(Duration::from_secs(15), || daemon
            .err()
            .contains("audit: missing: 25/tcp is required")),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    let err = daemon.err();
    assert!(err.contains("audit: new: :: 2222/tcp"), "{err}");
    assert!(daemon.out().contains("audit: 1 services open, 2 findings"));
    // The history is where `sentryctl audit` finds it: nothing changed since.
    let diff = audit(&lab.a, &dir.0.join("state"), &["--diff"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
}

#[test]
#[ignore = "needs root + netns: cargo test --test audit -- --ignored"]
fn a_service_restarted_on_the_same_port_is_reported() {
    require_root();
    let ns = Netns::new("audit");
    let dir = TempDir::new("audit");
    let config = dir.0.join("scansentry.toml");
    std::fs::write(&config, "[audit]\noptional = [\"2222/tcp\"]\n").unwrap();
    let server = "import socket, time\ns = socket.create_server(('0.0.0.0', 2222))\nprint('ready'); time.sleep(60)\n";
    let first = python(&ns.0, None, server);
    let quiet = audit(&ns.0, &dir.0, &["-c", config.to_str().unwrap()]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    assert!(text(&quiet).ends_with("1 services open, nothing to report (snapshot 1)\n"));
    drop(first);
    assert!(wait_until(Duration::from_secs(5), || {
        !text(&ns.exec(&["ss", "-ltnH"])).contains(":2222")
    }));
    let _second = python(&ns.0, None, server);
    let out = audit(&ns.0, &dir.0, &["-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let finding = text(&out)
        .lines()
        .find(|l| l.starts_with("restarted: 0.0.0.0 2222/tcp (root pid "))
        .map(str::to_owned);
    assert!(
        finding.is_some_and(|f| f.contains("(was pid ")),
        "{}",
        text(&out)
    );
}
