//! Takes a local snapshot. **Shell**: the socket table over sock_diag, the owners from `/proc`,
//! RPC programs from the local rpcbind, names from `/etc/services` and `/etc/rpc`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::Duration;

use super::names::Names;
use super::policy::Policy;
use super::{Entry, Process, Snapshot, Source, rpcbind};
use crate::host::sockdiag::{Socket, state};
use crate::time::Timestamp;
use crate::wire::Proto;

/// How long rpcbind may take to answer.
const RPCBIND_TIMEOUT: Duration = Duration::from_millis(500);

/// The services of this host's network namespace that `policy` looks at: TCP listeners and
/// UDP sockets bound to a port and not connected, with their owners and names.
///
/// # Errors
///
/// When the socket table cannot be read.
pub fn local(policy: &Policy, names: &Names, taken: Timestamp) -> io::Result<Snapshot> {
    let sockets: Vec<Socket> = crate::host::listening_sockets()?
        .into_iter()
        .filter(|s| s.proto == Proto::Tcp || s.state == state::CLOSE)
        .collect();
    let owners = owners(&sockets.iter().map(|s| s.inode).collect());
    let rpc: HashMap<(Proto, u16), u32> = rpcbind::query(RPCBIND_TIMEOUT)
        .map(|mappings| {
            mappings
                .into_iter()
                .map(|m| ((m.proto, m.port), m.program))
                .collect()
        })
        .unwrap_or_default();
    let mut users: HashMap<u32, String> = HashMap::new();
    let entries = sockets
        .iter()
        .map(|s| {
            let rpc = rpc.get(&(s.proto, s.port)).map(|&n| names.rpc(n));
            let user = users
                .entry(s.uid)
                .or_insert_with(|| {
                    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(s.uid))
                        .ok()
                        .flatten()
                        .map_or_else(|| s.uid.to_string(), |u| u.name)
                })
                .clone();
            Entry {
                host: s.addr,
                proto: s.proto,
                port: s.port,
                name: rpc.clone().or_else(|| names.guess(s.proto, s.port)),
                rpc,
                process: owners.get(&s.inode).map(|&pid| Process {
                    pid,
                    exe: std::fs::read_link(format!("/proc/{pid}/exe"))
                        .ok()
                        .map(|p| p.display().to_string()),
                    user: user.clone(),
                }),
            }
        })
        // sentryd's own sockets (connect mode's trap ports) are not services of the host.
        .filter(|e| !e.process.as_ref().is_some_and(is_sentryd))
        .filter(|e| policy.looks_at(e))
        .collect();
    Ok(Snapshot::new(taken, Source::Local, Vec::new(), entries))
}

/// Whether `p` is a scansentry daemon (this process, or another sentryd).
fn is_sentryd(p: &Process) -> bool {
    p.pid == std::process::id()
        || p.exe.as_deref().is_some_and(|exe| {
            std::path::Path::new(exe)
                .file_name()
                .is_some_and(|n| n == "sentryd")
        })
}

/// The process holding each socket of `inodes`, from the `socket:[inode]` links in
/// `/proc/<pid>/fd`. Processes whose descriptors the reader may not see are left out.
fn owners(inodes: &HashSet<u32>) -> HashMap<u32, u32> {
    let mut found = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u32>().ok());
            if let Some(inode) = inode.filter(|i| inodes.contains(i)) {
                // The lowest pid wins for a socket shared by a parent and its workers.
                found.entry(inode).or_insert(pid);
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

/// The rules of the `expect` file at `path` ([`super::policy::parse_expect_file`]): none when
/// there is no file to read, or when the default file is missing.
///
/// # Errors
///
/// When another file cannot be read, or the file is not an `expect` file.
pub fn expect_file(path: Option<&std::path::Path>) -> Result<Vec<super::policy::Rule>, String> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => super::policy::parse_expect_file(&text, path),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && path == std::path::Path::new(crate::config::DEFAULT_EXPECT_FILE) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
