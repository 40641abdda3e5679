//! Where decisions land: the kernel's nftables sets ([`nft::NftFirewall`]), blackhole routes
//! ([`route::RouteFirewall`], for hosts without nftables), or nowhere ([`DryRun`], for
//! `dry-run = true`).
//!
//! The [`Firewall`] trait is the seam between the pure core, which decides, and the shell,
//! which carries decisions out: the responder returns [`Action`]s, the daemon hands them here.

pub mod memory;
pub mod nft;
pub mod route;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;

use crate::report::source_text;
pub use crate::respond::Action;
use crate::text::human;
use crate::wire::Proto;

/// An address or network the firewall blocks, and for how much longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The source blocked.
    pub net: IpNet,
    /// Time left; `None` for an element with no timeout (added by hand, permanent).
    pub remaining: Option<Duration>,
}

/// What another program did to the ruleset, as a firewall's watcher reports it: facts, which
/// the engine judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulesetChange {
    /// The table, a chain, a rule or a set of ours was deleted.
    Lost,
    /// Notifications were lost: anything may have changed.
    Missed,
    /// These elements were deleted from our block sets (`nft delete element`, `nft flush
    /// set`).
    ElementsDeleted(Vec<IpNet>),
}

/// A hold the kernel's first line made, as the kernel reported it (one report per hold): the
/// source, and the probe that crossed the kernel's threshold. Facts, which the engine judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHold {
    /// The source held (an IPv6 source is counted by its /64, but held alone).
    pub source: IpAddr,
    /// The probe's protocol and destination port.
    pub proto: Proto,
    /// The probe's destination port.
    pub port: u16,
    /// The probe's TCP flags (none for UDP).
    pub tcp_flags: Option<u8>,
    /// The interface it arrived on, when the kernel said.
    pub ifindex: Option<u32>,
}

/// What the kernel's first line must know of the host to count only what the daemon would:
/// the daemon keeps it in the first line's sets, whole, each time it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstLineFacts {
    /// Ports never counted: those something listens on (a port bound to one address counts for
    /// all: fewer trap ports, which fails safe), and those `[detect] exclude-tcp`/`exclude-udp`
    /// name.
    pub listening: BTreeSet<(Proto, u16)>,
    /// Tripwire ports (`[detect] tripwire-tcp/udp`): one probe holds.
    pub tripwires: BTreeSet<(Proto, u16)>,
    /// The ports scanners probe first (`crate::first_line::SCANNERS_FIRST`): a probe of one
    /// draws once more.
    pub scanners_first: BTreeSet<(Proto, u16)>,
    /// Protected peers: never counted, never held.
    pub peers: Vec<IpNet>,
    /// The ports the kernel hands out to outgoing connections (`[detect] ephemeral-udp`): UDP to
    /// them is never counted (late replies). None when the exemption is off.
    pub ephemeral: Option<RangeInclusive<u16>>,
}

/// The first line's own counters, read from the kernel: what it could not do because a set was
/// full (it then fails open: the probe is not counted, or the hold not made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirstLineCounters {
    /// Probes not counted because the pairs or score sets were full.
    pub score_full: u64,
    /// Holds not made because the hold sets were full.
    pub hold_full: u64,
}

/// How the kernel's reports of the first line's holds fared ([`Firewall::watch_holds`]): a
/// report lost is a hold the daemon did not hear of, which it finds in the hold sets
/// ([`Firewall::holds`]). `overruns` grows as soon as the reader finds its socket overflowed;
/// `lost` says how many reports that cost once the next one arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HoldReports {
    /// Holds reported.
    pub reported: u64,
    /// Reports the kernel dropped because the reader's socket was full (from the gaps in its
    /// sequence numbers).
    pub lost: u64,
    /// Times the socket was found overflowed (each lost one report or more).
    pub overruns: u64,
    /// Reports of a hold whose packet could not be read (extension headers past what the
    /// kernel copies, a later fragment): the hold was made, its source and port are unknown.
    pub unreadable: u64,
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
    /// What the block would change belongs to someone else (a route not of ours).
    #[error("{0}")]
    NotOurs(String),
    /// A message could not be built (a bug: what is sent is packed to fit).
    #[error(transparent)]
    Encode(#[from] nft::TooManyElements),
    /// Of several changes, the kernel refused these; all the others were made.
    #[error(
        "the kernel refused {} of {of} changes (the others were made): {}",
        refused.len(),
        refused.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Refused {
        /// Each refused change, with the kernel's reason.
        refused: Vec<Refusal>,
        /// How many changes were asked for.
        of: usize,
    },
}

impl FirewallError {
    /// The kernel's refusal, with `errno`, to `doing`, which concerns `what` (a set or a table,
    /// as nft names it): permission, a missing object and a full set have errors of their own.
    pub fn from_errno(errno: nix::errno::Errno, doing: String, what: String) -> Self {
        use nix::errno::Errno;
        match errno {
            Errno::EPERM => FirewallError::Permission,
            Errno::ENOENT => FirewallError::Missing { what },
            Errno::ENFILE => FirewallError::SetFull { set: what },
            errno => FirewallError::Kernel { doing, errno },
        }
    }

    /// Whether the error concerns what was sent (an element, a set), so that other changes
    /// may still go through; not for a socket, a permission or a ruleset that does not fit.
    fn is_about_the_change(&self) -> bool {
        matches!(
            self,
            FirewallError::Missing { .. }
                | FirewallError::SetFull { .. }
                | FirewallError::Kernel { .. }
                | FirewallError::NotOurs(_)
        )
    }
}

/// A change the kernel refused.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {error}")]
pub struct Refusal {
    /// The change.
    pub action: Action,
    /// Why it was refused.
    #[source]
    pub error: FirewallError,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Block { net, ttl } => {
                write!(f, "block {} for {}", source_text(net), human(*ttl))
            }
            Action::Unblock { net } => write!(f, "unblock {}", source_text(net)),
        }
    }
}

/// Carries out `actions` with `send`, `batch` at a time. When a batch of several fails for
/// something it carried (an element the kernel refuses, a full set), its changes are sent again
/// one at a time, so that one bad element never costs the others; the refused ones are
/// reported together in [`FirewallError::Refused`]. A single change gets its own error.
///
/// # Errors
///
/// [`FirewallError::Refused`] with each refused change; or, when nothing can be sent (socket,
/// permission), that error at once.
pub fn apply_each(
    actions: &[Action],
    batch: usize,
    mut send: impl FnMut(&[Action]) -> Result<(), FirewallError>,
) -> Result<(), FirewallError> {
    if actions.len() == 1 {
        return send(actions);
    }
    let mut refused = Vec::new();
    for chunk in actions.chunks(batch.max(1)) {
        let Err(error) = send(chunk) else { continue };
        if !error.is_about_the_change() {
            return Err(error);
        }
        if let [action] = chunk {
            refused.push(Refusal {
                action: action.clone(),
                error,
            });
            continue;
        }
        for action in chunk {
            match send(std::slice::from_ref(action)) {
                Ok(()) => {}
                Err(error) if error.is_about_the_change() => refused.push(Refusal {
                    action: action.clone(),
                    error,
                }),
                Err(error) => return Err(error),
            }
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(FirewallError::Refused {
            refused,
            of: actions.len(),
        })
    }
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
    /// When the kernel refuses. A refused change never costs the others: of several, those
    /// the kernel took are made and the rest come back in [`FirewallError::Refused`] (see
    /// [`apply_each`]).
    fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError>;

    /// Calls `changed` (from another thread) whenever the ruleset may have lost what this
    /// firewall keeps in it, so that the daemon can restore it, and whenever another program
    /// deleted elements from its block sets. The default watches nothing.
    ///
    /// # Errors
    ///
    /// When watching cannot start.
    fn watch(&self, changed: Box<dyn Fn(RulesetChange) + Send>) -> std::io::Result<()> {
        let _ = changed;
        Ok(())
    }

    /// Stops the watchers [`Firewall::watch`] and [`Firewall::watch_holds`] started: they
    /// report nothing more. For a firewall about to be replaced (a reload): the next one
    /// changes the kernel through a socket of its own, which this one's watcher would take for
    /// another program's, and binds the first line's log group, which this one frees. The
    /// default has no watcher to stop.
    fn retire(&self) {}

    /// What is blocked now, with the time left.
    ///
    /// # Errors
    ///
    /// When the sets cannot be read.
    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError>;

    /// Asked at a start, before [`Firewall::ensure_ready`] (and when the watcher missed
    /// notifications): what the block sets hold, when this firewall can tell that they were
    /// kept since the last run — own mode's table and sets exist, so an element missing from
    /// them was deleted, not lost with them. `None`
    /// when they do not exist (a reboot, `nft flush ruleset`), cannot be read, or this
    /// firewall cannot tell (attach mode's sets, which the administrator's ruleset makes anew
    /// and empty at boot; routes, which a reboot loses). The default: `None`.
    fn kept_since_last_run(&mut self) -> Option<Vec<Blocked>> {
        None
    }

    /// Whether blocks end by themselves (nftables elements with a timeout). When not, the
    /// daemon lifts each block when it ends.
    fn expires_by_itself(&self) -> bool {
        true
    }

    /// Lifts every block and removes what this firewall built, for the package's removal;
    /// returns how many blocks were lifted. By default every block listed is lifted (attach
    /// mode's sets, which are the administrator's, stay; so do elements added by hand, which
    /// have no timeout); own mode deletes its whole table.
    ///
    /// # Errors
    ///
    /// When the blocks cannot be listed or lifted.
    fn remove_all(&mut self) -> Result<usize, FirewallError> {
        lift_every_block(self)
    }

    /// Whether this firewall keeps the kernel's first line (`first-line` on: own mode's, or the
    /// snippet attach mode feeds). Without one, the first line's methods below do nothing.
    fn has_first_line(&self) -> bool {
        false
    }

    /// Takes the first line out of the kernel (its chains, sets and counters; blocks stay), for
    /// a firewall no longer in force: a dry run holds nobody, and another table or backend
    /// has no first line of this one's. Nothing without a first line.
    ///
    /// # Errors
    ///
    /// When the kernel refuses.
    fn remove_first_line(&mut self) -> Result<(), FirewallError> {
        Ok(())
    }

    /// Loads `facts` into the first line's sets, replacing what they held, in one batch.
    ///
    /// # Errors
    ///
    /// When the kernel refuses.
    fn set_first_line_facts(&mut self, facts: &FirstLineFacts) -> Result<(), FirewallError> {
        let _ = facts;
        Ok(())
    }

    /// Lifts the first line's holds of `sources` (fine when one has already ended).
    ///
    /// # Errors
    ///
    /// When the kernel refuses.
    fn lift_holds(&mut self, sources: &[IpAddr]) -> Result<(), FirewallError> {
        let _ = sources;
        Ok(())
    }

    /// Keeps the first line from counting or holding sources in `nets` for `ttl`: their
    /// partition has spent its budget of holds.
    ///
    /// # Errors
    ///
    /// When the kernel refuses.
    fn spare(&mut self, nets: &[IpNet], ttl: Duration) -> Result<(), FirewallError> {
        let _ = (nets, ttl);
        Ok(())
    }

    /// The first line's holds in force, with the time left.
    ///
    /// # Errors
    ///
    /// When the sets cannot be read.
    fn holds(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        Ok(Vec::new())
    }

    /// The first line's counters; `None` without a first line or when they cannot be read.
    fn first_line_counters(&mut self) -> Option<FirstLineCounters> {
        None
    }

    /// Calls `held` (from another thread) for each hold the first line makes, as the kernel
    /// reports it, until [`Firewall::retire`]. The default watches nothing.
    ///
    /// # Errors
    ///
    /// When watching cannot start.
    fn watch_holds(&self, held: Box<dyn Fn(KernelHold) + Send>) -> std::io::Result<()> {
        let _ = held;
        Ok(())
    }

    /// How the reports of holds fared since this firewall began watching them: when `lost`
    /// grows, holds were made that [`Firewall::watch_holds`] did not report. The default:
    /// nothing reported.
    fn hold_reports(&self) -> HoldReports {
        HoldReports::default()
    }
}

/// Lifts every block `firewall` lists with a timeout (elements added by hand, with none, stay);
/// how many. What [`Firewall::remove_all`] does unless a firewall can remove more at once.
///
/// # Errors
///
/// When the blocks cannot be listed or lifted.
pub fn lift_every_block<F: Firewall + ?Sized>(firewall: &mut F) -> Result<usize, FirewallError> {
    let lifted: Vec<Action> = firewall
        .list()?
        .into_iter()
        .filter(|b| b.remaining.is_some())
        .map(|b| Action::Unblock { net: b.net })
        .collect();
    firewall.apply(&lifted)?;
    Ok(lifted.len())
}

/// `dry-run = true`: touches nothing; the daemon logs "would block". With attach mode's first
/// line configured, it keeps that first line out of service: the administrator's table
/// (`attached`, whose first line was taken out of service at the start) is watched, and each
/// restore (their ruleset loaded anew brings the snippet back on empty sets) takes it out again;
/// nothing else of theirs is touched.
#[derive(Default)]
pub struct DryRun {
    attached: Option<Box<dyn Firewall>>,
}

impl std::fmt::Debug for DryRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRun")
            .field("attached", &self.attached.is_some())
            .finish()
    }
}

impl DryRun {
    /// A dry run that keeps the first line of `attached` (attach mode's firewall, its first
    /// line out of service already) out of service.
    pub fn keeping_out(attached: Box<dyn Firewall>) -> Self {
        DryRun {
            attached: Some(attached),
        }
    }
}

impl Firewall for DryRun {
    fn ensure_ready(&mut self, allow: &[IpNet]) -> Result<(), FirewallError> {
        match self.attached.as_mut() {
            // Attach mode without a first line of its own takes an included one out of
            // service when it is made ready; what else it finds wrong is not a dry run's.
            Some(attached) => match attached.ensure_ready(allow) {
                Ok(()) | Err(FirewallError::Attach(_) | FirewallError::Missing { .. }) => Ok(()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        }
    }

    fn watch(&self, changed: Box<dyn Fn(RulesetChange) + Send>) -> std::io::Result<()> {
        match &self.attached {
            // Only what calls for a restore: element deletions from the block sets are no
            // dry run's (its blocks are in no set).
            Some(attached) => attached.watch(Box::new(move |change| {
                if matches!(change, RulesetChange::Lost | RulesetChange::Missed) {
                    changed(change);
                }
            })),
            None => Ok(()),
        }
    }

    fn retire(&self) {
        if let Some(attached) = &self.attached {
            attached.retire();
        }
    }

    fn apply(&mut self, _actions: &[Action]) -> Result<(), FirewallError> {
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn block(n: u8) -> Action {
        Action::Block {
            net: format!("203.0.113.{n}/32").parse().unwrap(),
            ttl: Duration::from_secs(60),
        }
    }

    /// A stand-in for the kernel: refuses any batch that holds the block of 203.0.113.13.
    fn kernel(
        bad: &Action,
        made: &mut Vec<Action>,
    ) -> impl FnMut(&[Action]) -> Result<(), FirewallError> {
        move |batch: &[Action]| {
            if batch.contains(bad) {
                return Err(FirewallError::Kernel {
                    doing: "add elements to set inet scansentry blocked4".into(),
                    errno: nix::errno::Errno::ERANGE,
                });
            }
            made.extend_from_slice(batch);
            Ok(())
        }
    }

    /// Issue 16, 4: what the package's removal lifts: every block, not an element someone
    /// added by hand (it has no timeout).
    #[test]
    fn remove_all_lifts_the_blocks_and_leaves_elements_added_by_hand() {
        use std::sync::Arc;

        use crate::time::{ManualClock, Timestamp};
        let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1_000_000)));
        let mut fw = memory::Memory::new(clock);
        fw.ensure_ready(&[]).unwrap();
        fw.apply(&[block(1), block(2)]).unwrap();
        let by_hand: IpNet = "203.0.113.99/32".parse().unwrap();
        fw.add_by_hand(by_hand, None);
        assert_eq!(fw.remove_all().unwrap(), 2);
        assert_eq!(fw.elements(), [(by_hand, None)]);
    }

    #[test]
    fn one_refused_change_never_costs_the_others() {
        let actions: Vec<Action> = (1..=30).map(block).collect();
        let bad = block(13);
        let mut made = Vec::new();
        let err = apply_each(&actions, 8, kernel(&bad, &mut made)).unwrap_err();
        let FirewallError::Refused { refused, of } = &err else {
            panic!("{err}")
        };
        assert_eq!(*of, 30);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].action, bad);
        assert_eq!(made.len(), 29, "every other block was made");
        assert!(!made.contains(&bad));
        assert_eq!(
            err.to_string(),
            "the kernel refused 1 of 30 changes (the others were made): block 203.0.113.13 \
             for 1m: nf_tables refused to add elements to set inet scansentry blocked4: \
             ERANGE: Math result not representable"
        );
    }

    #[test]
    fn a_single_change_keeps_its_own_error_and_a_dead_socket_stops_at_once() {
        let bad = block(13);
        let mut made = Vec::new();
        let err = apply_each(std::slice::from_ref(&bad), 8, kernel(&bad, &mut made));
        assert!(matches!(err, Err(FirewallError::Kernel { .. })));
        let mut calls = 0;
        let err = apply_each(&[block(1), block(2)], 8, |_| {
            calls += 1;
            Err(FirewallError::Permission)
        });
        assert!(matches!(err, Err(FirewallError::Permission)));
        assert_eq!(
            calls, 1,
            "nothing is tried one by one when nothing can be sent"
        );
    }
}
