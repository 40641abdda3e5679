//! The reference against the code and the committed texts. The keys the file accepts are found by
//! walking the serde raw types with a deserializer that answers every question with a placeholder
//! and notes each field's path and what it asked for, so no second key list is written here.
//!
//! `UPDATE_REFERENCE=1 cargo test --lib config::reference` rewrites docs/configuration.md's tables,
//! man/scansentry.toml.5's SECTIONS AND KEYS and packaging/scansentry.toml from the table.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::render::{RenderError, docs_page, man_page, shipped_file};
use super::{SECTIONS, Ty};
use crate::config::raw::RawConfig;
use crate::config::{Config, from_toml};

/// What the deserializer was asked for at one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Str,
    Seq,
    /// Anything (an untagged enum: `RawPort`, `RawAcceptWide`).
    Any,
    Struct,
    Map,
}

/// Every path the walk reached, with what was asked there. A list's element is at `path[]`, a
/// map's value at `path.*`.
#[derive(Default)]
struct Walk(RefCell<BTreeMap<String, Kind>>);

impl Walk {
    /// Every path of `T`, lists' elements and tables included.
    fn all<'de, T: Deserialize<'de>>() -> BTreeMap<String, Kind> {
        let walk = Walk::default();
        T::deserialize(Tracer {
            walk: &walk,
            path: String::new(),
        })
        .unwrap_or_else(|e| panic!("the walk of the raw types: {e}"));
        walk.0.into_inner()
    }

    /// The paths of `T`'s keys: every field that is not a table, `section.key`.
    fn keys<'de, T: Deserialize<'de>>() -> BTreeMap<String, Kind> {
        Walk::all::<T>()
            .into_iter()
            .filter(|(path, kind)| {
                !path.is_empty()
                    && !path.contains("[]")
                    && !matches!(kind, Kind::Struct | Kind::Map)
            })
            .collect()
    }
}

#[derive(Debug)]
struct WalkError(String);

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WalkError {}
impl de::Error for WalkError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WalkError(msg.to_string())
    }
}

struct Tracer<'w> {
    walk: &'w Walk,
    path: String,
}

impl<'w> Tracer<'w> {
    fn note(&self, kind: Kind) {
        self.walk.0.borrow_mut().insert(self.path.clone(), kind);
    }

    fn child(&self, name: &str) -> Tracer<'w> {
        let path = match self.path.as_str() {
            "" => name.to_string(),
            p if name == "[]" => format!("{p}[]"),
            p => format!("{p}.{name}"),
        };
        Tracer {
            walk: self.walk,
            path,
        }
    }
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = WalkError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.note(Kind::Any);
        v.visit_str("")
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.note(Kind::Bool);
        v.visit_bool(false)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.note(Kind::Int);
        v.visit_i64(0)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.note(Kind::Str);
        v.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.deserialize_str(v)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_some(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.note(Kind::Seq);
        v.visit_seq(One(Some(self.child("[]"))))
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.note(Kind::Map);
        v.visit_map(Fields {
            names: &["*"],
            next: 0,
            parent: self.walk,
            path: self.path,
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, WalkError> {
        self.note(Kind::Struct);
        v.visit_map(Fields {
            names: fields,
            next: 0,
            parent: self.walk,
            path: self.path,
        })
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// A list of one element.
struct One<'w>(Option<Tracer<'w>>);

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = WalkError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, WalkError> {
        self.0.take().map(|t| seed.deserialize(t)).transpose()
    }
}

/// A table with each of `names` once (a map: the one key `*`).
struct Fields<'w> {
    names: &'static [&'static str],
    next: usize,
    parent: &'w Walk,
    path: String,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = WalkError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, WalkError> {
        let Some(name) = self.names.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(StrDeserializer::new(name)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, WalkError> {
        let name = self.names[self.next];
        self.next += 1;
        let parent = Tracer {
            walk: self.parent,
            path: self.path.clone(),
        };
        seed.deserialize(parent.child(name))
    }
}

/// The reference's keys as paths (`audit.address.*.required`), with their types.
fn reference_keys() -> BTreeMap<String, Ty> {
    let mut keys = BTreeMap::new();
    for section in SECTIONS {
        let section_path = section.name.replace("\"ADDR\"", "*");
        for key in section.keys {
            for name in key.names {
                let previous = keys.insert(format!("{section_path}.{name}"), key.ty);
                assert!(previous.is_none(), "[{}] {name} twice", section.name);
            }
        }
    }
    keys
}

/// The keys the walk found that the reference lacks, and those the reference has that the walk
/// did not find.
fn missing_and_extra(
    walked: &BTreeMap<String, Kind>,
    reference: &BTreeMap<String, Ty>,
) -> (Vec<String>, Vec<String>) {
    let missing = walked
        .keys()
        .filter(|k| !reference.contains_key(*k))
        .cloned()
        .collect();
    let extra = reference
        .keys()
        .filter(|k| !walked.contains_key(*k))
        .cloned()
        .collect();
    (missing, extra)
}

#[test]
fn every_key_the_file_accepts_is_in_the_reference_and_no_other() {
    let walked = Walk::keys::<RawConfig>();
    assert!(walked.len() > 80, "{walked:?}");
    let (missing, extra) = missing_and_extra(&walked, &reference_keys());
    assert!(
        missing.is_empty(),
        "keys missing from the reference: {missing:?}"
    );
    assert!(extra.is_empty(), "keys the file does not accept: {extra:?}");
}

/// The guard itself, shown failing: a key added to a raw type and not to the table is reported.
#[test]
fn a_key_added_to_the_raw_types_but_not_the_reference_is_reported() {
    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    #[expect(dead_code, reason = "only walked")]
    struct Inner {
        some_key: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    #[expect(dead_code, reason = "only walked")]
    struct Nested {
        detect: Inner,
    }
    let (missing, extra) = missing_and_extra(&Walk::keys::<Nested>(), &reference_keys());
    assert_eq!(missing, ["detect.some-key"]);
    assert!(extra.len() > 80, "{extra:?}");
}

#[test]
fn each_key_has_the_type_the_file_accepts() {
    let walked = Walk::all::<RawConfig>();
    let mut checked = 0;
    for (key, ty) in reference_keys() {
        let Some(&kind) = walked.get(&key) else {
            continue;
        };
        let (expected, element) = match ty {
            Ty::Bool => (Kind::Bool, None),
            Ty::Integer => (Kind::Int, None),
            Ty::Str | Ty::Duration | Ty::Path => (Kind::Str, None),
            Ty::Strings => (Kind::Seq, Some(Kind::Str)),
            // A port is a number or a "lo-hi" string: an untagged enum.
            Ty::Ports => (Kind::Seq, Some(Kind::Any)),
            Ty::PortRange | Ty::HostNames => (Kind::Any, None),
        };
        assert_eq!(kind, expected, "{key}: {}", ty.name());
        assert_eq!(
            walked.get(&format!("{key}[]")).copied(),
            element,
            "{key}: {}",
            ty.name()
        );
        checked += 1;
    }
    assert!(checked > 80, "{checked}");
}

#[test]
fn the_shipped_file_made_from_the_reference_is_the_built_in_default() {
    let text = shipped_file();
    let config = from_toml(&text, Path::new("packaging/scansentry.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config, Config::default());
}

#[test]
fn the_shipped_file_shows_every_key_with_its_value_or_an_example() {
    let text = shipped_file();
    for section in SECTIONS {
        for key in section.keys {
            for name in key.names {
                let written = text.lines().any(|l| {
                    l.trim_start_matches("# ")
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(" = "))
                });
                assert!(written, "[{}] {name}", section.name);
            }
            for example in key.examples {
                let name = example.split(" = ").next().unwrap_or_default();
                assert!(key.names.contains(&name), "{example}");
            }
        }
    }
    assert!(text.lines().all(|l| l.chars().count() <= 96), "{text}");
}

#[test]
fn the_markup_keeps_to_what_the_three_texts_can_show() {
    for section in SECTIONS {
        let texts = section
            .keys
            .iter()
            .flat_map(|k| [k.doc, k.shown.unwrap_or("")]);
        for text in std::iter::once(section.intro).chain(texts) {
            assert!(
                !text.contains('|'),
                "a | breaks the configuration page's table: {text}"
            );
            assert!(
                text.chars().all(|c| c.is_ascii() || "–—×µ".contains(c)),
                "{text}"
            );
            assert_eq!(text.matches('`').count() % 2, 0, "unpaired `: {text}");
        }
    }
}

#[test]
fn roff_is_escaped_and_code_is_bold() {
    assert_eq!(
        super::render::roff(r"`tcp-ports` a\b ports 0–1023, ×"),
        r"\fBtcp\-ports\fR a\eb ports 0\(en1023, \(mu"
    );
    assert_eq!(super::render::roff(".x"), r"\&.x");
}

#[test]
fn a_page_without_a_section_s_markers_is_refused_by_name() {
    let err = docs_page("# Configuration\n").unwrap_err();
    assert!(
        matches!(
            err,
            RenderError::NoDocsMarker {
                section: "detect",
                ..
            }
        ),
        "{err}"
    );
    let err = man_page(".SH NAME\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "man/scansentry.toml.5 has no `.SH SECTIONS AND KEYS\n` line"
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `file` as made from the reference: equal to what is committed, or, with `UPDATE_REFERENCE`
/// set, written.
fn check(file: &str, make: impl Fn(&str) -> Result<String, RenderError>) {
    let path = root().join(file);
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let made = make(&committed).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        if made != committed {
            std::fs::write(&path, &made).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        return;
    }
    if let Some((n, (old, new))) = committed
        .lines()
        .zip(made.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "{file} is out of date at line {}: run UPDATE_REFERENCE=1 cargo test --lib \
             config::reference\n  committed: {old}\n  made:      {new}",
            n + 1
        );
    }
    assert_eq!(
        committed.lines().count(),
        made.lines().count(),
        "{file} is out of date (its length): run UPDATE_REFERENCE=1 cargo test --lib \
         config::reference"
    );
}

#[test]
fn the_configuration_page_s_tables_are_made_from_the_reference() {
    check("docs/configuration.md", docs_page);
}

#[test]
fn the_man_page_s_keys_are_made_from_the_reference() {
    check("man/scansentry.toml.5", man_page);
}

#[test]
fn the_shipped_file_is_made_from_the_reference() {
    check("packaging/scansentry.toml", |_| Ok(shipped_file()));
}

/// The freshness checks can fail: a default edited by hand in a committed text is made again
/// from the table, so the text no longer equals what is made.
#[test]
fn a_default_edited_by_hand_is_made_again_from_the_table() {
    let read = |file: &str| std::fs::read_to_string(root().join(file)).unwrap();
    let committed = read("docs/configuration.md");
    let edited = committed.replacen(
        "| `window` | duration | `\"60s\"` |",
        "| `window` | duration | `\"90s\"` |",
        1,
    );
    assert_ne!(
        edited, committed,
        "docs/configuration.md has no [detect] window row"
    );
    assert_eq!(docs_page(&edited).unwrap(), docs_page(&committed).unwrap());
    let committed = read("man/scansentry.toml.5");
    let edited = committed.replacen(
        "(duration, default \\fB\"60s\"\\fR)",
        "(duration, default \\fB\"90s\"\\fR)",
        1,
    );
    assert_ne!(edited, committed, "the page has no window entry");
    assert_eq!(man_page(&edited).unwrap(), man_page(&committed).unwrap());
}
