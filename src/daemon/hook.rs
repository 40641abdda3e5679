//! `[respond] on-block`: a program run for each block, with a timeout, never in the way of the
//! pipeline. **Shell**, except [`argv`], which fills the placeholders.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;

use crate::detect::Detection;
use crate::report::source_text;

/// At most this many hook programs run at once; past it a block's hook is skipped and logged.
const MAX_RUNNING: usize = 16;

/// The program's arguments with the placeholders filled: `{addr}` (the scanning address),
/// `{source}` (what was blocked), `{kind}` (`syn`, `syn+udp`, …), `{ports}` (`22/tcp,53/udp`),
/// `{duration}` (seconds), `{signature}` (the tool the probes looked like, `nmap OS detection
/// (SEQ1, SEQ2, SEQ3)`, or empty).
pub fn argv(template: &[String], d: &Detection, net: IpNet, ttl: Duration) -> Vec<String> {
    let ports = d
        .ports
        .iter()
        .map(|(proto, port)| proto.label(*port))
        .collect::<Vec<_>>()
        .join(",");
    let signature = d
        .signature
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    template
        .iter()
        .map(|arg| {
            arg.replace("{addr}", &d.addr.to_string())
                .replace("{source}", &source_text(&net))
                .replace("{kind}", &d.kinds.to_string())
                .replace("{ports}", &ports)
                .replace("{duration}", &ttl.as_secs().to_string())
                .replace("{signature}", &signature)
        })
        .collect()
}

/// Runs hook programs in the background.
#[derive(Debug)]
pub struct Hooks {
    template: Vec<String>,
    timeout: Duration,
    running: Arc<AtomicUsize>,
}

impl Hooks {
    /// Hooks running `template` (empty: none) with `timeout`.
    pub fn new(template: Vec<String>, timeout: Duration) -> Self {
        Hooks {
            template,
            timeout,
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts the program for a block, if one is configured; returns at once.
    pub fn on_block(&self, d: &Detection, net: IpNet, ttl: Duration) {
        if self.template.is_empty() {
            return;
        }
        if self.running.fetch_add(1, Ordering::SeqCst) >= MAX_RUNNING {
            self.running.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(
                "on-block program skipped for {}: {MAX_RUNNING} still running",
                source_text(&net)
            );
            return;
        }
        let argv = argv(&self.template, d, net, ttl);
        let timeout = self.timeout;
        let running = Arc::clone(&self.running);
        std::thread::spawn(move || {
            run(&argv, timeout);
            running.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Runs the program of `argv` (see [`crate::process::command`]: it inherits nothing of the
/// daemon's) and waits for it, at most `timeout`; then it is killed with everything it started.
fn run(argv: &[String], timeout: Duration) {
    let program = &argv[0];
    let mut child = match crate::process::command(program, &argv[1..]).spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!("cannot run on-block program {program}: {e}");
            return;
        }
    };
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                tracing::warn!("on-block program {program} failed: {status}");
                return;
            }
            Ok(None) if waited >= timeout => {
                crate::process::kill_group(&mut child);
                tracing::warn!(
                    "on-block program {program} killed after {}s, with what it started",
                    timeout.as_secs_f64()
                );
                return;
            }
            Ok(None) => {
                std::thread::sleep(step);
                waited += step;
            }
            Err(e) => {
                tracing::warn!("on-block program {program}: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ScanKinds;
    use crate::time::Timestamp;
    use crate::wire::{ProbeKind, Proto};

    #[test]
    fn placeholders_are_filled_and_nothing_else_is_touched() {
        let mut kinds = ScanKinds::of(ProbeKind::Syn);
        kinds.insert(ScanKinds::of(ProbeKind::Udp));
        let d = Detection {
            source: "2001:db8::/64".parse().unwrap(),
            addr: "2001:db8::7".parse().unwrap(),
            kinds,
            ports: vec![(Proto::Tcp, 22), (Proto::Udp, 53)],
            first_seen: Timestamp::ZERO,
            last_seen: Timestamp::ZERO,
            packets: 2,
            score: 21,
            several_addresses: false,
            arrived_on: None,
            tripwire: None,
            signature: None,
        };
        let template: Vec<String> = [
            "/usr/local/bin/notify",
            "--who={addr}",
            "{source}",
            "{kind}",
            "{ports}",
            "{duration}",
            "$HOME;rm",
            "{signature}",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            argv(&template, &d, d.source, Duration::from_secs(3600)),
            [
                "/usr/local/bin/notify",
                "--who=2001:db8::7",
                "2001:db8::/64",
                "syn+udp",
                "22/tcp,53/udp",
                "3600",
                "$HOME;rm",
                ""
            ]
        );
        let d = Detection {
            signature: Some(crate::detect::Signature {
                tool: "nmap OS detection",
                probes: vec!["SEQ1", "SEQ2", "SEQ3"],
            }),
            ..d
        };
        assert_eq!(
            argv(&template, &d, d.source, Duration::from_secs(1))[7],
            "nmap OS detection (SEQ1, SEQ2, SEQ3)"
        );
    }
}
