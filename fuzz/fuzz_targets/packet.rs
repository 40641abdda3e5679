//! Any bytes, as a frame of each link type, through the parser: a packet or a reason to skip
//! it, never a panic and never a read past the end; a packet through the tool-fingerprint
//! rules (issue 28), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::wire::{self, LinkType};

fuzz_target!(|data: &[u8]| {
    for link in [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Loopback,
    ] {
        if let Ok(p) = wire::parse(link, data) {
            let _ = scansentry::detect::fingerprint::recognise(&p);
        }
    }
});
