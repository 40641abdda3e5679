//! Exit codes (sysexits, as sshguard and ntpd-rs use them) and the one way errors are printed.

use std::error::Error;
use std::process::ExitCode;

/// A failed operation.
pub const FAILURE: u8 = 1;
/// Bad command-line arguments (clap's own code).
pub const USAGE: u8 = 2;
/// EX_UNAVAILABLE: the daemon cannot be reached.
pub const UNAVAILABLE: u8 = 69;
/// EX_NOPERM: not allowed.
pub const NOPERM: u8 = 77;
/// EX_CONFIG: a bad configuration.
pub const CONFIG: u8 = 78;

/// Prints `program: error: …` with the error's whole chain of causes, once, on stderr.
pub fn report(program: &str, err: &dyn Error) {
    eprintln!("{program}: error: {}", chain(err));
}

pub use crate::text::chain;

/// `code` as a process exit code.
pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// The shared body of `sentryd --check-config [FILE]` and `sentryctl validate [FILE]`: every
/// check of the start that needs neither the kernel's firewall nor the network — the
/// configuration, then the never-block file it names — with warnings and the verdict printed;
/// returns the exit code (0, or 78 for a configuration the start would refuse). With `json`,
/// the verdict is also one object on standard output: `{"valid", "config", "warnings",
/// "error"}`.
pub fn check_config(program: &str, path: Option<&std::path::Path>, json: bool) -> ExitCode {
    let verdict = |valid: bool, config: String, warnings: &[String], error: Option<String>| {
        if json {
            let v = serde_json::json!({
                "schema": crate::ctl::json::SCHEMA,
                "result": "validate",
                "valid": valid,
                "config": config,
                "warnings": warnings,
                "error": error,
            });
            println!("{v}");
        }
    };
    let named = path.map_or_else(
        || "the configuration".to_string(),
        |p| p.display().to_string(),
    );
    let loaded = match crate::config_file::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            report(program, &e);
            verdict(false, named, &[], Some(chain(&e)));
            return code(CONFIG);
        }
    };
    let mut warnings = loaded.warnings.clone();
    let file = (loaded.config.never_block.file.as_ref())
        .map(|path| (path.clone(), crate::host::read_text(path)));
    match crate::never_block::compose(&loaded.config, Vec::new(), file) {
        Ok((_, more)) => warnings.extend(more),
        Err(e) => {
            for w in &warnings {
                eprintln!("{program}: warning: {w}");
            }
            report(program, &e);
            verdict(false, loaded.origin.to_string(), &warnings, Some(chain(&e)));
            return code(CONFIG);
        }
    }
    for w in &warnings {
        eprintln!("{program}: warning: {w}");
    }
    if json {
        verdict(true, loaded.origin.to_string(), &warnings, None);
    } else {
        println!("{}: configuration is valid", loaded.origin);
    }
    ExitCode::SUCCESS
}
