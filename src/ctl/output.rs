//! `sentryctl`'s human output: aligned tables and sentences. **Pure.**

use std::time::Duration;

use crate::control::protocol::{
    BlockInfo, FleetInfo, Held, NeverBlockInfo, RefusalInfo, Response, StatusInfo, WatchedInfo,
};
use crate::report::source_text;
use crate::text::human as duration;

/// How times are shown: UTC as the daemon writes them (`--utc`), or in a time zone (the
/// system's, by default).
#[derive(Clone, Debug)]
pub enum Zone {
    /// RFC 3339 in UTC, as given.
    Utc,
    /// In this zone: `2026-11-22 01:16:04 CET`.
    Local(jiff::tz::TimeZone),
}

/// A time the daemon gave (RFC 3339, UTC) as `zone` shows it; anything else as it is (`-`).
pub fn when(at: &str, zone: &Zone) -> String {
    match (zone, at.parse::<jiff::Timestamp>()) {
        (Zone::Local(tz), Ok(t)) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        _ => at.to_string(),
    }
}

/// The human text for a response (other than a `list`, see [`blocks`]), times in `zone`.
pub fn human(response: &Response, zone: &Zone) -> String {
    match response {
        Response::Status(s) => status(s),
        Response::Top {
            status,
            threshold,
            watching,
        } => top(status, *threshold, watching, None),
        Response::Blocks { blocks: list, .. } => blocks(list, zone),
        Response::Blocked {
            net,
            seconds,
            dry_run,
        } => format!(
            "{} {} for {}{}",
            if *dry_run { "would block" } else { "blocked" },
            source_text(net),
            duration(Duration::from_secs(*seconds)),
            if *dry_run {
                " (dry run: nothing is blocked)"
            } else {
                ""
            }
        ),
        Response::Unblocked {
            net,
            lifted,
            dry_run,
            fleet,
            origin,
        } => unblocked(net, lifted, *dry_run, *fleet, origin.as_deref()),
        Response::UnblockedAll { count, dry_run } => format!(
            "{} {count} block{}",
            if *dry_run { "would lift" } else { "lifted" },
            if *count == 1 { "" } else { "s" }
        ),
        Response::NotBlocked { net, fleet: false } => {
            format!("{} was not blocked; nothing to do", source_text(net))
        }
        Response::NotBlocked { net, fleet: true } => format!(
            "{} was not blocked here; the fleet was asked to lift it",
            source_text(net)
        ),
        Response::Why {
            addr,
            block,
            never_block,
            refused,
            first_line,
        } => {
            let mut text = why(*addr, block.as_ref(), never_block, refused.as_ref(), zone);
            if let Some(hold) = first_line {
                text.push_str(&format!("\n{addr} was {}", hold.line));
            }
            text
        }
        Response::NeverBlock { entries } => never_block(entries),
        Response::Reloaded { config } => format!("reloaded the configuration from {config}"),
        Response::Error { message } => format!("error: {message}"),
    }
}

/// `unblocked 198.51.100.7 (lifted the block of …); the fleet was asked to lift it too`.
fn unblocked(
    net: &ipnet::IpNet,
    lifted: &[ipnet::IpNet],
    dry_run: bool,
    fleet: bool,
    origin: Option<&str>,
) -> String {
    format!(
        "{} {}{}{}{}",
        if dry_run {
            "would unblock"
        } else {
            "unblocked"
        },
        source_text(net),
        if lifted.is_empty() {
            String::new()
        } else {
            let nets: Vec<String> = lifted.iter().map(source_text).collect();
            format!(" (lifted the block of {})", nets.join(", "))
        },
        match (fleet, origin) {
            (true, None) => "; the fleet was asked to lift it too",
            (true, Some(_)) => "; the fleet was asked to lift what this host's blocks added",
            (false, _) => "",
        },
        origin.map_or_else(String::new, |o| format!(
            "; {o} made this block: run sentryctl unblock there to lift it fleet-wide"
        ))
    )
}

/// `sentryctl why ADDR`: its block (and who made it), its never-block entries, and the last
/// detection of it that was not blocked.
fn why(
    addr: std::net::IpAddr,
    block: Option<&BlockInfo>,
    never_block: &[NeverBlockInfo],
    refused: Option<&RefusalInfo>,
    zone: &Zone,
) -> String {
    let mut lines = Vec::new();
    let part_of = |b: &BlockInfo| {
        if b.net.prefix_len() == b.net.max_prefix_len() {
            String::new()
        } else {
            format!(" (as part of {})", b.net)
        }
    };
    match block {
        Some(b) if b.held == Held::DryRun => lines.push(format!(
            "[dry run] would block {addr}{} for {} more: {}, since {} (a dry run: not in the \
             kernel, not saved, not an offence)",
            part_of(b),
            duration(Duration::from_secs(b.remaining)),
            what_was_done(b),
            when(&b.blocked_at, zone)
        )),
        // The daemon's block that the kernel no longer holds: not blocked, whatever the
        // daemon remembers.
        Some(b) if b.held == Held::DaemonOnly => lines.push(format!(
            "{addr} is not blocked: not in the kernel, {} was lost or deleted outside \
             scansentry (the daemon's block has {} left): {}, offence {}, since {}",
            if b.net.prefix_len() == b.net.max_prefix_len() {
                "its element".to_string()
            } else {
                format!("the element of {}", b.net)
            },
            duration(Duration::from_secs(b.remaining)),
            what_was_done(b),
            b.offence,
            when(&b.blocked_at, zone)
        )),
        Some(
            b @ BlockInfo {
                origin: Some(origin),
                ..
            },
        ) => lines.push(format!(
            "{addr} is blocked{} for {} more: blocked by fleet: detected on {origin} at {} ({})",
            part_of(b),
            duration(Duration::from_secs(b.remaining)),
            when(&b.blocked_at, zone),
            what(b),
        )),
        Some(b) => lines.push(format!(
            "{addr} is blocked{} for {} more: {}, offence {}, since {}",
            part_of(b),
            duration(Duration::from_secs(b.remaining)),
            what(b),
            b.offence,
            when(&b.blocked_at, zone)
        )),
        // "never blocked" below says it, and more.
        None if !never_block.is_empty() => {}
        None => lines.push(format!("{addr} is not blocked")),
    }
    for e in never_block {
        lines.push(format!(
            "{addr} is never blocked: {} ({})",
            e.reason,
            source_text(&e.net)
        ));
    }
    if let Some(r) = refused {
        lines.push(format!(
            "last detection not blocked, at {}: {}",
            when(&r.at, zone),
            r.line
        ));
    }
    lines.join("\n")
}

/// `syn scan of 7 ports (21/tcp, 22/tcp, …)`, or `blocked by hand`.
fn what(b: &BlockInfo) -> String {
    let what = what_was_done(b);
    match b.held {
        Held::Both => what,
        Held::KernelOnly => format!("{what}, in the kernel only"),
        Held::DaemonOnly => {
            format!("{what}, not in the kernel (lost or deleted outside scansentry)")
        }
        Held::DryRun => format!("{what}, a dry run's: not in the kernel"),
    }
}

fn what_was_done(b: &BlockInfo) -> String {
    let done = what_was_seen(b);
    match &b.signature {
        Some(signature) => format!("{done}, {signature}"),
        None => done,
    }
}

fn what_was_seen(b: &BlockInfo) -> String {
    match b.kind.as_str() {
        "manual" => "blocked by hand".into(),
        "sweep" => format!("a sweep across hosts of {}", b.ports.join(", ")),
        crate::respond::TRIPWIRE => format!("one probe to tripwire port {}", b.ports.join(", ")),
        "unknown" => "found in the kernel's set".into(),
        kind if b.ports.is_empty() => format!("{kind} scan"),
        kind => format!(
            "{kind} scan of {} port{} ({})",
            b.ports.len(),
            if b.ports.len() == 1 { "" } else { "s" },
            b.ports.join(", ")
        ),
    }
}

/// One frame of `sentryctl top`: the counters (with rates per second when `before`, the
/// status `elapsed` earlier, is given), then the sources scoring highest, highest first.
pub fn top(
    s: &StatusInfo,
    threshold: u64,
    watching: &[WatchedInfo],
    before: Option<(&StatusInfo, Duration)>,
) -> String {
    let rate = |now: u64, then: fn(&StatusInfo) -> u64| match before {
        Some((b, elapsed)) if !elapsed.is_zero() => format!(
            "{:.0}/s",
            now.saturating_sub(then(b)) as f64 / elapsed.as_secs_f64()
        ),
        _ => "-/s".to_string(),
    };
    let latency = if s.block_latency_samples == 0 {
        "no blocks yet".to_string()
    } else {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            s.block_latency_p50_us as f64 / 1000.0,
            s.block_latency_p99_us as f64 / 1000.0
        )
    };
    let mut out = format!(
        "scansentry  {}  up {}  blocks {} of {}  protected peers {}\n\
         packets {}  probes {}  detections {}  refused {}  capture drops {}  latency {latency}\n\n",
        s.mode,
        duration(Duration::from_secs(s.uptime)),
        s.blocks_active,
        s.max_blocks,
        s.protected_peers,
        rate(s.packets, |b| b.packets),
        rate(s.probes, |b| b.probes),
        s.detections,
        s.refused,
        s.capture_drops,
    );
    if watching.is_empty() {
        out.push_str("no source is being counted\n");
        return out;
    }
    let rows: Vec<[String; 6]> = watching
        .iter()
        .map(|w| {
            [
                source_text(&w.source),
                format!("{}/{threshold}", w.score),
                w.ports.to_string(),
                w.kinds.clone(),
                w.probes.to_string(),
                format!("{}s ago", w.idle),
            ]
        })
        .collect();
    let header = ["SOURCE", "SCORE", "PORTS", "KINDS", "PROBES", "LAST"];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header.map(String::from)).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Counters by word, in the order of `words`: `300 reassembled, 100 tiny`, or `none`.
fn counted(words: &[&str], counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_string();
    }
    words
        .iter()
        .filter_map(|word| counts.get(*word).map(|n| format!("{n} {word}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1.25 ms median, 3.40 ms p99 (capture to kernel, last 1 block)`, or `no blocks yet`.
fn latency(s: &StatusInfo) -> String {
    if s.block_latency_samples == 0 {
        return "no blocks yet".to_string();
    }
    format!(
        "{:.2} ms median, {:.2} ms p99 (capture to kernel, last {})",
        s.block_latency_p50_us as f64 / 1000.0,
        s.block_latency_p99_us as f64 / 1000.0,
        crate::report::count(s.block_latency_samples as u64, "block", "blocks")
    )
}

fn status(s: &StatusInfo) -> String {
    let rows = [
        ("mode", format!("{} (firewall: {})", s.mode, s.firewall)),
        ("uptime", duration(Duration::from_secs(s.uptime))),
        ("packets", s.packets.to_string()),
        ("probes", s.probes.to_string()),
        ("detections", s.detections.to_string()),
        (
            "blocks active",
            format!(
                "{} of at most {} an address family; kernel only {}",
                s.blocks_active, s.max_blocks, s.blocks_kernel_only
            ),
        ),
        (
            "refused by budget",
            match s.waiting {
                0 => s.refused.to_string(),
                n => format!("{} ({n} waiting for it now)", s.refused),
            },
        ),
        (
            "not blocked",
            if s.not_blocked.is_empty() {
                "nothing".to_string()
            } else {
                s.not_blocked
                    .iter()
                    .map(|(rule, n)| format!("{n} {rule}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("protected peers", s.protected_peers.to_string()),
        (
            "fragments",
            counted(&crate::pipeline::FRAGMENT_OUTCOMES, &s.fragments),
        ),
        (
            "evidence",
            counted(&crate::pipeline::EVIDENCE_KINDS, &s.evidence),
        ),
        ("capture drops", s.capture_drops.to_string()),
        ("block latency", latency(s)),
        ("configuration", s.config.clone()),
    ];
    let mut rows: Vec<Vec<String>> = rows.map(|(k, v)| vec![k.to_string(), v]).into();
    // A dry run's blocks have a count of their own, next to the blocks active.
    if s.mode == "dry-run" || s.would_block > 0 {
        let at = rows
            .iter()
            .position(|r| r[0] == "blocks active")
            .map_or(0, |i| i + 1);
        rows.insert(
            at,
            vec![
                "would block".into(),
                format!(
                    "[dry run] {} (imagined: not in the kernel, not saved, not offences)",
                    s.would_block
                ),
            ],
        );
    }
    if let Some(fleet) = &s.fleet {
        rows.push(vec!["fleet".into(), fleet_line(fleet)]);
    }
    if let Some(first) = &s.first_line {
        rows.push(vec!["first line".into(), first_line(first)]);
    }
    table(&[], &rows)
}

/// `2 holds now; since start 14 blocked, 1 lifted-listener; kernel sets full: 0 score, 0 hold`
fn first_line(f: &crate::control::protocol::FirstLineInfo) -> String {
    let since = if f.holds.is_empty() {
        "none since start".to_string()
    } else {
        let outcomes: Vec<String> = f.holds.iter().map(|(o, n)| format!("{n} {o}")).collect();
        format!("since start {}", outcomes.join(", "))
    };
    format!(
        "{} now; {since}; not counted (sets full) {}, not held (hold set full) {}",
        crate::report::count(f.holds_active as u64, "hold", "holds"),
        f.score_full,
        f.hold_full
    )
}

/// `web-1: connected to nats://…, 3 members, round trip 0.21 ms, 0 queued, 0 dropped; …`
fn fleet_line(f: &FleetInfo) -> String {
    let link = if f.connected {
        format!("connected to {}", f.server)
    } else if f.server.is_empty() {
        "not connected".to_string()
    } else {
        format!("not connected (last tried {})", f.server)
    };
    let round_trip = f
        .round_trip_us
        .map(|us| format!(", round trip {:.2} ms", us as f64 / 1000.0))
        .unwrap_or_default();
    let refused = if f.refused.is_empty() {
        String::new()
    } else {
        let rules: Vec<String> = f.refused.iter().map(|(r, n)| format!("{n} {r}")).collect();
        format!(", refused {}", rules.join(", "))
    };
    let probes_refused: u64 = f.probes_refused.values().sum();
    let sweeps = if f.probes_sent + f.probes_dropped + probes_refused + f.sweeps == 0 {
        String::new()
    } else {
        let refused = if f.probes_refused.is_empty() {
            String::new()
        } else {
            let rules: Vec<String> = f
                .probes_refused
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            format!(", refused {}", rules.join(", "))
        };
        format!(
            "; {} probes told, {} dropped{refused}, {}",
            f.probes_sent,
            f.probes_dropped,
            crate::report::count(f.sweeps, "sweep", "sweeps") + " found"
        )
    };
    let dropped_in = if f.dropped_in.is_empty() {
        String::new()
    } else {
        let why: Vec<String> = f
            .dropped_in
            .iter()
            .map(|(w, n)| format!("{n} {w}"))
            .collect();
        format!(
            " ({} of theirs: {})",
            f.dropped_in.values().sum::<u64>(),
            why.join(", ")
        )
    };
    let bucket = f
        .bucket_refused
        .as_ref()
        .map(|why| format!("; catch-up off: {why}"))
        .unwrap_or_default();
    format!(
        "{}: {link}, {}{round_trip}, {} queued, {} dropped{dropped_in}; {} sent, {} received, {}{refused}{sweeps}{bucket}",
        f.host,
        crate::report::count(f.members as u64, "member", "members"),
        f.queued,
        f.dropped,
        f.sent,
        f.received,
        crate::report::count(f.taken, "block", "blocks") + " taken"
    )
}

/// The table of `list`.
pub fn blocks(list: &[BlockInfo], zone: &Zone) -> String {
    if list.is_empty() {
        return "no blocks in force".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            let mut ports = b.ports.join(",");
            if ports.len() > 40 {
                let cut = ports[..37].rfind(',').unwrap_or(37);
                ports.truncate(cut);
                ports.push_str(",…");
            }
            let kind = match &b.origin {
                Some(origin) => format!("{} [fleet: {origin}]", b.kind),
                None => b.kind.clone(),
            };
            let kind = match b.held {
                Held::Both => kind,
                Held::KernelOnly => format!("{kind} [kernel only]"),
                Held::DaemonOnly => format!("{kind} [not in kernel]"),
                Held::DryRun => format!("[dry run] would block: {kind}"),
            };
            vec![
                source_text(&b.net),
                kind,
                if ports.is_empty() { "-".into() } else { ports },
                when(&b.blocked_at, zone),
                duration(Duration::from_secs(b.remaining)),
                b.offence.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ADDRESS",
            "KIND",
            "PORTS",
            "BLOCKED AT",
            "REMAINING",
            "OFFENCE",
        ],
        &rows,
    )
}

fn never_block(entries: &[NeverBlockInfo]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| vec![source_text(&e.net), e.reason.clone()])
        .collect();
    table(&["ADDRESS", "REASON"], &rows)
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len().max(rows.first().map_or(0, Vec::len));
    let mut widths = vec![0; columns];
    let all = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .filter(|h| !h.is_empty())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>();
    for row in &all {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    all.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human_utc(r: &Response) -> String {
        human(r, &Zone::Utc)
    }

    #[test]
    fn times_are_shown_in_the_local_zone_unless_utc_is_asked() {
        // Central European time as a POSIX rule: no time zone database needed.
        let berlin = Zone::Local(jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap());
        assert_eq!(
            when("2026-11-22T00:16:04.284474Z", &berlin),
            "2026-11-22 01:16:04 CET"
        );
        assert_eq!(
            when("2026-07-01T12:00:00Z", &berlin),
            "2026-07-01 14:00:00 CEST"
        );
        assert_eq!(
            when("2026-11-22T00:16:04.284474Z", &Zone::Utc),
            "2026-11-22T00:16:04.284474Z"
        );
        assert_eq!(when("-", &berlin), "-");
    }

    #[test]
    fn a_top_frame_has_the_counters_rates_and_a_table_of_sources() {
        let then = StatusInfo {
            packets: 1000,
            probes: 10,
            ..StatusInfo::default()
        };
        let now = StatusInfo {
            mode: "enforcing".into(),
            uptime: 3723,
            packets: 3000,
            probes: 50,
            detections: 2,
            blocks_active: 1,
            max_blocks: 65536,
            ..StatusInfo::default()
        };
        let watching = [
            WatchedInfo {
                source: "2001:db8:0:5::/64".parse().unwrap(),
                score: 18,
                ports: 6,
                kinds: "syn".into(),
                probes: 6,
                idle: 0,
            },
            WatchedInfo {
                source: "203.0.113.2/32".parse().unwrap(),
                score: 4,
                ports: 2,
                kinds: "fin".into(),
                probes: 2,
                idle: 12,
            },
        ];
        let frame = top(&now, 21, &watching, Some((&then, Duration::from_secs(2))));
        assert_eq!(
            frame,
            "scansentry  enforcing  up 1h 2m 3s  blocks 1 of 65536  protected peers 0\n\
             packets 1000/s  probes 20/s  detections 2  refused 0  capture drops 0  latency no \
             blocks yet\n\n\
             SOURCE             SCORE  PORTS  KINDS  PROBES  LAST\n\
             2001:db8:0:5::/64  18/21  6      syn    6       0s ago\n\
             203.0.113.2        4/21   2      fin    2       12s ago\n"
        );
        let first = top(&now, 21, &[], None);
        assert!(first.contains("packets -/s  probes -/s"), "{first}");
        assert!(first.ends_with("no source is being counted\n"), "{first}");
    }

    fn block() -> BlockInfo {
        BlockInfo {
            net: "203.0.113.7/32".parse().unwrap(),
            kind: "syn".into(),
            ports: vec!["21/tcp".into(), "22/tcp".into()],
            blocked_at: "2026-11-21T23:51:47.731914Z".into(),
            remaining: 3552,
            offence: 2,
            held: Held::Both,
            signature: None,
            origin: None,
        }
    }

    /// Issue 26, 8: `why` on a block the kernel no longer holds does not say "is blocked";
    /// `status` counts the kernel's elements and those only the kernel holds.
    #[test]
    fn why_on_a_lost_block_and_status_with_kernel_only_elements() {
        let why = human_utc(&Response::Why {
            first_line: None,
            addr: "203.0.113.7".parse().unwrap(),
            block: Some(BlockInfo {
                held: Held::DaemonOnly,
                ..block()
            }),
            never_block: vec![],
            refused: None,
        });
        assert!(
            why.starts_with(
                "203.0.113.7 is not blocked: not in the kernel, its element was lost or deleted \
                 outside scansentry (the daemon's block has 59m 12s left): syn"
            ),
            "{why}"
        );
        assert!(!why.contains("is blocked"), "{why}");
        let status = human_utc(&Response::Status(StatusInfo {
            mode: "enforcing".into(),
            blocks_active: 3,
            blocks_kernel_only: 2,
            max_blocks: 100,
            ..StatusInfo::default()
        }));
        assert!(
            status.contains("3 of at most 100 an address family; kernel only 2"),
            "{status}"
        );
    }

    /// Issue 26, 1: a dry run's blocks are marked `[dry run] would block` by `list` and
    /// `why`, and counted apart by `status`.
    #[test]
    fn list_why_and_status_mark_a_dry_runs_blocks() {
        let imagined = BlockInfo {
            held: Held::DryRun,
            offence: 1,
            ..block()
        };
        let table = blocks(std::slice::from_ref(&imagined), &Zone::Utc);
        assert!(table.contains("[dry run] would block: syn"), "{table}");
        let why = human_utc(&Response::Why {
            first_line: None,
            addr: "203.0.113.7".parse().unwrap(),
            block: Some(imagined),
            never_block: vec![],
            refused: None,
        });
        assert_eq!(
            why,
            "[dry run] would block 203.0.113.7 for 59m 12s more: syn scan of 2 ports (21/tcp, \
             22/tcp), since 2026-11-21T23:51:47.731914Z (a dry run: not in the kernel, not \
             saved, not an offence)"
        );
        let status = human_utc(&Response::Status(StatusInfo {
            mode: "dry-run".into(),
            blocks_active: 1,
            would_block: 2,
            ..StatusInfo::default()
        }));
        let lines: Vec<&str> = status.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("blocks active"))
            .unwrap();
        assert!(lines[at].contains(" 1 of at most"), "{status}");
        assert!(
            lines[at + 1].starts_with("would block")
                && lines[at + 1].contains("[dry run] 2 (imagined: not in the kernel"),
            "{status}"
        );
        let enforcing = human_utc(&Response::Status(StatusInfo {
            mode: "enforcing".into(),
            ..StatusInfo::default()
        }));
        assert!(!enforcing.contains("would block"), "{enforcing}");
    }

    /// Issue 16, 3: what the kernel holds without the daemon, and the reverse, are marked.
    #[test]
    fn list_and_why_mark_blocks_held_by_one_side_only() {
        let kernel_only = BlockInfo {
            held: Held::KernelOnly,
            kind: "added outside sentryd, no timeout".into(),
            ports: Vec::new(),
            blocked_at: "-".into(),
            remaining: 0,
            offence: 0,
            ..block()
        };
        let lost = BlockInfo {
            held: Held::DaemonOnly,
            ..block()
        };
        let table = blocks(&[kernel_only.clone(), lost], &Zone::Utc);
        assert!(
            table.contains("added outside sentryd, no timeout [kernel only]"),
            "{table}"
        );
        assert!(table.contains("syn [not in kernel]"), "{table}");
        let why = human_utc(&Response::Why {
            first_line: None,
            addr: "203.0.113.7".parse().unwrap(),
            block: Some(kernel_only),
            never_block: vec![],
            refused: None,
        });
        assert!(
            why.ends_with("in the kernel only, offence 0, since -"),
            "{why}"
        );
        let unblocked = human_utc(&Response::Unblocked {
            net: "2001:db8::5/128".parse().unwrap(),
            lifted: vec!["2001:db8::/64".parse().unwrap()],
            dry_run: false,
            fleet: false,
            origin: None,
        });
        assert_eq!(
            unblocked,
            "unblocked 2001:db8::5 (lifted the block of 2001:db8::/64)"
        );
        // Issue 24: a block another host of the fleet made is lifted here; the fleet keeps it.
        let unblocked = human_utc(&Response::Unblocked {
            net: "203.0.113.7/32".parse().unwrap(),
            lifted: vec![],
            dry_run: false,
            fleet: true,
            origin: Some("web-1".into()),
        });
        assert_eq!(
            unblocked,
            "unblocked 203.0.113.7; the fleet was asked to lift what this host's blocks added; \
             web-1 made this block: run sentryctl unblock there to lift it fleet-wide"
        );
    }

    #[test]
    fn list_is_an_aligned_table() {
        assert_eq!(
            blocks(&[block()], &Zone::Utc),
            "ADDRESS      KIND  PORTS          BLOCKED AT                   REMAINING  OFFENCE\n\
             203.0.113.7  syn   21/tcp,22/tcp  2026-11-21T23:51:47.731914Z  59m 12s    2"
        );
        assert_eq!(blocks(&[], &Zone::Utc), "no blocks in force");
    }

    /// Issue 27: `why` names the tripwire and its one probe.
    #[test]
    fn why_names_the_tripwire() {
        let r = Response::Why {
            first_line: None,
            addr: "203.0.113.7".parse().unwrap(),
            block: Some(BlockInfo {
                kind: crate::respond::TRIPWIRE.into(),
                ports: vec!["2323/tcp".into()],
                ..block()
            }),
            never_block: vec![],
            refused: None,
        };
        assert_eq!(
            human(&r, &Zone::Utc),
            "203.0.113.7 is blocked for 59m 12s more: one probe to tripwire port 2323/tcp, \
             offence 2, since 2026-11-21T23:51:47.731914Z"
        );
    }

    /// Issue 28: `why` names the tool the probes looked like, text and JSON.
    #[test]
    fn why_names_the_tool() {
        let r = Response::Why {
            first_line: None,
            addr: "203.0.113.7".parse().unwrap(),
            block: Some(BlockInfo {
                ports: vec![],
                signature: Some("nmap OS detection (SEQ1, SEQ2, SEQ3)".into()),
                ..block()
            }),
            never_block: vec![],
            refused: None,
        };
        assert_eq!(
            human(&r, &Zone::Utc),
            "203.0.113.7 is blocked for 59m 12s more: syn scan, nmap OS detection (SEQ1, SEQ2, \
             SEQ3), offence 2, since 2026-11-21T23:51:47.731914Z"
        );
        let json = crate::ctl::json::response(&r);
        assert_eq!(
            json["block"]["signature"],
            "nmap OS detection (SEQ1, SEQ2, SEQ3)"
        );
        crate::ctl::json::check_schema(&json);
    }

    #[test]
    fn why_explains_blocks_and_never_block_entries() {
        let r = Response::Why {
            first_line: None,
            addr: "203.0.113.7".parse().unwrap(),
            block: Some(block()),
            never_block: vec![],
            refused: None,
        };
        assert_eq!(
            human(&r, &Zone::Utc),
            "203.0.113.7 is blocked for 59m 12s more: syn scan of 2 ports (21/tcp, 22/tcp), \
             offence 2, since 2026-11-21T23:51:47.731914Z"
        );
        let r = Response::Why {
            first_line: None,
            addr: "198.51.100.1".parse().unwrap(),
            block: None,
            never_block: vec![NeverBlockInfo {
                net: "198.51.100.1/32".parse().unwrap(),
                reason: "default gateway on eth0".into(),
            }],
            refused: None,
        };
        assert_eq!(
            human(&r, &Zone::Utc),
            "198.51.100.1 is never blocked: default gateway on eth0 (198.51.100.1)"
        );
    }
}
