//! What `nft` itself sends for the element changes scansentry makes, recorded by
//! `scripts/record-nft-messages` (`nft --debug=mnl`, in a namespace) into `tests/data/nft/`,
//! and compared with scansentry's own messages without root.
//!
//! The dump shows every byte of a message but its flags, of which it shows only REQUEST,
//! MULTI, ACK and ECHO; the messages are rebuilt from it and both sides read into trees of
//! attributes, so that a difference names the attribute.

use std::time::Duration;

use ipnet::IpNet;

use super::{NftConfig, element_batch};
use crate::firewall::Action;
use crate::netlink;

/// An attribute: its type (with the nested and byte-order bits) and its value, or what it nests.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attr {
    kind: u16,
    value: Vec<u8>,
    nested: Vec<Attr>,
}

/// A message: type, the flags the dump shows, the nfgenmsg header and the attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    kind: u16,
    flags: u16,
    header: Vec<u8>,
    attrs: Vec<Attr>,
}

const NLA_F_NESTED: u16 = 0x8000;
const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// The flags `nft --debug=mnl` shows: REQUEST, MULTI, ACK, ECHO.
const SHOWN_FLAGS: u16 = 0x1 | 0x2 | 0x4 | 0x8;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_DESTROYSETELEM: u16 = 30;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;

fn attrs(mut buf: &[u8]) -> Vec<Attr> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]);
        assert!(
            len >= 4 && len <= buf.len(),
            "attribute overruns its message"
        );
        let value = &buf[4..len];
        out.push(if kind & NLA_F_NESTED != 0 {
            Attr {
                kind,
                value: Vec::new(),
                nested: attrs(value),
            }
        } else {
            Attr {
                kind,
                value: value.to_vec(),
                nested: Vec::new(),
            }
        });
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    out
}

fn message(bytes: &[u8]) -> Msg {
    Msg {
        kind: u16::from_ne_bytes([bytes[4], bytes[5]]),
        flags: u16::from_ne_bytes([bytes[6], bytes[7]]),
        header: bytes[16..20].to_vec(),
        attrs: attrs(&bytes[20..]),
    }
}

/// Parses a number in a `|  0000000020  |` or `|00015|--|00001|` cell.
fn number(cell: &str) -> u32 {
    cell.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {cell:?}"))
}

/// The bytes of every message in the dump `text`, rebuilt: headers from their fields, then
/// every attribute header and data row as it comes.
fn dumped(text: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').collect();
        let label = line.rsplit('\t').next().unwrap_or_default();
        let is_hex = |cell: &str| {
            let bytes: Vec<&str> = cell.split_whitespace().collect();
            bytes.len() == 4 && bytes.iter().all(|b| b.len() == 2)
        };
        if label.contains("message length") {
            out.push(number(cells[1]).to_ne_bytes().to_vec());
        } else if label.contains("type | flags") {
            let flags = cells[2]
                .trim()
                .chars()
                .zip([0x1u16, 0x2, 0x4, 0x8])
                .filter(|(c, _)| *c != '-')
                .fold(0, |f, (_, bit)| f | bit);
            let m = out.last_mut().expect("a type after a length");
            m.extend(u16::try_from(number(cells[1])).unwrap().to_ne_bytes());
            m.extend(flags.to_ne_bytes());
        } else if label.contains("sequence number") || label.contains("port ID") {
            let m = out.last_mut().expect("after a length");
            m.extend(number(cells[1]).to_ne_bytes());
        } else if label.contains("len |flags| type") {
            let mut kind = u16::try_from(number(cells[3])).unwrap();
            if cells[2].contains('N') {
                kind |= NLA_F_NESTED;
            }
            if cells[2].contains('B') {
                kind |= NLA_F_NET_BYTEORDER;
            }
            let m = out.last_mut().expect("after a header");
            m.extend(u16::try_from(number(cells[1])).unwrap().to_ne_bytes());
            m.extend(kind.to_ne_bytes());
        } else if is_hex(cells[1]) {
            let m = out.last_mut().expect("after a header");
            m.extend(
                cells[1]
                    .split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap()),
            );
        }
    }
    for m in &out {
        let len = usize::try_from(u32::from_ne_bytes(m[..4].try_into().unwrap())).unwrap();
        assert_eq!(len, m.len(), "a message rebuilt whole");
    }
    out
}

/// nft's batch in the recording `name`: from BATCH_BEGIN to BATCH_END (before it, nft reads
/// the ruleset into its cache).
fn nft(name: &str) -> Vec<Msg> {
    let path = format!("{}/tests/data/nft/{name}.mnl", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let all: Vec<Msg> = dumped(&text).iter().map(|m| message(m)).collect();
    let begin = all.iter().position(|m| m.kind == 16).expect("a batch");
    all[begin..].to_vec()
}

/// Ours, for `actions` under own mode.
fn ours(actions: &[Action]) -> Vec<Msg> {
    let config = NftConfig::Own {
        forward: true,
        hook: super::Hook::Input,
        priority: -10,
        set_size: 65_536,
        first_line: None,
    };
    let (batch, _) = element_batch(&config, actions).unwrap().expect("a batch");
    let bytes: Vec<u8> = batch.iter().flatten().copied().collect();
    netlink::messages(&bytes)
        .map(|m| message(m.bytes))
        .collect()
}

/// Where scansentry departs from nft on purpose, each said and undone before the comparison:
/// - it asks for an ACK of every message, so that a refusal names the message (and the block)
///   it concerns, and of the batch's begin and end where the kernel gives one (nftnl checks);
///   nft asks for none. NLM_F_CREATE, which the dump does not show, is checked apart: ours
///   carries it on adds (an existing element is updated, not an error);
/// - the order of a message's attributes is libnftnl's, not nft's own builder's (the kernel
///   reads them into a table by type), and nft names the set by its cache's id as well as by
///   name (NFTA_SET_ELEM_LIST_SET_ID; the kernel looks a set up by name first);
/// - it lifts a block with DESTROYSETELEM (a missing element is no error: the kernel may have
///   ended it a moment before); nft 1.0.6 has only DELSETELEM;
/// - nft deletes an element with the timeout and expiry it read into its cache (the kernel
///   ignores them on a delete); scansentry sends the key alone;
/// - nft opens an interval set's first interval with an end element at the zero key (for the
///   kernels before 5.6); the kernels scansentry supports need none.
///
/// The sequence numbers differ, and are not compared.
fn undo_known_differences(ours: &mut [Msg], nft: &mut [Msg]) {
    for m in ours.iter_mut() {
        if m.kind & 0xff == NFT_MSG_NEWSETELEM {
            assert_ne!(m.flags & NLM_F_CREATE, 0, "adds are made with NLM_F_CREATE");
        }
        if m.kind & 0xff00 != 0 {
            assert_ne!(m.flags & NLM_F_ACK, 0, "every change asks for an ACK");
        }
        m.flags &= SHOWN_FLAGS & !NLM_F_ACK;
        m.attrs.sort_by_key(|a| a.kind);
        if m.kind & 0xff == NFT_MSG_DESTROYSETELEM {
            m.kind = (m.kind & 0xff00) | NFT_MSG_DELSETELEM;
        }
    }
    for m in nft.iter_mut() {
        m.attrs.retain(|a| a.kind != NFTA_SET_ELEM_LIST_SET_ID);
        m.attrs.sort_by_key(|a| a.kind);
        let delete = m.kind & 0xff == NFT_MSG_DELSETELEM;
        for list in m
            .attrs
            .iter_mut()
            .filter(|a| a.kind & !NLA_F_NESTED == NFTA_SET_ELEM_LIST_ELEMENTS)
        {
            let zero_end = |e: &Attr| {
                e.nested
                    .iter()
                    .any(|a| a.kind == NFTA_SET_ELEM_FLAGS && a.value == 1u32.to_be_bytes())
                    && e.nested.iter().any(|a| {
                        a.kind & !NLA_F_NESTED == NFTA_SET_ELEM_KEY
                            && a.nested.iter().all(|d| d.value.iter().all(|&b| b == 0))
                    })
            };
            if list.nested.first().is_some_and(zero_end) {
                list.nested.remove(0);
            }
            for (i, element) in list.nested.iter_mut().enumerate() {
                element.kind = NLA_F_NESTED | u16::try_from(i + 1).unwrap();
                if delete {
                    element.nested.retain(|a| {
                        a.kind != NFTA_SET_ELEM_TIMEOUT && a.kind != NFTA_SET_ELEM_EXPIRATION
                    });
                }
            }
        }
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn element_messages_are_what_nft_sends() {
    let block = |s: &str, secs: u64| Action::Block {
        net: net(s),
        ttl: Duration::from_secs(secs),
    };
    let cases = [
        ("block4", block("203.0.113.7/32", 3600)),
        ("block6", block("2001:db8::7/128", 1800)),
        ("block4_net", block("203.0.113.0/24", 7200)),
        ("block6_net", block("2001:db8:1::/48", 7200)),
        (
            "unblock4",
            Action::Unblock {
                net: net("203.0.113.7/32"),
            },
        ),
        (
            "unblock4_net",
            Action::Unblock {
                net: net("203.0.113.0/24"),
            },
        ),
    ];
    for (name, action) in cases {
        let (mut ours, mut theirs) = (ours(&[action]), nft(name));
        assert_eq!(ours.len(), 3, "{name}: begin, one message, end");
        undo_known_differences(&mut ours, &mut theirs);
        assert_eq!(ours, theirs, "{name}");
    }
}

/// The comparison can fail: a block an hour longer than nft's, or of another address, is
/// told apart.
#[test]
fn a_different_element_is_told_apart() {
    let block = |s: &str, secs: u64| Action::Block {
        net: net(s),
        ttl: Duration::from_secs(secs),
    };
    for other in [block("203.0.113.7/32", 7200), block("203.0.113.8/32", 3600)] {
        let (mut ours, mut theirs) = (ours(&[other]), nft("block4"));
        undo_known_differences(&mut ours, &mut theirs);
        assert_ne!(ours, theirs);
    }
}
