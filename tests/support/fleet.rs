//! The fleet lab: a hub namespace holding a bridge and a real `nats-server` (Debian's, with
//! JetStream, bound to the lab address 198.51.100.250 only), host namespaces web-1 … web-N at
//! 198.51.100.1 … N, each with its own sentryd and nft table, and a scanner namespace at
//! 198.51.100.200 (and .201 … .209) that reaches them all. Everything is removed on drop.
//! Optionally ([`FleetLab::management`]), a management network of its own, where an
//! administrator at [`ADMIN`] reaches every host by a second link.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::netns::{Daemon, KillOnDrop, Netns, TempDir, ip, link, wait_until};

/// The NATS server's address in the lab.
pub const NATS: &str = "198.51.100.250";
/// The scanner's first address; `scanner_addr(k)` are the others.
pub const SCANNER: &str = "198.51.100.200";

/// The scanner's `k`-th address (0 is [`SCANNER`]), k < 10.
pub fn scanner_addr(k: u8) -> String {
    assert!(k < 10);
    format!("198.51.100.{}", 200 + u16::from(k))
}

/// The administrator's address on the management network ([`FleetLab::management`]).
pub const ADMIN: &str = "203.0.113.250";

/// Host `i`'s address on the management network (1-based).
pub fn management_addr(i: usize) -> String {
    assert!((1..250).contains(&i));
    format!("203.0.113.{i}")
}

/// Host `i`'s address (1-based).
pub fn host_addr(i: usize) -> String {
    assert!((1..200).contains(&i));
    format!("198.51.100.{i}")
}

/// One host of the fleet: its namespace, its directory, its sentryd.
pub struct Host {
    pub name: String,
    pub ns: Netns,
    pub dir: TempDir,
    pub daemon: Option<Daemon>,
}

impl Host {
    /// The running daemon.
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the host's sentryd runs")
    }

    /// The elements of this host's kernel set of IPv4 blocks, as nft lists them (none when
    /// the set cannot be read).
    fn elements(&self) -> Vec<serde_json::Value> {
        self.set_elements("blocked4")
    }

    /// Every element of this host's kernel sets of blocks, IPv4 and IPv6, as `ADDR` or
    /// `ADDR/LEN`, sorted.
    pub fn blocked(&self) -> Vec<String> {
        let mut all: Vec<String> = ["blocked4", "blocked6"]
            .into_iter()
            .flat_map(|set| self.set_elements(set))
            .map(|e| {
                let val = &e["elem"]["val"];
                match (val.as_str(), val.get("prefix")) {
                    (Some(addr), _) => addr.to_string(),
                    (None, Some(p)) => format!(
                        "{}/{}",
                        p["addr"].as_str().unwrap_or("?"),
                        p["len"].as_u64().unwrap_or(0)
                    ),
                    _ => val.to_string(),
                }
            })
            .collect();
        all.sort();
        all
    }

    /// The elements of this host's kernel set `set`.
    fn set_elements(&self, set: &str) -> Vec<serde_json::Value> {
        let out = self
            .ns
            .exec(&["nft", "-j", "list", "set", "inet", "scansentry", set]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("set"))
            .filter_map(|s| s.get("elem"))
            .filter_map(|e| e.as_array())
            .flatten()
            .cloned()
            .collect()
    }

    /// Whether this host's kernel set holds `addr`.
    pub fn holds(&self, addr: &str) -> bool {
        self.expires(addr).is_some()
    }

    /// The seconds left of this host's kernel element for `addr`.
    pub fn expires(&self, addr: &str) -> Option<u64> {
        self.elements()
            .iter()
            .find(|e| e["elem"]["val"] == addr)
            .and_then(|e| e["elem"]["expires"].as_u64())
    }

    /// A listener on `port` (all addresses) for `seconds`: an open port, a service.
    pub fn listen(&self, port: u16, seconds: u32) -> KillOnDrop {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns.0, "timeout", &seconds.to_string()])
            .args(["python3", "-c"])
            .arg(format!(
                "import socket, time\n\
                 s = socket.create_server(('0.0.0.0', {port}), backlog=64)\n\
                 time.sleep({seconds})\n"
            ))
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let guard = KillOnDrop(child);
        let up = wait_until(Duration::from_secs(5), || {
            let out = self.ns.exec(&["ss", "-ltnH"]);
            String::from_utf8_lossy(&out.stdout).contains(&format!(":{port} "))
        });
        assert!(up, "the listener on {} did not start", self.name);
        guard
    }

    /// `sentryctl ARGS…` against this host's daemon: its standard output (asserting success).
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.daemon().ctl(args);
        assert!(
            out.status.success(),
            "sentryctl {args:?} on {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A management network of its own: a namespace holding a bridge, with the administrator's
/// address [`ADMIN`] on it, and a link from every host (`mgmt0`, [`management_addr`]), by which
/// each host routes 203.0.113.0/24 (not by the hosts' shared bridge). Removed on drop.
pub struct Management {
    pub ns: Netns,
}

impl Management {
    /// Opens and closes a TCP connection from [`ADMIN`] to `port` of every host's management
    /// address (`hosts` hosts), as an administrator's session would; whether every one
    /// connected.
    pub fn connects_to_every_host(&self, hosts: usize, port: u16) -> bool {
        let hosts: Vec<String> = (1..=hosts).map(management_addr).collect();
        connects_to_every(&self.ns, ADMIN, &hosts, port)
    }
}

/// How the lab's nats-server runs.
pub enum Server {
    /// Plain, anyone may publish anything (the command line's options).
    Open,
    /// The README's example, `examples/fleet/nats-server.conf`, as it is: TLS with a certificate
    /// per host, each mapped to its user, who may publish only as itself. It runs in a mount
    /// namespace of its own where /etc/ssl and /var/lib are the lab's (tmpfs), holding the
    /// certificates the file names.
    Example,
}

/// Runs the future `make` makes on a current-thread runtime inside the namespace named `ns`
/// (a lab client's sockets stay there).
pub fn block_on_in<F: std::future::Future>(ns: &str, make: impl FnOnce() -> F + Send) -> F::Output
where
    F::Output: Send,
{
    super::netns::enter_and_run(ns, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(make())
    })
}

/// A member's flood of valid probe summaries (256 probes each), sent as fast as one client can
/// from the scanner's namespace until dropped; see [`FleetLab::flood_summaries`].
pub struct SummaryFlood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SummaryFlood {
    /// Stops the flood; the messages sent.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the flood's thread");
        }
    }
}

impl Drop for SummaryFlood {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The lab.
pub struct FleetLab {
    pub hub: Netns,
    pub hosts: Vec<Host>,
    pub scanner: Netns,
    server: Server,
    nats: Option<KillOnDrop>,
    store: TempDir,
    /// The lab's CA and certificates (with [`Server::Example`]).
    pub pki: TempDir,
}

impl FleetLab {
    /// The namespaces and the bridge, `hosts` hosts (their daemons not started), the server
    /// started.
    pub fn new(hosts: usize) -> FleetLab {
        FleetLab::with_server(hosts, Server::Open)
    }

    /// As [`FleetLab::new`], with the server run as `server` says.
    pub fn with_server(hosts: usize, server: Server) -> FleetLab {
        let hub = Netns::new("fhub");
        ip(&["-n", &hub.0, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &hub.0,
            "addr",
            "add",
            &format!("{NATS}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &hub.0, "link", "set", "br0", "up"]);
        let scanner = Netns::new("fscan");
        let addrs: Vec<String> = (0..10).map(|k| format!("{}/24", scanner_addr(k))).collect();
        let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        link(&scanner.0, "eth0", &addrs, &hub.0, "sc", &[]);
        ip(&["-n", &hub.0, "link", "set", "sc", "master", "br0"]);
        let mut lab = FleetLab {
            hub,
            hosts: Vec::new(),
            scanner,
            server,
            nats: None,
            store: TempDir::new("nats-store"),
            pki: TempDir::new("fleet-pki"),
        };
        for _ in 0..hosts {
            lab.add_host();
        }
        if matches!(lab.server, Server::Example) {
            lab.make_pki();
        }
        lab.start_nats();
        let made = lab.fleet_init();
        assert!(
            made.starts_with("made the bucket scansentry-blocks"),
            "{made}"
        );
        lab
    }

    /// `sentryctl fleet init` as the admin (with [`Server::Example`], with the admin's
    /// certificate), from the hub: what it said (asserting success).
    pub fn fleet_init(&self) -> String {
        let out = self.fleet_init_output();
        assert!(
            out.status.success(),
            "sentryctl fleet init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sentryctl fleet init` as the admin, from the hub, as it ended.
    pub fn fleet_init_output(&self) -> std::process::Output {
        let config = self.store.0.join("admin.toml");
        std::fs::write(
            &config,
            format!(
                "[fleet]\nenabled = true\nhost = \"admin\"\n{}",
                self.servers("admin")
            ),
        )
        .unwrap();
        self.hub.exec(&[
            env!("CARGO_BIN_EXE_sentryctl"),
            "fleet",
            "init",
            "--config",
            &config.display().to_string(),
        ])
    }

    /// A NATS client's options as `who` (a host's name or `admin`: with [`Server::Example`],
    /// its certificate), and the server's URL: a test client playing a member, or an admin.
    pub fn client(&self, who: &str) -> (async_nats::ConnectOptions, String) {
        let options = async_nats::ConnectOptions::new().name(format!("lab client {who}"));
        match self.server {
            Server::Open => (options, format!("nats://{NATS}:4222")),
            Server::Example => {
                let pki = &self.pki.0;
                (
                    options
                        .require_tls(true)
                        .add_root_certificates(pki.join("ca.pem"))
                        .add_client_certificate(
                            pki.join(format!("{who}.pem")),
                            pki.join(format!("{who}.key")),
                        ),
                    format!("tls://{NATS}:4222"),
                )
            }
        }
    }

    /// One more host (its daemon not started).
    pub fn add_host(&mut self) -> usize {
        let i = self.hosts.len() + 1;
        let ns = Netns::new("fhost");
        let dev = format!("h{i}");
        link(
            &ns.0,
            "eth0",
            &[&format!("{}/24", host_addr(i))],
            &self.hub.0,
            &dev,
            &[],
        );
        ip(&[
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("2001:db8::{i}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&["-n", &self.hub.0, "link", "set", &dev, "master", "br0"]);
        self.hosts.push(Host {
            name: format!("web-{i}"),
            ns,
            dir: TempDir::new("fleet-host"),
            daemon: None,
        });
        i
    }

    /// The management network ([`Management`]) for the hosts there are now (before their
    /// daemons start, so that each starts with its second link).
    pub fn management(&self) -> Management {
        let ns = Netns::new("fmgmt");
        ip(&["-n", &ns.0, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("{ADMIN}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &ns.0, "link", "set", "br0", "up"]);
        for i in 1..=self.hosts.len() {
            let dev = format!("m{i}");
            link(
                &self.hosts[i - 1].ns.0,
                "mgmt0",
                &[&format!("{}/24", management_addr(i))],
                &ns.0,
                &dev,
                &[],
            );
            ip(&["-n", &ns.0, "link", "set", &dev, "master", "br0"]);
        }
        Management { ns }
    }

    /// Sends Ethernet frames from the scanner's interface on the hosts' shared bridge, each
    /// `(i, frame)` to host `i` (1-based; its MAC address put in), through libpcap: what a
    /// forger on that bridge sends, whatever addresses the frames claim.
    pub fn inject(&self, frames: &[(usize, Vec<u8>)]) {
        let from = FleetLab::mac(&self.scanner, "eth0");
        let to: Vec<[u8; 6]> = self
            .hosts
            .iter()
            .map(|h| FleetLab::mac(&h.ns, "eth0"))
            .collect();
        self.scanner.run(|| {
            let mut out = pcap::Capture::from_device("eth0")
                .and_then(pcap::Capture::open)
                .expect("open the scanner's interface");
            for (i, f) in frames {
                let mut f = f.clone();
                f[..6].copy_from_slice(&to[i - 1]);
                f[6..12].copy_from_slice(&from);
                out.sendpacket(f).expect("send a frame");
            }
        });
    }

    /// A CA, the server's certificate (for [`NATS`]) and one per host (`CN=web-N`), made with
    /// openssl in `pki`.
    fn make_pki(&self) {
        let dir = &self.pki.0;
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let new_key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca = [
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=fleet-ca",
        ];
        openssl(&[&["req", "-x509"][..], &new_key, &ca].concat());
        let sign = |name: &str, ext: &str| {
            let (key, csr, pem, extfile) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            std::fs::write(dir.join(&extfile), ext).unwrap();
            let subject = format!("/CN={name}");
            let request = ["-keyout", &key, "-out", &csr, "-subj", &subject];
            openssl(&[&["req"][..], &new_key, &request].concat());
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &extfile,
            ]);
        };
        sign(
            "server",
            &format!("subjectAltName=IP:{NATS}\nextendedKeyUsage=serverAuth\n"),
        );
        for host in &self.hosts {
            sign(&host.name, "extendedKeyUsage=clientAuth\n");
        }
        // The admin who runs `sentryctl fleet init` (the example gives it the JetStream API).
        sign("admin", "extendedKeyUsage=clientAuth\n");
    }

    /// `[fleet]`'s servers for host `name`, and with [`Server::Example`] TLS with its
    /// certificate.
    pub fn servers(&self, name: &str) -> String {
        match self.server {
            Server::Open => format!("servers = [\"nats://{NATS}:4222\"]\ninsecure = true\n"),
            Server::Example => {
                let pki = self.pki.0.display();
                format!(
                    "servers = [\"tls://{NATS}:4222\"]\ntls-ca = \"{pki}/ca.pem\"\n\
                     tls-cert = \"{pki}/{name}.pem\"\ntls-key = \"{pki}/{name}.key\"\n"
                )
            }
        }
    }

    /// Publishes `messages` (subject, payload) to the lab's server as host `i` (1-based) — a
    /// test client playing a compromised member: from host `i`'s namespace, with its
    /// certificate under [`Server::Example`]. Returns once the server has them all.
    pub fn publish_as(&self, i: usize, messages: &[(String, Vec<u8>)]) {
        let host = &self.hosts[i - 1];
        let (url, tls) = match self.server {
            Server::Open => (format!("nats://{NATS}:4222"), None),
            Server::Example => {
                let pki = &self.pki.0;
                (
                    format!("tls://{NATS}:4222"),
                    Some((
                        pki.join("ca.pem"),
                        pki.join(format!("{}.pem", host.name)),
                        pki.join(format!("{}.key", host.name)),
                    )),
                )
            }
        };
        host.ns.run(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                let mut options =
                    async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
                if let Some((ca, cert, key)) = tls {
                    options = options
                        .require_tls(true)
                        .add_root_certificates(ca)
                        .add_client_certificate(cert, key);
                }
                let client = options
                    .connect(url.as_str())
                    .await
                    .expect("connect to NATS");
                for (subject, payload) in messages {
                    client
                        .publish(subject.clone(), payload.clone().into())
                        .await
                        .expect("publish");
                }
                client.flush().await.expect("flush");
            });
        });
    }

    /// Starts (or starts again) nats-server with JetStream, its store kept across restarts.
    pub fn start_nats(&mut self) {
        let log = self.store.0.join("nats.log");
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.hub.0]);
        match self.server {
            Server::Open => {
                command
                    .args(["timeout", "600", "nats-server"])
                    .args(["-a", NATS, "-p", "4222", "-m", "8222", "-js", "-sd"])
                    .arg(self.store.0.join("js"))
                    .arg("-l")
                    .arg(&log);
            }
            Server::Example => {
                let config = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/examples/fleet/nats-server.conf"
                );
                let (pki, store) = (self.pki.0.display(), self.store.0.display());
                let script = format!(
                    "set -e; mount -t tmpfs lab-ssl /etc/ssl; \
                     mkdir -p /etc/ssl/nats /etc/ssl/private; \
                     cp {pki}/server.pem /etc/ssl/nats/server.pem; \
                     cp {pki}/server.key /etc/ssl/private/nats-server.key; \
                     cp {pki}/ca.pem /etc/ssl/nats/fleet-ca.pem; \
                     mkdir -p {store}/var-lib; mount --bind {store}/var-lib /var/lib; \
                     exec timeout 600 nats-server -c {config} -l {}",
                    log.display()
                );
                command.args([
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    &script,
                ]);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (scripts/install-deps --tests installs it)");
        self.nats = Some(KillOnDrop(child));
        let ready = wait_until(Duration::from_secs(10), || {
            read(&log).matches("Server is ready").count() > self.nats_starts()
        });
        assert!(ready, "nats-server did not start: {}", read(&log));
        std::fs::write(
            self.store.0.join("starts"),
            (self.nats_starts() + 1).to_string(),
        )
        .unwrap();
    }

    /// The server's counters (`/varz` of its monitoring port, open server only).
    pub fn varz(&self) -> serde_json::Value {
        let out = self
            .hub
            .exec(&["curl", "-sS", &format!("http://{NATS}:8222/varz")]);
        serde_json::from_slice(&out.stdout).expect("nats-server's /varz")
    }

    /// The CPU time nats-server used so far, in seconds.
    pub fn nats_cpu_seconds(&self) -> f64 {
        let child = &self.nats.as_ref().expect("nats-server runs").0;
        // ip netns exec → timeout (our child) → nats-server.
        let id = child.id();
        let pid = read(Path::new(&format!("/proc/{id}/task/{id}/children")))
            .split_whitespace()
            .next()
            .expect("nats-server runs under timeout")
            .to_string();
        let stat = read(Path::new(&format!("/proc/{pid}/stat")));
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command's ")".
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    /// The MAC address of `dev` in namespace `ns`.
    pub fn mac(ns: &Netns, dev: &str) -> [u8; 6] {
        let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/address")]);
        let bytes: Vec<u8> = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("a MAC address"))
            .collect();
        bytes.try_into().expect("six bytes")
    }

    /// The server's log.
    pub fn nats_log(&self) -> String {
        read(&self.store.0.join("nats.log"))
    }

    fn nats_starts(&self) -> usize {
        read(&self.store.0.join("starts"))
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Stops nats-server (SIGTERM, as a restart by its unit would).
    pub fn stop_nats(&mut self) {
        self.nats = None;
    }

    /// Starts host `i`'s sentryd (1-based) as `[fleet] host = NAME` (its own name if `None`),
    /// with `extra` configuration after the fleet's.
    pub fn start_as(&mut self, i: usize, name: Option<&str>, extra: &str) {
        let servers = self.servers(&self.hosts[i - 1].name);
        let host = &mut self.hosts[i - 1];
        let config = format!(
            "[fleet]\nenabled = true\nhost = \"{}\"\n{servers}{extra}",
            name.unwrap_or(&host.name)
        );
        host.daemon = Some(Daemon::spawn_for(&host.ns.0, &host.dir.0, &config, 300));
        let daemon = host.daemon.as_ref().unwrap();
        let connected = wait_until(Duration::from_secs(10), || {
            daemon.out().contains("fleet: caught up")
        });
        assert!(
            connected,
            "{} did not join the fleet: {}\n{}",
            host.name,
            daemon.out(),
            daemon.err()
        );
    }

    /// A member's flood, as `origin`: valid, verified probe summaries of 256 probes each on
    /// `scansentry.probes.ORIGIN.TO` for each host `to`, as fast as one client sends them, from
    /// the scanner's namespace, until the flood is stopped.
    pub fn flood_summaries(&self, origin: &str, to: &[&str]) -> SummaryFlood {
        use scansentry::fleet::message::{Body, Check, HostName, Message, ProbeSummary};
        use std::sync::atomic::Ordering;
        let at = scansentry::time::Clock::now(&scansentry::time::SystemClock);
        let probes: Vec<ProbeSummary> = (0..256_u16)
            .map(|i| ProbeSummary {
                source: format!("203.0.113.{i}/32").parse().expect("an address"),
                port: format!("{}/tcp", 1000 + i),
                kind: "syn".into(),
                at,
                // Verified, as an honest host's: the owner counts every one.
                checked: vec![Check::ReversePath, Check::Peers],
            })
            .collect();
        let summary = Message::new(HostName::new(origin).unwrap(), Body::Probes { probes })
            .encode()
            .expect("a summary within the size");
        let summary = bytes::Bytes::from(summary);
        let subjects: Vec<String> = to
            .iter()
            .map(|to| format!("scansentry.probes.{origin}.{to}"))
            .collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (options, url) = self.client(origin);
        let ns = self.scanner.0.clone();
        let (halt, count) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&sent));
        let thread = std::thread::spawn(move || {
            block_on_in(&ns, move || async move {
                let client = options
                    .connect(url)
                    .await
                    .expect("the flood's client connects");
                while !halt.load(Ordering::Relaxed) {
                    for subject in &subjects {
                        if client
                            .publish(subject.clone(), summary.clone())
                            .await
                            .is_ok()
                        {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let _ = client.flush().await;
            });
        });
        SummaryFlood {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Starts host `i`'s sentryd (1-based) as [`FleetLab::start`] does, waiting only until it
    /// is connected (not for its catch-up).
    pub fn start_connected(&mut self, i: usize, extra: &str) {
        let servers = self.servers(&self.hosts[i - 1].name);
        let host = &mut self.hosts[i - 1];
        let config = format!(
            "[fleet]\nenabled = true\nhost = \"{}\"\n{servers}{extra}",
            host.name
        );
        host.daemon = Some(Daemon::spawn_for(&host.ns.0, &host.dir.0, &config, 300));
        let daemon = host.daemon.as_ref().unwrap();
        let connected = wait_until(Duration::from_secs(10), || {
            daemon.out().contains("fleet: connected to NATS")
        });
        assert!(connected, "{} did not connect: {}", host.name, daemon.err());
    }

    /// Starts host `i`'s sentryd (1-based) with `extra` configuration after the fleet's.
    pub fn start(&mut self, i: usize, extra: &str) {
        self.start_as(i, None, extra);
    }

    /// Starts every host's sentryd.
    pub fn start_all(&mut self, extra: &str) {
        for i in 1..=self.hosts.len() {
            self.start(i, extra);
        }
    }

    /// `nmap -sS` of `ports` of host `i` from the scanner's address `from`.
    pub fn scan(&self, from: &str, i: usize, ports: &str) {
        self.nmap(from, &["-p", ports, &host_addr(i)]);
    }

    /// `nmap -sS -p PORT` of hosts `first`..=`last` from the scanner's address `from`: one
    /// probe each (a closed port answers with a RST, which nmap does not retry).
    pub fn sweep(&self, from: &str, first: usize, last: usize, port: u16) {
        let targets = format!("198.51.100.{first}-{last}");
        self.nmap(
            from,
            &["--max-retries", "0", "-p", &port.to_string(), &targets],
        );
    }

    /// `nmap -n -Pn -T4 -sS` from the scanner's address `from` with `args`, bounded in time.
    fn nmap(&self, from: &str, args: &[&str]) {
        let mut full = vec![
            "timeout", "120", "nmap", "-n", "-Pn", "-T4", "-sS", "-S", from, "-e", "eth0",
        ];
        full.extend_from_slice(args);
        let out = self.scanner.exec(&full);
        assert!(
            out.status.success(),
            "nmap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Opens and closes a TCP connection from `from` to `port` of every host, as a monitoring
    /// check does; whether every one connected.
    pub fn check_every_host(&self, from: &str, port: u16) -> bool {
        let hosts: Vec<String> = (1..=self.hosts.len()).map(host_addr).collect();
        connects_to_every(&self.scanner, from, &hosts, port)
    }

    /// Waits up to `limit` until every host's kernel holds `addr`; the hosts that do not.
    pub fn missing(&self, addr: &str, limit: Duration) -> Vec<String> {
        wait_until(limit, || self.hosts.iter().all(|h| h.holds(addr)));
        self.hosts
            .iter()
            .filter(|h| !h.holds(addr))
            .map(|h| h.name.clone())
            .collect()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Opens and closes a TCP connection from `from` (an address of `ns`) to `port` of each of
/// `hosts`, one second each at most; whether every one connected.
fn connects_to_every(ns: &Netns, from: &str, hosts: &[String], port: u16) -> bool {
    let script = format!(
        "import socket\n\
         ok = True\n\
         for h in {hosts:?}:\n\
         \x20   s = socket.socket(); s.settimeout(1); s.bind(('{from}', 0))\n\
         \x20   try:\n\
         \x20       s.connect((h, {port}))\n\
         \x20   except OSError:\n\
         \x20       ok = False\n\
         \x20   s.close()\n\
         raise SystemExit(0 if ok else 1)\n"
    );
    ns.exec(&["timeout", "60", "python3", "-c", &script])
        .status
        .success()
}
