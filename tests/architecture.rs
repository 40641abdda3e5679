//! The dependency direction of the crate, kept by the compiler's neighbour: the pure core
//! (decisions over plain data) imports no shell module and no system interface, so that it can
//! be tested without root and driven by the daemon and by `--replay` alike. The README's
//! architecture section draws the same picture.
//!
//! Each pure module's files are read without their tests (`tests.rs`, and everything from a
//! file's `#[cfg(test)]` on), and every `crate::name` they mention must be pure too.

use std::path::Path;

/// The pure core.
const PURE: [&str; 14] = [
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
    "respond",
    "trust",
    "report",
    "netlink",
    "never_block",
    "config",
];

/// What no pure module may use: packet capture, sockets and system calls.
const SYSTEM: [&str; 5] = ["pcap::", "nix::", "libc::", "std::os::", "std::net::Tcp"];

/// The shell's edges that pure modules are allowed, each with why.
/// (The system clock is kept to `time` by clippy.toml's disallowed methods.)
const EXCEPTIONS: [(&str, &str, &str); 7] = [
    // The engine drives the firewall through its trait, the port the shell hands it; the
    // senders (netlink, routes) are the shell's.
    (
        "engine",
        "crate::firewall",
        "the Firewall trait and its errors, not a sender",
    ),
    (
        "engine",
        "crate::control",
        "the control protocol's request and response types",
    ),
    (
        "metrics",
        "crate::control",
        "the status answer (StatusInfo) the exposition is made from",
    ),
    (
        "engine",
        "crate::state",
        "the state's format (State), which the shell writes",
    ),
    (
        "never_block",
        "std::fs::",
        "`load` reads the never-block file",
    ),
    ("config", "std::fs::", "reads the configuration file"),
    (
        "config",
        "std::os::",
        "looks at the configuration file's permissions",
    ),
];

/// The source files of module `name` (`a::b` for a submodule), without test files.
fn files(name: &str) -> Vec<std::path::PathBuf> {
    let name = name.replace("::", "/");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let single = src.join(format!("{name}.rs"));
    if single.exists() {
        out.push(single);
    }
    let mut dirs = vec![src.join(&name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "module {name} has no files");
    out
}

/// The code of a file before its tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Whether `code` names the path `path` (as a path, not inside another name: `unix::` is not
/// `nix::`).
fn mentions(code: &str, path: &str) -> bool {
    code.match_indices(path).any(|(at, _)| {
        !code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    })
}

/// Whether the path `a::b::c` (after `crate::`) is in the pure core: a pure module, or inside one.
fn is_pure(path: &str) -> bool {
    PURE.iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}::")))
}

fn excepted(module: &str, what: &str) -> bool {
    EXCEPTIONS
        .iter()
        .any(|(m, prefix, _)| *m == module && what.starts_with(prefix))
}

#[test]
fn the_pure_core_imports_no_shell_module_and_no_system_interface() {
    let mut wrong = Vec::new();
    for module in PURE {
        for path in files(module) {
            let code = code(&path);
            let shown = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
            for (at, _) in code.match_indices("crate::") {
                let path: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let what = format!("crate::{}", path.split("::").next().unwrap_or_default());
                if !is_pure(&path) && !excepted(module, &what) {
                    wrong.push(format!("{}: crate::{path}", shown.display()));
                }
            }
            for system in SYSTEM.iter().chain(&["std::fs::"]) {
                if mentions(&code, system) && !excepted(module, system) {
                    wrong.push(format!("{}: {system}", shown.display()));
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "the pure core reaches out:\n{}",
        wrong.join("\n")
    );
}

/// The guard itself sees an import: a pure module that named a shell one would be caught.
#[test]
fn the_guard_sees_what_it_guards() {
    assert!(mentions(&code(&files("trust")[0]), "crate::time"));
    assert!(mentions("use nix::errno;", "nix::") && !mentions("std::os::unix::fs", "nix::"));
    assert!(!PURE.contains(&"firewall") && !PURE.contains(&"host"));
    assert!(!excepted("trust", "crate::host"));
    assert!(is_pure("audit::policy::Policy") && !is_pure("audit::collect"));
    assert!(!is_pure("firewall::nft::NftFirewall") && is_pure("config::nft::NftName"));
}
