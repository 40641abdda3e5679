//! The kernel's first line in own mode's table, as `nft/scansentry.nft` shows it: the sets it
//! keeps, its two named counters, its four chains and their rules, written as nft 1.0.6
//! compiles that file (`nft --debug=netlink` and `--debug=mnl` printed the bytecode and the
//! attributes copied here; the privileged test `own_mode_builds_exactly_the_shipped_ruleset` in
//! `tests/nft.rs` lists both tables and compares them).
//!
//! The base chain `first_line` hooks input at priority filter - 5, after conntrack and after
//! own mode's block chain (filter - 10), so it sees only what the block sets let through. It
//! accepts established and related traffic, the never-block sets, and drops the sources held
//! (`hold4`/`hold6`). Of the rest, a TCP or UDP packet to this host that is not a RST, not a
//! bare ACK, not a UDP datagram or SYN conntrack found invalid (a wrong checksum), not from a
//! protected peer, a spared network or a link-local address, not to a listening proto . port,
//! not UDP to the ephemeral range and whose source has a route back through the interface it
//! came in on, is a probe of a trap port: a tripwire holds at once; otherwise the first probe
//! of each source . proto . port (an IPv6 source by its /64) draws once from the source's
//! token bucket (5 tokens, 1 back a minute), once more for a privileged port or a probe
//! without SYN, once more for a port scanners probe first (`scanners_first`), and the draw that
//! finds it empty holds the source for `first-line-hold`. A hold is reported to nfnetlink_log
//! group `first-line-log-group`, the packet with it. A set that is full fails open and counts
//! in `score_full` or `hold_full`.

use std::time::Duration;

use ipnet::IpNet;
use nftnl::{Chain, Rule, Table};
use nftnl_sys as sys;

use super::sys::{AttrValue, Key, RawExpr, SetHandle};
use super::{Entry, SET_INTERVAL, SET_TIMEOUT, TYPE_IPV4_ADDR, TYPE_IPV6_ADDR};
use crate::firewall::FirstLineFacts;
use crate::wire::Proto;

/// `NFT_SET_EVAL`: a set rules add to (`flags dynamic`).
pub(super) const SET_EVAL: u32 = 0x20;
/// nft's data type numbers for `inet_proto` and `inet_service`, and how a concatenation's type
/// is made of its fields' (each shifted by 6 bits, the first field highest).
const TYPE_INET_PROTO: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_BITS: u32 = 6;

/// How long a pair and a source's token bucket are remembered (the bucket: after its last
/// draw).
const COUNT_TIMEOUT_MS: u64 = 60_000;
/// The sizes of design.md §3: at about 360 bytes a source, 100 MB for both families at most.
const PAIRS_SIZE: u32 = 262_144;
const SCORE_SIZE: u32 = 65_536;
const HOLD_SIZE: u32 = 4_096;

/// The token bucket: `limit rate over 1/minute burst 5 packets`.
const BUCKET_RATE: u64 = 1;
const BUCKET_UNIT_S: u64 = 60;
const BUCKET_BURST: u32 = 5;

/// What a hold's log message starts with.
pub const LOG_PREFIX: &str = "scansentry hold ";

/// The first line's chains: the base chain first, then those it jumps to.
pub const CHAINS: [&str; 4] = ["first_line", "weigh", "count", "hold"];
/// The base chain's priority: filter - 5.
const PRIORITY: i32 = -5;

/// The named counters: probes not counted because pairs or score sets were full, holds not
/// made because the hold sets were.
pub const SCORE_FULL: &str = "score_full";
/// See [`SCORE_FULL`].
pub const HOLD_FULL: &str = "hold_full";

/// What a first-line set's key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyOf {
    V4,
    V6,
    Service,
    ProtoService,
    V4Pair,
    V6Pair,
}

impl KeyOf {
    /// nft's type number and the key's length: each field of a concatenation takes a whole
    /// number of 32-bit registers.
    fn type_and_len(self) -> (u32, u32) {
        let concat = |types: &[u32]| types.iter().fold(0, |t, f| (t << TYPE_BITS) | f);
        match self {
            KeyOf::V4 => (TYPE_IPV4_ADDR, 4),
            KeyOf::V6 => (TYPE_IPV6_ADDR, 16),
            KeyOf::Service => (TYPE_INET_SERVICE, 2),
            KeyOf::ProtoService => (concat(&[TYPE_INET_PROTO, TYPE_INET_SERVICE]), 8),
            KeyOf::V4Pair => (
                concat(&[TYPE_IPV4_ADDR, TYPE_INET_PROTO, TYPE_INET_SERVICE]),
                12,
            ),
            KeyOf::V6Pair => (
                concat(&[TYPE_IPV6_ADDR, TYPE_INET_PROTO, TYPE_INET_SERVICE]),
                24,
            ),
        }
    }

    /// The user data nft writes for such a key (what `nft list` reads back): a plain type's
    /// byte order (big endian, 2), or a concatenation's: no byte order (0) and a key-typeof
    /// record naming a concatenation (13) with no fields of its own.
    fn userdata(self) -> Vec<u8> {
        let u32_ne = |v: u32| v.to_ne_bytes();
        let mut d = Vec::new();
        match self {
            KeyOf::V4 | KeyOf::V6 | KeyOf::Service => {
                d.extend([0, 4]);
                d.extend(u32_ne(2));
            }
            KeyOf::ProtoService | KeyOf::V4Pair | KeyOf::V6Pair => {
                d.extend([0, 4]);
                d.extend(u32_ne(0));
                d.extend([3, 8, 0, 4]);
                d.extend(u32_ne(13));
                d.extend([1, 0]);
            }
        }
        d
    }
}

/// A set's default timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timeout {
    None,
    Count,
    Hold,
}

/// One of the first line's sets.
#[derive(Clone, Copy, Debug)]
struct FirstLineSet {
    name: &'static str,
    /// Its id within the batch that creates it (after own mode's 1 to 6).
    id: u32,
    key: KeyOf,
    flags: u32,
    timeout: Timeout,
    /// Its `size`; 0 for none (the daemon fills it, it does not grow by itself).
    size: u32,
}

const fn set(
    name: &'static str,
    id: u32,
    key: KeyOf,
    flags: u32,
    timeout: Timeout,
    size: u32,
) -> FirstLineSet {
    FirstLineSet {
        name,
        id,
        key,
        flags,
        timeout,
        size,
    }
}

/// The first line's sets, as the shipped file declares them.
const SETS: [FirstLineSet; 16] = {
    use KeyOf::{ProtoService, Service, V4, V4Pair, V6, V6Pair};
    const DYN: u32 = SET_EVAL | SET_TIMEOUT;
    [
        set("listen", 7, ProtoService, 0, Timeout::None, 0),
        set("tripwire", 8, ProtoService, 0, Timeout::None, 0),
        set("scanners_first", 20, ProtoService, 0, Timeout::None, 0),
        set("peers4", 9, V4, SET_INTERVAL, Timeout::None, 0),
        set("peers6", 10, V6, SET_INTERVAL, Timeout::None, 0),
        set(
            "spare4",
            11,
            V4,
            SET_INTERVAL | SET_TIMEOUT,
            Timeout::None,
            0,
        ),
        set(
            "spare6",
            12,
            V6,
            SET_INTERVAL | SET_TIMEOUT,
            Timeout::None,
            0,
        ),
        set("udp_replies", 13, Service, SET_INTERVAL, Timeout::None, 0),
        set("pairs4", 14, V4Pair, DYN, Timeout::Count, PAIRS_SIZE),
        set("pairs6", 15, V6Pair, DYN, Timeout::Count, PAIRS_SIZE),
        set("score4", 16, V4, DYN, Timeout::Count, SCORE_SIZE),
        set("score6", 17, V6, DYN, Timeout::Count, SCORE_SIZE),
        set("hold4", 18, V4, DYN, Timeout::Hold, HOLD_SIZE),
        set("hold6", 19, V6, DYN, Timeout::Hold, HOLD_SIZE),
        // The never-block sets are own mode's; the first line looks them up too.
        set("allow4", 1, V4, SET_INTERVAL, Timeout::None, 0),
        set("allow6", 2, V6, SET_INTERVAL, Timeout::None, 0),
    ]
};

/// The first line's own sets (not own mode's never-block sets), in the order they are made.
fn own_sets() -> impl Iterator<Item = &'static FirstLineSet> {
    SETS.iter().filter(|s| !s.name.starts_with("allow"))
}

fn id_of(name: &str) -> u32 {
    SETS.iter().find(|s| s.name == name).map_or(0, |s| s.id)
}

/// What attach mode checks of each of the first line's sets in the administrator's table (the
/// never-block sets included): `(name, key type, key length, flags, whether its timeout is
/// first-line-hold)`.
pub fn expected_sets() -> impl Iterator<Item = (&'static str, u32, u32, u32, bool)> {
    SETS.iter().map(|s| {
        let (key_type, key_len) = s.key.type_and_len();
        (
            s.name,
            key_type,
            key_len,
            s.flags,
            s.timeout == Timeout::Hold,
        )
    })
}

/// The creation messages' descriptions of the first line's sets, `hold` their hold sets'
/// timeout: `(name, handle)`.
pub fn set_handles(
    family: u32,
    table: &super::NftName,
    hold: Duration,
) -> Vec<(&'static str, SetHandle)> {
    let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
    own_sets()
        .map(|s| {
            let mut h = SetHandle::new(family, table, &super::own_name(s.name));
            let (key_type, key_len) = s.key.type_and_len();
            h.set_u32(sys::NFTNL_SET_KEY_TYPE, key_type);
            h.set_u32(sys::NFTNL_SET_KEY_LEN, key_len);
            h.set_u32(sys::NFTNL_SET_FLAGS, s.flags);
            h.set_u32(sys::NFTNL_SET_ID, s.id);
            match s.timeout {
                Timeout::None => {}
                Timeout::Count => h.set_u64(sys::NFTNL_SET_TIMEOUT, COUNT_TIMEOUT_MS),
                Timeout::Hold => h.set_u64(sys::NFTNL_SET_TIMEOUT, hold_ms),
            }
            if s.size > 0 {
                h.set_u32(sys::NFTNL_SET_DESC_SIZE, s.size);
            }
            h.set_userdata(&s.key.userdata());
            (s.name, h)
        })
        .collect()
}

/// The first line's chains, [`CHAINS`]' order: the base chain on input, then three regular
/// chains.
pub fn chains(table: &Table) -> Vec<Chain<'_>> {
    CHAINS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = super::own_name(name).to_c();
            if i == 0 {
                super::own_chain(table, &name, nftnl::Hook::In, PRIORITY)
            } else {
                Chain::new(&name, table)
            }
        })
        .collect()
}

// Registers as nft numbers them: 0 the verdict, 1 and 2 the 16-byte ones, 8 and on the 32-bit
// ones a concatenation's fields go to.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;
const REG32_01: u32 = 9;
const REG32_02: u32 = 10;
const REG32_05: u32 = 13;

const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_META_PKTTYPE: u32 = 19;
const PAYLOAD_NETWORK: u32 = 1;
const PAYLOAD_TRANSPORT: u32 = 2;
const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;
const CMP_LT: u32 = 2;
const CMP_GTE: u32 = 5;
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const DYNSET_ADD: u32 = 0;
const DYNSET_UPDATE: u32 = 1;
const DYNSET_DELETE: u32 = 2;
/// `IP_CT_ESTABLISHED` and `IP_CT_RELATED` as `ct state` bits; `invalid` (no conntrack entry).
const CT_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
const CT_INVALID: u32 = 1;
/// `NFTA_FIB_F_SADDR | NFTA_FIB_F_IIF | NFTA_FIB_F_PRESENT`, and `NFT_FIB_RESULT_OIF`.
const FIB_SADDR_IIF_PRESENT: u32 = 0x1 | 0x8 | 0x20;
const FIB_RESULT_OIF: u32 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// TCP's flags byte: FIN, SYN, RST, ACK.
const TH_FIN: u8 = 0x01;
const TH_SYN: u8 = 0x02;
const TH_RST: u8 = 0x04;
const TH_ACK: u8 = 0x10;

/// An expression of our fixed vocabulary: every attribute is one [`RawExpr::new`] knows, so it
/// cannot refuse it (the unit tests build every rule).
fn expr(name: &str, attrs: Vec<(u32, AttrValue)>) -> RawExpr {
    RawExpr::new(name, attrs).expect("the first line's expressions are fixed in code")
}

fn meta(key: u32, dreg: u32) -> RawExpr {
    expr(
        "meta",
        vec![
            (sys::NFTNL_EXPR_META_KEY, AttrValue::U32(key)),
            (sys::NFTNL_EXPR_META_DREG, AttrValue::U32(dreg)),
        ],
    )
}

fn cmp(op: u32, data: &[u8]) -> RawExpr {
    expr(
        "cmp",
        vec![
            (sys::NFTNL_EXPR_CMP_SREG, AttrValue::U32(REG_1)),
            (sys::NFTNL_EXPR_CMP_OP, AttrValue::U32(op)),
            (sys::NFTNL_EXPR_CMP_DATA, AttrValue::Data(data.to_vec())),
        ],
    )
}

fn payload(base: u32, offset: u32, len: u32, dreg: u32) -> RawExpr {
    expr(
        "payload",
        vec![
            (sys::NFTNL_EXPR_PAYLOAD_DREG, AttrValue::U32(dreg)),
            (sys::NFTNL_EXPR_PAYLOAD_BASE, AttrValue::U32(base)),
            (sys::NFTNL_EXPR_PAYLOAD_OFFSET, AttrValue::U32(offset)),
            (sys::NFTNL_EXPR_PAYLOAD_LEN, AttrValue::U32(len)),
        ],
    )
}

/// Register 1 = (register 1 & `mask`) ^ 0.
fn and(mask: &[u8]) -> RawExpr {
    let len = u32::try_from(mask.len()).unwrap_or(0);
    expr(
        "bitwise",
        vec![
            (sys::NFTNL_EXPR_BITWISE_SREG, AttrValue::U32(REG_1)),
            (sys::NFTNL_EXPR_BITWISE_DREG, AttrValue::U32(REG_1)),
            (sys::NFTNL_EXPR_BITWISE_OP, AttrValue::U32(0)),
            (sys::NFTNL_EXPR_BITWISE_LEN, AttrValue::U32(len)),
            (sys::NFTNL_EXPR_BITWISE_MASK, AttrValue::Data(mask.to_vec())),
            (
                sys::NFTNL_EXPR_BITWISE_XOR,
                AttrValue::Data(vec![0; mask.len()]),
            ),
        ],
    )
}

/// `@set` (or `!= @set`) on the key in register 1.
fn lookup(set: &str, inverted: bool) -> RawExpr {
    let mut attrs = vec![
        (sys::NFTNL_EXPR_LOOKUP_SREG, AttrValue::U32(REG_1)),
        (sys::NFTNL_EXPR_LOOKUP_SET, AttrValue::Str(set.into())),
        (sys::NFTNL_EXPR_LOOKUP_SET_ID, AttrValue::U32(id_of(set))),
    ];
    if inverted {
        attrs.push((sys::NFTNL_EXPR_LOOKUP_FLAGS, AttrValue::U32(1)));
    }
    expr("lookup", attrs)
}

/// `add`/`update`/`delete @set { key }` with the key in register 1, and a stateful expression.
fn dynset(op: u32, set: &str, with: Option<RawExpr>) -> RawExpr {
    let mut attrs = vec![
        (sys::NFTNL_EXPR_DYNSET_SREG_KEY, AttrValue::U32(REG_1)),
        (sys::NFTNL_EXPR_DYNSET_OP, AttrValue::U32(op)),
        (sys::NFTNL_EXPR_DYNSET_SET_NAME, AttrValue::Str(set.into())),
        (sys::NFTNL_EXPR_DYNSET_SET_ID, AttrValue::U32(id_of(set))),
    ];
    if let Some(with) = with {
        attrs.push((
            sys::NFTNL_EXPR_DYNSET_EXPRESSIONS,
            AttrValue::Expr(Box::new(with)),
        ));
    }
    expr("dynset", attrs)
}

/// `limit rate over 1/minute burst 5 packets`.
fn bucket() -> RawExpr {
    expr(
        "limit",
        vec![
            (sys::NFTNL_EXPR_LIMIT_RATE, AttrValue::U64(BUCKET_RATE)),
            (sys::NFTNL_EXPR_LIMIT_UNIT, AttrValue::U64(BUCKET_UNIT_S)),
            (sys::NFTNL_EXPR_LIMIT_BURST, AttrValue::U32(BUCKET_BURST)),
            (sys::NFTNL_EXPR_LIMIT_TYPE, AttrValue::U32(0)),
            (sys::NFTNL_EXPR_LIMIT_FLAGS, AttrValue::U32(1)),
        ],
    )
}

fn verdict(code: i32, chain: Option<&str>) -> RawExpr {
    // The kernel reads the verdict as a signed 32-bit number.
    let mut attrs = vec![
        (sys::NFTNL_EXPR_IMM_DREG, AttrValue::U32(REG_VERDICT)),
        (
            sys::NFTNL_EXPR_IMM_VERDICT,
            AttrValue::U32(u32::from_ne_bytes(code.to_ne_bytes())),
        ),
    ];
    if let Some(chain) = chain {
        attrs.push((sys::NFTNL_EXPR_IMM_CHAIN, AttrValue::Str(chain.into())));
    }
    expr("immediate", attrs)
}

fn accept() -> RawExpr {
    verdict(NF_ACCEPT, None)
}

fn drop_() -> RawExpr {
    verdict(NF_DROP, None)
}

fn counter() -> RawExpr {
    expr("counter", vec![])
}

/// `counter name <name>`.
fn named_counter(name: &str) -> RawExpr {
    expr(
        "objref",
        vec![
            (sys::NFTNL_EXPR_OBJREF_IMM_TYPE, AttrValue::U32(1)),
            (sys::NFTNL_EXPR_OBJREF_IMM_NAME, AttrValue::Str(name.into())),
        ],
    )
}

/// `meta nfproto ipv4|ipv6` then the source address (IPv6: its /64 when `slash64`) in
/// register 1.
fn source(v6: bool, slash64: bool) -> Vec<RawExpr> {
    let mut out = vec![meta(NFT_META_NFPROTO, REG_1)];
    if v6 {
        out.push(cmp(CMP_EQ, &[10]));
        out.push(payload(PAYLOAD_NETWORK, 8, 16, REG_1));
        if slash64 {
            let mut mask = [0u8; 16];
            mask[..8].fill(0xff);
            out.push(and(&mask));
        }
    } else {
        out.push(cmp(CMP_EQ, &[2]));
        out.push(payload(PAYLOAD_NETWORK, 12, 4, REG_1));
    }
    out
}

/// `ip saddr . meta l4proto . th dport` (IPv6: the /64) in registers 1 on.
fn pair(v6: bool) -> Vec<RawExpr> {
    let mut out = source(v6, true);
    let (proto, port) = if v6 {
        (REG_2, REG32_05)
    } else {
        (REG32_01, REG32_02)
    };
    out.push(meta(NFT_META_L4PROTO, proto));
    out.push(payload(PAYLOAD_TRANSPORT, 2, 2, port));
    out
}

/// `meta l4proto . th dport` in registers 1 and 9.
fn proto_port() -> Vec<RawExpr> {
    vec![
        meta(NFT_META_L4PROTO, REG_1),
        payload(PAYLOAD_TRANSPORT, 2, 2, REG32_01),
    ]
}

/// `ct state` has one of the bits of `mask`.
fn ct_state(mask: u32) -> Vec<RawExpr> {
    vec![
        expr(
            "ct",
            vec![
                (sys::NFTNL_EXPR_CT_KEY, AttrValue::U32(0)),
                (sys::NFTNL_EXPR_CT_DREG, AttrValue::U32(REG_1)),
            ],
        ),
        and(&mask.to_ne_bytes()),
        cmp(CMP_NEQ, &[0; 4]),
    ]
}

/// `tcp flags & mask == value` (with `meta l4proto tcp` before, as nft adds it).
fn tcp_flags(mask: u8, value: u8) -> Vec<RawExpr> {
    vec![
        meta(NFT_META_L4PROTO, REG_1),
        cmp(CMP_EQ, &[IPPROTO_TCP]),
        payload(PAYLOAD_TRANSPORT, 13, 1, REG_1),
        and(&[mask]),
        cmp(CMP_EQ, &[value]),
    ]
}

/// `th dport <op> 1024`.
fn dport_vs_1024(op: u32) -> Vec<RawExpr> {
    vec![
        payload(PAYLOAD_TRANSPORT, 2, 2, REG_1),
        cmp(op, &1024u16.to_be_bytes()),
    ]
}

fn with(mut exprs: Vec<RawExpr>, more: impl IntoIterator<Item = RawExpr>) -> Vec<RawExpr> {
    exprs.extend(more);
    exprs
}

/// Each chain's rules, as expression lists, in [`CHAINS`]' order; `log_group` is
/// `first-line-log-group`.
pub fn rule_exprs(log_group: u16) -> [Vec<Vec<RawExpr>>; 4] {
    [
        base_rules(),
        weigh_rules(),
        count_rules(),
        hold_rules(log_group),
    ]
}

/// For the IPv4 and the IPv6 set of a pair: the source in `@set`, then `then`.
fn by_source(set4: &str, set6: &str, then: fn() -> Vec<RawExpr>) -> [Vec<RawExpr>; 2] {
    [(false, set4), (true, set6)].map(|(v6, set)| {
        with(
            source(v6, false),
            [lookup(set, false)].into_iter().chain(then()),
        )
    })
}

/// `first_line`: what passes, what is dropped as held, what holds at once, and the first probe
/// of each pair on to `weigh`.
fn base_rules() -> Vec<Vec<RawExpr>> {
    let mut rules = vec![with(ct_state(CT_ESTABLISHED_RELATED), [accept()])];
    rules.extend(by_source("allow4", "allow6", || vec![accept()]));
    rules.extend(by_source("hold4", "hold6", || vec![counter(), drop_()]));
    rules.extend(skip_rules());
    rules.push(with(
        proto_port(),
        [lookup("tripwire", false), verdict(NFT_GOTO, Some("hold"))],
    ));
    for (v6, set) in [(false, "pairs4"), (true, "pairs6")] {
        rules.push(with(pair(v6), [lookup(set, false), accept()]));
    }
    for (v6, set) in [(false, "pairs4"), (true, "pairs6")] {
        rules.push(with(
            pair(v6),
            [
                dynset(DYNSET_ADD, set, None),
                verdict(NFT_GOTO, Some("weigh")),
            ],
        ));
    }
    rules.push(vec![named_counter(SCORE_FULL)]);
    rules
}

/// What `first_line` lets pass uncounted: not TCP or UDP, not for this host, a RST or bare
/// ACK, a wrong checksum, a peer's, a spared network's, a link-local source's, to a listener, a
/// late UDP reply, from a source with no route back through its interface.
fn skip_rules() -> Vec<Vec<RawExpr>> {
    let mut rules = Vec::new();
    rules.push(vec![
        meta(NFT_META_L4PROTO, REG_1),
        cmp(CMP_NEQ, &[IPPROTO_TCP]),
        meta(NFT_META_L4PROTO, REG_1),
        cmp(CMP_NEQ, &[IPPROTO_UDP]),
        accept(),
    ]);
    // PACKET_HOST is 0.
    rules.push(vec![
        meta(NFT_META_PKTTYPE, REG_1),
        cmp(CMP_NEQ, &[0]),
        accept(),
    ]);
    let bare_ack = TH_FIN | TH_SYN | TH_RST | TH_ACK;
    rules.push(with(tcp_flags(bare_ack, TH_ACK), [accept()]));
    rules.push(with(tcp_flags(TH_RST, TH_RST), [accept()]));
    // What conntrack found invalid and cannot be a stealth probe: a UDP datagram or a SYN (no
    // FIN, RST or ACK with it) whose checksum is wrong (conntrack checks it on the way in),
    // which the host drops and the daemon does not count either. A SYN with FIN is invalid by
    // its flags and counted: the daemon weighs it as impossible.
    rules.push(with(
        ct_state(CT_INVALID),
        [
            meta(NFT_META_L4PROTO, REG_1),
            cmp(CMP_EQ, &[IPPROTO_UDP]),
            accept(),
        ],
    ));
    rules.push(with(
        ct_state(CT_INVALID),
        tcp_flags(bare_ack, TH_SYN).into_iter().chain([accept()]),
    ));
    rules.extend(by_source("peers4", "peers6", || vec![accept()]));
    rules.extend(by_source("spare4", "spare6", || vec![accept()]));
    rules.extend(link_local_rules());
    rules.push(with(proto_port(), [lookup("listen", false), accept()]));
    rules.push(vec![
        meta(NFT_META_L4PROTO, REG_1),
        cmp(CMP_EQ, &[IPPROTO_UDP]),
        payload(PAYLOAD_TRANSPORT, 2, 2, REG_1),
        lookup("udp_replies", false),
        accept(),
    ]);
    rules.push(vec![
        expr(
            "fib",
            vec![
                (
                    sys::NFTNL_EXPR_FIB_FLAGS,
                    AttrValue::U32(FIB_SADDR_IIF_PRESENT),
                ),
                (sys::NFTNL_EXPR_FIB_RESULT, AttrValue::U32(FIB_RESULT_OIF)),
                (sys::NFTNL_EXPR_FIB_DREG, AttrValue::U32(REG_1)),
            ],
        ),
        cmp(CMP_EQ, &[0; 4]),
        accept(),
    ]);
    rules
}

/// `ip saddr 169.254.0.0/16 accept`, `ip6 saddr fe80::/10 accept`: a link-local source, which
/// the daemon never counts (any neighbour on the link can claim one, and the route back
/// through the interface it came in on always exists), as nft 1.0.6 compiles them (the /16 as
/// a 2-byte load; the /10 as the address masked).
fn link_local_rules() -> [Vec<RawExpr>; 2] {
    let mut mask6 = [0u8; 16];
    mask6[..2].copy_from_slice(&[0xff, 0xc0]);
    let mut fe80 = [0u8; 16];
    fe80[..2].copy_from_slice(&[0xfe, 0x80]);
    [
        vec![
            meta(NFT_META_NFPROTO, REG_1),
            cmp(CMP_EQ, &[2]),
            payload(PAYLOAD_NETWORK, 12, 2, REG_1),
            cmp(CMP_EQ, &[169, 254]),
            accept(),
        ],
        vec![
            meta(NFT_META_NFPROTO, REG_1),
            cmp(CMP_EQ, &[10]),
            payload(PAYLOAD_NETWORK, 8, 16, REG_1),
            and(&mask6),
            cmp(CMP_EQ, &fe80),
            accept(),
        ],
    ]
}

/// `weigh`: a probe draws from the bucket once, once more for a port scanners probe first,
/// once more for a privileged port or no SYN.
fn weigh_rules() -> Vec<Vec<RawExpr>> {
    let jump_count = || verdict(NFT_JUMP, Some("count"));
    vec![
        with(
            proto_port(),
            [lookup("scanners_first", false), jump_count()],
        ),
        with(dport_vs_1024(CMP_LT), [jump_count()]),
        with(
            tcp_flags(TH_SYN, 0),
            dport_vs_1024(CMP_GTE).into_iter().chain([jump_count()]),
        ),
        vec![jump_count()],
    ]
}

/// `count`: one draw; the draw that finds the bucket empty holds; a full score set is counted.
fn count_rules() -> Vec<Vec<RawExpr>> {
    let mut rules = Vec::new();
    for (v6, set) in [(false, "score4"), (true, "score6")] {
        rules.push(with(
            source(v6, true),
            [
                dynset(DYNSET_UPDATE, set, Some(bucket())),
                verdict(NFT_GOTO, Some("hold")),
            ],
        ));
    }
    for (v6, set) in [(false, "score4"), (true, "score6")] {
        rules.push(with(
            source(v6, true),
            [lookup(set, true), named_counter(SCORE_FULL)],
        ));
    }
    rules
}

/// `hold`: the source into the hold set, reported to `log_group`, the probe dropped; a full
/// hold set is counted, and the probe dropped with its pair forgotten (its retry counts again).
fn hold_rules(log_group: u16) -> Vec<Vec<RawExpr>> {
    let log = || {
        expr(
            "log",
            vec![
                (
                    sys::NFTNL_EXPR_LOG_PREFIX,
                    AttrValue::Str(LOG_PREFIX.into()),
                ),
                (sys::NFTNL_EXPR_LOG_GROUP, AttrValue::U16(log_group)),
                (sys::NFTNL_EXPR_LOG_QTHRESHOLD, AttrValue::U16(1)),
            ],
        )
    };
    let mut rules = Vec::new();
    for (v6, set) in [(false, "hold4"), (true, "hold6")] {
        rules.push(with(
            source(v6, false),
            [dynset(DYNSET_ADD, set, None), log(), drop_()],
        ));
    }
    rules.push(vec![named_counter(HOLD_FULL)]);
    for (v6, set) in [(false, "pairs4"), (true, "pairs6")] {
        rules.push(with(pair(v6), [dynset(DYNSET_DELETE, set, None), drop_()]));
    }
    rules
}

/// The rules of `chains` ([`chains`]' order), each with the index of its chain.
pub fn rules<'a>(chains: &'a [Chain<'_>], log_group: u16) -> Vec<(usize, Rule<'a>)> {
    let mut out = Vec::new();
    for (i, exprs) in rule_exprs(log_group).into_iter().enumerate() {
        let Some(chain) = chains.get(i) else { continue };
        for rule_exprs in exprs {
            let mut rule = Rule::new(chain);
            for e in &rule_exprs {
                rule.add_expr(e);
            }
            out.push((i, rule));
        }
    }
    out
}

/// The elements of the fact sets for `facts`: `(set, entries)`, every fact set once (an empty
/// one is emptied).
pub fn fact_entries(facts: &FirstLineFacts) -> Vec<(&'static str, Vec<Entry>)> {
    let proto_number = |p: Proto| match p {
        Proto::Udp => IPPROTO_UDP,
        // Filtered out below: the first line's sets hold TCP and UDP ports only.
        Proto::Tcp | Proto::Sctp | Proto::Ip => IPPROTO_TCP,
    };
    let ports = |set: &std::collections::BTreeSet<(Proto, u16)>| -> Vec<Entry> {
        set.iter()
            .filter(|(p, _)| p.has_nft_ports())
            .map(|&(p, port)| Entry {
                start: Key::proto_service(proto_number(p), port),
                end: None,
                ttl: None,
            })
            .collect()
    };
    let peers = |v4: bool| -> Vec<Entry> {
        super::merge_nets(&facts.peers)
            .into_iter()
            .filter(|n: &IpNet| n.addr().is_ipv4() == v4)
            .map(|n| Entry::of(n, true, None))
            .collect()
    };
    let replies = facts
        .ephemeral
        .iter()
        .filter(|r| r.start() <= r.end())
        .map(|r| Entry {
            start: Key::service(*r.start()),
            end: r.end().checked_add(1).map(Key::service),
            ttl: None,
        })
        .collect();
    vec![
        ("listen", ports(&facts.listening)),
        ("tripwire", ports(&facts.tripwires)),
        ("scanners_first", ports(&facts.scanners_first)),
        ("peers4", peers(true)),
        ("peers6", peers(false)),
        ("udp_replies", replies),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_keys_have_the_types_nft_computes() {
        // As `nft --debug=mnl` sent them for `type inet_proto . inet_service` and
        // `type ipv4_addr . inet_proto . inet_service` (nft 1.0.6).
        assert_eq!(KeyOf::ProtoService.type_and_len(), (0x30d, 8));
        assert_eq!(KeyOf::V4Pair.type_and_len(), (0x730d, 12));
        assert_eq!(KeyOf::V6Pair.type_and_len(), (0x830d, 24));
        assert_eq!(
            Key::proto_service(IPPROTO_TCP, 22).bytes(),
            [6, 0, 0, 0, 0, 22, 0, 0]
        );
    }

    #[test]
    fn every_rule_is_built_and_set_ids_are_unique() {
        let rules = rule_exprs(2701);
        let counts: Vec<usize> = rules.iter().map(Vec::len).collect();
        assert_eq!(counts, [26, 4, 4, 5]);
        let mut ids: Vec<u32> = SETS.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SETS.len());
        for set in SETS {
            assert_ne!(id_of(set.name), 0, "{}", set.name);
        }
    }

    #[test]
    fn facts_fill_each_fact_set() {
        let mut facts = FirstLineFacts {
            listening: std::collections::BTreeSet::new(),
            tripwires: std::collections::BTreeSet::new(),
            scanners_first: std::collections::BTreeSet::from([(Proto::Tcp, 80)]),
            peers: Vec::new(),
            ephemeral: Some(32768..=60999),
        };
        facts.listening.insert((Proto::Tcp, 22));
        facts.listening.insert((Proto::Udp, 53));
        // Issue 28: an SCTP listener (learned from an INIT-ACK) and an IP protocol are no
        // proto . port element of the first line's sets, which hold TCP and UDP only.
        facts.listening.insert((Proto::Sctp, 38412));
        facts.listening.insert((Proto::Ip, 47));
        facts.peers = vec![
            "198.51.100.0/24".parse().unwrap(),
            "198.51.100.7/32".parse().unwrap(),
            "2001:db8::/48".parse().unwrap(),
        ];
        facts.ephemeral = Some(32768..=65535);
        let entries = fact_entries(&facts);
        let names: Vec<&str> = entries.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "listen",
                "tripwire",
                "scanners_first",
                "peers4",
                "peers6",
                "udp_replies"
            ]
        );
        assert_eq!(entries[0].1.len(), 2, "TCP and UDP listeners only");
        assert!(entries[1].1.is_empty());
        assert_eq!(entries[2].1.len(), 1);
        assert_eq!(entries[3].1.len(), 1, "nested peers merged");
        assert_eq!(entries[4].1.len(), 1);
        let replies = &entries[5].1[0];
        assert_eq!(replies.start, Key::service(32768));
        assert_eq!(replies.end, None, "open at the top");
    }
}
