//! The local exposure audit: what this host exposes (samhain's port check, read from the
//! kernel's socket table rather than probed), what the policy says of it, and what changed
//! since an earlier snapshot (NetDiff's change reports), also for nmap scans of other hosts.
//!
//! **Pure**: [`Entry`], [`Snapshot`], [`policy`], [`diff`], [`names`], and the message codecs of
//! [`rpcbind`] and [`nmap`]. **Shell**: [`collect`] (sock_diag, `/proc`, rpcbind) and [`store`]
//! (the SQLite history).

pub mod collect;
pub mod names;
pub mod nmap;
pub mod policy;
pub mod rpcbind;
pub mod store;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::wire::Proto;

/// The process that owns a socket, as far as the reader's privileges show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Its executable, when readable.
    pub exe: Option<String>,
    /// The socket owner's user name (or uid).
    pub user: String,
}

/// One service seen open: on a local socket, or by an nmap scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The address it answers on: a host's address, or for a local socket bound to every
    /// address, `0.0.0.0` or `::`.
    pub host: IpAddr,
    /// TCP or UDP.
    pub proto: Proto,
    /// The port.
    pub port: u16,
    /// Its name: the RPC program's, or `maybe_<name>` from `/etc/services`, or nmap's.
    pub name: Option<String>,
    /// The RPC program it serves, when rpcbind says so.
    pub rpc: Option<String>,
    /// The owning process (local sockets only).
    pub process: Option<Process>,
}

impl Entry {
    /// `22/tcp`.
    pub fn port_label(&self) -> String {
        self.proto.label(self.port)
    }

    /// What identifies the service across snapshots.
    fn key(&self) -> (IpAddr, Proto, u16) {
        (self.host, self.proto, self.port)
    }
}

/// Where a snapshot came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// This host's socket table.
    Local,
    /// An imported nmap scan.
    Nmap,
}

impl Source {
    /// `local` or `nmap`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Nmap => "nmap",
        }
    }
}

/// What was open at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken.
    pub taken: Timestamp,
    /// Local, or an nmap scan.
    pub source: Source,
    /// The hosts seen up (for a local snapshot: the addresses with an open service).
    pub hosts: Vec<IpAddr>,
    /// The open services, sorted by host, protocol and port.
    pub entries: Vec<Entry>,
}

impl Snapshot {
    /// A snapshot of `entries`, sorted, with `hosts` (sorted, deduplicated); a local snapshot's
    /// hosts are those of its entries.
    pub fn new(
        taken: Timestamp,
        source: Source,
        mut hosts: Vec<IpAddr>,
        mut entries: Vec<Entry>,
    ) -> Self {
        entries.sort_by_key(Entry::key);
        entries.dedup_by_key(|e| e.key());
        if source == Source::Local {
            hosts = entries.iter().map(|e| e.host).collect();
        }
        hosts.sort_unstable();
        hosts.dedup();
        Snapshot {
            taken,
            source,
            hosts,
            entries,
        }
    }
}

/// One line of a change report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A host seen now and not before.
    HostUp {
        /// The host.
        host: IpAddr,
    },
    /// A host seen before and not now.
    HostDown {
        /// The host.
        host: IpAddr,
    },
    /// A service open now and not before.
    Opened {
        /// The service.
        entry: Entry,
    },
    /// A service open before and not now.
    Closed {
        /// The service.
        entry: Entry,
    },
}

impl Change {
    /// NetDiff's line: `+ 198.51.100.1 22/tcp maybe_ssh`, `- 198.51.100.9 (host down)`.
    pub fn line(&self) -> String {
        let service = |sign: char, e: &Entry| {
            let mut s = format!("{sign} {} {}", e.host, e.port_label());
            if let Some(name) = &e.name {
                s.push(' ');
                s.push_str(name);
            }
            if let Some(p) = &e.process {
                let one_line = crate::text::one_line;
                s.push_str(&format!(
                    " [{} pid {}{}]",
                    one_line(&p.user),
                    p.pid,
                    p.exe
                        .as_deref()
                        .map(|x| format!(" {}", one_line(x)))
                        .unwrap_or_default()
                ));
            }
            s
        };
        match self {
            Change::HostUp { host } => format!("+ {host} (host up)"),
            Change::HostDown { host } => format!("- {host} (host down)"),
            Change::Opened { entry } => service('+', entry),
            Change::Closed { entry } => service('-', entry),
        }
    }
}

/// What changed from `old` to `new`: hosts up and down (for scans of other hosts), then the
/// services opened and closed, per host in address order.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    if new.source == Source::Nmap {
        for &host in &new.hosts {
            if old.hosts.binary_search(&host).is_err() {
                changes.push(Change::HostUp { host });
            }
        }
        for &host in &old.hosts {
            if new.hosts.binary_search(&host).is_err() {
                changes.push(Change::HostDown { host });
            }
        }
    }
    let old_by: BTreeMap<_, &Entry> = old.entries.iter().map(|e| (e.key(), e)).collect();
    let new_by: BTreeMap<_, &Entry> = new.entries.iter().map(|e| (e.key(), e)).collect();
    // (entry, opened): sorted by host, protocol and port, a closed service before an opened one.
    let mut services: Vec<(&Entry, bool)> = new_by
        .iter()
        .filter(|(key, _)| !old_by.contains_key(key))
        .map(|(_, e)| (*e, true))
        .collect();
    for (key, e) in &old_by {
        // A host that went down has its own line; its services are not listed one by one.
        let host_gone = new.source == Source::Nmap && new.hosts.binary_search(&key.0).is_err();
        if !new_by.contains_key(key) && !host_gone {
            services.push((*e, false));
        }
    }
    services.sort_by_key(|(e, opened)| (e.key(), *opened));
    let services = services.into_iter().map(|(e, opened)| {
        let entry = e.clone();
        if opened {
            Change::Opened { entry }
        } else {
            Change::Closed { entry }
        }
    });
    changes.extend(services);
    changes
}

#[cfg(test)]
mod tests;
