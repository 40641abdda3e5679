//! How scansentry writes words for people, the same everywhere: a duration one way, an error
//! with its causes, text from outside on one line. A leaf: it names nothing of the crate, so
//! configuration, audit and report alike may use it. **Pure.**

use std::time::Duration;

/// A duration as an administrator reads it, and as the configuration and `sentryctl` accept
/// it: `1h`, `59m 12s`, `1d 2h`, `1y` (365.25 days, as humantime reads it): whole seconds, one
/// letter a unit (not humantime's `1day`), `0s` for none.
pub fn human(d: Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, secs) in [
        ("y", 31_557_600),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if left >= secs {
            parts.push(format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    parts.join(" ")
}

/// The error and its causes, `: `-separated.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// `text` as one line of a log or a terminal: each control character (a newline, a carriage
/// return, an escape) written as Rust writes it escaped (`\n`, `\u{1b}`). What comes from
/// outside the daemon (the path of a listener's program, which its user chooses) then begins
/// no line of its own in the journal, which splits standard output at newlines, nor moves a
/// terminal's cursor.
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_one_way_that_the_parser_reads_back() {
        for (secs, text) in [
            (0, "0s"),
            (59, "59s"),
            (3600, "1h"),
            (86_400, "1d"),
            (93_784, "1d 2h 3m 4s"),
            (31_557_600, "1y"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(human(d), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), d);
        }
    }

    #[test]
    fn one_line_escapes_every_control_character_and_nothing_else() {
        assert_eq!(
            one_line("/tmp/x\nblocked 203.0.113.9 for 1h: \r\u{1b}[2K\u{85}\t"),
            r"/tmp/x\nblocked 203.0.113.9 for 1h: \r\u{1b}[2K\u{85}\t"
        );
        assert_eq!(
            one_line("blocked \"é\" 203.0.113.9"),
            "blocked \"é\" 203.0.113.9"
        );
    }
}
