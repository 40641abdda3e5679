//! The daemon's periodic audit, on a thread of its own (reading `/proc` and asking rpcbind
//! must not hold up packet capture). **Shell.**

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::audit::names::Names;
use crate::audit::policy::{self, Finding, Loudness};
use crate::audit::store::Store;
use crate::audit::{Snapshot, Source, collect};
use crate::config::{AuditConfig, Severity};
use crate::time::{Clock, SystemClock};

/// The first audit runs this long after the start, so that its lines follow the start-up.
const FIRST_AFTER: Duration = Duration::from_secs(5);

/// The handle through which a reload changes the audit's settings.
#[derive(Clone, Debug)]
pub struct Auditor(Arc<Mutex<AuditConfig>>);

impl Auditor {
    /// Starts the audit thread, keeping its history in `db`.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn spawn(config: AuditConfig, db: PathBuf) -> std::io::Result<Auditor> {
        let shared = Arc::new(Mutex::new(config));
        let settings = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                std::thread::sleep(FIRST_AFTER);
                // What the last audit found, under the policy of its time: what is said
                // already.
                let mut said = None;
                loop {
                    let config = settings
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    said = if config.enabled {
                        audit_once(&config, &db, said)
                    } else {
                        None
                    };
                    std::thread::sleep(config.interval);
                }
            })?;
        Ok(Auditor(shared))
    }

    /// Takes new settings (on reload); they apply from the next audit.
    pub fn reconfigure(&self, config: AuditConfig) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }
}

/// One audit: the snapshot, the findings not in `said` logged (new, missing, restarted, moved at
/// the configured severity; gone at info), the history updated; returns its findings. `said` is
/// what the last audit of this daemon found (a finding a reload's new policy makes is said);
/// for the first audit after the start, what the newest stored snapshot shows. The first audit
/// of all records what listens as the baseline and says so once, at info.
fn audit_once(
    config: &AuditConfig,
    db: &std::path::Path,
    said: Option<Vec<Finding>>,
) -> Option<Vec<Finding>> {
    let now = SystemClock.now();
    let snapshot = match collect::local(&config.policy, &Names::load(), now) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("audit: cannot read the socket table: {e}");
            return said;
        }
    };
    let mut policy = config.policy.clone();
    match collect::expect_file(config.expect_file.as_deref()) {
        Ok(rules) => policy.all.expect.extend(rules),
        Err(e) => tracing::warn!("audit: {e}"),
    }
    if let Some(dir) = db.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut store = match Store::open(db) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("audit: {}", crate::exit::chain(&e));
            None
        }
    };
    let stored = |s: &Store, baseline: bool| {
        let found = if baseline {
            s.baseline()
        } else {
            s.newest(Source::Local)
        };
        found.ok().flatten().map(|(_, snapshot)| snapshot)
    };
    let before = store.as_ref().and_then(|s| stored(s, false));
    let baseline = store.as_ref().and_then(|s| stored(s, true));
    let first = store.is_some() && baseline.is_none();
    let baseline = baseline.as_ref().unwrap_or(&snapshot);
    let findings = policy.check(&snapshot, before.as_ref(), baseline);
    let said = said.unwrap_or_else(|| {
        before
            .as_ref()
            .map(|b| policy.check(b, None, baseline))
            .unwrap_or_default()
    });
    let fresh = policy::fresh(findings.clone(), &said);
    log(
        config.severity,
        &snapshot,
        (&findings, &fresh),
        first.then_some(&snapshot),
    );
    if let Some(store) = store.as_mut()
        && let Err(e) = store.save(&snapshot)
    {
        tracing::warn!("audit: {}", crate::exit::chain(&e));
    }
    Some(findings)
}

/// Logs the `fresh` findings (new, missing, restarted, moved at `severity`; gone at info), the
/// first look when this audit is the baseline, and the summary line.
fn log(
    severity: Severity,
    snapshot: &Snapshot,
    (findings, fresh): (&[Finding], &[Finding]),
    baseline: Option<&Snapshot>,
) {
    for f in fresh {
        use crate::report::{Act, Actor, Did, Mode};
        let mut act = Act::new(
            Did::Audit,
            Mode::Enforcing,
            Actor::Daemon,
            format!("audit: {}", f.line()),
        );
        let (address, port) = f.about();
        act.address = address.map(ipnet::IpNet::from);
        act.ports = port;
        act.finding = Some(f.word());
        super::log::act(
            &act,
            match (f.loudness(), severity) {
                (Loudness::Info, _) | (_, Severity::Info) => tracing::Level::INFO,
                (_, Severity::Error) => tracing::Level::ERROR,
                (_, Severity::Warning) => tracing::Level::WARN,
            },
        );
    }
    if let Some(baseline) = baseline {
        let rules: Vec<String> = policy::expect_list(baseline)
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(
            "audit: first look: {} services open, known from now on: {}",
            baseline.entries.len(),
            if rules.is_empty() {
                "none".to_string()
            } else {
                rules.join(" ")
            }
        );
    }
    if findings.is_empty() {
        tracing::info!(
            "audit: {} services open, nothing to report",
            snapshot.entries.len()
        );
    } else {
        tracing::info!(
            "audit: {} services open, {} findings, {} of them reported now (sentryctl audit \
             lists them)",
            snapshot.entries.len(),
            findings.len(),
            fresh.len()
        );
    }
}
