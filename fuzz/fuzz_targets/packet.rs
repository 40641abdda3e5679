//! Any bytes, as a frame of each link type, through the parser: a packet or a reason to skip
//! it, never a panic and never a read past the end.
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
        let _ = wire::parse(link, data);
    }
});
