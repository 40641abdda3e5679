//! The audit history: snapshots in an SQLite database (`STATE_DIR/audit.sqlite`). **Shell.**
//!
//! A snapshot is stored only when it differs from the newest one of its source, so the
//! history grows with changes, not with time; the oldest snapshots beyond [`MAX_SNAPSHOTS`]
//! are dropped, but for the baseline: the first local snapshot, the audit's first look, which
//! [`Store::save`] records and [`Store::baseline`] gives.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Entry, Process, Snapshot, Source};
use crate::time::Timestamp;
use crate::wire::Proto;

/// The history's file in the state directory.
pub fn default_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit.sqlite")
}

/// Snapshots kept per source at most.
pub const MAX_SNAPSHOTS: i64 = 10_000;

/// The schema's version (`PRAGMA user_version`); version 1 had no baseline table, and its
/// first local snapshot becomes the baseline when it is opened.
const SCHEMA: i64 = 2;

/// Version 1 to 2: the baseline, its first local snapshot if it has one.
const BASELINE_TABLE: &str = "CREATE TABLE baseline (
         source TEXT PRIMARY KEY,
         snapshot INTEGER NOT NULL REFERENCES snapshots(id)
     );
     INSERT INTO baseline (source, snapshot)
         SELECT source, MIN(id) FROM snapshots WHERE source = 'local' GROUP BY source;
     PRAGMA user_version = 2;";

/// A history database could not be used.
#[derive(Debug, thiserror::Error)]
#[error("audit history {}: {source}", path.display())]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What was wrong.
    #[source]
    pub source: Fault,
}

/// What was wrong with a history database.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// What SQLite said.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// SQLite could open it only to read: its file belongs to another user (typically root,
    /// after `sentryd` was run by hand as root, while the unit runs as `scansentry`).
    #[error(
        "it can only be read by uid {uid}: the file belongs to uid {owner} (was sentryd run by \
         hand as another user?); `chown {uid}` the file to give it back"
    )]
    ReadOnly {
        /// This process's effective uid.
        uid: u32,
        /// The file's owner.
        owner: u32,
    },
}

/// An open history.
#[derive(Debug)]
pub struct Store {
    db: Connection,
    path: PathBuf,
}

/// A stored snapshot and its number.
pub type Stored = (i64, Snapshot);

impl Store {
    /// Opens (creating it if needed) the history at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or is not a history of this version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source: rusqlite::Error| StoreError {
            path: path.to_path_buf(),
            source: source.into(),
        };
        // No link anywhere in the path: a history in a directory another user writes must not
        // lead root's `sentryctl audit` to a file elsewhere.
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let db = Connection::open_with_flags(path, flags).map_err(err)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // SQLite opens a file it may not write read-only and fails only at the first write:
        // say at once whose it is, and how to give it back.
        if db.is_readonly(rusqlite::DatabaseName::Main).map_err(err)? {
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(path).map(|m| m.uid()).unwrap_or(u32::MAX);
            return Err(StoreError {
                path: path.to_path_buf(),
                source: Fault::ReadOnly {
                    uid: nix::unistd::geteuid().as_raw(),
                    owner,
                },
            });
        }
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version == 0 {
            db.execute_batch(
                "BEGIN;
                 CREATE TABLE snapshots (
                     id INTEGER PRIMARY KEY,
                     taken INTEGER NOT NULL,
                     source TEXT NOT NULL,
                     hosts TEXT NOT NULL
                 );
                 CREATE TABLE entries (
                     snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
                     host TEXT NOT NULL,
                     proto TEXT NOT NULL,
                     port INTEGER NOT NULL,
                     name TEXT,
                     rpc TEXT,
                     pid INTEGER,
                     exe TEXT,
                     user TEXT
                 );
                 CREATE INDEX entries_snapshot ON entries(snapshot);
                 CREATE INDEX snapshots_source_taken ON snapshots(source, taken);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(err)?;
        }
        if version <= 1 {
            db.execute_batch(&format!("BEGIN;\n{BASELINE_TABLE}\nCOMMIT;"))
                .map_err(err)?;
        } else if version != SCHEMA {
            return Err(err(rusqlite::Error::InvalidParameterName(format!(
                "schema version {version}, this scansentry knows {SCHEMA}"
            ))));
        }
        db.execute_batch("PRAGMA foreign_keys = ON;").map_err(err)?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    /// Stores `snapshot` unless it equals the newest of its source (but for the time); returns
    /// its number, or the number of the equal one. The first local snapshot becomes the
    /// baseline.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<i64, StoreError> {
        if let Some((id, newest)) = self.newest(snapshot.source)?
            && newest.entries == snapshot.entries
            && newest.hosts == snapshot.hosts
        {
            return Ok(id);
        }
        let hosts = serde_json::to_string(&snapshot.hosts).expect("addresses serialise");
        let tx = self.db.transaction().map_err(|e| StoreError {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let id = {
            tx.execute(
                "INSERT INTO snapshots (taken, source, hosts) VALUES (?1, ?2, ?3)",
                params![
                    i64::try_from(snapshot.taken.as_micros()).unwrap_or(i64::MAX),
                    snapshot.source.name(),
                    hosts
                ],
            )
            .map_err(|e| StoreError {
                path: self.path.clone(),
                source: e.into(),
            })?;
            let id = tx.last_insert_rowid();
            let mut insert = tx
                .prepare(
                    "INSERT INTO entries (snapshot, host, proto, port, name, rpc, pid, exe, user)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(|e| StoreError {
                    path: self.path.clone(),
                    source: e.into(),
                })?;
            for e in &snapshot.entries {
                insert
                    .execute(params![
                        id,
                        e.host.to_string(),
                        e.proto.as_str(),
                        e.port,
                        e.name,
                        e.rpc,
                        e.process.as_ref().map(|p| p.pid),
                        e.process.as_ref().and_then(|p| p.exe.clone()),
                        e.process.as_ref().map(|p| p.user.clone()),
                    ])
                    .map_err(|e| StoreError {
                        path: self.path.clone(),
                        source: e.into(),
                    })?;
            }
            if snapshot.source == Source::Local {
                tx.execute(
                    "INSERT OR IGNORE INTO baseline (source, snapshot) VALUES (?1, ?2)",
                    params![snapshot.source.name(), id],
                )
                .map_err(|e| StoreError {
                    path: self.path.clone(),
                    source: e.into(),
                })?;
            }
            // Bounded history: the oldest of this source go, but for the baseline.
            tx.execute(
                "DELETE FROM snapshots WHERE source = ?1 AND id NOT IN
                     (SELECT id FROM snapshots WHERE source = ?1 ORDER BY id DESC LIMIT ?2)
                     AND id NOT IN (SELECT snapshot FROM baseline)",
                params![snapshot.source.name(), MAX_SNAPSHOTS],
            )
            .map_err(|e| StoreError {
                path: self.path.clone(),
                source: e.into(),
            })?;
            id
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// The newest snapshot of `source`.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn newest(&self, source: Source) -> Result<Option<Stored>, StoreError> {
        self.find(
            "SELECT id, taken, hosts FROM snapshots WHERE source = ?1 ORDER BY id DESC LIMIT 1",
            params![source.name()],
            source,
        )
    }

    /// The baseline: the audit's first look at this host (`None` before the first audit).
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn baseline(&self) -> Result<Option<Stored>, StoreError> {
        self.find(
            "SELECT id, taken, hosts FROM snapshots
             WHERE id = (SELECT snapshot FROM baseline WHERE source = ?1)",
            params![Source::Local.name()],
            Source::Local,
        )
    }

    /// The newest snapshot of `source` taken at or before `at`.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn at_or_before(
        &self,
        source: Source,
        at: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        self.find(
            "SELECT id, taken, hosts FROM snapshots WHERE source = ?1 AND taken <= ?2
             ORDER BY taken DESC, id DESC LIMIT 1",
            params![
                source.name(),
                i64::try_from(at.as_micros()).unwrap_or(i64::MAX)
            ],
            source,
        )
    }

    /// Snapshot number `id`, if it is one of `source`.
    ///
    /// # Errors
    ///
    /// SQLite's.
    pub fn get(&self, source: Source, id: i64) -> Result<Option<Stored>, StoreError> {
        self.find(
            "SELECT id, taken, hosts FROM snapshots WHERE source = ?1 AND id = ?2",
            params![source.name(), id],
            source,
        )
    }

    fn find(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        source: Source,
    ) -> Result<Option<Stored>, StoreError> {
        let head = self
            .db
            .query_row(sql, args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((id, taken, hosts)) = head else {
            return Ok(None);
        };
        let hosts: Vec<IpAddr> = serde_json::from_str(&hosts).unwrap_or_default();
        let mut query = self
            .db
            .prepare(
                "SELECT host, proto, port, name, rpc, pid, exe, user FROM entries
                 WHERE snapshot = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = query
            .query_map(params![id], |r| {
                let host: String = r.get(0)?;
                let proto: String = r.get(1)?;
                let pid: Option<u32> = r.get(5)?;
                let exe: Option<String> = r.get(6)?;
                let user: Option<String> = r.get(7)?;
                Ok((
                    host,
                    proto,
                    r.get::<_, u16>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    pid,
                    exe,
                    user,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut entries = Vec::new();
        for row in rows {
            let (host, proto, port, name, rpc, pid, exe, user) = row.map_err(|e| self.err(e))?;
            // Rows this code wrote always parse; anything else is skipped, not trusted.
            let (Ok(host), Some(proto)) = (
                host.parse::<IpAddr>(),
                match proto.as_str() {
                    "tcp" => Some(Proto::Tcp),
                    "udp" => Some(Proto::Udp),
                    _ => None,
                },
            ) else {
                continue;
            };
            entries.push(Entry {
                host,
                proto,
                port,
                name,
                rpc,
                process: pid.map(|pid| Process {
                    pid,
                    exe,
                    user: user.unwrap_or_default(),
                }),
            });
        }
        let taken = Timestamp::from_micros(u64::try_from(taken).unwrap_or(0));
        Ok(Some((id, Snapshot::new(taken, source, hosts, entries))))
    }
}
