//! The configuration reference, written once: every section and key of `scansentry.toml`, with
//! its type, its default and what it does, as one table ([`SECTIONS`]), and the three texts made
//! from it: docs/configuration.md's tables ([`docs_page`]), the SECTIONS AND KEYS part of scansentry.toml(5)
//! ([`man_page`]) and the shipped commented file `packaging/scansentry.toml` ([`shipped_file`]).
//!
//! A table, not the raw types' doc comments: those are for the code's reader and are not there at
//! run time without a macro, while the reference needs markup, defaults as a user writes them,
//! keys that share one description (`tcp-ports`, `udp-ports`), section introductions and
//! examples. Its tests keep it honest: they walk the serde raw types ([`super::raw::RawConfig`])
//! and fail when a key the file accepts is missing here (or one here is not accepted, or its type
//! differs); the shipped file made from the defaults here must load to [`super::Config::default`];
//! and each of the three committed texts must equal what is made here. After a change here:
//!
//! ```text
//! UPDATE_REFERENCE=1 cargo test --lib config::reference
//! ```
//!
//! Descriptions use one markup: `` `code` `` (kept in Markdown, bold in roff, bare in comments).
//! **Pure**: strings in, strings out.

mod render;
mod table;
#[cfg(test)]
mod tests;

pub use render::{docs_page, man_page, shipped_file};
pub use table::SECTIONS;

/// What a key holds, as the reference names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// A string (often one of a few words, which the description lists).
    Str,
    /// A humantime duration: `"90s"`, `"1h"`, `"7d"`.
    Duration,
    /// An absolute path, or `""` for none.
    Path,
    /// A list of strings.
    Strings,
    /// A list of ports: numbers or `"lo-hi"` strings.
    Ports,
    /// One port range: `"lo-hi"` (or a number).
    PortRange,
    /// A list of host names.
    HostNames,
}

impl Ty {
    /// The type's name in the reference.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "boolean",
            Ty::Integer => "integer",
            Ty::Str => "string",
            Ty::Duration => "duration",
            Ty::Path => "path",
            Ty::Strings => "list of strings",
            Ty::Ports => "list of ports",
            Ty::PortRange => "port range",
            Ty::HostNames => "list of host names",
        }
    }
}

/// One row of the reference: one key, or several that share a type, a default and a
/// description.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The key names, as written in the file.
    pub names: &'static [&'static str],
    /// What the key holds.
    pub ty: Ty,
    /// The default as TOML, written in the shipped file; `None` when the key is absent from the
    /// built-in default (the shipped file then shows only its examples, commented out).
    pub value: Option<&'static str>,
    /// The default as the reference shows it, in its markup, when `value` alone does not say it.
    pub shown: Option<&'static str>,
    /// Lines the shipped file shows commented out after the key (`key = value`).
    pub examples: &'static [&'static str],
    /// What it does, in the reference's markup.
    pub doc: &'static str,
}

impl Key {
    /// A key set to `value` (TOML) by default.
    pub const fn new(
        names: &'static [&'static str],
        ty: Ty,
        value: &'static str,
        doc: &'static str,
    ) -> Key {
        Key {
            names,
            ty,
            value: Some(value),
            shown: None,
            examples: &[],
            doc,
        }
    }

    /// A key absent from the built-in default, shown as `shown` (e.g. `none`).
    pub const fn unset(
        names: &'static [&'static str],
        ty: Ty,
        shown: &'static str,
        doc: &'static str,
    ) -> Key {
        Key {
            names,
            ty,
            value: None,
            shown: Some(shown),
            examples: &[],
            doc,
        }
    }

    /// The default shown as `shown` rather than as its TOML.
    pub const fn shown(self, shown: &'static str) -> Key {
        Key {
            shown: Some(shown),
            ..self
        }
    }

    /// Example lines, shown commented out in the shipped file.
    pub const fn examples(self, examples: &'static [&'static str]) -> Key {
        Key { examples, ..self }
    }

    /// The default in the reference's markup.
    pub fn default_text(&self) -> String {
        match (self.shown, self.value) {
            (Some(shown), _) => shown.to_string(),
            (None, Some(value)) => format!("`{value}`"),
            (None, None) => "none".to_string(),
        }
    }
}

/// One section (`[detect]`), or one whose name the administrator chooses (`[audit.address."ADDR"]`).
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// The name between the brackets, as the reference shows it.
    pub name: &'static str,
    /// For a section absent from the built-in default: its header in the shipped file's
    /// commented-out example.
    pub example_header: Option<&'static str>,
    /// A paragraph before the keys, in the reference's markup (`""` for none).
    pub intro: &'static str,
    /// The keys.
    pub keys: &'static [Key],
}
