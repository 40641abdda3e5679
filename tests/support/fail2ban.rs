//! Debian's fail2ban, with the filter as scansentry ships it (`packaging/fail2ban/`), run on
//! what a real daemon wrote: which addresses would it ban?
//!
//! fail2ban comes from Debian's package: installed, or (so that no fail2ban server is
//! installed and enabled on a test machine) extracted by `scripts/install-deps --tests` into
//! [`EXTRACTED`], whose `fail2ban-regex` runs with the package's own Python modules.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `scripts/install-deps --tests` extracts Debian's fail2ban package.
pub const EXTRACTED: &str = "/usr/local/lib/scansentry-tests/fail2ban";

/// The addresses fail2ban-regex, with the shipped filter, finds in `log` (one per match, in
/// order), the log written as it is and with a syslog prefix on each line; `dir` holds the
/// filter and the logs.
pub fn bans(dir: &Path, log: &str) -> Vec<String> {
    let installed = Path::new("/etc/fail2ban/filter.d/common.conf");
    let (regex, python_path, common) = match installed {
        _ if Path::new("/usr/bin/fail2ban-regex").exists() && installed.exists() => {
            ("fail2ban-regex".into(), None, installed.to_owned())
        }
        _ => {
            let root = Path::new(EXTRACTED);
            (
                root.join("usr/bin/fail2ban-regex"),
                Some(root.join("usr/lib/python3/dist-packages")),
                root.join("etc/fail2ban/filter.d/common.conf"),
            )
        }
    };
    let filters = dir.join("filter.d");
    std::fs::create_dir_all(&filters).unwrap();
    std::fs::copy(&common, filters.join("common.conf")).unwrap_or_else(|e| {
        panic!(
            "no fail2ban at {} ({e}): scripts/install-deps --tests extracts Debian's",
            common.display()
        )
    });
    let filter = filters.join("scansentry.conf");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fail2ban/scansentry.conf"),
        &filter,
    )
    .unwrap();
    let syslog: String = log
        .lines()
        .map(|line| format!("Dec  7 07:00:00 web-3 sentryd[812]: {line}\n"))
        .collect();
    let mut found = Vec::new();
    for (name, said) in [("sentryd.log", log.to_owned()), ("sentryd.syslog", syslog)] {
        let path = dir.join(name);
        std::fs::write(&path, said).unwrap();
        let mut command = match &python_path {
            Some(modules) => {
                let mut c = Command::new("python3");
                c.arg(&regex).env("PYTHONPATH", modules);
                c
            }
            None => Command::new(PathBuf::from(&regex)),
        };
        let matched = command
            .args(["-o", "ip"])
            .arg(&path)
            .arg(&filter)
            .output()
            .expect("fail2ban-regex");
        assert!(matched.status.success(), "{matched:?}");
        found.extend(
            String::from_utf8_lossy(&matched.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    found
}
