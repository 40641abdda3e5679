//! Interrupt mitigation for immediate capture under a flood.
//!
//! Immediate capture hands every frame over as it arrives, which is what keeps the time to
//! block short; but when frames arrive faster than the daemon goes back to sleep, each one
//! costs a wakeup (a `poll` and two context switches, several times the cost of judging the
//! frame). Like a network card's interrupt moderation, [`Coalesce`] notices a sustained high
//! rate and has the capture loop pause briefly before it polls again, so that the frames that
//! arrive meanwhile are taken in one turn. Below the rate nothing changes; above it a frame
//! waits at most [`PAUSE`] longer. The decision is pure: the loop passes the time and the
//! frames of each turn.

use std::time::Duration;

use crate::time::Timestamp;

/// The span over which the rate is measured.
pub const WINDOW: Duration = Duration::from_millis(10);
/// Frames in a [`WINDOW`] from which the rate is a flood's (20,000 a second). A scan by nmap
/// at `-T5` sends a few thousand probes a second; a busy DNS server can pass this.
pub const BUSY_FRAMES: u64 = 200;
/// How long the loop waits before polling again while the rate is high.
pub const PAUSE: Duration = Duration::from_micros(250);

/// The rate of frames over the last whole window, and whether the loop should pause.
#[derive(Clone, Debug)]
pub struct Coalesce {
    window_start: Timestamp,
    frames: u64,
    busy: bool,
}

impl Coalesce {
    /// Measuring from `now`, not busy.
    pub fn new(now: Timestamp) -> Self {
        Coalesce {
            window_start: now,
            frames: 0,
            busy: false,
        }
    }

    /// A turn of the capture loop at `now` took `frames` frames: how long to pause before
    /// polling again, if at all. The first window of a burst is never paused, so the first
    /// probes of a scan are judged at once, whatever comes after them.
    pub fn turn(&mut self, now: Timestamp, frames: u64) -> Option<Duration> {
        let elapsed = now.saturating_since(self.window_start);
        if elapsed >= WINDOW {
            // The rate over the window that just ended (longer than WINDOW after a quiet time).
            let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            let window_us = u64::try_from(WINDOW.as_micros()).unwrap_or(u64::MAX);
            self.busy = u128::from(self.frames) * u128::from(window_us)
                >= u128::from(BUSY_FRAMES) * u128::from(elapsed_us);
            self.window_start = now;
            self.frames = 0;
        }
        self.frames = self.frames.saturating_add(frames);
        (self.busy && frames > 0).then_some(PAUSE)
    }

    /// Whether the last whole window was a flood's.
    pub fn busy(&self) -> bool {
        self.busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_us(us: u64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + us)
    }

    #[test]
    fn a_scan_is_never_paused_and_a_flood_is_after_its_first_window() {
        // nmap -T4: 1,000 probes a second, one per turn, for a second.
        let mut c = Coalesce::new(at_us(0));
        assert!((0..1_000).all(|i| c.turn(at_us(i * 1_000), 1).is_none()));
        assert!(!c.busy());

        // A flood: 80,000 frames a second, one per turn as an idle daemon takes them.
        let mut c = Coalesce::new(at_us(0));
        let paused: Vec<bool> = (0..8_000)
            .map(|i| c.turn(at_us(i * 1_000_000 / 80_000), 1).is_some())
            .collect();
        // The first 10 ms (800 frames) go through at once; from then on every turn pauses.
        assert!(paused[..800].iter().all(|p| !p));
        assert!(paused[801..].iter().all(|p| *p));
        assert_eq!(c.turn(at_us(100_000), 1), Some(PAUSE));
    }

    #[test]
    fn the_pause_ends_with_the_flood_and_quiet_turns_never_pause() {
        let mut c = Coalesce::new(at_us(0));
        for i in 0..2_000 {
            c.turn(at_us(i * 10), 1);
        }
        assert!(c.busy());
        // A turn with no frame (a control request, a timer) does not pause.
        assert_eq!(c.turn(at_us(20_001), 0), None);
        // After a quiet second, the window that ended held one frame in a second: not busy.
        assert_eq!(c.turn(at_us(1_030_000), 1), None);
        assert!(!c.busy());
    }

    #[test]
    fn the_threshold_is_a_rate_whatever_the_window_length() {
        // 199 frames in 10 ms: below; 200: at the rate.
        for (frames, busy) in [(199, false), (200, true)] {
            let mut c = Coalesce::new(at_us(0));
            c.turn(at_us(1), frames);
            c.turn(at_us(10_000), 0);
            assert_eq!(c.busy(), busy, "{frames} frames");
        }
        // 300 frames over 20 ms (a window stretched by a long poll): 15,000 a second, below.
        let mut c = Coalesce::new(at_us(0));
        c.turn(at_us(1), 300);
        c.turn(at_us(20_000), 0);
        assert!(!c.busy());
        // Clocks that go backwards or far forward: no panic, no pause without frames.
        assert_eq!(c.turn(Timestamp::ZERO, 0), None);
        assert_eq!(c.turn(Timestamp::from_micros(u64::MAX), u64::MAX), None);
    }
}
