//! What hosts of a fleet say to each other over NATS: versioned JSON messages, each checked on
//! arrival like a control request — a size limit, the version, and every field's shape — before
//! anything acts on it. **Pure.**
//!
//! A message names its origin host; the subject it travels on names it too
//! (`PREFIX.block.HOST`, see [`Subject`]), and NATS's per-host permissions let a host publish
//! only under its own name, so a receiver checks that the two agree.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The version of the fleet's messages this build writes and reads.
pub const VERSION: u32 = 1;

/// The largest message a host sends or accepts: 64 KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Ports in a block's summary at most (the rest are left out).
pub const MAX_PORTS: usize = 64;

/// Probe summaries in one batch at most.
pub const MAX_PROBES: usize = 256;

/// Addresses a heartbeat claims for its host at most.
pub const MAX_ADDRESSES: usize = 16;

/// A host's name in the fleet: 1 to 64 ASCII letters, digits, `-` and `_` (it is one token of a
/// NATS subject, so no `.`, `*`, `>` or space). Only [`HostName::new`] makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostName(String);

impl HostName {
    /// `name`, if it can be a subject token.
    ///
    /// # Errors
    ///
    /// A message that says what is wrong with it.
    pub fn new(name: &str) -> Result<Self, String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(HostName(name.to_string()))
        } else {
            Err(format!(
                "host name {name:?}: 1 to 64 letters, digits, '-' or '_' (it is a token of a \
                 NATS subject)"
            ))
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HostName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        HostName::new(&name)
    }
}

impl From<HostName> for String {
    fn from(name: HostName) -> String {
        name.0
    }
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message, with its version and its origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// [`VERSION`] of the sender.
    pub version: u32,
    /// The host that sent it.
    pub origin: HostName,
    /// What it says.
    pub body: Body,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Body {
    /// The origin blocked `net` until `until`.
    Block {
        /// What it blocked.
        net: IpNet,
        /// The scan kinds (`syn`, `syn+udp`), or `manual`, or `sweep`.
        kind: String,
        /// The trap ports (`22/tcp`), at most [`MAX_PORTS`].
        ports: Vec<String>,
        /// When it was detected (wall clock, RFC 3339 in JSON).
        at: Timestamp,
        /// When the block ends (wall clock): each receiver blocks for what is left.
        until: Timestamp,
    },
    /// The origin's administrator lifted the block of `net` fleet-wide.
    Unblock {
        /// What to lift.
        net: IpNet,
        /// When.
        at: Timestamp,
    },
    /// Deduplicated probes the origin saw, for the owner of each scanner prefix to count.
    Probes {
        /// At most [`MAX_PROBES`].
        probes: Vec<ProbeSummary>,
    },
    /// The origin is alive (members are those heard from lately).
    Heartbeat {
        /// When it was sent.
        at: Timestamp,
        /// The origin's own routable addresses (host prefixes, at most [`MAX_ADDRESSES`]): no
        /// fleet block of them is taken while it is heard from. Absent from an older sender.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        addresses: Vec<IpNet>,
    },
}

/// One (scanner, port) a host saw probed, once per window, and the local checks it passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSummary {
    /// The scanner's prefix, as the detector counts it (an address, or an IPv6 /64).
    pub source: IpNet,
    /// The probed port and protocol, `22/tcp`.
    pub port: String,
    /// The probe's kind (`syn`, `fin`, …).
    pub kind: String,
    /// When it was first seen.
    pub at: Timestamp,
    /// The local checks the reporting host made of the probe, and it passed, in this order
    /// and each once (at most [`MAX_CHECKS`]). A summary without [`Check::ReversePath`] or
    /// [`Check::RouteBack`] is one its sender could not verify (an older version, or its
    /// reverse-path check off): the owner of the count does not count it.
    #[serde(default)]
    pub checked: Vec<Check>,
}

/// A local check a host made of a probe before it summarised it ([`ProbeSummary::checked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The strict reverse-path check: the route back to the source leaves by the interface
    /// the probe came in on.
    ReversePath,
    /// The loose reverse-path check: there is a route back to the source at all.
    RouteBack,
    /// The protected peers: the source was in no conversation with the host.
    Peers,
}

/// Checks in a summary at most (each once).
pub const MAX_CHECKS: usize = 3;

impl Check {
    /// Whether `checked` says the source passed a reverse-path check (strict or loose).
    pub fn reverse_path(checked: &[Check]) -> bool {
        checked
            .iter()
            .any(|c| matches!(c, Check::ReversePath | Check::RouteBack))
    }
}

/// Why a message was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// Larger than [`MAX_MESSAGE`].
    #[error("message of {0} bytes is larger than the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    /// Not a message of this schema.
    #[error("not a fleet message: {0}")]
    Malformed(String),
    /// Of another version.
    #[error("fleet message version {0}, this host speaks {VERSION}")]
    Version(u32),
    /// A field out of its bounds.
    #[error("fleet message from {origin}: {what}")]
    Invalid {
        /// Its origin.
        origin: String,
        /// What is wrong.
        what: String,
    },
    /// The subject names another host than the message.
    #[error("fleet message from {origin} on the subject of {subject}")]
    NotItsSubject {
        /// The origin the message claims.
        origin: String,
        /// The host its subject names.
        subject: String,
    },
}

impl Message {
    /// A message of this version from `origin`.
    pub fn new(origin: HostName, body: Body) -> Self {
        Message {
            version: VERSION,
            origin,
            body,
        }
    }

    /// As sent.
    ///
    /// # Errors
    ///
    /// [`MessageError::TooLarge`] (a batch or a summary past its bounds is never built, so
    /// this is the last line of defence), or a field out of its bounds.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        self.check()?;
        let bytes = serde_json::to_vec(self).expect("fleet messages serialize");
        if bytes.len() > MAX_MESSAGE {
            return Err(MessageError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// A message as received on `subject`'s host token: size, schema, version, bounds, and the
    /// origin the subject names, in that order; nothing is parsed past the size limit.
    ///
    /// # Errors
    ///
    /// What was wrong, first found first.
    pub fn decode(bytes: &[u8], subject_host: &str) -> Result<Message, MessageError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(MessageError::TooLarge(bytes.len()));
        }
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if versioned.version != VERSION {
            return Err(MessageError::Version(versioned.version));
        }
        let message: Message =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        message.check()?;
        if message.origin.as_str() != subject_host {
            return Err(MessageError::NotItsSubject {
                origin: message.origin.to_string(),
                subject: subject_host.to_string(),
            });
        }
        Ok(message)
    }

    /// Every field within its bounds.
    fn check(&self) -> Result<(), MessageError> {
        let checked = match &self.body {
            Body::Block {
                net,
                kind,
                ports,
                at,
                until,
            } => check_block(*net, kind, ports, *at, *until),
            Body::Unblock { net, .. } if *net != net.trunc() => {
                Err(format!("unblock of {net}: host bits set"))
            }
            Body::Unblock { .. } => Ok(()),
            Body::Probes { probes } => check_probes(probes),
            Body::Heartbeat { addresses, .. } => check_heartbeat(addresses),
        };
        checked.map_err(|what| MessageError::Invalid {
            origin: self.origin.to_string(),
            what,
        })
    }
}

/// A port written one way only (`22/tcp`, `38412/sctp`, `47/ip`; not `022/tcp`, `+22/tcp`,
/// `300/ip`): each way would be another key in the owner's sweep count, as long as the message
/// allows.
fn canonical_port(p: &str) -> bool {
    crate::wire::Proto::parse_label(p).is_some_and(|(proto, port)| proto.label(port) == p)
}

/// The longest scan kind a message may carry: every kind the detector names, joined, with
/// room for those to come (issue 28's made the fourteen of them 120 bytes, past the 64 allowed
/// before).
pub const MAX_KIND_LEN: usize = 256;

/// A scan kind as the detector names it: `syn`, `odd-flags`, `syn+udp`; `manual`.
fn scan_word(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= MAX_KIND_LEN
        && w.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'+' || b == b'-')
}

/// A block's fields; what is wrong, if anything.
fn check_block(
    net: IpNet,
    kind: &str,
    ports: &[String],
    at: Timestamp,
    until: Timestamp,
) -> Result<(), String> {
    if net != net.trunc() {
        return Err(format!("block of {net}: host bits set"));
    }
    if !scan_word(kind) {
        return Err(format!("block of {net}: kind {kind:?}"));
    }
    if ports.len() > MAX_PORTS {
        return Err(format!(
            "block of {net}: {} ports, at most {MAX_PORTS}",
            ports.len()
        ));
    }
    if let Some(bad) = ports.iter().find(|p| !canonical_port(p)) {
        return Err(format!("block of {net}: port {bad:?}"));
    }
    if until <= at {
        return Err(format!("block of {net}: ends before it began"));
    }
    Ok(())
}

/// Probe summaries: their count, and each one's fields.
fn check_probes(probes: &[ProbeSummary]) -> Result<(), String> {
    if probes.len() > MAX_PROBES {
        return Err(format!(
            "{} probe summaries, at most {MAX_PROBES}",
            probes.len()
        ));
    }
    for p in probes {
        // Each check once, in order: a bounded field, and one way to write it.
        let checks_ok = p.checked.len() <= MAX_CHECKS && p.checked.windows(2).all(|w| w[0] < w[1]);
        if p.source != p.source.trunc()
            || !canonical_port(&p.port)
            || !scan_word(&p.kind)
            || !checks_ok
        {
            return Err(format!("probe summary {p:?}"));
        }
    }
    Ok(())
}

/// A heartbeat's addresses: their count, each one address, none the floor refuses.
fn check_heartbeat(addresses: &[IpNet]) -> Result<(), String> {
    if addresses.len() > MAX_ADDRESSES {
        return Err(format!(
            "heartbeat with {} addresses, at most {MAX_ADDRESSES}",
            addresses.len()
        ));
    }
    for a in addresses {
        if a.prefix_len() != a.max_prefix_len() {
            return Err(format!("heartbeat address {a}: not one address"));
        }
        if let Some(why) = super::floor::refuses(a, false) {
            return Err(format!("heartbeat address {a}: {why}"));
        }
    }
    Ok(())
}

/// The subjects of a fleet: `PREFIX.KIND.HOST` for what every host hears (KIND `block`,
/// `unblock`, `heartbeat`), and `PREFIX.probes.HOST.OWNER` for probe summaries, which go to the
/// owner of their sweep count only (so a flood of them crosses the bus once, not once per
/// member). A host publishes only under its own name (NATS permissions say so); it subscribes to
/// `PREFIX.*.*` and `PREFIX.probes.*.ITSELF`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The kind of message.
    pub kind: &'static str,
    /// The host it is from.
    pub host: String,
    /// The host it is for (probe summaries), when not for all.
    pub to: Option<String>,
}

impl Subject {
    /// The subject `body` from `host` travels on, under `prefix`: to `to` only, for probe
    /// summaries (`None` for the others, which are for every host).
    pub fn of(prefix: &str, host: &HostName, body: &Body, to: Option<&HostName>) -> String {
        let kind = match body {
            Body::Block { .. } => "block",
            Body::Unblock { .. } => "unblock",
            Body::Probes { .. } => "probes",
            Body::Heartbeat { .. } => "heartbeat",
        };
        match to {
            Some(to) => format!("{prefix}.{kind}.{host}.{to}"),
            None => format!("{prefix}.{kind}.{host}"),
        }
    }

    /// A received subject under `prefix`, or `None` when it is not one of the fleet's.
    pub fn parse(prefix: &str, subject: &str) -> Option<Subject> {
        let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
        let (kind, rest) = rest.split_once('.')?;
        let kind = ["block", "unblock", "probes", "heartbeat"]
            .into_iter()
            .find(|k| *k == kind)?;
        let (host, to) = match rest.split_once('.') {
            Some((host, to)) if kind == "probes" => (host, Some(to)),
            Some(_) => return None,
            None => (rest, None),
        };
        HostName::new(host).ok()?;
        if let Some(to) = to {
            HostName::new(to).ok()?;
        }
        Some(Subject {
            kind,
            host: host.to_string(),
            to: to.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostName {
        HostName::new(name).unwrap()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    fn block(net: &str) -> Message {
        Message::new(
            host("web-3"),
            Body::Block {
                net: net.parse().unwrap(),
                kind: "syn".into(),
                ports: vec!["22/tcp".into(), "53/udp".into()],
                at: at(1_790_000_000),
                until: at(1_790_003_600),
            },
        )
    }

    /// Every kind a detection can have is a kind a message can carry (`odd-flags` was refused
    /// by an earlier check, and such a block never left its host).
    #[test]
    fn every_scan_kind_the_detector_names_can_be_sent() {
        use crate::detect::ScanKinds;
        use crate::wire::{ProbeKind, TcpFlags};
        let mut all = ScanKinds::default();
        for kind in [
            ProbeKind::Syn,
            ProbeKind::Fin,
            ProbeKind::Null,
            ProbeKind::Xmas,
            ProbeKind::Maimon,
            ProbeKind::Odd(TcpFlags::SYN),
            ProbeKind::Ack,
            ProbeKind::Udp,
            ProbeKind::TinyFragment,
            ProbeKind::FragmentOverlap,
        ] {
            all.insert(ScanKinds::of(kind));
        }
        let mut m = block("203.0.113.7/32");
        let Body::Block { kind, .. } = &mut m.body else {
            unreachable!()
        };
        *kind = all.to_string();
        assert!(kind.contains("odd-flags"), "{kind}");
        let bytes = m.encode().unwrap();
        assert_eq!(Message::decode(&bytes, "web-3").unwrap(), m);
        // Still bounded: one byte past the longest allowed is refused.
        if let Body::Block { kind, .. } = &mut m.body {
            *kind = "s".repeat(MAX_KIND_LEN + 1);
        }
        assert!(m.encode().is_err());
    }

    #[test]
    fn a_block_goes_out_and_comes_back_the_same() {
        let m = block("203.0.113.7/32");
        let bytes = m.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"type\":\"block\""), "{text}");
        assert!(text.contains("\"origin\":\"web-3\""), "{text}");
        assert_eq!(Message::decode(&bytes, "web-3").unwrap(), m);
        assert_eq!(
            Subject::of("scansentry", &m.origin, &m.body, None),
            "scansentry.block.web-3"
        );
        assert_eq!(
            Subject::parse("scansentry", "scansentry.block.web-3"),
            Some(Subject {
                kind: "block",
                host: "web-3".into(),
                to: None,
            })
        );
        // Probe summaries go to their owner.
        let probes = Body::Probes { probes: Vec::new() };
        assert_eq!(
            Subject::of("scansentry", &m.origin, &probes, Some(&host("web-9"))),
            "scansentry.probes.web-3.web-9"
        );
        assert_eq!(
            Subject::parse("scansentry", "scansentry.probes.web-3.web-9"),
            Some(Subject {
                kind: "probes",
                host: "web-3".into(),
                to: Some("web-9".into()),
            })
        );
    }

    #[test]
    fn what_a_host_cannot_send_is_refused_with_the_reason() {
        let ok = block("203.0.113.7/32").encode().unwrap();
        // Another host's subject: a host may publish only as itself.
        assert!(matches!(
            Message::decode(&ok, "db-1"),
            Err(MessageError::NotItsSubject { .. })
        ));
        // Too large, before any parsing.
        assert_eq!(
            Message::decode(&vec![b' '; MAX_MESSAGE + 1], "web-3"),
            Err(MessageError::TooLarge(MAX_MESSAGE + 1))
        );
        // Another version.
        let v2 = String::from_utf8(ok.clone())
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        assert_eq!(
            Message::decode(v2.as_bytes(), "web-3"),
            Err(MessageError::Version(2))
        );
        // Unknown fields, bad host names, host bits, ports and durations.
        for (from, to) in [
            ("\"kind\":\"syn\"", "\"kind\":\"syn\",\"extra\":1"),
            ("\"origin\":\"web-3\"", "\"origin\":\"web.3\""),
            ("203.0.113.7/32", "203.0.113.7/24"),
            ("\"22/tcp\"", "\"22/icmp\""),
            ("\"kind\":\"syn\"", "\"kind\":\"SYN; rm\""),
        ] {
            let bad = String::from_utf8(ok.clone()).unwrap().replace(from, to);
            assert!(
                Message::decode(bad.as_bytes(), "web-3").is_err(),
                "{to} was taken"
            );
        }
        let backwards = Message::new(
            host("web-3"),
            Body::Block {
                net: "203.0.113.7/32".parse().unwrap(),
                kind: "syn".into(),
                ports: vec![],
                at: at(10),
                until: at(10),
            },
        );
        assert!(backwards.encode().is_err());
        let many = Message::new(
            host("web-3"),
            Body::Probes {
                probes: vec![
                    ProbeSummary {
                        source: "203.0.113.7/32".parse().unwrap(),
                        port: "22/tcp".into(),
                        kind: "syn".into(),
                        at: at(1),
                        checked: vec![Check::ReversePath, Check::Peers],
                    };
                    MAX_PROBES + 1
                ],
            },
        );
        assert!(matches!(many.encode(), Err(MessageError::Invalid { .. })));
        // Issue 24 (red team): a port written one way only. `u16` reads "023", "+23" and
        // sixty thousand zeros before 23 alike; each is another key in the owner's sweep
        // count, and the last holds 60 KB a pair there.
        let summary = |port: &str| {
            Message::new(
                host("web-3"),
                Body::Probes {
                    probes: vec![ProbeSummary {
                        source: "203.0.113.7/32".parse().unwrap(),
                        port: port.into(),
                        kind: "syn".into(),
                        at: at(1),
                        checked: vec![Check::ReversePath, Check::Peers],
                    }],
                },
            )
        };
        let zeros = format!("{}23/tcp", "0".repeat(60_000));
        for port in ["023/tcp", "+23/tcp", "00000/udp", zeros.as_str()] {
            assert!(
                matches!(summary(port).encode(), Err(MessageError::Invalid { .. })),
                "{:.20} was taken",
                port
            );
        }
        assert!(summary("0/udp").encode().is_ok());
        assert!(summary("65535/tcp").encode().is_ok());
        // Issue 28: SCTP ports and IP protocol numbers travel as their labels, one way each.
        assert!(summary("38412/sctp").encode().is_ok());
        assert!(summary("47/ip").encode().is_ok());
        for port in ["047/ip", "256/ip", "1/icmp", "38412/SCTP"] {
            assert!(summary(port).encode().is_err(), "{port} was taken");
        }
        let ok = block("203.0.113.7/32").encode().unwrap();
        let bad = String::from_utf8(ok)
            .unwrap()
            .replace("\"22/tcp\"", "\"0022/tcp\"");
        assert!(Message::decode(bad.as_bytes(), "web-3").is_err());
    }

    /// A summary says which local checks its probe passed; a summary from a sender that does
    /// not say (an older version) reads as one that checked nothing; a list of checks that is
    /// unknown, repeated or out of order is refused.
    #[test]
    fn a_summary_says_what_its_sender_checked() {
        let summary = |checked: Vec<Check>| {
            Message::new(
                host("web-3"),
                Body::Probes {
                    probes: vec![ProbeSummary {
                        source: "203.0.113.7/32".parse().unwrap(),
                        port: "23/tcp".into(),
                        kind: "syn".into(),
                        at: at(1_790_000_000),
                        checked,
                    }],
                },
            )
        };
        let m = summary(vec![Check::ReversePath, Check::Peers]);
        let bytes = m.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("\"checked\":[\"reverse-path\",\"peers\"]"),
            "{text}"
        );
        assert_eq!(Message::decode(&bytes, "web-3").unwrap(), m);
        let Body::Probes { probes } = &m.body else {
            unreachable!()
        };
        assert!(Check::reverse_path(&probes[0].checked));
        assert!(Check::reverse_path(&[Check::RouteBack]));
        assert!(!Check::reverse_path(&[Check::Peers]));
        // Without the field: nothing checked.
        let old = text.replace(",\"checked\":[\"reverse-path\",\"peers\"]", "");
        let Body::Probes { probes } = Message::decode(old.as_bytes(), "web-3").unwrap().body else {
            unreachable!()
        };
        assert!(probes[0].checked.is_empty());
        for bad in [
            "[\"reverse-path\",\"reverse-path\"]",
            "[\"peers\",\"reverse-path\"]",
            "[\"rp\"]",
            "\"reverse-path\"",
        ] {
            let bad = text.replace("[\"reverse-path\",\"peers\"]", bad);
            assert!(
                Message::decode(bad.as_bytes(), "web-3").is_err(),
                "{bad} was taken"
            );
        }
        assert!(
            summary(vec![Check::Peers, Check::ReversePath])
                .encode()
                .is_err()
        );
        // A full batch of the longest summaries fits in a message.
        let longest = ProbeSummary {
            source: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
                .parse()
                .unwrap(),
            port: "65535/udp".into(),
            kind: "odd-flags".into(),
            at: Timestamp::from_micros(1_790_000_000_123_456),
            checked: vec![Check::ReversePath, Check::RouteBack, Check::Peers],
        };
        let batch = Message::new(
            host(&"w".repeat(64)),
            Body::Probes {
                probes: vec![longest; MAX_PROBES],
            },
        );
        assert!(batch.encode().is_ok());
    }

    #[test]
    fn host_names_are_subject_tokens() {
        for good in ["web-3", "db_1", "A9"] {
            assert!(HostName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "web.3", "web*", "a b", ">", &"x".repeat(65)] {
            assert!(HostName::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Subject::parse("scansentry", "scansentry.block.web.3"), None);
        assert_eq!(
            Subject::parse("scansentry", "scansentry.probes.web-3.web.9"),
            None
        );
        assert_eq!(Subject::parse("scansentry", "other.block.web-3"), None);
        assert_eq!(
            Subject::parse("scansentry", "scansentry.reboot.web-3"),
            None
        );
    }

    /// Issue 24: a heartbeat claims at most 16 of its host's own routable addresses, each one
    /// address; an older heartbeat without them is still taken.
    #[test]
    fn a_heartbeat_claims_a_few_routable_host_addresses() {
        let beat = |addresses: Vec<&str>| {
            Message::new(
                host("web-3"),
                Body::Heartbeat {
                    at: at(1_790_000_000),
                    addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
                },
            )
        };
        let ok = beat(vec!["198.51.100.3/32", "2001:db8::3/128"]);
        let bytes = ok.encode().unwrap();
        assert_eq!(Message::decode(&bytes, "web-3").unwrap(), ok);
        let old = br#"{"version":1,"origin":"web-3","body":{"type":"heartbeat","at":"2026-09-21T12:00:00Z"}}"#;
        assert!(
            matches!(Message::decode(old, "web-3").unwrap().body, Body::Heartbeat { addresses, .. } if addresses.is_empty())
        );
        let many: Vec<String> = (0..=MAX_ADDRESSES)
            .map(|i| format!("198.51.100.{i}/32"))
            .collect();
        for bad in [
            many.iter().map(String::as_str).collect(),
            vec!["198.51.100.0/24"],
            vec!["169.254.169.254/32"],
            vec!["fe80::1/128"],
            vec!["::ffff:198.51.100.9/128"],
            vec!["127.0.0.1/32"],
        ] {
            let m = beat(bad.clone());
            assert!(
                matches!(m.encode(), Err(MessageError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
