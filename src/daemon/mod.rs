//! `sentryd`'s entry point: arguments, then one of the daemon's modes. **Shell.**

mod audit;
mod detach;
pub(crate) mod fleet;
mod hook;
mod live;
mod log;
mod metrics;
mod notify;
pub(crate) mod stages;

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config;
use crate::exit;
use crate::replay::{self, ReplayOptions};
use crate::report;

/// scansentry's daemon: recognises port scans in captured packets and blocks the scanners in
/// nftables.
#[derive(Debug, Parser)]
#[command(name = "sentryd", version, max_term_width = 100)]
pub struct Args {
    /// Detach from the terminal and run in the background (systemd runs sentryd in the
    /// foreground; this is for other init systems).
    /// The foreground process waits until the daemon is up: it exits 0 then, or with the
    /// daemon's exit code and reason if the start fails. Lines meant for standard output go
    /// to syslog.
    #[arg(short = 'D', long = "daemon")]
    pub daemonize: bool,

    /// Write the daemon's process ID to FILE once it is up; removed when it stops.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["replay", "check_config", "never_block", "remove_blocks"])]
    pub pidfile: Option<PathBuf>,

    /// Say more: also sources that keep scanning while blocked, and state saves.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Say everything: also the counters every 10 seconds.
    #[arg(short = 'd', long)]
    pub debug: bool,

    /// Judge traffic from the host's own addresses too (PortSentry's -L; the configuration's
    /// `[detect] local-check = false`). The never-block list still keeps them unblocked.
    #[arg(short = 'L', long)]
    pub disable_local_check: bool,

    /// Configuration file (when the default one is absent, the built-in default is used).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the configuration (FILE, or the one -c names, or the default), print the verdict
    /// and exit: 0 if valid, 78 if not.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub check_config: Option<Option<PathBuf>>,

    /// Run the detection pipeline over a capture file (pcap or pcapng) and print what would be
    /// blocked. Nothing is blocked.
    #[arg(long, value_name = "FILE.pcap", conflicts_with = "check_config")]
    pub replay: Option<PathBuf>,

    /// With --replay: an address of the protected host (repeatable). By default the
    /// destinations of the probes in the capture.
    #[arg(long = "local", value_name = "ADDR", requires = "replay")]
    pub locals: Vec<IpAddr>,

    /// With --replay: print one JSON object per line instead of text.
    #[arg(long, requires = "replay")]
    pub json: bool,

    /// Print the never-block list this host and configuration give (loopback, interface
    /// addresses, default gateways, nameservers, the configuration's addresses and file), with
    /// the reason for each entry, and exit.
    #[arg(long, conflicts_with_all = ["replay", "check_config"])]
    pub never_block: bool,

    /// Lift every block and remove what sentryd built in the firewall (own mode's table, the
    /// blocks in attach mode's sets, the route backend's routes), and forget the blocks of the
    /// state file so that no start puts them back (its offence history stays), then exit. The
    /// packages run it on removal; stopping the daemon keeps the blocks. Refused (exit 1,
    /// nothing changed) while a daemon answers on the configuration's control socket.
    #[arg(long, conflicts_with_all = ["replay", "check_config", "never_block"])]
    pub remove_blocks: bool,
}

/// Runs `sentryd` and returns its exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        let path = path.as_deref().or(args.config.as_deref());
        return crate::exit::check_config("sentryd", path, false);
    }
    let loaded = match crate::config_file::load(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::CONFIG);
        }
    };
    for w in &loaded.warnings {
        eprintln!("sentryd: warning: {w}");
    }
    if args.remove_blocks {
        live::remove_blocks(&loaded.config)
    } else if args.never_block {
        print_never_block(&loaded.config)
    } else if let Some(capture) = args.replay {
        let options = ReplayOptions {
            capture,
            config: loaded.config,
            locals: args.locals,
            disable_local_check: args.disable_local_check,
        };
        run_replay(options, args.json)
    } else {
        run_live(args, loaded)
    }
}

/// `sentryd --never-block`: the list, one entry a line with its reason.
fn print_never_block(config: &config::Config) -> ExitCode {
    let live::NeverBlock { list, warnings, .. } = match live::never_block(config) {
        Ok(found) => found,
        Err(e) => return e.report(),
    };
    for w in &warnings {
        eprintln!("sentryd: warning: {w}");
    }
    let listed = list.listed();
    let width = listed
        .iter()
        .map(|(net, _)| report::source_text(net).len())
        .max()
        .unwrap_or(0)
        .max("ADDRESS".len());
    println!("{:width$}  REASON", "ADDRESS");
    for (net, reason) in &listed {
        println!("{:width$}  {reason}", report::source_text(net));
    }
    ExitCode::SUCCESS
}

/// The daemon, on `loaded`, until it stops.
fn run_live(args: Args, loaded: config::Loaded) -> ExitCode {
    let readiness = match readiness(args.daemonize, args.pidfile) {
        Ok(readiness) => readiness,
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::FAILURE);
        }
    };
    // Reloads read the file again, from `/` once detached.
    let config_path = args.config.map(|p| std::path::absolute(&p).unwrap_or(p));
    let verbosity = if args.debug {
        live::Verbosity::Debug
    } else if args.verbose {
        live::Verbosity::Verbose
    } else {
        live::Verbosity::Normal
    };
    live::run(
        loaded,
        config_path,
        verbosity,
        args.disable_local_check,
        readiness,
    )
}

/// How the start will say it succeeded: with `-D`, after detaching (the foreground process
/// waits for it); the pid file's path made absolute first.
fn readiness(daemonize: bool, pidfile: Option<PathBuf>) -> std::io::Result<detach::Readiness> {
    let pidfile = pidfile.map(std::path::absolute).transpose()?;
    if daemonize {
        detach::detach(pidfile)
    } else {
        Ok(detach::Readiness::foreground(pidfile))
    }
}

fn run_replay(options: ReplayOptions, json: bool) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut write_failed = false;
    let result = replay::run_all(&options, |found| {
        let text = match found {
            replay::Found::Decided(detection, decision) => {
                let event = report::Event::of(detection, decision, report::Mode::DryRun);
                if json {
                    event.json().to_string()
                } else {
                    format!("{} {}", detection.last_seen, event.line())
                }
            }
            replay::Found::Held(hold) if json => hold.json().to_string(),
            replay::Found::Held(hold) => format!("{} {}", hold.at, hold.line()),
            replay::Found::Decoy(verdict, ttl) if json => serde_json::json!({
                "decoy": verdict.decoy,
                "unanswered": verdict.unanswered,
                "answered_by": verdict.answered_by,
                "held_for_secs": ttl.map(|t| t.as_secs()),
            })
            .to_string(),
            replay::Found::Decoy(verdict, ttl) => {
                format!("{} {}", verdict.at, crate::engine::decoy_line(verdict, ttl))
            }
        };
        write_failed |= writeln!(out, "{text}").is_err();
    });
    match result {
        Ok(summary) => {
            for w in &summary.warnings {
                eprintln!("sentryd: warning: {w}");
            }
            let text = if json {
                summary.json().to_string()
            } else {
                summary.text(&options.capture)
            };
            if write_failed || writeln!(out, "{text}").is_err() {
                // stdout closed (a pipe into `head`): nothing more to say.
                return exit::code(exit::FAILURE);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            exit::report("sentryd", &e);
            exit::code(exit::FAILURE)
        }
    }
}
