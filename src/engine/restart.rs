//! Which configuration changes a reload does not follow: what the daemon sets up once, at
//! start. **Pure**: two configurations in, the settings that wait for the next start out.
//!
//! A reload follows everything else: detection, traps (capture modes), the response, the
//! never-block list, the firewall's backend and dry run, the fleet's limits and what it shares
//! and accepts, the log's target and format, the audit's settings, the on-block program, and
//! where the state is saved.

use crate::config::{Config, Method};

/// A setting that takes effect only at the next start of sentryd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AtStart {
    /// `[metrics] listen`: the endpoint is bound at start.
    Metrics,
    /// `[fleet]` servers, host, prefix, credentials or TLS, or fleet mode on or off: the link
    /// is made at start.
    FleetLink,
    /// `[capture]` method, interfaces, immediate or banner: the captures (or connect mode's
    /// sockets) are opened at start.
    Capture,
    /// `[detect]` trap ports in connect mode: the trap sockets are bound at start.
    ConnectTraps,
    /// `[daemon] socket`: the control socket is bound at start.
    ControlSocket,
    /// `[daemon] state-dir`: the audit's history is opened at start (the state itself is
    /// saved in the new directory at once).
    AuditHistory,
}

impl AtStart {
    /// What the daemon says of it when a reload changes it.
    pub fn line(self) -> &'static str {
        match self {
            AtStart::Metrics => {
                "[metrics] listen changed: the endpoint moves at the next start of sentryd"
            }
            AtStart::FleetLink => {
                "[fleet] servers, host, prefix, credentials or TLS changed, or fleet mode was \
                 turned on or off: the link follows at the next start of sentryd (the limits \
                 and what is shared and accepted follow now)"
            }
            AtStart::Capture => {
                "[capture] method, interfaces, immediate or banner changed: the capture \
                 follows at the next start of sentryd"
            }
            AtStart::ConnectTraps => {
                "[detect] trap ports changed in connect mode: the ports listened on follow at \
                 the next start of sentryd"
            }
            AtStart::ControlSocket => {
                "[daemon] socket changed: the control socket moves at the next start of \
                 sentryd (sentryctl reaches it at the old path until then)"
            }
            AtStart::AuditHistory => {
                "[daemon] state-dir changed: the state is saved there now; the audit's history \
                 moves at the next start of sentryd"
            }
        }
    }
}

/// The settings `new` changes from `old` that wait for the next start, in the order of
/// [`AtStart`].
pub fn at_start(old: &Config, new: &Config) -> Vec<AtStart> {
    let relink = match (&old.fleet, &new.fleet) {
        (Some(old), Some(new)) => {
            old.servers != new.servers
                || old.host != new.host
                || old.prefix != new.prefix
                || old.credentials != new.credentials
                || old.tls != new.tls
        }
        (None, None) => false,
        _ => true,
    };
    let connect = old.capture.method == Method::Connect;
    [
        (AtStart::Metrics, old.metrics != new.metrics),
        (AtStart::FleetLink, relink),
        (AtStart::Capture, old.capture != new.capture),
        (
            AtStart::ConnectTraps,
            connect && new.capture.method == Method::Connect && old.traps != new.traps,
        ),
        (
            AtStart::ControlSocket,
            old.daemon.socket != new.daemon.socket,
        ),
        (
            AtStart::AuditHistory,
            old.daemon.state_dir != new.daemon.state_dir,
        ),
    ]
    .into_iter()
    .filter_map(|(what, changed)| changed.then_some(what))
    .collect()
}
