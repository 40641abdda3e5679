//! What sentryd counts for Prometheus, and the exposition a scrape gets. **Pure.**
//!
//! The engine keeps a [`Tally`] (what `status` does not already count: detections by kind,
//! decisions, firewall errors, the block latency histogram); [`exposition`] writes it with the
//! status's counters in the Prometheus text format, through the Prometheus project's
//! `prometheus-client` (its types and encoder; the values are the daemon's own totals).

use std::collections::BTreeMap;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::control::protocol::{FleetInfo, StatusInfo};

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
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Seconds, as Prometheus wants; each bucket's own count (the encoder sums them), the
        // last bucket +Inf (`f64::MAX`, as prometheus-client writes it).
        #[expect(
            clippy::cast_precision_loss,
            reason = "microsecond bounds and sums far below 2^53"
        )]
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_US
            .iter()
            .map(|&b| b as f64 / 1e6)
            .chain([f64::MAX])
            .zip(self.counts)
            .collect();
        #[expect(clippy::cast_precision_loss, reason = "as above")]
        let sum = self.sum_us as f64 / 1e6;
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum,
            self.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
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
    ByLabel(&'static str, Vec<(String, u64)>),
    /// The block latency histogram.
    Histogram(Latency),
}

/// One row of the table of metric families: its name after `scansentry_`, its help, its value.
struct Row(&'static str, &'static str, Value);

/// A counter row.
fn counter(name: &'static str, help: &'static str, v: u64) -> Row {
    Row(name, help, Value::Counter(v))
}

/// A gauge row.
fn gauge(name: &'static str, help: &'static str, v: usize) -> Row {
    Row(name, help, Value::Gauge(v))
}

/// A row of counters by the value of `label`: one for each of `values`.
fn by_label<'a, K: AsRef<str> + 'a>(
    name: &'static str,
    help: &'static str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a K, &'a u64)>,
) -> Row {
    let values = values
        .into_iter()
        .map(|(k, n)| (k.as_ref().to_string(), *n))
        .collect();
    Row(name, help, Value::ByLabel(label, values))
}

/// The metric families of every daemon, in the order they are written.
fn rows(status: &StatusInfo, tally: &Tally, reloads: Reloads) -> Vec<Row> {
    let not_counted = status
        .not_blocked
        .iter()
        .filter(|(rule, _)| matches!(rule.as_str(), "unroutable-source" | "bad-checksum"));
    vec![
        counter("packets", "Frames captured.", status.packets),
        counter("probes", "Probes counted by the detector.", status.probes),
        by_label(
            "detections_by_kind",
            "Detections since start, by kind of probe (a detection of several kinds counts \
             under each).",
            "kind",
            &tally.detections_by_kind,
        ),
        counter("detections", "Detections.", status.detections),
        by_label(
            "decisions",
            "Decisions since start: block, refresh, already-blocked, would-block, \
             would-refresh, or the rule that kept a detection from a block.",
            "decision",
            &tally.decisions,
        ),
        by_label(
            "probes_not_counted",
            "Probe-like packets never counted: from sources no scanner can have, or with a \
             wrong checksum.",
            "reason",
            not_counted,
        ),
        gauge("blocks_active", "Blocks in force.", status.blocks_active),
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
            &fleet.dropped_in,
        ),
        by_label(
            "fleet_blocks_refused",
            "Blocks from the other hosts (and sweeps counted from their summaries) refused, and \
             unblocks not carried out, by the rule that refused each.",
            "rule",
            &fleet.refused,
        ),
    ]
}

/// Registers one row's family.
fn register(r: &mut Registry, Row(name, help, value): Row) {
    match value {
        Value::Counter(v) => r.register(name, help, ConstCounter::new(v)),
        Value::Gauge(v) => r.register(
            name,
            help,
            ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)),
        ),
        Value::ByLabel(label, values) => {
            let family = Family::<Vec<(String, String)>, Counter>::default();
            for (value, n) in values {
                family
                    .get_or_create(&vec![(label.to_string(), value)])
                    .inc_by(n);
            }
            r.register(name, help, family);
        }
        Value::Histogram(latency) => r.register(name, help, latency),
    }
}

/// The Prometheus text exposition of the daemon's counters (`scansentry_*`): the table of
/// [`rows`], and in fleet mode the fleet's.
pub fn exposition(status: &StatusInfo, tally: &Tally, reloads: Reloads) -> String {
    let mut r = Registry::with_prefix("scansentry");
    let fleet = status.fleet.as_ref().map(fleet_rows).unwrap_or_default();
    for row in rows(status, tally, reloads).into_iter().chain(fleet) {
        register(&mut r, row);
    }
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &r);
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
        let text = exposition(&status, &Tally::default(), Reloads::default());
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
        // A labelled family with no value is not written: one value in each.
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
            .chain(fleet_rows(&fleet))
            .collect();
        let names: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0).collect();
        assert_eq!(names.len(), rows.len(), "a name is used twice");
        let text = exposition(&status, &tally, Reloads::default());
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

    /// Every metric the shipped Grafana dashboard queries is one the endpoint serves, under
    /// that name (a renamed metric would leave a panel empty without a word).
    #[test]
    fn the_dashboard_queries_only_metrics_the_endpoint_serves() {
        let mut tally = Tally::default();
        tally.detections_by_kind.insert("syn", 1);
        tally.decisions.insert("block", 1);
        let served = exposition(
            &StatusInfo {
                not_blocked: [("bad-checksum".to_string(), 1)].into(),
                ..StatusInfo::default()
            },
            &tally,
            Reloads::default(),
        );
        let names: std::collections::BTreeSet<&str> = served
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../packaging/grafana/scansentry.json")).unwrap();
        let mut queried = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for (at, _) in expr.match_indices("scansentry_") {
                    let name: String = expr[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        names.contains(name.as_str()),
                        "{name} ({expr}) is not served: {names:?}"
                    );
                    queried += 1;
                }
            }
        }
        assert!(queried >= 15, "{queried}");
    }
}
