//! The dependency direction of the crate: the pure core (decisions over plain data) names no
//! shell module and no system interface, so that it can be tested without root and driven by
//! the daemon and by `--replay` alike. docs/architecture.md draws the same picture.
//!
//! Every file of each pure module is parsed whole (`syn`); only items that are themselves
//! `#[cfg(test)]` (a `#[cfg(test)] mod tests;` and its file included) are test code and left out.
//! Every path the rest names — `use` trees with their groups, renames, globs, `self`, `super`,
//! `crate` and leading `::`, paths written inline in expressions, types, patterns and macro
//! calls (their arguments too), `extern crate` — is resolved against the file's module and
//! must lead into the pure core or to an item of [`ALLOWED`]; anything else fails, with its
//! file, line and path. A parser does not know a value's type, so the few std methods that
//! reach the file system or the clock whatever they are called on ([`SYSTEM_METHODS`]) are
//! refused by name. The guard's own tests feed it each way the rule has been broken.
//!
//! A second rule: no function in `src/` is longer than [`LONGEST`] lines, except the per-packet
//! path ([`HOT_PATH`]), where one straight function is the point.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// The pure core: modules of the crate (`a::b` for a submodule), with everything inside them.
const PURE: [&str; 16] = [
    "engine",
    // The fleet's messages, the receiver's gate, the sweep count; the NATS link is the shell's
    // (`daemon::fleet`).
    "fleet",
    "metrics",
    "audit::policy",
    "time",
    "wire",
    "detect",
    "pipeline",
    // The kernel's first line, modelled for replay.
    "first_line",
    "respond",
    "trust",
    "report",
    // How words are written: durations, error chains, one line.
    "text",
    "netlink",
    "never_block",
    "config",
];

/// What the pure core may name outside itself, item by item: (which pure module may, the
/// item, why). `*` is every pure module. An entry allows the item and what is inside it
/// (an enum's variants, a type's associated items); an entry that is a whole module says so
/// in its reason, and is one of std's or a crate's plain-data modules, never a system one.
#[rustfmt::skip]
const ALLOWED: &[(&str, &str, &str)] = &[
    // std: data, text, arithmetic and traits, no system interface.
    ("*", "std::collections", "module: containers"),
    ("*", "std::fmt", "module: formatting"),
    ("*", "std::error::Error", "the error trait"),
    ("*", "std::str", "module: string slices and parsing"),
    ("*", "std::ops", "module: operators and ranges"),
    ("*", "std::iter", "module: iterators"),
    ("*", "std::mem", "module: take, replace, size_of"),
    ("*", "std::hash", "module: hashing traits"),
    ("*", "std::sync::Arc", "shared ownership"),
    ("*", "std::io::Error", "an I/O error as a value (what a port or a file answered)"),
    ("*", "std::io::ErrorKind", "what an I/O error was, as a value"),
    ("*", "std::io::Result", "a port's answer, as a value"),
    ("*", "std::time::Duration", "a length of time: plain data"),
    ("*", "std::path::Path", "a file's name as data (configuration, state); no access"),
    ("*", "std::path::PathBuf", "a file's name as data (configuration, state); no access"),
    ("*", "std::net::IpAddr", "an address: plain data (no socket type)"),
    ("*", "std::net::Ipv4Addr", "an address: plain data"),
    ("*", "std::net::Ipv6Addr", "an address: plain data"),
    ("*", "std::net::SocketAddr", "an address and port: plain data"),
    // Plain-data crates: parsing, serialisation, error types, containers.
    ("*", "ipnet", "crate: networks as values"),
    ("*", "serde", "crate: (de)serialisation traits"),
    ("*", "serde_json", "crate: JSON text as values"),
    ("*", "thiserror", "crate: error enums"),
    ("*", "hashlink", "crate: the detector's ordered map"),
    ("*", "foldhash", "crate: its hasher"),
    ("*", "hashbrown", "crate: the detector's source tables (issue 29)"),
    ("*", "etherparse", "crate: zero-copy header slices"),
    ("*", "humantime", "crate: durations and dates as text"),
    ("*", "toml", "crate: the configuration's syntax"),
    // The clock, kept to `time` (clippy.toml refuses its reads anywhere else).
    ("time", "std::time::SystemTime", "SystemClock, the one reader of the wall clock"),
    ("time", "std::time::Instant", "SystemClock, the one reader of the monotonic clock"),
    ("time", "std::time::UNIX_EPOCH", "SystemClock's origin"),
    ("time", "std::sync::Mutex", "ManualClock, shared by a test and the engine"),
    ("report", "std::time::UNIX_EPOCH", "history_line: the epoch plus a timestamp, no clock read"),
    // A packet's details, read from its frame at most once, when first asked (issue 29).
    ("wire", "std::cell::OnceCell", "Lazy: a packet's other fields, read once"),
    ("wire", "std::cell::Cell", "Lazy: a packet's checksums' verdict, summed once"),
    // The shell's items the core is handed or answers with: ports and plain data.
    ("engine", "crate::firewall::Firewall", "the port the engine drives"),
    ("engine", "crate::firewall::FirewallError", "what the port answers"),
    ("engine", "crate::firewall::Action", "a change to the firewall: plain data"),
    ("engine", "crate::firewall::Blocked", "what the firewall holds: plain data"),
    ("engine", "crate::firewall::KernelHold", "a hold the kernel's first line reports: plain data"),
    ("engine", "crate::firewall::FirstLineFacts", "the facts the first line is given: plain data"),
    ("engine", "crate::firewall::FirstLineCounters", "the first line's counters: plain data"),
    ("engine", "crate::control::protocol::HoldInfo", "a hold of the first line in an answer"),
    ("engine", "crate::control::protocol::FirstLineInfo", "the first line in the status answer"),
    ("engine", "crate::firewall::DryRun", "the dry-run firewall, which the engine is to choose (issue 25)"),
    ("engine", "crate::state::State", "the state's format, which the shell writes"),
    ("engine", "crate::control::protocol::Request", "a control request: plain data"),
    ("engine", "crate::control::protocol::Response", "the engine's answer: plain data"),
    ("engine", "crate::control::protocol::StatusInfo", "the status answer: plain data"),
    ("engine", "crate::control::protocol::BlockInfo", "a block in an answer: plain data"),
    ("engine", "crate::control::protocol::FleetInfo", "the fleet in the status answer"),
    ("engine", "crate::control::protocol::Held", "a held block in an answer: plain data"),
    ("engine", "crate::control::protocol::NeverBlockInfo", "a never-block entry in an answer"),
    ("engine", "crate::control::protocol::RefusalInfo", "a refused probe in an answer"),
    ("engine", "crate::control::protocol::WatchedInfo", "a watched source in an answer"),
    ("engine", "crate::control::protocol::LIST_PAGE", "the protocol's page size"),
    ("engine", "crate::control::protocol::LIST_PORTS", "the protocol's ports per block"),
    ("engine", "crate::control::protocol::TOP_MAX", "the protocol's longest top list"),
    ("metrics", "crate::control::protocol::StatusInfo", "the status answer the exposition is made from"),
    ("metrics", "crate::control::protocol::FleetInfo", "the fleet line of the status answer"),
    ("metrics", "crate::control::protocol::FirstLineInfo", "the first line of the status answer"),
    ("metrics", "std::env::consts::ARCH", "the architecture of the build, a constant: build_info"),
    ("audit::policy", "crate::audit::Entry", "a listening socket as the audit records it"),
    ("audit::policy", "crate::audit::Snapshot", "the audit's listeners: plain data"),
    ("config::nft", "std::ffi::CString", "a set's name as libnftnl takes it: plain data"),
    ("first_line", "crate::firewall::FirstLineFacts", "what the kernel's first line is fed: plain data"),
    ("first_line", "crate::firewall::KernelHold", "what the kernel reports of a hold: plain data"),
];

/// Methods that reach the system whatever value they are called on (a parser does not know
/// a receiver's type, so a method call is judged by its name): the file system through a
/// `Path`, the clock through an `Instant` or a `SystemTime`. Refused in the pure core as
/// `x.exists()` and as `Path::exists(x)`, except where the second list says.
const SYSTEM_METHODS: [&str; 11] = [
    "exists",
    "try_exists",
    "is_file",
    "is_dir",
    "is_symlink",
    "metadata",
    "symlink_metadata",
    "read_dir",
    "read_link",
    "canonicalize",
    "elapsed",
];

/// Where a method of [`SYSTEM_METHODS`] is called on purpose: (module, method, why).
const SYSTEM_METHODS_ALLOWED: &[(&str, &str, &str)] =
    &[("time", "elapsed", "SystemClock reads the monotonic clock")];

/// The longest a function may be, in lines from `fn` to its closing brace.
const LONGEST: usize = 80;

/// Functions that are longer, each with why: the per-packet path, where one straight function
/// keeps the packet's way readable top to bottom and costs no call.
const HOT_PATH: &[(&str, &str)] = &[
    (
        "pipeline::Pipeline::candidate",
        "every captured frame: local? reply? never-block? trusted? in order, to the detector",
    ),
    (
        "detect::Detector::observe_marked",
        "every probe: the source's window, its ports and weights, the threshold",
    ),
];

/// One module's code: its path in the crate, the file it is in, its items without tests.
struct Module {
    path: Vec<String>,
    file: String,
    items: Vec<syn::Item>,
}

/// Whether `attrs` hold `#[cfg(test)]`.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
    })
}

/// An item's attributes.
fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item as I;
    match item {
        I::Const(i) => &i.attrs,
        I::Enum(i) => &i.attrs,
        I::ExternCrate(i) => &i.attrs,
        I::Fn(i) => &i.attrs,
        I::ForeignMod(i) => &i.attrs,
        I::Impl(i) => &i.attrs,
        I::Macro(i) => &i.attrs,
        I::Mod(i) => &i.attrs,
        I::Static(i) => &i.attrs,
        I::Struct(i) => &i.attrs,
        I::Trait(i) => &i.attrs,
        I::TraitAlias(i) => &i.attrs,
        I::Type(i) => &i.attrs,
        I::Union(i) => &i.attrs,
        I::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// Where a module's file is found: its text, and the name it is shown by.
type Load<'a> = &'a dyn Fn(&Path) -> Option<(String, String)>;

/// Parses `text` (the file `file`, module `path`) and adds it and its submodules to `out`,
/// without test items. `dir` is where its `mod x;` files are; `load` reads one.
fn add_module(
    path: Vec<String>,
    file: &str,
    text: &str,
    dir: &Path,
    load: Load<'_>,
    out: &mut Vec<Module>,
) {
    let parsed = syn::parse_file(text).unwrap_or_else(|e| {
        let at = e.span().start();
        panic!("{file}:{}:{}: {e}", at.line, at.column + 1)
    });
    add_items(path, file, parsed.items, dir, load, out);
}

/// Adds module `path`'s `items` (in `file`) to `out`, and its submodules: inline ones, and
/// those in files under `dir`.
fn add_items(
    path: Vec<String>,
    file: &str,
    items: Vec<syn::Item>,
    dir: &Path,
    load: Load<'_>,
    out: &mut Vec<Module>,
) {
    let mut kept = Vec::new();
    for item in items {
        if is_test(item_attrs(&item)) {
            continue;
        }
        if let syn::Item::Mod(m) = &item {
            let name = m.ident.to_string();
            let mut inner = path.clone();
            inner.push(name.clone());
            match &m.content {
                Some((_, items)) => {
                    add_items(inner, file, items.clone(), &dir.join(&name), load, out);
                }
                None => add_mod_file(m, inner, file, dir, load, out),
            }
        }
        kept.push(item);
    }
    out.push(Module {
        path,
        file: file.to_string(),
        items: kept,
    });
}

/// Adds the file of `mod name;` (module `path`, declared in `file`): `name.rs` or
/// `name/mod.rs` in `dir`, or its `#[path]`.
fn add_mod_file(
    m: &syn::ItemMod,
    path: Vec<String>,
    file: &str,
    dir: &Path,
    load: Load<'_>,
    out: &mut Vec<Module>,
) {
    let name = m.ident.to_string();
    let at = m.attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(dir.join(s.value())),
            _ => None,
        },
        _ => None,
    });
    let candidates = match at {
        Some(at) => vec![at],
        None => vec![
            dir.join(format!("{name}.rs")),
            dir.join(&name).join("mod.rs"),
        ],
    };
    match candidates.iter().find_map(|c| load(c).map(|l| (c, l))) {
        Some((at, (shown, text))) => {
            let inner_dir = if at.ends_with("mod.rs") {
                at.parent().unwrap().to_path_buf()
            } else {
                at.with_extension("")
            };
            add_module(path, &shown, &text, &inner_dir, load, out);
        }
        // Injected text has no files beside it.
        None => assert!(
            file == INJECTED,
            "{file}: mod {name}: no file at {candidates:?}"
        ),
    }
}

/// The name injected source text is shown by (the guard's own tests).
const INJECTED: &str = "injected.rs";

/// Reads files under `src/`, showing them as `src/...`.
fn load_src(at: &Path) -> Option<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(at).ok()?;
    let shown = at.strip_prefix(root).unwrap_or(at).display().to_string();
    Some((shown, text))
}

/// The modules of the crate's module `name` (`a::b`), read from `src/`, with their submodules.
fn modules_of(name: &str) -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rel = name.replace("::", "/");
    let path: Vec<String> = name.split("::").map(String::from).collect();
    let mut out = Vec::new();
    for (at, dir) in [
        (src.join(format!("{rel}.rs")), src.join(&rel)),
        (src.join(&rel).join("mod.rs"), src.join(&rel)),
    ] {
        if let Some((shown, text)) = load_src(&at) {
            add_module(path, &shown, &text, &dir, &load_src, &mut out);
            return out;
        }
    }
    panic!("module {name} has no file")
}

/// Every module of the crate and its binaries.
fn all_modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let (shown, text) = load_src(&src.join("lib.rs")).unwrap();
    add_module(Vec::new(), &shown, &text, &src, &load_src, &mut out);
    for entry in std::fs::read_dir(src.join("bin")).unwrap() {
        let at = entry.unwrap().path();
        let (shown, text) = load_src(&at).unwrap();
        let name = at.file_stem().unwrap().to_string_lossy().to_string();
        add_module(
            vec![name],
            &shown,
            &text,
            &src.join("bin"),
            &load_src,
            &mut out,
        );
    }
    out
}

/// The modules of injected source text, as if it were the file of module `name`.
fn modules_of_text(name: &str, text: &str) -> Vec<Module> {
    let path = name.split("::").map(String::from).collect();
    let mut out = Vec::new();
    add_module(path, INJECTED, text, Path::new("."), &|_| None, &mut out);
    out
}

/// What a name a module brings into scope stands for, as written: the path, and whether it
/// had a leading `::`.
#[derive(Clone)]
struct Written {
    path: Vec<String>,
    global: bool,
}

/// The `use` tree `tree` flattened: each leaf's name in scope (None for a glob or `_`), its
/// path and its line.
fn flatten(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Option<String>, Vec<String>, usize)>,
) {
    use syn::UseTree as U;
    match tree {
        U::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        U::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            // `use a::b::{self}` names `a::b`.
            if name != "self" {
                path.push(name.clone());
            }
            let shown = path.last().cloned();
            out.push((shown, path, n.ident.span().start().line));
        }
        U::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            let name = (r.rename != "_").then(|| r.rename.to_string());
            out.push((name, path, r.ident.span().start().line));
        }
        U::Glob(g) => {
            let mut path = prefix.clone();
            path.push("*".to_string());
            out.push((None, path, g.star_token.span.start().line));
        }
        U::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix, out);
            }
        }
    }
}

/// The names a module brings into scope: its `use`s (also those inside its functions), its
/// submodules and items, its `extern crate`s.
#[derive(Default)]
struct Scope {
    names: BTreeMap<String, Written>,
}

impl<'a> Visit<'a> for Scope {
    fn visit_item(&mut self, item: &'a syn::Item) {
        let Some(imports) = imports(item) else {
            return visit::visit_item(self, item);
        };
        for import in imports {
            let Some(name) = import.name else { continue };
            let written = Written {
                path: import.path,
                global: import.global,
            };
            if import.extern_crate {
                self.names.insert(name, written);
            } else {
                self.names.entry(name).or_insert(written);
            }
        }
    }
}

/// A name an item brings in: a `use` tree's leaf or an `extern crate`.
struct Import {
    /// Its name in scope (none for a glob or `_`).
    name: Option<String>,
    path: Vec<String>,
    /// Written with a leading `::` (an `extern crate` is always global).
    global: bool,
    extern_crate: bool,
    line: usize,
}

/// What `item` brings in when it is a `use` or an `extern crate`; nothing for test code and for
/// a nested module (a scope of its own); `None` for an item to walk into.
fn imports(item: &syn::Item) -> Option<Vec<Import>> {
    if is_test(item_attrs(item)) {
        return Some(Vec::new());
    }
    match item {
        syn::Item::Use(u) => {
            let mut leaves = Vec::new();
            flatten(&u.tree, &mut Vec::new(), &mut leaves);
            let global = u.leading_colon.is_some();
            Some(
                leaves
                    .into_iter()
                    .map(|(name, path, line)| Import {
                        name,
                        path,
                        global,
                        extern_crate: false,
                        line,
                    })
                    .collect(),
            )
        }
        syn::Item::ExternCrate(e) => Some(vec![Import {
            name: Some(e.rename.as_ref().map_or(&e.ident, |(_, r)| r).to_string()),
            path: vec![e.ident.to_string()],
            global: true,
            extern_crate: true,
            line: e.ident.span().start().line,
        }]),
        syn::Item::Mod(_) => Some(Vec::new()),
        _ => None,
    }
}

/// The crates a path may start with: std's and the package's dependencies.
fn crates() -> BTreeSet<String> {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let mut out: BTreeSet<String> = ["std", "core", "alloc", "proc_macro", "test"]
        .map(String::from)
        .into();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
            out.extend(deps.keys().map(|k| k.replace('-', "_")));
        }
    }
    out
}

/// One module's paths, resolved and checked.
struct Checker<'m> {
    module: &'m Module,
    names: BTreeMap<String, Written>,
    crates: &'m BTreeSet<String>,
    wrong: Vec<String>,
}

impl<'m> Checker<'m> {
    /// The checker of `module`, with the names it brings into scope.
    fn new(module: &'m Module, crates: &'m BTreeSet<String>) -> Self {
        let mut scope = Scope::default();
        for item in &module.items {
            scope.visit_item(item);
        }
        Checker {
            module,
            names: scope.names,
            crates,
            wrong: Vec::new(),
        }
    }

    /// The full path (`crate::a::b`, or `std::fs::read`) that `path` names in this module; None
    /// for a name of no module (a local, a generic, the prelude's).
    fn resolve(&self, path: &[String], global: bool, depth: usize) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        if global || depth > 8 {
            return Some(path.to_vec());
        }
        match first.as_str() {
            "crate" => Some(path.to_vec()),
            "self" | "super" => {
                let mut at = self.module.path.clone();
                let mut rest = path;
                if rest[0] == "self" {
                    rest = &rest[1..];
                }
                while rest.first().is_some_and(|s| s == "super") {
                    at.pop();
                    rest = &rest[1..];
                }
                let mut out = vec!["crate".to_string()];
                out.extend(at);
                out.extend(rest.iter().cloned());
                Some(out)
            }
            "Self" => None,
            _ => {
                if let Some(w) = self.names.get(first) {
                    let mut full = w.path.clone();
                    full.extend(rest.iter().cloned());
                    // A name used as written in its own `use` (`use std::fs;`) is the crate.
                    if w.path.len() == 1 && &w.path[0] == first {
                        return Some(full);
                    }
                    return self.resolve(&full, w.global, depth + 1);
                }
                let local = self
                    .module
                    .items
                    .iter()
                    .any(|i| item_name(i).is_some_and(|n| *n == **first));
                if local {
                    let mut out = vec!["crate".to_string()];
                    out.extend(self.module.path.iter().cloned());
                    out.extend(path.iter().cloned());
                    return Some(out);
                }
                self.crates.contains(first).then(|| path.to_vec())
            }
        }
    }

    /// Checks the path `path` written at `line`.
    fn check(&mut self, path: &[String], global: bool, line: usize) {
        let Some(full) = self.resolve(path, global, 0) else {
            return;
        };
        if full[0] == "std" && full.len() > 2 {
            self.check_method(&full[full.len() - 1], line);
        }
        if !allowed(&self.module.path, &full) {
            let who = self.module.path.join("::");
            self.wrong.push(format!(
                "{}:{line}: {} (in {who})",
                self.module.file,
                full.join("::")
            ));
        }
    }

    /// Checks a call of method `method` (by name: see [`SYSTEM_METHODS`]) at `line`.
    fn check_method(&mut self, method: &str, line: usize) {
        let who = self.module.path.join("::");
        let excepted = SYSTEM_METHODS_ALLOWED.iter().any(|(m, name, _)| {
            *name == method && (who == *m || who.starts_with(&format!("{m}::")))
        });
        if SYSTEM_METHODS.contains(&method) && !excepted {
            let file = &self.module.file;
            self.wrong
                .push(format!("{file}:{line}: .{method}() (in {who})"));
        }
    }

    /// Paths written in the string literals of `tokens`, as serde's attributes name them.
    fn scan_strings(&mut self, tokens: TokenStream) {
        for token in tokens {
            let TokenTree::Literal(lit) = token else {
                continue;
            };
            let line = lit.span().start().line;
            let text = syn::parse_str::<syn::LitStr>(&lit.to_string()).map(|s| s.value());
            if let Ok(path) = text.and_then(|t| syn::parse_str::<syn::Path>(&t)) {
                let segments: Vec<String> =
                    path.segments.iter().map(|s| s.ident.to_string()).collect();
                if path.leading_colon.is_some() || segments.len() > 1 {
                    self.check(&segments, path.leading_colon.is_some(), line);
                }
            }
        }
    }

    /// Paths written in the tokens of a macro call or an attribute.
    fn scan(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let colons = |i: usize| {
            matches!((tokens.get(i), tokens.get(i + 1)),
                (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
        };
        let mut i = 0;
        while i < tokens.len() {
            // `::` after a name or a generic's `>` continues a path; only elsewhere it starts one.
            let global = colons(i)
                && !matches!(
                    i.checked_sub(1).map(|p| &tokens[p]),
                    Some(TokenTree::Ident(_))
                )
                && !matches!(i.checked_sub(1).map(|p| &tokens[p]),
                    Some(TokenTree::Punct(p)) if p.as_char() == '>');
            let start = if global { i + 2 } else { i };
            match tokens.get(start) {
                Some(TokenTree::Ident(first)) => {
                    let line = first.span().start().line;
                    let mut path = vec![first.to_string()];
                    let mut at = start + 1;
                    while colons(at) {
                        match tokens.get(at + 2) {
                            Some(TokenTree::Ident(next)) => {
                                path.push(next.to_string());
                                at += 3;
                            }
                            _ => break,
                        }
                    }
                    if global || path.len() > 1 {
                        self.check(&path, global, line);
                    }
                    i = at;
                }
                Some(TokenTree::Group(g)) if !global => {
                    self.scan(g.stream());
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }
}

/// The name an item brings into its module.
fn item_name(item: &syn::Item) -> Option<String> {
    use syn::Item as I;
    let ident = match item {
        I::Const(i) => &i.ident,
        I::Enum(i) => &i.ident,
        I::Fn(i) => &i.sig.ident,
        I::Mod(i) => &i.ident,
        I::Static(i) => &i.ident,
        I::Struct(i) => &i.ident,
        I::Trait(i) => &i.ident,
        I::TraitAlias(i) => &i.ident,
        I::Type(i) => &i.ident,
        I::Union(i) => &i.ident,
        I::Macro(i) => i.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

/// A visitor method that walks an item of `$ty` unless the item is test code (its variants
/// `$variant` carry attributes; any other variant is walked).
macro_rules! unless_test {
    ($name:ident, $ty:ty, $walk:path, [$($variant:path),+]) => {
        fn $name(&mut self, item: &'a $ty) {
            let attrs: &[syn::Attribute] = match item {
                $($variant(i) => &i.attrs,)+
                _ => &[],
            };
            if !is_test(attrs) {
                $walk(self, item);
            }
        }
    };
}

impl<'a> Visit<'a> for Checker<'_> {
    fn visit_item(&mut self, item: &'a syn::Item) {
        let Some(imports) = imports(item) else {
            return visit::visit_item(self, item);
        };
        for import in imports {
            self.check(&import.path, import.global, import.line);
        }
    }

    unless_test!(
        visit_impl_item,
        syn::ImplItem,
        visit::visit_impl_item,
        [
            syn::ImplItem::Const,
            syn::ImplItem::Fn,
            syn::ImplItem::Type,
            syn::ImplItem::Macro
        ]
    );
    unless_test!(
        visit_trait_item,
        syn::TraitItem,
        visit::visit_trait_item,
        [
            syn::TraitItem::Const,
            syn::TraitItem::Fn,
            syn::TraitItem::Type,
            syn::TraitItem::Macro
        ]
    );

    fn visit_path(&mut self, path: &'a syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if path.leading_colon.is_some() || segments.len() > 1 {
            let line = path.segments[0].ident.span().start().line;
            self.check(&segments, path.leading_colon.is_some(), line);
        }
        visit::visit_path(self, path);
    }

    fn visit_expr_method_call(&mut self, call: &'a syn::ExprMethodCall) {
        let method = call.method.to_string();
        self.check_method(&method, call.method.span().start().line);
        visit::visit_expr_method_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'a syn::Macro) {
        // `include!` would make another file's code this module's, unread by this guard.
        if mac.path.is_ident("include") {
            let (file, line) = (
                &self.module.file,
                mac.path.segments[0].ident.span().start().line,
            );
            let who = self.module.path.join("::");
            self.wrong
                .push(format!("{file}:{line}: include! (in {who})"));
        }
        self.visit_path(&mac.path);
        self.scan(mac.tokens.clone());
    }

    fn visit_attribute(&mut self, attr: &'a syn::Attribute) {
        if let syn::Meta::List(list) = &attr.meta {
            self.scan(list.tokens.clone());
            // serde calls the functions its attributes name in strings (`with = "a::b"`).
            if list.path.is_ident("serde") {
                self.scan_strings(list.tokens.clone());
            }
        }
    }
}

/// Whether `path` (after `crate::`) is in the pure core.
fn is_pure(path: &[String]) -> bool {
    let path = path.join("::");
    PURE.iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}::")))
}

/// Whether `module` (a pure module's path) may name `full`.
fn allowed(module: &[String], full: &[String]) -> bool {
    if full[0] == "crate" && (full.len() == 1 || is_pure(&full[1..])) {
        return true;
    }
    let who = module.join("::");
    let glob = full.last().is_some_and(|s| s == "*");
    let what = if glob { &full[..full.len() - 1] } else { full };
    let row = ALLOWED.iter().position(|(m, item, _)| {
        let mine = *m == "*" || who == *m || who.starts_with(&format!("{m}::"));
        let item: Vec<&str> = item.split("::").collect();
        // The item or inside it; or a module on the way to it (each path through that name is
        // checked again where it is used), but never a glob of that module.
        let inside = what.len() >= item.len() && what.iter().zip(&item).all(|(a, b)| a == b);
        let on_the_way =
            !glob && what.len() < item.len() && what.iter().zip(&item).all(|(a, b)| a == b);
        mine && (inside || on_the_way)
    });
    if let Some(row) = row {
        USED.with(|used| used.borrow_mut().insert(row));
    }
    row.is_some()
}

thread_local! {
    /// The rows of [`ALLOWED`] that [`allowed`] answered with, on this test's thread.
    static USED: std::cell::RefCell<std::collections::BTreeSet<usize>> =
        std::cell::RefCell::default();
}

/// What the modules `modules` name that they may not: `file:line: path (in module)`.
fn reaches_out(modules: &[Module]) -> Vec<String> {
    let crates = crates();
    let mut wrong = Vec::new();
    for module in modules {
        let mut checker = Checker::new(module, &crates);
        for item in &module.items {
            checker.visit_item(item);
        }
        wrong.extend(checker.wrong);
    }
    wrong.sort();
    wrong.dedup();
    wrong
}

#[test]
fn the_pure_core_imports_no_shell_module_and_no_system_interface() {
    let modules: Vec<Module> = PURE.iter().flat_map(|m| modules_of(m)).collect();
    let wrong = reaches_out(&modules);
    assert!(
        wrong.is_empty(),
        "the pure core reaches out ({} paths):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Every row of the table is one the pure core needs today: a row left behind when the code
/// that needed it went would let that code come back unseen.
#[test]
fn every_row_of_the_allow_list_is_used() {
    let modules: Vec<Module> = PURE.iter().flat_map(|m| modules_of(m)).collect();
    USED.with(|used| used.borrow_mut().clear());
    assert!(reaches_out(&modules).is_empty());
    let used = USED.with(|used| used.borrow().clone());
    let stale: Vec<String> = ALLOWED
        .iter()
        .enumerate()
        .filter(|(row, _)| !used.contains(row))
        .map(|(_, (m, item, _))| format!("{m}: {item}"))
        .collect();
    assert!(stale.is_empty(), "rows nothing uses:\n{}", stale.join("\n"));
}

/// An item of the crate that the table allows is its module's own, or a re-export of an item
/// of the pure core: a shell module cannot pass a system item off under an allowed name
/// (`pub use std::fs::read as Blocked;`).
#[test]
fn every_allowed_item_of_the_crate_is_its_module_s_own() {
    let crates = crates();
    let mut wrong = Vec::new();
    for (_, item, _) in ALLOWED {
        let Some(inner) = item.strip_prefix("crate::") else {
            continue;
        };
        let (module, name) = inner.rsplit_once("::").unwrap();
        let modules = modules_of(module);
        let path: Vec<String> = module.split("::").map(String::from).collect();
        let found = modules.iter().find(|m| m.path == path).unwrap();
        if found
            .items
            .iter()
            .any(|i| item_name(i).is_some_and(|n| n == name))
        {
            continue;
        }
        let checker = Checker::new(found, &crates);
        let re_export = checker
            .names
            .get(name)
            .and_then(|w| checker.resolve(&w.path, w.global, 0));
        match re_export {
            Some(full) if full[0] == "crate" && is_pure(&full[1..]) => {}
            other => wrong.push(format!("{item}: {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "not the module's own item:\n{}",
        wrong.join("\n")
    );
}

/// What the guard says of `text` written as the file of module `module`.
fn breaks(module: &str, text: &str) -> Vec<String> {
    reaches_out(&modules_of_text(module, text))
}

/// `breaks`, as `line: path` (the file is always the injected one, the module `module`).
fn caught(module: &str, text: &str) -> Vec<String> {
    let suffix = format!(" (in {module})");
    breaks(module, text)
        .into_iter()
        .map(|w| {
            let w = w.strip_prefix("injected.rs:").expect("the injected file");
            w.strip_suffix(&suffix)
                .expect("the injected module")
                .to_string()
        })
        .collect()
}

#[test]
fn the_guard_refuses_a_system_module_however_it_is_imported() {
    assert_eq!(caught("detect", "use std::fs;"), ["1: std::fs"]);
    assert_eq!(
        caught("detect", "use std::{fs, os::unix::net::UnixStream};"),
        ["1: std::fs", "1: std::os::unix::net::UnixStream"]
    );
    assert_eq!(caught("detect", "use ::std::fs;"), ["1: std::fs"]);
    assert_eq!(caught("detect", "use std::fs as files;"), ["1: std::fs"]);
    assert_eq!(
        caught("detect", "use std::os::unix::*;"),
        ["1: std::os::unix::*"]
    );
    assert_eq!(
        caught(
            "detect",
            "use std::{self as s};\nfn f() { s::fs::read(\"x\"); }"
        ),
        ["2: std::fs::read"]
    );
    assert_eq!(
        caught("detect", "use std::process::Command;"),
        ["1: std::process::Command"]
    );
    assert_eq!(
        caught("detect", "use std::net::{IpAddr, UdpSocket};"),
        ["1: std::net::UdpSocket"]
    );
    assert_eq!(
        caught("detect", "use tokio::sync::mpsc;"),
        ["1: tokio::sync::mpsc"]
    );
    assert_eq!(caught("detect", "extern crate libc;"), ["1: libc"]);
    // A glob of an allowed item's module is the whole module: refused.
    assert_eq!(caught("detect", "use std::net::*;"), ["1: std::net::*"]);
}

#[test]
fn the_guard_refuses_a_system_path_written_inline() {
    let inline = "fn f() -> Vec<u8> {\n    ::std::fs::read(\"x\").unwrap()\n}";
    assert_eq!(caught("wire", inline), ["2: std::fs::read"]);
    let typed = "fn f(_: std::os::unix::net::UnixStream) {}";
    assert_eq!(caught("wire", typed), ["1: std::os::unix::net::UnixStream"]);
    let ended = "fn f() { std::process::exit(1) }";
    assert_eq!(caught("wire", ended), ["1: std::process::exit"]);
    let spawned = "async fn f() {\n    tokio::spawn(async {});\n}";
    assert_eq!(caught("wire", spawned), ["2: tokio::spawn"]);
    let in_macro = "fn f() -> String {\n    format!(\"{:?}\", std::fs::read(\"x\"))\n}";
    assert_eq!(caught("wire", in_macro), ["2: std::fs::read"]);
    let in_macro_global = "fn f() { println!(\"{:?}\", ::std::net::UdpSocket::bind(\"x\")); }";
    assert_eq!(
        caught("wire", in_macro_global),
        ["1: std::net::UdpSocket::bind"]
    );
    let serde_with = "#[derive(serde::Deserialize)]\nstruct S {\n    #[serde(default = \"here\", deserialize_with = \"crate::daemon::read\")]\n    a: u8,\n}";
    assert_eq!(caught("config", serde_with), ["3: crate::daemon::read"]);
    let included = "include!(\"../daemon/live.rs\");";
    assert_eq!(caught("config", included), ["1: include!"]);
    let trait_impl =
        "struct S;\nimpl std::os::fd::AsRawFd for S {\n    fn as_raw_fd(&self) -> i32 { 0 }\n}";
    assert_eq!(caught("wire", trait_impl), ["2: std::os::fd::AsRawFd"]);
}

#[test]
fn the_guard_refuses_a_method_that_reaches_the_system() {
    let text = "use std::path::Path;\nfn f(p: &Path) -> bool {\n    p.exists()\n}";
    assert_eq!(caught("config", text), ["3: .exists()"]);
    let text = "fn f(p: &std::path::Path) -> bool {\n    std::path::Path::is_file(p)\n}";
    assert_eq!(caught("config", text), ["2: .is_file()"]);
    let text = "fn f(t: std::time::Instant) -> std::time::Duration {\n    t.elapsed()\n}";
    assert_eq!(
        caught("detect", text),
        ["1: std::time::Instant", "2: .elapsed()"]
    );
    assert!(caught("time", text).is_empty());
}

#[test]
fn the_guard_refuses_a_shell_module_reached_by_super_or_a_name() {
    let up = "use super::super::daemon::fleet::Link;";
    assert_eq!(caught("fleet::gate", up), ["1: crate::daemon::fleet::Link"]);
    let nested = "mod inner {\n    use super::super::super::capture::LivePcap;\n}";
    assert_eq!(
        breaks("fleet::gate", nested),
        ["injected.rs:2: crate::capture::LivePcap (in fleet::gate::inner)"]
    );
    // The engine may name the firewall's port and plain data, not its senders.
    assert!(
        caught(
            "engine",
            "use crate::firewall::{Action, Firewall, FirewallError};"
        )
        .is_empty()
    );
    assert_eq!(
        caught("engine", "use crate::firewall::nft::NftFirewall;"),
        ["1: crate::firewall::nft::NftFirewall"]
    );
    assert_eq!(
        caught("engine", "use crate::firewall::{Firewall, nft};"),
        ["1: crate::firewall::nft"]
    );
    assert_eq!(
        caught("engine", "use crate::firewall::*;"),
        ["1: crate::firewall::*"]
    );
    let through = "use crate::firewall as fw;\nfn f() { fw::nft::send(); }";
    assert_eq!(caught("engine", through), ["2: crate::firewall::nft::send"]);
    let inline = "fn f() { crate::firewall::nft::NftFirewall::open(); }";
    assert_eq!(
        caught("engine", inline),
        ["1: crate::firewall::nft::NftFirewall::open"]
    );
    // Another pure module's items may name the port only where the table says so.
    assert_eq!(
        caught("detect", "use crate::firewall::Firewall;"),
        ["1: crate::firewall::Firewall"]
    );
    // Inside the pure core, anything goes.
    assert!(
        caught(
            "engine",
            "use crate::detect::Detector;\nuse super::respond::Responder;"
        )
        .is_empty()
    );
}

#[test]
fn the_guard_reads_the_whole_file_and_leaves_out_only_test_items() {
    let after = "#[cfg(test)]\nmod tests {\n    use std::fs;\n}\n\nfn later() {\n    std::fs::read(\"x\");\n}";
    assert_eq!(caught("engine", after), ["7: std::fs::read"]);
    let test_only = "#[cfg(test)]\nfn helper() { std::fs::read(\"x\"); }\nstruct S;\nimpl S {\n    #[cfg(test)]\n    fn t() { std::fs::read(\"x\"); }\n}";
    assert!(caught("engine", test_only).is_empty());
    // `cfg(not(test))` is not test code.
    let not_test = "#[cfg(not(test))]\nfn f() { std::fs::read(\"x\"); }";
    assert_eq!(caught("engine", not_test), ["2: std::fs::read"]);
}

/// Whether the guard reads today's files as it claims: the engine's own test module is left
/// out, and what comes after it in `engine/mod.rs` is read.
#[test]
fn the_guard_reads_every_file_of_a_pure_module() {
    let engine = modules_of("engine");
    let files: BTreeSet<&str> = engine.iter().map(|m| m.file.as_str()).collect();
    assert!(files.contains("src/engine/mod.rs") && files.contains("src/engine/decide.rs"));
    assert!(!files.contains("src/engine/tests.rs"));
    let root = engine
        .iter()
        .find(|m| m.file == "src/engine/mod.rs" && m.path == ["engine"])
        .unwrap();
    assert!(
        root.items
            .iter()
            .any(|i| item_name(i).is_some_and(|n| n == "Engine"))
    );
}

/// A function's length, from `fn` to its closing brace, and its name (`module::Type::name`).
struct Lengths<'m> {
    module: &'m Module,
    within: Vec<String>,
    found: Vec<(String, usize, String)>,
}

impl Lengths<'_> {
    fn add(&mut self, name: &syn::Ident, from: &syn::Signature, to: &syn::Block) {
        let first = from.fn_token.span.start().line;
        let last = to.brace_token.span.close().end().line;
        let mut path = self.module.path.clone();
        path.extend(self.within.iter().cloned());
        path.push(name.to_string());
        let at = format!("{}:{first}", self.module.file);
        self.found.push((path.join("::"), last + 1 - first, at));
    }
}

impl<'a> Visit<'a> for Lengths<'_> {
    fn visit_item(&mut self, item: &'a syn::Item) {
        match item {
            syn::Item::Mod(_) => {}
            _ if is_test(item_attrs(item)) => {}
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.add(&f.sig.ident, &f.sig, &f.block);
        visit::visit_item_fn(self, f);
    }

    fn visit_item_impl(&mut self, i: &'a syn::ItemImpl) {
        let name = match &*i.self_ty {
            syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        self.within.push(name.unwrap_or_else(|| "impl".to_string()));
        visit::visit_item_impl(self, i);
        self.within.pop();
    }

    fn visit_item_trait(&mut self, t: &'a syn::ItemTrait) {
        self.within.push(t.ident.to_string());
        visit::visit_item_trait(self, t);
        self.within.pop();
    }

    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        if !is_test(&f.attrs) {
            self.add(&f.sig.ident, &f.sig, &f.block);
            visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_trait_item_fn(&mut self, f: &'a syn::TraitItemFn) {
        if let (Some(block), false) = (&f.default, is_test(&f.attrs)) {
            self.add(&f.sig.ident, &f.sig, block);
        }
        visit::visit_trait_item_fn(self, f);
    }
}

/// Every function of `modules` with its length and where it starts.
fn lengths(modules: &[Module]) -> Vec<(String, usize, String)> {
    let mut found = Vec::new();
    for module in modules {
        let mut lengths = Lengths {
            module,
            within: Vec::new(),
            found: Vec::new(),
        };
        for item in &module.items {
            lengths.visit_item(item);
        }
        found.extend(lengths.found);
    }
    found
}

#[test]
fn no_function_outside_the_hot_path_is_longer_than_80_lines() {
    let found = lengths(&all_modules());
    let mut long: Vec<String> = found
        .iter()
        .filter(|(name, lines, _)| *lines > LONGEST && !HOT_PATH.iter().any(|(h, _)| h == name))
        .map(|(name, lines, at)| format!("{at}: {name}: {lines} lines"))
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "longer than {LONGEST} lines:\n{}",
        long.join("\n")
    );
    // Each hot-path entry names a function that exists and still needs the exception.
    for (name, _) in HOT_PATH {
        let lines = found.iter().find(|(n, _, _)| n == name).map(|(_, l, _)| *l);
        assert!(
            lines.is_some_and(|l| l > LONGEST),
            "HOT_PATH: {name} is {lines:?} lines"
        );
    }
}

#[test]
fn the_length_guard_counts_from_fn_to_its_brace_and_leaves_out_tests() {
    let body = "    let _ = 1;\n".repeat(LONGEST - 1);
    let text = format!(
        "/// Doc lines do not count.\nfn short() {{\n{body}}}\n\nstruct S;\nimpl S {{\n    fn long() {{\n{body}        let _ = 2;\n    }}\n}}\n\n#[cfg(test)]\nfn test_only() {{\n{body}{body}}}\n"
    );
    let found = lengths(&modules_of_text("wire", &text));
    let found: Vec<(&str, usize)> = found.iter().map(|(n, l, _)| (n.as_str(), *l)).collect();
    assert_eq!(
        found,
        [("wire::short", LONGEST + 1), ("wire::S::long", LONGEST + 2)]
    );
}
