//! The live loop: capture → pipeline → responder → firewall, on the host's real traffic.
//! **Shell.**

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::hook::Hooks;
use crate::capture::{LiveCapture, LiveSettings};
use crate::config::Loaded;
use crate::exit;
use crate::firewall::nft::NftFirewall;
use crate::firewall::{DryRun, Firewall, FirewallError};
use crate::host;
use crate::ignore::{self, IgnoreList, discover};
use crate::pipeline::Pipeline;
use crate::report::{self, Mode};
use crate::respond::{Decision, Responder};
use crate::time::{Clock, SystemClock};

/// How often the listening sockets are re-read.
const LISTENERS_EVERY: Duration = Duration::from_secs(1);

/// Prints one event line, prefixed with the time.
fn log(clock: &SystemClock, line: &str) {
    println!("{} {line}", clock.now());
}

/// Runs until killed; returns only on an error.
pub fn run(loaded: &Loaded) -> ExitCode {
    let config = &loaded.config;
    let clock = SystemClock;
    let (interfaces, ignore) = match never_block(loaded) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let mode = if config.respond.dry_run {
        Mode::DryRun
    } else {
        Mode::Enforcing
    };
    let mut firewall: Box<dyn Firewall> = match mode {
        Mode::DryRun => Box::new(DryRun),
        Mode::Enforcing => match NftFirewall::new(config.firewall.clone()) {
            Ok(fw) => Box::new(fw),
            Err(e) => return firewall_failed(&e),
        },
    };
    let allow: Vec<_> = ignore.entries().iter().map(|e| e.net).collect();
    if let Err(e) = firewall.ensure_ready(&allow) {
        return firewall_failed(&e);
    }
    let mut responder = Responder::new(&config.respond);
    // Blocks still in the kernel (from before a restart) stay, and are known as active.
    match firewall.list() {
        Ok(blocked) => {
            let now = clock.now();
            for b in blocked {
                if let Some(left) = b.remaining {
                    responder.restore(b.net, now.saturating_add(left));
                }
            }
        }
        Err(e) => exit::report("sentryd", &e),
    }
    let hooks = Hooks::new(
        config.respond.on_block.clone(),
        config.respond.on_block_timeout,
    );

    let mut traps = config.traps.build(host::local_port_range());
    match host::read_listeners() {
        Ok(listeners) => traps.set_listeners(listeners),
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::FAILURE);
        }
    }
    let locals: Vec<_> = interfaces.iter().map(|(_, addr)| *addr).collect();
    let seed = RandomState::new().hash_one(std::process::id());
    let mut pipeline = Pipeline::new(
        config.detector.clone(),
        traps,
        ignore,
        locals.iter().copied(),
        seed,
    );

    let settings = LiveSettings::default();
    let mut capture = match LiveCapture::open(&settings) {
        Ok(c) => c,
        Err(e) if e.is_permission() => {
            exit::report("sentryd", &e);
            eprintln!("hint: run as root, or with CAP_NET_RAW and CAP_NET_ADMIN");
            return exit::code(exit::NOPERM);
        }
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::FAILURE);
        }
    };
    let link = capture.link();
    eprintln!(
        "sentryd: watching {} ({} local addresses, {} never-block entries; configuration: {}); {}",
        settings.device,
        locals.len(),
        pipeline.ignore().entries().len(),
        loaded.origin,
        match mode {
            Mode::Enforcing => "blocking in nftables",
            Mode::DryRun => "dry run: nothing is blocked",
        }
    );

    let mut next_refresh = clock.now().saturating_add(LISTENERS_EVERY);
    loop {
        match capture.next_frame() {
            Ok(Some(frame)) => {
                if let Some(detection) = pipeline.process_frame(frame.at, link, frame.data) {
                    let decision =
                        responder.on_detection(&detection, pipeline.ignore(), clock.now());
                    let actions = decision.actions();
                    match firewall.apply(&actions) {
                        Ok(()) => {
                            log(&clock, &report::line(&detection, &decision, mode));
                            if let Decision::Block { net, ttl, .. } = &decision {
                                hooks.on_block(&detection, *net, *ttl);
                            }
                        }
                        Err(e) => log(
                            &clock,
                            &format!(
                                "could not carry out \"{}\": {e}",
                                report::line(&detection, &decision, mode)
                            ),
                        ),
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                exit::report("sentryd", &e);
                return exit::code(exit::FAILURE);
            }
        }
        let now = clock.now();
        if now >= next_refresh {
            next_refresh = now.saturating_add(LISTENERS_EVERY);
            match host::read_listeners() {
                Ok(listeners) => pipeline.set_listeners(listeners),
                Err(e) => eprintln!("sentryd: warning: cannot refresh listening sockets: {e}"),
            }
        }
    }
}

/// The host's addresses and the never-block list: discovered (interfaces, gateways,
/// nameservers), configured, and from the ignore file. Problems are printed; the error is the
/// exit code.
pub fn never_block(loaded: &Loaded) -> Result<(Vec<(String, IpAddr)>, IgnoreList), ExitCode> {
    let interfaces = host::interface_addresses().map_err(|e| {
        exit::report("sentryd", &e);
        exit::code(exit::FAILURE)
    })?;
    let discovered = discover::discover(&discover::read_host_state(interfaces.clone()));
    let (ignore, warnings) = ignore::load(&loaded.config.never_block, discovered).map_err(|e| {
        exit::report("sentryd", &e);
        exit::code(exit::CONFIG)
    })?;
    for w in warnings {
        eprintln!("sentryd: warning: {w}");
    }
    Ok((interfaces, ignore))
}

fn firewall_failed(e: &FirewallError) -> ExitCode {
    exit::report("sentryd", e);
    match e {
        FirewallError::Permission => exit::code(exit::NOPERM),
        FirewallError::Attach(_) => exit::code(exit::CONFIG),
        _ => exit::code(exit::FAILURE),
    }
}
