//! What systemd hears from the daemon, through `$NOTIFY_SOCKET` and the `sd-notify` crate:
//! ready, reloading (with the monotonic time systemd 253 and newer require), stopping, the
//! counters as STATUS=, and the watchdog's keep-alive. **Shell.** Without systemd it does
//! nothing; failures are ignored (the service manager is not there to be argued with).

use std::time::Duration;

use sd_notify::NotifyState;

/// Start-up (or a reload) is finished.
pub fn ready() {
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

/// A reload begins (followed by [`ready`] when it is over, taken or refused).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    let _ = sd_notify::notify(false, &states);
}

/// The daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// The one-line status `systemctl status` shows.
pub fn status(text: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(text)]);
}

/// The watchdog's keep-alive.
pub fn alive() {
    let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
}

/// How often to send [`alive`]: half the unit's `WatchdogSec=`, when systemd set one for this
/// process.
pub fn watchdog_every() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2))
}
