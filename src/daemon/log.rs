//! Where the daemon's events go: standard output (the default; systemd's journal takes it from
//! there), syslog (`/dev/log`), or the journal's native socket; as text or as JSON. One event
//! per line, facts first. **Shell.**
//!
//! Events are `tracing` events; the writers are the tracing ecosystem's layers: text and JSON
//! lines are `tracing-subscriber`'s `fmt` layer (for syslog, over a writer that sends each line
//! as one datagram), the journal is `tracing-journald`'s layer. A decision ([`decision`])
//! carries its facts as fields: keys of a JSON line, and `SCANSENTRY_*` fields in the journal
//! (`journalctl SCANSENTRY_ADDRESS=203.0.113.7`). [`install`] sets up the subscriber and
//! returns the [`Logger`] through which a reload switches target and format.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry, reload};

pub use crate::config::{LogFormat as Format, LogTarget as Target};

/// The prefix of a decision's fields in the journal: `SCANSENTRY_ADDRESS`, `SCANSENTRY_DECISION`.
pub const JOURNAL_PREFIX: &str = "SCANSENTRY";

/// A decision's event: its line as the message, its facts as fields (`address`, `network`,
/// `kinds`, `actor`, `ports`, `tripwire`, `signature`, `probes`, `window_ms`, `duration_s`, `offence`, `decision`, `reason`, each
/// as [`Event`](crate::report::Event)'s method of that name says it; the ones a decision does
/// not name are left out).
pub fn decision(e: &crate::report::Event) {
    tracing::info!(
        address = %e.address(),
        network = e.network().map(tracing::field::display),
        kinds = e.kind(),
        actor = e.actor().as_str(),
        ports = e.ports(),
        tripwire = e.tripwire(),
        signature = e.signature(),
        probes = e.probes(),
        window_ms = e.window_ms(),
        duration_s = e.duration_s(),
        offence = e.offence(),
        decision = e.decision(),
        reason = e.reason(),
        "{}",
        e.line()
    );
}

/// An [`Act`](crate::report::Act)'s event: its line as the message, its facts as fields
/// (`decision`, `actor`, and those it has of `address`, `duration_s`, `count`, `finding`,
/// `ports`, `uid`): `journalctl SCANSENTRY_ADDRESS=203.0.113.7` finds a block by hand too.
pub fn act(a: &crate::report::Act, level: tracing::Level) {
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                $level,
                decision = a.decision(),
                actor = a.actor.as_str(),
                address = a.address(),
                duration_s = a.duration_s,
                count = a.count,
                finding = a.finding,
                ports = a.ports.as_deref(),
                uid = a.uid,
                reason = a.reason,
                "{}",
                a.line
            )
        };
    }
    match level {
        tracing::Level::ERROR => at!(tracing::Level::ERROR),
        tracing::Level::WARN => at!(tracing::Level::WARN),
        _ => at!(tracing::Level::INFO),
    }
}

/// The one writing layer, chosen by target and format.
type Writing = Box<dyn Layer<Registry> + Send + Sync>;

/// The handle through which a reload switches target and format.
pub struct Logger {
    handle: reload::Handle<Writing, Registry>,
    /// What the layer in place was made for.
    current: Mutex<InPlace>,
    detached: bool,
}

/// What the layer in place was made for, and whether it reached its target (syslog's or the
/// journal's socket could be had; otherwise it writes to standard output instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InPlace {
    target: Target,
    format: Format,
    reached: bool,
}

impl InPlace {
    /// Whether a reload to `target` and `format` makes the layer anew: when either changed,
    /// or when the layer in place fell back to standard output (the journal's socket was
    /// missing at start, say: each reload tries it again).
    fn remake(self, target: Target, format: Format) -> bool {
        (self.target, self.format) != (target, format) || !self.reached
    }
}

impl Logger {
    /// Switches target and format (on reload), or tries again a target that could not be
    /// reached (said once, on the target it reached: "logging to the journal again"); a
    /// no-op when neither changed and the target was reached.
    pub fn reconfigure(&self, target: Target, format: Format) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if !current.remake(target, format) {
            return;
        }
        let retried = !current.reached && current.target == target;
        let (layer, reached) = writing(target, format, self.detached);
        let _ = self.handle.reload(layer);
        *current = InPlace {
            target,
            format,
            reached,
        };
        drop(current);
        if retried && reached {
            tracing::info!("logging to {} again", target_name(target));
        }
    }
}

/// How a target is named in what the daemon says of it.
fn target_name(target: Target) -> &'static str {
    match target {
        Target::Stdout => "standard output",
        Target::Syslog => "syslog",
        Target::Journald => "the journal",
    }
}

/// Installs the process's subscriber: events at `max` and above go to `target` in `format`
/// (the libraries' own only from warnings up: the NATS client's "connected" is not the
/// daemon's to say). Detached (`sentryd -D`), standard output is /dev/null: what is meant for it goes to
/// syslog.
///
/// # Panics
///
/// If a subscriber was installed already (this is called once, at start).
pub fn install(target: Target, format: Format, max: tracing::Level, detached: bool) -> Logger {
    let (layer, reached) = writing(target, format, detached);
    let (layer, handle) = reload::Layer::new(layer);
    let subscriber = tracing_subscriber::registry().with(layer).with(
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing::Level::WARN)
            .with_target("scansentry", max),
    );
    tracing::subscriber::set_global_default(subscriber)
        .expect("sentryd installs its log subscriber once");
    Logger {
        handle,
        current: Mutex::new(InPlace {
            target,
            format,
            reached,
        }),
        detached,
    }
}

/// The layer for `target` and `format`, and whether it reached its target. If syslog or the
/// journal cannot be reached, lines go to standard output, and a warning on standard error
/// says why (and, detached, that they are lost).
fn writing(target: Target, format: Format, detached: bool) -> (Writing, bool) {
    let target = match target {
        Target::Stdout if detached => Target::Syslog,
        other => other,
    };
    let unreachable = |what: &str, e: io::Error| {
        if detached {
            eprintln!(
                "sentryd: warning: cannot log to {what} ({e}), and standard output is gone \
                 (-D): lines are lost; start syslog, or run sentryd without -D"
            );
        } else {
            eprintln!("sentryd: warning: cannot log to {what} ({e}); logging to standard output");
        }
    };
    match target {
        Target::Stdout => (lines(format, Some(Utc), stdout_or_stderr()), true),
        Target::Syslog => match Syslog::connect("/dev/log") {
            // The syslog daemon adds the time and host.
            Ok(syslog) => (lines(format, None, syslog), true),
            Err(e) => {
                unreachable("/dev/log", e);
                (lines(format, Some(Utc), stdout_or_stderr()), false)
            }
        },
        Target::Journald => match tracing_journald::layer() {
            Ok(journal) => (
                Box::new(
                    journal
                        .with_field_prefix(Some(JOURNAL_PREFIX.into()))
                        .with_syslog_identifier("sentryd".into())
                        .with_priority_mappings(tracing_journald::PriorityMappings {
                            // The syslog severities the daemon has always used: a block is
                            // informational, not a notice.
                            info: tracing_journald::Priority::Informational,
                            debug: tracing_journald::Priority::Debug,
                            ..tracing_journald::PriorityMappings::new()
                        }),
                ),
                true,
            ),
            Err(e) => {
                unreachable("the journal", e);
                (lines(format, Some(Utc), stdout_or_stderr()), false)
            }
        },
    }
}

/// Warnings and errors to standard error, the rest to standard output.
fn stdout_or_stderr() -> impl for<'w> MakeWriter<'w> + Send + Sync + 'static {
    io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(io::stdout)
}

/// One line per event through `writer`: in text, the time (when `time` is given) and the
/// message alone, whose words already say every field (its control characters escaped:
/// [`one_line`](crate::text::one_line)); in JSON, an object with the time, the
/// level, the message and every field.
fn lines<W>(format: Format, time: Option<Utc>, writer: W) -> Writing
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_writer(writer);
    match (format, time) {
        (Format::Text, time) => {
            let text =
                base.with_level(false)
                    .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
                        |w, field, value| {
                            if field.name() == "message" {
                                // One event, one line, whatever its text holds.
                                let message = format!("{value:?}");
                                write!(w, "{}", crate::text::one_line(&message))
                            } else {
                                Ok(())
                            }
                        },
                    ));
            match time {
                Some(utc) => Box::new(text.with_timer(utc)),
                None => Box::new(text.without_time()),
            }
        }
        (Format::Json, time) => Box::new(base.event_format(JsonLine { time })),
    }
}

/// A JSON log line (schema [`SCHEMA`](crate::report::SCHEMA)): `timestamp` first (when the
/// line has one: fail2ban's date pattern looks for it there), then `schema`, `level` in lower
/// case, `message`, and the event's fields in their public form
/// ([`report::public_fields`](crate::report::public_fields)).
struct JsonLine {
    time: Option<Utc>,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLine
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let timestamp = self.time.map(|_| {
            use crate::time::Clock;
            crate::time::SystemClock.now().to_string()
        });
        writeln!(
            w,
            "{}",
            crate::report::json_line(timestamp.as_deref(), &level, fields.0)
        )
    }
}

/// An event's fields as JSON values: numbers and booleans as such, the rest as text.
#[derive(Default)]
struct Fields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// The time as scansentry writes it everywhere: UTC, RFC 3339, microseconds.
#[derive(Clone, Copy, Debug)]
struct Utc;

impl FormatTime for Utc {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        use crate::time::Clock;
        write!(w, "{}", crate::time::SystemClock.now())
    }
}

/// Syslog's local socket: each event one datagram, `<PRI>sentryd[PID]: line` (RFC 3164,
/// facility daemon).
#[derive(Clone)]
struct Syslog(Arc<UnixDatagram>);

impl Syslog {
    fn connect(path: &str) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Syslog(Arc::new(socket)))
    }
}

impl Syslog {
    /// A line at syslog's `severity`.
    fn line(&self, severity: u8) -> SyslogLine {
        SyslogLine {
            socket: Arc::clone(&self.0),
            line: format!("<{}>sentryd[{}]: ", 3 * 8 + severity, std::process::id()).into_bytes(),
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.line(6)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        self.line(match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        })
    }
}

/// One event's line for syslog, sent when the formatter is done with it.
struct SyslogLine {
    socket: Arc<UnixDatagram>,
    line: Vec<u8>,
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        while self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        // A syslog daemon that is gone loses the line; the daemon goes on.
        let _ = self.socket.send(&self.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Event, Mode};

    /// What the layer wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// A block of 203.0.113.7 for a SYN scan of three ports in 12 ms.
    fn block() -> Event {
        let addr: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let at = crate::time::Timestamp::from_micros;
        let d = crate::detect::Detection {
            source: "203.0.113.7/32".parse().unwrap(),
            addr,
            kinds: crate::detect::ScanKinds::of(crate::wire::ProbeKind::Syn),
            ports: [21, 22, 23].map(|p| (crate::wire::Proto::Tcp, p)).to_vec(),
            first_seen: at(1_000_000),
            last_seen: at(1_012_000),
            packets: 3,
            score: 21,
            several_addresses: false,
            arrived_on: None,
            tripwire: None,
            signature: None,
        };
        let decision = crate::respond::Decision::Block {
            net: "203.0.113.7/32".parse().unwrap(),
            ttl: std::time::Duration::from_secs(3600),
            offence: 1,
            replaces: Vec::new(),
        };
        Event::of(&d, &decision, Mode::Enforcing)
    }

    /// Issue 27: a tripwire block's JSON line carries its port as `tripwire`, in the schema.
    #[test]
    fn a_tripwire_blocks_json_line_names_its_port() {
        let mut d = block().detection().clone();
        d.tripwire = Some((crate::wire::Proto::Tcp, 2323));
        let decision = crate::respond::Decision::Block {
            net: "203.0.113.7/32".parse().unwrap(),
            ttl: std::time::Duration::from_secs(3600),
            offence: 1,
            replaces: Vec::new(),
        };
        let buffer = Buffer::default();
        let subscriber = Registry::default().with(lines(Format::Json, Some(Utc), buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            super::decision(&Event::of(&d, &decision, Mode::Enforcing));
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            line["tripwire"],
            serde_json::json!({"port": 2323, "proto": "tcp"})
        );
        assert!(
            line["message"]
                .as_str()
                .unwrap()
                .contains(": tripwire 2323/tcp, syn scan"),
            "{line}"
        );
        crate::ctl::json::check_schema(&line);
    }

    /// The lines `layer` writes for a block and a warning.
    fn written(format: Format, time: Option<Utc>) -> String {
        let buffer = Buffer::default();
        let subscriber = Registry::default().with(lines(format, time, buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            decision(&block());
            tracing::warn!("could not save the state");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn text_lines_are_the_time_and_the_message_alone() {
        let text = written(Format::Text, Some(Utc));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (time, message) = lines[0].split_once(' ').unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
        assert!(time.ends_with('Z') && time.len() == "2026-11-29T16:58:02.123456Z".len());
        assert_eq!(
            message,
            "blocked 203.0.113.7 for 1h: syn scan, 3 ports in 0.0s"
        );
        assert!(lines[1].ends_with(" could not save the state"), "{text}");
        assert_eq!(
            written(Format::Text, None).lines().next(),
            Some("blocked 203.0.113.7 for 1h: syn scan, 3 ports in 0.0s")
        );
    }

    /// Red team of issue 26: text from outside (a listener's path in an audit finding) with a
    /// newline made a line of its own, which the fail2ban filter took for a block; each event
    /// is one line, in text as in JSON.
    #[test]
    fn issue_26_red_an_event_with_a_newline_in_its_text_is_one_line() {
        let evil = "audit: new: 0.0.0.0 4444/tcp (nobody pid 7 /tmp/x\n\
                    blocked 203.0.113.9 for 1h: syn scan, 3 ports in 0.1s\r\u{1b}[2K)";
        for (format, time) in [
            (Format::Text, Some(Utc)),
            (Format::Text, None),
            (Format::Json, Some(Utc)),
        ] {
            let buffer = Buffer::default();
            let subscriber = Registry::default().with(lines(format, time, buffer.clone()));
            tracing::subscriber::with_default(subscriber, || tracing::warn!("{evil}"));
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(!text.contains(['\r', '\u{1b}']), "{text:?}");
            assert!(text.contains(r"/tmp/x\nblocked 203.0.113.9"), "{text}");
        }
    }

    #[test]
    fn json_lines_carry_every_fact_of_a_decision_as_a_key() {
        let text = written(Format::Json, Some(Utc));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let block = &lines[0];
        assert_eq!(
            block["message"],
            "blocked 203.0.113.7 for 1h: syn scan, 3 ports in 0.0s"
        );
        assert_eq!(block["level"], "info");
        assert_eq!(block["schema"], crate::report::SCHEMA);
        assert_eq!(block["actor"], "daemon");
        assert_eq!(block["address"], "203.0.113.7");
        assert_eq!(block["network"], "203.0.113.7/32");
        assert_eq!(block["kinds"], serde_json::json!(["syn"]));
        assert_eq!(
            block["ports"],
            serde_json::json!([
                {"port": 21, "proto": "tcp"},
                {"port": 22, "proto": "tcp"},
                {"port": 23, "proto": "tcp"}
            ])
        );
        assert_eq!(block["probes"], 3);
        assert_eq!(block["window_ms"], 12);
        assert_eq!(block["duration_s"], 3600);
        assert_eq!(block["offence"], 1);
        assert_eq!(block["decision"], "block");
        assert!(
            block.get("reason").is_none(),
            "a field a decision lacks is left out"
        );
        assert!(humantime::parse_rfc3339(block["timestamp"].as_str().unwrap()).is_ok());
        assert_eq!(lines[1]["level"], "warn");
        assert_eq!(lines[1]["message"], "could not save the state");
        assert!(
            text.starts_with("{\"timestamp\":"),
            "fail2ban's date pattern: {text}"
        );
        for line in &lines {
            crate::ctl::json::check_schema(line);
        }
    }

    /// Every act: its line and its fields, valid under the shipped schema.
    fn acts() -> Vec<(crate::report::Act, tracing::Level)> {
        use crate::report::{Act, Actor, Did, Mode};
        let net = |s: &str| Some(s.parse::<ipnet::IpNet>().unwrap());
        let mut block = Act::new(
            Did::Block,
            Mode::Enforcing,
            Actor::Sentryctl,
            "blocked 198.51.100.9 for 2h by hand".into(),
        );
        block.address = net("198.51.100.9/32");
        block.duration_s = Some(7200);
        block.uid = Some(0);
        let mut unblock = Act::new(
            Did::Unblock,
            Mode::DryRun,
            Actor::Sentryctl,
            "would unblock 198.51.100.9 by hand".into(),
        );
        unblock.address = net("198.51.100.9/32");
        let mut all = Act::new(
            Did::UnblockAll,
            Mode::Enforcing,
            Actor::Sentryctl,
            "lifted all 2 blocks by hand".into(),
        );
        all.count = Some(2);
        let reload = Act::new(
            Did::Reload,
            Mode::Enforcing,
            Actor::Signal,
            "reloaded the configuration from x".into(),
        );
        let refused = Act::new(
            Did::ReloadRefused,
            Mode::Enforcing,
            Actor::Sentryctl,
            "reload refused, still running on the previous configuration: x".into(),
        );
        let mut audit = Act::new(
            Did::Audit,
            Mode::Enforcing,
            Actor::Daemon,
            "audit: new: 0.0.0.0 22/tcp".into(),
        );
        audit.address = net("0.0.0.0/32");
        audit.ports = Some("22/tcp".into());
        audit.finding = Some("new");
        // Issue 27: the kernel's first line held a source; the daemon lifted a hold.
        let mut hold = Act::new(
            Did::Hold,
            Mode::Enforcing,
            Actor::Kernel,
            "the kernel's first line held 203.0.113.7 for 5s after a probe to 902/tcp (SYN)".into(),
        );
        hold.address = net("203.0.113.7/32");
        hold.ports = Some("902/tcp".into());
        hold.duration_s = Some(5);
        let mut lift = Act::new(
            Did::LiftHold,
            Mode::Enforcing,
            Actor::Daemon,
            "lifted the kernel's hold of 203.0.113.8: 902/tcp, which it probed, has a \
             listener now"
                .into(),
        );
        lift.address = net("203.0.113.8/32");
        lift.reason = Some("listener");
        vec![
            (block, tracing::Level::INFO),
            (unblock, tracing::Level::INFO),
            (all, tracing::Level::INFO),
            (reload, tracing::Level::INFO),
            (refused, tracing::Level::WARN),
            (audit, tracing::Level::WARN),
            (hold, tracing::Level::INFO),
            (lift, tracing::Level::INFO),
        ]
    }

    #[test]
    fn acts_are_events_with_fields_in_the_schema() {
        let buffer = Buffer::default();
        let subscriber = Registry::default().with(lines(Format::Json, Some(Utc), buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for (a, level) in acts() {
                act(&a, level);
            }
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 8, "{text}");
        for line in &lines {
            crate::ctl::json::check_schema(line);
        }
        let words: Vec<&str> = lines
            .iter()
            .map(|l| l["decision"].as_str().unwrap())
            .collect();
        assert_eq!(
            words,
            [
                "block",
                "would-unblock",
                "unblock-all",
                "reload",
                "reload-refused",
                "audit",
                "first-line-hold",
                "first-line-lift"
            ]
        );
        assert_eq!(lines[6]["actor"], "kernel");
        assert_eq!(
            lines[6]["ports"],
            serde_json::json!([{"port": 902, "proto": "tcp"}])
        );
        assert_eq!(
            (&lines[7]["actor"], &lines[7]["reason"]),
            (&"daemon".into(), &"listener".into())
        );
        assert_eq!(lines[0]["address"], "198.51.100.9");
        assert_eq!(lines[0]["actor"], "sentryctl");
        assert_eq!(lines[0]["duration_s"], 7200);
        assert_eq!(lines[0]["uid"], 0);
        assert_eq!(lines[0]["message"], "blocked 198.51.100.9 for 2h by hand");
        assert_eq!(lines[1]["address"], "198.51.100.9");
        assert_eq!(lines[2]["count"], 2);
        assert_eq!(lines[3]["actor"], "signal");
        assert_eq!(lines[4]["level"], "warn");
        assert_eq!(lines[5]["finding"], "new");
        assert_eq!(
            lines[5]["ports"],
            serde_json::json!([{"port": 22, "proto": "tcp"}])
        );
        assert!(
            lines[3].get("address").is_none(),
            "a fact an act lacks is left out"
        );
    }

    #[test]
    fn syslog_gets_one_datagram_per_event_with_its_severity() {
        let dir = std::env::temp_dir().join(format!("scansentry-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::connect(path.to_str().unwrap()).unwrap();
        let subscriber = Registry::default().with(lines(Format::Text, None, syslog));
        tracing::subscriber::with_default(subscriber, || {
            decision(&block());
            tracing::warn!("could not save the state");
        });
        let mut buf = [0u8; 512];
        let pid = std::process::id();
        for expected in [
            format!("<30>sentryd[{pid}]: blocked 203.0.113.7 for 1h: syn scan, 3 ports in 0.0s"),
            format!("<28>sentryd[{pid}]: could not save the state"),
        ] {
            let n = server.recv(&mut buf).unwrap();
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), expected);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 26, 11: a reload makes the layer anew when its target or format changed, and
    /// also when the target in place was not reached (the journal's socket missing at start:
    /// the fallback to standard output is not for ever); otherwise it leaves it.
    #[test]
    fn issue_26_a_reload_tries_again_a_target_that_was_not_reached() {
        let fell_back = InPlace {
            target: Target::Journald,
            format: Format::Text,
            reached: false,
        };
        assert!(fell_back.remake(Target::Journald, Format::Text));
        let reached = InPlace {
            reached: true,
            ..fell_back
        };
        assert!(!reached.remake(Target::Journald, Format::Text));
        assert!(reached.remake(Target::Journald, Format::Json));
        assert!(reached.remake(Target::Stdout, Format::Text));
        // Standard output is always reached.
        let (_, stdout) = writing(Target::Stdout, Format::Text, false);
        assert!(stdout);
        // The journal is reached exactly when its socket takes a datagram.
        let socket = std::path::Path::new("/run/systemd/journal/socket");
        let (_, journal) = writing(Target::Journald, Format::Text, false);
        assert_eq!(
            journal,
            UnixDatagram::unbound()
                .and_then(|s| s.send_to(&[], socket))
                .is_ok()
        );
    }
}
