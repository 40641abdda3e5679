//! The control socket: the protocol ([`protocol`], pure), the daemon's side ([`server`]) and
//! `sentryctl`'s side ([`client`]).

pub mod client;
pub mod protocol;
pub mod server;

/// Where the daemon listens by default (systemd's `RuntimeDirectory=scansentry`).
pub const DEFAULT_SOCKET: &str = "/run/scansentry/control.sock";

/// The group whose members may use the control socket besides root.
pub const GROUP: &str = "scansentry";
