//! The public JSON of `sentryctl --json`: schema [`SCHEMA`], described by
//! `packaging/schema/scansentry.schema.json` (installed as
//! `/usr/share/scansentry/scansentry.schema.json`). **Pure.**
//!
//! The control protocol between `sentryctl` and `sentryd` is internal (it has its own
//! version); what scripts read is this form of its answers, in one vocabulary with the log's
//! JSON events: every object carries `"schema": 1`; an address or network is `address` (a bare
//! address for a single host, a CIDR otherwise); a time is an RFC 3339 UTC string in a key
//! ending in `_at`; a duration is whole seconds in a key ending in `_s` (`_ms`, `_us` for
//! finer ones); ports are `[{"port": 22, "proto": "tcp"}]`; what a value names is a closed set
//! of lower-case words (`cause`, `kinds`, `held`); an absent value is `null`, never `"-"`.

use serde_json::{Map, Value, json};

use crate::control::protocol::{BlockInfo, Response};

pub use crate::report::SCHEMA;

/// `net` as the public `address`: the bare address for a single host, the CIDR otherwise.
pub fn address(net: &ipnet::IpNet) -> String {
    crate::report::source_text(net)
}

/// Ports written `22/tcp` as `[{"port": 22, "proto": "tcp"}]` (what cannot be read is left out).
fn ports(labels: &[String]) -> Value {
    labels
        .iter()
        .filter_map(|l| crate::wire::Proto::parse_label(l))
        .map(|(proto, port)| json!({"port": port, "proto": proto.as_str()}))
        .collect()
}

/// `syn+fin` as `["syn", "fin"]`.
fn kinds(text: &str) -> Value {
    text.split('+')
        .filter(|k| !k.is_empty())
        .map(|k| Value::String(k.to_string()))
        .collect()
}

/// A block of `list` and `why`.
pub fn block(b: &BlockInfo) -> Value {
    let no_timeout = b.kind.ends_with("no timeout");
    let (cause, kinds) = match b.kind.as_str() {
        "manual" => ("manual", json!([])),
        "sweep" => ("sweep", json!([])),
        crate::respond::TRIPWIRE => ("tripwire", json!([])),
        "unknown" => ("unknown", json!([])),
        k if k.starts_with("added outside") => ("kernel", json!([])),
        k => ("scan", self::kinds(k)),
    };
    json!({
        "address": address(&b.net),
        "cause": cause,
        "kinds": kinds,
        "ports": ports(&b.ports),
        "origin": b.origin,
        "signature": b.signature,
        "blocked_at": if b.blocked_at == "-" { None } else { Some(&b.blocked_at) },
        "remaining_s": if no_timeout { None } else { Some(b.remaining) },
        "offence": b.offence,
        "held": b.held,
    })
}

/// The answer of `list`: an array of every block, each with its `schema`.
pub fn blocks(blocks: &[BlockInfo]) -> Value {
    blocks.iter().map(|b| stamp(block(b))).collect()
}

/// The public form of one of the daemon's answers.
pub fn response(r: &Response) -> Value {
    let v = match r {
        Response::Status(s) => {
            let mut v = status(s);
            v["result"] = "status".into();
            v
        }
        Response::Blocks { blocks, total } => json!({
            "result": "blocks",
            "blocks": blocks.iter().map(block).collect::<Vec<_>>(),
            "total": total,
        }),
        Response::Blocked {
            net,
            seconds,
            dry_run,
        } => json!({
            "result": "blocked", "address": address(net), "duration_s": seconds,
            "dry_run": dry_run,
        }),
        Response::Unblocked {
            net,
            lifted,
            dry_run,
            fleet,
            origin,
        } => json!({
            "result": "unblocked", "address": address(net),
            "lifted": lifted.iter().map(address).collect::<Vec<_>>(),
            "dry_run": dry_run, "fleet": fleet, "origin": origin,
        }),
        Response::UnblockedAll { count, dry_run } => {
            json!({"result": "unblocked-all", "count": count, "dry_run": dry_run})
        }
        Response::NotBlocked { net, fleet } => {
            json!({"result": "not-blocked", "address": address(net), "fleet": fleet})
        }
        Response::Why { .. } => why(r),
        Response::NeverBlock { entries } => json!({
            "result": "never-block",
            "entries": entries.iter().map(|n| json!({
                "address": address(&n.net), "reason": n.reason,
            })).collect::<Vec<_>>(),
        }),
        Response::Top {
            status,
            threshold,
            watching,
        } => json!({
            "result": "top",
            "status": self::status(status),
            "threshold": threshold,
            "watching": watching.iter().map(|w| json!({
                "address": address(&w.source),
                "score": w.score,
                "distinct_ports": w.ports,
                "kinds": kinds(&w.kinds),
                "probes": w.probes,
                "idle_s": w.idle,
            })).collect::<Vec<_>>(),
        }),
        Response::Reloaded { config } => json!({"result": "reloaded", "config": config}),
        Response::Error { message } => json!({"result": "error", "message": message}),
    };
    stamp(v)
}

/// The answer of `why`.
fn why(r: &Response) -> Value {
    let Response::Why {
        addr,
        block,
        never_block,
        refused,
        first_line,
    } = r
    else {
        return Value::Null;
    };
    json!({
        "result": "why",
        "address": addr.to_string(),
        "block": block.as_ref().map(self::block),
        "never_block": never_block.iter().map(|n| json!({
            "address": address(&n.net), "reason": n.reason,
        })).collect::<Vec<_>>(),
        "refused": refused.as_ref().map(|r| json!({
            "refused_at": r.at, "rule": r.rule, "message": r.line,
        })),
        "first_line": first_line.as_ref().map(|h| json!({
            "held_at": h.held_at,
            "probe": crate::wire::Proto::parse_label(&h.probe)
                .map(|(proto, port)| json!({"port": port, "proto": proto.as_str()})),
            "hold_s": h.hold_s,
            "remaining_s": h.remaining_s,
            "outcome": h.outcome,
            "message": h.line,
        })),
    })
}

/// `status`'s counters (the protocol's keys, with units where they lacked one).
fn status(s: &crate::control::protocol::StatusInfo) -> Value {
    let mut v = serde_json::to_value(s).expect("status serializes");
    if let Value::Object(map) = &mut v {
        rename(map, "uptime", "uptime_s");
        map.entry("fleet").or_insert(Value::Null);
        map.entry("first_line").or_insert(Value::Null);
    }
    v
}

fn rename(map: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = map.remove(from) {
        map.insert(to.into(), v);
    }
}

/// `v` with `"schema": SCHEMA` (an object; anything else as it is).
pub fn stamp(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            out.insert("schema".into(), SCHEMA.into());
            out.extend(map);
            Value::Object(out)
        }
        other => other,
    }
}

/// Panics unless `value` is valid under the shipped schema (for the unit tests of every JSON
/// output; the integration tests check theirs in `tests/support/schema.rs`).
#[cfg(test)]
pub(crate) fn check_schema(value: &Value) {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/schema/scansentry.schema.json"
    );
    let mut schemas = boon::Schemas::new();
    let index = boon::Compiler::new()
        .compile(file, &mut schemas)
        .expect("the shipped JSON Schema compiles");
    if let Err(e) = schemas.validate(value, index) {
        panic!("not valid under {file}: {e:#}\n{value:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::{
        FleetInfo, Held, NeverBlockInfo, RefusalInfo, StatusInfo, WatchedInfo,
    };

    #[test]
    fn every_answer_is_valid_under_the_shipped_schema() {
        let net: ipnet::IpNet = "203.0.113.0/24".parse().unwrap();
        let mut scan = kernel_block("syn+udp");
        scan.ports = vec!["22/tcp".into(), "53/udp".into()];
        scan.blocked_at = "2026-11-21T23:51:47.731914Z".into();
        scan.held = Held::DryRun;
        scan.origin = Some("web-3".into());
        let mut status = StatusInfo {
            mode: "dry-run".into(),
            ..StatusInfo::default()
        };
        status.not_blocked.insert("budget".into(), 3);
        let with_fleet = StatusInfo {
            mode: "enforcing".into(),
            fleet: Some(FleetInfo {
                round_trip_us: Some(120),
                bucket_refused: Some("catch-up off".into()),
                ..FleetInfo::default()
            }),
            ..StatusInfo::default()
        };
        let entry = NeverBlockInfo {
            net,
            reason: "[never-block] addresses".into(),
        };
        let answers = [
            Response::Status(status.clone()),
            Response::Status(with_fleet),
            Response::Blocked {
                net,
                seconds: 60,
                dry_run: true,
            },
            Response::Unblocked {
                net,
                lifted: vec!["203.0.0.0/16".parse().unwrap()],
                dry_run: false,
                fleet: true,
                origin: Some("web-3".into()),
            },
            Response::UnblockedAll {
                count: 2,
                dry_run: false,
            },
            Response::NotBlocked { net, fleet: false },
            Response::Why {
                first_line: None,
                addr: "203.0.113.7".parse().unwrap(),
                block: Some(scan.clone()),
                never_block: vec![entry.clone()],
                refused: Some(RefusalInfo {
                    at: "2026-11-21T23:51:47Z".into(),
                    rule: "min-ports".into(),
                    line: "not blocking 203.0.113.7: 1 trap port".into(),
                }),
            },
            Response::Why {
                first_line: None,
                addr: "2001:db8::7".parse().unwrap(),
                block: None,
                never_block: Vec::new(),
                refused: None,
            },
            Response::NeverBlock {
                entries: vec![entry],
            },
            Response::Top {
                status,
                threshold: 21,
                watching: vec![WatchedInfo {
                    source: "198.51.100.7/32".parse().unwrap(),
                    score: 14,
                    ports: 2,
                    kinds: "syn+fin".into(),
                    probes: 3,
                    idle: 1,
                }],
            },
            Response::Reloaded {
                config: "/etc/scansentry/scansentry.toml".into(),
            },
            Response::Error {
                message: "x".into(),
            },
        ];
        for answer in &answers {
            check_schema(&response(answer));
        }
        let list = blocks(&[
            scan,
            kernel_block("manual"),
            kernel_block("added outside sentryd, no timeout"),
        ]);
        check_schema(&list);
    }

    #[test]
    fn a_key_the_schema_does_not_list_is_refused() {
        let mut v = response(&Response::Reloaded { config: "x".into() });
        v["addr"] = "203.0.113.7".into();
        let refused = std::panic::catch_unwind(|| check_schema(&v));
        assert!(refused.is_err(), "an unlisted key must fail");
    }

    fn kernel_block(kind: &str) -> BlockInfo {
        BlockInfo {
            net: "203.0.113.7/32".parse().unwrap(),
            kind: kind.into(),
            origin: None,
            ports: Vec::new(),
            blocked_at: "-".into(),
            remaining: 0,
            offence: 0,
            held: Held::KernelOnly,
            signature: None,
        }
    }

    /// Issue 27: a tripwire block is its own cause, with its one port, valid under the schema.
    #[test]
    fn a_tripwire_block_is_cause_tripwire_with_its_port() {
        let mut b = kernel_block(crate::respond::TRIPWIRE);
        b.ports = vec!["2323/tcp".into()];
        let v = block(&b);
        assert_eq!(v["cause"], "tripwire");
        assert_eq!(v["kinds"], json!([]));
        assert_eq!(v["ports"], json!([{"port": 2323, "proto": "tcp"}]));
        check_schema(&blocks(&[b]));
    }

    #[test]
    fn a_block_has_one_address_key_null_not_dash_and_words_not_prose() {
        let v = block(&kernel_block("added outside sentryd, no timeout"));
        assert_eq!(v["address"], "203.0.113.7");
        assert_eq!(v["cause"], "kernel");
        assert_eq!(v["held"], "kernel-only");
        assert!(
            v["blocked_at"].is_null() && v["remaining_s"].is_null(),
            "{v}"
        );
        let mut scan = kernel_block("syn+fin");
        scan.net = "2001:db8::/64".parse().unwrap();
        scan.ports = vec!["22/tcp".into(), "53/udp".into()];
        scan.remaining = 60;
        scan.held = Held::Both;
        let v = block(&scan);
        assert_eq!(v["address"], "2001:db8::/64");
        assert_eq!(v["kinds"], json!(["syn", "fin"]));
        assert_eq!(
            v["ports"],
            json!([{"port": 22, "proto": "tcp"}, {"port": 53, "proto": "udp"}])
        );
        assert_eq!(v["remaining_s"], 60);
        assert_eq!(v["held"], "both");
    }

    #[test]
    fn every_answer_carries_the_schema_version() {
        let v = response(&Response::Blocked {
            net: "198.51.100.9/32".parse().unwrap(),
            seconds: 3600,
            dry_run: false,
        });
        assert_eq!(
            v,
            json!({"schema": 1, "result": "blocked", "address": "198.51.100.9",
                   "duration_s": 3600, "dry_run": false})
        );
        assert_eq!(blocks(&[kernel_block("manual")])[0]["schema"], 1);
    }
}
