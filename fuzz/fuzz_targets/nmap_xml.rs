//! Any text as an nmap XML file: a snapshot or an error naming the place, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = scansentry::audit::nmap::parse(text, "scan.xml");
});
