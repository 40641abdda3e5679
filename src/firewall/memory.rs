//! A firewall in memory, for the engine's tests. **Pure.**
//!
//! It keeps what the kernel's sets keep: elements with a timeout that end by themselves (or,
//! like blackhole routes, stay until lifted), and elements without one, added by hand. A
//! [`Memory`] is a handle: clones share one kernel, so a test keeps one to look at and change
//! what the engine's copy holds, as an administrator with `nft` would (flush a set, add an
//! element by hand), and to make the kernel refuse a change or fail altogether.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::IpNet;

use super::{
    Action, Blocked, Firewall, FirewallError, FirstLineCounters, FirstLineFacts, KernelHold,
    apply_each,
};
use crate::time::{Clock, Timestamp};
use crate::wire::Proto;

/// What a test's kernel hands the first line's watcher: the callback `watch_holds` was given.
type Held = Box<dyn Fn(KernelHold) + Send>;

/// The kernel's first line in memory: the facts last loaded, the holds in force and when they
/// end, what was lifted and spared.
#[derive(Default)]
struct FirstLine {
    /// Whether this firewall keeps one.
    on: bool,
    /// How long a hold lasts.
    hold: Duration,
    /// The facts as last loaded, and how many times they were loaded.
    facts: Option<FirstLineFacts>,
    loads: usize,
    /// The holds in force, and when each ends.
    holds: BTreeMap<IpAddr, Timestamp>,
    /// Every source whose hold was lifted, in order.
    lifted: Vec<IpAddr>,
    /// The networks spared, and until when.
    spared: BTreeMap<IpNet, Timestamp>,
    /// The kernel's counters.
    counters: FirstLineCounters,
    /// The watcher of holds, when one was started.
    watcher: Option<Held>,
}

impl std::fmt::Debug for FirstLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstLine")
            .field("on", &self.on)
            .field("holds", &self.holds)
            .field("spared", &self.spared)
            .field("watched", &self.watcher.is_some())
            .finish_non_exhaustive()
    }
}

/// The shared kernel of [`Memory`] handles.
#[derive(Debug, Default)]
struct Kernel {
    /// The elements and when they end (`None`: never).
    elements: BTreeMap<IpNet, Option<Timestamp>>,
    /// The allow sets, as last loaded.
    allow: Vec<IpNet>,
    /// Whether the table exists.
    ready: bool,
    /// Blocks of these networks are refused.
    refuse: Vec<IpNet>,
    /// Every call fails as if the netlink socket were gone.
    down: bool,
    /// A ruleset watcher runs ([`Firewall::watch`], until [`Firewall::retire`]).
    watching: bool,
    /// The first line was taken out of while a watcher ran: through another socket (a
    /// firewall opened anew shares this kernel), its changes were another program's to it.
    removed_while_watched: bool,
    /// `ensure_ready` fails with this attach-mode error, the sets left as they are (the first
    /// line's snippet gone from the administrator's table, their block sets still there).
    unready: Option<String>,
    /// Batches sent.
    batches: usize,
    /// Listings asked for.
    lists: usize,
    /// The kernel's first line.
    first_line: FirstLine,
}

/// An in-memory firewall whose elements end by the time of a [`Clock`].
#[derive(Clone)]
pub struct Memory {
    kernel: Arc<Mutex<Kernel>>,
    clock: Arc<dyn Clock + Send + Sync>,
    expires: bool,
}

impl Memory {
    /// An empty firewall whose elements end by themselves at `clock`'s time (nftables).
    pub fn new(clock: Arc<dyn Clock + Send + Sync>) -> Self {
        Memory {
            kernel: Arc::default(),
            clock,
            expires: true,
        }
    }

    /// An empty firewall whose elements stay until they are lifted (blackhole routes).
    pub fn without_timeouts(clock: Arc<dyn Clock + Send + Sync>) -> Self {
        Memory {
            expires: false,
            ..Memory::new(clock)
        }
    }

    fn kernel(&self) -> MutexGuard<'_, Kernel> {
        let mut k = self.kernel.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        k.elements.retain(|_, until| until.is_none_or(|t| t > now));
        k.first_line.holds.retain(|_, until| *until > now);
        k.first_line.spared.retain(|_, until| *until > now);
        k
    }

    /// This firewall keeps the kernel's first line, whose holds last `hold`.
    pub fn with_first_line(self, hold: Duration) -> Self {
        {
            let mut k = self.kernel();
            k.first_line.on = true;
            k.first_line.hold = hold;
        }
        self
    }

    /// The kernel's first line holds `source` after a probe to `proto` `port` with
    /// `tcp_flags`, as the kernel would: in its hold set for the hold's length, reported to
    /// the watcher if one runs; the report, for a test to hand the engine itself.
    pub fn hold(
        &self,
        source: IpAddr,
        proto: Proto,
        port: u16,
        tcp_flags: Option<u8>,
    ) -> KernelHold {
        let report = KernelHold {
            source,
            proto,
            port,
            tcp_flags,
            ifindex: Some(1),
        };
        let until = self
            .clock
            .now()
            .saturating_add(self.kernel().first_line.hold);
        let mut k = self.kernel();
        k.first_line.holds.insert(source, until);
        if let Some(watcher) = &k.first_line.watcher {
            watcher(report);
        }
        report
    }

    /// The first line's facts as last loaded, and how many times they were loaded.
    pub fn first_line_facts(&self) -> (Option<FirstLineFacts>, usize) {
        let k = self.kernel();
        (k.first_line.facts.clone(), k.first_line.loads)
    }

    /// Whether the first line holds `source` now.
    pub fn is_held(&self, source: IpAddr) -> bool {
        self.kernel().first_line.holds.contains_key(&source)
    }

    /// Every source whose hold was lifted, in order (one already ended among them).
    pub fn lifted_holds(&self) -> Vec<IpAddr> {
        self.kernel().first_line.lifted.clone()
    }

    /// The networks spared now, with the time left.
    pub fn spared(&self) -> Vec<(IpNet, Duration)> {
        let now = self.clock.now();
        self.kernel()
            .first_line
            .spared
            .iter()
            .map(|(net, until)| (*net, until.saturating_since(now)))
            .collect()
    }

    /// Empties the first line's spare sets, as a table made anew would have them.
    pub fn clear_spared(&self) {
        self.kernel().first_line.spared.clear();
    }

    /// Sets the first line's counters, as the kernel would count.
    pub fn set_first_line_counters(&self, counters: FirstLineCounters) {
        self.kernel().first_line.counters = counters;
    }

    /// What is blocked now, with the time left (`None`: no timeout).
    pub fn elements(&self) -> Vec<(IpNet, Option<Duration>)> {
        let now = self.clock.now();
        self.kernel()
            .elements
            .iter()
            .map(|(net, until)| (*net, until.map(|t| t.saturating_since(now))))
            .collect()
    }

    /// Whether `net` is blocked.
    pub fn holds(&self, net: IpNet) -> bool {
        self.kernel().elements.contains_key(&net)
    }

    /// The allow sets, as last loaded.
    pub fn allow(&self) -> Vec<IpNet> {
        self.kernel().allow.clone()
    }

    /// Batches the firewall was handed.
    pub fn batches(&self) -> usize {
        self.kernel().batches
    }

    /// Listings it was asked for.
    pub fn lists(&self) -> usize {
        self.kernel().lists
    }

    /// An element added by someone else (`ttl`: `None` for no timeout).
    pub fn add_by_hand(&self, net: IpNet, ttl: Option<Duration>) {
        let until = ttl.map(|t| self.clock.now().saturating_add(t));
        self.kernel().elements.insert(net, until);
    }

    /// An element deleted by someone else (`nft delete element`); whether it was there.
    pub fn delete_by_hand(&self, net: IpNet) -> bool {
        self.kernel().elements.remove(&net).is_some()
    }

    /// Someone deleted the table (`nft flush ruleset`).
    pub fn flush(&self) {
        let mut k = self.kernel();
        k.elements.clear();
        k.allow.clear();
        k.ready = false;
    }

    /// Whether the first line was taken out while a ruleset watcher ran.
    pub fn removed_while_watched(&self) -> bool {
        self.kernel().removed_while_watched
    }

    /// The administrator's ruleset loaded anew: their sets are there again, empty.
    pub fn empty_sets(&self) {
        let mut k = self.kernel();
        k.elements.clear();
        k.allow.clear();
    }

    /// From now on, making the firewall ready fails with attach mode's error `why` (`None`:
    /// works again); the sets stay as they are.
    pub fn refuse_ready(&self, why: Option<&str>) {
        self.kernel().unready = why.map(str::to_string);
    }

    /// From now on, blocks of `net` are refused.
    pub fn refuse(&self, net: IpNet) {
        self.kernel().refuse.push(net);
    }

    /// Every call fails (`true`) or works again.
    pub fn set_down(&self, down: bool) {
        self.kernel().down = down;
    }

    /// Whether the table exists.
    pub fn is_ready(&self) -> bool {
        self.kernel().ready
    }
}

impl Firewall for Memory {
    fn ensure_ready(&mut self, allow: &[IpNet]) -> Result<(), FirewallError> {
        let mut k = self.kernel();
        if k.down {
            return Err(FirewallError::Permission);
        }
        if let Some(why) = &k.unready {
            return Err(FirewallError::Attach(why.clone()));
        }
        k.ready = true;
        k.allow = allow.to_vec();
        Ok(())
    }

    fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError> {
        let now = self.clock.now();
        let expires = self.expires;
        let mut k = self.kernel();
        apply_each(actions, 64, |batch| {
            k.batches += 1;
            if k.down {
                return Err(FirewallError::Permission);
            }
            if !k.ready {
                return Err(FirewallError::Missing {
                    what: "table inet scansentry".into(),
                });
            }
            let refused = batch
                .iter()
                .any(|a| matches!(a, Action::Block { net, .. } if k.refuse.contains(net)));
            if refused {
                return Err(FirewallError::Kernel {
                    doing: "add elements to set inet scansentry blocked4".into(),
                    errno: nix::errno::Errno::ERANGE,
                });
            }
            for action in batch {
                match *action {
                    Action::Block { net, ttl } => {
                        let until = expires.then(|| now.saturating_add(ttl));
                        k.elements.insert(net, until);
                    }
                    Action::Unblock { net } => {
                        k.elements.remove(&net);
                    }
                }
            }
            Ok(())
        })
    }

    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        let now = self.clock.now();
        let mut k = self.kernel();
        k.lists += 1;
        if k.down {
            return Err(FirewallError::Permission);
        }
        Ok(k.elements
            .iter()
            .map(|(net, until)| Blocked {
                net: *net,
                remaining: until.map(|t| t.saturating_since(now)),
            })
            .collect())
    }

    fn expires_by_itself(&self) -> bool {
        self.expires
    }

    fn has_first_line(&self) -> bool {
        self.kernel().first_line.on
    }

    fn remove_first_line(&mut self) -> Result<(), FirewallError> {
        let mut k = self.kernel();
        if k.down {
            return Err(FirewallError::Permission);
        }
        k.removed_while_watched |= k.watching;
        k.first_line.on = false;
        k.first_line.holds.clear();
        k.first_line.spared.clear();
        k.first_line.facts = None;
        Ok(())
    }

    fn set_first_line_facts(&mut self, facts: &FirstLineFacts) -> Result<(), FirewallError> {
        let mut k = self.kernel();
        if k.down {
            return Err(FirewallError::Permission);
        }
        k.first_line.facts = Some(facts.clone());
        k.first_line.loads += 1;
        Ok(())
    }

    fn lift_holds(&mut self, sources: &[IpAddr]) -> Result<(), FirewallError> {
        let mut k = self.kernel();
        if k.down {
            return Err(FirewallError::Permission);
        }
        for source in sources {
            k.first_line.holds.remove(source);
            k.first_line.lifted.push(*source);
        }
        Ok(())
    }

    fn spare(&mut self, nets: &[IpNet], ttl: Duration) -> Result<(), FirewallError> {
        let until = self.clock.now().saturating_add(ttl);
        let mut k = self.kernel();
        if k.down {
            return Err(FirewallError::Permission);
        }
        for net in nets {
            k.first_line.spared.insert(*net, until);
        }
        Ok(())
    }

    fn holds(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        let now = self.clock.now();
        let k = self.kernel();
        if k.down {
            return Err(FirewallError::Permission);
        }
        Ok(k.first_line
            .holds
            .iter()
            .map(|(source, until)| Blocked {
                net: IpNet::from(*source),
                remaining: Some(until.saturating_since(now)),
            })
            .collect())
    }

    fn first_line_counters(&mut self) -> Option<FirstLineCounters> {
        let k = self.kernel();
        k.first_line.on.then_some(k.first_line.counters)
    }

    fn watch_holds(&self, held: Box<dyn Fn(KernelHold) + Send>) -> std::io::Result<()> {
        self.kernel().first_line.watcher = Some(held);
        Ok(())
    }

    fn watch(&self, changed: Box<dyn Fn(super::RulesetChange) + Send>) -> std::io::Result<()> {
        let _ = changed;
        self.kernel().watching = true;
        Ok(())
    }

    fn retire(&self) {
        self.kernel().watching = false;
    }

    /// Like own mode's table: what it holds when it was made ready before (and holds
    /// timeouts; the route stand-in cannot tell).
    fn kept_since_last_run(&mut self) -> Option<Vec<Blocked>> {
        let ready = {
            let k = self.kernel();
            k.ready && !k.down
        };
        if self.expires && ready {
            self.list().ok()
        } else {
            None
        }
    }
}
