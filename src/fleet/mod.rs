//! Fleet mode: hosts that share their blocks, and the probes that only add up to a sweep
//! across hosts, over NATS. This is its pure part — the messages and their checks
//! ([`message`]), what no message may block ([`floor`]), the receiver's own rules for a block
//! from another host ([`gate`]), the sweep count ([`sweep`]); the engine applies them
//! (`engine::fleet`), the NATS link is the shell's (`daemon::fleet`), the configuration is
//! `config::fleet`. docs/fleet.md has the design.

pub mod floor;
pub mod gate;
pub mod message;
pub mod sweep;

/// A host is a member of the fleet while it was heard from (a heartbeat, or any message) this
/// recently; members send a heartbeat every [`HEARTBEAT_EVERY`].
pub const MEMBER_FOR: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a host says it is alive.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The rule by which this host refused another host's block (or a sweep counted from the
/// others' summaries), or did not carry out another host's unblock: the words of `status`'s
/// fleet line and of `scansentry_fleet_blocks_refused_total{rule}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBy {
    /// What no fleet message may block ([`floor`]): `floor`.
    Floor,
    /// Its origin's new blocks over the gate's rate: `rate-cap`.
    RateCap,
    /// Its origin's new blocks over the gate's address space: `space-cap`.
    SpaceCap,
    /// Ended before it arrived: `ended`.
    Ended,
    /// Unblocked here, or by its origin, since it was detected: `unblocked`.
    Unblocked,
    /// It overlaps the never-block list: `never-block`.
    NeverBlock,
    /// An address a member of the fleet claims: `member`.
    Member,
    /// An address this host refused as forged: `reverse-path`.
    ReversePath,
    /// A protected peer: `protected`.
    Protected,
    /// Its origin holds its share of `max-blocks` here: `share`.
    Share,
    /// Its origin's blocks in force hold the most address space they may: `held-cap`.
    HeldCap,
    /// It would lift a block here that lasts longer or is not its origin's: `shorter`.
    Shorter,
    /// In a grace period after an unblock by hand: `grace`.
    Grace,
    /// This host's budget: `budget`.
    Budget,
    /// An unblock over its origin's cap: `unblock-cap`.
    UnblockCap,
    /// An unblock of a block its origin did not make: `not-its-block`.
    NotItsBlock,
}

impl RefusedBy {
    /// Every rule, in the order they are checked (the unblocks' last).
    pub const ALL: [RefusedBy; 16] = [
        RefusedBy::Floor,
        RefusedBy::RateCap,
        RefusedBy::SpaceCap,
        RefusedBy::Ended,
        RefusedBy::Unblocked,
        RefusedBy::NeverBlock,
        RefusedBy::Member,
        RefusedBy::ReversePath,
        RefusedBy::Protected,
        RefusedBy::Share,
        RefusedBy::HeldCap,
        RefusedBy::Shorter,
        RefusedBy::Grace,
        RefusedBy::Budget,
        RefusedBy::UnblockCap,
        RefusedBy::NotItsBlock,
    ];

    /// The rule's word.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedBy::Floor => "floor",
            RefusedBy::RateCap => "rate-cap",
            RefusedBy::SpaceCap => "space-cap",
            RefusedBy::Ended => "ended",
            RefusedBy::Unblocked => "unblocked",
            RefusedBy::NeverBlock => "never-block",
            RefusedBy::Member => "member",
            RefusedBy::ReversePath => "reverse-path",
            RefusedBy::Protected => "protected",
            RefusedBy::Share => "share",
            RefusedBy::HeldCap => "held-cap",
            RefusedBy::Shorter => "shorter",
            RefusedBy::Grace => "grace",
            RefusedBy::Budget => "budget",
            RefusedBy::UnblockCap => "unblock-cap",
            RefusedBy::NotItsBlock => "not-its-block",
        }
    }
}

/// Why a probe was not told to the fleet, or another host's summary not counted: the words of
/// `status`'s fleet line and of `scansentry_fleet_probes_refused_total{rule}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRefusedBy {
    /// Its source failed the reverse-path check: `reverse-path`.
    ReversePath,
    /// Its source is a protected peer: `protected`.
    Protected,
    /// This host cannot check its source (the check is off, or no route back was found):
    /// `unchecked`.
    Unchecked,
    /// Another host's summary its sender did not verify as this host would: `unverified`.
    Unverified,
}

impl ProbeRefusedBy {
    /// Every rule: this host's checks, then the others' summaries'.
    pub const ALL: [ProbeRefusedBy; 4] = [
        ProbeRefusedBy::ReversePath,
        ProbeRefusedBy::Protected,
        ProbeRefusedBy::Unchecked,
        ProbeRefusedBy::Unverified,
    ];

    /// The rule's word.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeRefusedBy::ReversePath => "reverse-path",
            ProbeRefusedBy::Protected => "protected",
            ProbeRefusedBy::Unchecked => "unchecked",
            ProbeRefusedBy::Unverified => "unverified",
        }
    }
}
