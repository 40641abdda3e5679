//! Where decisions land: the kernel's nftables sets ([`nft::NftFirewall`]), blackhole routes
//! ([`route::RouteFirewall`], for hosts without nftables), or nowhere ([`DryRun`], for
//! `dry-run = true`).
//!
//! The [`Firewall`] trait is the seam between the pure core, which decides, and the shell,
//! which carries decisions out: the responder returns [`Action`]s, the daemon hands them here.

pub mod nft;
pub mod route;

use std::time::Duration;

use ipnet::IpNet;

pub use crate::respond::Action;

/// An address or network the firewall blocks, and for how much longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The source blocked.
    pub net: IpNet,
    /// Time left; `None` for an element with no timeout (added by hand, permanent).
    pub remaining: Option<Duration>,
}

/// Why the firewall could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A table or set is missing (ENOENT).
    #[error("{what} does not exist")]
    Missing {
        /// What is missing, as nft names it (`set inet scansentry blocked4`).
        what: String,
    },
    /// The set has reached its size (ENFILE).
    #[error("{set} is full")]
    SetFull {
        /// The set, as nft names it (`set inet scansentry blocked4`).
        set: String,
    },
    /// The process may not change nftables (EPERM).
    #[error("not permitted to change nftables: sentryd needs CAP_NET_ADMIN (run it as root)")]
    Permission,
    /// Any other refusal by the kernel.
    #[error("nf_tables refused to {doing}: {errno}")]
    Kernel {
        /// What we asked for.
        doing: String,
        /// The kernel's errno.
        errno: nix::errno::Errno,
    },
    /// The netlink socket failed.
    #[error("netlink socket failed")]
    Socket(#[source] std::io::Error),
    /// Attach mode found the administrator's ruleset unfit.
    #[error("attach mode: {0}")]
    Attach(String),
    /// The process may not change what this backend changes.
    #[error("{0}")]
    NotPermitted(String),
    /// A message could not be built (a bug: what is sent is packed to fit).
    #[error(transparent)]
    Encode(#[from] nft::TooManyElements),
}

/// A firewall that blocks and unblocks sources.
pub trait Firewall {
    /// Makes sure the table, sets and rules exist (own mode) or are fit for use (attach mode),
    /// and loads the never-block list into the allow sets. Idempotent; never drops blocks that
    /// are still due.
    ///
    /// # Errors
    ///
    /// When the kernel refuses, or attach mode finds something missing.
    fn ensure_ready(&mut self, allow: &[IpNet]) -> Result<(), FirewallError>;

    /// Carries out `actions` (in as few atomic batches as the kernel takes).
    ///
    /// # Errors
    ///
    /// When the kernel refuses; nothing of the failed batch is applied.
    fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError>;

    /// Calls `changed` (from another thread) whenever the ruleset may have lost what this
    /// firewall keeps in it, so that the daemon can restore it. The default watches nothing.
    ///
    /// # Errors
    ///
    /// When watching cannot start.
    fn watch(&self, changed: Box<dyn Fn() + Send>) -> std::io::Result<()> {
        let _ = changed;
        Ok(())
    }

    /// What is blocked now, with the time left.
    ///
    /// # Errors
    ///
    /// When the sets cannot be read.
    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError>;

    /// Whether blocks end by themselves (nftables elements with a timeout). When not, the
    /// daemon lifts each block when it ends.
    fn expires_by_itself(&self) -> bool {
        true
    }
}

/// `dry-run = true`: touches nothing; the daemon logs "would block".
#[derive(Debug, Default)]
pub struct DryRun;

impl Firewall for DryRun {
    fn ensure_ready(&mut self, _allow: &[IpNet]) -> Result<(), FirewallError> {
        Ok(())
    }

    fn apply(&mut self, _actions: &[Action]) -> Result<(), FirewallError> {
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        Ok(Vec::new())
    }
}
