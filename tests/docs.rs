//! The docs against what they describe, so that they cannot drift unseen (issue 26): the README
//! stays short, every relative link of the README and `docs/` resolves (its anchor too), every
//! test file is named in `docs/testing.md`, the files with `unsafe` code are exactly those
//! `docs/architecture.md` names, and what is built and what is not is said in one place, the
//! README's status. No root. Each check is a function of text, and is shown failing on a bad
//! input beside the test that runs it on the real files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// The most lines the README may have: what it is, install, the first start, the eight
/// operating steps, from source, where the rest is.
const README_LINES: usize = 250;

/// Phrases that say a part is still being built. They belong in the README's status alone,
/// which the issues keep true; anywhere else they go stale (fleet mode was "under way" in the
/// README and "not built yet" in the shipped configuration long after it was built).
const STATUS_PHRASES: [&str; 4] = ["under way", "not built yet", "not yet built", "in progress"];

/// The README's status region.
const STATUS_START: &str = "<!-- status:";
const STATUS_END: &str = "<!-- end of status -->";

/// `docs/architecture.md`'s list of the files with `unsafe` code.
const UNSAFE_START: &str = "<!-- unsafe files:";
const UNSAFE_END: &str = "<!-- end of unsafe files -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README and every page of `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Why a README is too long, if it is.
fn readme_too_long(text: &str) -> Option<String> {
    let n = text.lines().count();
    (n > README_LINES).then(|| format!("README.md has {n} lines, more than {README_LINES}"))
}

/// `text` without fenced code blocks and inline code spans, where `[a](b)` is no link.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop `code` spans: every other piece between backticks.
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(piece);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of the Markdown links `[text](target)` in `text`'s prose.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut found = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                found.push(after[..end].to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation but `-` and `_`
/// left out.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown page's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// The relative links of `text` (a page at `page`) that lead nowhere: a missing file, or an
/// anchor no heading of the Markdown page it names has.
fn broken_links(page: &Path, text: &str) -> Vec<String> {
    let dir = page.parent().unwrap();
    let mut broken = Vec::new();
    for target in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
        let file = if path.is_empty() {
            page.to_path_buf()
        } else {
            dir.join(path)
        };
        if !file.exists() {
            broken.push(format!("{target}: no file {}", file.display()));
        } else if !anchor.is_empty()
            && file.extension().is_some_and(|x| x == "md")
            && !anchors(&read(&file)).contains(anchor)
        {
            broken.push(format!(
                "{target}: no heading #{anchor} in {}",
                file.display()
            ));
        }
    }
    broken
}

/// The test files (`NAME.rs` under `tests/`) that `testing` does not name as `tests/NAME.rs`.
fn unnamed_tests<'a>(files: &'a [String], testing: &str) -> Vec<&'a str> {
    files
        .iter()
        .filter(|f| !testing.contains(&format!("`tests/{f}`")))
        .map(String::as_str)
        .collect()
}

/// Lines outside the README's status region that say a part is still being built.
fn status_outside_its_place(name: &str, text: &str) -> Vec<String> {
    let mut outside = text.to_string();
    if let (Some(from), Some(to)) = (text.find(STATUS_START), text.find(STATUS_END)) {
        outside.replace_range(from..to, "");
    }
    let mut found = Vec::new();
    for line in outside.lines() {
        let lower = line.to_lowercase();
        for phrase in STATUS_PHRASES {
            if lower.contains(phrase) {
                found.push(format!("{name}: \"{phrase}\" in: {}", line.trim()));
            }
        }
    }
    found
}

/// Finds `unsafe` in code (blocks, functions, impls, traits, extern blocks), never in a
/// comment or a string.
#[derive(Default)]
struct Unsafe {
    found: bool,
}

impl<'ast> Visit<'ast> for Unsafe {
    fn visit_expr_unsafe(&mut self, _: &'ast syn::ExprUnsafe) {
        self.found = true;
    }
    fn visit_signature(&mut self, sig: &'ast syn::Signature) {
        self.found |= sig.unsafety.is_some();
        visit::visit_signature(self, sig);
    }
    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        self.found |= item.unsafety.is_some();
        visit::visit_item_impl(self, item);
    }
    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        self.found |= item.unsafety.is_some();
        visit::visit_item_trait(self, item);
    }
    fn visit_item_foreign_mod(&mut self, _: &'ast syn::ItemForeignMod) {
        self.found = true;
    }
}

fn has_unsafe(source: &str) -> bool {
    let file = syn::parse_file(source).expect("a Rust file");
    let mut v = Unsafe::default();
    v.visit_file(&file);
    v.found
}

/// Every `.rs` file under `dir`, as paths relative to the repository root.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The files a list region of `text` names, as the `` `path` `` each of its `- ` items begins with.
fn listed_files(text: &str, start: &str, end: &str) -> Option<BTreeSet<String>> {
    let from = text.find(start)?;
    let to = from + text[from..].find(end)?;
    Some(
        text[from..to]
            .lines()
            .filter_map(|l| l.strip_prefix("- `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn the_readme_is_at_most_250_lines() {
    let readme = read(&root().join("README.md"));
    assert_eq!(readme_too_long(&readme), None);
    assert!(readme_too_long(&"line\n".repeat(README_LINES + 1)).is_some());
}

#[test]
fn every_relative_link_of_the_readme_and_docs_resolves() {
    let mut broken = Vec::new();
    let mut seen = 0;
    for page in pages() {
        let text = read(&page);
        seen += links(&text).len();
        broken.extend(
            broken_links(&page, &text)
                .into_iter()
                .map(|b| format!("{}: {b}", page.display())),
        );
    }
    assert!(
        seen > 50,
        "only {seen} links found: the link reader is broken"
    );
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n{}",
        broken.join("\n")
    );
}

#[test]
fn a_broken_link_or_anchor_is_found_and_code_is_no_link() {
    let page = root().join("docs/testing.md");
    let text = "See [the guide](admin-guide.md#running-the-daemon), [gone](nowhere.md), \
                [bad anchor](admin-guide.md#no-such-heading), `[code](not-a-link.md)`.\n\
                ```\n[fenced](also-not.md)\n```\n";
    let broken = broken_links(&page, text);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].starts_with("nowhere.md"));
    assert!(broken[1].starts_with("admin-guide.md#no-such-heading"));
    assert_eq!(
        slug(" `[fleet]` and `[fleet.sweep]`"),
        "fleet-and-fleetsweep"
    );
    assert_eq!(
        slug("Events as data: JSON lines and journal fields"),
        "events-as-data-json-lines-and-journal-fields"
    );
}

#[test]
fn every_test_file_is_named_in_the_tests_doc() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("tests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rs"))
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f == "docs.rs"));
    let testing = read(&root().join("docs/testing.md"));
    assert_eq!(unnamed_tests(&files, &testing), Vec::<&str>::new());
    // It can fail: a doc without the fleet's test names it.
    let without = testing.replace("`tests/fleet.rs`", "the fleet tests");
    assert_eq!(unnamed_tests(&files, &without), vec!["fleet.rs"]);
}

#[test]
fn the_files_with_unsafe_code_are_those_the_architecture_doc_names() {
    let mut sources = Vec::new();
    rust_files(&root().join("src"), &mut sources);
    let with_unsafe: BTreeSet<String> = sources
        .iter()
        .filter(|p| has_unsafe(&read(p)))
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let doc = read(&root().join("docs/architecture.md"));
    let named = listed_files(&doc, UNSAFE_START, UNSAFE_END)
        .expect("docs/architecture.md has its list of the files with unsafe code");
    assert_eq!(
        with_unsafe, named,
        "the files with unsafe code (left) are not those docs/architecture.md names (right)"
    );
    // The finder can fail, and is not fooled by a comment or a string.
    assert!(has_unsafe("fn f() { unsafe { g() } }"));
    assert!(has_unsafe("unsafe fn f() {}"));
    assert!(has_unsafe("struct S; unsafe impl Send for S {}"));
    assert!(!has_unsafe(
        "// unsafe { g() }\nfn f() { let _ = \"unsafe { }\"; }"
    ));
}

#[test]
fn what_is_still_being_built_is_said_only_in_the_readme_status() {
    let readme = read(&root().join("README.md"));
    assert!(
        readme.contains(STATUS_START) && readme.contains(STATUS_END),
        "the README has its status region"
    );
    let status = &readme[readme.find(STATUS_START).unwrap()..readme.find(STATUS_END).unwrap()];
    assert!(
        status.contains("fleet mode over NATS"),
        "fleet mode is built"
    );
    let mut files: Vec<PathBuf> = pages();
    for more in [
        "BENCHMARKS.md",
        "RELIABILITY.md",
        "packaging/scansentry.toml",
        "man/scansentry.7",
        "man/scansentry.toml.5",
        "src/config/reference/table.rs",
    ] {
        files.push(root().join(more));
    }
    let mut found = Vec::new();
    for file in &files {
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        found.extend(status_outside_its_place(&name, &read(file)));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    // It can fail: the old README's sentence, outside the status.
    let stale = "Under way: fleet mode over NATS.\n";
    assert_eq!(status_outside_its_place("README.md", stale).len(), 1);
    let inside = format!("{STATUS_START} -->\nNot built yet: x.\n{STATUS_END}\n");
    assert!(status_outside_its_place("README.md", &inside).is_empty());
}
