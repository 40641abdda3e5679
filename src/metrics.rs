//! What sentryd counts for Prometheus, and the exposition a scrape gets. **Pure.**
//!
//! The engine keeps a [`Tally`] (what `status` does not already count: detections by kind,
//! decisions, firewall errors, the block latency histogram); [`exposition`] writes it with the
//! status's counters, from one table of metric families, in the format the scraper asked for
//! ([`Format::negotiate`]): Prometheus's text format 0.0.4 by default, OpenMetrics 1.0.0 when
//! its `Accept` header prefers it, as Prometheus's own client libraries choose.
//!
//! A labelled counter is written for every value of its label's vocabulary from the first
//! scrape, at zero until it counts (a panel of rates is then never empty, and `increase()`
//! sees the first one): decisions for each [`Outcome`] in the daemon's mode, detections for
//! each kind of probe, probes not counted for each [`NotCounted`], the fleet's refusals for
//! each [`RefusedBy`] and [`ProbeRefusedBy`]. Only the link's drops by why
//! (`fleet_received_dropped`) are written as they happen (their words are the shell's).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::control::protocol::{FirstLineInfo, FleetInfo, StatusInfo};
use crate::detect::ScanKinds;
use crate::fleet::{ProbeRefusedBy, RefusedBy};
use crate::report::{HoldOutcome, Mode, NotCounted, Outcome};

/// The upper bounds of the block latency histogram's buckets, microseconds: from the capture of
/// the probe that made a detection to the kernel's acknowledgement of its block.
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Totals since the daemon started, beyond the status's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Detections by kind of probe (a detection of several kinds counts under each).
    pub detections_by_kind: BTreeMap<&'static str, u64>,
    /// Decisions: `block`, `refresh`, `already-blocked`, or for one that did not block, the
    /// rule that kept it (`budget`, `never-block`, `grace`, `min-ports`, `reverse-path`,
    /// `protected`); in a dry run `would-block`, `would-refresh`.
    pub decisions: BTreeMap<&'static str, u64>,
    /// Firewall calls on the way to a block or an unblock that failed (netlink errors, the
    /// kernel's refusals).
    pub firewall_errors: u64,
    /// Block latencies.
    pub latency: Latency,
}

/// The block latency histogram: a count per bucket of [`LATENCY_BOUNDS_US`], one more for
/// what is above the last, and the sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    counts: [u64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: u64,
}

impl Latency {
    /// Counts one block that took `us` microseconds.
    pub fn observe(&mut self, us: u64) {
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.counts[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Blocks counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Its samples after the family's name: `_bucket{le="…"}` for each bound in seconds
    /// (cumulative, as both formats count them) and `+Inf`, then `_sum` (seconds) and
    /// `_count`.
    fn samples(&self) -> Vec<(String, String)> {
        let mut below = 0;
        let mut out = Vec::with_capacity(self.counts.len() + 2);
        for (i, n) in self.counts.iter().enumerate() {
            below += n;
            let le = LATENCY_BOUNDS_US
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |&us| seconds(us));
            out.push((format!("_bucket{{le=\"{le}\"}}"), below.to_string()));
        }
        out.push(("_sum".into(), seconds(self.sum_us)));
        out.push(("_count".into(), below.to_string()));
        out
    }
}

/// `us` microseconds as seconds, in the canonical form of a float (`0.0001`, `1.0`).
fn seconds(us: u64) -> String {
    #[expect(
        clippy::cast_precision_loss,
        reason = "microsecond bounds and sums far below 2^53"
    )]
    let s = us as f64 / 1e6;
    format!("{s:?}")
}

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus's text format, version 0.0.4: what a scraper gets unless it asks for
    /// OpenMetrics.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format for a request's `Accept` header, as Prometheus's client libraries choose:
    /// its media ranges by quality, highest first (in the header's order among equals), and
    /// the first of them served; text when none is (or there is no header). A range is served
    /// when it is `text/plain` of version 0.0.4 or none, or `application/openmetrics-text`
    /// of version 1.0.0 or none; a quality of 0 refuses it.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut ranges: Vec<(f64, Option<Format>)> = accept
            .unwrap_or_default()
            .split(',')
            .map(Self::range)
            .filter(|&(q, _)| q > 0.0)
            .collect();
        // Stable: the header's order among equals.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, format)| format)
            .unwrap_or(Format::Text)
    }

    /// One media range of an `Accept` header: its quality, and the format it names if one
    /// is served.
    fn range(range: &str) -> (f64, Option<Format>) {
        let mut parts = range.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut version, mut q) = (None, 1.0);
        for param in parts {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "version" => version = Some(value.to_string()),
                // An unreadable quality refuses the range.
                "q" => q = value.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        let format = match (kind.as_str(), version.as_deref()) {
            ("text/plain", None | Some("0.0.4")) => Some(Format::Text),
            ("application/openmetrics-text", None | Some("1.0.0")) => Some(Format::OpenMetrics),
            _ => None,
        };
        (q, format)
    }
}

/// Reloads since start, as the shell counts them (a configuration can be refused before the
/// engine sees it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reloads {
    /// Taken.
    pub done: u64,
    /// Refused (the old configuration stayed).
    pub refused: u64,
}

/// A metric family's value.
enum Value {
    /// A counter.
    Counter(u64),
    /// A gauge.
    Gauge(usize),
    /// A counter per value of one label: the label's name, and each value's count.
    ByLabel(&'static str, BTreeMap<String, u64>),
    /// The block latency histogram.
    Histogram(Latency),
    /// An info family: one sample, 1, with these labels.
    Info(Vec<(&'static str, String)>),
}

/// One row of the table of metric families: its name after `scansentry_` (without a
/// counter's `_total` and an info family's `_info`), its help, its value.
struct Row(&'static str, &'static str, Value);

/// A counter row.
fn counter(name: &'static str, help: &'static str, v: u64) -> Row {
    Row(name, help, Value::Counter(v))
}

/// A gauge row.
fn gauge(name: &'static str, help: &'static str, v: usize) -> Row {
    Row(name, help, Value::Gauge(v))
}

/// A row of counters by the value of `label`: one for each of `every` (at zero until it
/// counts), and for any other value `counted` has.
fn by_label<'a, K: AsRef<str> + 'a>(
    name: &'static str,
    help: &'static str,
    label: &'static str,
    every: impl IntoIterator<Item = &'static str>,
    counted: impl IntoIterator<Item = (&'a K, &'a u64)>,
) -> Row {
    let mut values: BTreeMap<String, u64> = every.into_iter().map(|v| (v.into(), 0)).collect();
    for (k, n) in counted {
        *values.entry(k.as_ref().to_string()).or_default() += n;
    }
    Row(name, help, Value::ByLabel(label, values))
}

/// What the build is: `scansentry_build_info{version, arch} 1`.
fn build_info() -> Row {
    Row(
        "build",
        "The version of sentryd that runs, and the architecture it was built for.",
        Value::Info(vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("arch", std::env::consts::ARCH.to_string()),
        ]),
    )
}

/// The decision labels of the daemon's mode (`status.mode`): [`Outcome::label`] of each of
/// [`Outcome::ALL`].
fn decision_labels(status: &StatusInfo) -> impl Iterator<Item = &'static str> {
    let mode = if status.mode == "dry-run" {
        Mode::DryRun
    } else {
        Mode::Enforcing
    };
    Outcome::ALL.into_iter().map(move |o| o.label(mode))
}

/// `scansentry_blocks_active`'s help, and `scansentry_blocks_kernel_only`'s.
const BLOCKS_ACTIVE: &str = "Blocks in force: the elements the kernel holds in our block sets.";
const KERNEL_ONLY: &str =
    "Of blocks_active, the elements scansentry did not make (added with nft).";

/// The metric families of every daemon, in the order they are written.
fn rows(status: &StatusInfo, tally: &Tally, reloads: Reloads) -> Vec<Row> {
    let not_counted = status.not_blocked.iter().filter(|(rule, _)| {
        NotCounted::ALL
            .iter()
            .any(|why| why.as_str() == rule.as_str())
    });
    vec![
        build_info(),
        counter("packets", "Frames captured.", status.packets),
        counter("probes", "Probes counted by the detector.", status.probes),
        by_label(
            "detections_by_kind",
            "Detections since start, by kind of probe (a detection of several kinds counts \
             under each).",
            "kind",
            ScanKinds::ALL.names(),
            &tally.detections_by_kind,
        ),
        counter("detections", "Detections.", status.detections),
        by_label(
            "decisions",
            "Decisions since start: block, refresh, already-blocked (would-block, \
             would-refresh in a dry run), the rule that kept a detection from a block, or \
             unblock (an element deleted outside scansentry).",
            "decision",
            decision_labels(status),
            &tally.decisions,
        ),
        by_label(
            "probes_not_counted",
            "Probe-like packets never counted: from sources no scanner can have, or with a \
             wrong checksum.",
            "reason",
            NotCounted::ALL.map(NotCounted::as_str),
            not_counted,
        ),
        gauge("blocks_active", BLOCKS_ACTIVE, status.blocks_active),
        gauge("blocks_kernel_only", KERNEL_ONLY, status.blocks_kernel_only),
        gauge(
            "dry_run_would_block",
            "Blocks a dry run imagines now (in no kernel, not in blocks_active).",
            status.would_block,
        ),
        gauge("blocks_max", "[respond] max-blocks.", status.max_blocks),
        counter(
            "budget_refusals",
            "Detections refused by the budget.",
            status.refused,
        ),
        counter(
            "capture_drops",
            "Frames the kernel dropped before capture.",
            status.capture_drops,
        ),
        counter(
            "firewall_errors",
            "Failed firewall changes on the way to a block or an unblock.",
            tally.firewall_errors,
        ),
        Row(
            "block_latency_seconds",
            "From the capture of the probe that made a detection to the kernel's \
             acknowledgement of its block.",
            Value::Histogram(tally.latency.clone()),
        ),
        counter("reloads", "Reloads taken.", reloads.done),
        counter(
            "reloads_refused",
            "Reloads refused (the old configuration stayed).",
            reloads.refused,
        ),
        gauge(
            "protected_peers",
            "Addresses kept from automatic blocks as protected peers.",
            status.protected_peers,
        ),
        counter("uptime_seconds", "Seconds since start.", status.uptime),
    ]
}

/// The fragment counters (issue 28): one family, by outcome.
fn fragment_row(status: &StatusInfo) -> Row {
    by_label(
        "fragments",
        "IP fragments since start, by what became of their datagrams: reassembled whole, \
         tiny (a first fragment that cut the TCP header), overlapping (discarded), \
         timed-out, dropped (for a bound of the reassembler).",
        "outcome",
        crate::pipeline::FRAGMENT_OUTCOMES,
        &status.fragments,
    )
}

/// Issue 28's evidence beyond trap ports: one family, by kind.
fn evidence_row(status: &StatusInfo) -> Row {
    by_label(
        "evidence",
        "Evidence beyond trap ports since start, by kind: probes recognised as a known \
         tool's (tool-fingerprint), nmap service probes (version-probe), sources named \
         likely decoys of a scan (decoy-verdict).",
        "kind",
        crate::pipeline::EVIDENCE_KINDS,
        &status.evidence,
    )
}

/// The metric families of the kernel's first line, when the firewall keeps one.
fn first_line_rows(f: &FirstLineInfo) -> Vec<Row> {
    vec![
        gauge(
            "first_line_holds_active",
            "Sources the kernel's first line holds now.",
            f.holds_active,
        ),
        by_label(
            "first_line_holds",
            "Holds of the kernel's first line since start, by what became of them: blocked \
             by the daemon, lifted (by the rule that lifted it), ended without a block, or \
             untracked (past the holds the daemon keeps).",
            "outcome",
            HoldOutcome::ALL.map(HoldOutcome::as_str),
            &f.holds,
        ),
        counter(
            "first_line_score_full",
            "Probes the kernel's first line did not count: its pairs or score sets were full.",
            f.score_full,
        ),
        counter(
            "first_line_hold_full",
            "Holds the kernel's first line did not make: its hold sets were full.",
            f.hold_full,
        ),
    ]
}

/// The metric families of fleet mode.
fn fleet_rows(fleet: &FleetInfo) -> Vec<Row> {
    vec![
        gauge(
            "fleet_connected",
            "1 when connected to a NATS server of the fleet.",
            usize::from(fleet.connected),
        ),
        gauge(
            "fleet_members",
            "Hosts of the fleet heard from lately, this one included.",
            fleet.members,
        ),
        gauge(
            "fleet_queued",
            "Messages waiting to be sent to the fleet.",
            fleet.queued,
        ),
        counter(
            "fleet_dropped",
            "Fleet messages dropped: outgoing from a full queue, incoming past the bound.",
            fleet.dropped,
        ),
        counter("fleet_sent", "Messages sent to the fleet.", fleet.sent),
        counter(
            "fleet_received",
            "Messages received from the other hosts.",
            fleet.received,
        ),
        counter(
            "fleet_blocks_taken",
            "Blocks taken from the other hosts.",
            fleet.taken,
        ),
        counter(
            "fleet_probes_sent",
            "Probe summaries sent to the fleet (for the owners of sweep counts).",
            fleet.probes_sent,
        ),
        counter(
            "fleet_probes_dropped",
            "Probes not checked nor told to the fleet, past the rate a host may check and send.",
            fleet.probes_dropped,
        ),
        by_label(
            "fleet_probes_refused",
            "Probes not told to the fleet by the local check that refused each, and summaries \
             from the other hosts not counted, unverified by their senders.",
            "rule",
            ProbeRefusedBy::ALL.map(ProbeRefusedBy::as_str),
            &fleet.probes_refused,
        ),
        counter(
            "fleet_sweeps",
            "Sweeps found for the scanner prefixes this host owns.",
            fleet.sweeps,
        ),
        by_label(
            "fleet_received_dropped",
            "Messages from the other hosts the link dropped, by why.",
            "why",
            [],
            &fleet.dropped_in,
        ),
        by_label(
            "fleet_blocks_refused",
            "Blocks from the other hosts (and sweeps counted from their summaries) refused, and \
             unblocks not carried out, by the rule that refused each.",
            "rule",
            RefusedBy::ALL.map(RefusedBy::as_str),
            &fleet.refused,
        ),
    ]
}

/// Writes one row's family in `format`.
fn write_row(out: &mut String, format: Format, Row(name, help, value): &Row) {
    let name = format!("scansentry_{name}");
    let (kind, family) = match (value, format) {
        // Text names a counter's family by its sample; OpenMetrics without `_total`.
        (Value::Counter(_) | Value::ByLabel(..), Format::Text) => {
            ("counter", format!("{name}_total"))
        }
        (Value::Counter(_) | Value::ByLabel(..), Format::OpenMetrics) => ("counter", name.clone()),
        (Value::Gauge(_), _) => ("gauge", name.clone()),
        (Value::Histogram(_), _) => ("histogram", name.clone()),
        // Text has no info type: a gauge of 1.
        (Value::Info(_), Format::Text) => ("gauge", format!("{name}_info")),
        (Value::Info(_), Format::OpenMetrics) => ("info", name.clone()),
    };
    let _ = writeln!(out, "# HELP {family} {}", escape_help(help, format));
    let _ = writeln!(out, "# TYPE {family} {kind}");
    let labelled =
        |out: &mut String, sample: &str, labels: &[(&str, &str)], v: &dyn std::fmt::Display| {
            let _ = write!(out, "{sample}");
            for (i, (key, value)) in labels.iter().enumerate() {
                let open = if i == 0 { "{" } else { "," };
                let _ = write!(out, "{open}{key}=\"{}\"", escape_label(value));
            }
            let close = if labels.is_empty() { "" } else { "}" };
            let _ = writeln!(out, "{close} {v}");
        };
    match value {
        Value::Counter(v) => labelled(out, &format!("{name}_total"), &[], v),
        Value::Gauge(v) => labelled(out, &name, &[], v),
        Value::ByLabel(label, values) => {
            for (value, n) in values {
                labelled(out, &format!("{name}_total"), &[(label, value)], n);
            }
        }
        Value::Histogram(latency) => {
            for (suffix, v) in latency.samples() {
                let _ = writeln!(out, "{name}{suffix} {v}");
            }
        }
        Value::Info(labels) => {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            labelled(out, &format!("{name}_info"), &labels, &1);
        }
    }
}

/// A help text as `format` writes it: a backslash and a line feed escaped, and in
/// OpenMetrics a double quote too.
fn escape_help(help: &str, format: Format) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// A label's value as both formats write it: a backslash, a double quote and a line feed
/// escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The exposition of the daemon's counters (`scansentry_*`) in `format`: the table of
/// [`rows`], the fragments' ([`fragment_row`]) and the evidence's ([`evidence_row`]), and in
/// fleet mode the fleet's; OpenMetrics ends with `# EOF`.
pub fn exposition(status: &StatusInfo, tally: &Tally, reloads: Reloads, format: Format) -> String {
    let fleet = status.fleet.as_ref().map(fleet_rows).unwrap_or_default();
    let first_line = status
        .first_line
        .as_ref()
        .map(first_line_rows)
        .unwrap_or_default();
    let fragments = [fragment_row(status), evidence_row(status)];
    let mut text = String::new();
    for row in rows(status, tally, reloads)
        .iter()
        .chain(&fragments)
        .chain(&fleet)
        .chain(&first_line)
    {
        write_row(&mut text, format, row);
    }
    if format == Format::OpenMetrics {
        text.push_str("# EOF\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample `name{labels}` of `text`, as a number.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn the_exposition_holds_every_counter_with_its_value() {
        let status = StatusInfo {
            packets: 1000,
            probes: 120,
            detections: 3,
            blocks_active: 2,
            max_blocks: 65536,
            refused: 4,
            capture_drops: 5,
            uptime: 60,
            protected_peers: 1,
            not_blocked: [("bad-checksum".to_string(), 7), ("budget".to_string(), 4)].into(),
            ..StatusInfo::default()
        };
        let mut tally = Tally::default();
        tally.detections_by_kind.insert("syn", 2);
        tally.detections_by_kind.insert("null", 1);
        tally.decisions.insert("block", 2);
        tally.decisions.insert("protected", 1);
        tally.firewall_errors = 1;
        tally.latency.observe(800);
        tally.latency.observe(3_000);
        tally.latency.observe(2_000_000);
        let text = exposition(
            &status,
            &tally,
            Reloads {
                done: 2,
                refused: 1,
            },
            Format::OpenMetrics,
        );
        for (name, value) in [
            ("scansentry_packets_total", 1000.0),
            ("scansentry_probes_total", 120.0),
            ("scansentry_detections_total", 3.0),
            ("scansentry_detections_by_kind_total{kind=\"syn\"}", 2.0),
            ("scansentry_detections_by_kind_total{kind=\"null\"}", 1.0),
            ("scansentry_decisions_total{decision=\"block\"}", 2.0),
            ("scansentry_decisions_total{decision=\"protected\"}", 1.0),
            (
                "scansentry_probes_not_counted_total{reason=\"bad-checksum\"}",
                7.0,
            ),
            ("scansentry_blocks_active", 2.0),
            ("scansentry_blocks_max", 65536.0),
            ("scansentry_budget_refusals_total", 4.0),
            ("scansentry_capture_drops_total", 5.0),
            ("scansentry_firewall_errors_total", 1.0),
            ("scansentry_reloads_total", 2.0),
            ("scansentry_reloads_refused_total", 1.0),
            ("scansentry_protected_peers", 1.0),
            ("scansentry_block_latency_seconds_count", 3.0),
            ("scansentry_block_latency_seconds_bucket{le=\"0.001\"}", 1.0),
            ("scansentry_block_latency_seconds_bucket{le=\"0.005\"}", 2.0),
            ("scansentry_block_latency_seconds_bucket{le=\"1.0\"}", 2.0),
            ("scansentry_block_latency_seconds_bucket{le=\"+Inf\"}", 3.0),
        ] {
            assert_eq!(sample(&text, name), Some(value), "{name} in:\n{text}");
        }
        let sum = sample(&text, "scansentry_block_latency_seconds_sum").unwrap();
        assert!((sum - 2.0038).abs() < 1e-9, "{sum}");
        assert!(
            text.contains("# TYPE scansentry_block_latency_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Without fleet mode, no fleet metric.
        assert!(!text.contains("scansentry_fleet"), "{text}");
    }

    #[test]
    fn in_fleet_mode_the_link_and_the_fleets_blocks_are_counted() {
        let status = StatusInfo {
            fleet: Some(crate::control::protocol::FleetInfo {
                host: "web-1".into(),
                connected: true,
                members: 16,
                queued: 2,
                dropped: 3,
                sent: 40,
                received: 600,
                taken: 30,
                refused: [("never-block".to_string(), 1), ("rate-cap".to_string(), 5)].into(),
                probes_sent: 70,
                probes_dropped: 8,
                probes_refused: [
                    ("reverse-path".to_string(), 16),
                    ("unverified".to_string(), 4),
                ]
                .into(),
                sweeps: 2,
                dropped_in: [("over its origin's cap".to_string(), 3)].into(),
                ..Default::default()
            }),
            ..StatusInfo::default()
        };
        let text = exposition(&status, &Tally::default(), Reloads::default(), Format::Text);
        for (name, value) in [
            ("scansentry_fleet_connected", 1.0),
            ("scansentry_fleet_members", 16.0),
            ("scansentry_fleet_queued", 2.0),
            ("scansentry_fleet_dropped_total", 3.0),
            ("scansentry_fleet_sent_total", 40.0),
            ("scansentry_fleet_received_total", 600.0),
            ("scansentry_fleet_blocks_taken_total", 30.0),
            ("scansentry_fleet_probes_sent_total", 70.0),
            ("scansentry_fleet_probes_dropped_total", 8.0),
            (
                "scansentry_fleet_probes_refused_total{rule=\"reverse-path\"}",
                16.0,
            ),
            (
                "scansentry_fleet_probes_refused_total{rule=\"unverified\"}",
                4.0,
            ),
            ("scansentry_fleet_sweeps_total", 2.0),
            (
                "scansentry_fleet_blocks_refused_total{rule=\"never-block\"}",
                1.0,
            ),
            (
                "scansentry_fleet_blocks_refused_total{rule=\"rate-cap\"}",
                5.0,
            ),
            (
                "scansentry_fleet_received_dropped_total{why=\"over its origin's cap\"}",
                3.0,
            ),
        ] {
            assert_eq!(sample(&text, name), Some(value), "{name} in:\n{text}");
        }
    }

    /// Each row of the table is one family in the exposition, under a name of its own, with
    /// its help (a second row of one name would write the family twice, which Prometheus
    /// refuses).
    #[test]
    fn each_row_of_the_table_is_one_family_with_its_help() {
        let one = |k: &str| [(k.to_string(), 1)].into();
        let fleet = FleetInfo {
            refused: one("rate-cap"),
            probes_refused: one("unverified"),
            dropped_in: one("too big"),
            ..FleetInfo::default()
        };
        let status = StatusInfo {
            not_blocked: one("bad-checksum"),
            fleet: Some(fleet.clone()),
            ..StatusInfo::default()
        };
        let mut tally = Tally::default();
        tally.detections_by_kind.insert("syn", 1);
        tally.decisions.insert("block", 1);
        let rows: Vec<Row> = rows(&status, &tally, Reloads::default())
            .into_iter()
            .chain([fragment_row(&status), evidence_row(&status)])
            .chain(fleet_rows(&fleet))
            .collect();
        let names: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0).collect();
        assert_eq!(names.len(), rows.len(), "a name is used twice");
        let text = exposition(&status, &tally, Reloads::default(), Format::OpenMetrics);
        let types = text.lines().filter(|l| l.starts_with("# TYPE scansentry_"));
        assert_eq!(types.count(), rows.len(), "{text}");
        for Row(name, help, _) in &rows {
            let said = format!("# HELP scansentry_{name} {help}");
            assert!(
                text.lines().any(|l| l.starts_with(&said)),
                "{said} in:\n{text}"
            );
        }
    }

    /// Every metric the shipped Grafana dashboard queries (its panels and its `instance`
    /// variable) is one the endpoint serves from its first scrape, under that name, and every
    /// label value a query names is one of its series (a renamed metric or label value would
    /// leave a panel empty without a word).
    #[test]
    fn the_dashboard_queries_only_metrics_the_endpoint_serves() {
        let served = exposition(
            &StatusInfo::default(),
            &Tally::default(),
            Reloads::default(),
            Format::Text,
        );
        let series: Vec<&str> = served
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series))
            .collect();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../packaging/grafana/scansentry.json")).unwrap();
        let targets = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|panel| panel["targets"].as_array().unwrap())
            .map(|target| target["expr"].as_str().unwrap());
        let variables = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["query"].as_str().filter(|q| q.contains("scansentry_")));
        let mut queried = 0;
        for expr in targets.chain(variables) {
            for (at, _) in expr.match_indices("scansentry_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let of_name: Vec<&str> = series
                    .iter()
                    .copied()
                    .filter(|s| s.split('{').next() == Some(name.as_str()))
                    .collect();
                assert!(
                    !of_name.is_empty(),
                    "{name} ({expr}) is not served: {series:?}"
                );
                // Its matchers of a fixed value: `decision="block"` (not `instance=~"$…"`).
                let selector = expr[at + name.len()..]
                    .strip_prefix('{')
                    .unwrap_or_default();
                let selector = selector.split('}').next().unwrap_or_default();
                for matcher in selector.split(',').filter(|m| !m.contains('~')) {
                    assert!(
                        of_name.iter().any(|s| s.contains(matcher)),
                        "{matcher} ({expr}) is in no series of {name}: {of_name:?}"
                    );
                }
                queried += 1;
            }
        }
        assert!(queried >= 17, "{queried}");
    }

    /// Issue 26, 7: every labelled counter is there from the first scrape, at zero: a
    /// decision for each outcome of the daemon's mode, a detection for each kind of probe,
    /// each reason a probe is not counted, in fleet mode each rule of the fleet's refusals;
    /// and `build_info` says the version.
    /// Issue 28: the fragment counters, each outcome at zero from the first scrape, then as
    /// the status says.
    #[test]
    fn issue_28_fragments_are_counted_by_outcome() {
        let name = |outcome: &str| format!("scansentry_fragments_total{{outcome=\"{outcome}\"}}");
        let text = exposition(
            &StatusInfo::default(),
            &Tally::default(),
            Reloads::default(),
            Format::Text,
        );
        for outcome in crate::pipeline::FRAGMENT_OUTCOMES {
            assert_eq!(sample(&text, &name(outcome)), Some(0.0), "{text}");
        }
        let mut status = StatusInfo::default();
        status.fragments.insert("reassembled".into(), 300);
        status.fragments.insert("tiny".into(), 100);
        let text = exposition(&status, &Tally::default(), Reloads::default(), Format::Text);
        assert_eq!(sample(&text, &name("reassembled")), Some(300.0));
        assert_eq!(sample(&text, &name("tiny")), Some(100.0));
        assert_eq!(sample(&text, &name("overlapping")), Some(0.0));
    }

    /// Issue 28: the evidence beyond trap ports, each kind at zero from the first scrape,
    /// then as the status says.
    #[test]
    fn issue_28_evidence_is_counted_by_kind() {
        let name = |kind: &str| format!("scansentry_evidence_total{{kind=\"{kind}\"}}");
        let text = exposition(
            &StatusInfo::default(),
            &Tally::default(),
            Reloads::default(),
            Format::Text,
        );
        for kind in crate::pipeline::EVIDENCE_KINDS {
            assert_eq!(sample(&text, &name(kind)), Some(0.0), "{text}");
        }
        let mut status = StatusInfo::default();
        status.evidence.insert("tool-fingerprint".into(), 42);
        status.evidence.insert("decoy-verdict".into(), 3);
        let text = exposition(&status, &Tally::default(), Reloads::default(), Format::Text);
        assert_eq!(sample(&text, &name("tool-fingerprint")), Some(42.0));
        assert_eq!(sample(&text, &name("version-probe")), Some(0.0));
        assert_eq!(sample(&text, &name("decoy-verdict")), Some(3.0));
    }

    #[test]
    fn issue_26_every_labelled_counter_is_there_at_zero_from_the_first_scrape() {
        let text = exposition(
            &StatusInfo::default(),
            &Tally::default(),
            Reloads::default(),
            Format::Text,
        );
        let zero = |name: &str, label: &str, value: &str| {
            let name = format!("scansentry_{name}_total{{{label}=\"{value}\"}}");
            assert_eq!(sample(&text, &name), Some(0.0), "{name} in:\n{text}");
        };
        for outcome in Outcome::ALL {
            zero("decisions", "decision", outcome.label(Mode::Enforcing));
        }
        for decision in [
            "block",
            "refresh",
            "already-blocked",
            "budget",
            "never-block",
            "grace",
            "min-ports",
            "reverse-path",
            "protected",
        ] {
            zero("decisions", "decision", decision);
        }
        assert!(!text.contains("decision=\"would-block\""), "{text}");
        for kind in [
            "syn",
            "fin",
            "null",
            "xmas",
            "maimon",
            "odd-flags",
            "udp",
            "ack",
            "tiny-fragment",
            "fragment-overlap",
            "sctp-init",
            "sctp-cookie-echo",
            "ip-protocol",
            "version",
        ] {
            zero("detections_by_kind", "kind", kind);
        }
        assert_eq!(
            text.matches("scansentry_detections_by_kind_total{").count(),
            14,
            "{text}"
        );
        for reason in ["unroutable-source", "bad-checksum"] {
            zero("probes_not_counted", "reason", reason);
        }
        let build = format!(
            "scansentry_build_info{{version=\"{}\",arch=\"{}\"}}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        );
        assert_eq!(sample(&text, &build), Some(1.0), "{text}");

        // A dry run's decisions are its own words; a rule that did not block is counted on.
        let mut tally = Tally::default();
        tally.decisions.insert("would-block", 2);
        let dry = exposition(
            &StatusInfo {
                mode: "dry-run".into(),
                not_blocked: [("bad-checksum".to_string(), 3), ("grace".to_string(), 1)].into(),
                ..StatusInfo::default()
            },
            &tally,
            Reloads::default(),
            Format::Text,
        );
        for (name, value) in [
            ("scansentry_decisions_total{decision=\"would-block\"}", 2.0),
            (
                "scansentry_decisions_total{decision=\"would-refresh\"}",
                0.0,
            ),
            ("scansentry_decisions_total{decision=\"grace\"}", 0.0),
            (
                "scansentry_probes_not_counted_total{reason=\"bad-checksum\"}",
                3.0,
            ),
            (
                "scansentry_probes_not_counted_total{reason=\"unroutable-source\"}",
                0.0,
            ),
        ] {
            assert_eq!(sample(&dry, name), Some(value), "{name} in:\n{dry}");
        }
        assert!(!dry.contains("decision=\"block\""), "{dry}");
        assert!(!dry.contains("reason=\"grace\""), "{dry}");

        // In fleet mode, the fleet's refusals by rule too.
        let fleet = exposition(
            &StatusInfo {
                fleet: Some(FleetInfo::default()),
                ..StatusInfo::default()
            },
            &Tally::default(),
            Reloads::default(),
            Format::Text,
        );
        for rule in [
            "floor",
            "rate-cap",
            "space-cap",
            "ended",
            "unblocked",
            "never-block",
            "member",
            "reverse-path",
            "protected",
            "share",
            "held-cap",
            "shorter",
            "grace",
            "budget",
            "unblock-cap",
            "not-its-block",
        ] {
            let name = format!("scansentry_fleet_blocks_refused_total{{rule=\"{rule}\"}}");
            assert_eq!(sample(&fleet, &name), Some(0.0), "{name} in:\n{fleet}");
        }
        for rule in ["reverse-path", "protected", "unchecked", "unverified"] {
            let name = format!("scansentry_fleet_probes_refused_total{{rule=\"{rule}\"}}");
            assert_eq!(sample(&fleet, &name), Some(0.0), "{name} in:\n{fleet}");
        }
    }

    /// Issue 26, 7: the text format is what `promtool check metrics` passes (the privileged
    /// daemon test runs promtool on a real scrape): each family's HELP and TYPE name its
    /// samples (a counter's with `_total`, a histogram's before `_bucket`, `_sum`, `_count`),
    /// every family has a help that does not end in `..`, each family once, no `# EOF`. In
    /// OpenMetrics a counter's family has no `_total`, `build` is an info family, and the
    /// text ends with `# EOF`.
    #[test]
    fn issue_26_the_text_format_names_each_sample_by_its_family_with_help() {
        let fleet = FleetInfo {
            refused: [("rate-cap".to_string(), 1)].into(),
            dropped_in: [("too \"big\"\\".to_string(), 2)].into(),
            ..FleetInfo::default()
        };
        let status = StatusInfo {
            fleet: Some(fleet),
            ..StatusInfo::default()
        };
        let text = exposition(&status, &Tally::default(), Reloads::default(), Format::Text);
        let (mut helped, mut typed) = (Vec::new(), BTreeMap::new());
        let mut last_family: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty() && !help.ends_with(".."), "{line}");
                helped.push(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(helped.last().map(String::as_str), Some(name), "{line}");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(
                    typed.insert(name.to_string(), kind.to_string()).is_none(),
                    "twice: {line}"
                );
                last_family = Some((name.to_string(), kind.to_string()));
            } else {
                assert!(!line.starts_with('#'), "{line}");
                let sample = line.split(['{', ' ']).next().unwrap();
                let (family, kind) = last_family.as_ref().expect("a sample before its TYPE");
                let fits = match kind.as_str() {
                    "counter" => sample == family && family.ends_with("_total"),
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| sample.strip_suffix(s) == Some(family.as_str())),
                    _ => sample == family && !family.ends_with("_total"),
                };
                assert!(fits, "{line} under {family} ({kind})");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        assert_eq!(
            typed.get("scansentry_build_info").map(String::as_str),
            Some("gauge")
        );
        assert_eq!(
            typed.get("scansentry_packets_total").map(String::as_str),
            Some("counter")
        );
        assert!(!text.contains("# EOF"), "{text}");
        // A label's value escaped.
        assert!(
            text.contains(
                "scansentry_fleet_received_dropped_total{why=\"too \\\"big\\\"\\\\\"} 2\n"
            ),
            "{text}"
        );

        let om = exposition(
            &status,
            &Tally::default(),
            Reloads::default(),
            Format::OpenMetrics,
        );
        for line in [
            "# TYPE scansentry_packets counter",
            "scansentry_packets_total 0",
            "# TYPE scansentry_build info",
            "# TYPE scansentry_block_latency_seconds histogram",
            "scansentry_block_latency_seconds_bucket{le=\"+Inf\"} 0",
        ] {
            assert!(om.lines().any(|l| l == line), "{line} in:\n{om}");
        }
        assert!(
            om.ends_with("\n# EOF\n") && om.matches("# EOF").count() == 1,
            "{om}"
        );
        assert!(!om.contains("_total counter"), "{om}");
    }

    /// Issue 26, 7: the format is chosen as Prometheus's client libraries choose it.
    #[test]
    fn issue_26_the_format_is_negotiated_by_quality_then_order() {
        use Format::{OpenMetrics, Text};
        for (accept, format) in [
            (None, Text),
            (Some(""), Text),
            (Some("*/*"), Text),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; Version=1.0.0"),
                OpenMetrics,
            ),
            // Prometheus 2.x's own header.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            // Prometheus with OpenMetrics turned off (scrape_protocols).
            (Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"), Text),
            (
                Some("text/plain;q=0.5, application/openmetrics-text;q=0.9"),
                OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.5, text/plain;q=0.9"),
                Text,
            ),
            // Equal qualities: the header's order.
            (
                Some("application/openmetrics-text, text/plain"),
                OpenMetrics,
            ),
            (Some("text/plain, application/openmetrics-text"), Text),
            // A version not served, a refused range, an unreadable quality: passed over.
            (Some("application/openmetrics-text;version=0.0.1"), Text),
            (
                Some("application/openmetrics-text;version=2.0.0, text/plain;q=0.1"),
                Text,
            ),
            (Some("application/openmetrics-text;q=0"), Text),
            (Some("application/openmetrics-text;q=high"), Text),
            (
                Some("text/plain;version=0.0.5, application/openmetrics-text;q=0.2"),
                OpenMetrics,
            ),
            (Some(",,;;=,q=1"), Text),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
    }
}
