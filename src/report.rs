//! How detections and decisions are written: one log line each, or one JSON object. **Pure.**
//!
//! Lines put the facts first: `<time> would block 203.0.113.7 for 1h: syn scan, 25 ports in
//! 3.0s`.

use std::time::Duration;

use crate::detect::Detection;
use crate::respond::Decision;

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

/// One log line for a detection and its decision.
pub fn line(d: &Detection, decision: &Decision) -> String {
    match decision {
        Decision::Block { net, ttl } => format!(
            "{} would block {} for {}: {}",
            d.last_seen,
            source_text(net),
            human(*ttl),
            d.summary()
        ),
        Decision::AlreadyBlocked { net, remaining } => format!(
            "{} {} still scanning, already blocked for {} more: {}",
            d.last_seen,
            source_text(net),
            human(*remaining),
            d.summary()
        ),
        Decision::OverBudget { net, max_blocks } => format!(
            "{} not blocking {}: {max_blocks} blocks active ([respond] max-blocks): {}",
            d.last_seen,
            source_text(net),
            d.summary()
        ),
        Decision::NeverBlock { addr, reason } => format!(
            "{} not blocking {addr}: on never-block list ({reason}): {}",
            d.last_seen,
            d.summary()
        ),
    }
}

/// The detection and its decision as one JSON object.
pub fn json(d: &Detection, decision: &Decision) -> serde_json::Value {
    let (action, net, secs) = match decision {
        Decision::Block { net, ttl } => ("block", Some(*net), Some(ttl.as_secs())),
        Decision::AlreadyBlocked { net, remaining } => {
            ("already-blocked", Some(*net), Some(remaining.as_secs()))
        }
        Decision::OverBudget { net, .. } => ("over-budget", Some(*net), None),
        Decision::NeverBlock { .. } => ("never-block", None, None),
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
        "never_block_reason": match decision { Decision::NeverBlock { reason, .. } => Some(reason.as_str()), _ => None },
    })
}
