//! The control protocol between `sentryctl` and `sentryd`: one JSON request, one JSON response,
//! each framed by a 4-byte big-endian length and capped at [`MAX_MESSAGE`]. **Pure.**
//!
//! Both sides carry [`VERSION`]; a daemon answers a request of another version with
//! [`Response::Error`] saying which versions are involved, so an upgrade never turns into a
//! misread message.

use std::io::{self, Read, Write};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The protocol version both sides speak.
pub const VERSION: u32 = 1;

/// The largest message either side accepts: 64 KiB (a `list` of the whole block set is
/// sent in pages of at most [`LIST_PAGE`] blocks, see [`Request::List`]).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Blocks per `list` answer at most (a page of the largest blocks, with the longest ports and
/// fleet origin and signature, fits in [`MAX_MESSAGE`]: a unit test says so).
pub const LIST_PAGE: usize = 50;
/// Ports per block in a `list` or `why` answer at most (the rest are left out), so that a page
/// always fits in [`MAX_MESSAGE`].
pub const LIST_PORTS: usize = 64;

/// A request, with the version of the protocol it is written in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// [`VERSION`] of the sender.
    pub version: u32,
    /// The message.
    #[serde(flatten)]
    pub body: T,
}

/// What `sentryctl` asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Counters and state.
    Status,
    /// Active blocks, from `offset`, at most `limit` of them.
    List {
        /// Where to start.
        offset: usize,
        /// How many at most.
        limit: usize,
    },
    /// Block an address or network by hand.
    Block {
        /// What to block.
        net: IpNet,
        /// For how many seconds (the configured duration if absent).
        seconds: Option<u64>,
    },
    /// Lift a block.
    Unblock {
        /// The block to lift.
        net: IpNet,
        /// Seconds during which the address is not blocked again (a short allow).
        grace: Option<u64>,
        /// Only on this host: the fleet is not asked to lift it too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        local: bool,
    },
    /// Lift every block: the daemon's, and every element of its sets in the kernel.
    UnblockAll,
    /// Why an address is blocked, or never blocked.
    Why {
        /// The address.
        addr: IpAddr,
    },
    /// The never-block list (`"ignore"`, its name before, still understood).
    #[serde(alias = "ignore")]
    NeverBlock,
    /// Reload the configuration.
    Reload,
    /// The counters, and the sources scoring highest now: `sentryctl top`.
    Top {
        /// How many sources at most (no more than [`TOP_MAX`] are given).
        limit: usize,
    },
}

/// The most sources a `top` answer holds (each a few hundred bytes: well within
/// [`MAX_MESSAGE`]).
pub const TOP_MAX: usize = 50;

/// A source being counted, as `top` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedInfo {
    /// The address, or its prefix when sources are counted per prefix.
    pub source: IpNet,
    /// Its score in the window ([`Response::Top`]'s `threshold` makes a scanner).
    pub score: u64,
    /// Distinct trap ports in the window.
    pub ports: usize,
    /// The kinds of its probes (`syn`, `syn+udp`).
    pub kinds: String,
    /// Probes counted from it.
    pub probes: u64,
    /// Seconds since its last probe.
    pub idle: u64,
}

/// A block as `list` and `why` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// The blocked address or network.
    pub net: IpNet,
    /// The scan kinds (`syn+fin`), or `manual` for `sentryctl block`.
    pub kind: String,
    /// The host of the fleet that detected it, for a block taken from the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The trap ports of the detection (`22/tcp`), possibly empty.
    pub ports: Vec<String>,
    /// When it was blocked (RFC 3339).
    pub blocked_at: String,
    /// Seconds left.
    pub remaining: u64,
    /// Which offence of this source it is.
    pub offence: u32,
    /// Where the block is held: the kernel's sets are read for `list` and `why`.
    #[serde(default, skip_serializing_if = "Held::is_both")]
    pub held: Held,
    /// The tool the probes looked like (`nmap OS detection (SEQ1, SEQ2, SEQ3)`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Where a block is held, as `list` and `why` found it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Held {
    /// In the kernel, and known to the daemon (or a dry run: no kernel to look at).
    #[default]
    Both,
    /// In the kernel only: added by someone else (`nft add element`), perhaps with no timeout.
    KernelOnly,
    /// Known to the daemon only: the kernel lost it, and it is not put back yet.
    DaemonOnly,
    /// Imagined by a dry run (`[respond] dry-run = true`): held nowhere, never put in the
    /// kernel, not saved, dropped when the dry run ends.
    DryRun,
}

impl Held {
    fn is_both(&self) -> bool {
        *self == Held::Both
    }
}

/// A never-block entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeverBlockInfo {
    /// The address or network.
    pub net: IpNet,
    /// Why it is on the list.
    pub reason: String,
}

/// Counters and state for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// `enforcing` or `dry-run`.
    pub mode: String,
    /// `own` or `attach` (nftables), or `route`.
    pub firewall: String,
    /// Seconds since start.
    pub uptime: u64,
    /// Frames captured.
    pub packets: u64,
    /// Probes counted.
    pub probes: u64,
    /// Detections.
    pub detections: u64,
    /// Blocks active: the elements the kernel holds in our block sets (in a dry run, or when
    /// they cannot be read, the blocks in force the daemon knows).
    pub blocks_active: usize,
    /// Of `blocks_active`, the elements the daemon did not make (added with `nft`, or of an
    /// owner it does not know).
    #[serde(default)]
    pub blocks_kernel_only: usize,
    /// Blocks a dry run would have made and that would be in force now: kept apart from
    /// `blocks_active`, in no kernel and no state file (0 when enforcing).
    #[serde(default)]
    pub would_block: usize,
    /// `max-blocks`.
    pub max_blocks: usize,
    /// Detections refused by the budget.
    pub refused: u64,
    /// Detections refused by the rate budget that wait for it now.
    #[serde(default)]
    pub waiting: usize,
    /// Frames the kernel dropped before capture.
    pub capture_drops: u64,
    /// Of the last (up to 1,024) blocks: the median time from the capture of the probe that
    /// made the detection to the kernel's acknowledgement of the block, microseconds.
    pub block_latency_p50_us: u64,
    /// The same, 99th percentile.
    pub block_latency_p99_us: u64,
    /// How many blocks those figures are of.
    pub block_latency_samples: usize,
    /// Where the configuration came from.
    pub config: String,
    /// Detections not blocked, by the rule that kept each from a block (`reverse-path`,
    /// `protected`, `min-ports`, `budget`, `never-block`, `grace`), and probes not counted
    /// from sources no scanner can have (`unroutable-source`) or with a wrong checksum
    /// (`bad-checksum`).
    #[serde(default)]
    pub not_blocked: std::collections::BTreeMap<String, u64>,
    /// Addresses that `[respond] protect = "established"` keeps from automatic blocks: those
    /// with an established connection to this host as last read (once a second), and those
    /// of sessions of a minute or more that ended within `protect-for`.
    #[serde(default)]
    pub protected_peers: usize,
    /// The link to the fleet, when fleet mode is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetInfo>,
    /// The kernel's first line, when the firewall keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_line: Option<FirstLineInfo>,
    /// IP fragments since start, by what became of their datagrams ([`crate::pipeline::FRAGMENT_OUTCOMES`]):
    /// `reassembled` whole, `tiny` (a first fragment that cut the TCP header), `overlapping`
    /// (discarded), `timed-out`, `dropped` (for a bound of the reassembler). Only those not 0.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fragments: std::collections::BTreeMap<String, u64>,
    /// Evidence beyond trap ports since start ([`crate::pipeline::EVIDENCE_KINDS`]): probes
    /// recognised as a known tool's (`tool-fingerprint`), nmap service probes
    /// (`version-probe`), sources named likely decoys (`decoy-verdict`). Only those not 0.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub evidence: std::collections::BTreeMap<String, u64>,
}

/// The link to the fleet's NATS servers, as `status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetInfo {
    /// This host's name in the fleet.
    pub host: String,
    /// Connected to a server now.
    pub connected: bool,
    /// The server connected to, or last tried.
    pub server: String,
    /// Hosts heard from in the last [`crate::fleet::MEMBER_FOR`] (this one included).
    pub members: usize,
    /// The last round trip to the server, microseconds (measured every few seconds).
    pub round_trip_us: Option<u64>,
    /// Messages waiting to be sent.
    pub queued: usize,
    /// Messages dropped since start: this host's, from a full queue (the oldest first), and
    /// the others', past the bound of those waiting for the main loop.
    pub dropped: u64,
    /// Messages sent since start.
    pub sent: u64,
    /// Messages received from other hosts since start.
    pub received: u64,
    /// Blocks taken from other hosts since start.
    pub taken: u64,
    /// Blocks from other hosts (and sweeps counted from their summaries) refused since start,
    /// and their unblocks not carried out, by the rule that refused each (issue 24's rules:
    /// `floor`, `space-cap`, `member`, `reverse-path`, `share`, `held-cap`, `shorter`, `unblock-cap`,
    /// `not-its-block`, with `never-block`, `protected`, `rate-cap`, `ended`, `unblocked`,
    /// `grace`, `budget`).
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Probe summaries sent since start.
    #[serde(default)]
    pub probes_sent: u64,
    /// Probes not checked nor told, past the rate a host may check and send, since start.
    #[serde(default)]
    pub probes_dropped: u64,
    /// Probes not told to the fleet (nor counted here) since start, by the local check that
    /// refused each (`reverse-path`, `protected`, `unchecked`: this host could not check the
    /// source), and the other hosts' summaries not counted, their senders not having verified
    /// them (`unverified`).
    #[serde(default)]
    pub probes_refused: std::collections::BTreeMap<String, u64>,
    /// Sweeps this host found for the scanner prefixes it owns, since start.
    #[serde(default)]
    pub sweeps: u64,
    /// Messages from other hosts the link dropped since start, by why (`too large`, `over its
    /// origin's cap`, `invalid`, `queue full`, `bad bucket entry`); counted in `dropped` too.
    #[serde(default)]
    pub dropped_in: std::collections::BTreeMap<String, u64>,
    /// Why the bucket of active blocks is not used (catch-up off), when it is not.
    #[serde(default)]
    pub bucket_refused: Option<String>,
}

/// A detection that was not blocked, as `why` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalInfo {
    /// When (RFC 3339).
    pub at: String,
    /// The rule that kept it from a block (as in [`StatusInfo::not_blocked`]).
    pub rule: String,
    /// The daemon's log line for it.
    pub line: String,
}

/// A hold of the kernel's first line, as `why` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldInfo {
    /// When the kernel reported it (RFC 3339).
    pub held_at: String,
    /// The probe that crossed the kernel's threshold, as `902/tcp`.
    pub probe: String,
    /// How long the hold lasts.
    pub hold_s: u64,
    /// The time the kernel says it has left (none once ended or lifted).
    pub remaining_s: Option<u64>,
    /// What the daemon made of it (`blocked`, `lifted-…`, `ended`); none while it waits.
    pub outcome: Option<String>,
    /// The whole story in one line: `held by the kernel's first line for 5s after a probe to
    /// 902/tcp (3s left); …`.
    pub line: String,
}

/// The kernel's first line, as `status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstLineInfo {
    /// Holds in force now (the kernel's hold sets).
    pub holds_active: usize,
    /// Holds since start, by what became of them (`blocked`, `lifted-never-block`,
    /// `lifted-own-address`, `lifted-protected`, `lifted-budget`, `lifted-listener`, `ended`,
    /// `untracked`).
    pub holds: std::collections::BTreeMap<String, u64>,
    /// Probes the kernel did not count because its pairs or score sets were full.
    pub score_full: u64,
    /// Holds the kernel did not make because its hold sets were full.
    pub hold_full: u64,
}

/// What `sentryd` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// For `status`.
    Status(StatusInfo),
    /// For `list`: a page of blocks, and how many there are in all.
    Blocks {
        /// This page.
        blocks: Vec<BlockInfo>,
        /// All active blocks.
        total: usize,
    },
    /// `block` done.
    Blocked {
        /// What was blocked.
        net: IpNet,
        /// For how many seconds.
        seconds: u64,
        /// The daemon runs a dry run: nothing was blocked, it would have been.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
    },
    /// `unblock` done.
    Unblocked {
        /// What was unblocked.
        net: IpNet,
        /// The blocks lifted to unblock it, when other than `net` itself: a network that held
        /// the address.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lifted: Vec<IpNet>,
        /// The daemon runs a dry run: nothing was in the firewall to lift.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
        /// The fleet was asked to lift it too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fleet: bool,
        /// The fleet's host that made the block lifted here, when another made it: the other
        /// hosts keep it until that host lifts it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    /// `unblock --all` done.
    UnblockedAll {
        /// How many blocks were lifted.
        count: usize,
        /// The daemon runs a dry run: nothing was in the firewall to lift.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
    },
    /// `unblock` of something that was not blocked (here).
    NotBlocked {
        /// What was asked.
        net: IpNet,
        /// The fleet was asked to lift it all the same.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fleet: bool,
    },
    /// For `why`.
    Why {
        /// The address asked about.
        addr: IpAddr,
        /// The block that covers it, if any.
        block: Option<BlockInfo>,
        /// The never-block entries that cover it.
        never_block: Vec<NeverBlockInfo>,
        /// Its last detection that was not blocked, and why (of the last 1,024 such sources).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<RefusalInfo>,
        /// The kernel's first line's last hold of it, and what the daemon made of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_line: Option<HoldInfo>,
    },
    /// For `never-block`.
    #[serde(alias = "ignore")]
    NeverBlock {
        /// The never-block list.
        entries: Vec<NeverBlockInfo>,
    },
    /// For `top`.
    Top {
        /// The counters.
        status: StatusInfo,
        /// The score that makes a scanner (`[detect] threshold`).
        threshold: u64,
        /// The sources scoring highest now, highest first.
        watching: Vec<WatchedInfo>,
    },
    /// `reload` done.
    Reloaded {
        /// Where the configuration came from.
        config: String,
    },
    /// The request failed; `message` says why, in one line.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced more than [`MAX_MESSAGE`] bytes.
    #[error("message of {0} bytes is larger than the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    /// Not the JSON of a known message.
    #[error("malformed message")]
    Malformed(#[source] serde_json::Error),
    /// The connection failed or closed early.
    #[error("connection failed")]
    Io(#[from] io::Error),
}

/// Writes one framed message.
///
/// # Errors
///
/// When the message is too large or the write fails.
pub fn write_message<T: Serialize>(w: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(message).map_err(FrameError::Malformed)?;
    if body.len() > MAX_MESSAGE {
        return Err(FrameError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).expect("bounded by MAX_MESSAGE");
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()?;
    Ok(())
}

/// Reads one framed message; never allocates more than [`MAX_MESSAGE`].
///
/// # Errors
///
/// When the frame is too large, malformed, or the read fails.
pub fn read_message<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(FrameError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(m: T) {
        let mut buf = Vec::new();
        write_message(&mut buf, &m).unwrap();
        let back: T = read_message(&mut buf.as_slice()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn write_then_read_is_identity() {
        for body in [
            Request::Status,
            Request::List {
                offset: 5,
                limit: 100,
            },
            Request::Block {
                net: "203.0.113.0/24".parse().unwrap(),
                seconds: Some(60),
            },
            Request::Unblock {
                net: "2001:db8::1/128".parse().unwrap(),
                grace: None,
                local: false,
            },
            Request::Why {
                addr: "198.51.100.7".parse().unwrap(),
            },
            Request::NeverBlock,
            Request::UnblockAll,
            Request::Reload,
        ] {
            round_trip(Envelope {
                version: VERSION,
                body,
            });
        }
        round_trip(Envelope {
            version: VERSION,
            body: Response::Error {
                message: "x".into(),
            },
        });
    }

    #[test]
    fn the_wire_format_is_pinned() {
        let mut buf = Vec::new();
        let req = Envelope {
            version: 1,
            body: Request::Unblock {
                net: "203.0.113.7/32".parse().unwrap(),
                grace: Some(30),
                local: false,
            },
        };
        write_message(&mut buf, &req).unwrap();
        let json = r#"{"version":1,"cmd":"unblock","net":"203.0.113.7/32","grace":30}"#;
        assert_eq!(&buf[..4], &u32::try_from(json.len()).unwrap().to_be_bytes());
        assert_eq!(std::str::from_utf8(&buf[4..]).unwrap(), json);

        let resp = Envelope {
            version: 1,
            body: Response::NotBlocked {
                net: "203.0.113.7/32".parse().unwrap(),
                fleet: false,
            },
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"version":1,"result":"not-blocked","net":"203.0.113.7/32"}"#
        );
    }

    #[test]
    fn a_full_page_of_the_largest_blocks_fits_in_a_message() {
        let block = BlockInfo {
            net: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128"
                .parse()
                .unwrap(),
            kind: "syn+fin+null+xmas+maimon+odd-flags+udp+ack".into(),
            ports: vec!["65535/tcp".into(); LIST_PORTS],
            blocked_at: "2026-11-21T23:51:47.731914Z".into(),
            remaining: u64::MAX,
            offence: u32::MAX,
            held: Held::DaemonOnly,
            // The longest a restored state file may hold (state.rs, MAX_SIGNATURE).
            signature: Some("s".repeat(crate::state::MAX_SIGNATURE)),
            origin: Some("a".repeat(64)),
        };
        let page = Envelope {
            version: VERSION,
            body: Response::Blocks {
                blocks: vec![block; LIST_PAGE],
                total: usize::MAX,
            },
        };
        let mut buf = Vec::new();
        write_message(&mut buf, &page).expect("a full page fits");
        assert!(buf.len() <= MAX_MESSAGE + 4);
    }

    #[test]
    fn an_oversized_frame_is_refused_before_reading_it() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(u32::MAX).to_be_bytes());
        let err = read_message::<Envelope<Request>>(&mut buf.as_slice()).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)), "{err}");
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&5u32.to_be_bytes());
        buf.extend_from_slice(b"hello");
        assert!(matches!(
            read_message::<Envelope<Request>>(&mut buf.as_slice()),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            read_message::<Envelope<Request>>(&mut &buf[..6]),
            Err(FrameError::Io(_))
        ));
        let unknown = br#"{"version":1,"cmd":"format-disk"}"#;
        let mut framed = u32::try_from(unknown.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(unknown);
        assert!(matches!(
            read_message::<Envelope<Request>>(&mut framed.as_slice()),
            Err(FrameError::Malformed(_))
        ));
    }
}
