//! The Prometheus project's own checkers of a scrape of the metrics endpoint: Debian's
//! `promtool` for the text format, its Python OpenMetrics parser for OpenMetrics
//! (`scripts/install-deps --tests` installs both).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `program` with `args`, `input` on its standard input.
fn fed(program: &str, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (scripts/install-deps --tests installs it): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts that `promtool check metrics` passes `text` (Prometheus's text format) with
/// nothing to say: exit 0, no lint finding.
pub fn assert_promtool_passes(text: &str) {
    let checked = fed("promtool", &["check", "metrics"], text);
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics: {:?}\n{}{}\n{text}",
        checked.status,
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// The families the Prometheus project's OpenMetrics parser reads in `om` (it refuses a text
/// that breaks the format: a missing `# EOF`, a clashing name, a bad bucket), as
/// `name type` lines; panics with its error.
pub fn openmetrics_families(om: &str) -> Vec<String> {
    // Debian's python3, whose path has Debian's python3-prometheus-client.
    let parser = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        for f in p(sys.stdin.read()): print(f.name, f.type)\n";
    let parsed = fed("/usr/bin/python3", &["-c", parser], om);
    assert!(
        parsed.status.success(),
        "the OpenMetrics parser: {}\n{om}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
