//! Writes the man pages and shell completions the packages install:
//!
//! ```text
//! cargo run --example gen_docs -- OUT_DIR
//! ```
//!
//! - sentryd(8), sentryctl(1) and one sentryctl-COMMAND(1) per subcommand, made by
//!   `clap_mangen` from the command-line definitions, with the sections clap does not know
//!   (signals, files, exit status, examples) written here in roff;
//! - scansentry.toml(5) and scansentry(7), committed in `man/`, copied as they are (the keys of
//!   scansentry.toml(5) are made from `scansentry::config::reference`, and a test keeps them so);
//! - completions for bash, zsh and fish, made by `clap_complete`; in bash and fish
//!   `sentryctl unblock` and `why` also complete the addresses blocked now (asked of the daemon
//!   with `sentryctl list`).
//!
//! OUT_DIR/man/{sentryd.8,sentryctl.1,sentryctl-*.1,scansentry.toml.5,scansentry.7},
//! OUT_DIR/completions/{sentryd,sentryctl}.{bash,fish}, OUT_DIR/completions/_{sentryd,sentryctl}.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen_docs OUT_DIR");
        std::process::exit(2);
    };
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;

    let daemon = scansentry::daemon::Args::command();
    // No `help` subcommand in the pages: `sentryctl help X` is `sentryctl X --help`, and a
    // page for it would list pages that do not exist.
    let ctl = scansentry::ctl::Args::command().disable_help_subcommand(true);

    write_page(
        &man.join("sentryd.8"),
        daemon.clone(),
        "8",
        &[
            ("SIGNALS", SIGNALS),
            ("FILES", FILES),
            ("EXIT STATUS", EXIT_STATUS),
            ("EXAMPLES", SENTRYD_EXAMPLES),
            ("SEE ALSO", SENTRYD_SEE_ALSO),
        ],
    )?;
    write_page(
        &man.join("sentryctl.1"),
        ctl.clone(),
        "1",
        &[
            ("FILES", FILES),
            ("EXIT STATUS", EXIT_STATUS),
            ("JSON OUTPUT", JSON_OUTPUT),
            ("EXAMPLES", SENTRYCTL_EXAMPLES),
            ("SEE ALSO", SENTRYCTL_SEE_ALSO),
        ],
    )?;
    let mut built = ctl.clone();
    built.build();
    write_subcommand_pages(&man, &built, "sentryctl")?;
    let pages = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for page in ["scansentry.toml.5", "scansentry.7"] {
        std::fs::copy(pages.join(page), man.join(page))?;
    }

    for (mut cmd, name) in [(daemon, "sentryd"), (ctl, "sentryctl")] {
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut f = std::fs::File::create(completions.join(file))?;
            clap_complete::generate(shell, &mut cmd, name, &mut f);
            if name == "sentryctl" {
                f.write_all(blocked_addresses(shell).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// One page per subcommand of `parent` (whose command line is `line`), and of theirs in turn:
/// `sentryctl-fleet.1`, then `sentryctl-fleet-init.1` (a page names its subcommands' pages).
fn write_subcommand_pages(man: &Path, parent: &clap::Command, line: &str) -> std::io::Result<()> {
    for sub in parent.get_subcommands() {
        let line = format!("{line} {}", sub.get_name());
        let name = line.replace(' ', "-");
        let cmd = sub
            .clone()
            .name(&name)
            .bin_name(&line)
            .version(env!("CARGO_PKG_VERSION"));
        write_page(
            &man.join(format!("{name}.1")),
            cmd,
            "1",
            &[(
                "SEE ALSO",
                &format!(".BR sentryctl (1),\n{SENTRYCTL_SEE_ALSO}"),
            )],
        )?;
        write_subcommand_pages(man, sub, &line)?;
    }
    Ok(())
}

/// A clap-made page with `extra` sections (roff) before VERSION. The SUBCOMMANDS heading only
/// on a page whose command has subcommands to list (clap_mangen writes it, empty, on any).
fn write_page(
    path: &Path,
    cmd: clap::Command,
    section_no: &str,
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let has_subcommands = cmd.get_subcommands().any(|sub| !sub.is_hide_set());
    let page = clap_mangen::Man::new(cmd).section(section_no);
    let mut buf = Vec::new();
    page.render_title(&mut buf)?;
    page.render_name_section(&mut buf)?;
    page.render_synopsis_section(&mut buf)?;
    page.render_description_section(&mut buf)?;
    page.render_options_section(&mut buf)?;
    if has_subcommands {
        page.render_subcommands_section(&mut buf)?;
    }
    for (title, body) in extra {
        writeln!(buf, ".SH \"{title}\"")?;
        buf.extend_from_slice(body.as_bytes());
    }
    page.render_version_section(&mut buf)?;
    std::fs::write(path, buf)
}

const SIGNALS: &str = r#".TP
.B SIGHUP
Reload the configuration (as \fBsentryctl reload\fR does). It is checked completely first; a
bad one is refused with the reason, and the daemon goes on with the old one.
.TP
.BR SIGTERM ", " SIGINT
Stop. The state is saved; the blocks stay in the kernel until they expire
(\fBsentryd \-\-remove\-blocks\fR, run once the daemon has stopped, lifts them).
"#;

const FILES: &str = r#".TP
.I /etc/scansentry/scansentry.toml
The configuration; see \fBscansentry.toml\fR(5). Without it, the built-in default is used.
.TP
.I /etc/scansentry/ignore
The never-block file: addresses and networks never blocked, one per line.
.TP
.I /var/lib/scansentry/state.json
The blocks and the offence history, kept across restarts.
.TP
.I /run/scansentry/control.sock
The control socket, for root and the members of group \fBscansentry\fR, but never sentryd's
own user (unless it is root) nor a process sentryd started, such as its \fBon\-block\fR program.
.TP
.I /usr/share/scansentry/
The own-mode table and the attach-mode sets (\fInft/\fR), \fIon-block\fR examples and the unit
drop-ins they need (\fIon-block/\fR, \fIsystemd/\fR), a Grafana dashboard (\fIgrafana/\fR).
"#;

/// sentryctl(1)'s JSON OUTPUT: schema 1, as `packaging/schema/scansentry.schema.json` says
/// it (the tests check every output against that file).
const JSON_OUTPUT: &str = r#"With \fB\-\-json\fR, each command prints one JSON object (\fBlist\fR: an array of
block objects; \fBtop\fR without \fB\-\-once\fR: one object a line), also for an error:
\fB{"schema":1,"result":"error","message":...}\fR.
Its keys are described by the JSON Schema \fI/usr/share/scansentry/scansentry.schema.json\fR,
which also describes the daemon's JSON log lines (\fB[log] format = "json"\fR) and
\fBsentryd \-\-replay \-\-json\fR.
.PP
Every object printed (each block of \fBlist\fR) has \fBschema\fR, the version of this
format, now \fB1\fR: it changes when a key is removed or changes meaning; keys may be added
within a version, so a reader should ignore keys it does not know.
The schema file of a release lists every key of that release and refuses any other (so the
tests, which check each output against it, catch a key it lacks).
Every answer but \fBlist\fR has \fBresult\fR: \fBstatus\fR, \fBwhy\fR, \fBblocked\fR, \fBunblocked\fR,
\fBunblocked\-all\fR, \fBnot\-blocked\fR, \fBnever\-block\fR, \fBtop\fR, \fBreloaded\fR,
\fBvalidate\fR, \fBaudit\fR, \fBaudit\-changes\fR or \fBerror\fR.
.PP
One way for each kind of value:
.TP
.B address
An address or network: a bare address for a single host (\fB203.0.113.7\fR), CIDR otherwise
(\fB2001:db8::/64\fR). No other key names an address (\fBnetwork\fR in a log line is what
a decision blocks; \fBprefix\fR in a replay, the source as counted).
.TP
.BR *_at ", " timestamp
A time: RFC 3339, UTC (\fB2026\-11\-21T23:51:47.731914Z\fR).
.TP
.BR *_s ", " *_ms ", " *_us
A duration in whole seconds, milliseconds, microseconds (\fBremaining_s\fR, \fBduration_s\fR,
\fBuptime_s\fR, \fBidle_s\fR, \fBwindow_ms\fR, \fBround_trip_us\fR).
.TP
.B ports
An array of \fB{"port":22,"proto":"tcp"}\fR.
.TP
.BR kinds ", " cause ", " held ", " decision ", " actor
Words from a closed list: \fBkinds\fR of \fBsyn\fR, \fBfin\fR, \fBnull\fR, \fBxmas\fR,
\fBmaimon\fR, \fBodd\-flags\fR, \fBack\fR, \fBudp\fR; a block's \fBcause\fR \fBscan\fR,
\fBmanual\fR, \fBsweep\fR, \fBkernel\fR (added outside sentryd) or \fBunknown\fR; \fBheld\fR
\fBboth\fR, \fBkernel\-only\fR, \fBdaemon\-only\fR or \fBdry\-run\fR.
.TP
.B null
A value that is absent (a block with no timeout has \fB"remaining_s":null\fR); never \fB"\-"\fR.
.PP
A block (\fBlist\fR, \fBwhy\fR): \fBaddress\fR, \fBcause\fR, \fBkinds\fR, \fBports\fR,
\fBorigin\fR (the fleet host that made it, or null), \fBblocked_at\fR, \fBremaining_s\fR,
\fBoffence\fR, \fBheld\fR.
\fBstatus\fR: \fBmode\fR (\fBenforcing\fR or \fBdry\-run\fR), \fBfirewall\fR, \fBuptime_s\fR,
\fBpackets\fR, \fBprobes\fR, \fBdetections\fR, \fBblocks_active\fR, \fBwould_block\fR,
\fBmax_blocks\fR, \fBrefused\fR, \fBwaiting\fR, \fBcapture_drops\fR,
\fBblock_latency_p50_us\fR, \fBblock_latency_p99_us\fR, \fBblock_latency_samples\fR,
\fBconfig\fR, \fBnot_blocked\fR (counts by rule), \fBprotected_peers\fR, \fBfleet\fR (null
when fleet mode is off).
A log line: \fBtimestamp\fR, \fBschema\fR, \fBlevel\fR, \fBmessage\fR, and as the event has
them \fBdecision\fR, \fBactor\fR (\fBdaemon\fR, \fBsentryctl\fR, \fBsignal\fR, \fBfleet\fR,
\fBkernel\fR), \fBaddress\fR, \fBnetwork\fR, \fBkinds\fR, \fBports\fR, \fBprobes\fR,
\fBwindow_ms\fR, \fBduration_s\fR, \fBoffence\fR, \fBreason\fR, \fBcount\fR, \fBfinding\fR,
\fBuid\fR (of the \fBsentryctl\fR user who asked);
the journal has the same fields as \fBSCANSENTRY_\fR\fIKEY\fR (\fBports\fR and \fBkinds\fR
as text there: \fB22/tcp,53/udp\fR, \fBsyn+udp\fR).
"#;

const EXIT_STATUS: &str = r#".TP
.B 0
Success.
.TP
.B 1
The operation failed (the daemon refused it, a capture or kernel error).
.TP
.B 2
Bad command-line arguments.
.TP
.B 69
The daemon is not running, or cannot be reached.
.TP
.B 77
Not permitted (\fBsentryd\fR needs root, or CAP_NET_RAW and CAP_NET_ADMIN).
.TP
.B 78
A bad configuration, or an attach-mode ruleset that lacks what it needs.
"#;

const SENTRYD_EXAMPLES: &str = r#"Check a configuration before reloading it:
.PP
.RS 4
.B sentryd \-\-check\-config /etc/scansentry/scansentry.toml
.RE
.PP
See what a capture would have made the daemon block, without blocking anything:
.PP
.RS 4
.B sentryd \-\-replay scan.pcap
.RE
.PP
Without systemd: detach once the daemon is up, with a pid file:
.PP
.RS 4
.B sentryd \-D \-\-pidfile /run/sentryd.pid
.RE
.PP
Lift every block, remove the table and make the state file forget its blocks, as removing
the package does (with the daemon stopped: beside a running one it refuses and exits 1):
.PP
.RS 4
.B sentryd \-\-remove\-blocks
.RE
"#;

const SENTRYD_SEE_ALSO: &str = r#".BR sentryctl (1),
.BR scansentry.toml (5),
.BR scansentry (7),
.BR nft (8),
.BR systemd.exec (5)
"#;

const SENTRYCTL_EXAMPLES: &str = r#"What is blocked, and why one address is:
.PP
.RS 4
.nf
.B sentryctl list
.B sentryctl why 198.51.100.2
.fi
.RE
.PP
Let an address back in, and forgive its next stray packets for ten minutes:
.PP
.RS 4
.B sentryctl unblock 198.51.100.2 \-\-grace 10m
.RE
.PP
Block a network by hand for a day:
.PP
.RS 4
.B sentryctl block 203.0.113.0/24 \-\-for 1d
.RE
.PP
Watch the sources being counted, live:
.PP
.RS 4
.B sentryctl top
.RE
"#;

/// sentryctl(1)'s SEE ALSO; each subcommand's page names sentryctl(1) before these.
const SENTRYCTL_SEE_ALSO: &str = r#".BR sentryd (8),
.BR scansentry.toml (5),
.BR scansentry (7)
"#;

/// What bash and fish add to clap's completions: the addresses blocked now, for `unblock` and
/// `why`, from `sentryctl list --json` (nothing when the daemon cannot be asked). zsh gets
/// clap's completions alone: its generated function cannot be wrapped the same way.
fn blocked_addresses(shell: Shell) -> String {
    match shell {
        Shell::Bash => r#"
# scansentry: `sentryctl unblock` and `why` complete the addresses blocked now.
_sentryctl_blocked() {
    sentryctl list --json 2>/dev/null | sed -n 's/^ *"address": "\([^"]*\)",*$/\1/p'
}
_sentryctl_with_blocked() {
    local cur=${COMP_WORDS[COMP_CWORD]} i sub=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) sub=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ ( $sub == unblock || $sub == why ) && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$(_sentryctl_blocked)" -- "$cur"))
        return 0
    fi
    _sentryctl "$@"
}
complete -F _sentryctl_with_blocked -o nosort -o bashdefault -o default sentryctl
"#
        .into(),
        Shell::Fish => r#"
# scansentry: `sentryctl unblock` and `why` complete the addresses blocked now.
function __sentryctl_blocked
    sentryctl list --json 2>/dev/null | string match -r -g '"address": "([^"]*)"'
end
complete -c sentryctl -n "__fish_seen_subcommand_from unblock why" -f -a "(__sentryctl_blocked)"
"#
        .into(),
        _ => String::new(),
    }
}
