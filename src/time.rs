//! Time as a value.
//!
//! Everything below the shell takes time as an argument: the detector's clock is the capture
//! timestamp of each packet (so a capture replays the same way every time), and the responder's
//! expiries come from a [`Clock`] that the shell owns. This module is the only place that may
//! read the system clock (`clippy.toml` forbids it elsewhere).
//!
//! [`Timestamp`] is microseconds since the Unix epoch; all arithmetic on it saturates, so a clock
//! that steps backwards yields zero-length intervals rather than a panic or a wrap.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// A point in time: microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself; also the timestamp of a packet whose capture time is unknown.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp from microseconds since the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// A timestamp from seconds and microseconds, as pcap's `struct timeval` carries them.
    /// Negative or out-of-range parts saturate to the nearest representable value.
    pub fn from_timeval(secs: i64, micros: i64) -> Self {
        let secs = u64::try_from(secs).unwrap_or(0);
        let micros = u64::try_from(micros).unwrap_or(0);
        Timestamp(secs.saturating_mul(1_000_000).saturating_add(micros))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    /// `self - d`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(micros))
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later (a clock step backwards).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds, e.g. `2019-08-21T18:16:47.841604Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = std::time::UNIX_EPOCH + Duration::from_micros(self.0);
        write!(f, "{}", humantime::format_rfc3339_micros(t))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = humantime::TimestampError;

    /// RFC 3339 in UTC, as [`Timestamp`]'s `Display` writes it (`2019-08-21T18:16:47Z`, with or
    /// without a fraction).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = humantime::parse_rfc3339_weak(text)?;
        let micros = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Ok(Timestamp(micros))
    }
}

/// In JSON, a timestamp is its RFC 3339 text.
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A source of the current time, owned by the shell and passed down.
pub trait Clock {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the one place that reads the system clock"
    )]
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: Timestamp) -> Self {
        ManualClock(Mutex::new(t))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = t.saturating_add(d);
    }

    /// Sets the clock to `t`, which may be earlier than now (to test clock steps).
    pub fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp::from_micros(5);
        assert_eq!(t.saturating_sub(Duration::from_secs(1)), Timestamp::ZERO);
        assert_eq!(
            Timestamp::from_micros(u64::MAX).saturating_add(Duration::from_secs(1)),
            Timestamp::from_micros(u64::MAX)
        );
        assert_eq!(Timestamp::ZERO.saturating_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_since(Timestamp::ZERO),
            Duration::from_micros(5)
        );
    }

    #[test]
    fn timeval_with_negative_parts_is_clamped() {
        assert_eq!(Timestamp::from_timeval(-1, 7), Timestamp::from_micros(7));
        assert_eq!(
            Timestamp::from_timeval(1_566_411_407, 841_604).to_string(),
            "2019-08-21T18:16:47.841604Z"
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_micros(10));
        assert_eq!(c.now(), Timestamp::from_micros(10));
        c.advance(Duration::from_micros(5));
        assert_eq!(c.now(), Timestamp::from_micros(15));
        c.set(Timestamp::from_micros(1));
        assert_eq!(c.now(), Timestamp::from_micros(1));
    }
}
