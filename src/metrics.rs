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

use crate::control::protocol::StatusInfo;

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

/// The Prometheus text exposition of the daemon's counters (`scansentry_*`).
pub fn exposition(status: &StatusInfo, tally: &Tally, reloads: Reloads) -> String {
    let mut r = Registry::with_prefix("scansentry");
    let counter = |r: &mut Registry, name: &str, help: &str, v: u64| {
        r.register(name, help, ConstCounter::new(v));
    };
    let gauge = |r: &mut Registry, name: &str, help: &str, v: usize| {
        r.register(
            name,
            help,
            ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)),
        );
    };
    counter(&mut r, "packets", "Frames captured.", status.packets);
    counter(
        &mut r,
        "probes",
        "Probes counted by the detector.",
        status.probes,
    );
    let by_label =
        |r: &mut Registry, name: &str, help: &str, label: &str, values: &[(&str, u64)]| {
            let family = Family::<Vec<(String, String)>, Counter>::default();
            for (value, n) in values {
                family
                    .get_or_create(&vec![(label.to_string(), (*value).to_string())])
                    .inc_by(*n);
            }
            r.register(name, help, family);
        };
    let kinds: Vec<(&str, u64)> = tally
        .detections_by_kind
        .iter()
        .map(|(k, n)| (*k, *n))
        .collect();
    by_label(
        &mut r,
        "detections_by_kind",
        "Detections since start, by kind of probe (a detection of several kinds counts under each).",
        "kind",
        &kinds,
    );
    counter(&mut r, "detections", "Detections.", status.detections);
    let decisions: Vec<(&str, u64)> = tally.decisions.iter().map(|(k, n)| (*k, *n)).collect();
    by_label(
        &mut r,
        "decisions",
        "Decisions since start: block, refresh, already-blocked, would-block, would-refresh, or \
         the rule that kept a detection from a block.",
        "decision",
        &decisions,
    );
    let not_counted: Vec<(&str, u64)> = status
        .not_blocked
        .iter()
        .filter(|(rule, _)| matches!(rule.as_str(), "unroutable-source" | "bad-checksum"))
        .map(|(rule, n)| (rule.as_str(), *n))
        .collect();
    by_label(
        &mut r,
        "probes_not_counted",
        "Probe-like packets never counted: from sources no scanner can have, or with a wrong \
         checksum.",
        "reason",
        &not_counted,
    );
    gauge(
        &mut r,
        "blocks_active",
        "Blocks in force.",
        status.blocks_active,
    );
    gauge(
        &mut r,
        "blocks_max",
        "[respond] max-blocks.",
        status.max_blocks,
    );
    counter(
        &mut r,
        "budget_refusals",
        "Detections refused by the budget.",
        status.refused,
    );
    counter(
        &mut r,
        "capture_drops",
        "Frames the kernel dropped before capture.",
        status.capture_drops,
    );
    counter(
        &mut r,
        "firewall_errors",
        "Failed firewall changes on the way to a block or an unblock.",
        tally.firewall_errors,
    );
    r.register(
        "block_latency_seconds",
        "From the capture of the probe that made a detection to the kernel's acknowledgement \
         of its block.",
        tally.latency.clone(),
    );
    counter(&mut r, "reloads", "Reloads taken.", reloads.done);
    counter(
        &mut r,
        "reloads_refused",
        "Reloads refused (the old configuration stayed).",
        reloads.refused,
    );
    gauge(
        &mut r,
        "protected_peers",
        "Addresses kept from automatic blocks as protected peers.",
        status.protected_peers,
    );
    counter(
        &mut r,
        "uptime_seconds",
        "Seconds since start.",
        status.uptime,
    );
    if let Some(fleet) = &status.fleet {
        gauge(
            &mut r,
            "fleet_connected",
            "1 when connected to a NATS server of the fleet.",
            usize::from(fleet.connected),
        );
        gauge(
            &mut r,
            "fleet_members",
            "Hosts of the fleet heard from lately, this one included.",
            fleet.members,
        );
        gauge(
            &mut r,
            "fleet_queued",
            "Messages waiting to be sent to the fleet.",
            fleet.queued,
        );
        counter(
            &mut r,
            "fleet_dropped",
            "Fleet messages dropped: outgoing from a full queue, incoming past the bound.",
            fleet.dropped,
        );
        counter(
            &mut r,
            "fleet_sent",
            "Messages sent to the fleet.",
            fleet.sent,
        );
        counter(
            &mut r,
            "fleet_received",
            "Messages received from the other hosts.",
            fleet.received,
        );
        counter(
            &mut r,
            "fleet_blocks_taken",
            "Blocks taken from the other hosts.",
            fleet.taken,
        );
        counter(
            &mut r,
            "fleet_probes_sent",
            "Probe summaries sent to the fleet (for the owners of sweep counts).",
            fleet.probes_sent,
        );
        counter(
            &mut r,
            "fleet_probes_dropped",
            "Probes not checked nor told to the fleet, past the rate a host may check and send.",
            fleet.probes_dropped,
        );
        let probes_refused: Vec<(&str, u64)> = fleet
            .probes_refused
            .iter()
            .map(|(rule, n)| (rule.as_str(), *n))
            .collect();
        by_label(
            &mut r,
            "fleet_probes_refused",
            "Probes not told to the fleet by the local check that refused each, and summaries \
             from the other hosts not counted, unverified by their senders.",
            "rule",
            &probes_refused,
        );
        counter(
            &mut r,
            "fleet_sweeps",
            "Sweeps found for the scanner prefixes this host owns.",
            fleet.sweeps,
        );
        let refused: Vec<(&str, u64)> = fleet
            .refused
            .iter()
            .map(|(rule, n)| (rule.as_str(), *n))
            .collect();
        let dropped_in: Vec<(&str, u64)> = fleet
            .dropped_in
            .iter()
            .map(|(why, n)| (why.as_str(), *n))
            .collect();
        by_label(
            &mut r,
            "fleet_received_dropped",
            "Messages from the other hosts the link dropped, by why.",
            "why",
            &dropped_in,
        );
        by_label(
            &mut r,
            "fleet_blocks_refused",
            "Blocks from the other hosts (and sweeps counted from their summaries) refused, and \
             unblocks not carried out, by the rule that refused each.",
            "rule",
            &refused,
        );
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
