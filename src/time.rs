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

    /// RFC 3339 in UTC to the second (`2019-08-21T18:16:47Z`), for times a person reads
    /// whose fraction means nothing (when a session began).
    pub fn to_seconds(self) -> impl fmt::Display {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(self.0 / 1_000_000);
        humantime::format_rfc3339_seconds(t)
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
    /// The current time.
    fn now(&self) -> Timestamp;

    /// How far the real-time clock is from this clock now (zero for a clock that is the
    /// real-time clock, or stands in for it).
    fn wall_offset(&self) -> WallOffset {
        WallOffset::default()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }

    fn wall_offset(&self) -> WallOffset {
        (**self).wall_offset()
    }
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

/// How far the real-time clock is from the daemon's steady time, at one moment: zero until the
/// system clock is stepped, then the size of the step (positive: stepped forward).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallOffset(i64);

impl WallOffset {
    /// An offset of `micros` microseconds.
    pub const fn from_micros(micros: i64) -> Self {
        WallOffset(micros)
    }

    /// The offset in microseconds.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The real-time clock's reading of the steady time `t`.
    pub fn to_wall(self, t: Timestamp) -> Timestamp {
        shift(t, self.0)
    }

    /// The steady time of the real-time clock's reading `t` (a capture timestamp, a time read
    /// back from the state file).
    pub fn from_wall(self, t: Timestamp) -> Timestamp {
        shift(t, self.0.saturating_neg())
    }
}

impl fmt::Display for WallOffset {
    /// `forward by 2h` or `back by 30m 5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = if self.0 < 0 { "back" } else { "forward" };
        let secs = self.0.unsigned_abs() / 1_000_000;
        write!(
            f,
            "{way} by {}",
            crate::text::human(Duration::from_secs(secs))
        )
    }
}

fn shift(t: Timestamp, micros: i64) -> Timestamp {
    Timestamp(t.0.saturating_add_signed(micros))
}

/// The arithmetic of [`SteadyClock`]: wall-clock time read once, at an origin, then carried
/// forward by a monotonic clock's elapsed time. Pure, so that clock steps can be tested.
#[derive(Clone, Copy, Debug)]
pub struct SteadyTime {
    origin: Timestamp,
    mono_origin: Duration,
}

impl SteadyTime {
    /// Steady time that reads `wall` when the monotonic clock reads `mono`.
    pub fn starting(wall: Timestamp, mono: Duration) -> Self {
        SteadyTime {
            origin: wall,
            mono_origin: mono,
        }
    }

    /// The steady time when the monotonic clock reads `mono`.
    pub fn at(&self, mono: Duration) -> Timestamp {
        self.origin
            .saturating_add(mono.saturating_sub(self.mono_origin))
    }

    /// The offset of the real-time clock's reading `wall` taken when the monotonic clock read
    /// `mono`.
    pub fn offset(&self, wall: Timestamp, mono: Duration) -> WallOffset {
        let steady = self.at(mono).0;
        let micros = if wall.0 >= steady {
            i64::try_from(wall.0 - steady).unwrap_or(i64::MAX)
        } else {
            i64::try_from(steady - wall.0).map_or(i64::MIN, i64::wrapping_neg)
        };
        WallOffset(micros)
    }
}

/// The daemon's clock: wall-clock time that never steps.
///
/// It reads the real-time clock once, when made, and from then on moves with the monotonic
/// clock (`CLOCK_MONOTONIC`, which the kernel's set-element timeouts follow too). A block of an
/// hour therefore lasts an hour, and a detection window a minute, however the system clock is
/// stepped meanwhile (by hand, or by an NTP client correcting a bad boot time). Both clocks
/// slew alike under NTP, so the two agree until a step. Times that come from the real-time
/// clock (capture timestamps, the state file) go through [`WallOffset::from_wall`], and times
/// that leave the daemon for people or for the next start (the state file, `sentryctl list`,
/// the history file) through [`WallOffset::to_wall`], with [`SteadyClock::offset`].
#[derive(Clone, Copy, Debug)]
pub struct SteadyClock {
    time: SteadyTime,
    start: std::time::Instant,
}

impl SteadyClock {
    /// A clock that reads the real-time clock's time now.
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the one place that reads the system clock"
    )]
    pub fn new() -> Self {
        SteadyClock {
            start: std::time::Instant::now(),
            time: SteadyTime::starting(SystemClock.now(), Duration::ZERO),
        }
    }

    /// How far the real-time clock is from this clock now.
    pub fn offset(&self) -> WallOffset {
        self.time.offset(SystemClock.now(), self.start.elapsed())
    }
}

impl Default for SteadyClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SteadyClock {
    fn now(&self) -> Timestamp {
        self.time.at(self.start.elapsed())
    }

    fn wall_offset(&self) -> WallOffset {
        self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn steady_time_ignores_steps_of_the_wall_clock_and_converts_both_ways() {
        let boot = Timestamp::from_micros(1_800_000_000_000_000);
        let steady = SteadyTime::starting(boot, Duration::from_secs(7));
        let later = Duration::from_secs(7 + 10);
        assert_eq!(
            steady.at(later),
            boot.saturating_add(Duration::from_secs(10))
        );
        // No step: no offset.
        let wall = boot.saturating_add(Duration::from_secs(10));
        assert_eq!(steady.offset(wall, later), WallOffset::default());
        // Stepped forward by two hours, then back by one from the start.
        for (wall, micros, text) in [
            (
                wall.saturating_add(2 * HOUR),
                7_200_000_000,
                "forward by 2h",
            ),
            (wall.saturating_sub(HOUR), -3_600_000_000, "back by 1h"),
        ] {
            let off = steady.offset(wall, later);
            assert_eq!(off.as_micros(), micros);
            assert_eq!(off.to_string(), text);
            assert_eq!(off.to_wall(steady.at(later)), wall);
            assert_eq!(off.from_wall(wall), steady.at(later));
        }
        // Before the monotonic origin and far outside: saturates, no panic.
        assert_eq!(steady.at(Duration::ZERO), boot);
        let huge = WallOffset(i64::MIN);
        assert_eq!(huge.to_wall(boot), Timestamp::ZERO);
        assert_eq!(
            huge.from_wall(boot).as_micros(),
            boot.as_micros() + i64::MAX.unsigned_abs()
        );
        assert_eq!(
            steady.offset(Timestamp::ZERO, later).as_micros(),
            -1_800_000_010_000_000
        );
    }

    #[test]
    fn the_system_steady_clock_starts_at_the_wall_clock() {
        let c = SteadyClock::new();
        assert!(c.offset().as_micros().abs() < 1_000_000, "{:?}", c.offset());
        let wall = SystemClock.now();
        assert!(c.now().saturating_since(wall) < Duration::from_secs(1));
        assert!(wall.saturating_since(c.now()) < Duration::from_secs(1));
    }

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
