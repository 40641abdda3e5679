//! `sentryctl audit`: the local exposure audit on demand, its change reports, and nmap imports.
//! **Shell**; exit codes in ndiff's style: 0 nothing to report (the host matches its baseline,
//! the audit's first look, and its policy), 1 findings or changes, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::names::Names;
use crate::audit::store::Store;
use crate::audit::{self, Change, Snapshot, Source, collect};
use crate::time::{Clock, SystemClock, Timestamp};

/// The audit's own exit codes.
const NOTHING: u8 = 0;
const FOUND: u8 = 1;
const ERROR: u8 = 2;

/// What `sentryctl audit` was asked.
#[derive(Debug)]
pub struct Options {
    /// `--diff [SINCE]`.
    pub diff: Option<String>,
    /// `--import-nmap FILE`.
    pub import_nmap: Option<PathBuf>,
    /// `-c FILE`.
    pub config: Option<PathBuf>,
    /// `--db FILE`.
    pub db: Option<PathBuf>,
    /// `--print-expect`.
    pub print_expect: bool,
    /// `--json`.
    pub json: bool,
}

/// Runs the audit as asked; prints the report; returns 0, 1 or 2.
pub fn run(options: &Options) -> ExitCode {
    match audit(options) {
        Ok(found) => ExitCode::from(if found { FOUND } else { NOTHING }),
        Err(message) => {
            eprintln!("sentryctl: error: {message}");
            ExitCode::from(ERROR)
        }
    }
}

fn audit(options: &Options) -> Result<bool, String> {
    let loaded =
        crate::config_file::load(options.config.as_deref()).map_err(|e| crate::exit::chain(&e))?;
    let config = &loaded.config;
    let db = options
        .db
        .clone()
        .unwrap_or_else(|| audit::store::default_path(&config.daemon.state_dir));
    let now = SystemClock.now();

    if let Some(file) = &options.import_nmap {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let scan = audit::nmap::parse(&text, &file.display().to_string())?;
        let _owner = AsDirectoryOwner::of(&db)?;
        let mut store = Store::open(&db).map_err(|e| crate::exit::chain(&e))?;
        let before = store
            .newest(Source::Nmap)
            .map_err(|e| crate::exit::chain(&e))?;
        let id = store.save(&scan).map_err(|e| crate::exit::chain(&e))?;
        return Ok(report_changes(options.json, id, &scan, before.as_ref()));
    }

    if options.print_expect {
        let snapshot = collect::local(&config.audit.policy, &Names::load(), now)
            .map_err(|e| format!("cannot read the socket table: {e}"))?;
        print!("{}", audit::policy::expect_file_text(&snapshot));
        return Ok(false);
    }

    // A bad SINCE is an error before anything runs; the socket table is read with this
    // process's rights (root sees every owner), the history touched only as its directory's
    // owner.
    let since = options
        .diff
        .as_deref()
        .map(|s| Since::parse(s, now))
        .transpose()?;
    let mut policy = config.audit.policy.clone();
    policy
        .all
        .expect
        .extend(collect::expect_file(config.audit.expect_file.as_deref())?);
    let snapshot = collect::local(&policy, &Names::load(), now)
        .map_err(|e| format!("cannot read the socket table: {e}"))?;
    let _owner = AsDirectoryOwner::of(&db)?;
    let mut store = Store::open(&db).map_err(|e| crate::exit::chain(&e))?;
    if let (Some(since), Some(text)) = (since, &options.diff) {
        let before = since.find(&store, text)?;
        let id = store.save(&snapshot).map_err(|e| crate::exit::chain(&e))?;
        return Ok(report_changes(options.json, id, &snapshot, before.as_ref()));
    }
    let chain = |e: audit::store::StoreError| crate::exit::chain(&e);
    let before = store.newest(Source::Local).map_err(chain)?;
    let baseline = store.baseline().map_err(chain)?;
    let findings = policy.check(
        &snapshot,
        before.as_ref().map(|(_, s)| s),
        baseline.as_ref().map_or(&snapshot, |(_, s)| s),
    );
    let id = store.save(&snapshot).map_err(chain)?;
    let baseline_id = baseline.as_ref().map_or(id, |(b, _)| *b);
    let first = baseline.is_none();
    print_state(options.json, (id, baseline_id, first), &snapshot, &findings);
    Ok(!findings.is_empty())
}

/// The state: `snapshot` (number `id`), its findings against the baseline (number
/// `baseline_id`; `first` when this snapshot is it) and the policy.
fn print_state(
    json: bool,
    (id, baseline_id, first): (i64, i64, bool),
    snapshot: &Snapshot,
    findings: &[audit::policy::Finding],
) {
    if json {
        let v = super::json::stamp(serde_json::json!({
            "result": "audit",
            "snapshot": id,
            "baseline": baseline_id,
            "taken_at": snapshot.taken,
            "services": snapshot.entries.iter().map(entry).collect::<Vec<_>>(),
            "findings": findings.iter().map(finding).collect::<Vec<_>>(),
        }));
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return;
    }
    print!("{}", services_table(snapshot));
    if first {
        println!(
            "first look: what listens now is the baseline (snapshot {id}); later audits \
             report what differs from it"
        );
    }
    for f in findings {
        println!("{}", f.line());
    }
    if findings.is_empty() {
        println!(
            "{} services open, nothing to report (snapshot {id}, baseline {baseline_id})",
            snapshot.entries.len()
        );
    }
}

/// The snapshot `SINCE` names: `last` (the newest), a snapshot number, an RFC 3339 time, or an
/// age like `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Since {
    Last,
    Id(i64),
    At(Timestamp),
}

impl Since {
    fn parse(since: &str, now: Timestamp) -> Result<Self, String> {
        if since == "last" {
            Ok(Since::Last)
        } else if let Ok(id) = since.parse::<i64>() {
            Ok(Since::Id(id))
        } else if let Ok(at) = since.parse::<Timestamp>() {
            Ok(Since::At(at))
        } else if let Ok(age) = humantime::parse_duration(since) {
            Ok(Since::At(now.saturating_sub(age)))
        } else {
            Err(format!(
                "--diff {since:?}: give a snapshot number, a time like 2026-11-21T10:00:00Z, \
                 or an age like 1d"
            ))
        }
    }

    /// The snapshot it names (`text`, as given): none for `last` in an empty history; an
    /// error for the others.
    fn find(self, store: &Store, text: &str) -> Result<Option<audit::store::Stored>, String> {
        let found = match self {
            Since::Last => store.newest(Source::Local),
            Since::Id(id) => store.get(Source::Local, id),
            Since::At(at) => store.at_or_before(Source::Local, at),
        };
        let found = found.map_err(|e| crate::exit::chain(&e))?;
        if found.is_none() && self != Since::Last {
            return Err(format!(
                "--diff {text}: no snapshot that old in the history"
            ));
        }
        Ok(found)
    }
}

/// Prints the changes from `before` to `now`; returns whether there were any.
fn report_changes(
    json: bool,
    id: i64,
    now: &Snapshot,
    before: Option<&audit::store::Stored>,
) -> bool {
    let empty = Snapshot::new(Timestamp::ZERO, now.source, Vec::new(), Vec::new());
    let (before_id, before) = match before {
        Some((id, s)) => (Some(*id), s),
        None => (None, &empty),
    };
    let changes: Vec<Change> = audit::diff(before, now);
    if json {
        let v = super::json::stamp(serde_json::json!({
            "result": "audit-changes",
            "snapshot": id,
            "since": before_id,
            "changes": changes.iter().map(change).collect::<Vec<_>>(),
        }));
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
    } else {
        match before_id {
            Some(b) => println!("since snapshot {b} ({}):", before.taken),
            None => println!("first snapshot: everything is new"),
        }
        for c in &changes {
            println!("{}", c.line());
        }
        if changes.is_empty() {
            println!("no changes");
        }
    }
    !changes.is_empty()
}

/// ADDRESS PORT SERVICE USER PID PROGRAM, one service a line.
fn services_table(s: &Snapshot) -> String {
    let rows: Vec<[String; 6]> = s
        .entries
        .iter()
        .map(|e| {
            let p = e.process.as_ref();
            [
                e.host.to_string(),
                e.port_label(),
                e.name.clone().unwrap_or_else(|| "-".into()),
                // The user and the path are the process's: shown, never obeyed by the terminal.
                p.map_or_else(|| "-".into(), |p| crate::text::one_line(&p.user)),
                p.map_or_else(|| "-".into(), |p| p.pid.to_string()),
                p.and_then(|p| p.exe.as_deref())
                    .map_or_else(|| "-".into(), crate::text::one_line),
            ]
        })
        .collect();
    let header = ["ADDRESS", "PORT", "SERVICE", "USER", "PID", "PROGRAM"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 5 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

/// While it lives, this process acts as the owner of the history's directory, when it is root
/// and the directory belongs to another user (the daemon's state directory, owned by
/// `scansentry`): so the history and SQLite's journals are created as that user, and a link
/// planted in that directory leads nowhere that user could not write anyway. Root's own groups
/// and identity come back on drop.
struct AsDirectoryOwner {
    groups: Vec<nix::unistd::Gid>,
    gid: nix::unistd::Gid,
}

impl AsDirectoryOwner {
    fn of(db: &Path) -> Result<Option<Self>, String> {
        use nix::unistd::{Gid, Uid, getegid, getgroups, setegid, seteuid, setgroups};
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let meta = match std::fs::metadata(dir) {
            Ok(meta) => meta,
            // A directory that does not exist: Store::open says so.
            Err(_) => return Ok(None),
        };
        if meta.uid() == 0 {
            return Ok(None);
        }
        let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
        let fail = |e: nix::Error| {
            format!(
                "cannot act as the owner ({uid}) of {} to open the history: {e}",
                dir.display()
            )
        };
        let guard = AsDirectoryOwner {
            groups: getgroups().map_err(fail)?,
            gid: getegid(),
        };
        setgroups(&[gid]).map_err(fail)?;
        setegid(gid).map_err(fail)?;
        seteuid(uid).map_err(fail)?;
        Ok(Some(guard))
    }
}

impl Drop for AsDirectoryOwner {
    fn drop(&mut self) {
        use nix::unistd::{Uid, setegid, seteuid, setgroups};
        // Back to root, whose saved set-user-ID is 0: these cannot fail; if they did, the
        // process must not go on with the wrong identity.
        if seteuid(Uid::from_raw(0)).is_err()
            || setegid(self.gid).is_err()
            || setgroups(&self.groups).is_err()
        {
            std::process::abort();
        }
    }
}

/// A service in the public JSON: its `host` is `address`, as everywhere in scansentry's JSON.
fn entry(e: &audit::Entry) -> serde_json::Value {
    addressed(serde_json::to_value(e).expect("entries serialize"))
}

/// A finding in the public JSON (its service's and its own `host` as `address`).
fn finding(f: &audit::policy::Finding) -> serde_json::Value {
    addressed(serde_json::to_value(f).expect("findings serialize"))
}

/// A change in the public JSON (its service's and its own `host` as `address`).
fn change(c: &Change) -> serde_json::Value {
    addressed(serde_json::to_value(c).expect("changes serialize"))
}

/// `v` with every `host` key (an address in the audit's records) named `address`.
fn addressed(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| {
                let k = if k == "host" { "address".into() } else { k };
                (k, addressed(v))
            })
            .collect(),
        other => other,
    }
}
