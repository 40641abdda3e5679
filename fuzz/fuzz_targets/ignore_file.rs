//! Any text as a never-block file, and as a PortSentry configuration to import.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = scansentry::never_block::parse_file(text, std::path::Path::new("ignore"));
    let imported = scansentry::ctl::import::convert(text, "portsentry.conf", false);
    let _ = scansentry::ctl::import::ignore_entries(text, "portsentry.ignore");
    // What the importer writes is always a valid configuration.
    if let Err(e) =
        scansentry::config::from_toml(&imported.toml, std::path::Path::new("imported.toml"))
    {
        panic!("{e}: {:?}\n{}", e, imported.toml);
    }
});
