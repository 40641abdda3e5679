//! `sentryctl`: asks the daemon over its control socket, and checks configurations. **Shell**;
//! the human output is built by `output`, which is pure.

pub mod audit;
pub mod import;
pub mod json;
pub(crate) mod output;

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipnet::IpNet;

use crate::config;
use crate::control::DEFAULT_SOCKET;
use crate::control::client::{ClientError, ask};
use crate::control::protocol::{BlockInfo, LIST_PAGE, Request, Response};
use crate::exit;

/// Control scansentry's daemon, and check its configuration.
#[derive(Debug, Parser)]
#[command(name = "sentryctl", version, max_term_width = 100)]
pub struct Args {
    /// The daemon's control socket.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// Show times in UTC, as the daemon writes them (default: the local time zone).
    #[arg(long, global = true)]
    pub utc: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// sentryctl's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon's mode, uptime and counters.
    Status,
    /// The blocks in force: address, kind, ports, since when, time left, offence.
    List,
    /// Block an address or network now.
    Block {
        /// The address or network (CIDR).
        #[arg(value_name = "IP|CIDR", value_parser = parse_net)]
        net: IpNet,
        /// For how long, like "90s", "1h", "7d" (default: the configured block-for).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_block_for)]
        duration: Option<Duration>,
    },
    /// Lift a block. Exits 0 also when it was not blocked.
    Unblock {
        /// The address or network: every block that holds it is lifted.
        #[arg(value_name = "IP|CIDR", value_parser = parse_net, required_unless_present = "all")]
        net: Option<IpNet>,
        /// Lift every block instead (the daemon's and every element of its sets), on this host
        /// only.
        #[arg(long, conflicts_with_all = ["net", "grace"])]
        all: bool,
        /// Do not block it again for this long (so that its next stray packet is forgiven).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        grace: Option<Duration>,
        /// In fleet mode, lift it on this host only (by default every host of the fleet is
        /// asked to lift it too).
        #[arg(long, conflicts_with = "all")]
        local: bool,
    },
    /// Whether an address is blocked, or never blocked, and why.
    Why {
        /// The address.
        ip: IpAddr,
    },
    /// The never-block list, with the reason for each entry.
    #[command(alias = "ignore")]
    NeverBlock,
    /// Reload the daemon's configuration (a bad one is refused and the old one kept).
    Reload,
    /// A live view of the counters and of the sources being counted now, highest score first,
    /// refreshed every second until Ctrl-C.
    Top {
        /// Print one frame and exit (for scripts; with --json, one JSON object).
        #[arg(long)]
        once: bool,
        /// How often to refresh.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
        every: Duration,
        /// How many sources to show (at most 50).
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Check a configuration file (by default /etc/scansentry/scansentry.toml, or the built-in
    /// default when it is absent). Exits 0 if valid, 78 if not.
    Validate {
        /// The file to check.
        file: Option<PathBuf>,
    },
    /// Audit what this host exposes: the sockets that accept traffic, with their processes and
    /// names, checked against the audit's first look (the baseline) and the [audit] policy.
    /// Exits 0 when there is nothing to report, 1 with findings (or changes, with --diff or
    /// --import-nmap), 2 on an error.
    Audit {
        /// Print what opened (+) and closed (-) since the last audit, or since SINCE: a snapshot
        /// number, a time like 2026-11-21T10:00:00Z, or an age like 1d.
        #[arg(long, value_name = "SINCE", num_args = 0..=1, default_missing_value = "last")]
        diff: Option<String>,
        /// Store an nmap XML scan (nmap -oX) of other hosts as a snapshot, and print what
        /// changed since the last one imported.
        #[arg(long, value_name = "SCAN.xml", conflicts_with = "diff")]
        import_nmap: Option<PathBuf>,
        /// Print what listens now as an `expect` list (the packages write it to
        /// /etc/scansentry/audit-expect.toml at install); the history is not touched.
        #[arg(long, conflicts_with_all = ["diff", "import_nmap"])]
        print_expect: bool,
        /// The configuration with the policy (default: /etc/scansentry/scansentry.toml, or the
        /// built-in default).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The history database (default: audit.sqlite in the [daemon] state-dir).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
    /// Fleet mode: `sentryctl fleet init` makes the bucket of active blocks.
    Fleet {
        /// What to do.
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Convert a PortSentry 1.x or 2.0 portsentry.conf (and the ignore file it names) into a
    /// scansentry.toml, on standard output or into --output; what could not be carried over is
    /// listed on standard error, with why.
    ImportPortsentry {
        /// The portsentry.conf.
        path: PathBuf,
        /// Trap ports from PortSentry's advanced (stealth) range, 1 to ADVANCED_PORTS_*, instead
        /// of the TCP_PORTS/UDP_PORTS lists (for those who ran it with -atcp/-audp).
        #[arg(long)]
        advanced: bool,
        /// Write the new configuration here (an existing file is never overwritten).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// `sentryctl fleet`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Make the fleet's bucket of active blocks (its JetStream stream)
    ///
    /// With the [fleet] settings of the configuration: one value per key, no rollup, purge or
    /// delete, nothing republished, mirrored or sourced. Run it once, as a NATS user that may make streams (the
    /// hosts may not); running it again changes nothing. Exits 0 when the stream is made or
    /// was there as it should be, 1 when one is there made otherwise, 69 when no server
    /// answers, 78 for a bad configuration.
    Init {
        /// The configuration (default: /etc/scansentry/scansentry.toml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// An address (a host prefix) or a CIDR, for clap.
fn parse_net(text: &str) -> Result<IpNet, String> {
    config::parse_net(text).ok_or_else(|| {
        "expected an IP address or a CIDR like 203.0.113.0/24 (without host bits)".into()
    })
}

/// A humantime duration of at least a second, for clap.
fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(d),
        Ok(_) => Err("must be at least 1s".into()),
        Err(e) => Err(format!(
            "{e}; write it like \"90s\", \"15m\", \"1h\" or \"7d\""
        )),
    }
}

/// A block's duration: 1s to [`config::MAX_BLOCK_FOR`] (the daemon checks it too).
fn parse_block_for(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > config::MAX_BLOCK_FOR {
        return Err(format!(
            "must be at most {} (the longest block)",
            crate::text::human(config::MAX_BLOCK_FOR)
        ));
    }
    Ok(d)
}

/// Runs `sentryctl` and returns its exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let request = match args.command {
        Command::Validate { file } => {
            return crate::exit::check_config("sentryctl", file.as_deref(), args.json);
        }
        Command::Audit {
            diff,
            import_nmap,
            print_expect,
            config,
            db,
        } => {
            return audit::run(&audit::Options {
                diff,
                import_nmap,
                print_expect,
                config,
                db,
                json: args.json,
            });
        }
        Command::ImportPortsentry {
            path,
            advanced,
            output,
        } => return import_portsentry(&path, advanced, output.as_deref()),
        Command::Fleet {
            command: FleetCommand::Init { config },
        } => return fleet_init(config.as_deref()),
        Command::Status => Request::Status,
        Command::List => return list(&args),
        Command::Top { once, every, limit } => return top(&args, once, every, limit),
        Command::Block { net, duration } => Request::Block {
            net,
            seconds: duration.map(|d| d.as_secs()),
        },
        Command::Unblock { all: true, .. } => Request::UnblockAll,
        Command::Unblock {
            net, grace, local, ..
        } => Request::Unblock {
            net: net.expect("clap requires an address without --all"),
            grace: grace.map(|d| d.as_secs()),
            local,
        },
        Command::Why { ip } => Request::Why { addr: ip },
        Command::NeverBlock => Request::NeverBlock,
        Command::Reload => Request::Reload,
    };
    match answer(&args, request) {
        Ok(response) => {
            let text = if args.json {
                serde_json::to_string_pretty(&json::response(&response)).expect("JSON")
            } else {
                output::human(&response, &zone(&args))
            };
            print(&text)
        }
        Err(code) => code,
    }
}

/// How times are shown: `--utc`, or the system's time zone (UTC when it cannot be read).
fn zone(args: &Args) -> output::Zone {
    if args.utc {
        output::Zone::Utc
    } else {
        output::Zone::Local(jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC))
    }
}

/// `top`: a frame every `every` (or one, `once`); on a terminal each frame replaces the last.
fn top(args: &Args, once: bool, every: Duration, limit: usize) -> ExitCode {
    use crate::time::Clock;
    use std::io::IsTerminal;
    let clock = crate::time::SteadyClock::new();
    let terminal = std::io::stdout().is_terminal() && !args.json;
    let mut before: Option<(crate::control::protocol::StatusInfo, crate::time::Timestamp)> = None;
    loop {
        let (status, threshold, watching) = match answer(args, Request::Top { limit }) {
            Ok(Response::Top {
                status,
                threshold,
                watching,
            }) => (status, threshold, watching),
            Ok(other) => return unexpected(&other),
            Err(code) => return code,
        };
        let now = clock.now();
        let frame = if args.json {
            json::response(&Response::Top {
                status: status.clone(),
                threshold,
                watching,
            })
            .to_string()
        } else {
            let previous = before
                .as_ref()
                .map(|(s, at)| (s, now.saturating_since(*at)));
            output::top(&status, threshold, &watching, previous)
        };
        // On a terminal: home, clear, the frame. Otherwise frames follow one another.
        let shown = if terminal {
            format!("\x1b[H\x1b[2J{frame}")
        } else {
            frame
        };
        if once {
            return print(shown.trim_end());
        }
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{}", shown.trim_end())
            .and_then(|()| writeln!(stdout))
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // Standard output closed (a pipe into `head`): done.
            return ExitCode::SUCCESS;
        }
        drop(stdout);
        before = Some((status, now));
        std::thread::sleep(every);
    }
}

/// `list` pages through every block.
fn list(args: &Args) -> ExitCode {
    let mut blocks: Vec<BlockInfo> = Vec::new();
    loop {
        let request = Request::List {
            offset: blocks.len(),
            limit: LIST_PAGE,
        };
        match answer(args, request) {
            Ok(Response::Blocks {
                blocks: page,
                total,
            }) => {
                let done = page.is_empty() || blocks.len() + page.len() >= total;
                blocks.extend(page);
                if done {
                    break;
                }
            }
            Ok(other) => return unexpected(&other),
            Err(code) => return code,
        }
    }
    let text = if args.json {
        serde_json::to_string_pretty(&json::blocks(&blocks)).expect("JSON")
    } else {
        output::blocks(&blocks, &zone(args))
    };
    print(&text)
}

/// `fleet init`: the bucket's stream made, or found made as it should be; says which.
fn fleet_init(path: Option<&Path>) -> ExitCode {
    use crate::daemon::fleet::{LinkError, Made, bucket};
    let loaded = match crate::config_file::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            exit::report("sentryctl", &e);
            return exit::code(exit::CONFIG);
        }
    };
    let Some(fleet) = &loaded.config.fleet else {
        eprintln!(
            "sentryctl: error: fleet mode is off in {}: set [fleet] enabled = true and servers",
            loaded.origin
        );
        return exit::code(exit::CONFIG);
    };
    let bucket = bucket::bucket_name(&fleet.prefix);
    match crate::daemon::fleet::init(fleet) {
        Ok(Made::Made(stream)) => print(&format!(
            "made the bucket {bucket} (stream {stream}): one value per key, no rollup, purge or \
             delete, entries kept {}, {} MiB at most",
            crate::text::human(crate::respond::MAX_BLOCK_FOR),
            bucket::BUCKET_BYTES >> 20
        )),
        Ok(Made::AlreadyThere(stream)) => print(&format!(
            "the bucket {bucket} (stream {stream}) is there already, made as the fleet needs; \
             nothing to do"
        )),
        Err(e) => {
            exit::report("sentryctl", &e);
            exit::code(match e {
                LinkError::Connect { .. } => exit::UNAVAILABLE,
                LinkError::Credentials { .. } | LinkError::HostName(_) => exit::CONFIG,
                _ => exit::FAILURE,
            })
        }
    }
}

/// `import-portsentry`: reads the files, converts, checks the result, writes it.
fn import_portsentry(path: &Path, advanced: bool, output: Option<&Path>) -> ExitCode {
    let conf = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("sentryctl: error: cannot read {}: {e}", path.display());
            return exit::code(exit::FAILURE);
        }
    };
    let mut imported = import::convert(&conf, &path.display().to_string(), advanced);
    if let Some(file) = imported.ignore_file.take() {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let (addresses, notes) = import::ignore_entries(&text, &file);
                imported.toml.push_str(&format!(
                    "\n[never-block]\n# From {file}.\nfile = \"\"\n{addresses}"
                ));
                imported.notes.extend(notes);
            }
            Err(e) => imported.notes.push(format!(
                "{}: IGNORE_FILE {file}: not imported: cannot read it ({e}); add its addresses \
                 to [never-block] addresses",
                path.display()
            )),
        }
    }
    if let Err(e) = config::from_toml(&imported.toml, Path::new("the converted configuration")) {
        // A bug of the converter, not of the input: say so rather than write a bad file.
        exit::report("sentryctl", &e);
        return exit::code(exit::FAILURE);
    }
    for note in &imported.notes {
        eprintln!("sentryctl: {note}");
    }
    match output {
        None => print(imported.toml.trim_end()),
        Some(out) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .and_then(|mut f| f.write_all(imported.toml.as_bytes()));
            match written {
                Ok(()) => {
                    eprintln!("sentryctl: wrote {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sentryctl: error: cannot write {}: {e}", out.display());
                    exit::code(exit::FAILURE)
                }
            }
        }
    }
}

fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").is_err() {
        return exit::code(exit::FAILURE);
    }
    ExitCode::SUCCESS
}

/// Asks the daemon; a refusal, or a daemon that cannot be reached, is said here and becomes
/// the exit code.
fn answer(args: &Args, request: Request) -> Result<Response, ExitCode> {
    match ask(&args.socket, request) {
        Ok(Response::Error { message }) => Err(refused(args.json, &message)),
        Ok(response) => Ok(response),
        Err(e) => Err(unreachable_daemon(args.json, &e)),
    }
}

/// An answer of another kind than the request's.
fn unexpected(other: &Response) -> ExitCode {
    eprintln!("sentryctl: error: unexpected answer from sentryd: {other:?}");
    exit::code(exit::FAILURE)
}

/// The daemon refused: its reason on standard error (and, with `--json`, as
/// `{"schema":1,"result":"error","message":…}` on standard output); exit 1.
fn refused(json: bool, message: &str) -> ExitCode {
    eprintln!("sentryctl: error: {message}");
    if json {
        print_error_json(message);
    }
    exit::code(exit::FAILURE)
}

/// An error as the protocol's own error answer, for scripts that read `--json`.
fn print_error_json(message: &str) {
    let error = Response::Error {
        message: message.to_string(),
    };
    println!("{}", json::response(&error));
}

fn unreachable_daemon(json: bool, e: &ClientError) -> ExitCode {
    exit::report("sentryctl", e);
    eprintln!("{}", e.hint());
    if json {
        print_error_json(&exit::chain(e));
    }
    match e {
        ClientError::Unavailable { .. } => exit::code(exit::UNAVAILABLE),
        ClientError::Permission { .. } => exit::code(exit::NOPERM),
        ClientError::Exchange { .. } => exit::code(exit::FAILURE),
    }
}
