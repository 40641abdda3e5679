//! Decoy scans (`nmap -D d1,d2,ME`): every probe is sent from the real address and from each
//! decoy, so every source crosses the threshold alike. What tells them apart is the answer to
//! this host's SYN+ACK: the real scanner's kernel (nmap sends from raw sockets) answers it with
//! a bare RST whose sequence number is the SYN+ACK's acknowledgment number; a decoy that does
//! not exist answers nothing. A decoy that exists also answers with a RST and is not told apart
//! (it is then blocked like the scanner: its stack took part in the scan's handshakes).
//!
//! **Pure**; time is each packet's capture timestamp. Two fixed-size tables, allocated once,
//! nothing per packet:
//!
//! - the SYN+ACKs sent and not yet answered: a table keyed by a seeded hash of the 4-tuple, in
//!   buckets of [`WAYS`] slots, holding the sequence number the answering RST must carry. A full
//!   bucket evicts its oldest SYN+ACK, which then counts neither way (evidence missed, never
//!   invented);
//! - per source address, how many SYN+ACKs went unanswered for [`ANSWER_WITHIN`], how many a
//!   matching RST answered, which of this host's open ports they came from (a 64-bit mask of
//!   the ports modulo 64) and when the first one went out; in buckets of [`WAYS`] too, a full
//!   bucket giving way to the newcomer by its least recently active source.
//!
//! Buckets rather than one slot per hash: with one slot, two sources of one scan shared a slot
//! about once in a hundred scans (three sources in 256 slots), and the one evicted took its
//! evidence with it; with four, a scan's sources keep their records unless five of them hash
//! to one bucket.
//!
//! A source is a *likely decoy* ([`Decoys::verdict`]) when at least one SYN+ACK to it went
//! unanswered and none was answered, while another source, whose SYN+ACKs came from the same
//! ports within [`SAME_SCAN`] of its own, answered with RSTs: a decoy scan's sources probe
//! identical port sets within milliseconds.
//!
//! Why 2 s: a raw-socket scanner's kernel answers a SYN+ACK one round trip after it left; a
//! round trip over a geostationary satellite link is about 600 ms, across the world on fibre
//! under 400 ms. Linux retransmits an unanswered SYN+ACK after 1 s, and the retransmission is
//! the same connection here (kept, not counted twice).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Timestamp;
use crate::wire::{Packet, Shape, TcpFlags};

/// How long a SYN+ACK waits for its RST before it counts as unanswered.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How far apart the first SYN+ACKs of two sources of one decoy scan may be.
pub const SAME_SCAN: Duration = Duration::from_secs(1);
/// Sources remembered at most (a collision evicts the older).
pub const SOURCES: usize = 256;
/// Verdicts kept between two takes ([`Decoys::take_verdicts`]); more are dropped, counted.
pub const VERDICTS_MAX: usize = 64;
/// Slots in a bucket of either table: a record goes to any slot of its bucket.
pub const WAYS: usize = 4;
const _: () = assert!(SOURCES.is_multiple_of(WAYS));

/// Why a source is taken for a decoy: what the SYN+ACKs to it showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The likely decoy.
    pub decoy: IpAddr,
    /// How many SYN+ACKs to it went unanswered.
    pub unanswered: u8,
    /// The source of the same scan that answered its SYN+ACKs with RSTs.
    pub answered_by: IpAddr,
    /// When the verdict was reached.
    pub at: Timestamp,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "likely decoy: no answer to {} SYN+ACK{} while {} answered",
            self.unanswered,
            if self.unanswered == 1 { "" } else { "s" },
            self.answered_by
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The 4-tuple's fingerprint; 0 for an empty slot.
    fingerprint: u64,
    remote: IpAddr,
    local_port: u16,
    /// The sequence number the answering RST carries (the SYN+ACK's acknowledgment number).
    rst_seq: u32,
    at: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct Source {
    addr: Option<IpAddr>,
    first: Timestamp,
    last: Timestamp,
    ports: u64,
    answered: u8,
    unanswered: u8,
    /// The verdict reached, kept for a detection that comes after it.
    judged: Option<Verdict>,
}

impl Source {
    const EMPTY: Source = Source {
        addr: None,
        first: Timestamp::ZERO,
        last: Timestamp::ZERO,
        ports: 0,
        answered: 0,
        unanswered: 0,
        judged: None,
    };
}

/// The answers to this host's SYN+ACKs, per source, and the decoy verdicts they lead to.
#[derive(Debug)]
pub struct Decoys {
    pending: Box<[Pending]>,
    mask: u64,
    sources: Box<[Source]>,
    verdicts: Vec<Verdict>,
    dropped: u64,
    hasher: foldhash::fast::FixedState,
}

impl Decoys {
    /// Tables of `2^bits` pending SYN+ACKs (at least [`WAYS`], at most 2^20) and [`SOURCES`]
    /// sources; `seed` keys the hash, so that remote parties cannot aim collisions.
    pub fn new(bits: u8, seed: u64) -> Self {
        let len = (1usize << bits.min(20)).max(WAYS);
        Decoys {
            pending: vec![
                Pending {
                    fingerprint: 0,
                    remote: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    local_port: 0,
                    rst_seq: 0,
                    at: Timestamp::ZERO,
                };
                len
            ]
            .into_boxed_slice(),
            mask: (len as u64) - 1,
            sources: vec![Source::EMPTY; SOURCES].into_boxed_slice(),
            verdicts: Vec::with_capacity(VERDICTS_MAX),
            dropped: 0,
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    fn fingerprint(&self, remote: IpAddr, remote_port: u16, local: IpAddr, local_port: u16) -> u64 {
        self.hasher
            .hash_one((
                remote.to_canonical(),
                local.to_canonical(),
                remote_port,
                local_port,
            ))
            .max(1)
    }

    /// The first slot of the bucket of `fingerprint` in the pending table.
    fn bucket(&self, fingerprint: u64) -> usize {
        let i = usize::try_from(fingerprint & self.mask).expect("the mask fits the table length");
        i - i % WAYS
    }

    /// The slot of the SYN+ACK with `fingerprint`, if it is still pending.
    fn pending_slot(&self, fingerprint: u64) -> Option<usize> {
        let b = self.bucket(fingerprint);
        (b..b + WAYS).find(|&i| self.pending[i].fingerprint == fingerprint)
    }

    /// The first slot of the bucket of `addr` in the source table.
    fn source_bucket(&self, addr: IpAddr) -> usize {
        let i = usize::try_from(self.hasher.hash_one(addr.to_canonical()) % SOURCES as u64)
            .expect("SOURCES fits a usize");
        i - i % WAYS
    }

    /// The slot of `addr`'s record, if it has one.
    fn source_slot(&self, addr: IpAddr) -> Option<usize> {
        let b = self.source_bucket(addr);
        (b..b + WAYS).find(|&i| self.sources[i].addr == Some(addr))
    }

    /// The record of `addr`, made when `make` (in an empty slot of its bucket, else in place of
    /// the bucket's least recently active source).
    fn source(&mut self, addr: IpAddr, at: Timestamp, make: bool) -> Option<&mut Source> {
        if let Some(i) = self.source_slot(addr) {
            return Some(&mut self.sources[i]);
        }
        if !make {
            return None;
        }
        let b = self.source_bucket(addr);
        let i = (b..b + WAYS)
            .min_by_key(|&i| {
                let s = &self.sources[i];
                (s.addr.is_some(), s.last)
            })
            .expect("a bucket has slots");
        self.sources[i] = Source {
            addr: Some(addr),
            first: at,
            last: at,
            ..Source::EMPTY
        };
        Some(&mut self.sources[i])
    }

    /// A SYN+ACK this host sent (`syn_ack`, from a local address, at `at`; its other fields
    /// `shape`). A retransmission of one still waiting changes nothing.
    pub fn sent(&mut self, at: Timestamp, syn_ack: &Packet, shape: &Shape) {
        let fingerprint =
            self.fingerprint(syn_ack.dst, syn_ack.dst_port, syn_ack.src, syn_ack.src_port);
        if self.pending_slot(fingerprint).is_some() {
            return;
        }
        // An empty slot of the bucket, else its oldest SYN+ACK gives way.
        let b = self.bucket(fingerprint);
        let i = (b..b + WAYS)
            .min_by_key(|&i| {
                let slot = &self.pending[i];
                (slot.fingerprint != 0, slot.at)
            })
            .expect("a bucket has slots");
        self.pending[i] = Pending {
            fingerprint,
            remote: syn_ack.dst,
            local_port: syn_ack.src_port,
            rst_seq: shape.ack,
            at,
        };
        if let Some(s) = self.source(syn_ack.dst, at, true) {
            s.ports |= 1 << (syn_ack.src_port % 64);
            s.last = at;
        }
    }

    /// A packet to this host (its other fields `shape`): when it is a bare RST (no ACK)
    /// answering a SYN+ACK still waiting (the same 4-tuple, its sequence number the SYN+ACK's
    /// acknowledgment), that SYN+ACK is answered.
    pub fn arrived(&mut self, at: Timestamp, p: &Packet, shape: &Shape) {
        if p.tcp_flags
            .is_none_or(|f| f.bits() & 0x3f != TcpFlags::RST.bits())
        {
            return;
        }
        let fingerprint = self.fingerprint(p.src, p.src_port, p.dst, p.dst_port);
        let Some(i) = self.pending_slot(fingerprint) else {
            return;
        };
        let slot = self.pending[i];
        if slot.rst_seq != shape.seq || at.saturating_since(slot.at) > ANSWER_WITHIN {
            return;
        }
        self.pending[i].fingerprint = 0;
        if let Some(s) = self.source(p.src, at, false) {
            s.answered = s.answered.saturating_add(1);
        }
    }

    /// Counts the SYN+ACKs unanswered for [`ANSWER_WITHIN`] at `at`, then judges the sources
    /// they went to: the new verdicts are kept for [`Decoys::take_verdicts`]. Walks the whole
    /// table: call it once a second, not per packet.
    pub fn sweep(&mut self, at: Timestamp) {
        for i in 0..self.pending.len() {
            let slot = self.pending[i];
            if slot.fingerprint == 0 || at.saturating_since(slot.at) <= ANSWER_WITHIN {
                continue;
            }
            self.pending[i].fingerprint = 0;
            if let Some(s) = self.source(slot.remote, at, false)
                && s.ports & (1 << (slot.local_port % 64)) != 0
            {
                s.unanswered = s.unanswered.saturating_add(1);
            }
        }
        for i in 0..self.sources.len() {
            let Some(verdict) = self.verdict_of(i, at) else {
                continue;
            };
            self.sources[i].judged = Some(verdict);
            if self.verdicts.len() < VERDICTS_MAX {
                self.verdicts.push(verdict);
            } else {
                self.dropped += 1;
            }
        }
    }

    fn verdict_of(&self, i: usize, at: Timestamp) -> Option<Verdict> {
        let s = self.sources[i];
        let decoy = s.addr?;
        if s.judged.is_some() || s.unanswered == 0 || s.answered > 0 {
            return None;
        }
        let partner = self.sources.iter().find(|o| {
            o.addr.is_some_and(|a| a != decoy)
                && o.answered > 0
                && o.ports == s.ports
                && o.first
                    .saturating_since(s.first)
                    .max(s.first.saturating_since(o.first))
                    <= SAME_SCAN
        })?;
        Some(Verdict {
            decoy,
            unanswered: s.unanswered,
            answered_by: partner.addr?,
            at,
        })
    }

    /// The verdict reached on `addr`, if any (and its record was not evicted since): for a
    /// detection that comes after its verdict.
    pub fn verdict(&self, addr: IpAddr) -> Option<Verdict> {
        self.sources[self.source_slot(addr)?].judged
    }

    /// The verdicts reached since the last take, and how many found no room since start.
    pub fn take_verdicts(&mut self) -> (Vec<Verdict>, u64) {
        (std::mem::take(&mut self.verdicts), self.dropped)
    }
}

#[cfg(test)]
mod tests;
