//! A firewall in memory, for the engine's tests. **Pure.**
//!
//! It keeps what the kernel's sets keep: elements with a timeout that end by themselves (or,
//! like blackhole routes, stay until lifted), and elements without one, added by hand. A
//! [`Memory`] is a handle: clones share one kernel, so a test keeps one to look at and change
//! what the engine's copy holds, as an administrator with `nft` would (flush a set, add an
//! element by hand), and to make the kernel refuse a change or fail altogether.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::IpNet;

use super::{Action, Blocked, Firewall, FirewallError, apply_each};
use crate::time::{Clock, Timestamp};

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
    /// Batches sent.
    batches: usize,
    /// Listings asked for.
    lists: usize,
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
        k
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
