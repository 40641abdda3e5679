//! Any bytes, as a frame of every link type, through the parser and the whole pipeline: no
//! panic, and the pipeline's memory stays bounded (it is built once per input here).
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
