//! The engine's [`Host`] on a real machine: the kernel's sockets, routes and settings, libpcap's
//! interface list, and the firewall the configuration asks for. **Shell.**

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::config::{Backend, Config};
use crate::detect::traps::Listeners;
use crate::engine::{Host, HostError, NeverBlock};
use crate::firewall::nft::NftFirewall;
use crate::firewall::route::RouteFirewall;
use crate::firewall::{DryRun, Firewall, FirewallError};
use crate::host::{self, fib::Fib};
use crate::never_block::{self, discover};
use crate::report::Mode;
use crate::trust::{ReversePath, RouteBack};

/// This machine, as the kernel shows it.
pub(super) struct System {
    /// Routes back to the sources of detections, for the reverse-path check (`None`: the
    /// kernel cannot be asked, said once at start).
    fib: Option<Fib>,
}

impl System {
    pub(super) fn new() -> Self {
        System {
            fib: match Fib::open() {
                Ok(fib) => Some(fib),
                Err(e) => {
                    tracing::warn!("cannot ask the kernel for routes ({e}); no reverse-path check");
                    None
                }
            },
        }
    }
}

/// The host's addresses and the never-block list: discovered (interfaces, gateways,
/// nameservers), configured, and from the never-block file.
///
/// # Errors
///
/// When the interfaces cannot be listed or the never-block file cannot be read.
pub(super) fn never_block(config: &Config) -> Result<NeverBlock, HostError> {
    let interfaces =
        host::interface_addresses().map_err(|e| HostError::Interfaces(e.to_string()))?;
    let mut discovered = discover::discover(&discover::read_host_state(interfaces.clone()));
    if let Some(fleet) = &config.fleet {
        discovered.extend(fleet.never_block_entries());
    }
    let (list, warnings) = never_block::load(&config.never_block, discovered)?;
    Ok(NeverBlock {
        interfaces,
        list,
        warnings,
    })
}

/// The firewall `config` asks for.
pub(super) fn firewall_for(config: &Config) -> Result<(Mode, Box<dyn Firewall>), FirewallError> {
    if config.respond.dry_run {
        return Ok((Mode::DryRun, Box::new(DryRun)));
    }
    Ok(match &config.backend {
        Backend::Nft(nft) => (Mode::Enforcing, Box::new(NftFirewall::new(nft.clone())?)),
        Backend::Route => (Mode::Enforcing, Box::new(RouteFirewall::new()?)),
    })
}

/// The name of interface `index`, or `interface N` when it has none (any more).
pub(super) fn interface_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("interface {index}"))
}

impl Host for System {
    fn never_block(&mut self, config: &Config) -> Result<NeverBlock, HostError> {
        never_block(config)
    }

    fn firewall(&mut self, config: &Config) -> Result<(Mode, Box<dyn Firewall>), FirewallError> {
        firewall_for(config)
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
