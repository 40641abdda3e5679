//! The control socket: the protocol ([`protocol`], pure), the daemon's side ([`server`]) and
//! `sentryctl`'s side ([`client`]).

pub mod client;
pub mod protocol;
pub mod server;

pub use crate::config::DEFAULT_SOCKET;

/// The group whose members may use the control socket besides root.
pub const GROUP: &str = "scansentry";
