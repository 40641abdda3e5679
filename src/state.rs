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

use crate::fleet::message::HostName;
use crate::respond::{ActiveBlock, MAX_BLOCK_FOR, Why};
use crate::time::{Timestamp, WallOffset};
use crate::wire::Proto;

/// The file's format version.
const FORMAT: u32 = 1;
/// The file's name in the state directory.
pub const FILE: &str = "state.json";

/// What is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `FORMAT`.
    pub format: u32,
    /// Active blocks.
    pub blocks: Vec<SavedBlock>,
    /// Remembered offenders.
    pub offenders: Vec<SavedOffender>,
    /// The blocks were in own mode's table when saved (enforcing, nftables, `mode = "own"`):
    /// a start that finds that table still there takes a block missing from it as deleted
    /// outside scansentry. Absent (older files, a dry run, another firewall): a start puts
    /// back whatever is missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_table: bool,
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
    /// The host of the fleet that detected it, for a block taken from the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<HostName>,
    /// The tool its probes looked like (`nmap OS detection (SEQ1, SEQ2, SEQ3)`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
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
                    origin: b.why.origin,
                    signature: b.why.signature,
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
            in_table: false,
        }
    }

    /// The same, saying whether its blocks are in own mode's table ([`State::in_table`]).
    #[must_use]
    pub fn in_table(mut self, in_table: bool) -> Self {
        self.in_table = in_table;
        self
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
                ports: b
                    .ports
                    .iter()
                    .filter_map(|p| Proto::parse_label(p))
                    .collect(),
                origin: b.origin.clone(),
                signature: b.signature.clone(),
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

/// At most this many trap ports of a restored block are kept (a detection holds at most
/// `[detect] max-ports-per-source`, which is far fewer).
const MAX_SAVED_PORTS: usize = 1024;
/// A restored block's kind longer than this, or with control characters, is `unknown`.
const MAX_KIND: usize = 64;
/// A restored block's signature longer than this (a sentryd writes at most 87 bytes: every nmap
/// OS probe's name), or with control characters, is dropped.
pub const MAX_SIGNATURE: usize = 96;

/// The restored blocks a sentryd could have written, in steady time at `now`: none that ends
/// more than [`MAX_BLOCK_FOR`] from now (the kernel would refuse it, or keep it for ages), none
/// that starts after it ends, no second block of one network, at most `max_blocks` of each
/// address family (those ending last are kept); host bits cleared, odd kinds named `unknown`, ports capped. Returns
/// them with one warning per kind of problem, naming the first case. A state file is input
/// like any other: hostile or corrupt, it must not decide more than a running sentryd could.
pub fn restorable(
    blocks: impl IntoIterator<Item = ActiveBlock>,
    now: Timestamp,
    max_blocks: usize,
) -> (Vec<ActiveBlock>, Vec<String>) {
    let mut kept: Vec<ActiveBlock> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let (mut too_long, mut backwards, mut twice) = (Vec::new(), Vec::new(), Vec::new());
    for mut b in blocks {
        b.net = b.net.trunc();
        if b.until < b.since {
            backwards.push(b.net);
        } else if b.until.saturating_since(now) > MAX_BLOCK_FOR + SLACK {
            too_long.push(b.net);
        } else if !seen.insert(b.net) {
            twice.push(b.net);
        } else {
            if b.why.kind.len() > MAX_KIND || b.why.kind.chars().any(char::is_control) {
                b.why.kind = "unknown".into();
            }
            b.why.ports.truncate(MAX_SAVED_PORTS);
            if b.why
                .signature
                .as_ref()
                .is_some_and(|s| s.len() > MAX_SIGNATURE || s.chars().any(char::is_control))
            {
                b.why.signature = None;
            }
            kept.push(b);
        }
    }
    let mut warnings = Vec::new();
    let mut say = |nets: &[IpNet], what: String| {
        if let Some(first) = nets.first() {
            warnings.push(format!(
                "{FILE}: left out {} block{}: {what} (the first: {first})",
                nets.len(),
                if nets.len() == 1 { "" } else { "s" },
            ));
        }
    };
    say(
        &too_long,
        format!(
            "ends more than {} from now, the longest a block may be",
            crate::text::human(MAX_BLOCK_FOR)
        ),
    );
    say(&backwards, "ends before it starts".into());
    say(&twice, "repeats a network".into());
    // `max-blocks` holds per address family.
    kept.sort_by_key(|b| std::cmp::Reverse(b.until));
    let mut in_family = [0usize; 2];
    let mut dropped = Vec::new();
    kept.retain(|b| {
        let n = &mut in_family[usize::from(b.net.addr().is_ipv6())];
        *n += 1;
        if *n > max_blocks {
            dropped.push(b.net);
        }
        *n <= max_blocks
    });
    say(
        &dropped,
        format!(
            "past [respond] max-blocks = {max_blocks} of an address family (those ending last \
             are kept)"
        ),
    );
    (kept, warnings)
}

/// What a clock step between save and start may add to a block's end.
const SLACK: std::time::Duration = std::time::Duration::from_secs(3600);

/// The largest state file [`load`] reads for `max_blocks` blocks of each address family: a KiB
/// a block and 128 bytes an offender (twice `max_blocks`), with a MiB to spare; a file a
/// sentryd writes stays far below.
pub fn size_limit(max_blocks: usize) -> u64 {
    let max_blocks = u64::try_from(max_blocks).unwrap_or(u64::MAX);
    (1_u64 << 20)
        .saturating_add(max_blocks.saturating_mul(2 * 1024))
        .saturating_add(max_blocks.saturating_mul(256))
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
    /// Not a regular file: a FIFO (whose read would wait for a writer for ever), a link (never
    /// followed), a directory, a device.
    #[error("{} is {what}, not a regular file; not reading it", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is: `a symbolic link`, `a FIFO`, …
        what: &'static str,
    },
    /// The file is larger than the configuration allows (see [`size_limit`]).
    #[error(
        "{} is larger than {limit} bytes, the most [respond] max-blocks allows; not reading it",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
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

/// Reads the state in `dir`, at most `limit` bytes of it; no file is an empty state. What it
/// holds is checked by [`restorable`] before it is used.
///
/// The file is opened without following a link and without waiting (`O_NOFOLLOW |
/// O_NONBLOCK`, and close-on-exec), then read only if it is a regular file: a FIFO, a link,
/// a directory or a device planted where it goes is refused at once, and never read.
///
/// # Errors
///
/// When the file exists but is not a regular file, cannot be read, is larger than `limit`, or
/// is not a state file.
pub fn load(dir: &Path, limit: u64) -> Result<State, StateError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let path = dir.join(FILE);
    let io_error = |path: &Path, source| StateError::Io {
        doing: "read",
        path: path.to_path_buf(),
        source,
    };
    let not_a_file = |path: &Path, what| StateError::NotAFile {
        path: path.to_path_buf(),
        what,
    };
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    // std opens every file close-on-exec.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        // O_NOFOLLOW's answer for a link.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(not_a_file(&path, "a symbolic link"));
        }
        Err(source) => return Err(io_error(&path, source)),
    };
    let kind = file
        .metadata()
        .map_err(|source| io_error(&path, source))?
        .file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(not_a_file(&path, what));
    }
    let mut text = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|source| io_error(&path, source))?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > limit {
        return Err(StateError::TooLarge { path, limit });
    }
    let state: State =
        serde_json::from_slice(&text).map_err(|source| StateError::Format { path, source })?;
    Ok(state)
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
        use std::os::unix::fs::OpenOptionsExt;
        // A new file, never one that is there: a link planted in the directory (another user
        // may own it while sentryd runs as root) is removed, not followed.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)?;
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

/// `sentryd --remove-blocks` lifted every block: the state file in `dir` (at most `limit`
/// bytes read) keeps none of them, so that no start puts one back; its offence history stays
/// (a scanner that comes back still counts as a repeat). Returns how many blocks it forgot;
/// no file, or one without blocks, is left as it is (nothing is created).
///
/// # Errors
///
/// When the file cannot be read (a start would not take its blocks back either) or written.
pub fn forget_blocks(dir: &Path, limit: u64) -> Result<usize, StateError> {
    let mut state = load(dir, limit)?;
    let forgot = std::mem::take(&mut state.blocks).len();
    if forgot > 0 {
        save(dir, &state)?;
    }
    Ok(forgot)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 26, 4: after `--remove-blocks` the state file holds no block (no start puts one
    /// back), and the offence history stays; no file is not created.
    #[test]
    fn issue_26_removal_forgets_the_saved_blocks_and_keeps_the_offences() {
        let dir = temp_dir();
        assert_eq!(forget_blocks(&dir, size_limit(1)).unwrap(), 0);
        assert!(!dir.exists(), "no state, nothing written");
        let block = |s: &str| ActiveBlock {
            net: s.parse().unwrap(),
            since: Timestamp::from_micros(1),
            until: Timestamp::from_micros(u64::MAX / 2),
            offence: 2,
            why: Why::manual(),
        };
        let offender = (
            "203.0.113.7/32".parse().unwrap(),
            2,
            Timestamp::from_micros(5),
        );
        let state = State::new(
            [block("203.0.113.7/32"), block("2001:db8:bad::/48")],
            [offender],
            WallOffset::default(),
        );
        save(&dir, &state).unwrap();
        assert_eq!(forget_blocks(&dir, size_limit(2)).unwrap(), 2);
        let back = load(&dir, size_limit(2)).unwrap();
        assert_eq!(back.active_blocks(WallOffset::default()).count(), 0);
        assert_eq!(
            back.offenders(WallOffset::default()).collect::<Vec<_>>(),
            [offender]
        );
        assert_eq!(forget_blocks(&dir, size_limit(2)).unwrap(), 0);
        std::fs::write(dir.join(FILE), "{not json").unwrap();
        assert!(forget_blocks(&dir, size_limit(2)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
                // Taken from the fleet: its origin is kept too.
                origin: Some(HostName::new("web-3").unwrap()),
                signature: Some("nmap OS detection (SEQ1, SEQ2, SEQ3)".into()),
            },
        };
        let offender = (
            "2001:db8::/64".parse().unwrap(),
            2,
            Timestamp::from_micros(5),
        );
        let state = State::new([block.clone()], [offender], WallOffset::default());
        save(&dir, &state).unwrap();
        let back = load(&dir, size_limit(1)).unwrap();
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
        assert_eq!(load(&dir, size_limit(1)).unwrap(), State::default());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE), "{not json").unwrap();
        let err = load(&dir, size_limit(1)).unwrap_err().to_string();
        assert!(
            err.ends_with("state.json is not a state file this sentryd can read"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 13, 2: a state file is read with a size limit, and what it holds is checked.
    #[test]
    fn issue_13_a_state_file_past_its_limit_is_refused() {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let state = State::default();
        std::fs::write(dir.join(FILE), serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(load(&dir, 100).unwrap(), state);
        std::fs::write(dir.join(FILE), vec![b' '; 101]).unwrap();
        let err = load(&dir, 100).unwrap_err().to_string();
        assert!(
            err.ends_with("state.json is larger than 100 bytes, the most [respond] max-blocks allows; not reading it"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(size_limit(65_536), (1 << 20) + 65_536 * (2 * 1024 + 256));
    }

    #[test]
    fn issue_13_restored_blocks_are_only_what_a_sentryd_could_have_made() {
        let hour = std::time::Duration::from_secs(3600);
        let now = Timestamp::from_micros(1_000_000_000);
        let block = |net: &str, until: Timestamp, kind: &str| ActiveBlock {
            net: net.parse().unwrap(),
            since: now,
            until,
            offence: 1,
            why: Why {
                kind: kind.into(),
                ports: vec![(Proto::Tcp, 22); 2000],
                origin: None,
                signature: Some("x".repeat(5000)),
            },
        };
        let (kept, warnings) = restorable(
            [
                block("203.0.113.1/32", now.saturating_add(hour), "syn"),
                // 1000 years: the kernel would refuse it (ERANGE) and fail every batch after.
                block(
                    "203.0.113.51/32",
                    now.saturating_add(hour.saturating_mul(24 * 365 * 1000)),
                    "syn",
                ),
                block("203.0.113.1/32", now.saturating_add(hour), "syn"),
                ActiveBlock {
                    since: now.saturating_add(hour),
                    ..block("203.0.113.2/32", now, "syn")
                },
                block("203.0.113.77/24", now.saturating_add(hour), "evil\nline"),
                block("203.0.113.9/32", now.saturating_add(MAX_BLOCK_FOR), "syn"),
            ],
            now,
            2,
        );
        let nets: Vec<String> = kept.iter().map(|b| b.net.to_string()).collect();
        assert_eq!(nets, ["203.0.113.9/32", "203.0.113.1/32"]);
        assert!(kept.iter().all(|b| b.why.ports.len() == MAX_SAVED_PORTS));
        // A signature longer than any sentryd writes is dropped (issue 28).
        assert!(kept.iter().all(|b| b.why.signature.is_none()));
        assert_eq!(
            warnings,
            [
                "state.json: left out 1 block: ends more than 1y from now, the longest a \
                 block may be (the first: 203.0.113.51/32)",
                "state.json: left out 1 block: ends before it starts (the first: \
                 203.0.113.2/32)",
                "state.json: left out 1 block: repeats a network (the first: 203.0.113.1/32)",
                "state.json: left out 1 block: past [respond] max-blocks = 2 of an address \
                 family (those ending last are kept) (the first: 203.0.113.0/24)",
            ]
        );
        let (kept, _) = restorable(
            [block("203.0.113.77/24", now.saturating_add(hour), "x\ny")],
            now,
            9,
        );
        assert_eq!(kept[0].net.to_string(), "203.0.113.0/24");
        assert_eq!(kept[0].why.kind, "unknown");
    }

    /// Issue 24, 12: a FIFO planted where the state file is read hung the start for ever (the
    /// open waited for a writer). A FIFO, a link (even to a good state file), a directory:
    /// each refused at once, saying what it is; the load is run on a thread of its own so that
    /// a hang fails the test instead of holding it.
    #[test]
    fn issue_24_a_fifo_a_link_or_a_directory_as_the_state_file_is_refused_at_once() {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, serde_json::to_vec(&State::default()).unwrap()).unwrap();
        for what in ["a FIFO", "a symbolic link", "a directory"] {
            let at = dir.join(FILE);
            match what {
                "a FIFO" => {
                    nix::unistd::mkfifo(&at, nix::sys::stat::Mode::from_bits_truncate(0o600))
                        .unwrap();
                }
                "a symbolic link" => std::os::unix::fs::symlink(&good, &at).unwrap(),
                _ => std::fs::create_dir(&at).unwrap(),
            }
            let (tx, rx) = std::sync::mpsc::channel();
            let from = dir.clone();
            std::thread::spawn(move || {
                let _ = tx.send(load(&from, size_limit(1)).map_err(|e| e.to_string()));
            });
            let err = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{what}: the load hangs"))
                .expect_err(what);
            assert!(
                err.ends_with(&format!(
                    "state.json is {what}, not a regular file; not reading it"
                )),
                "{what}: {err}"
            );
            if at.is_dir() && !at.is_symlink() {
                std::fs::remove_dir(&at).unwrap();
            } else {
                std::fs::remove_file(&at).unwrap();
            }
        }
        // A regular file is read as before.
        std::fs::rename(&good, dir.join(FILE)).unwrap();
        assert_eq!(load(&dir, size_limit(1)).unwrap(), State::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 13, 4: a link planted where the temporary file goes is replaced, not followed
    /// (sentryd may run as root with a state directory another user owns).
    #[test]
    fn issue_13_saving_never_writes_through_a_planted_link() {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("precious");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("state.json.tmp")).unwrap();
        save(&dir, &State::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert_eq!(load(&dir, size_limit(1)).unwrap(), State::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
