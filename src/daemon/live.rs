//! The live loop: capture → pipeline → responder, on the host's real traffic. **Shell.**
//!
//! This version decides and logs; the nftables backend that carries the decisions out joins it
//! next, so every decision is reported as "would block".

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::process::ExitCode;
use std::time::Duration;

use crate::capture::{LiveCapture, LiveSettings};
use crate::config::Loaded;
use crate::exit;
use crate::host;
use crate::ignore::{self, Entry, Reason};
use crate::pipeline::Pipeline;
use crate::report;
use crate::respond::Responder;
use crate::time::{Clock, SystemClock};

/// How often the listening sockets are re-read.
const LISTENERS_EVERY: Duration = Duration::from_secs(1);

/// Runs until killed; returns only on an error.
pub fn run(loaded: &Loaded) -> ExitCode {
    let config = &loaded.config;
    let interfaces = match host::interface_addresses() {
        Ok(list) => list,
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::FAILURE);
        }
    };
    let discovered: Vec<Entry> = interfaces
        .iter()
        .map(|(name, addr)| Entry {
            net: (*addr).into(),
            reason: Reason::Interface(name.clone()),
        })
        .collect();
    let (ignore, warnings) = match ignore::load(&config.never_block, discovered) {
        Ok(loaded) => loaded,
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::CONFIG);
        }
    };
    for w in warnings {
        eprintln!("sentryd: warning: {w}");
    }
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
    let mut responder = Responder::new(&config.respond);

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
        "sentryd: watching {} ({} local addresses; configuration: {}); no firewall backend \
         yet: decisions are logged as \"would block\", nothing is blocked",
        settings.device,
        locals.len(),
        loaded.origin
    );

    let clock = SystemClock;
    let mut next_refresh = clock.now().saturating_add(LISTENERS_EVERY);
    loop {
        match capture.next_frame() {
            Ok(Some(frame)) => {
                if let Some(detection) = pipeline.process_frame(frame.at, link, frame.data) {
                    let decision =
                        responder.on_detection(&detection, pipeline.ignore(), clock.now());
                    println!("{}", report::line(&detection, &decision));
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
