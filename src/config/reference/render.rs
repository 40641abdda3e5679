//! The three texts made from the reference's table: docs/configuration.md's tables and scansentry.toml(5)'s
//! SECTIONS AND KEYS, each spliced into the hand-written text around them, and the shipped
//! commented file, made whole. Pure.

use std::fmt::Write as _;

use super::{Key, SECTIONS, Section};

/// Why a text could not be made: the hand-written part lacks the place for the reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// The configuration page has no generated region for a section.
    #[error("docs/configuration.md has no `{marker}` line for the [{section}] table")]
    NoDocsMarker {
        /// The section.
        section: &'static str,
        /// The line looked for.
        marker: String,
    },
    /// The man page lacks a heading the reference goes between.
    #[error("man/scansentry.toml.5 has no `{heading}` line")]
    NoManHeading {
        /// The heading looked for.
        heading: &'static str,
    },
}

/// The command that remakes the three texts, named in them.
const UPDATE: &str = "UPDATE_REFERENCE=1 cargo test --lib config::reference";

/// The shipped file's lines before the first section.
const FILE_HEADER: &str = "\
# /etc/scansentry/scansentry.toml — scansentry's configuration.
#
# Every key below is set to its built-in default, so this file behaves exactly like no file at
# all. Change what you need; unknown keys are refused. Check your edits before reloading:
#
#     sentryctl validate /etc/scansentry/scansentry.toml
#
# Durations are written like systemd's: \"90s\", \"15m\", \"1h\", \"7d\". Lines of the form
# \"# key = value\" are examples. scansentry.toml(5) says the same, with each key's type.
";

/// The shipped file's comments are wrapped to this width.
const WIDTH: usize = 96;

/// The configuration page's start line for a section's generated region.
fn docs_start(section: &str) -> String {
    format!("<!-- reference [{section}]: made by {UPDATE}; edit src/config/reference -->")
}

/// The configuration page's end line for a section's generated region.
fn docs_end(section: &str) -> String {
    format!("<!-- end of reference [{section}] -->")
}

/// `page` with each section's region (between its two marker lines) made from the table; the
/// prose around them is kept as it is.
///
/// # Errors
/// A section whose marker lines are missing.
pub fn docs_page(page: &str) -> Result<String, RenderError> {
    let mut out = page.to_string();
    for section in SECTIONS {
        let start = docs_start(section.name);
        let end = docs_end(section.name);
        let missing = |marker: &str| RenderError::NoDocsMarker {
            section: section.name,
            marker: marker.to_string(),
        };
        let from = out.find(&start).ok_or_else(|| missing(&start))? + start.len();
        let to = from + out[from..].find(&end).ok_or_else(|| missing(&end))?;
        out.replace_range(from..to, &docs_section(section));
    }
    Ok(out)
}

/// One section's region: its introduction, then its table.
fn docs_section(section: &Section) -> String {
    let mut out = String::from("\n\n");
    if !section.intro.is_empty() {
        let _ = write!(out, "{}\n\n", section.intro);
    }
    out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for key in section.keys {
        let names: Vec<String> = key.names.iter().map(|n| format!("`{n}`")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            names.join(", "),
            key.ty.name(),
            key.default_text(),
            key.doc
        );
    }
    out.push('\n');
    out
}

/// The man page's heading the reference starts under, and the one it ends before.
const MAN_FROM: &str = ".SH SECTIONS AND KEYS\n";
const MAN_TO: &str = ".SH EXAMPLES\n";

/// `page` (scansentry.toml(5)) with its SECTIONS AND KEYS made from the table; the rest of the
/// page is kept as it is.
///
/// # Errors
/// The page lacks the SECTIONS AND KEYS or the EXAMPLES heading.
pub fn man_page(page: &str) -> Result<String, RenderError> {
    let from = page
        .find(MAN_FROM)
        .ok_or(RenderError::NoManHeading { heading: MAN_FROM })?
        + MAN_FROM.len();
    let to = from
        + page[from..]
            .find(MAN_TO)
            .ok_or(RenderError::NoManHeading { heading: MAN_TO })?;
    let mut out = page.to_string();
    out.replace_range(from..to, &man_sections());
    Ok(out)
}

/// Every section in roff.
fn man_sections() -> String {
    let mut out = format!(".\\\" Made by {UPDATE}; edit src/config/reference.\n");
    for section in SECTIONS {
        let _ = writeln!(out, ".SS \"[{}]\"", section.name.replace('"', "\"\""));
        if !section.intro.is_empty() {
            let _ = writeln!(out, "{}", roff(section.intro));
        }
        for key in section.keys {
            let names: Vec<String> = key.names.iter().map(|n| roff(&format!("`{n}`"))).collect();
            let _ = write!(
                out,
                ".TP\n{} ({}, default {})\n{}\n",
                names.join(", "),
                key.ty.name(),
                roff(&key.default_text()),
                roff(key.doc)
            );
        }
    }
    out
}

/// The reference's markup in roff: `` `code` `` in bold (its hyphens as `\-`, to be copied as
/// written), backslashes escaped, the few characters beyond ASCII the table uses by their roff
/// names, and a leading `.` or `'` kept from being read as a request.
pub(super) fn roff(text: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for c in text.chars() {
        match c {
            '`' => {
                out.push_str(if code { "\\fR" } else { "\\fB" });
                code = !code;
            }
            '\\' => out.push_str("\\e"),
            '-' if code => out.push_str("\\-"),
            '–' => out.push_str("\\(en"),
            '—' => out.push_str("\\(em"),
            '×' => out.push_str("\\(mu"),
            'µ' => out.push_str("\\(mc"),
            c => out.push(c),
        }
    }
    if out.starts_with(['.', '\'']) {
        out.insert_str(0, "\\&");
    }
    out
}

/// The shipped commented file, `packaging/scansentry.toml`: every key at its default, each
/// after its description (a blank line between keys); keys and sections absent from the
/// default as commented examples.
pub fn shipped_file() -> String {
    let mut out = String::from(FILE_HEADER);
    for section in SECTIONS {
        match section.example_header {
            None => {
                let _ = write!(out, "\n[{}]\n", section.name);
            }
            Some(header) => {
                let _ = write!(out, "\n# [{header}]\n");
            }
        }
        let intro = (!section.intro.is_empty()).then(|| comment(section.intro));
        let blocks: Vec<String> = intro
            .into_iter()
            .chain(section.keys.iter().map(file_key))
            .collect();
        out.push_str(&blocks.join("\n"));
    }
    out
}

/// One key in the shipped file: its description, its lines, its examples.
fn file_key(key: &Key) -> String {
    let mut out = comment(key.doc);
    if let Some(value) = key.value {
        for name in key.names {
            let _ = writeln!(out, "{name} = {value}");
        }
    }
    for example in key.examples {
        let _ = writeln!(out, "# {example}");
    }
    out
}

/// `text` as `#` comment lines of at most [`WIDTH`] columns, without the markup.
fn comment(text: &str) -> String {
    let plain = text.replace('`', "");
    let mut out = String::new();
    let mut line = String::from("#");
    for word in plain.split_whitespace() {
        if line.len() > 1 && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}
