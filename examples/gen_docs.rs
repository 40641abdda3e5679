//! Writes the man pages and shell completions the packages install, from the CLI definitions
//! (and, for scansentry.toml(5), from the README's configuration reference, so that there is
//! one text to keep true):
//!
//! ```text
//! cargo run --example gen_docs -- OUT_DIR
//! ```
//!
//! OUT_DIR/man/{sentryd.8,sentryctl.8,sentryctl-*.8,scansentry.toml.5},
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

    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))?;
    let daemon = scansentry::daemon::Args::command();
    let ctl = scansentry::ctl::Args::command();

    write_page(
        &man.join("sentryd.8"),
        daemon.clone(),
        "8",
        &[
            ("SIGNALS", SIGNALS),
            ("FILES", FILES),
            ("EXIT STATUS", &section(&readme, "## Exit codes")),
            ("SEE ALSO", "sentryctl(8), scansentry.toml(5), nft(8)"),
        ],
    )?;
    write_page(
        &man.join("sentryctl.8"),
        ctl.clone(),
        "8",
        &[
            ("USE", &section(&readme, "## sentryctl")),
            ("FILES", FILES),
            ("EXIT STATUS", &section(&readme, "## Exit codes")),
            ("SEE ALSO", "sentryd(8), scansentry.toml(5)"),
        ],
    )?;
    // One page per subcommand, as the main page's SUBCOMMANDS list names them (`help` too,
    // which clap adds when the command is built).
    let mut built = ctl.clone();
    built.build();
    for sub in built.get_subcommands() {
        let name = format!("sentryctl-{}", sub.get_name());
        let cmd = sub
            .clone()
            .name(&name)
            .bin_name(format!("sentryctl {}", sub.get_name()));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).section("8").render(&mut buf)?;
        std::fs::write(man.join(format!("{name}.8")), buf)?;
    }
    std::fs::write(man.join("scansentry.toml.5"), config_page(&readme))?;

    for (mut cmd, name) in [(daemon, "sentryd"), (ctl, "sentryctl")] {
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut f = std::fs::File::create(completions.join(file))?;
            clap_complete::generate(shell, &mut cmd, name, &mut f);
        }
    }
    Ok(())
}

const SIGNALS: &str = "SIGHUP reloads the configuration; a bad one is refused with the reason \
and the daemon goes on with the old one. SIGTERM and SIGINT stop it; the blocks stay in the \
kernel until they expire.";

const FILES: &str = "/etc/scansentry/scansentry.toml (configuration), /etc/scansentry/ignore \
(never-block file), /var/lib/scansentry/state.json (blocks and offence history), \
/run/scansentry/control.sock (control socket, root and group scansentry), \
/usr/share/scansentry/nft/ (the nftables table and the attach-mode snippet).";

/// A clap-made page with extra sections before VERSION.
fn write_page(
    path: &Path,
    cmd: clap::Command,
    section_no: &str,
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd).section(section_no);
    let mut buf = Vec::new();
    page.render_title(&mut buf)?;
    page.render_name_section(&mut buf)?;
    page.render_synopsis_section(&mut buf)?;
    page.render_description_section(&mut buf)?;
    page.render_options_section(&mut buf)?;
    page.render_subcommands_section(&mut buf)?;
    for (title, body) in extra {
        writeln!(buf, ".SH \"{title}\"")?;
        buf.extend_from_slice(markdown_to_roff(body).as_bytes());
    }
    page.render_version_section(&mut buf)?;
    std::fs::write(path, buf)
}

/// The README text under `heading`, up to the next heading of the same level.
fn section(readme: &str, heading: &str) -> String {
    let level = heading.split(' ').next().unwrap_or("##");
    let mut lines = readme.lines().skip_while(|l| *l != heading).skip(1);
    let mut out = String::new();
    for line in lines.by_ref() {
        if line.starts_with(&format!("{level} ")) {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// scansentry.toml(5): the README's "Configuration" section.
fn config_page(readme: &str) -> String {
    let mut page = String::from(
        ".TH SCANSENTRY.TOML 5 \"\" \"scansentry\" \"File Formats\"\n\
         .SH NAME\nscansentry.toml \\- configuration of scansentry's daemon\n\
         .SH SYNOPSIS\n/etc/scansentry/scansentry.toml\n.SH DESCRIPTION\n",
    );
    page.push_str(&markdown_to_roff(&section(readme, "## Configuration")));
    page.push_str(".SH \"SEE ALSO\"\nsentryd(8), sentryctl(8)\n");
    page
}

/// The markdown this README uses, as roff: `###` headings, pipe tables (as tagged
/// paragraphs), fenced blocks, paragraphs; `code` in bold.
fn markdown_to_roff(md: &str) -> String {
    let mut out = String::new();
    let mut in_fence = false;
    let mut header_row = true;
    for line in md.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            out.push_str(if in_fence { ".PP\n.nf\n" } else { ".fi\n" });
            continue;
        }
        if in_fence {
            out.push_str(&escape(line));
            out.push('\n');
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            out.push_str(&format!(".SS \"{}\"\n", inline(h).replace('"', "")));
        } else if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                continue;
            }
            if header_row {
                header_row = false;
                continue;
            }
            out.push_str(".TP\n");
            out.push_str(&inline(cells[0]));
            if cells.len() > 2 {
                out.push_str(&format!(" (default: {})", inline(cells[1])));
            }
            out.push('\n');
            out.push_str(&inline(cells[cells.len() - 1]));
            out.push('\n');
        } else if line.trim().is_empty() {
            header_row = true;
            out.push_str(".PP\n");
        } else {
            header_row = true;
            out.push_str(&inline(line));
            out.push('\n');
        }
    }
    out
}

/// Backslashes and leading dots escaped, links as their text, `code` in bold.
fn inline(text: &str) -> String {
    let mut plain = String::new();
    let mut rest = escape(text);
    // [text](link) → text
    while let Some((open, mid, close)) = rest.find('[').and_then(|open| {
        let mid = open + rest[open..].find("](")?;
        let close = mid + rest[mid..].find(')')?;
        Some((open, mid, close))
    }) {
        plain.push_str(&rest[..open]);
        plain.push_str(&rest[open + 1..mid]);
        rest = rest[close + 1..].to_string();
    }
    plain.push_str(&rest);
    plain
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("\\fB{part}\\fR")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    let t = text.replace('\\', "\\e");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}
