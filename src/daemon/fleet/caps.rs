//! Per-origin caps on what the link takes in from the bus, before anything reaches the main
//! loop's queue. **Pure**: time is an argument.
//!
//! Each origin (the host a subject names) has two token buckets, one for blocks and unblocks and
//! one for the rest (probe summaries, heartbeats), so that a member flooding summaries spends
//! only its own allowance of summaries. At most [`ORIGINS`] origins are kept; past that (an open
//! bus where anyone may name itself anything), the origins not kept share one pair of buckets,
//! and those whose buckets refilled are forgotten at most once per [`SWEEP_EVERY`].

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Timestamp;

/// Origins with buckets of their own at most.
pub const ORIGINS: usize = 1024;
/// How often, at most, idle origins are forgotten to make room.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What a message is, for its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A block or an unblock.
    Blocks,
    /// A probe summary or a heartbeat.
    Others,
}

/// A token bucket's rate: `per_second` tokens a second, up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added a second.
    pub per_second: u32,
    /// Tokens held at most (and at first).
    pub burst: u32,
}

/// Blocks and unblocks from one origin: 200 at once, then 20 a second (an honest host blocks at
/// most its budget's 50 a second for a moment; the engine's own per-origin cap is lower still).
pub const BLOCKS: Rate = Rate {
    per_second: 20,
    burst: 200,
};
/// Probe summaries and heartbeats from one origin: an honest host sends at most 10 batches of
/// summaries a second to each owner, and a heartbeat a second.
pub const OTHERS: Rate = Rate {
    per_second: 20,
    burst: 40,
};

/// One token bucket, in thousandths of a token.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli: u64,
    at: Timestamp,
}

impl Bucket {
    fn full(rate: Rate, now: Timestamp) -> Bucket {
        Bucket {
            milli: u64::from(rate.burst) * 1000,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Timestamp) {
        if now <= self.at {
            return;
        }
        let ms = u64::try_from(now.saturating_since(self.at).as_millis()).unwrap_or(u64::MAX);
        self.milli = self
            .milli
            .saturating_add(ms.saturating_mul(u64::from(rate.per_second)))
            .min(u64::from(rate.burst) * 1000);
        self.at = now;
    }

    fn take(&mut self, rate: Rate, now: Timestamp) -> bool {
        self.refill(rate, now);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    fn is_full(&self, rate: Rate, now: Timestamp) -> bool {
        let mut b = *self;
        b.refill(rate, now);
        b.milli >= u64::from(rate.burst) * 1000
    }
}

/// One origin's buckets.
#[derive(Clone, Copy, Debug)]
struct Pair {
    blocks: Bucket,
    others: Bucket,
}

impl Pair {
    fn full(caps: &Caps, now: Timestamp) -> Pair {
        Pair {
            blocks: Bucket::full(caps.blocks, now),
            others: Bucket::full(caps.others, now),
        }
    }

    fn take(&mut self, caps_blocks: Rate, caps_others: Rate, class: Class, now: Timestamp) -> bool {
        match class {
            Class::Blocks => self.blocks.take(caps_blocks, now),
            Class::Others => self.others.take(caps_others, now),
        }
    }
}

/// The caps of every origin heard from.
#[derive(Debug)]
pub struct Caps {
    blocks: Rate,
    others: Rate,
    origins: HashMap<String, Pair>,
    /// Shared by the origins not kept, when [`ORIGINS`] are.
    overflow: Pair,
    swept: Timestamp,
}

impl Caps {
    /// Caps at `blocks` and `others` per origin, every bucket full at `now`.
    pub fn new(blocks: Rate, others: Rate, now: Timestamp) -> Caps {
        Caps {
            blocks,
            others,
            origins: HashMap::new(),
            overflow: Pair {
                blocks: Bucket::full(blocks, now),
                others: Bucket::full(others, now),
            },
            swept: now,
        }
    }

    /// Whether a message of `class` from `origin` at `now` is within its origin's cap (and if
    /// so, it is counted).
    pub fn admit(&mut self, origin: &str, class: Class, now: Timestamp) -> bool {
        let (blocks, others) = (self.blocks, self.others);
        if let Some(pair) = self.origins.get_mut(origin) {
            return pair.take(blocks, others, class, now);
        }
        if self.origins.len() >= ORIGINS && now.saturating_since(self.swept) >= SWEEP_EVERY {
            self.swept = now;
            self.origins
                .retain(|_, p| !(p.blocks.is_full(blocks, now) && p.others.is_full(others, now)));
        }
        if self.origins.len() < ORIGINS {
            let mut pair = Pair::full(self, now);
            let admitted = pair.take(blocks, others, class, now);
            self.origins.insert(origin.to_string(), pair);
            return admitted;
        }
        self.overflow.take(blocks, others, class, now)
    }

    /// Origins with buckets of their own now.
    #[cfg(test)]
    pub fn origins(&self) -> usize {
        self.origins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 10,
        burst: 5,
    };

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_timeval(1_000, 0).saturating_add(Duration::from_millis(ms))
    }

    fn admitted(caps: &mut Caps, origin: &str, class: Class, now: Timestamp, n: usize) -> usize {
        (0..n).filter(|_| caps.admit(origin, class, now)).count()
    }

    #[test]
    fn an_origin_gets_its_burst_then_its_rate() {
        let mut caps = Caps::new(RATE, RATE, at(0));
        assert_eq!(admitted(&mut caps, "web-2", Class::Others, at(0), 100), 5);
        // 10 a second: one more every 100 ms.
        assert_eq!(admitted(&mut caps, "web-2", Class::Others, at(100), 100), 1);
        assert_eq!(admitted(&mut caps, "web-2", Class::Others, at(350), 100), 2);
        // Never more than the burst, however long it was quiet.
        assert_eq!(
            admitted(&mut caps, "web-2", Class::Others, at(60_000), 100),
            5
        );
    }

    #[test]
    fn a_flood_of_summaries_spends_neither_its_own_blocks_nor_another_origins() {
        let mut caps = Caps::new(RATE, RATE, at(0));
        assert_eq!(
            admitted(&mut caps, "evil", Class::Others, at(0), 100_000),
            5
        );
        assert_eq!(admitted(&mut caps, "evil", Class::Blocks, at(0), 3), 3);
        assert_eq!(admitted(&mut caps, "web-3", Class::Others, at(0), 3), 3);
        assert_eq!(admitted(&mut caps, "web-3", Class::Blocks, at(0), 3), 3);
    }

    #[test]
    fn origins_are_bounded_and_the_ones_not_kept_share_one_cap() {
        let mut caps = Caps::new(RATE, RATE, at(0));
        for i in 0..ORIGINS {
            assert!(caps.admit(&format!("h{i}"), Class::Blocks, at(0)));
        }
        // A thousand new names: one shared burst among them, and no new bucket.
        let new = (0..1000)
            .filter(|i| caps.admit(&format!("n{i}"), Class::Blocks, at(0)))
            .count();
        assert_eq!(new, 5);
        assert_eq!(caps.origins(), ORIGINS);
        // Once the first ones are idle (their buckets full again), room is made for new ones.
        assert!(caps.admit("late", Class::Blocks, at(2_000)));
        assert_eq!(caps.origins(), 1);
    }
}
