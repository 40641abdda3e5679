//! Any text as a configuration file: a valid configuration or a list of problems, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = scansentry::config::from_toml(text, std::path::Path::new("fuzz.toml"));
});
