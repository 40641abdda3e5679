//! The daemon's periodic audit, on a thread of its own (reading `/proc` and asking rpcbind
//! must not hold up packet capture). **Shell.**

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::audit::names::Names;
use crate::audit::store::Store;
use crate::audit::{Source, collect};
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
                loop {
                    let config = settings
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    if config.enabled {
                        audit_once(&config, &db);
                    }
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

/// One audit: the snapshot, its findings logged at the configured severity, the history
/// updated.
fn audit_once(config: &AuditConfig, db: &std::path::Path) {
    let now = SystemClock.now();
    let snapshot = match collect::local(&config.policy, &Names::load(), now) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("audit: cannot read the socket table: {e}");
            return;
        }
    };
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
    let before = store
        .as_ref()
        .and_then(|s| s.newest(Source::Local).ok().flatten());
    let findings = config
        .policy
        .check(&snapshot, before.as_ref().map(|(_, s)| s));
    for f in &findings {
        let line = format!("audit: {}", f.line());
        match config.severity {
            Severity::Error => tracing::error!("{line}"),
            Severity::Warning => tracing::warn!("{line}"),
            Severity::Info => tracing::info!("{line}"),
        }
    }
    tracing::info!(
        "audit: {} services open, {} findings",
        snapshot.entries.len(),
        findings.len()
    );
    if let Some(store) = store.as_mut()
        && let Err(e) = store.save(&snapshot)
    {
        tracing::warn!("audit: {}", crate::exit::chain(&e));
    }
}
