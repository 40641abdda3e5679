//! The responder: a detection in, a decision and firewall [`Action`]s out. **Pure**; time is an
//! argument.
//!
//! In this order:
//! 1. the never-block list (an aggregated prefix that covers a never-block address is narrowed
//!    to the one offending address);
//! 2. a source already blocked (by this block or one that covers it) gets nothing, or a refresh
//!    when `refresh = true`;
//! 3. too few distinct trap ports (`min-ports`, 3 by default) is reported, not blocked,
//!    whatever the score; an IPv6 (or IPv4) prefix is blocked whole only when several of its
//!    addresses scanned, otherwise only the scanning address;
//! 4. the budget, per address family and partitioned by source prefix (IPv4 /24, IPv6 /48:
//!    what a forger cannot choose freely, unlike the ports it touches): at most
//!    `max-new-blocks-per-second` new blocks (a token bucket with a burst of as many), of which
//!    one prefix takes at most [`strong_share`] a second and weak evidence never the last
//!    quarter; at most `max-blocks` active ones per family, of which one prefix holds at most
//!    [`prefix_hold`], weak evidence never the last quarter and strong evidence from a prefix
//!    that holds blocks already never the last eighth. A detection refused by the rate budget
//!    waits (at most [`MAX_WAITING`], [`WAITING_PER_PREFIX`] a prefix, for [`WAIT_FOR`]) and
//!    is settled as soon as the budget allows, the prefixes that spent least first
//!    ([`Responder::next_due`]);
//! 5. the block, for `block-for × repeat-factor^(offences − 1)`, capped at `max-block-for`,
//!    where offences are counted over `remember-offences`. Smaller blocks the new one covers
//!    are lifted in the same batch (an interval set refuses overlapping elements).
//!
//! Memory is bounded: at most `max-blocks` active blocks per address family, `2 × max-blocks`
//! remembered offenders (the one whose last offence is oldest is forgotten first) and
//! [`MAX_WAITING`] waiting detections.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hashlink::LinkedHashMap;
use ipnet::IpNet;

pub use crate::config::MAX_BLOCK_FOR;
use crate::config::RespondConfig;
use crate::detect::Detection;
use crate::fleet::message::HostName;
use crate::never_block::NeverBlockList;
use crate::time::Timestamp;
use crate::wire::Proto;

/// Grace periods remembered at most (the oldest gives way).
const MAX_GRACE: usize = 1024;

/// New automatic blocks on weak evidence (fewer than twice `min-ports` ports) at most in one
/// IPv4 /24 or IPv6 /48 within [`PREFIX_WINDOW`]: a forger who picks addresses of one network
/// (an office, a provider's customers) to have them blocked one by one gets this many a minute,
/// not the whole budget; a real scan of many ports is not held back by it.
pub const PREFIX_CAP: u32 = 16;
/// See [`PREFIX_CAP`].
pub const PREFIX_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Prefixes whose recent blocks are counted, at most (the least recent gives way).
const MAX_PREFIXES: usize = 4096;

/// The window of [`strong_share`].
pub const SHARE_WINDOW: Duration = Duration::from_secs(1);

/// New blocks on strong evidence one IPv4 /24 or IPv6 /48 takes at most within
/// [`SHARE_WINDOW`]: an eighth of `max-new-blocks-per-second` (rounded up). A forger's strong
/// evidence costs it only packets (twenty ports, twenty packets), but it cannot choose freely
/// which prefixes its forged sources are in: two forged /24s take a quarter of the budget, not
/// all of it.
pub fn strong_share(rate: u32) -> u32 {
    rate.div_ceil(8).max(1)
}

/// Active blocks one IPv4 /24 or IPv6 /48 holds at most from detections and sweeps (blocks by
/// hand and from the fleet are counted, not refused): a sixteenth of `max-blocks`, from
/// [`PREFIX_CAP`] to [`MAX_PREFIX_HOLD`]. What bounds the innocent addresses a forger has
/// blocked in one network it can forge from, for as long as blocks last.
pub fn prefix_hold(max_blocks: usize) -> usize {
    (max_blocks / 16).clamp(PREFIX_CAP as usize, MAX_PREFIX_HOLD)
}

/// See [`prefix_hold`]: a quarter of an IPv4 /24 (a site's /48 holds as many blocks, most of
/// them of a /64 each).
pub const MAX_PREFIX_HOLD: usize = 64;

/// Detections refused by the rate budget that wait for it, at most.
pub const MAX_WAITING: usize = 256;
/// Of them, from one IPv4 /24 or IPv6 /48 at most.
pub const WAITING_PER_PREFIX: usize = 4;
/// How long a refused detection waits at most, from its first refusal.
pub const WAIT_FOR: Duration = Duration::from_secs(30);
/// After a look at the waiting detections found none the budget allows, the next look comes
/// no sooner than this (a flood makes a detection at every probe).
const SETTLE_PAUSE: Duration = Duration::from_millis(10);

/// The prefix a source's budget is counted in: its IPv4 /24 or IPv6 /48.
pub fn prefix_of(addr: IpAddr) -> IpNet {
    match addr {
        IpAddr::V4(a) => IpNet::new(IpAddr::V4(a), 24),
        IpAddr::V6(a) => IpNet::new(IpAddr::V6(a), 48),
    }
    .expect("24 and 48 are valid prefix lengths")
    .trunc()
}

/// How strong the evidence for an automatic block is, for the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Fewer than twice `min-ports` trap ports, or a sweep: cheap to forge.
    Weak,
    /// Twice `min-ports` trap ports or more.
    Strong,
}

/// What the firewall is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Block `net` for `ttl` (refreshing an existing block).
    Block {
        /// The address (host prefix) or network.
        net: IpNet,
        /// How long; never zero.
        ttl: Duration,
    },
    /// Lift the block of `net` (fine if there is none).
    Unblock {
        /// The address or network.
        net: IpNet,
    },
}

impl Action {
    /// The address or network the action is about.
    pub fn net(&self) -> IpNet {
        match self {
            Action::Block { net, .. } | Action::Unblock { net } => *net,
        }
    }
}

/// Which budget refused a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// `max-new-blocks-per-second` was spent (for the address family).
    Rate(u32),
    /// What is left of `max-new-blocks-per-second` is kept for strong evidence (a scan of
    /// twice `min-ports` or more), and this detection has less.
    Reserve(u32),
    /// [`PREFIX_CAP`] new blocks were made in this IPv4 /24 or IPv6 /48 within the last
    /// [`PREFIX_WINDOW`], and this detection is weak evidence.
    Prefix(IpNet),
    /// This IPv4 /24 or IPv6 /48 took its [`strong_share`] (the number) of new blocks within
    /// the last [`SHARE_WINDOW`].
    Share(IpNet, u32),
    /// `max-blocks` blocks of the address family are active.
    Size(usize),
    /// This IPv4 /24 or IPv6 /48 holds [`prefix_hold`] (the number) active blocks.
    Held(IpNet, usize),
    /// What is left of `max-blocks` (the number) is kept for strong evidence from prefixes
    /// that hold no block.
    Room(usize),
}

impl Budget {
    /// Whether it is the rate budget (whose tokens come back within a second), so that the
    /// detection may wait for it.
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            Budget::Rate(_) | Budget::Reserve(_) | Budget::Prefix(_) | Budget::Share(..)
        )
    }
}

/// What to do about a detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Block `net` for `ttl`; lift the smaller blocks in `replaces` that it covers.
    Block {
        /// The address (host prefix) or network to block.
        net: IpNet,
        /// How long.
        ttl: Duration,
        /// Which offence of this source this is (1 for the first).
        offence: u32,
        /// Active blocks inside `net`, lifted in the same batch.
        replaces: Vec<IpNet>,
    },
    /// `net` was blocked already and its block is set to `ttl` again (`refresh = true`).
    Refresh {
        /// The blocked address or network.
        net: IpNet,
        /// The block's new duration.
        ttl: Duration,
    },
    /// `net` is blocked already, for `remaining` more.
    AlreadyBlocked {
        /// The blocked address or network.
        net: IpNet,
        /// Time left on the block.
        remaining: Duration,
    },
    /// A budget is spent: refused, and logged.
    OverBudget {
        /// What would have been blocked.
        net: IpNet,
        /// Which budget.
        budget: Budget,
        /// Whether the detection waits for the budget ([`Responder::next_due`]).
        waits: bool,
    },
    /// The address is on the never-block list.
    NeverBlock {
        /// The address.
        addr: IpAddr,
        /// Why (the first matching entry's reason).
        reason: String,
    },
    /// Too few distinct trap ports for an automatic block (`[respond] min-ports`), whatever
    /// the score: one forged packet of a heavy kind is reported, never blocked.
    TooFewPorts {
        /// The address.
        addr: IpAddr,
        /// Its distinct trap ports in the window.
        ports: usize,
        /// The minimum.
        min: usize,
    },
    /// The source fails the reverse-path check (`[respond] reverse-path`): the host would not
    /// route a packet back to it by the interface its probes came in on (or at all), so they
    /// are most likely forged. Decided by the shell, which asks the kernel.
    ReversePath {
        /// The address.
        addr: IpAddr,
        /// The interface its probe came in on, by name, when known.
        came_in: Option<String>,
        /// The interface the route back to it leaves by; none when there is no route back.
        route: Option<String>,
    },
    /// The source has an established connection to this host (`[respond] protect`): a
    /// conversation a forger off the path cannot hold, so probe evidence alone does not block
    /// it. Decided by the shell, which asks the kernel; a block by hand still works.
    Protected {
        /// The address.
        addr: IpAddr,
        /// The peer in conversation (the address, or another in the prefix to be blocked).
        peer: IpAddr,
        /// The local port of its connection.
        port: u16,
        /// When the daemon first found the connection established.
        since: Timestamp,
        /// When it was last found established, if it has ended (a conversation remembered
        /// for `[respond] protect-for`).
        ended: Option<Timestamp>,
    },
    /// The address was unblocked by hand a moment ago, with a grace period.
    InGrace {
        /// The address.
        addr: IpAddr,
        /// Time left of the grace period.
        remaining: Duration,
    },
    /// The block of `net` was lifted because its element was deleted outside scansentry (an
    /// administrator's `nft delete element`): an unblock by hand, its offence history kept.
    /// Not a decision on a detection; the engine makes it from what the kernel shows.
    DeletedOutside {
        /// What was blocked.
        net: IpNet,
        /// Time the block had left.
        remaining: Duration,
        /// Offences of `net` so far (kept: its next block is the one after).
        offence: u32,
        /// Whether the deletion was found at a start (made while sentryd was stopped).
        while_stopped: bool,
    },
}

impl Decision {
    /// Whether the decision deals with the whole source of `detection` (a block of it or of
    /// a network that covers it, in force or made now; or a never-block or grace verdict), so
    /// that the quiet period after a detection may follow. Otherwise — refused by the budget,
    /// too few ports yet, or only one address of a wider prefix blocked — its source is judged
    /// again at its next probe: a flood that spends the budget buys a real scanner no peace,
    /// and a second address of a prefix is seen as it scans.
    pub fn settles(&self, detection: &Detection) -> bool {
        let covers = |net: &IpNet| net.contains(&detection.source);
        match self {
            Decision::Block { net, .. }
            | Decision::Refresh { net, .. }
            | Decision::AlreadyBlocked { net, .. } => covers(net),
            Decision::NeverBlock { .. }
            | Decision::InGrace { .. }
            | Decision::Protected { .. }
            | Decision::DeletedOutside { .. } => true,
            Decision::OverBudget { .. }
            | Decision::TooFewPorts { .. }
            | Decision::ReversePath { .. } => false,
        }
    }

    /// What the firewall must do for this decision.
    pub fn actions(&self) -> Vec<Action> {
        match self {
            Decision::Block {
                net, ttl, replaces, ..
            } => replaces
                .iter()
                .map(|&net| Action::Unblock { net })
                .chain([Action::Block {
                    net: *net,
                    ttl: *ttl,
                }])
                .collect(),
            Decision::Refresh { net, ttl } => vec![Action::Block {
                net: *net,
                ttl: *ttl,
            }],
            _ => Vec::new(),
        }
    }
}

/// What the shell asked the kernel about a detection's source, for [`distrust`].
#[derive(Clone, Copy, Debug)]
pub struct SourceView<'a> {
    /// The reverse-path check in force for this source (with `kernel`, the host's setting for
    /// the probe's interface).
    pub reverse_path: crate::trust::ReversePath,
    /// The route back to the source, when it was looked up (`None`: the check is off, or the
    /// lookup failed, which lets the detection through: the kernel's own rp_filter stands).
    pub route_back: Option<crate::trust::RouteBack>,
    /// The conversations that protect sources, with `[respond] protect = "established"`.
    pub peers: Option<&'a crate::trust::Peers>,
}

/// Why the trust rules keep a detection from the responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distrust {
    /// The route back to the source does not leave by the interface its probe came in on (or
    /// there is none): its probes may be forged.
    ReversePath {
        /// The interface the probe came in on, when the capture said.
        came_in: Option<u32>,
        /// The route back.
        route: crate::trust::RouteBack,
    },
    /// The host was in conversation with an address the block would cover before the evidence
    /// began.
    Protected(crate::trust::Conversation),
}

/// The trust rules over a detection, in order: a source the host would not route back the way
/// its probe came is reported (reverse path); one of a peer in conversation with the host since
/// before its first probe, within what a block would cover ([`target`]), is protected.
/// Never-block sources are left to the responder, which says so. **Pure**: the shell hands in
/// what the kernel said.
pub fn distrust(
    d: &Detection,
    view: &SourceView<'_>,
    never_block: &NeverBlockList,
) -> Option<Distrust> {
    if never_block.contains(d.addr) {
        return None;
    }
    if let Some(route) = view.route_back
        && !view.reverse_path.passes(d.arrived_on, route)
    {
        return Some(Distrust::ReversePath {
            came_in: d.arrived_on,
            route,
        });
    }
    view.peers
        .and_then(|peers| peers.protecting(target(d, never_block), d.first_seen))
        .map(Distrust::Protected)
}

/// What brings the firewall from what it holds to what is due: the one diff the daemon makes
/// — at start, after the ruleset lost our blocks, and once a second for a backend whose blocks
/// do not end by themselves (routes). **Pure.**
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Blocks due that the firewall lacks, to be put (back), with the time each has left;
    /// sorted.
    pub missing: Vec<Action>,
    /// What the firewall holds that is not due; sorted. Lifted where everything in the
    /// firewall is ours (routes of our protocol); left alone in nftables sets, where an
    /// administrator may add elements by hand.
    pub extra: Vec<IpNet>,
}

impl Plan {
    /// The actions of a firewall that holds only ours: the extras lifted, then the missing put.
    pub fn all(self) -> Vec<Action> {
        self.extra
            .into_iter()
            .map(|net| Action::Unblock { net })
            .chain(self.missing)
            .collect()
    }
}

/// The [`Plan`] from `due` (each block in force, as [`Responder::due`] gives them) to
/// `present` (what the firewall holds).
pub fn reconcile(
    due: impl IntoIterator<Item = Action>,
    present: &std::collections::HashSet<IpNet>,
) -> Plan {
    let mut due_nets = std::collections::HashSet::new();
    let mut missing: Vec<Action> = due
        .into_iter()
        .filter(|a| due_nets.insert(a.net()) && !present.contains(&a.net()))
        .collect();
    missing.sort_by_key(Action::net);
    let mut extra: Vec<IpNet> = present
        .iter()
        .filter(|net| !due_nets.contains(*net))
        .copied()
        .collect();
    extra.sort_unstable();
    Plan { missing, extra }
}

/// What a block for `detection` would cover: its source, or only the scanning address. A
/// prefix is the scanner's only when several of its addresses scanned; one address is blocked
/// alone (a forger picking one address of a /64 must not cut off its neighbours). Nor is a
/// prefix that covers a never-block address blocked whole.
pub fn target(detection: &Detection, ignore: &NeverBlockList) -> IpNet {
    let source = detection.source;
    let whole = source.prefix_len() == source.max_prefix_len();
    if ignore.overlaps(source) || !(whole || detection.several_addresses) {
        IpNet::from(detection.addr)
    } else {
        source
    }
}

/// Why an unblock was not needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} was not blocked")]
pub struct NotBlocked(pub IpNet);

/// The [`Why::kind`] of a block made by one probe of a tripwire port (its one port in
/// [`Why::ports`]).
pub const TRIPWIRE: &str = "tripwire";

/// Why a source was blocked: what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    /// The scan kinds (`syn+fin`), `manual` for a block made by hand, `sweep`, or [`TRIPWIRE`].
    pub kind: String,
    /// The trap ports of the detection.
    pub ports: Vec<(Proto, u16)>,
    /// The host of the fleet that detected it, for a block taken from the fleet.
    pub origin: Option<HostName>,
    /// The tool its probes looked like ([`Detection::signature`]), as `sentryctl why` shows
    /// it: `nmap OS detection (SEQ1, SEQ2, SEQ3)`.
    pub signature: Option<String>,
}

impl Why {
    /// A block made by hand (`sentryctl block`).
    pub fn manual() -> Self {
        Why {
            kind: "manual".into(),
            ports: Vec::new(),
            origin: None,
            signature: None,
        }
    }

    /// The ports as administrators write them: `22/tcp`.
    pub fn port_labels(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|(proto, port)| proto.label(*port))
            .collect()
    }

    /// What `d` is blocked for: its scan kinds and trap ports, or, for a tripwire, the one
    /// port it reached ([`TRIPWIRE`]).
    fn of(d: &Detection) -> Self {
        let signature = d.signature.as_ref().map(ToString::to_string);
        match d.tripwire {
            Some(port) => Why {
                kind: TRIPWIRE.into(),
                ports: vec![port],
                origin: None,
                signature,
            },
            None => Why {
                kind: d.kinds.to_string(),
                ports: d.ports.clone(),
                origin: None,
                signature,
            },
        }
    }
}

/// An active block as the responder knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveBlock {
    /// The blocked address or network.
    pub net: IpNet,
    /// When it was made.
    pub since: Timestamp,
    /// When it ends.
    pub until: Timestamp,
    /// Which offence of the source it was (0 for a block by hand or of unknown origin).
    pub offence: u32,
    /// What the source did.
    pub why: Why,
}

#[derive(Clone, Debug)]
struct Active {
    since: Timestamp,
    until: Timestamp,
    offence: u32,
    why: Why,
}

#[derive(Clone, Copy, Debug)]
struct Offender {
    count: u32,
    last: Timestamp,
}

/// How the evidence for a block came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// A detection here.
    Detected,
    /// A sweep across the fleet, counted here.
    Sweep,
    /// A detection here made by one probe of a tripwire port: no `min-ports`, weak evidence
    /// (one forged packet makes it).
    Tripwire,
    /// A detection here whose probes are a decisive set of nmap's OS probes
    /// ([`crate::detect::fingerprint::decisive`]; another tool's name only names): no
    /// `min-ports` (nmap's OS probes go to the open port); as strong as its trap ports, so weak
    /// with fewer than twice `min-ports` (three forged packets make one with none).
    Signature,
    /// A version scan ([`crate::detect::version`]): named, so no `min-ports` (its ports are
    /// open), and strong evidence however few ports, since each of its probes came on a
    /// connection whose handshake the source completed (it acknowledged the host's ISN): an
    /// off-path forger makes none, so a flood of forgeable weak evidence cannot spend its
    /// budget (issue 28, red team).
    Handshake,
    /// By hand, for this long.
    ByHand(Duration),
}

impl How {
    /// The duration asked, for a block by hand.
    fn manual(self) -> Option<Duration> {
        match self {
            How::ByHand(ttl) => Some(ttl),
            How::Detected | How::Sweep | How::Tripwire | How::Signature | How::Handshake => None,
        }
    }
}

/// Decides what to do with detections; remembers active blocks and past offenders.
#[derive(Debug)]
pub struct Responder {
    config: RespondConfig,
    /// Active blocks, ordered by network so that covering and covered blocks are found by range.
    blocked: BTreeMap<IpNet, Active>,
    /// Prefix lengths in use in `blocked`, per family, to find covering blocks quickly.
    lengths4: BTreeMap<u8, usize>,
    lengths6: BTreeMap<u8, usize>,
    /// Past offenders, least recently offending first.
    offenders: LinkedHashMap<IpNet, Offender>,
    /// Networks unblocked by hand with a grace period, and when it ends.
    grace: BTreeMap<IpNet, Timestamp>,
    /// The rate budget, one per address family: an IPv6 flood, whose sources cost a forger
    /// nothing, cannot spend the budget of IPv4 scanners, nor the other way round.
    rate4: RateBucket,
    rate6: RateBucket,
    /// New automatic blocks per IPv4 /24 and IPv6 /48, least recently spending first.
    prefixes: LinkedHashMap<IpNet, Spent>,
    /// Active blocks per IPv4 /24 and IPv6 /48 (of their first address).
    held: std::collections::HashMap<IpNet, usize>,
    /// Detections refused by the rate budget, by scanning address, first refused first.
    waiting: LinkedHashMap<IpAddr, Waiting>,
    /// Waiting detections per IPv4 /24 and IPv6 /48.
    waiting_in: std::collections::HashMap<IpNet, usize>,
    /// No look at the waiting detections before this.
    settle_after: Timestamp,
    /// Whole tokens of the rate budget at the last look that found none to settle (a token
    /// back since is offered to the queue, pause or not).
    settle_tokens: u64,
    /// Waiting detections given up (waited [`WAIT_FOR`]) or pushed out by a prefix that spent
    /// less.
    gave_up: u64,
    /// What each fleet origin's blocks in `blocked` hold, kept as blocks are added, replaced
    /// and removed (so that no message costs a scan of every block).
    by_origin: std::collections::HashMap<HostName, Held>,
    next_sweep: Timestamp,
}

/// What one IPv4 /24 or IPv6 /48 spent of the rate budget.
#[derive(Clone, Copy, Debug, Default)]
struct Spent {
    /// New blocks since `minute_since`, within [`PREFIX_WINDOW`].
    minute_since: Timestamp,
    minute: u32,
    /// New blocks on strong evidence since `second_since`, within [`SHARE_WINDOW`].
    second_since: Timestamp,
    second: u32,
}

impl Spent {
    fn in_minute(&self, now: Timestamp) -> u32 {
        if now.saturating_since(self.minute_since) < PREFIX_WINDOW {
            self.minute
        } else {
            0
        }
    }

    fn in_second(&self, now: Timestamp) -> u32 {
        if now.saturating_since(self.second_since) < SHARE_WINDOW {
            self.second
        } else {
            0
        }
    }

    fn spend(&mut self, now: Timestamp, evidence: Evidence) {
        if self.in_minute(now) == 0 {
            self.minute_since = now;
            self.minute = 0;
        }
        self.minute += 1;
        if evidence == Evidence::Strong {
            if self.in_second(now) == 0 {
                self.second_since = now;
                self.second = 0;
            }
            self.second += 1;
        }
    }
}

/// What one fleet origin's active blocks hold here: how many, and their address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Active blocks.
    pub blocks: usize,
    /// IPv4 addresses they cover.
    pub v4: u64,
    /// IPv6 /64s they cover.
    pub v6: u64,
}

impl Held {
    /// The address space of `net`: IPv4 addresses, or IPv6 /64s ([`crate::fleet::gate::space`]).
    pub fn space(net: &IpNet) -> u64 {
        crate::fleet::gate::space(net)
    }

    /// What is held in `net`'s family.
    pub fn of_family(&self, net: &IpNet) -> u64 {
        match net {
            IpNet::V4(_) => self.v4,
            IpNet::V6(_) => self.v6,
        }
    }

    fn count(&mut self, net: &IpNet, more: bool) {
        let space = Held::space(net);
        let field = match net {
            IpNet::V4(_) => &mut self.v4,
            IpNet::V6(_) => &mut self.v6,
        };
        if more {
            self.blocks += 1;
            *field = field.saturating_add(space);
        } else {
            self.blocks = self.blocks.saturating_sub(1);
            *field = field.saturating_sub(space);
        }
    }
}

/// A detection refused by the rate budget, waiting for it.
#[derive(Clone, Debug)]
struct Waiting {
    /// The latest detection of the address.
    detection: Detection,
    /// Its first refusal.
    since: Timestamp,
    /// What its block would cover, and the prefix whose budget that spends.
    net: IpNet,
    prefix: IpNet,
    evidence: Evidence,
}

/// A detection that waited for the budget and may have it now ([`Responder::next_due`]).
#[derive(Clone, Debug)]
pub struct Due {
    /// The source's latest detection.
    pub detection: Detection,
    /// When it was first refused.
    pub since: Timestamp,
}

/// A token bucket of new blocks: `rate` a second, with a burst of as many. A quarter of the
/// burst is kept for strong evidence, so a flood of cheap detections cannot starve a real
/// scanner.
#[derive(Clone, Copy, Debug)]
struct RateBucket {
    /// Tokens, in thousandths.
    tokens_milli: u64,
    topped_up: Timestamp,
}

impl RateBucket {
    fn full(rate: u32) -> Self {
        RateBucket {
            tokens_milli: u64::from(rate) * 1000,
            topped_up: Timestamp::ZERO,
        }
    }

    /// Adds the tokens that came back up to `now`.
    fn top_up(&mut self, rate: u32, now: Timestamp) {
        let rate = u64::from(rate);
        let full = rate * 1000;
        let elapsed_us =
            u64::try_from(now.saturating_since(self.topped_up).as_micros()).unwrap_or(u64::MAX);
        // Microseconds × tokens a second = millitokens × 1000: whole millitokens only, the
        // rest of the time is counted next time.
        let gained = elapsed_us.saturating_mul(rate) / 1000;
        if gained > 0 || self.tokens_milli >= full {
            self.tokens_milli = self.tokens_milli.saturating_add(gained).min(full);
            self.topped_up = self.topped_up.max(now);
        }
    }

    /// Whether a token is left above the reserve (`strong`: down to none), as last topped up.
    fn has(&self, rate: u32, evidence: Evidence) -> bool {
        let floor = match evidence {
            Evidence::Strong => 0,
            Evidence::Weak => u64::from(rate) * 1000 / 4,
        };
        self.tokens_milli >= floor + 1000
    }

    /// Takes a token at `now`, if one is left above the reserve (`strong`: down to none).
    fn take(&mut self, rate: u32, now: Timestamp, evidence: Evidence) -> bool {
        self.top_up(rate, now);
        let has = self.has(rate, evidence);
        if has {
            self.tokens_milli -= 1000;
        }
        has
    }
}

impl Responder {
    /// A responder with nothing blocked and a full budget.
    pub fn new(config: &RespondConfig) -> Self {
        Responder {
            rate4: RateBucket::full(config.max_new_blocks_per_second),
            rate6: RateBucket::full(config.max_new_blocks_per_second),
            prefixes: LinkedHashMap::new(),
            held: std::collections::HashMap::new(),
            by_origin: std::collections::HashMap::new(),
            waiting: LinkedHashMap::new(),
            waiting_in: std::collections::HashMap::new(),
            settle_after: Timestamp::ZERO,
            settle_tokens: 0,
            gave_up: 0,
            config: config.clone(),
            blocked: BTreeMap::new(),
            lengths4: BTreeMap::new(),
            lengths6: BTreeMap::new(),
            offenders: LinkedHashMap::new(),
            grace: BTreeMap::new(),
            next_sweep: Timestamp::ZERO,
        }
    }

    /// Decides about `detection` at `now`.
    pub fn on_detection(
        &mut self,
        detection: &Detection,
        ignore: &NeverBlockList,
        now: Timestamp,
    ) -> Decision {
        self.sweep(now);
        if let Some(entry) = ignore.why(detection.addr).next() {
            self.stop_waiting(detection.addr);
            return Decision::NeverBlock {
                addr: detection.addr,
                reason: entry.reason.to_string(),
            };
        }
        if let Some(until) = self
            .grace
            .iter()
            .find(|(net, until)| net.contains(&detection.addr) && **until > now)
            .map(|(_, until)| *until)
        {
            self.stop_waiting(detection.addr);
            return Decision::InGrace {
                addr: detection.addr,
                remaining: until.saturating_since(now),
            };
        }
        let how = match (detection.tripwire, &detection.signature) {
            (Some(_), _) => How::Tripwire,
            (None, Some(_)) if detection.kinds.contains(crate::wire::ProbeKind::Version) => {
                How::Handshake
            }
            // Only a decisive set of nmap's OS probes stands on its own: a name that header
            // fields alone give (nmap's port-scan shape, masscan's, zmap's) names the tool
            // and spares nothing, since a forger picks those fields at will.
            (None, Some(s)) if crate::detect::fingerprint::decisive(s) => How::Signature,
            (None, _) => How::Detected,
        };
        let decision = self.block_how(target(detection, ignore), now, Why::of(detection), how);
        match decision {
            Decision::OverBudget { net, budget, .. } if budget.is_rate() => {
                let evidence = match how {
                    How::Tripwire => Evidence::Weak,
                    How::Handshake => Evidence::Strong,
                    _ => self.evidence(detection.ports.len()),
                };
                let waits = self.wait(detection, net, evidence, now);
                Decision::OverBudget { net, budget, waits }
            }
            decision => {
                self.stop_waiting(detection.addr);
                decision
            }
        }
    }

    /// Decides about blocking `net` by hand (`sentryctl block`), for `ttl` or the configured
    /// duration: the size budget applies (the kernel's sets are no bigger), the rate budget and
    /// escalation do not. The never-block list is the caller's to check.
    pub fn block_by_hand(&mut self, net: IpNet, ttl: Option<Duration>, now: Timestamp) -> Decision {
        self.sweep(now);
        self.grace.remove(&net);
        self.block(
            net,
            now,
            Why::manual(),
            Some(ttl.unwrap_or(self.config.block_for)),
        )
    }

    /// Decides about blocking `net` for a sweep the fleet saw (this host owns its prefix): as
    /// a detection, but for `min-ports` (a sweep probes a port or two on each of many hosts;
    /// `[fleet.sweep]` has its own thresholds). The never-block list and the protected peers
    /// are the caller's to check.
    pub fn block_sweep(&mut self, net: IpNet, why: Why, now: Timestamp) -> Decision {
        self.sweep(now);
        if let Some(grace) = self.in_grace(net, now) {
            return grace;
        }
        self.block_how(net, now, why, How::Sweep)
    }

    /// The time left of a grace period that holds `net` (or part of it) off at `now`, if one
    /// does (an unblock by hand with `--grace`).
    pub fn grace_left(&self, net: IpNet, now: Timestamp) -> Option<Duration> {
        match self.in_grace(net, now) {
            Some(Decision::InGrace { remaining, .. }) => Some(remaining),
            _ => None,
        }
    }

    /// The grace period that holds `net` (or part of it) off at `now`, as the decision.
    fn in_grace(&self, net: IpNet, now: Timestamp) -> Option<Decision> {
        self.grace
            .iter()
            .find(|(g, until)| {
                (g.contains(&net.addr()) || net.contains(&g.addr())) && **until > now
            })
            .map(|(_, until)| Decision::InGrace {
                addr: net.addr(),
                remaining: until.saturating_since(now),
            })
    }

    /// `manual`: a block by hand with this duration (no rate budget, no offence counted).
    fn block(
        &mut self,
        net: IpNet,
        now: Timestamp,
        why: Why,
        manual: Option<Duration>,
    ) -> Decision {
        let how = match manual {
            Some(ttl) => How::ByHand(ttl),
            None => How::Detected,
        };
        self.block_how(net, now, why, how)
    }

    fn block_how(&mut self, net: IpNet, now: Timestamp, why: Why, how: How) -> Decision {
        if let Some(held) = self.covering(net, now) {
            return self.block_held(net, held, now, why, how);
        }
        if how == How::Detected && why.ports.len() < self.config.min_ports {
            return Decision::TooFewPorts {
                addr: net.addr(),
                ports: why.ports.len(),
                min: self.config.min_ports,
            };
        }
        self.block_new(net, now, why, how)
    }

    /// A block of `net` asked while `held` (a block covering it, perhaps `net` itself) is on:
    /// adopted from the fleet, refreshed, or already blocked.
    fn block_held(
        &mut self,
        net: IpNet,
        (covering, active): (IpNet, Active),
        now: Timestamp,
        why: Why,
        how: How,
    ) -> Decision {
        let manual = how.manual();
        // A block another host of the fleet made becomes this host's own when this host
        // decides to block the same network itself (a detection that would block it, a sweep
        // it counted, a block by hand): otherwise that host's unblock would lift what this
        // host decided. A detection or a sweep keeps the longer; by hand, the time asked.
        let adopt = covering == net
            && active.why.origin.is_some()
            && !(how == How::Detected && why.ports.len() < self.config.min_ports);
        if adopt {
            let ttl = manual.unwrap_or_else(|| self.duration_for(net, now));
            let until = match manual {
                Some(_) => now.saturating_add(ttl),
                None => now.saturating_add(ttl).max(active.until),
            };
            self.insert(
                net,
                Active {
                    since: active.since,
                    until,
                    offence: active.offence,
                    why,
                },
            );
            return Decision::Refresh {
                net,
                ttl: until.saturating_since(now),
            };
        }
        if (self.config.refresh || manual.is_some()) && covering == net {
            let ttl = manual.unwrap_or_else(|| self.duration_for(net, now));
            let offence = active.offence;
            self.insert(
                net,
                Active {
                    since: active.since,
                    until: now.saturating_add(ttl),
                    offence,
                    why: active.why,
                },
            );
            return Decision::Refresh { net, ttl };
        }
        Decision::AlreadyBlocked {
            net: covering,
            remaining: active.until.saturating_since(now),
        }
    }

    /// A new block of `net`, replacing the narrower blocks inside it, if the budget admits it.
    fn block_new(&mut self, net: IpNet, now: Timestamp, why: Why, how: How) -> Decision {
        let replaces = self.covered(net);
        let evidence = match how {
            How::ByHand(_) => None,
            How::Sweep | How::Tripwire => Some(Evidence::Weak),
            How::Handshake => Some(Evidence::Strong),
            // A named detection is spared min-ports, not judged stronger: its trap ports say
            // how strong it is (none, for nmap's OS probes: weak).
            How::Detected | How::Signature => Some(self.evidence(why.ports.len())),
        };
        if let Err(budget) = self.admit_replacing(net, evidence, replaces.len(), now) {
            return Decision::OverBudget {
                net,
                budget,
                waits: false,
            };
        }
        let (offence, ttl) = match how.manual() {
            Some(ttl) => (0, ttl),
            None => (self.offend(net, now), self.duration_for(net, now)),
        };
        for inner in &replaces {
            self.remove(inner);
        }
        self.insert(
            net,
            Active {
                since: now,
                until: now.saturating_add(ttl),
                offence,
                why,
            },
        );
        Decision::Block {
            net,
            ttl,
            offence,
            replaces,
        }
    }

    /// How strong `ports` distinct trap ports are as evidence: strong from twice `min-ports`.
    pub fn evidence(&self, ports: usize) -> Evidence {
        if ports >= 2 * self.config.min_ports {
            Evidence::Strong
        } else {
            Evidence::Weak
        }
    }

    /// Judges a new automatic block of `net` on `evidence` against the budget at `now` and, if
    /// the budget allows it, spends it (a token of the family's rate budget, counted against
    /// `net`'s prefix): the size budget, then the rate budget, both partitioned by prefix.
    /// For blocks decided elsewhere (a sweep from the fleet) that must meet the budget of a
    /// detection made here; the caller then records the block ([`Responder::block_from_fleet`]).
    ///
    /// # Errors
    ///
    /// The budget that refuses it.
    pub fn admit(&mut self, net: IpNet, evidence: Evidence, now: Timestamp) -> Result<(), Budget> {
        self.sweep(now);
        let replaces = self.covered(net).len();
        self.admit_replacing(net, Some(evidence), replaces, now)
    }

    /// [`Responder::admit`] for a block that lifts `replaces` blocks it covers; `None`: a
    /// block by hand, which meets the size budget of the family only.
    fn admit_replacing(
        &mut self,
        net: IpNet,
        evidence: Option<Evidence>,
        replaces: usize,
        now: Timestamp,
    ) -> Result<(), Budget> {
        self.size_refusal(net, evidence, replaces)
            .map_or(Ok(()), Err)?;
        let Some(evidence) = evidence else {
            return Ok(());
        };
        let prefix = prefix_of(net.addr());
        let rate = self.config.max_new_blocks_per_second;
        self.bucket(net).top_up(rate, now);
        self.rate_refusal(net, prefix, evidence, now)
            .map_or(Ok(()), Err)?;
        if !self.bucket(net).take(rate, now, evidence) {
            return Err(match evidence {
                Evidence::Strong => Budget::Rate(rate),
                Evidence::Weak => Budget::Reserve(rate),
            });
        }
        let mut spent = self.prefixes.remove(&prefix).unwrap_or_default();
        if self.prefixes.len() >= MAX_PREFIXES {
            self.prefixes.pop_front();
        }
        spent.spend(now, evidence);
        self.prefixes.insert(prefix, spent);
        Ok(())
    }

    /// The size budget, per family: `max-blocks` active blocks; from detections and sweeps at
    /// most [`prefix_hold`] in one prefix, weak evidence never the last quarter, strong evidence
    /// from a prefix that holds a block never the last eighth. `evidence`: none by hand.
    fn size_refusal(
        &self,
        net: IpNet,
        evidence: Option<Evidence>,
        replaces: usize,
    ) -> Option<Budget> {
        let max = self.config.max_blocks;
        let active = self.family_count(net).saturating_sub(replaces);
        if active >= max {
            return Some(Budget::Size(max));
        }
        let evidence = evidence?;
        let prefix = prefix_of(net.addr());
        let held = self.held.get(&prefix).copied().unwrap_or(0);
        let hold = prefix_hold(max);
        if held >= hold {
            return Some(Budget::Held(prefix, hold));
        }
        let kept = match evidence {
            Evidence::Weak => max / 4,
            Evidence::Strong if held > 0 => max / 8,
            Evidence::Strong => 0,
        };
        (active + kept >= max).then_some(Budget::Room(max))
    }

    /// The rate budget's rules by prefix, and whether the family's bucket has a token (as
    /// last topped up) for `evidence`; none of them spent.
    fn rate_refusal(
        &self,
        net: IpNet,
        prefix: IpNet,
        evidence: Evidence,
        now: Timestamp,
    ) -> Option<Budget> {
        let spent = self.prefixes.get(&prefix).copied().unwrap_or_default();
        let rate = self.config.max_new_blocks_per_second;
        match evidence {
            Evidence::Weak if spent.in_minute(now) >= PREFIX_CAP => Some(Budget::Prefix(prefix)),
            Evidence::Strong if spent.in_second(now) >= strong_share(rate) => {
                Some(Budget::Share(prefix, strong_share(rate)))
            }
            _ => {
                let bucket = match net {
                    IpNet::V4(_) => &self.rate4,
                    IpNet::V6(_) => &self.rate6,
                };
                (!bucket.has(rate, evidence)).then_some(match evidence {
                    Evidence::Strong => Budget::Rate(rate),
                    Evidence::Weak => Budget::Reserve(rate),
                })
            }
        }
    }

    fn bucket(&mut self, net: IpNet) -> &mut RateBucket {
        match net {
            IpNet::V4(_) => &mut self.rate4,
            IpNet::V6(_) => &mut self.rate6,
        }
    }

    /// Active blocks of `net`'s family.
    fn family_count(&self, net: IpNet) -> usize {
        match net {
            IpNet::V4(_) => self.lengths4.values().sum(),
            IpNet::V6(_) => self.lengths6.values().sum(),
        }
    }

    /// Puts `detection`, refused by the rate budget, in the queue of waiting detections, or
    /// updates its entry (the first refusal stays). When the queue is full, the entry of the
    /// prefix that spent most gives way to one that spent less. Whether it waits. `net`: what
    /// its block would cover, whose prefix's budget it spends (wider than the address's /24
    /// when `ipv4-prefix` is below 24).
    fn wait(
        &mut self,
        detection: &Detection,
        net: IpNet,
        evidence: Evidence,
        now: Timestamp,
    ) -> bool {
        let prefix = prefix_of(net.addr());
        // A block of another prefix now (the source was aggregated since): counted there, from
        // the first refusal still.
        let mut since = now;
        if let Some(w) = self.waiting.get(&detection.addr)
            && w.prefix != prefix
        {
            since = w.since;
            self.stop_waiting(detection.addr);
        }
        if let Some(w) = self.waiting.get_mut(&detection.addr) {
            w.detection = detection.clone();
            w.net = net;
            w.evidence = evidence;
            return true;
        }
        if self.waiting_in.get(&prefix).copied().unwrap_or(0) >= WAITING_PER_PREFIX {
            return false;
        }
        if self.waiting.len() >= MAX_WAITING {
            let mine = self.spent(prefix, now);
            let most = self
                .waiting
                .iter()
                .rev()
                .map(|(addr, w)| (self.spent(w.prefix, now), *addr))
                .max_by_key(|(spent, _)| *spent)
                .filter(|(spent, _)| *spent > mine);
            let Some((_, out)) = most else {
                return false;
            };
            self.stop_waiting(out);
            self.gave_up += 1;
        }
        *self.waiting_in.entry(prefix).or_insert(0) += 1;
        self.waiting.insert(
            detection.addr,
            Waiting {
                detection: detection.clone(),
                since,
                net,
                prefix,
                evidence,
            },
        );
        true
    }

    /// New blocks `prefix` made within [`PREFIX_WINDOW`].
    fn spent(&self, prefix: IpNet, now: Timestamp) -> u32 {
        self.prefixes.get(&prefix).map_or(0, |s| s.in_minute(now))
    }

    /// Takes `addr` out of the queue of waiting detections (it was settled), if it is there.
    pub fn stop_waiting(&mut self, addr: IpAddr) {
        if let Some(w) = self.waiting.remove(&addr)
            && let Some(n) = self.waiting_in.get_mut(&w.prefix)
        {
            *n -= 1;
            if *n == 0 {
                self.waiting_in.remove(&w.prefix);
            }
        }
    }

    /// The waiting detection to settle now, if the budget allows one: of those the rate
    /// budget would take now, the one whose prefix made fewest new blocks within
    /// [`PREFIX_WINDOW`], then the one refused first. Those that waited [`WAIT_FOR`] are given
    /// up first. It stays in the queue until the caller decides it again (a block or another
    /// verdict takes it out: [`Responder::stop_waiting`]; a refusal keeps its first refusal).
    pub fn next_due(&mut self, now: Timestamp) -> Option<Due> {
        if self.waiting.is_empty() {
            return None;
        }
        let rate = self.config.max_new_blocks_per_second;
        self.rate4.top_up(rate, now);
        self.rate6.top_up(rate, now);
        // Within the pause, a look only for a token that came back since the last one: a
        // fresh detection judged next must not take it before the queue had it.
        let tokens = self.whole_tokens();
        self.settle_tokens = self.settle_tokens.min(tokens);
        if now < self.settle_after && tokens <= self.settle_tokens {
            return None;
        }
        let expired: Vec<IpAddr> = self
            .waiting
            .iter()
            .filter(|(_, w)| now.saturating_since(w.since) >= WAIT_FOR)
            .map(|(addr, _)| *addr)
            .collect();
        for addr in expired {
            self.stop_waiting(addr);
            self.gave_up += 1;
        }
        let best = self
            .waiting
            .values()
            .filter(|w| {
                self.rate_refusal(w.net, w.prefix, w.evidence, now)
                    .is_none()
            })
            .min_by_key(|w| (self.spent(w.prefix, now), w.since));
        match best {
            Some(w) => Some(Due {
                detection: w.detection.clone(),
                since: w.since,
            }),
            None => {
                self.settle_after = now.saturating_add(SETTLE_PAUSE);
                self.settle_tokens = tokens;
                None
            }
        }
    }

    /// Whole tokens left in both families' rate buckets, as last topped up.
    fn whole_tokens(&self) -> u64 {
        self.rate4.tokens_milli / 1000 + self.rate6.tokens_milli / 1000
    }

    /// When the next waiting detection may be settled, if one waits: when the next token of
    /// the rate budget comes back, and no sooner than the next look.
    pub fn next_settle(&self, now: Timestamp) -> Option<Timestamp> {
        if self.waiting.is_empty() {
            return None;
        }
        let token = Duration::from_micros(
            1_000_000 / u64::from(self.config.max_new_blocks_per_second.max(1)),
        );
        Some(now.saturating_add(token).max(self.settle_after))
    }

    /// How many detections wait for the budget.
    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    /// When `addr`'s refused detection was first refused, if it waits.
    pub fn waiting_since(&self, addr: IpAddr) -> Option<Timestamp> {
        self.waiting.get(&addr).map(|w| w.since)
    }

    /// Waiting detections given up so far: waited [`WAIT_FOR`], or pushed out by one from a
    /// prefix that spent less.
    pub fn gave_up(&self) -> u64 {
        self.gave_up
    }

    /// Decides about a block another host of the fleet made, of `net` for `ttl`, already past
    /// the gate's rules and this host's never-block list: a grace period granted here holds it
    /// off, the size budget applies (and for a sweep, which is weak evidence here, the rate
    /// budget's reserve and [`PREFIX_CAP`] as for a weak local detection; other blocks meet
    /// the gate's per-origin cap instead), and no offence is counted. It keeps the longer: a
    /// block already in force here is lengthened to the fleet's end, never shortened; a block
    /// by hand is left as it is; and a covering block that would lift (replace) a block here
    /// ending later, one by hand, or one that is not its origin's, is not made
    /// ([`Responder::kept_from_fleet`] says which).
    /// `detected`: when the origin detected it (the block's start).
    pub fn block_from_fleet(
        &mut self,
        net: IpNet,
        ttl: Duration,
        why: Why,
        detected: Timestamp,
        now: Timestamp,
    ) -> Decision {
        self.sweep(now);
        if let Some(grace) = self.in_grace(net, now) {
            return grace;
        }
        let until = now.saturating_add(ttl);
        if let Some((covering, active)) = self.covering(net, now) {
            if covering == net && until > active.until && active.why.kind != "manual" {
                self.insert(net, Active { until, ..active });
                return Decision::Refresh { net, ttl };
            }
            return Decision::AlreadyBlocked {
                net: covering,
                remaining: active.until.saturating_since(now),
            };
        }
        let kept = match &why.origin {
            Some(origin) => self.kept_from_fleet(net, origin, until, now),
            None => None,
        };
        if let Some(kept) = kept {
            return Decision::AlreadyBlocked {
                net: kept.net,
                remaining: kept.until.saturating_since(now),
            };
        }
        let replaces = self.covered(net);
        // A sweep is weak evidence here as on its owner; another block meets the size budget
        // of its family (and the gate's per-origin caps before this).
        let evidence = matches!(why.kind.as_str(), "sweep" | TRIPWIRE).then_some(Evidence::Weak);
        if let Err(budget) = self.admit_replacing(net, evidence, replaces.len(), now) {
            return Decision::OverBudget {
                net,
                budget,
                waits: false,
            };
        }
        for inner in &replaces {
            self.remove(inner);
        }
        self.insert(
            net,
            Active {
                since: detected.min(now),
                until,
                offence: 0,
                why,
            },
        );
        Decision::Block {
            net,
            ttl,
            offence: 0,
            replaces,
        }
    }

    /// The block here, inside `net`, that a fleet block of `net` from `origin` ending at
    /// `until` must not replace, if there is one: one by hand, one that ends later, or one
    /// that is not `origin`'s (this host's own, or a third host's: once replaced, `origin`'s
    /// unblock of `net` would lift it) (the first found).
    pub fn kept_from_fleet(
        &self,
        net: IpNet,
        origin: &HostName,
        until: Timestamp,
        now: Timestamp,
    ) -> Option<ActiveBlock> {
        self.covered(net)
            .into_iter()
            .filter_map(|inner| self.blocked.get(&inner).map(|a| (inner, a)))
            .find(|(_, a)| {
                a.until > now
                    && (a.until > until
                        || a.why.kind == "manual"
                        || a.why.origin.as_ref() != Some(origin))
            })
            .map(|(inner, a)| ActiveBlock {
                net: inner,
                since: a.since,
                until: a.until,
                offence: a.offence,
                why: a.why.clone(),
            })
    }

    /// What the active blocks that came from the fleet's host `origin` hold here (a block
    /// that ended is no longer counted once forgotten, within a second of its end).
    pub fn held_by(&mut self, origin: &HostName, now: Timestamp) -> Held {
        self.sweep(now);
        self.by_origin.get(origin).copied().unwrap_or_default()
    }

    /// Lifts the block of `net` (exactly that address or network). With a `grace` period, the
    /// addresses of `net` are not blocked again until it ends, so that a stray packet right
    /// after the unblock does not block them again.
    ///
    /// # Errors
    ///
    /// [`NotBlocked`] when no active block is exactly `net` (a grace period is still granted).
    pub fn unblock(
        &mut self,
        net: IpNet,
        grace: Option<Duration>,
        now: Timestamp,
    ) -> Result<Vec<Action>, NotBlocked> {
        self.sweep(now);
        if let Some(grace) = grace.filter(|g| !g.is_zero()) {
            if self.grace.len() >= MAX_GRACE {
                self.grace.pop_first();
            }
            self.grace.insert(net, now.saturating_add(grace));
        }
        if self.blocked.get(&net).is_some_and(|a| a.until > now) {
            self.remove(&net);
            Ok(vec![Action::Unblock { net }])
        } else {
            Err(NotBlocked(net))
        }
    }

    /// Records a block that exists already (from the state file, or read back from the kernel
    /// at start). Past its end it is ignored.
    pub fn restore(&mut self, block: ActiveBlock, now: Timestamp) {
        if block.until > now {
            self.insert(
                block.net,
                Active {
                    since: block.since,
                    until: block.until,
                    offence: block.offence,
                    why: block.why,
                },
            );
        }
    }

    /// Forgets the block of exactly `net` without lifting anything: the kernel refused it, so
    /// it is not in force and must not be put back later. Whether there was one.
    pub fn forget(&mut self, net: IpNet) -> bool {
        let known = self.blocked.contains_key(&net);
        self.remove(&net);
        known
    }

    /// Lifts every active block that would block an address of the never-block list (restored
    /// from the state file or found in the kernel before the list had it, or made before the
    /// list grew): each with the reason of the first entry it overlaps.
    pub fn lift_never_block(&mut self, ignore: &NeverBlockList) -> Vec<(IpNet, String)> {
        let overlapping: Vec<(IpNet, String)> = self
            .blocked
            .keys()
            .filter(|net| ignore.overlaps(**net))
            .map(|net| {
                let reason = ignore
                    .entries()
                    .iter()
                    .find(|e| net.contains(&e.net.addr()) || e.net.contains(&net.addr()))
                    .map_or_else(String::new, |e| e.reason.to_string());
                (*net, reason)
            })
            .collect();
        for (net, _) in &overlapping {
            self.remove(net);
        }
        overlapping
    }

    /// Records a past offender (from the state file); forgotten ones are ignored.
    pub fn restore_offender(&mut self, net: IpNet, count: u32, last: Timestamp, now: Timestamp) {
        if now.saturating_since(last) <= self.config.remember_offences && count > 0 {
            let cap = self.config.max_blocks.saturating_mul(2).max(1);
            if self.offenders.len() < cap {
                self.offenders.insert(net, Offender { count, last });
            }
        }
    }

    /// Active blocks, in network order.
    pub fn active(&self, now: Timestamp) -> impl Iterator<Item = ActiveBlock> + '_ {
        self.blocked
            .iter()
            .filter(move |(_, a)| a.until > now)
            .map(|(net, a)| ActiveBlock {
                net: *net,
                since: a.since,
                until: a.until,
                offence: a.offence,
                why: a.why.clone(),
            })
    }

    /// Every active block as the action that puts it in the kernel with the time it has left
    /// (to rebuild a lost table, or fill a new firewall).
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = Action> + '_ {
        self.active(now).map(move |b| Action::Block {
            net: b.net,
            ttl: b.until.saturating_since(now),
        })
    }

    /// The active block that is `net` or covers it.
    pub fn block_of(&self, net: IpNet, now: Timestamp) -> Option<ActiveBlock> {
        self.covering(net, now).map(|(net, a)| ActiveBlock {
            net,
            since: a.since,
            until: a.until,
            offence: a.offence,
            why: a.why,
        })
    }

    /// Remembered offenders: network, offences, last offence.
    pub fn offenders(&self) -> impl Iterator<Item = (IpNet, u32, Timestamp)> + '_ {
        self.offenders
            .iter()
            .map(|(net, o)| (*net, o.count, o.last))
    }

    /// The settings in use.
    pub fn config(&self) -> &RespondConfig {
        &self.config
    }

    /// Takes new settings (on reload), keeping blocks, offenders and grace periods.
    pub fn reconfigure(&mut self, config: &RespondConfig) {
        self.config = config.clone();
    }

    /// How many blocks are active (as of the last call).
    pub fn active_count(&self) -> usize {
        self.blocked.len()
    }

    /// How many offences of `net` are remembered.
    pub fn offences(&self, net: IpNet) -> u32 {
        self.offenders.get(&net).map_or(0, |o| o.count)
    }

    /// `block-for × repeat-factor^(offences − 1)`, capped at `max-block-for`.
    fn duration_for(&self, net: IpNet, now: Timestamp) -> Duration {
        let count = self
            .offenders
            .get(&net)
            .filter(|o| now.saturating_since(o.last) <= self.config.remember_offences)
            .map_or(1, |o| o.count.max(1));
        let mut ttl = self.config.block_for;
        for _ in 1..count {
            ttl = ttl.saturating_mul(self.config.repeat_factor);
            if ttl >= self.config.max_block_for {
                break;
            }
        }
        ttl.min(self.config.max_block_for)
    }

    /// Counts an offence of `net`; returns which one it is.
    fn offend(&mut self, net: IpNet, now: Timestamp) -> u32 {
        let memory = self.config.remember_offences;
        let count = match self.offenders.remove(&net) {
            Some(o) if now.saturating_since(o.last) <= memory => o.count.saturating_add(1),
            _ => 1,
        };
        let cap = self.config.max_blocks.saturating_mul(2).max(1);
        while self.offenders.len() >= cap {
            self.offenders.pop_front();
        }
        self.offenders.insert(net, Offender { count, last: now });
        count
    }

    /// The active block that is `net` or covers it.
    fn covering(&self, net: IpNet, now: Timestamp) -> Option<(IpNet, Active)> {
        let lengths = match net {
            IpNet::V4(_) => &self.lengths4,
            IpNet::V6(_) => &self.lengths6,
        };
        lengths
            .keys()
            .filter(|&&len| len <= net.prefix_len())
            .find_map(|&len| {
                let candidate = IpNet::new(net.addr(), len).ok()?.trunc();
                self.blocked
                    .get(&candidate)
                    .filter(|a| a.until > now)
                    .map(|a| (candidate, a.clone()))
            })
    }

    /// Active blocks strictly inside `net`.
    fn covered(&self, net: IpNet) -> Vec<IpNet> {
        let net = net.trunc();
        let (Ok(lo), Ok(hi)) = (
            IpNet::new(net.network(), 0),
            IpNet::new(net.broadcast(), net.max_prefix_len()),
        ) else {
            return Vec::new();
        };
        self.blocked
            .range(lo..=hi)
            .map(|(n, _)| *n)
            .filter(|n| *n != net && net.contains(n))
            .collect()
    }

    fn insert(&mut self, net: IpNet, active: Active) {
        self.count_held(&net, active.why.origin.as_ref(), true);
        match self.blocked.insert(net, active) {
            None => {
                *self.lengths_mut(net).entry(net.prefix_len()).or_insert(0) += 1;
                *self.held.entry(prefix_of(net.addr())).or_insert(0) += 1;
            }
            Some(old) => self.count_held(&net, old.why.origin.as_ref(), false),
        }
    }

    fn remove(&mut self, net: &IpNet) {
        if let Some(old) = self.blocked.remove(net) {
            self.count_held(net, old.why.origin.as_ref(), false);
            let prefix = prefix_of(net.addr());
            if let Some(n) = self.held.get_mut(&prefix) {
                *n -= 1;
                if *n == 0 {
                    self.held.remove(&prefix);
                }
            }
            let lengths = self.lengths_mut(*net);
            if let Some(n) = lengths.get_mut(&net.prefix_len()) {
                *n -= 1;
                if *n == 0 {
                    lengths.remove(&net.prefix_len());
                }
            }
        }
    }

    /// Counts `net` in (`more`) or out of what `origin` holds (nothing without an origin).
    fn count_held(&mut self, net: &IpNet, origin: Option<&HostName>, more: bool) {
        let Some(origin) = origin else {
            return;
        };
        if more {
            self.by_origin
                .entry(origin.clone())
                .or_default()
                .count(net, true);
        } else if let Some(held) = self.by_origin.get_mut(origin) {
            held.count(net, false);
            if held.blocks == 0 {
                self.by_origin.remove(origin);
            }
        }
    }

    fn lengths_mut(&mut self, net: IpNet) -> &mut BTreeMap<u8, usize> {
        match net {
            IpNet::V4(_) => &mut self.lengths4,
            IpNet::V6(_) => &mut self.lengths6,
        }
    }

    /// Forgets expired blocks, at most once a second.
    fn sweep(&mut self, now: Timestamp) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(Duration::from_secs(1));
        let expired: Vec<IpNet> = self
            .blocked
            .iter()
            .filter(|(_, a)| a.until <= now)
            .map(|(n, _)| *n)
            .collect();
        for net in expired {
            self.remove(&net);
        }
        self.grace.retain(|_, until| *until > now);
    }
}

mod decoy;
pub use decoy::DECOY_HOLD;
#[cfg(test)]
mod tests;
