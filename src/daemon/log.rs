//! Where the daemon's event lines go: standard output (the default; systemd's journal takes it
//! from there), syslog (`/dev/log`), or the journal's native socket; as text or as JSON. One
//! event per line, facts first. **Shell**, except [`format_line`], which is pure.
//!
//! The daemon writes events with `tracing`'s macros; [`install`] sets up the subscriber whose
//! one layer hands each event to the configured [`Sink`], and returns the [`Logger`] handle
//! through which a reload switches target and format.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::layer::SubscriberExt;

pub use crate::config::{LogFormat as Format, LogTarget as Target};
use crate::time::Timestamp;

/// How serious an event is (syslog's severities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is off, and the daemon goes on.
    Warning,
    /// A block, an unblock, a reload: the daemon's normal business.
    Info,
    /// Counters and details (`-d`).
    Debug,
}

impl Level {
    fn severity(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warning => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// The line for `message` at `time` in `format` (the time is left out for syslog and the
/// journal, which stamp lines themselves).
pub fn format_line(
    format: Format,
    stamped: bool,
    time: Timestamp,
    level: Level,
    message: &str,
) -> String {
    match format {
        Format::Text if stamped => format!("{time} {message}"),
        Format::Text => message.to_string(),
        Format::Json => {
            let mut v = serde_json::json!({ "level": level.name(), "message": message });
            if stamped {
                v["time"] = serde_json::Value::String(time.to_string());
            }
            v.to_string()
        }
    }
}

/// Where lines are written: a target and a format, and the socket of syslog or the journal.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    format: Format,
    socket: Option<UnixDatagram>,
}

impl Sink {
    /// A sink for `target` and `format`. If the syslog or journal socket cannot be reached,
    /// lines go to standard output, and the first one says why. Detached (`sentryd -D`),
    /// standard output is /dev/null: lines meant for it go to syslog, and a warning says so
    /// when syslog cannot be reached either.
    pub fn new(target: Target, format: Format, detached: bool) -> Self {
        let target = effective(target, detached);
        let path = match target {
            Target::Stdout => None,
            Target::Syslog => Some("/dev/log"),
            Target::Journald => Some("/run/systemd/journal/socket"),
        };
        let socket = path.and_then(|p| {
            UnixDatagram::unbound()
                .and_then(|s| s.connect(p).map(|()| s))
                .map_err(|e| {
                    if detached {
                        eprintln!(
                            "sentryd: warning: cannot log to {p} ({e}), and standard output is \
                             gone (-D): lines are lost; start syslog, or run sentryd without -D"
                        );
                    } else {
                        eprintln!(
                            "sentryd: warning: cannot log to {p} ({e}); logging to standard output"
                        );
                    }
                })
                .ok()
        });
        let target = if socket.is_some() {
            target
        } else {
            Target::Stdout
        };
        Sink {
            target,
            format,
            socket,
        }
    }

    /// Writes one event.
    pub fn log(&self, time: Timestamp, level: Level, message: &str) {
        let stamped = self.target == Target::Stdout;
        let line = format_line(self.format, stamped, time, level, message);
        match (&self.socket, self.target) {
            (Some(s), Target::Syslog) => {
                // RFC 3164: facility daemon (3); the syslog daemon adds the time and host.
                let pri = 3 * 8 + level.severity();
                let _ =
                    s.send(format!("<{pri}>sentryd[{}]: {line}", std::process::id()).as_bytes());
            }
            (Some(s), Target::Journald) => {
                // The native protocol: KEY=VALUE lines (our lines hold no newline).
                let fields = format!(
                    "MESSAGE={}\nPRIORITY={}\nSYSLOG_IDENTIFIER=sentryd\n",
                    line.replace('\n', " "),
                    level.severity()
                );
                let _ = s.send(fields.as_bytes());
            }
            _ => {
                if matches!(level, Level::Error | Level::Warning) {
                    let _ = writeln!(std::io::stderr(), "{line}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
            }
        }
    }
}

impl Level {
    fn of(level: tracing::Level) -> Self {
        match level {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG | tracing::Level::TRACE => Level::Debug,
        }
    }
}

/// Where lines meant for `target` go: detached, standard output is /dev/null, so syslog.
fn effective(target: Target, detached: bool) -> Target {
    match target {
        Target::Stdout if detached => Target::Syslog,
        other => other,
    }
}

/// The handle on the sink the subscriber writes to.
#[derive(Clone, Debug)]
pub struct Logger {
    sink: Arc<Mutex<Sink>>,
    detached: bool,
}

impl Logger {
    /// Switches target and format (on reload); a no-op when neither changed.
    pub fn reconfigure(&self, target: Target, format: Format) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if (sink.target, sink.format) != (effective(target, self.detached), format) {
            *sink = Sink::new(target, format, self.detached);
        }
    }
}

/// The one layer: formats an event's message and fields and writes the line.
struct SinkLayer {
    sink: Arc<Mutex<Sink>>,
    clock: crate::time::SystemClock,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SinkLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        use crate::time::Clock;
        let mut text = Text::default();
        event.record(&mut text);
        let level = Level::of(*event.metadata().level());
        let sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        sink.log(self.clock.now(), level, &text.0);
    }
}

/// An event's message, then its other fields as ` key=value`.
#[derive(Default)]
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// Installs the process's subscriber: events at `max` and above go to `target` in `format`.
///
/// # Panics
///
/// If a subscriber was installed already (this is called once, at start).
pub fn install(target: Target, format: Format, max: tracing::Level, detached: bool) -> Logger {
    let sink = Arc::new(Mutex::new(Sink::new(target, format, detached)));
    let layer = SinkLayer {
        sink: Arc::clone(&sink),
        clock: crate::time::SystemClock,
    };
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(max))
        .with(layer);
    tracing::subscriber::set_global_default(subscriber)
        .expect("sentryd installs its log subscriber once");
    Logger { sink, detached }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_text_and_json() {
        let t = Timestamp::from_micros(1_763_769_107_731_914);
        assert_eq!(
            format_line(
                Format::Text,
                true,
                t,
                Level::Info,
                "blocked 198.51.100.2 for 1h"
            ),
            "2025-11-21T23:51:47.731914Z blocked 198.51.100.2 for 1h"
        );
        assert_eq!(format_line(Format::Text, false, t, Level::Info, "x"), "x");
        let v: serde_json::Value = serde_json::from_str(&format_line(
            Format::Json,
            true,
            t,
            Level::Warning,
            "a \"b\"",
        ))
        .unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["message"], "a \"b\"");
        assert_eq!(v["time"], "2025-11-21T23:51:47.731914Z");
    }

    /// A stand-in for the journal's socket in a fresh directory, and a socket connected to it.
    fn journal(name: &str) -> (std::path::PathBuf, UnixDatagram, UnixDatagram) {
        let dir = std::env::temp_dir().join(format!("scansentry-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        socket.connect(&path).unwrap();
        (dir, server, socket)
    }

    #[test]
    fn events_become_one_line_message_first() {
        let (dir, server, socket) = journal("layer");
        let sink = Arc::new(Mutex::new(Sink {
            target: Target::Journald,
            format: Format::Json,
            socket: Some(socket),
        }));
        let subscriber = tracing_subscriber::registry().with(SinkLayer {
            sink: Arc::clone(&sink),
            clock: crate::time::SystemClock,
        });
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(addr = "198.51.100.2", "could not block");
        });
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let json = text
            .strip_prefix("MESSAGE=")
            .and_then(|t| t.split('\n').next())
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["message"], "could not block addr=198.51.100.2");
        assert_eq!(v["level"], "warning");
        assert!(text.contains("\nPRIORITY=4\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_journal_socket_gets_native_fields() {
        let (dir, server, socket) = journal("log");
        let logger = Sink {
            target: Target::Journald,
            format: Format::Text,
            socket: Some(socket),
        };
        logger.log(Timestamp::ZERO, Level::Warning, "not blocking 198.51.100.1");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "MESSAGE=not blocking 198.51.100.1\nPRIORITY=4\nSYSLOG_IDENTIFIER=sentryd\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
