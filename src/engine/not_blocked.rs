//! What `status` and `why` say of the detections that were not blocked: a count for each rule
//! that kept one from a block, and the last such detection of each of the last
//! [`NotBlocked::CAPACITY`] sources. Bounded whatever a flood of forged detections does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hashlink::LinkedHashMap;

use crate::control::protocol::RefusalInfo;

/// The detections not blocked, counted by rule, and the latest of each recent source.
#[derive(Debug, Default)]
pub(super) struct NotBlocked {
    by_rule: BTreeMap<&'static str, u64>,
    /// In order of their last refusal, the oldest first.
    last: LinkedHashMap<IpAddr, RefusalInfo>,
}

impl NotBlocked {
    /// Sources whose last refused detection is kept for `why`.
    pub(super) const CAPACITY: usize = 1024;

    /// A detection of `addr` kept from a block by `rule`, at `at` (wall time), with its log
    /// line. The source's earlier refusal gives way; past the capacity, the source refused
    /// longest ago.
    pub(super) fn record(&mut self, rule: &'static str, addr: IpAddr, at: String, line: String) {
        *self.by_rule.entry(rule).or_insert(0) += 1;
        self.last.remove(&addr);
        if self.last.len() >= Self::CAPACITY {
            self.last.pop_front();
        }
        let rule = rule.into();
        self.last.insert(addr, RefusalInfo { at, rule, line });
    }

    /// The last refused detection of `addr`, if it is among the recent sources.
    pub(super) fn last_of(&self, addr: IpAddr) -> Option<&RefusalInfo> {
        self.last.get(&addr)
    }

    /// The count of each rule.
    pub(super) fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.by_rule.iter().map(|(rule, n)| (*rule, *n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0xcb00_7100 + i))
    }

    /// Driven past its capacity by as many sources as a forged flood likes: the oldest go,
    /// the counts keep counting.
    #[test]
    fn it_keeps_the_last_refusal_of_the_most_recent_sources_only() {
        let mut n = NotBlocked::default();
        let over = u32::try_from(NotBlocked::CAPACITY).unwrap() + 10;
        for i in 0..over {
            n.record(
                "reverse-path",
                addr(i),
                format!("t{i}"),
                format!("line {i}"),
            );
        }
        assert_eq!(n.last.len(), NotBlocked::CAPACITY);
        assert!(n.last_of(addr(9)).is_none(), "the oldest went first");
        assert_eq!(n.last_of(addr(10)).unwrap().line, "line 10");
        assert_eq!(
            n.counts().collect::<Vec<_>>(),
            [("reverse-path", u64::from(over))]
        );
        // A source refused again keeps one entry, its latest, and moves to the back.
        n.record("min-ports", addr(10), "later".into(), "again".into());
        assert_eq!(n.last.len(), NotBlocked::CAPACITY);
        assert_eq!(n.last_of(addr(10)).unwrap().rule, "min-ports");
        n.record("budget", addr(100_000), "t".into(), "new".into());
        assert!(n.last_of(addr(10)).is_some(), "refused last, kept");
        assert!(n.last_of(addr(11)).is_none(), "now the oldest, gone");
        assert_eq!(
            n.counts().collect::<Vec<_>>(),
            [
                ("budget", 1),
                ("min-ports", 1),
                ("reverse-path", u64::from(over))
            ]
        );
    }
}
