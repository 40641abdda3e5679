//! Blocks and offence history kept across restarts, in `STATE_DIR/state.json`. The format and
//! its conversions are **pure**; [`save`] and [`load`] are the **shell**.
//!
//! Writes are atomic: a temporary file in the same directory, flushed to disk, then renamed over
//! the old one (and the directory synced), so a crash leaves the old state or the new one, never
//! half of either.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::respond::{ActiveBlock, Why};
use crate::time::{Timestamp, WallOffset};
use crate::wire::Proto;

/// The file's format version.
const FORMAT: u32 = 1;
/// The file's name in the state directory.
pub const FILE: &str = "state.json";

/// What is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`FORMAT`].
    pub format: u32,
    /// Active blocks.
    pub blocks: Vec<SavedBlock>,
    /// Remembered offenders.
    pub offenders: Vec<SavedOffender>,
}

/// One block. Times are microseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedBlock {
    /// The blocked address or network.
    pub net: IpNet,
    /// When it was made.
    pub since: u64,
    /// When it ends.
    pub until: u64,
    /// Which offence it was.
    pub offence: u32,
    /// The scan kinds, or `manual`.
    pub kind: String,
    /// Trap ports, as `22/tcp`.
    pub ports: Vec<String>,
}

/// One offender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOffender {
    /// The source.
    pub net: IpNet,
    /// Offences remembered.
    pub count: u32,
    /// The last one (microseconds since the epoch).
    pub last: u64,
}

impl State {
    /// The state of a responder's blocks and offenders, whose times are the daemon's steady
    /// time; they are saved as the system clock reads them (`wall`: its offset from steady
    /// time now), which is what the next start, with its own steady clock, takes them from.
    pub fn new(
        blocks: impl IntoIterator<Item = ActiveBlock>,
        offenders: impl IntoIterator<Item = (IpNet, u32, Timestamp)>,
        wall: WallOffset,
    ) -> Self {
        State {
            format: FORMAT,
            blocks: blocks
                .into_iter()
                .map(|b| SavedBlock {
                    net: b.net,
                    since: wall.to_wall(b.since).as_micros(),
                    until: wall.to_wall(b.until).as_micros(),
                    offence: b.offence,
                    ports: b.why.port_labels(),
                    kind: b.why.kind,
                })
                .collect(),
            offenders: offenders
                .into_iter()
                .map(|(net, count, last)| SavedOffender {
                    net,
                    count,
                    last: wall.to_wall(last).as_micros(),
                })
                .collect(),
        }
    }

    /// The blocks, as the responder takes them back, in steady time (`wall`: the system
    /// clock's offset from it now).
    pub fn active_blocks(&self, wall: WallOffset) -> impl Iterator<Item = ActiveBlock> + '_ {
        self.blocks.iter().map(move |b| ActiveBlock {
            net: b.net,
            since: wall.from_wall(Timestamp::from_micros(b.since)),
            until: wall.from_wall(Timestamp::from_micros(b.until)),
            offence: b.offence,
            why: Why {
                kind: b.kind.clone(),
                ports: b.ports.iter().filter_map(|p| parse_port(p)).collect(),
            },
        })
    }

    /// The remembered offenders (source, offences, the last one), in steady time.
    pub fn offenders(
        &self,
        wall: WallOffset,
    ) -> impl Iterator<Item = (IpNet, u32, Timestamp)> + '_ {
        self.offenders.iter().map(move |o| {
            (
                o.net,
                o.count,
                wall.from_wall(Timestamp::from_micros(o.last)),
            )
        })
    }
}

fn parse_port(text: &str) -> Option<(Proto, u16)> {
    let (port, proto) = text.split_once('/')?;
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    Some((proto, port.parse().ok()?))
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file (or its directory) could not be read or written.
    #[error("cannot {doing} {}", path.display())]
    Io {
        /// `read` or `write`.
        doing: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not a state file of a version we know.
    #[error("{} is not a state file this sentryd can read", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the state in `dir`; no file is an empty state.
///
/// # Errors
///
/// When the file exists but cannot be read or parsed.
pub fn load(dir: &Path) -> Result<State, StateError> {
    let path = dir.join(FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(source) => {
            return Err(StateError::Io {
                doing: "read",
                path,
                source,
            });
        }
    };
    serde_json::from_slice(&text).map_err(|source| StateError::Format { path, source })
}

/// Writes `state` to `dir` atomically, creating `dir` (mode 0750) if needed.
///
/// # Errors
///
/// When the directory or file cannot be written (read-only, full, no permission).
pub fn save(dir: &Path, state: &State) -> Result<(), StateError> {
    let path = dir.join(FILE);
    let err = |source| StateError::Io {
        doing: "write",
        path: path.clone(),
        source,
    };
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(err)?;
    }
    let tmp = dir.join(format!("{FILE}.tmp"));
    let body = serde_json::to_vec(state).expect("the state always serializes");
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "scansentry-state-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }

    #[test]
    fn saved_state_reads_back_the_same() {
        let dir = temp_dir();
        let block = ActiveBlock {
            net: "203.0.113.7/32".parse().unwrap(),
            since: Timestamp::from_micros(1),
            until: Timestamp::from_micros(2),
            offence: 3,
            why: Why {
                kind: "syn+fin".into(),
                ports: vec![(Proto::Tcp, 22), (Proto::Udp, 53)],
            },
        };
        let offender = (
            "2001:db8::/64".parse().unwrap(),
            2,
            Timestamp::from_micros(5),
        );
        let state = State::new([block.clone()], [offender], WallOffset::default());
        save(&dir, &state).unwrap();
        let back = load(&dir).unwrap();
        assert_eq!(back, state);
        let read: Vec<ActiveBlock> = back.active_blocks(WallOffset::default()).collect();
        assert_eq!(read, std::slice::from_ref(&block));
        assert_eq!(
            back.offenders(WallOffset::default()).collect::<Vec<_>>(),
            [offender]
        );
        // Saved after the system clock was stepped forward by 10 µs: the file holds the
        // system clock's times, and reads back the same with that offset.
        let stepped = WallOffset::from_micros(10);
        let state = State::new([block.clone()], [offender], stepped);
        assert_eq!((state.blocks[0].since, state.blocks[0].until), (11, 12));
        assert_eq!(state.offenders[0].last, 15);
        assert_eq!(state.active_blocks(stepped).collect::<Vec<_>>(), [block]);
        assert_eq!(state.offenders(stepped).collect::<Vec<_>>(), [offender]);
        assert!(!dir.join("state.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_file_is_an_empty_state_and_garbage_is_an_error() {
        let dir = temp_dir();
        assert_eq!(load(&dir).unwrap(), State::default());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE), "{not json").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.ends_with("state.json is not a state file this sentryd can read"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
