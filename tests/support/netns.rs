//! The namespace lab: network namespaces made by a test, removed by a guard, with addresses
//! only from the documentation ranges. Nothing here touches the root namespace's firewall,
//! routes or addresses.

/// The shipped JSON Schema, against which [`Daemon::ctl`]'s `--json` outputs and
/// [`Daemon::out`]'s JSON lines are checked (here, so that the benchmarks' lab has it too).
#[path = "schema.rs"]
pub mod schema;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The sentence a privileged test fails with when it cannot run.
pub const NEEDS_ROOT: &str =
    "needs root + netns: cargo test --test netns -- --ignored --test-threads=1";

/// Fails the test unless we are root: a privileged test never passes without running.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(euid, "0", "{NEEDS_ROOT}");
}

/// Whether a test runs at its issue's full scale (`SCALE=full` in the environment), not at
/// the reduced scale that suits a debug build on a shared machine. Full-scale runs are
/// measurements: run them against a release build (`cargo test --release`).
pub fn full_scale() -> bool {
    std::env::var_os("SCALE").is_some_and(|v| v == "full")
}

/// Runs `cmd` and waits; panics, with its stderr, when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ip` with `args`; panics, with its stderr, when it fails.
pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Two namespaces joined by a veth pair: the victim `a` (198.51.100.1, 2001:db8::1) and the
/// scanner `b` (198.51.100.2 and .3, 2001:db8::2). Both are deleted on drop, also when the test
/// fails.
pub struct NetnsPair {
    pub a: String,
    pub b: String,
    pub veth_b: String,
}

impl NetnsPair {
    pub const A4: &'static str = "198.51.100.1";
    pub const B4: &'static str = "198.51.100.2";
    pub const B4_SECOND: &'static str = "198.51.100.3";
    pub const A6: &'static str = "2001:db8::1";
    pub const B6: &'static str = "2001:db8:0:1::2";

    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let pair = NetnsPair {
            a: format!("sst-a-{tag}"),
            b: format!("sst-b-{tag}"),
            veth_b: format!("vb{tag}"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        pair.link();
        pair
    }

    /// The victim's end of the veth pair.
    pub fn veth_a(&self) -> String {
        format!("va{}", self.veth_b.trim_start_matches("vb"))
    }

    /// The veth pair between the namespaces, with the lab's addresses, up.
    fn link(&self) {
        let veth_a = self.veth_a();
        ip(&[
            "link",
            "add",
            &veth_a,
            "netns",
            &self.a,
            "type",
            "veth",
            "peer",
            "name",
            &self.veth_b,
            "netns",
            &self.b,
        ]);
        for (ns, dev, addrs) in [
            (&self.a, &veth_a, vec!["198.51.100.1/24", "2001:db8::1/48"]),
            (
                &self.b,
                &self.veth_b,
                vec!["198.51.100.2/24", "198.51.100.3/24", "2001:db8:0:1::2/48"],
            ),
        ] {
            for addr in addrs {
                let mut args = vec!["-n", ns, "addr", "add", addr, "dev", dev];
                if addr.contains(':') {
                    args.push("nodad");
                }
                ip(&args);
            }
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        no_checksum_offload(&self.b, &self.veth_b);
    }

    /// Deletes the veth pair (both ends go) and makes it again, as an interface that goes away
    /// and comes back.
    pub fn relink(&self) {
        ip(&["-n", &self.b, "link", "del", &self.veth_b]);
        self.link();
    }

    /// `nft -j list set inet scansentry SET` in the victim's namespace, as text (empty when
    /// the set does not exist).
    pub fn set_text(&self, set: &str) -> String {
        let out = self.exec(
            &self.a,
            &["nft", "-j", "list", "set", "inet", "scansentry", set],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `nft delete element inet scansentry SET { ELEMENT }` in the victim's namespace, as an
    /// administrator deletes a block by hand; panics when nft refuses.
    pub fn delete_element(&self, set: &str, element: &str) {
        let out = self.exec(
            &self.a,
            &[
                "nft",
                "delete",
                "element",
                "inet",
                "scansentry",
                set,
                &format!("{{ {element} }}"),
            ],
        );
        assert!(out.status.success(), "nft delete element: {out:?}");
    }

    /// Sends Ethernet frames from the scanner's end of the veth, as they are but for their MAC
    /// addresses (set to the two ends'), through libpcap: what a forger on that link sends,
    /// whatever addresses the frames claim.
    pub fn inject(&self, frames: &[Vec<u8>]) {
        self.inject_paced(frames, frames.len().max(1), Duration::ZERO);
    }

    /// As [`NetnsPair::inject`], `chunk` frames at a time with a `pause` after each chunk (a
    /// flood at a rate, roughly; the interface is opened once).
    pub fn inject_paced(&self, frames: &[Vec<u8>], chunk: usize, pause: Duration) {
        let chunk = chunk.max(1);
        self.inject_each(frames.len(), |i| {
            if i > 0 && i % chunk == 0 && !pause.is_zero() {
                std::thread::sleep(pause);
            }
            frames[i].clone()
        });
    }

    /// As [`NetnsPair::inject`], `count` frames made one at a time by `frame(i)` as they are
    /// sent (a flood of a million needs no million frames in memory).
    pub fn inject_each(&self, count: usize, mut frame: impl FnMut(usize) -> Vec<u8> + Send) {
        let (to, from) = self.macs();
        enter_and_run(&self.b, || {
            let mut out = self.scanner_interface();
            for i in 0..count {
                let mut f = frame(i);
                f[..6].copy_from_slice(&to);
                f[6..12].copy_from_slice(&from);
                out.sendpacket(f).expect("send a frame");
            }
        });
    }

    /// The MAC addresses of the victim's and the scanner's ends of the veth pair.
    pub fn macs(&self) -> ([u8; 6], [u8; 6]) {
        let mac = |ns: &str, dev: &str| -> [u8; 6] {
            let out = self.exec(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
            let bytes: Vec<u8> = String::from_utf8_lossy(&out.stdout)
                .trim()
                .split(':')
                .map(|b| u8::from_str_radix(b, 16).expect("a MAC address"))
                .collect();
            bytes.try_into().expect("six bytes")
        };
        (mac(&self.a, &self.veth_a()), mac(&self.b, &self.veth_b))
    }

    /// The scanner's end of the veth pair opened with libpcap for sending, from a thread that
    /// is in the scanner's namespace ([`enter_and_run`]). It receives nothing: the victim's
    /// answers would only fill its buffer.
    pub fn scanner_interface(&self) -> pcap::Capture<pcap::Active> {
        let mut out = pcap::Capture::from_device(self.veth_b.as_str())
            .and_then(pcap::Capture::open)
            .expect("open the scanner's interface");
        out.filter("ether proto 0x88b5", true)
            .expect("a filter that matches nothing here");
        out
    }

    /// Loads `ruleset` into the victim's namespace with `nft -f`; panics when nft refuses.
    pub fn load_ruleset(&self, ruleset: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.a));
        std::fs::write(&path, ruleset).unwrap();
        let out = self.exec(&self.a, &["nft", "-f", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "nft -f: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a command in namespace `ns` and waits for it.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{args:?} in {ns}: {e}"))
    }

    /// TCP listeners on `ports` in the victim's namespace (IPv4 and IPv6), for at most
    /// `seconds`; ended on drop.
    pub fn listen(&self, ports: &[u16], seconds: u32) -> KillOnDrop {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a,
                "timeout",
                &seconds.to_string(),
                "python3",
                "-c",
            ])
            .arg(format!(
                "import socket, time\n\
                 s = [socket.create_server(('::', p), family=socket.AF_INET6, \
                 dualstack_ipv6=True) for p in {ports:?}]\n\
                 time.sleep({seconds})\n"
            ))
            .spawn()
            .expect("python3");
        let guard = KillOnDrop(child);
        let up = wait_until(Duration::from_secs(5), || {
            let out = self.exec(&self.a, &["ss", "-ltnH"]);
            String::from_utf8_lossy(&out.stdout).lines().count() >= ports.len()
        });
        assert!(up, "the listeners did not start");
        guard
    }

    /// Whether `from`, an address of the scanner's namespace, opens a TCP connection to the
    /// victim's `port` (at the victim's address of the same family) within a second.
    pub fn connects(&self, from: &str, port: u16) -> bool {
        let (family, to) = if from.contains(':') {
            ("AF_INET6", Self::A6)
        } else {
            ("AF_INET", Self::A4)
        };
        let script = format!(
            "import socket; s = socket.socket(socket.{family}); s.settimeout(1); \
             s.bind(('{from}', 0)); s.connect(('{to}', {port}))"
        );
        self.exec(&self.b, &["python3", "-c", &script])
            .status
            .success()
    }

    /// Runs nmap from the scanner's namespace (bounded by `timeout`).
    pub fn nmap(&self, args: &[&str]) -> Output {
        // Once blocked, every probe goes unanswered: one retry keeps nmap from waiting long.
        let mut full = vec![
            "timeout",
            "60",
            "nmap",
            "-n",
            "-Pn",
            "-T4",
            "--max-retries",
            "1",
        ];
        full.extend_from_slice(args);
        let out = self.exec(&self.b, &full);
        assert!(
            out.status.success(),
            "nmap {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and with it the peer.
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
    }
}

/// How a daemon is started: for how long it may run, through which wrapper, with which more
/// arguments, and how long it has to say it is watching.
#[derive(Clone, Copy)]
struct How<'a> {
    seconds: u32,
    wrapper: &'a [&'a str],
    args: &'a [&'a str],
    ready: Duration,
}

/// `sentryd` running in a namespace with a config file of the test's; killed (by its PID) on
/// drop. Its stdout and stderr go to files in `dir`.
pub struct Daemon {
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub socket: PathBuf,
}

impl Daemon {
    /// The daemon's control socket and state directory are in `dir`, never the host's. It runs
    /// for at most two minutes.
    pub fn spawn(ns: &str, dir: &Path, config: &str) -> Self {
        Self::spawn_for(ns, dir, config, 120)
    }

    /// As [`Daemon::spawn`], for at most `seconds`.
    pub fn spawn_for(ns: &str, dir: &Path, config: &str, seconds: u32) -> Self {
        Self::spawn_with(ns, dir, config, seconds, &[])
    }

    /// As [`Daemon::spawn_for`], with more arguments for sentryd.
    pub fn spawn_with(ns: &str, dir: &Path, config: &str, seconds: u32, args: &[&str]) -> Self {
        Self::spawn_wrapped(ns, dir, config, seconds, &[], args)
    }

    /// As [`Daemon::spawn`], given `ready` to say it is watching (ten seconds elsewhere): for a
    /// start that has much to load.
    pub fn spawn_patient(ns: &str, dir: &Path, config: &str, ready: Duration) -> Self {
        let how = How {
            seconds: 120,
            wrapper: &[],
            args: &[],
            ready,
        };
        Self::start(ns, dir, config, &how)
    }

    /// As [`Daemon::spawn_with`], started through `wrapper` (a command that runs the rest of its
    /// command line, like `setpriv …`).
    pub fn spawn_wrapped(
        ns: &str,
        dir: &Path,
        config: &str,
        seconds: u32,
        wrapper: &[&str],
        args: &[&str],
    ) -> Self {
        let how = How {
            seconds,
            wrapper,
            args,
            ready: Duration::from_secs(10),
        };
        Self::start(ns, dir, config, &how)
    }

    /// Writes `config` to `dir`/`name` with a `[daemon]` section that keeps the daemon's
    /// control socket and state in `dir`; the file's path.
    pub fn write_config(dir: &Path, name: &str, config: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "{config}\n[daemon]\nsocket = \"{}\"\nstate-dir = \"{}\"\n",
                dir.join("control.sock").display(),
                dir.join("state").display()
            ),
        )
        .unwrap();
        path
    }

    fn start(ns: &str, dir: &Path, config: &str, how: &How) -> Self {
        let How {
            seconds,
            wrapper,
            args,
            ready,
        } = *how;
        let config_path = Self::write_config(dir, "scansentry.toml", config);
        let stdout = dir.join("sentryd.out");
        let stderr = dir.join("sentryd.err");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", &seconds.to_string()])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_sentryd"))
            .arg("-c")
            .arg(&config_path)
            .args(args)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("start sentryd");
        let daemon = Daemon {
            child,
            stdout,
            stderr,
            socket: dir.join("control.sock"),
        };
        // Ready when it says it is watching.
        let started = wait_until(ready, || daemon.out().contains("watching"));
        assert!(started, "sentryd did not start: {}", daemon.err());
        daemon
    }

    /// What sentryd wrote to standard output; its JSON log lines (`[log] format = "json"`)
    /// are checked against the shipped schema.
    pub fn out(&self) -> String {
        let out = read(&self.stdout);
        for line in out.lines().filter(|l| l.starts_with("{\"timestamp\":")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                schema::check(&v);
            }
        }
        out
    }

    /// sentryd's own PID: the child of the `timeout` we started.
    pub fn pid(&self) -> String {
        let id = self.child.id();
        read(Path::new(&format!("/proc/{id}/task/{id}/children")))
            .split_whitespace()
            .next()
            .expect("sentryd runs under timeout")
            .to_string()
    }

    /// Runs `sentryctl --socket SOCKET ARGS…` (from the root namespace: a Unix socket is a file).
    pub fn ctl(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_sentryctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run sentryctl");
        if args.contains(&"--json") {
            // Every `--json` output of the suite is checked against the shipped schema.
            schema::check_text(&String::from_utf8_lossy(&out.stdout));
        }
        out
    }

    /// `sentryctl ARGS… --json`, its answer parsed (and checked against the schema, as every
    /// `--json` output is).
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ctl(&args);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("sentryctl {args:?}: {e}: {out:?}"))
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn err(&self) -> String {
        read(&self.stderr)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Ends a child started as `ip netns exec NS timeout N CMD…`: `ip netns exec` execs `timeout`
/// (our child, by PID), which passes SIGTERM on to the command. SIGKILL only if that did not
/// end it.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let ended = wait_until(Duration::from_secs(3), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
#[expect(
    clippy::disallowed_methods,
    reason = "a test's deadline is wall-clock time, outside the code under test"
)]
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scansentry-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child started as `ip netns exec NS timeout N CMD…`, ended by [`terminate`] on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// A veth pair between namespaces `a` and `b` (devices `dev_a` in `a`, `dev_b` in `b`), with
/// `addrs_a` and `addrs_b` (CIDR) on its ends, both up. Deleting either namespace deletes it.
pub fn link(a: &str, dev_a: &str, addrs_a: &[&str], b: &str, dev_b: &str, addrs_b: &[&str]) {
    ip(&[
        "-n", a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", b,
    ]);
    for (ns, dev, addrs) in [(a, dev_a, addrs_a), (b, dev_b, addrs_b)] {
        for addr in addrs {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
        }
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
}

/// Turns off transmit checksum offload on `dev` in namespace `ns` (`ethtool -K DEV tx off`,
/// through its ioctl: ethtool is not installed everywhere). That namespace's stack then
/// finishes every checksum itself, as a host on a wire does; over a veth it otherwise leaves
/// only the pseudo-header's sum, which sentryd on the other end does not count (its capture
/// cannot tell that form from a forger's: issue 24).
pub fn no_checksum_offload(ns: &str, dev: &str) {
    // struct ethtool_value { cmd = ETHTOOL_STXCSUM (0x17), data = 0 }, pointed at by an ifreq
    // (40 bytes) for SIOCETHTOOL (0x8946).
    let script = "import array, fcntl, socket, struct, sys\n\
                  value = array.array('I', [0x17, 0])\n\
                  ifreq = struct.pack('16sP16x', sys.argv[1].encode(), value.buffer_info()[0])\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  fcntl.ioctl(s.fileno(), 0x8946, ifreq)\n";
    run(Command::new("ip").args(["netns", "exec", ns, "python3", "-c", script, dev]));
}

/// One network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(prefix: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sst-{prefix}-{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }

    /// Runs `f` on a thread that has entered the namespace (sockets it opens stay there).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        enter_and_run(&self.0, f)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{args:?} in {}: {e}", self.0))
    }

    /// `nft -j ARGS…` inside the namespace, parsed.
    pub fn nft_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["nft", "-j"];
        full.extend_from_slice(args);
        let out = self.exec(&full);
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("nft -j prints JSON")
    }
}

/// The elements of the set in `listing`, what `nft -j list set …` prints: each as nft writes it
/// (an address, `{"elem": {"val": …, "expires": …}}`, `{"prefix": …}`, a concatenation).
pub fn set_elements(listing: &serde_json::Value) -> Vec<serde_json::Value> {
    listing["nftables"]
        .as_array()
        .expect("nft -j prints an nftables array")
        .iter()
        .find_map(|o| o.get("set"))
        .and_then(|s| s.get("elem"))
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default()
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `f` on a new thread inside network namespace `name` (a thread's namespace is its own;
/// the test's other threads stay where they are).
pub fn enter_and_run<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{name}");
    std::thread::scope(|s| {
        s.spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("the namespace thread panicked")
    })
}

/// An administrator's ruleset for attach mode: the shipped sets (`nft/attach.nft`) and, when
/// `first_line`, the shipped first line (`nft/first-line.nft`), both from this checkout, in
/// `table inet filter`, with a block chain of theirs before the first line (priority filter -
/// 10) that accepts the rest.
pub fn attach_ruleset(first_line: bool) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = if first_line {
        format!(
            "\tinclude \"{}\"\n",
            root.join("nft/first-line.nft").display()
        )
    } else {
        String::new()
    };
    format!(
        "include \"{}\"\ntable inet filter {{\n{include}\tchain input {{\n\t\t\
         type filter hook input priority filter - 10; policy accept;\n\t\t\
         ip saddr @scansentry4 counter drop\n\t\tip6 saddr @scansentry6 counter drop\n\t}}\n}}\n",
        root.join("nft/attach.nft").display()
    )
}
