//! `sentryctl`'s entry point. **Shell.** Talking to the daemon arrives with the control socket;
//! `validate` works on its own.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;

/// Control scansentry's daemon, and check its configuration.
#[derive(Debug, Parser)]
#[command(name = "sentryctl", version, about, max_term_width = 100)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// sentryctl's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file (by default /etc/scansentry/scansentry.toml, or the built-in
    /// default when it is absent). Exits 0 if valid, 78 if not.
    Validate {
        /// The file to check.
        file: Option<PathBuf>,
    },
}

/// Runs `sentryctl` and returns its exit code.
pub fn main() -> ExitCode {
    match Args::parse().command {
        Command::Validate { file } => config::check_command("sentryctl", file.as_deref()),
    }
}
