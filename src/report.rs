//! How detections and decisions are written: one log line each, or one JSON object. **Pure.**
//!
//! Lines put the facts first:
//! `blocked 203.0.113.7 for 1h: syn scan, 25 ports in 3.0s (offence 2)`; in dry-run mode and
//! in replays, `would block …`.

use std::time::Duration;

use crate::detect::Detection;
use crate::respond::{Budget, Decision};

/// Whether decisions are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The firewall is changed: "blocked".
    Enforcing,
    /// Nothing is changed (dry-run, replay): "would block".
    DryRun,
}

/// A duration as an administrator reads it: `1h`, `59m 12s`.
pub fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// The detection's source as written in a log line: the bare address for a host prefix.
pub fn source_text(net: &ipnet::IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// One log line for a detection and its decision (without a timestamp: the logger adds one,
/// and replays prefix the capture time).
pub fn line(d: &Detection, decision: &Decision, mode: Mode) -> String {
    let (block, refresh) = match mode {
        Mode::Enforcing => ("blocked", "refreshed the block of"),
        Mode::DryRun => ("would block", "would refresh the block of"),
    };
    match decision {
        Decision::Block {
            net, ttl, offence, ..
        } => {
            let offence = if *offence > 1 {
                format!(" (offence {offence})")
            } else {
                String::new()
            };
            format!(
                "{block} {} for {}: {}{offence}",
                source_text(net),
                human(*ttl),
                d.summary()
            )
        }
        Decision::Refresh { net, ttl } => format!(
            "{refresh} {} to {}: {}",
            source_text(net),
            human(*ttl),
            d.summary()
        ),
        Decision::AlreadyBlocked { net, remaining } => format!(
            "{} still scanning, already blocked for {} more: {}",
            source_text(net),
            human(*remaining),
            d.summary()
        ),
        Decision::OverBudget { net, budget } => format!(
            "not blocking {}: {}: {}",
            source_text(net),
            match budget {
                Budget::Size(n) => format!("{n} blocks active ([respond] max-blocks)"),
                Budget::Rate(n) => {
                    format!(
                        "{n} new blocks in the last second ([respond] max-new-blocks-per-second)"
                    )
                }
            },
            d.summary()
        ),
        Decision::NeverBlock { addr, reason } => format!(
            "not blocking {addr}: on never-block list ({reason}): {}",
            d.summary()
        ),
        Decision::InGrace { addr, remaining } => format!(
            "not blocking {addr}: unblocked by hand, grace period for {} more: {}",
            human(*remaining),
            d.summary()
        ),
    }
}

/// The detection and its decision as one JSON object.
pub fn json(d: &Detection, decision: &Decision) -> serde_json::Value {
    let (action, net, secs) = match decision {
        Decision::Block { net, ttl, .. } => ("block", Some(*net), Some(ttl.as_secs())),
        Decision::Refresh { net, ttl } => ("refresh", Some(*net), Some(ttl.as_secs())),
        Decision::AlreadyBlocked { net, remaining } => {
            ("already-blocked", Some(*net), Some(remaining.as_secs()))
        }
        Decision::OverBudget { net, .. } => ("over-budget", Some(*net), None),
        Decision::NeverBlock { .. } => ("never-block", None, None),
        Decision::InGrace { remaining, .. } => ("grace", None, Some(remaining.as_secs())),
    };
    serde_json::json!({
        "type": "detection",
        "at": d.last_seen.to_string(),
        "source": d.source.to_string(),
        "addr": d.addr.to_string(),
        "kinds": d.kinds.names().collect::<Vec<_>>(),
        "ports": d.ports.iter().map(|(proto, port)| serde_json::json!({"proto": proto.as_str(), "port": port})).collect::<Vec<_>>(),
        "first_seen": d.first_seen.to_string(),
        "last_seen": d.last_seen.to_string(),
        "packets": d.packets,
        "score": d.score,
        "action": action,
        "target": net.map(|n| n.to_string()),
        "seconds": secs,
        "offence": match decision { Decision::Block { offence, .. } => Some(*offence), _ => None },
        "never_block_reason": match decision { Decision::NeverBlock { reason, .. } => Some(reason.as_str()), _ => None },
    })
}
