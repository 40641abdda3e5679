//! The fleet lab: a hub namespace holding a bridge and a real `nats-server` (Debian's, with
//! JetStream, bound to the lab address 198.51.100.250 only), host namespaces web-1 … web-N at
//! 198.51.100.1 … N, each with its own sentryd and nft table, and a scanner namespace at
//! 198.51.100.200 (and .201 … .209) that reaches them all. Everything is removed on drop.

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

    /// Whether this host's kernel set holds `addr` (the table's IPv4 set, as nft lists it).
    pub fn holds(&self, addr: &str) -> bool {
        let out = self
            .ns
            .exec(&["nft", "-j", "list", "set", "inet", "scansentry", "blocked4"]);
        let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(_) => return false,
        };
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("set"))
            .filter_map(|s| s.get("elem"))
            .filter_map(|e| e.as_array())
            .flatten()
            .any(|e| e.to_string().contains(&format!("\"{addr}\"")))
    }

    /// The seconds left of this host's kernel element for `addr`.
    pub fn expires(&self, addr: &str) -> Option<u64> {
        let out = self
            .ns
            .exec(&["nft", "-j", "list", "set", "inet", "scansentry", "blocked4"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["nftables"]
            .as_array()?
            .iter()
            .filter_map(|o| o.get("set"))
            .filter_map(|s| s.get("elem"))
            .filter_map(|e| e.as_array())
            .flatten()
            .find(|e| e["elem"]["val"] == addr)
            .and_then(|e| e["elem"]["expires"].as_u64())
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

/// The lab.
pub struct FleetLab {
    pub hub: Netns,
    pub hosts: Vec<Host>,
    pub scanner: Netns,
    nats: Option<KillOnDrop>,
    store: TempDir,
}

impl FleetLab {
    /// The namespaces and the bridge, `hosts` hosts (their daemons not started), the server
    /// started.
    pub fn new(hosts: usize) -> FleetLab {
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
            nats: None,
            store: TempDir::new("nats-store"),
        };
        for _ in 0..hosts {
            lab.add_host();
        }
        lab.start_nats();
        lab
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
        ip(&["-n", &self.hub.0, "link", "set", &dev, "master", "br0"]);
        self.hosts.push(Host {
            name: format!("web-{i}"),
            ns,
            dir: TempDir::new("fleet-host"),
            daemon: None,
        });
        i
    }

    /// Starts (or starts again) nats-server with JetStream, its store kept across restarts.
    pub fn start_nats(&mut self) {
        let log = self.store.0.join("nats.log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.hub.0,
                "timeout",
                "600",
                "nats-server",
            ])
            .args(["-a", NATS, "-p", "4222", "-js", "-sd"])
            .arg(self.store.0.join("js"))
            .arg("-l")
            .arg(&log)
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

    /// Starts host `i`'s sentryd (1-based) with `extra` configuration after the fleet's.
    pub fn start(&mut self, i: usize, extra: &str) {
        let host = &mut self.hosts[i - 1];
        let config = format!(
            "[fleet]\nenabled = true\nservers = [\"nats://{NATS}:4222\"]\nhost = \"{}\"\n{extra}",
            host.name
        );
        host.daemon = Some(Daemon::spawn_for(&host.ns.0, &host.dir.0, &config, 300));
        let daemon = host.daemon.as_ref().unwrap();
        let connected = wait_until(Duration::from_secs(10), || {
            daemon.out().contains("fleet: caught up")
        });
        assert!(
            connected,
            "{} did not join the fleet: {}",
            host.name,
            daemon.err()
        );
    }

    /// Starts every host's sentryd.
    pub fn start_all(&mut self, extra: &str) {
        for i in 1..=self.hosts.len() {
            self.start(i, extra);
        }
    }

    /// `nmap -sS` of `ports` of host `i` from the scanner's address `from`.
    pub fn scan(&self, from: &str, i: usize, ports: &str) {
        let out = self.scanner.exec(&[
            "timeout",
            "120",
            "nmap",
            "-n",
            "-Pn",
            "-T4",
            "-sS",
            "-S",
            from,
            "-e",
            "eth0",
            "-p",
            ports,
            &host_addr(i),
        ]);
        assert!(
            out.status.success(),
            "nmap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
