//! `sentryctl audit`: the local exposure audit on demand, its change reports, and nmap imports.
//! **Shell**; exit codes in ndiff's style: 0 nothing to report, 1 findings or changes, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::names::Names;
use crate::audit::store::Store;
use crate::audit::{self, Change, Snapshot, Source, collect};
use crate::config;
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
    let loaded = config::load(options.config.as_deref()).map_err(|e| crate::exit::chain(&e))?;
    let config = &loaded.config;
    let db = options
        .db
        .clone()
        .unwrap_or_else(|| audit::store::default_path(&config.daemon.state_dir));
    let created = !db.exists();
    let mut store = Store::open(&db).map_err(|e| crate::exit::chain(&e))?;
    if created {
        hand_to_directory_owner(&db);
    }
    let now = SystemClock.now();

    if let Some(file) = &options.import_nmap {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let scan = audit::nmap::parse(&text, &file.display().to_string())?;
        let before = store
            .newest(Source::Nmap)
            .map_err(|e| crate::exit::chain(&e))?;
        let id = store.save(&scan).map_err(|e| crate::exit::chain(&e))?;
        return Ok(report_changes(options.json, id, &scan, before.as_ref()));
    }

    // What --diff compares with is found first: a bad SINCE is an error before anything runs.
    let since = match &options.diff {
        Some(since) => Some(earlier(&store, since, now)?),
        None => None,
    };
    let snapshot = collect::local(&config.audit.policy, &Names::load(), now)
        .map_err(|e| format!("cannot read the socket table: {e}"))?;
    if let Some(before) = since {
        let id = store.save(&snapshot).map_err(|e| crate::exit::chain(&e))?;
        return Ok(report_changes(options.json, id, &snapshot, before.as_ref()));
    }
    let before = store
        .newest(Source::Local)
        .map_err(|e| crate::exit::chain(&e))?;
    let findings = config
        .audit
        .policy
        .check(&snapshot, before.as_ref().map(|(_, s)| s));
    let id = store.save(&snapshot).map_err(|e| crate::exit::chain(&e))?;
    if options.json {
        let v = serde_json::json!({
            "snapshot": id,
            "taken": snapshot.taken,
            "services": snapshot.entries,
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
    } else {
        print!("{}", services_table(&snapshot));
        for f in &findings {
            println!("{}", f.line());
        }
        if findings.is_empty() {
            println!(
                "{} services open, nothing to report (snapshot {id})",
                snapshot.entries.len()
            );
        }
    }
    Ok(!findings.is_empty())
}

/// The snapshot `SINCE` names: `last` (the newest), a snapshot number, an RFC 3339 time, or an
/// age like `1d`.
fn earlier(
    store: &Store,
    since: &str,
    now: Timestamp,
) -> Result<Option<audit::store::Stored>, String> {
    let found = if since == "last" {
        store.newest(Source::Local)
    } else if let Ok(id) = since.parse::<i64>() {
        store.get(Source::Local, id)
    } else if let Ok(at) = since.parse::<Timestamp>() {
        store.at_or_before(Source::Local, at)
    } else if let Ok(age) = humantime::parse_duration(since) {
        store.at_or_before(Source::Local, now.saturating_sub(age))
    } else {
        return Err(format!(
            "--diff {since:?}: give a snapshot number, a time like 2026-11-21T10:00:00Z, or an \
             age like 1d"
        ));
    };
    let found = found.map_err(|e| crate::exit::chain(&e))?;
    if found.is_none() && since != "last" {
        return Err(format!(
            "--diff {since}: no snapshot that old in the history"
        ));
    }
    Ok(found)
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
        let v = serde_json::json!({
            "snapshot": id,
            "since": before_id,
            "changes": changes,
        });
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
                p.map_or_else(|| "-".into(), |p| p.user.clone()),
                p.map_or_else(|| "-".into(), |p| p.pid.to_string()),
                p.and_then(|p| p.exe.clone()).unwrap_or_else(|| "-".into()),
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

/// A history that root created in the daemon's state directory goes to the directory's owner
/// (the daemon's user), so that the daemon can go on writing it.
fn hand_to_directory_owner(db: &Path) {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let Some(dir) = db.parent().and_then(|d| std::fs::metadata(d).ok()) else {
        return;
    };
    let _ = nix::unistd::chown(
        db,
        Some(nix::unistd::Uid::from_raw(dir.uid())),
        Some(nix::unistd::Gid::from_raw(dir.gid())),
    );
}
