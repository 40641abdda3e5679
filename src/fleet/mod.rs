//! Fleet mode: hosts that share their blocks, and the probes that only add up to a sweep
//! across hosts, over NATS. This is its pure part — the messages and their checks
//! ([`message`]), what no message may block ([`floor`]), the receiver's own rules for a block
//! from another host ([`gate`]), the sweep count ([`sweep`]); the engine applies them
//! (`engine::fleet`), the NATS link is the shell's (`daemon::fleet`), the configuration is
//! `config::fleet`. The README's "Fleet mode" section has the design.

pub mod floor;
pub mod gate;
pub mod message;
pub mod sweep;

/// A host is a member of the fleet while it was heard from (a heartbeat, or any message) this
/// recently; members send a heartbeat every [`HEARTBEAT_EVERY`].
pub const MEMBER_FOR: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a host says it is alive.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
