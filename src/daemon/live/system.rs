//! The engine's [`Host`] on a real machine: the kernel's sockets, routes and settings, libpcap's
//! interface list, the files it is asked for, and the firewalls it can open. **Shell.**

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::config::{Backend, Loaded};
use crate::detect::traps::Listeners;
use crate::engine::{Host, HostError};
use crate::firewall::nft::NftFirewall;
use crate::firewall::route::RouteFirewall;
use crate::firewall::{Firewall, FirewallError};
use crate::host::{self, fib::Fib};
use crate::never_block::discover::{self, HostState};
use crate::trust::{ReversePath, RouteBack};

/// This machine, as the kernel shows it.
pub(super) struct System {
    /// Routes back to the sources of detections, for the reverse-path check (`None`: the
    /// kernel cannot be asked, said once at start).
    fib: Option<Fib>,
    /// The configuration file reloads read (`None`: the default one).
    config_path: Option<PathBuf>,
}

impl System {
    pub(super) fn new(config_path: Option<PathBuf>) -> Self {
        System {
            config_path,
            fib: match Fib::open() {
                Ok(fib) => Some(fib),
                Err(e) => {
                    tracing::warn!("cannot ask the kernel for routes ({e}); no reverse-path check");
                    None
                }
            },
        }
    }

    /// This machine without routes asked (for `sentryd --never-block`).
    pub(super) fn without_routes() -> Self {
        System {
            fib: None,
            config_path: None,
        }
    }
}

/// The firewall of `backend`, opened.
///
/// # Errors
///
/// When it cannot be opened (no permission, attach mode's ruleset unfit, …).
pub(super) fn open_firewall(backend: &Backend) -> Result<Box<dyn Firewall>, FirewallError> {
    Ok(match backend {
        Backend::Nft(nft) => Box::new(NftFirewall::new(nft.clone())?),
        Backend::Route => Box::new(RouteFirewall::new()?),
    })
}

/// Gathers the host's state (of the current network namespace): the routing tables and the
/// resolver's configuration (systemd-resolved's upstream list when it points at the stub).
/// Missing files are empty.
fn read_host_state(interfaces: Vec<(String, IpAddr)>) -> HostState {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let resolv_conf = host::read_text(Path::new(discover::RESOLV_CONF))
        .ok()
        .map(|t| (PathBuf::from(discover::RESOLV_CONF), t));
    let stub = resolv_conf.as_ref().is_some_and(|(_, t)| {
        discover::nameservers(t)
            .into_iter()
            .any(discover::is_resolved_stub)
    });
    let resolved_upstream = stub
        .then(|| host::read_text(Path::new(discover::RESOLVED_UPSTREAM)).ok())
        .flatten()
        .map(|t| (PathBuf::from(discover::RESOLVED_UPSTREAM), t));
    HostState {
        interfaces,
        routes4: read("/proc/net/route"),
        routes6: read("/proc/net/ipv6_route"),
        resolv_conf,
        resolved_upstream,
    }
}

/// The name of interface `index`, or `interface N` when it has none (any more).
pub(super) fn interface_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("interface {index}"))
}

impl Host for System {
    fn host_state(&mut self) -> Result<HostState, HostError> {
        let interfaces =
            host::interface_addresses().map_err(|e| HostError::Interfaces(e.to_string()))?;
        Ok(read_host_state(interfaces))
    }

    fn read_file(&mut self, path: &Path) -> io::Result<String> {
        host::read_text(path)
    }

    fn firewall(&mut self, backend: &Backend) -> Result<Box<dyn Firewall>, FirewallError> {
        open_firewall(backend)
    }

    fn configuration(&mut self) -> Result<Loaded, HostError> {
        let mut loaded = crate::config_file::load(self.config_path.as_deref()).map_err(|e| {
            HostError::Configuration {
                line: e.one_line(),
                report: e.report(),
            }
        })?;
        crate::daemon::fleet::name_host(&mut loaded.config).map_err(|e| {
            HostError::Configuration {
                line: crate::exit::chain(&e),
                report: None,
            }
        })?;
        Ok(loaded)
    }

    fn local_port_range(&self) -> RangeInclusive<u16> {
        host::local_port_range()
    }

    fn listeners(&mut self) -> io::Result<Listeners> {
        host::read_listeners()
    }

    fn established(&mut self) -> io::Result<Vec<(IpAddr, u16, u16)>> {
        Ok(host::established_sockets()?
            .into_iter()
            .map(|s| (s.peer, s.port, s.peer_port))
            .collect())
    }

    fn route_back(&mut self, addr: IpAddr) -> Option<io::Result<RouteBack>> {
        Some(self.fib.as_mut()?.route_back(addr))
    }

    fn routes_changed(&mut self) {
        if let Some(fib) = &mut self.fib {
            fib.forget();
        }
    }

    fn kernel_reverse_path(&self, ifindex: Option<u32>) -> ReversePath {
        host::kernel_reverse_path(ifindex.map(interface_name).as_deref())
    }

    fn interface_name(&self, index: u32) -> String {
        interface_name(index)
    }
}
