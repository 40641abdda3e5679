//! The nftables backend, over netlink with libnftnl (never by running `nft`).
//!
//! **Own mode** keeps `table inet scansentry`, as `nft/scansentry.nft` shows it: hash sets
//! `blocked4`/`blocked6` for single addresses, interval sets `blocked4_net`/`blocked6_net` for
//! networks (an IPv6 scanner's /64), all with `flags timeout` and a `size` of twice
//! `max-blocks` and 1,024 ([`crate::config::nft::set_size`]: a block that ended and awaits the
//! kernel's collection, or a reload that puts every block back, never meets a full set);
//! interval sets `allow4`/`allow6` for the never-block list; and a base chain on `input`
//! (or `prerouting`) that accepts allow-set sources and drops block-set sources, with counters.
//! Why two kinds of block set: on this kernel every update of an interval set walks the whole
//! set (measured: 63% of the time of a single add went to `rb_next`), while a hash set update
//! is O(1); single addresses are most blocks, so they get the fast path.
//!
//! With `[firewall] first-line` on (the default), the table also holds the kernel's first line
//! (`first_line.rs`): a base chain after the input chain that holds a source probing ports
//! nothing listens on, before the daemon has seen a packet, with the sets the daemon keeps
//! filled (listeners, tripwires, peers, the ephemeral range), the dynamic sets the rules fill
//! (pairs, token buckets, holds) and two named counters. An unblock of an address also lifts
//! its hold.
//!
//! [`Firewall::ensure_ready`] sends all of it in one atomic batch: table, sets and chain are
//! created only if missing (so blocks still due are kept), the chain is flushed and its rules
//! written again (so starting twice leaves one copy of each), and the allow sets are made anew
//! and filled with the never-block list. However long the list (the file's limit is 16 MiB),
//! it is one transaction: all of it takes effect, or none.
//!
//! **Attach mode** leaves the ruleset to the administrator: it checks that the configured sets
//! exist with the right type and flags, and that a rule in a base chain of their table looks
//! each one up, then only adds and removes elements. With `first-line = true` the
//! administrator has included the shipped snippet `nft/first-line.nft` (own mode's first line:
//! the same sets, counters, chains and rules) in the table, an inet one; the daemon checks that
//! its sets, counters and chains are there (the hold sets' timeout `first-line-hold`, the hold
//! chain's log group `first-line-log-group`), fills the never-block sets `allow4`/`allow6` with
//! the never-block list as own mode does (emptied and filled, never made anew: they are the
//! administrator's), and then does all own mode does with the first line, by elements only. A
//! reload that turns it off (or to another table, or into a dry run) puts `0.0.0.0/0` and
//! `::/0` into the never-block sets and empties the hold sets: the rules stay, and hold no one.
//!
//! A block is an element with its own timeout and expiry, so the kernel forgets it by itself;
//! in an interval set it is a start key and an end key one past the last address. Adding an
//! element that exists sets its timeout and expiry anew (kernel ≥ 6.12; older kernels keep the
//! old expiry), which is how a block is refreshed. Unblocking destroys the element, which is
//! fine when it is already gone.

mod first_line;
mod netlink;
pub mod nflog;
mod sys;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ipnet::IpNet;
use nftnl::{Batch, Chain, FinalizedBatch, MsgType, ProtoFamily, Rule, Table, nft_expr};
use nftnl_sys::libc;
use nix::errno::Errno;

use super::{
    Action, Blocked, Firewall, FirewallError, FirstLineCounters, FirstLineFacts, HoldReports,
    KernelHold, RulesetChange,
};
pub use crate::config::nft::{BadName, Family, FirstLine, Hook, NftConfig, NftName};
pub use first_line::LOG_PREFIX as FIRST_LINE_LOG_PREFIX;
use netlink::{Netlink, NetlinkError};
pub use sys::TooManyElements;
use sys::{CounterObj, ElemInfo, Key, ObjMsg, Request, SetHandle, SetMsg, SetMsgKind};

/// `NFT_SET_INTERVAL`.
const SET_INTERVAL: u32 = 0x4;
/// `NFT_SET_TIMEOUT`.
const SET_TIMEOUT: u32 = 0x10;
/// `NFT_SET_ELEM_INTERVAL_END`.
const ELEM_INTERVAL_END: u32 = 0x1;
/// nft's data type numbers for `ipv4_addr` and `ipv6_addr`.
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_IPV6_ADDR: u32 = 8;

/// `NFPROTO_IPV4` and `NFPROTO_IPV6` as `meta nfproto` compares them (one byte).
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// Batch page size. It must hold the largest message we write (nftnl cannot carry a message
/// bigger than a page over to the next one: it is silently lost), which
/// [`sys::MAX_ELEMENTS_PER_MSG`] keeps under 42 KiB. nftnl allocates a page plus room for one
/// maximal message (68 KiB); its default page (128 KiB) pushes that past malloc's mmap
/// threshold, which costs two system calls per batch.
const BATCH_PAGE: u32 = 48 * 1024;

/// The table of own mode.
pub const OWN_TABLE: &str = "scansentry";

/// The first line's sets the daemon fills whole (the never-block and fact sets): elements
/// another program deletes from one are put back by a restore.
const FILLED_SETS: [&str; 8] = [
    "allow4",
    "allow6",
    "listen",
    "tripwire",
    "scanners_first",
    "peers4",
    "peers6",
    "udp_replies",
];

/// Where the packages install the first line's snippet for attach mode (`nft/first-line.nft`).
pub const FIRST_LINE_SNIPPET: &str = "/usr/share/scansentry/nft/first-line.nft";

/// The family's number in netlink messages.
impl Family {
    fn nfproto(self) -> u32 {
        match self {
            Family::Inet => libc::NFPROTO_INET as u32,
            Family::Ip => libc::NFPROTO_IPV4 as u32,
            Family::Ip6 => libc::NFPROTO_IPV6 as u32,
        }
    }
}

/// A set that holds blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BlockSet {
    name: NftName,
    v6: bool,
    /// An interval set (networks); otherwise a hash set of single addresses.
    interval: bool,
}

/// What one of own mode's sets holds, which decides its flags and its rule's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holds {
    /// The never-block list (intervals; the rule accepts).
    Allowed,
    /// Blocked single addresses (a hash set with timeouts, the common case and O(1) for the
    /// kernel to update; the rule drops).
    Addresses,
    /// Blocked networks (intervals with timeouts, whose every update makes this kernel walk
    /// the whole set: kept for what needs them; the rule drops).
    Networks,
}

/// One of own mode's sets.
#[derive(Clone, Copy, Debug)]
struct OwnSet {
    name: &'static str,
    /// Its id within the batch that creates it (the rules' lookups refer to it).
    id: u32,
    v6: bool,
    holds: Holds,
}

/// Own mode's sets, in the order of their rules: the never-block list first. Each name, id and
/// role is written here and nowhere else.
const OWN_SETS: [OwnSet; 6] = [
    OwnSet::new("allow4", 1, false, Holds::Allowed),
    OwnSet::new("allow6", 2, true, Holds::Allowed),
    OwnSet::new("blocked4", 3, false, Holds::Addresses),
    OwnSet::new("blocked6", 4, true, Holds::Addresses),
    OwnSet::new("blocked4_net", 5, false, Holds::Networks),
    OwnSet::new("blocked6_net", 6, true, Holds::Networks),
];

impl OwnSet {
    const fn new(name: &'static str, id: u32, v6: bool, holds: Holds) -> Self {
        OwnSet {
            name,
            id,
            v6,
            holds,
        }
    }

    /// The allow set of the family of `v6`.
    fn allow(v6: bool) -> &'static OwnSet {
        OWN_SETS
            .iter()
            .find(|s| s.holds == Holds::Allowed && s.v6 == v6)
            .expect("an allow set per family")
    }

    /// The set's flags: intervals for networks, timeouts for blocks.
    fn flags(&self) -> u32 {
        match self.holds {
            Holds::Allowed => SET_INTERVAL,
            Holds::Addresses => SET_TIMEOUT,
            Holds::Networks => SET_INTERVAL | SET_TIMEOUT,
        }
    }
}

/// Own mode's block sets.
fn own_block_sets() -> Vec<BlockSet> {
    OWN_SETS
        .iter()
        .filter(|s| s.holds != Holds::Allowed)
        .map(|s| BlockSet {
            name: own_name(s.name),
            v6: s.v6,
            interval: s.holds == Holds::Networks,
        })
        .collect()
}

/// One of own mode's fixed names.
fn own_name(name: &str) -> NftName {
    NftName::new(name).expect("own mode's table and set names are nftables names")
}

/// One entry of a set message: an address (hash sets), or an interval's start and the key one
/// past its end (interval sets; none when it ends at the top of the address space).
struct Entry {
    start: Key,
    end: Option<Key>,
    /// The element's timeout and expiry (blocks); none for the allow sets and for removals.
    ttl: Option<Duration>,
}

impl Entry {
    /// `net` as an entry of a set that is an interval set or not.
    fn of(net: IpNet, interval_set: bool, ttl: Option<Duration>) -> Self {
        let (start, end) = interval(net);
        Entry {
            start,
            end: end.filter(|_| interval_set),
            ttl,
        }
    }
}

/// Where a configuration puts things: the family, the table, the sets and which set a block
/// goes into. What the messages say depends on this alone, not on the socket.
impl NftConfig {
    fn family(&self) -> u32 {
        match self {
            NftConfig::Own { .. } => libc::NFPROTO_INET as u32,
            NftConfig::Attach { family, .. } => family.nfproto(),
        }
    }

    fn table(&self) -> NftName {
        match self {
            NftConfig::Own { .. } => own_name(OWN_TABLE),
            NftConfig::Attach { table, .. } => table.clone(),
        }
    }

    /// The sets blocks go into.
    fn block_sets(&self) -> Vec<BlockSet> {
        match self {
            NftConfig::Own { .. } => own_block_sets(),
            NftConfig::Attach { set4, set6, .. } => [(set4, false), (set6, true)]
                .into_iter()
                .filter_map(|(name, v6)| {
                    name.clone().map(|name| BlockSet {
                        name,
                        v6,
                        interval: true,
                    })
                })
                .collect(),
        }
    }

    /// Whether another program deleted elements of `set`, one of the first line's sets the
    /// daemon fills (the never-block sets, the fact sets), which a restore fills again: a set
    /// flushed by hand, or a second sentryd's start in a dry run putting every address into
    /// allow4/allow6, would leave the line holding the never-block list, or no one, while the
    /// daemon says it is on.
    fn first_line_set_emptied(&self, set: &str) -> bool {
        self.first_line().is_some() && FILLED_SETS.contains(&set)
    }

    /// The blocks whose elements the element deletions `messages` took from our block sets
    /// (other sets' are left out): single addresses, and intervals as the networks they
    /// cover.
    fn deleted_blocks(&self, messages: &[netlink::Message<'_>]) -> Vec<IpNet> {
        let mut nets = Vec::new();
        for set in self.block_sets() {
            let mut parsed = self.set_handle(&set.name);
            let mut any = false;
            for m in messages {
                if netlink::elements_deleted_from(m).is_some_and(|(_, _, s)| s == set.name.as_str())
                {
                    any |= parsed.parse_elems(m.bytes);
                }
            }
            if !any {
                continue;
            }
            let elements = parsed.elements();
            if set.interval {
                // An interval whose end came in another read reads as open-ended here: it
                // names no block, and the engine acts only on blocks of exactly these nets.
                nets.extend(
                    blocks_from_elements(&elements, set.v6)
                        .into_iter()
                        .map(|b| b.net),
                );
            } else {
                nets.extend(
                    elements
                        .iter()
                        .filter_map(|e| host_block(e, set.v6))
                        .map(|b| b.net),
                );
            }
        }
        nets
    }

    /// The set a block of `net` goes into: in own mode single addresses go to the hash sets
    /// and networks to the interval sets; in attach mode everything goes to the family's set.
    fn target(&self, net: IpNet) -> Option<BlockSet> {
        let v6 = net.addr().is_ipv6();
        let host = net.prefix_len() == net.max_prefix_len();
        self.block_sets()
            .into_iter()
            .find(|s| s.v6 == v6 && (s.interval != host || !self.is_own()))
    }

    fn is_own(&self) -> bool {
        matches!(self, NftConfig::Own { .. })
    }

    fn set_handle(&self, name: &NftName) -> SetHandle {
        SetHandle::new(self.family(), &self.table(), name)
    }

    /// [`pack`] for one of this backend's sets.
    fn pack(&self, name: &NftName, entries: &[Entry]) -> Vec<SetHandle> {
        pack(self.family(), &self.table(), name, entries)
    }

    fn describe_set(&self, name: &NftName) -> String {
        let family = match self {
            NftConfig::Own { .. } => "inet",
            NftConfig::Attach { family, .. } => family.as_str(),
        };
        format!("set {family} {} {name}", self.table())
    }
}

/// The nftables backend.
pub struct NftFirewall {
    config: NftConfig,
    netlink: Netlink,
    /// The never-block list last loaded, to rebuild the table with if it vanishes.
    allow: Vec<IpNet>,
    /// The first line's facts last loaded, to rebuild its sets with; none before the first
    /// [`Firewall::set_first_line_facts`] (the sets are then left as they are).
    facts: Option<FirstLineFacts>,
    /// Set when the watcher started last ([`Firewall::watch`]) is to stop
    /// ([`Firewall::retire`], or this firewall dropped).
    retired: std::sync::Mutex<Arc<AtomicBool>>,
    /// The first line's reader ([`Firewall::watch_holds`]).
    holds: nflog::HoldWatch,
}

impl Drop for NftFirewall {
    fn drop(&mut self) {
        self.retire();
    }
}

impl NftFirewall {
    /// Opens the netlink socket. Nothing is sent until [`Firewall::ensure_ready`].
    ///
    /// # Errors
    ///
    /// When the socket cannot be opened.
    pub fn new(config: NftConfig) -> Result<Self, FirewallError> {
        Ok(NftFirewall {
            config,
            netlink: Netlink::open().map_err(FirewallError::Socket)?,
            allow: Vec::new(),
            facts: None,
            retired: std::sync::Mutex::default(),
            holds: nflog::HoldWatch::default(),
        })
    }

    /// Stops the ruleset watcher ([`Firewall::watch`]).
    fn retire_watch(&self) {
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store(true, Ordering::Relaxed);
    }

    /// Sends `batch`; maps a refusal to the message it concerned (`doing[i]` describes the
    /// i-th message added, `sets[i]` the set it touched, if any).
    fn execute(
        &mut self,
        batch: &FinalizedBatch,
        doing: &[(String, Option<String>)],
    ) -> Result<(), FirewallError> {
        // The batch's BEGIN takes the first sequence number; message i has first + 1 + i.
        let first = batch.sequence_numbers().start + 1;
        match self.netlink.execute(batch) {
            Ok(()) => Ok(()),
            Err(NetlinkError::Socket(io)) => Err(FirewallError::Socket(io)),
            Err(NetlinkError::Refused { seq, errno }) => {
                let index = seq.checked_sub(first).and_then(|i| usize::try_from(i).ok());
                let (what, set) = index
                    .and_then(|i| doing.get(i))
                    .cloned()
                    .unwrap_or_else(|| ("apply a batch".into(), None));
                let about = set.unwrap_or_else(|| format!("table {}", self.config.table()));
                Err(FirewallError::from_errno(errno, what, about))
            }
        }
    }

    /// Own mode's skeleton and allow sets, in one batch.
    fn build_own(&mut self, layout: OwnLayout) -> Result<(), FirewallError> {
        let (batch, doing) = own_batch(&self.config, layout, &self.allow, self.facts.as_ref())?;
        self.execute(&batch, &doing)
    }

    /// Attach mode's checks: each configured set exists, has the address type of its family
    /// and `flags interval, timeout`, and a rule in a base chain of its table looks it up.
    fn check_attached(&mut self) -> Result<(), FirewallError> {
        let NftConfig::Attach {
            family,
            table,
            set4,
            set6,
            first_line,
        } = self.config.clone()
        else {
            return Ok(());
        };
        if set4.is_none() && set6.is_none() {
            return Err(FirewallError::Attach(
                "no set configured (set4, set6)".into(),
            ));
        }
        let (chains, rules) = self.chains_and_rules(family)?;
        for (name, key) in [(set4, KeyType::V4), (set6, KeyType::V6)] {
            let Some(name) = name else { continue };
            let described = self.config.describe_set(&name);
            let found = self.read_set(
                &table,
                &name,
                &described,
                "declare it as nft/attach.nft shows",
            )?;
            check_set_shape(&found, key, &described)?;
            if !looked_up(&rules, &chains, table.as_str(), name.as_str()) {
                return Err(FirewallError::Attach(format!(
                    "no rule in a base chain of table {} {table} looks up @{name}, so its \
                     elements would block nothing; add one as nft/attach.nft shows",
                    family.as_str()
                )));
            }
        }
        match first_line {
            Some(first_line) => self.check_first_line(first_line, &rules, &chains),
            None => Ok(()),
        }
    }

    /// The chains and rules of every table of `family`, as the kernel lists them.
    fn chains_and_rules(
        &mut self,
        family: Family,
    ) -> Result<(Vec<sys::ChainInfo>, Vec<sys::RuleInfo>), FirewallError> {
        let mut chains = Vec::new();
        self.query(&sys::request(&Request::Chains(family.nfproto()), 1), |m| {
            chains.extend(sys::parse_chain(m));
        })?;
        let mut rules = Vec::new();
        self.query(&sys::request(&Request::Rules(family.nfproto()), 1), |m| {
            rules.extend(sys::parse_rule(m));
        })?;
        Ok((chains, rules))
    }

    /// Before attach mode's first line is taken out of service (which puts every address into
    /// allow4/allow6) without the firewall made ready (a dry run's start, `--remove-blocks`):
    /// no rule of the administrator's looks up the snippet's sets, or every address could
    /// reach a rule of theirs (a hold or log group other than the configuration's does not
    /// matter here). Without the snippet's base chain there is nothing to take out of
    /// service: [`FirewallError::Missing`].
    fn check_disarm(&mut self) -> Result<(), FirewallError> {
        let NftConfig::Attach { family, .. } = self.config.clone() else {
            return Ok(());
        };
        let (chains, rules) = self.chains_and_rules(family)?;
        let table = self.config.table();
        let base = own_name(first_line::CHAINS[0]);
        if !chains
            .iter()
            .any(|c| c.table == table.as_str() && c.name == base.as_str())
        {
            return Err(FirewallError::Missing {
                what: format!("chain inet {table} {base}"),
            });
        }
        none_of_theirs_looks_up_the_snippets_sets(&rules, table.as_str())
    }

    /// Attach mode's first line: each of the snippet's sets is in the table with its type and
    /// flags (the hold sets' timeout first-line-hold), its counters and chains are (the base
    /// chain a base chain, looking up the hold sets), and its hold chain logs to
    /// first-line-log-group. The configuration allows it in an inet table only.
    fn check_first_line(
        &mut self,
        first_line: FirstLine,
        rules: &[sys::RuleInfo],
        chains: &[sys::ChainInfo],
    ) -> Result<(), FirewallError> {
        let table = self.config.table();
        let include = format!(
            "include {FIRST_LINE_SNIPPET} in table inet {table}, as its first lines show \
             ([firewall] first-line = true)"
        );
        self.check_first_line_sets(first_line, &include)?;
        for name in [first_line::SCORE_FULL, first_line::HOLD_FULL] {
            let name = own_name(name);
            let request = sys::counter_request(self.config.family(), &table, &name, 1);
            let described = format!("counter inet {table} {name}");
            match self.netlink.query(&request, |_| {}) {
                Ok(()) => {}
                Err(NetlinkError::Refused {
                    errno: Errno::ENOENT,
                    ..
                }) => {
                    return Err(FirewallError::Attach(format!(
                        "{described} does not exist; {include}"
                    )));
                }
                Err(e) => return Err(failed(e, format!("read {described}"), described)),
            }
        }
        check_first_line_rules(first_line, rules, chains, table.as_str(), &include)
    }

    /// [`Self::check_first_line`]'s sets: each there, with the snippet's type and flags, and
    /// the hold sets with a timeout of first-line-hold.
    fn check_first_line_sets(
        &mut self,
        first_line: FirstLine,
        include: &str,
    ) -> Result<(), FirewallError> {
        let table = self.config.table();
        for (name, key_type, key_len, flags, holds) in first_line::expected_sets() {
            let name = own_name(name);
            let described = self.config.describe_set(&name);
            let found = self.read_set(&table, &name, &described, include)?;
            let mask = SET_INTERVAL | SET_TIMEOUT | first_line::SET_EVAL;
            if found.get_u32(nftnl_sys::NFTNL_SET_KEY_TYPE) != Some(key_type)
                || found.get_u32(nftnl_sys::NFTNL_SET_KEY_LEN) != Some(key_len)
                || found.get_u32(nftnl_sys::NFTNL_SET_FLAGS).unwrap_or(0) & mask != flags
            {
                return Err(FirewallError::Attach(format!(
                    "{described} has another type or other flags than in {FIRST_LINE_SNIPPET}; \
                     {include}, and keep sets of your own under other names"
                )));
            }
            let hold_ms = u64::try_from(first_line.hold.as_millis()).unwrap_or(u64::MAX);
            let timeout = found.get_u64(nftnl_sys::NFTNL_SET_TIMEOUT);
            if holds && timeout != Some(hold_ms) {
                let theirs = timeout.map_or("no timeout".to_string(), |ms| {
                    format!("timeout {}", human_ms(ms))
                });
                return Err(FirewallError::Attach(format!(
                    "{described} has {theirs}, but [firewall] first-line-hold is {}: make them \
                     the same (the timeout of hold4 and hold6 in the included snippet)",
                    crate::text::human(first_line.hold)
                )));
            }
        }
        Ok(())
    }

    /// Attach mode's first line made ready: the never-block sets emptied and filled with the
    /// never-block list, and the fact sets with the facts last loaded, in one batch.
    fn fill_attached(&mut self) -> Result<(), FirewallError> {
        if !self.has_first_line() {
            return Ok(());
        }
        let merged = merge_nets(&self.allow);
        let mut w = Writer::new(&self.config);
        for (name, v4) in [("allow4", true), ("allow6", false)] {
            let entries: Vec<Entry> = merged
                .iter()
                .filter(|net| net.addr().is_ipv4() == v4)
                .map(|net| Entry::of(*net, true, None))
                .collect();
            w.refill(name, &entries)?;
        }
        if let Some(facts) = &self.facts {
            w.facts(facts)?;
        }
        let (batch, doing) = w.finish();
        self.execute(&batch, &doing)
    }

    /// The kernel's description of set `name` of `table` (`described`, for the errors; `fix`
    /// says what to do when it is missing).
    fn read_set(
        &mut self,
        table: &NftName,
        name: &NftName,
        described: &str,
        fix: &str,
    ) -> Result<SetHandle, FirewallError> {
        let request = sys::request(&Request::Set(self.config.family(), table, name), 1);
        let mut found = SetHandle::empty();
        let mut got = false;
        match self.netlink.query(&request, |m| {
            got |= found.parse_set(m.bytes);
        }) {
            Ok(()) => {}
            Err(NetlinkError::Refused {
                errno: Errno::ENOENT,
                ..
            }) => {
                return Err(FirewallError::Attach(format!(
                    "{described} does not exist; {fix}"
                )));
            }
            Err(e) => {
                return Err(failed(e, format!("read {described}"), described.into()));
            }
        }
        if got {
            Ok(found)
        } else {
            Err(FirewallError::Attach(format!(
                "{described}: no reply describing it"
            )))
        }
    }

    fn query(&mut self, request: &[u8], each: impl FnMut(&[u8])) -> Result<(), FirewallError> {
        let mut each = each;
        let table = format!("table {}", self.config.table());
        self.netlink
            .query(request, |m| each(m.bytes))
            .map_err(|e| failed(e, "read the ruleset".into(), table))
    }

    fn apply_once(&mut self, actions: &[Action]) -> Result<(), FirewallError> {
        match element_batch(&self.config, actions)? {
            Some((batch, doing)) => self.execute(&batch, &doing),
            None => Ok(()),
        }
    }
}

/// What a message of a batch does, for the error when the kernel refuses it: the change, and
/// the set it concerned.
type Doing = Vec<(String, Option<String>)>;

/// The batch that carries `actions` out under `config`, and what each of its messages does;
/// `None` when there is nothing to send. Per set: the unblocks (destroy: fine if missing), then
/// the blocks (add without EXCL: an existing block gets the new timeout and expiry, which
/// refreshes it). Built without the socket: the unit tests compare it with what `nft` sends.
fn element_batch(
    config: &NftConfig,
    actions: &[Action],
) -> Result<Option<(FinalizedBatch, Doing)>, FirewallError> {
    let mut messages = Vec::new();
    for set in config.block_sets() {
        let (mut destroys, mut adds) = (Vec::new(), Vec::new());
        for action in actions {
            if config
                .target(action.net())
                .is_none_or(|t| t.name != set.name)
            {
                continue;
            }
            match action {
                Action::Unblock { net } => destroys.push(Entry::of(*net, set.interval, None)),
                Action::Block { net, ttl } => {
                    adds.push(Entry::of(*net, set.interval, Some(*ttl)));
                }
            }
        }
        for (entries, kind) in [
            (destroys, SetMsgKind::DestroyElements),
            (adds, SetMsgKind::AddElements),
        ] {
            for handle in config.pack(&set.name, &entries) {
                messages.push((handle, kind, set.name.clone()));
            }
        }
    }
    // An unblocked address is let in: the first line's hold of it, if any, goes too (a hold
    // lasts a few seconds; nothing else would lift it before it ends).
    if config.first_line().is_some() {
        for (name, v6) in [("hold4", false), ("hold6", true)] {
            let lifted: Vec<Entry> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Unblock { net }
                        if net.addr().is_ipv6() == v6
                            && net.prefix_len() == net.max_prefix_len() =>
                    {
                        Some(Entry::of(*net, false, None))
                    }
                    _ => None,
                })
                .collect();
            for handle in config.pack(&own_name(name), &lifted) {
                messages.push((handle, SetMsgKind::DestroyElements, own_name(name)));
            }
        }
    }
    if messages.is_empty() {
        return Ok(None);
    }
    let mut batch = Batch::with_page_size(BATCH_PAGE);
    let mut doing = Vec::new();
    for (handle, kind, set) in &messages {
        let (msg_type, verb) = if *kind == SetMsgKind::AddElements {
            (MsgType::Add, "add elements to")
        } else {
            (MsgType::Del, "remove elements from")
        };
        batch.add(&SetMsg::new(handle, *kind)?, msg_type);
        let described = config.describe_set(set);
        doing.push((format!("{verb} {described}"), Some(described)));
    }
    Ok(Some((batch.finalize(), doing)))
}

/// Own mode's settings, as [`NftConfig::Own`] holds them.
#[derive(Clone, Copy, Debug)]
struct OwnLayout {
    hook: Hook,
    forward: bool,
    priority: i32,
    set_size: u32,
    first_line: Option<FirstLine>,
}

/// A batch being written, with what each message does (for the error when one is refused).
struct Writer<'c> {
    config: &'c NftConfig,
    batch: Batch,
    doing: Doing,
}

impl<'c> Writer<'c> {
    fn new(config: &'c NftConfig) -> Self {
        Writer {
            config,
            batch: Batch::with_page_size(BATCH_PAGE),
            doing: Vec::new(),
        }
    }

    /// Adds `msg`, which does `what`, to own mode's set `set` if it concerns one.
    fn add(&mut self, msg: &impl nftnl::NlMsg, kind: MsgType, what: String, set: Option<&str>) {
        self.batch.add(msg, kind);
        let set = set.map(|s| self.config.describe_set(&own_name(s)));
        self.doing.push((what, set));
    }

    /// Creates `chain` (`name`) and empties it, which lets go of the sets its rules looked up.
    fn empty_chain(&mut self, chain: &Chain<'_>, name: &str) {
        self.add(chain, MsgType::Add, format!("create chain {name}"), None);
        self.add(
            &Rule::new(chain),
            MsgType::Del,
            format!("flush chain {name}"),
            None,
        );
    }

    /// Fills `chain` (`name`, emptied before) with own mode's rules, or, when it is not
    /// `wanted`, deletes it: the one batch leaves it as the configuration says, whether it was
    /// there before or not.
    fn fill_chain(&mut self, chain: &Chain<'_>, table: &Table, name: &str, wanted: bool) {
        if wanted {
            for r in &own_rules(chain, table) {
                let what = format!("add a rule to chain {name}");
                self.add(r, MsgType::Add, what, None);
            }
        } else {
            self.add(chain, MsgType::Del, format!("delete chain {name}"), None);
        }
    }

    /// Deletes the allow sets, creates every set of own mode (`handles`, in [`OWN_SETS`]'s
    /// order) that is missing, then fills the allow sets with `allow`, in as many messages as
    /// it takes. The allow sets are made anew, not flushed: a flush makes the kernel mark each
    /// old element, and every new one then goes into a tree that still holds them all (a
    /// reload of 200,000 entries took 4.7 s to the same list and over 10 s to another, against
    /// about 2 s anew). A set a rule looks up cannot go: the chains are emptied before.
    fn sets(&mut self, handles: &[SetHandle], allow: &[IpNet]) -> Result<(), FirewallError> {
        let names = [OwnSet::allow(false).name, OwnSet::allow(true).name];
        let family = self.config.family();
        let table = self.config.table();
        for name in names {
            let gone = SetHandle::new(family, &table, &own_name(name));
            let msg = SetMsg::new(&gone, SetMsgKind::DestroySet)?;
            self.add(&msg, MsgType::Del, format!("delete set {name}"), Some(name));
        }
        for (h, set) in handles.iter().zip(&OWN_SETS) {
            let msg = SetMsg::new(h, SetMsgKind::CreateSet)?;
            let what = format!("create set {}", set.name);
            self.add(&msg, MsgType::Add, what, Some(set.name));
        }
        let merged = merge_nets(allow);
        for (name, v4) in [(names[0], true), (names[1], false)] {
            let entries: Vec<Entry> = merged
                .iter()
                .filter(|net| net.addr().is_ipv4() == v4)
                .map(|net| Entry::of(*net, true, None))
                .collect();
            for fill in self.config.pack(&own_name(name), &entries) {
                let msg = SetMsg::new(&fill, SetMsgKind::AddElements)?;
                self.add(&msg, MsgType::Add, format!("fill set {name}"), Some(name));
            }
        }
        Ok(())
    }

    /// Creates the first line's sets (if missing: their elements are kept) and counters, or,
    /// when `first_line` is none, deletes them (the chains that used them were emptied before);
    /// then, with `facts`, empties the fact sets and fills them.
    fn first_line_sets(
        &mut self,
        first_line: Option<FirstLine>,
        facts: Option<&FirstLineFacts>,
    ) -> Result<(), FirewallError> {
        let family = self.config.family();
        let table = self.config.table();
        let hold = first_line.map_or(Duration::from_secs(5), |f| f.hold);
        for (name, handle) in first_line::set_handles(family, &table, hold) {
            let (kind, msg_type, verb) = if first_line.is_some() {
                (SetMsgKind::CreateSet, MsgType::Add, "create")
            } else {
                (SetMsgKind::DestroySet, MsgType::Del, "delete")
            };
            let msg = SetMsg::new(&handle, kind)?;
            self.add(&msg, msg_type, format!("{verb} set {name}"), Some(name));
        }
        for name in [first_line::SCORE_FULL, first_line::HOLD_FULL] {
            let obj = CounterObj::new(family, &table, &own_name(name));
            let create = first_line.is_some();
            let verb = if create { "create" } else { "delete" };
            let msg_type = if create { MsgType::Add } else { MsgType::Del };
            self.add(
                &ObjMsg { obj: &obj, create },
                msg_type,
                format!("{verb} counter {name}"),
                None,
            );
        }
        if let (Some(_), Some(facts)) = (first_line, facts) {
            self.facts(facts)?;
        }
        Ok(())
    }

    /// Empties each fact set and fills it with `facts`.
    fn facts(&mut self, facts: &FirstLineFacts) -> Result<(), FirewallError> {
        for (name, entries) in first_line::fact_entries(facts) {
            self.refill(name, &entries)?;
        }
        Ok(())
    }

    /// Empties set `name` of the first line and fills it with `entries`.
    fn refill(&mut self, name: &str, entries: &[Entry]) -> Result<(), FirewallError> {
        self.empty(name)?;
        for fill in self.config.pack(&own_name(name), entries) {
            let msg = SetMsg::new(&fill, SetMsgKind::AddElements)?;
            self.add(&msg, MsgType::Add, format!("fill set {name}"), Some(name));
        }
        Ok(())
    }

    /// Empties set `name` of the first line.
    fn empty(&mut self, name: &str) -> Result<(), FirewallError> {
        // A handle without elements: the message empties the set.
        let all = SetHandle::new(self.config.family(), &self.config.table(), &own_name(name));
        let msg = SetMsg::new(&all, SetMsgKind::DestroyElements)?;
        self.add(&msg, MsgType::Del, format!("empty set {name}"), Some(name));
        Ok(())
    }

    fn finish(self) -> (FinalizedBatch, Doing) {
        (self.batch.finalize(), self.doing)
    }
}

/// Own mode's sets as their creation messages describe them: key type and length, flags, the
/// id the rules refer to, and for block sets the size.
fn own_set_handles(set_size: u32) -> Vec<SetHandle> {
    let table = own_name(OWN_TABLE);
    let family = libc::NFPROTO_INET as u32;
    OWN_SETS
        .iter()
        .map(|set| {
            let mut h = SetHandle::new(family, &table, &own_name(set.name));
            let (key_type, key_len) = if set.v6 {
                (TYPE_IPV6_ADDR, 16)
            } else {
                (TYPE_IPV4_ADDR, 4)
            };
            h.set_u32(nftnl_sys::NFTNL_SET_KEY_TYPE, key_type);
            h.set_u32(nftnl_sys::NFTNL_SET_KEY_LEN, key_len);
            h.set_u32(nftnl_sys::NFTNL_SET_FLAGS, set.flags());
            h.set_u32(nftnl_sys::NFTNL_SET_ID, set.id);
            if set.holds != Holds::Allowed {
                h.set_u32(nftnl_sys::NFTNL_SET_DESC_SIZE, set_size);
            }
            h
        })
        .collect()
}

/// One of own mode's base chains: a filter chain on `hook` that accepts by default.
fn own_chain<'t>(
    table: &'t Table,
    name: &std::ffi::CStr,
    hook: nftnl::Hook,
    priority: i32,
) -> Chain<'t> {
    let mut chain = Chain::new(name, table);
    chain.set_hook(hook, priority);
    chain.set_type(nftnl::ChainType::Filter);
    chain.set_policy(nftnl::Policy::Accept);
    chain
}

/// Own mode's whole batch, and what each message does: the table created if missing, its
/// chains emptied, the allow sets deleted, every set created if missing (so the block sets
/// keep their blocks, the allow sets are new), the allow sets filled with `allow`, then the
/// input chain (and the forward chain, or its removal) written anew. Built without the socket.
fn own_batch(
    config: &NftConfig,
    layout: OwnLayout,
    allow: &[IpNet],
    facts: Option<&FirstLineFacts>,
) -> Result<(FinalizedBatch, Doing), FirewallError> {
    let table = Table::new(own_name(OWN_TABLE).to_c(), ProtoFamily::Inet);
    let mut w = Writer::new(config);
    w.add(
        &table,
        MsgType::Add,
        format!("create table inet {OWN_TABLE}"),
        None,
    );
    let hook = match layout.hook {
        Hook::Input => nftnl::Hook::In,
        Hook::Prerouting => nftnl::Hook::PreRouting,
    };
    let input = own_chain(&table, c"input", hook, layout.priority);
    // Traffic to a container's published port, a NodePort or a VM behind DNAT is routed on,
    // past input: a chain on the forward hook drops it too.
    let forward = own_chain(&table, c"forward", nftnl::Hook::Forward, layout.priority);
    w.empty_chain(&input, "input");
    w.empty_chain(&forward, "forward");
    // The kernel's first line: its chains emptied like the others, then written anew, or
    // deleted with its sets and counters when it is off.
    let first_chains = first_line::chains(&table);
    for (chain, name) in first_chains.iter().zip(first_line::CHAINS) {
        w.empty_chain(chain, name);
    }
    w.sets(&own_set_handles(layout.set_size), allow)?;
    w.first_line_sets(layout.first_line, facts)?;
    w.fill_chain(&input, &table, "input", true);
    w.fill_chain(&forward, &table, "forward", layout.forward);
    match layout.first_line {
        Some(first) => {
            for (i, rule) in first_line::rules(&first_chains, first.log_group) {
                let name = first_line::CHAINS[i];
                w.add(
                    &rule,
                    MsgType::Add,
                    format!("add a rule to chain {name}"),
                    None,
                );
            }
        }
        None => {
            for (chain, name) in first_chains.iter().zip(first_line::CHAINS) {
                w.add(chain, MsgType::Del, format!("delete chain {name}"), None);
            }
        }
    }
    Ok(w.finish())
}

/// Own mode's rules for `chain`, one per set, in order: the lookup names the set (and its id,
/// for a set created in the same batch); the never-block list accepts, the blocks drop.
fn own_rules<'a>(chain: &'a Chain<'_>, table: &Table) -> Vec<Rule<'a>> {
    let set4 = |name: &str, id| {
        nftnl::set::Set::<Ipv4Addr>::new_named(&own_name(name).to_c(), id, table, ProtoFamily::Inet)
    };
    let set6 = |name: &str, id| {
        nftnl::set::Set::<Ipv6Addr>::new_named(&own_name(name).to_c(), id, table, ProtoFamily::Inet)
    };
    OWN_SETS
        .iter()
        .map(|set| {
            let mut r = Rule::new(chain);
            r.add_expr(&nft_expr!(meta nfproto));
            if set.v6 {
                r.add_expr(&nft_expr!(cmp == NFPROTO_IPV6));
                r.add_expr(&nft_expr!(payload ipv6 saddr));
                r.add_expr(&nft_expr!(lookup & set6(set.name, set.id)));
            } else {
                r.add_expr(&nft_expr!(cmp == NFPROTO_IPV4));
                r.add_expr(&nft_expr!(payload ipv4 saddr));
                r.add_expr(&nft_expr!(lookup & set4(set.name, set.id)));
            }
            if set.holds == Holds::Allowed {
                r.add_expr(&nft_expr!(verdict accept));
            } else {
                r.add_expr(&nft_expr!(counter));
                r.add_expr(&nft_expr!(verdict drop));
            }
            r
        })
        .collect()
}

impl Firewall for NftFirewall {
    fn watch(&self, changed: Box<dyn Fn(RulesetChange) + Send>) -> std::io::Result<()> {
        // One watcher at a time: the one before stops.
        self.retire_watch();
        let retired = Arc::new(AtomicBool::new(false));
        *self.retired.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&retired);
        let table = self.config.table().as_str().to_string();
        let config = self.config.clone();
        let seen = move |seen: netlink::Seen<'_>| match seen {
            netlink::Seen::Lost => changed(RulesetChange::Lost),
            netlink::Seen::Missed => changed(RulesetChange::Missed),
            netlink::Seen::Elements(messages) => {
                let nets = config.deleted_blocks(messages);
                if !nets.is_empty() {
                    changed(RulesetChange::ElementsDeleted(nets));
                }
                let emptied = messages.iter().any(|m| {
                    netlink::elements_deleted_from(m)
                        .is_some_and(|(_, _, set)| config.first_line_set_emptied(set))
                });
                if emptied {
                    changed(RulesetChange::Lost);
                }
            }
        };
        netlink::watch(
            self.netlink.portid(),
            self.config.family(),
            table,
            retired,
            Box::new(seen),
        )
    }

    fn retire(&self) {
        self.retire_watch();
        self.holds.retire();
    }

    fn watch_holds(&self, held: Box<dyn Fn(KernelHold) + Send>) -> std::io::Result<()> {
        match self.config.first_line() {
            Some(first_line) => Ok(self.holds.start(first_line.log_group, held)?),
            None => Ok(()),
        }
    }

    fn hold_reports(&self) -> HoldReports {
        self.holds.reports()
    }

    fn ensure_ready(&mut self, allow: &[IpNet]) -> Result<(), FirewallError> {
        self.allow = allow.to_vec();
        match self.config.clone() {
            NftConfig::Own {
                hook,
                forward,
                priority,
                set_size,
                first_line,
            } => self.build_own(OwnLayout {
                hook,
                forward,
                priority,
                set_size,
                first_line,
            }),
            NftConfig::Attach {
                first_line: None, ..
            } => {
                // The snippet included with first-line off (attach mode's default, or a dry
                // run's): its rules would count and hold on empty sets, unfed and unheard;
                // taken out of service, unless a rule of the administrator's looks up its sets
                // (left as they are).
                match self.disarm_attached() {
                    Ok(()) | Err(FirewallError::Missing { .. } | FirewallError::Attach(_)) => {}
                    Err(e) => return Err(e),
                }
                self.check_attached()
            }
            NftConfig::Attach { .. } => {
                self.check_attached()?;
                self.fill_attached()
            }
        }
    }

    fn remove_first_line(&mut self) -> Result<(), FirewallError> {
        if let NftConfig::Attach {
            first_line: Some(_),
            ..
        } = &self.config
        {
            return self.disarm_attached();
        }
        let NftConfig::Own {
            first_line: first_line @ Some(_),
            ..
        } = &mut self.config
        else {
            return Ok(());
        };
        // Own mode's batch with the first line off deletes its chains, sets and counters and
        // keeps the rest as it is: this firewall's table stays, with what its block sets hold.
        *first_line = None;
        self.holds.retire();
        let allow = self.allow.clone();
        self.ensure_ready(&allow)
    }

    fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError> {
        // Batches of at most 1,000 actions: each stays a few pages, well within the socket's
        // buffers and quick for the kernel.
        // A table or set that vanished is reported (Missing), not repaired here: the engine
        // rebuilds the table and puts back everything due, as after a flush.
        super::apply_each(actions, 1000, |chunk| self.apply_once(chunk))
    }

    fn remove_all(&mut self) -> Result<usize, FirewallError> {
        if !self.config.is_own() {
            // Attach mode: the sets are the administrator's; only the blocks go, and the first
            // line, if any, is taken out of service (no daemon will hear of its holds). Already
            // gone from the table is fine.
            let lifted = super::lift_every_block(self)?;
            if self.has_first_line() {
                match self.disarm_attached() {
                    Ok(()) | Err(FirewallError::Missing { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(lifted);
        }
        // Own mode: the table goes, with its chain, its sets and every block in them.
        let blocks = match self.list() {
            Ok(blocks) => blocks.len(),
            Err(FirewallError::Missing { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let table = Table::new(own_name(OWN_TABLE).to_c(), ProtoFamily::Inet);
        let mut batch = Batch::with_page_size(BATCH_PAGE);
        batch.add(&table, MsgType::Del);
        let doing = [(format!("delete table inet {OWN_TABLE}"), None)];
        match self.execute(&batch.finalize(), &doing) {
            Ok(()) | Err(FirewallError::Missing { .. }) => Ok(blocks),
            Err(e) => Err(e),
        }
    }

    fn kept_since_last_run(&mut self) -> Option<Vec<Blocked>> {
        if self.config.is_own() {
            self.list().ok()
        } else {
            None
        }
    }

    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        let mut out = Vec::new();
        for set in self.config.block_sets() {
            let request = sys::request(
                &Request::SetElements(self.config.family(), &self.config.table(), &set.name),
                1,
            );
            let mut parsed = self.config.set_handle(&set.name);
            let described = self.config.describe_set(&set.name);
            self.netlink
                .query(&request, |m| {
                    parsed.parse_elems(m.bytes);
                })
                .map_err(|e| failed(e, format!("list {described}"), described))?;
            let elements = parsed.elements();
            if set.interval {
                out.extend(blocks_from_elements(&elements, set.v6));
            } else {
                out.extend(elements.iter().filter_map(|e| host_block(e, set.v6)));
            }
        }
        Ok(out)
    }

    fn has_first_line(&self) -> bool {
        self.config.first_line().is_some()
    }

    fn set_first_line_facts(&mut self, facts: &FirstLineFacts) -> Result<(), FirewallError> {
        self.facts = Some(facts.clone());
        if !self.has_first_line() {
            return Ok(());
        }
        let mut w = Writer::new(&self.config);
        w.facts(facts)?;
        let (batch, doing) = w.finish();
        self.execute(&batch, &doing)
    }

    fn lift_holds(&mut self, sources: &[IpAddr]) -> Result<(), FirewallError> {
        let entries = |v6: bool| -> Vec<Entry> {
            sources
                .iter()
                .filter(|a| a.is_ipv6() == v6)
                .map(|a| Entry::of(IpNet::from(*a), false, None))
                .collect()
        };
        self.first_line_elements(&[
            ("hold4", SetMsgKind::DestroyElements, entries(false)),
            ("hold6", SetMsgKind::DestroyElements, entries(true)),
        ])
    }

    fn spare(&mut self, nets: &[IpNet], ttl: Duration) -> Result<(), FirewallError> {
        let merged = merge_nets(nets);
        let entries = |v6: bool| -> Vec<Entry> {
            merged
                .iter()
                .filter(|n| n.addr().is_ipv6() == v6)
                .map(|n| Entry::of(*n, true, Some(ttl)))
                .collect()
        };
        self.first_line_elements(&[
            ("spare4", SetMsgKind::AddElements, entries(false)),
            ("spare6", SetMsgKind::AddElements, entries(true)),
        ])
    }

    fn holds(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        if !self.has_first_line() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (name, v6) in [("hold4", false), ("hold6", true)] {
            let elements = self.read_elements(&own_name(name))?;
            out.extend(elements.iter().filter_map(|e| host_block(e, v6)));
        }
        Ok(out)
    }

    fn first_line_counters(&mut self) -> Option<FirstLineCounters> {
        if !self.has_first_line() {
            return None;
        }
        let mut read = |name: &str| -> Option<u64> {
            let name = own_name(name);
            let request =
                sys::counter_request(self.config.family(), &self.config.table(), &name, 1);
            let mut obj = CounterObj::new(self.config.family(), &self.config.table(), &name);
            let mut packets = None;
            self.netlink
                .query(&request, |m| {
                    packets = packets.or(obj.parse_packets(m.bytes));
                })
                .ok()?;
            packets
        };
        Some(FirstLineCounters {
            score_full: read(first_line::SCORE_FULL)?,
            hold_full: read(first_line::HOLD_FULL)?,
        })
    }
}

impl NftFirewall {
    /// Attach mode's first line taken out of service without touching the administrator's
    /// chains or sets: every address into the never-block sets (the base chain accepts them
    /// before it counts or holds), the hold sets emptied, in one batch; the reader stopped.
    /// The next start with it on fills the never-block sets with the list again.
    fn disarm_attached(&mut self) -> Result<(), FirewallError> {
        self.check_disarm()?;
        let all = |net: &str| Entry::of(net.parse().expect("a network"), true, None);
        let mut w = Writer::new(&self.config);
        w.refill("allow4", &[all("0.0.0.0/0")])?;
        w.refill("allow6", &[all("::/0")])?;
        w.empty("hold4")?;
        w.empty("hold6")?;
        let (batch, doing) = w.finish();
        self.execute(&batch, &doing)?;
        if let NftConfig::Attach { first_line, .. } = &mut self.config {
            *first_line = None;
        }
        self.holds.retire();
        Ok(())
    }

    /// Carries out `changes` to the first line's sets in one batch; nothing without a first
    /// line, or when there is nothing to change.
    fn first_line_elements(
        &mut self,
        changes: &[(&str, SetMsgKind, Vec<Entry>)],
    ) -> Result<(), FirewallError> {
        if !self.has_first_line() || changes.iter().all(|(_, _, e)| e.is_empty()) {
            return Ok(());
        }
        let mut w = Writer::new(&self.config);
        for (name, kind, entries) in changes {
            let verb = if *kind == SetMsgKind::AddElements {
                "add elements to"
            } else {
                "remove elements from"
            };
            let msg_type = if *kind == SetMsgKind::AddElements {
                MsgType::Add
            } else {
                MsgType::Del
            };
            for handle in self.config.pack(&own_name(name), entries) {
                let msg = SetMsg::new(&handle, *kind)?;
                w.add(&msg, msg_type, format!("{verb} set {name}"), Some(name));
            }
        }
        let (batch, doing) = w.finish();
        self.execute(&batch, &doing)
    }

    /// The elements of set `name` of our table.
    fn read_elements(&mut self, name: &NftName) -> Result<Vec<ElemInfo>, FirewallError> {
        let request = sys::request(
            &Request::SetElements(self.config.family(), &self.config.table(), name),
            1,
        );
        let mut parsed = self.config.set_handle(name);
        let described = self.config.describe_set(name);
        self.netlink
            .query(&request, |m| {
                parsed.parse_elems(m.bytes);
            })
            .map_err(|e| failed(e, format!("list {described}"), described))?;
        Ok(parsed.elements())
    }
}

/// The address type an attached set must have.
#[derive(Clone, Copy, Debug)]
enum KeyType {
    V4,
    V6,
}

impl KeyType {
    /// nft's type number, the key's length and the type's name.
    fn describe(self) -> (u32, u32, &'static str) {
        match self {
            KeyType::V4 => (TYPE_IPV4_ADDR, 4, "ipv4_addr"),
            KeyType::V6 => (TYPE_IPV6_ADDR, 16, "ipv6_addr"),
        }
    }
}

/// Attach mode's first line as the rule and chain dumps show it: the snippet's chains in
/// `table`, the first a base chain looking up the hold sets, and the hold chain's log rules
/// sending to first-line-log-group (`include` says how to mend it).
fn check_first_line_rules(
    first_line: FirstLine,
    rules: &[sys::RuleInfo],
    chains: &[sys::ChainInfo],
    table: &str,
    include: &str,
) -> Result<(), FirewallError> {
    for (i, name) in first_line::CHAINS.into_iter().enumerate() {
        let found = chains.iter().find(|c| c.table == table && c.name == name);
        let described = format!("chain inet {table} {name}");
        match found {
            None => {
                return Err(FirewallError::Attach(format!(
                    "{described} does not exist; {include}"
                )));
            }
            Some(c) if (i == 0) != c.base => {
                return Err(FirewallError::Attach(format!(
                    "{described} is not as in {FIRST_LINE_SNIPPET}; {include}"
                )));
            }
            Some(_) => {}
        }
    }
    if !looked_up(rules, chains, table, "hold4") {
        return Err(FirewallError::Attach(format!(
            "chain inet {table} first_line has not the rules of {FIRST_LINE_SNIPPET}; \
             {include}"
        )));
    }
    let groups: Vec<u16> = rules
        .iter()
        .filter(|r| r.table == table && r.chain == "hold")
        .flat_map(|r| r.log_groups.iter().copied())
        .collect();
    let wanted = first_line.log_group;
    match groups.iter().find(|g| **g != wanted) {
        _ if groups.is_empty() => Err(FirewallError::Attach(format!(
            "chain inet {table} hold reports no hold (no log rule); {include}"
        ))),
        Some(other) => Err(FirewallError::Attach(format!(
            "chain inet {table} hold logs to group {other}, but [firewall] \
             first-line-log-group is {wanted}: make them the same (the group of the log \
             rules in the included snippet)"
        ))),
        None => none_of_theirs_looks_up_the_snippets_sets(rules, table),
    }
}

/// The daemon empties and fills the snippet's sets, and takes the line out of service by
/// putting every address into allow4/allow6: a rule of the administrator's (outside the
/// snippet's chains of `table`) that looks one up, a set of theirs by the same name merged by
/// the include, would accept every address. Refused, naming the chain and the set.
fn none_of_theirs_looks_up_the_snippets_sets(
    rules: &[sys::RuleInfo],
    table: &str,
) -> Result<(), FirewallError> {
    let shared = rules.iter().find_map(|r| {
        let theirs = r.table == table && !first_line::CHAINS.contains(&r.chain.as_str());
        let set = r
            .lookups
            .iter()
            .find(|l| first_line::expected_sets().any(|(name, ..)| name == l.as_str()))?;
        theirs.then_some((r.chain.as_str(), set.as_str()))
    });
    if let Some((chain, set)) = shared {
        return Err(FirewallError::Attach(format!(
            "chain inet {table} {chain} looks up set {set}, which is the first line's (the \
             daemon fills and empties it, and puts every address into allow4/allow6 when it \
             takes the line out of service): give your set another name"
        )));
    }
    Ok(())
}

/// Whether `found` (`described`) has the type of `key` and `flags interval, timeout`.
fn check_set_shape(found: &SetHandle, key: KeyType, described: &str) -> Result<(), FirewallError> {
    let (key_type, key_len, what) = key.describe();
    let ok_type = found.get_u32(nftnl_sys::NFTNL_SET_KEY_TYPE) == Some(key_type)
        && found.get_u32(nftnl_sys::NFTNL_SET_KEY_LEN) == Some(key_len);
    if !ok_type {
        return Err(FirewallError::Attach(format!(
            "{described} must have type {what}"
        )));
    }
    let flags = found.get_u32(nftnl_sys::NFTNL_SET_FLAGS).unwrap_or(0);
    let missing: Vec<&str> = [(SET_INTERVAL, "interval"), (SET_TIMEOUT, "timeout")]
        .into_iter()
        .filter(|(flag, _)| flags & flag == 0)
        .map(|(_, name)| name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(FirewallError::Attach(format!(
            "{described} needs `flags interval, timeout` (missing: {})",
            missing.join(", ")
        )))
    }
}

/// Whether a rule in a base chain of `table` looks up set `name`.
fn looked_up(rules: &[sys::RuleInfo], chains: &[sys::ChainInfo], table: &str, name: &str) -> bool {
    rules.iter().any(|r| {
        r.table == table
            && r.lookups.iter().any(|l| l == name)
            && chains
                .iter()
                .any(|c| c.table == table && c.name == r.chain && c.base)
    })
}

/// `ms` milliseconds as [`crate::text::human`] writes them, or in ms below a second or off
/// the second.
fn human_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        crate::text::human(Duration::from_millis(ms))
    } else {
        format!("{ms}ms")
    }
}

/// A netlink exchange that failed while `doing`, which concerns `what` (a set or the table).
fn failed(e: NetlinkError, doing: String, what: String) -> FirewallError {
    match e {
        NetlinkError::Socket(io) => FirewallError::Socket(io),
        NetlinkError::Refused { errno, .. } => FirewallError::from_errno(errno, doing, what),
    }
}

/// The interval elements of `net`: its first address, and one past its last (none when the
/// network ends at the top of the address space: the interval is then open).
fn interval(net: IpNet) -> (Key, Option<Key>) {
    match net.trunc() {
        IpNet::V4(n) => (
            Key::V4(n.network().octets()),
            u32::from(n.broadcast())
                .checked_add(1)
                .map(|e| Key::V4(e.to_be_bytes())),
        ),
        IpNet::V6(n) => (
            Key::V6(n.network().octets()),
            u128::from(n.broadcast())
                .checked_add(1)
                .map(|e| Key::V6(e.to_be_bytes())),
        ),
    }
}

/// The messages that carry `entries` into (or out of) set `table`/`name`, as handles of at most
/// [`sys::MAX_ELEMENTS_PER_MSG`] elements each, an interval's start and end always in the same
/// one. Every element message is built through here ([`SetMsg::new`] refuses a bigger one).
fn pack(family: u32, table: &NftName, name: &NftName, entries: &[Entry]) -> Vec<SetHandle> {
    entries
        .chunks(sys::MAX_ELEMENTS_PER_MSG / 2)
        .map(|chunk| {
            let mut handle = SetHandle::new(family, table, name);
            for e in chunk {
                // An existing element gets the new timeout and expiry (that refreshes it).
                let ttl = e.ttl.map(|t| t.max(Duration::from_millis(1)));
                handle.push_element(e.start, 0, ttl, ttl);
                // The kernel refuses a timeout on an interval's end (EINVAL); the rbtree's
                // garbage collector removes the end with its start.
                if let Some(end) = e.end {
                    handle.push_element(end, ELEM_INTERVAL_END, None, None);
                }
            }
            handle
        })
        .collect()
}

/// Merges overlapping and nested networks (an interval set refuses overlapping elements).
fn merge_nets(nets: &[IpNet]) -> Vec<IpNet> {
    IpNet::aggregate(&nets.to_vec())
}

/// Reads interval elements back into blocks: each start element with the end element that
/// follows it (by key), split into CIDRs when the range is not one. End elements without a
/// start (nft writes one at the bottom of the address space) are skipped.
fn blocks_from_elements(elements: &[ElemInfo], v6: bool) -> Vec<Blocked> {
    let key = |e: &ElemInfo| -> Option<u128> {
        match (v6, e.key.len()) {
            (false, 4) => Some(u128::from(u32::from_be_bytes(e.key[..].try_into().ok()?))),
            (true, 16) => Some(u128::from_be_bytes(e.key[..].try_into().ok()?)),
            _ => None,
        }
    };
    let mut sorted: Vec<(u128, &ElemInfo)> = elements
        .iter()
        .filter_map(|e| key(e).map(|k| (k, e)))
        .collect();
    // At equal keys the end of one interval comes before the start of the next.
    sorted.sort_by_key(|(k, e)| (*k, e.flags & ELEM_INTERVAL_END == 0));
    let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let (start, e) = sorted[i];
        i += 1;
        if e.flags & ELEM_INTERVAL_END != 0 {
            continue;
        }
        let last = match sorted.get(i) {
            Some((end, next)) if next.flags & ELEM_INTERVAL_END != 0 => {
                i += 1;
                end.saturating_sub(1)
            }
            _ => max,
        };
        let remaining = e.expiration;
        for net in cidrs(start, last, v6) {
            out.push(Blocked { net, remaining });
        }
    }
    out
}

/// An element of an address (hash) set as the block of that address.
fn host_block(e: &ElemInfo, v6: bool) -> Option<Blocked> {
    let addr = match (v6, e.key.len()) {
        (false, 4) => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&e.key[..]).ok()?)),
        (true, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&e.key[..]).ok()?)),
        _ => return None,
    };
    Some(Blocked {
        net: IpNet::from(addr),
        remaining: e.expiration,
    })
}

/// The CIDRs covering `first..=last`.
fn cidrs(first: u128, last: u128, v6: bool) -> Vec<IpNet> {
    if v6 {
        ipnet::Ipv6Subnets::new(Ipv6Addr::from(first), Ipv6Addr::from(last), 0)
            .map(IpNet::V6)
            .collect()
    } else {
        let (Ok(a), Ok(b)) = (u32::try_from(first), u32::try_from(last)) else {
            return Vec::new();
        };
        ipnet::Ipv4Subnets::new(Ipv4Addr::from(a), Ipv4Addr::from(b), 0)
            .map(IpNet::V4)
            .collect()
    }
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn intervals_end_one_past_the_last_address() {
        assert_eq!(
            interval(net("203.0.113.0/24")),
            (Key::V4([203, 0, 113, 0]), Some(Key::V4([203, 0, 114, 0])))
        );
        assert_eq!(
            interval(net("198.51.100.7/32")),
            (Key::V4([198, 51, 100, 7]), Some(Key::V4([198, 51, 100, 8])))
        );
        assert_eq!(
            interval(net("255.255.255.255/32")),
            (Key::V4([255; 4]), None)
        );
        let (start, end) = interval(net("2001:db8::/64"));
        assert!(matches!(start, Key::V6(_)));
        let Some(Key::V6(end)) = end else {
            panic!("an IPv6 end: {end:?}")
        };
        assert_eq!(end[..8], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1]);
    }

    fn elem(key: Vec<u8>, end: bool, expiration_s: Option<u64>) -> ElemInfo {
        ElemInfo {
            key,
            flags: if end { ELEM_INTERVAL_END } else { 0 },
            timeout: None,
            expiration: expiration_s.map(Duration::from_secs),
        }
    }

    #[test]
    fn elements_read_back_as_the_blocks_they_encode() {
        let mut elements = Vec::new();
        for (n, exp) in [
            ("203.0.113.0/24", 100),
            ("198.51.100.7/32", 5),
            ("255.255.255.255/32", 9),
        ] {
            let (s, e) = interval(net(n));
            elements.push(elem(s.bytes().to_vec(), false, Some(exp)));
            if let Some(e) = e {
                elements.push(elem(e.bytes().to_vec(), true, Some(exp)));
            }
        }
        // nft's marker at the bottom of the address space.
        elements.push(elem(vec![0, 0, 0, 0], true, None));
        elements.reverse();
        let blocks = blocks_from_elements(&elements, false);
        assert_eq!(
            blocks,
            [
                Blocked {
                    net: net("198.51.100.7/32"),
                    remaining: Some(Duration::from_secs(5))
                },
                Blocked {
                    net: net("203.0.113.0/24"),
                    remaining: Some(Duration::from_secs(100))
                },
                Blocked {
                    net: net("255.255.255.255/32"),
                    remaining: Some(Duration::from_secs(9))
                },
            ]
        );
    }

    #[test]
    fn adjacent_intervals_and_odd_ranges_read_back() {
        // 198.51.100.0-198.51.100.2: two CIDRs; then an interval starting where it ends.
        let elements = vec![
            elem(vec![198, 51, 100, 0], false, Some(1)),
            elem(vec![198, 51, 100, 3], true, None),
            elem(vec![198, 51, 100, 3], false, Some(2)),
            elem(vec![198, 51, 100, 4], true, None),
        ];
        let nets: Vec<IpNet> = blocks_from_elements(&elements, false)
            .into_iter()
            .map(|b| b.net)
            .collect();
        assert_eq!(
            nets,
            [
                net("198.51.100.0/31"),
                net("198.51.100.2/32"),
                net("198.51.100.3/32")
            ]
        );
    }

    /// Issue 13: a never-block list of 10,000 separate entries once went into one message and
    /// overran nftnl's batch buffer. Packed, every message holds at most the limit, keeps each
    /// interval whole, and all of them together carry every element.
    #[test]
    fn issue_13_long_lists_are_packed_into_messages_that_fit() {
        let table = own_name(OWN_TABLE);
        let family = libc::NFPROTO_INET as u32;
        for (name, v6) in [("allow4", false), ("allow6", true)] {
            let entries: Vec<Entry> = (0..10_000u32)
                .map(|i| {
                    let net = if v6 {
                        IpNet::from(IpAddr::V6(Ipv6Addr::from(
                            (0x2001_0db8_u128 << 96) | (u128::from(i) * 4),
                        )))
                    } else {
                        IpNet::from(IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i * 4)))
                    };
                    Entry::of(net, true, None)
                })
                .collect();
            let handles = pack(family, &table, &own_name(name), &entries);
            let mut total = 0;
            let mut batch = Batch::with_page_size(BATCH_PAGE);
            for h in &handles {
                let elements = h.elements();
                assert!(elements.len() <= sys::MAX_ELEMENTS_PER_MSG);
                assert_eq!(elements.len() % 2, 0, "a start without its end");
                total += elements.len();
                batch.add(
                    &SetMsg::new(h, SetMsgKind::AddElements).unwrap(),
                    MsgType::Add,
                );
            }
            assert_eq!(total, 20_000, "{name}");
            // Every message the batch holds is whole and under netlink's 64 KiB.
            let batch = batch.finalize();
            let mut messages = 0;
            for page in &batch {
                for m in netlink::messages(page) {
                    assert!(m.bytes.len() < 64 * 1024);
                    messages += 1;
                }
            }
            assert_eq!(messages, handles.len() + 2, "BEGIN, the messages, END");
        }
    }

    /// Own mode's batch, read back without root: the message types in order, and what each
    /// change does at the sequence number a refusal would name; with the first line on (its
    /// sets, counters, facts and rules) and off (all of it deleted in the same batch).
    #[test]
    fn own_batch_creates_writes_and_fills_in_one_batch() {
        const NFT: u16 = 10 << 8;
        let (table, set, chain, del_chain) = (NFT, NFT | 9, NFT | 3, NFT | 5);
        let (rule, flush_chain, fill, destroy_set) = (NFT | 6, NFT | 8, NFT | 12, NFT | 29);
        let (new_obj, destroy_obj, empty_set) = (NFT | 18, NFT | 31, NFT | 30);
        let allow = [
            net("198.51.100.0/24"),
            net("2001:db8::/32"),
            net("203.0.113.5/32"),
        ];
        let mut facts = FirstLineFacts {
            listening: std::collections::BTreeSet::new(),
            tripwires: std::collections::BTreeSet::new(),
            scanners_first: std::collections::BTreeSet::new(),
            peers: Vec::new(),
            ephemeral: Some(32768..=60999),
        };
        facts.listening.insert((crate::wire::Proto::Tcp, 22));
        for (forward, first) in [(false, false), (true, false), (false, true), (true, true)] {
            let first_line = first.then_some(FirstLine {
                hold: Duration::from_secs(5),
                log_group: 2701,
            });
            let layout = OwnLayout {
                hook: Hook::Input,
                forward,
                priority: -10,
                set_size: 2048,
                first_line,
            };
            let config = NftConfig::Own {
                hook: layout.hook,
                forward,
                priority: layout.priority,
                set_size: layout.set_size,
                first_line,
            };
            let (batch, doing) = own_batch(&config, layout, &allow, Some(&facts)).unwrap();
            let bytes: Vec<u8> = batch.iter().flatten().copied().collect();
            let messages: Vec<_> = crate::netlink::messages(&bytes).collect();
            let mut expected = vec![table];
            for _ in 0..6 {
                expected.extend([chain, flush_chain]);
            }
            expected.extend([destroy_set; 2]);
            expected.extend([set; 6]);
            expected.extend([fill; 2]);
            if first {
                expected.extend([set; 14]);
                expected.extend([new_obj; 2]);
                // listen . tripwire . scanners_first . peers4 . peers6 . udp_replies: emptied,
                // then filled with what there is (tcp . 22; none; the ephemeral range).
                expected.extend([empty_set, fill, empty_set, empty_set, empty_set, empty_set]);
                expected.extend([empty_set, fill]);
            } else {
                expected.extend([destroy_set; 14]);
                expected.extend([destroy_obj; 2]);
            }
            expected.extend([rule; 6]);
            if forward {
                expected.extend([rule; 6]);
            } else {
                expected.push(del_chain);
            }
            if first {
                expected.extend([rule; 26 + 4 + 4 + 5]);
            } else {
                expected.extend([del_chain; 4]);
            }
            let kinds: Vec<u16> = messages.iter().map(|m| m.kind).collect();
            assert_eq!(kinds.first(), Some(&16), "batch begin");
            assert_eq!(kinds.last(), Some(&17), "batch end");
            assert_eq!(
                kinds[1..kinds.len() - 1],
                expected[..],
                "forward {forward}, first line {first}"
            );
            assert_eq!(doing.len(), expected.len());
            let first_seq = batch.sequence_numbers().start + 1;
            for (i, m) in messages[1..messages.len() - 1].iter().enumerate() {
                assert_eq!(
                    m.seq,
                    first_seq + u32::try_from(i).unwrap(),
                    "{:?}",
                    doing[i]
                );
            }
            assert_eq!(doing[0].0, "create table inet scansentry");
            let fill6 = 1 + 12 + 2 + 6 + 1;
            assert_eq!(
                doing[fill6],
                (
                    "fill set allow6".to_string(),
                    Some("set inet scansentry allow6".to_string())
                )
            );
            let hold = if first {
                "create set hold6"
            } else {
                "delete set hold6"
            };
            assert!(
                doing.iter().any(|(what, set)| what == hold
                    && set.as_deref() == Some("set inet scansentry hold6")),
                "{doing:?}"
            );
        }
    }

    /// An unblocked address is let in by the first line too: the same batch destroys its hold
    /// element (a network's unblock, or a firewall without a first line, adds nothing).
    #[test]
    fn an_unblock_lifts_the_first_lines_hold_of_the_address_in_the_same_batch() {
        let config = |first_line| NftConfig::Own {
            hook: Hook::Input,
            forward: true,
            priority: -10,
            set_size: 2048,
            first_line,
        };
        let on = config(Some(FirstLine {
            hold: Duration::from_secs(5),
            log_group: 2701,
        }));
        let actions = [
            Action::Unblock {
                net: net("203.0.113.7/32"),
            },
            Action::Unblock {
                net: net("2001:db8::7/128"),
            },
            Action::Unblock {
                net: net("2001:db8:1::/64"),
            },
        ];
        let (_, doing) = element_batch(&on, &actions).unwrap().unwrap();
        let about: Vec<&str> = doing.iter().map(|(what, _)| what.as_str()).collect();
        assert_eq!(
            about,
            [
                "remove elements from set inet scansentry blocked4",
                "remove elements from set inet scansentry blocked6",
                "remove elements from set inet scansentry blocked6_net",
                "remove elements from set inet scansentry hold4",
                "remove elements from set inet scansentry hold6",
            ]
        );
        let (_, doing) = element_batch(&config(None), &actions).unwrap().unwrap();
        assert_eq!(doing.len(), 3, "{doing:?}");
        let block = [Action::Block {
            net: net("203.0.113.7/32"),
            ttl: Duration::from_secs(60),
        }];
        let (_, doing) = element_batch(&on, &block).unwrap().unwrap();
        assert_eq!(doing.len(), 1, "a block lifts no hold: {doing:?}");
        // Attach mode's first line: the hold sets of the administrator's table.
        let attached = NftConfig::Attach {
            family: Family::Inet,
            table: NftName::new("filter").unwrap(),
            set4: Some(NftName::new("s4").unwrap()),
            set6: None,
            first_line: Some(FirstLine {
                hold: Duration::from_secs(5),
                log_group: 2701,
            }),
        };
        let (_, doing) = element_batch(&attached, &actions[..1]).unwrap().unwrap();
        let about: Vec<&str> = doing.iter().map(|(what, _)| what.as_str()).collect();
        assert_eq!(
            about,
            [
                "remove elements from set inet filter s4",
                "remove elements from set inet filter hold4",
            ]
        );
    }

    #[test]
    fn an_attached_set_needs_its_type_both_flags_and_a_base_chain_rule() {
        let described = "set ip filter scanners";
        let mut set = SetHandle::empty();
        set.set_u32(nftnl_sys::NFTNL_SET_KEY_TYPE, TYPE_IPV4_ADDR);
        set.set_u32(nftnl_sys::NFTNL_SET_KEY_LEN, 4);
        set.set_u32(nftnl_sys::NFTNL_SET_FLAGS, SET_TIMEOUT);
        let err = check_set_shape(&set, KeyType::V4, described).unwrap_err();
        assert!(err.to_string().contains("(missing: interval)"), "{err}");
        assert!(matches!(
            check_set_shape(&set, KeyType::V6, described),
            Err(FirewallError::Attach(m)) if m.ends_with("must have type ipv6_addr")
        ));
        set.set_u32(nftnl_sys::NFTNL_SET_FLAGS, SET_TIMEOUT | SET_INTERVAL);
        assert!(check_set_shape(&set, KeyType::V4, described).is_ok());

        let chain = |name: &str, base| sys::ChainInfo {
            table: "filter".into(),
            name: name.into(),
            base,
        };
        let rule = |chain: &str| sys::RuleInfo {
            table: "filter".into(),
            chain: chain.into(),
            lookups: vec!["scanners".into()],
            log_groups: Vec::new(),
        };
        let chains = [chain("input", true), chain("helper", false)];
        assert!(looked_up(&[rule("input")], &chains, "filter", "scanners"));
        assert!(!looked_up(&[rule("helper")], &chains, "filter", "scanners"));
        assert!(!looked_up(&[rule("input")], &chains, "other", "scanners"));
        assert!(!looked_up(&[rule("input")], &chains, "filter", "others"));
    }

    /// A chain of table `filter` as the chain dump shows it.
    fn dumped_chain(name: &str, base: bool) -> sys::ChainInfo {
        sys::ChainInfo {
            table: "filter".into(),
            name: name.into(),
            base,
        }
    }

    /// A rule of table `filter`'s `chain` as the rule dump shows it: the sets it looks up and
    /// the log groups it logs to.
    fn dumped_rule(chain: &str, lookups: &[&str], log_groups: &[u16]) -> sys::RuleInfo {
        sys::RuleInfo {
            table: "filter".into(),
            chain: chain.into(),
            lookups: lookups.iter().map(|s| s.to_string()).collect(),
            log_groups: log_groups.to_vec(),
        }
    }

    /// The first line as the defaults make it.
    fn default_first_line() -> FirstLine {
        FirstLine {
            hold: Duration::from_secs(5),
            log_group: 2701,
        }
    }

    /// Issue 27: attach mode's first line as the chain and rule dumps show it.
    #[test]
    fn an_attached_first_line_needs_its_chains_and_its_log_group() {
        let (chain, rule, first) = (dumped_chain, dumped_rule, default_first_line());
        let chains = [
            chain("first_line", true),
            chain("weigh", false),
            chain("count", false),
            chain("hold", false),
        ];
        let rules = [
            rule("first_line", &["hold4"], &[]),
            rule("hold", &[], &[2701]),
            rule("hold", &[], &[2701]),
        ];
        let check = |chains: &[sys::ChainInfo], rules: &[sys::RuleInfo], first| {
            check_first_line_rules(first, rules, chains, "filter", "include it")
                .map_err(|e| e.to_string())
        };
        assert_eq!(check(&chains, &rules, first), Ok(()));
        assert_eq!(
            check(&chains[..2], &rules, first),
            Err("attach mode: chain inet filter count does not exist; include it".into())
        );
        let mut not_base = chains.clone();
        not_base[0].base = false;
        assert!(check(&not_base, &rules, first).is_err());
        assert!(
            check(&chains, &rules[1..], first)
                .unwrap_err()
                .contains("first_line has not the rules")
        );
        assert_eq!(
            check(&chains, &rules[..1], first),
            Err(
                "attach mode: chain inet filter hold reports no hold (no log rule); include it"
                    .into()
            )
        );
        let seven = FirstLine {
            log_group: 7,
            ..first
        };
        assert_eq!(
            check(&chains, &rules, seven),
            Err(
                "attach mode: chain inet filter hold logs to group 2701, but [firewall] \
                 first-line-log-group is 7: make them the same (the group of the log rules in \
                 the included snippet)"
                    .into()
            )
        );
    }

    /// Red team of issue 27: elements another program deletes from a set the daemon fills
    /// whole (never-block, facts) call for a restore, with a first line; not from the sets the
    /// rules fill or the daemon lifts from (holds, spares), nor without a first line.
    #[test]
    fn red_a_never_block_or_fact_set_emptied_by_another_is_filled_again() {
        let on = NftConfig::Attach {
            family: Family::Inet,
            table: NftName::new("filter").unwrap(),
            set4: Some(NftName::new("s4").unwrap()),
            set6: None,
            first_line: Some(FirstLine {
                hold: Duration::from_secs(5),
                log_group: 2701,
            }),
        };
        for set in ["allow4", "allow6", "listen", "scanners_first", "peers6"] {
            assert!(on.first_line_set_emptied(set), "{set}");
        }
        for set in ["hold4", "spare4", "pairs4", "score6", "s4"] {
            assert!(!on.first_line_set_emptied(set), "{set}");
        }
        let mut off = on.clone();
        if let NftConfig::Attach { first_line, .. } = &mut off {
            *first_line = None;
        }
        assert!(!off.first_line_set_emptied("allow4"));
    }

    /// Red team of issue 27 (attach mode): a set of the administrator's own by a snippet name
    /// (`allow4`, declared as the snippet does, so that the include merges the two) looked up
    /// by a rule of theirs. The daemon empties it and fills it with the never-block list, and
    /// takes the first line out of service by putting 0.0.0.0/0 into it: their `ip saddr
    /// @allow4 accept` would then accept every address. Refused at start, naming the rule's
    /// chain and the set.
    #[test]
    fn red_a_snippet_set_looked_up_by_a_rule_of_the_administrators_is_refused() {
        let (chain, rule, first) = (dumped_chain, dumped_rule, default_first_line());
        let chains = [
            chain("first_line", true),
            chain("weigh", false),
            chain("count", false),
            chain("hold", false),
            chain("input", true),
            chain("trusted", false),
        ];
        let mut rules = vec![
            rule("first_line", &["allow4", "allow6", "hold4", "listen"], &[]),
            rule("weigh", &["scanners_first"], &[]),
            rule("count", &["score4"], &[]),
            rule("hold", &[], &[2701]),
            // The administrator's own rules: their block sets, and a set of their own.
            rule("input", &["scansentry4", "scansentry6", "admins"], &[]),
        ];
        let check = |rules: &[sys::RuleInfo]| {
            check_first_line_rules(first, rules, &chains, "filter", "include it")
                .map_err(|e| e.to_string())
        };
        assert_eq!(check(&rules), Ok(()));
        for (chain, set) in [
            ("input", "allow4"),
            ("trusted", "allow6"),
            ("input", "listen"),
        ] {
            rules.push(rule(chain, &[set], &[]));
            let refused = check(&rules).unwrap_err();
            assert!(
                refused.contains(&format!("chain inet filter {chain} looks up set {set}")),
                "{refused}"
            );
            rules.pop();
        }
        // The same names in another table are none of the snippet's.
        let mut elsewhere = rule("input", &["allow4"], &[]);
        elsewhere.table = "other".into();
        rules.push(elsewhere);
        assert_eq!(check(&rules), Ok(()));
    }

    #[test]
    fn nested_allow_entries_are_merged() {
        assert_eq!(
            merge_nets(&[
                net("198.51.100.0/24"),
                net("198.51.100.1/32"),
                net("2001:db8::1/128")
            ]),
            [net("198.51.100.0/24"), net("2001:db8::1/128")]
        );
    }
}
