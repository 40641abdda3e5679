//! Decoys (`nmap -D`): a source the pipeline judged a likely decoy
//! ([`crate::detect::decoy::Verdict`]) keeps only a short hold. The verdict comes at least
//! [`crate::detect::decoy::ANSWER_WITHIN`] after the scan's SYN+ACKs, so usually after the
//! source was blocked with the full duration: that block is cut to [`DECOY_HOLD`] (never
//! lengthened) and its reason says why. Only a first offence is cut: the offence stays
//! counted, so a source named a decoy again within `remember-offences` is blocked as a repeat
//! offender (see RELIABILITY.md: a scanner that forges its decoys' RSTs). **Pure**: time is an
//! argument.

use std::time::Duration;

use ipnet::IpNet;

use super::{Action, Responder};
use crate::detect::decoy::Verdict;
use crate::time::Timestamp;

/// How long a likely decoy stays blocked, at most: long enough to cover the rest of the scan
/// it was named in, short enough that an innocent address named as a decoy is let in soon.
pub const DECOY_HOLD: Duration = Duration::from_secs(60);

impl Responder {
    /// A likely decoy: when its address is blocked (automatically, a host prefix, for longer
    /// than [`DECOY_HOLD`]), the block is cut to that and its reason names the verdict. The
    /// firewall actions that make it so (the element put back with the shorter timeout), or
    /// `None` when there is nothing to shorten.
    pub fn decoy(&mut self, verdict: &Verdict, now: Timestamp) -> Option<Vec<Action>> {
        let net = IpNet::from(verdict.decoy.to_canonical());
        let active = self.blocked.get_mut(&net)?;
        if active.offence != 1 || active.why.origin.is_some() {
            // By hand, restored from elsewhere, or taken from the fleet: not this host's call.
            // A repeat offence is not cut: a scanner that drops its own RSTs and forges them
            // from its decoys is held short once per `remember-offences`, not at every scan.
            return None;
        }
        let ttl = DECOY_HOLD;
        if active.until.saturating_since(now) <= ttl {
            return None;
        }
        active.until = now.saturating_add(ttl);
        let said = verdict.to_string();
        active.why.signature = Some(match active.why.signature.take() {
            Some(tool) => format!("{tool}; {said}"),
            None => said,
        });
        // The element is taken out and put back with the shorter timeout, in one batch: adding
        // an element that exists does not change its timeout.
        Some(vec![Action::Unblock { net }, Action::Block { net, ttl }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detection, ScanKinds};
    use crate::never_block::NeverBlockList;
    use crate::respond::Decision;
    use crate::wire::{ProbeKind, Proto};
    use std::net::IpAddr;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000)
    }

    fn verdict(decoy: &str) -> Verdict {
        Verdict {
            decoy: decoy.parse().unwrap(),
            unanswered: 2,
            answered_by: "198.51.100.2".parse().unwrap(),
            at: at(3),
        }
    }

    fn responder() -> Responder {
        let mut config = crate::config::Config::default().respond;
        config.reverse_path = crate::trust::ReversePath::Off;
        Responder::new(&config)
    }

    fn detection(addr: &str) -> Detection {
        let addr: IpAddr = addr.parse().unwrap();
        Detection {
            source: IpNet::from(addr),
            addr,
            kinds: ScanKinds::of(ProbeKind::Syn),
            ports: (20..30).map(|p| (Proto::Tcp, p)).collect(),
            first_seen: at(0),
            last_seen: at(0),
            packets: 10,
            score: 30,
            several_addresses: false,
            arrived_on: None,
            tripwire: None,
            signature: None,
        }
    }

    fn detected(r: &mut Responder, addr: &str) -> Decision {
        let d = detection(addr);
        r.on_detection(&d, &NeverBlockList::default(), at(0))
    }

    #[test]
    fn a_likely_decoy_s_block_is_cut_to_the_short_hold_and_says_why() {
        let mut r = responder();
        assert!(matches!(
            detected(&mut r, "198.51.100.77"),
            Decision::Block { .. }
        ));
        assert!(matches!(
            detected(&mut r, "198.51.100.2"),
            Decision::Block { .. }
        ));
        let actions = r.decoy(&verdict("198.51.100.77"), at(3)).unwrap();
        let net: IpNet = "198.51.100.77/32".parse().unwrap();
        assert_eq!(
            actions,
            vec![
                Action::Unblock { net },
                Action::Block {
                    net,
                    ttl: DECOY_HOLD
                }
            ]
        );
        let blocks: Vec<_> = r.active(at(3)).collect();
        let decoy = blocks.iter().find(|b| b.net == net).unwrap();
        assert_eq!(decoy.until, at(3 + 60));
        assert_eq!(
            decoy.why.signature.as_deref(),
            Some("likely decoy: no answer to 2 SYN+ACKs while 198.51.100.2 answered")
        );
        let real = blocks.iter().find(|b| b.net != net).unwrap();
        assert!(
            real.until.saturating_since(at(3)) > DECOY_HOLD,
            "the scanner keeps its block"
        );
        assert!(
            r.decoy(&verdict("198.51.100.77"), at(4)).is_none(),
            "never lengthened"
        );
    }

    #[test]
    fn a_repeat_offender_named_a_decoy_again_is_not_cut() {
        let mut r = responder();
        detected(&mut r, "198.51.100.77");
        assert!(r.decoy(&verdict("198.51.100.77"), at(3)).is_some());
        // The hold ends; the same source scans again, named a decoy again.
        let later = at(3 + 120);
        let d = Detection {
            first_seen: later,
            last_seen: later,
            ..detection("198.51.100.77")
        };
        let again = r.on_detection(&d, &NeverBlockList::default(), later);
        let Decision::Block { ttl, .. } = again else {
            panic!("{again:?}")
        };
        assert!(ttl > Duration::from_secs(3600), "a repeat: {ttl:?}");
        assert!(r.decoy(&verdict("198.51.100.77"), later).is_none());
    }

    #[test]
    fn nothing_to_shorten_for_an_address_not_blocked_or_blocked_by_hand() {
        let mut r = responder();
        assert!(r.decoy(&verdict("198.51.100.77"), at(3)).is_none());
        let net: IpNet = "198.51.100.77/32".parse().unwrap();
        r.block_by_hand(net, Some(Duration::from_secs(3600)), at(0));
        assert!(r.decoy(&verdict("198.51.100.77"), at(3)).is_none());
    }
}
