//! The daemon's side of the control socket. **Shell.**
//!
//! One thread accepts connections and gives each a short-lived thread of its own, which checks
//! the peer's credentials, reads one bounded request (all of it within [`REQUEST_DEADLINE`], one
//! request per connection), hands it to the daemon's main loop and writes back the answer. The
//! main loop never waits for a client, and a client that sends nothing holds up nobody else.
//!
//! Who gets in ([`admits`]): root and the members of group `scansentry`; never the daemon's
//! own user unless it is root, nor a program the daemon started (its `on-block` program).
//!
//! Slots ([`Slots`]): at most [`MAX_CLIENTS`] connections at once, of which the last
//! [`ROOT_RESERVE`] only for root, and at most [`MAX_PER_USER`] of any other one user; past
//! that a connection is closed at once. So one user's slow clients can neither hold every slot
//! nor keep root out.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Group, Uid, User};

use super::GROUP;
use super::protocol::{
    Envelope, MAX_MESSAGE, Request, Response, VERSION, read_message, write_message,
};
use crate::time::{Clock, SteadyClock, Timestamp};

/// Connections served at once at most.
pub const MAX_CLIENTS: usize = 32;
/// Of [`MAX_CLIENTS`], this many are root's alone.
pub const ROOT_RESERVE: usize = 4;
/// Connections of one user other than root at once at most.
pub const MAX_PER_USER: usize = 8;
/// A client has this long, in all, to send its request (not per read: a byte now and then
/// does not keep a slot).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// Who holds the connection slots. **Pure.**
#[derive(Debug, Default)]
pub struct Slots {
    total: usize,
    /// Per user holding one or more (at most [`MAX_CLIENTS`] entries).
    per_uid: HashMap<u32, usize>,
}

impl Slots {
    /// Takes a slot for a connection of `uid`, if the limits allow.
    pub fn admit(&mut self, uid: u32) -> bool {
        let root = uid == 0;
        let limit = if root {
            MAX_CLIENTS
        } else {
            MAX_CLIENTS - ROOT_RESERVE
        };
        let mine = self.per_uid.get(&uid).copied().unwrap_or(0);
        if self.total >= limit || (!root && mine >= MAX_PER_USER) {
            return false;
        }
        self.total += 1;
        self.per_uid.insert(uid, mine + 1);
        true
    }

    /// Gives back a slot of `uid`.
    pub fn release(&mut self, uid: u32) {
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
            self.total -= 1;
        }
    }
}

/// A stream whose reads can be given a time limit.
pub trait Timed {
    /// As `set_read_timeout` of std's streams.
    ///
    /// # Errors
    ///
    /// What the OS said.
    fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()>;
}

impl Timed for UnixStream {
    fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, limit)
    }
}

impl Timed for std::net::TcpStream {
    fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, limit)
    }
}

/// Reads from a stream until a deadline, `limit` after it was made: each read waits at most
/// for the time left, so a byte now and then does not stretch it. Past it a read fails with
/// [`io::ErrorKind::TimedOut`], saying so.
pub struct Deadline<'a, S> {
    stream: &'a S,
    until: Timestamp,
    limit: Duration,
    clock: SteadyClock,
}

impl<'a, S: Timed> Deadline<'a, S> {
    /// Reads of `stream` for `limit` from now.
    pub fn new(stream: &'a S, limit: Duration) -> Self {
        let clock = SteadyClock::new();
        Deadline {
            stream,
            until: clock.now().saturating_add(limit),
            limit,
            clock,
        }
    }

    /// The time left (zero once past the deadline).
    pub fn left(&self) -> Duration {
        self.until.saturating_since(self.clock.now())
    }
}

impl<S: Timed> Read for Deadline<'_, S>
where
    for<'b> &'b S: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let late = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request did not arrive within {}s",
                    self.limit.as_secs_f64()
                ),
            )
        };
        let left = self.left();
        if left.is_zero() {
            return Err(late());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        match stream.read(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(late())
            }
            other => other,
        }
    }
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another daemon answers on it.
    #[error("another sentryd is already listening on {}", .0.display())]
    InUse(PathBuf),
    /// Something that is not a socket is in the way; it is left alone.
    #[error("{} exists and is not a socket; not removing it", .0.display())]
    NotASocket(PathBuf),
    /// The OS refused.
    #[error("cannot listen on {}", path.display())]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A bound control socket.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    group: Option<Gid>,
}

/// Makes way for a Unix socket at `path`: removes a stale socket there, but never another
/// file, nor a socket something answers on.
///
/// # Errors
///
/// [`BindError::NotASocket`], [`BindError::InUse`], or what the file system said.
pub fn clear_stale_socket(path: &Path) -> Result<(), BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(BindError::NotASocket(path.to_path_buf())),
        Ok(_) => {
            if UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io_err)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

impl Server {
    /// Binds `path` (mode 0660, group `scansentry` when it exists), removing a stale socket
    /// but never another file, nor a socket another daemon answers on.
    ///
    /// # Errors
    ///
    /// See [`BindError`].
    pub fn bind(path: &Path) -> Result<Self, BindError> {
        let io_err = |source| BindError::Io {
            path: path.to_path_buf(),
            source,
        };
        clear_stale_socket(path)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        let group = Group::from_name(GROUP).ok().flatten().map(|g| g.gid);
        if let Some(gid) = group {
            nix::unistd::chown(path, None, Some(gid)).map_err(|e| io_err(e.into()))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            group,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves forever on a thread of its own, handing each request and where to answer it to
    /// `submit` (which returns false once the daemon no longer takes requests). The daemon
    /// removes the socket file when it stops.
    pub fn spawn(
        self,
        submit: impl Fn(Request, u32, Sender<Response>) -> bool + Send + Sync + 'static,
    ) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                let server = Arc::new(self);
                let submit = Arc::new(submit);
                let slots = Arc::new(Mutex::new(Slots::default()));
                for stream in server.listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let Ok(cred) = getsockopt(&stream, sockopt::PeerCredentials) else {
                        continue;
                    };
                    let uid = cred.uid();
                    // No code holding the lock can panic; a poisoned lock still has whole counts.
                    let admitted = slots
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .admit(uid);
                    if !admitted {
                        // Closed unanswered: its client sees the connection end.
                        continue;
                    }
                    let (server, submit, done) =
                        (Arc::clone(&server), Arc::clone(&submit), Arc::clone(&slots));
                    let release = move || {
                        done.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .release(uid);
                    };
                    let release_here = release.clone();
                    let spawned = std::thread::Builder::new()
                        .name("control-client".into())
                        .spawn(move || {
                            if let Err(e) = server.serve(stream, uid, &*submit) {
                                tracing::warn!("control connection: {e}");
                            }
                            release();
                        });
                    if spawned.is_err() {
                        release_here();
                    }
                }
            })
            .expect("spawning a thread")
    }

    fn serve(
        &self,
        mut stream: UnixStream,
        uid: u32,
        submit: &(impl Fn(Request, u32, Sender<Response>) -> bool + ?Sized),
    ) -> io::Result<()> {
        stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
        let mut request = Deadline::new(&stream, REQUEST_DEADLINE);
        let answer = match self.authorised(&stream) {
            Err(why) => {
                // Taken in, unread, so that the client is not still writing when the refusal
                // comes (it would see a broken pipe instead of why).
                let _ = skip_message(&mut request);
                Response::Error { message: why }
            }
            Ok(()) => match read_message::<Envelope<Request>>(&mut request) {
                Err(e) => Response::Error {
                    message: format!("bad request: {}", crate::exit::chain(&e)),
                },
                Ok(req) if req.version != VERSION => Response::Error {
                    message: format!(
                        "sentryctl speaks control protocol version {}, this sentryd speaks {VERSION}: \
                         use the sentryctl that came with this sentryd",
                        req.version
                    ),
                },
                Ok(req) => {
                    let (tx, rx) = mpsc::channel();
                    if !submit(req.body, uid, tx) {
                        Response::Error {
                            message: "sentryd is shutting down".into(),
                        }
                    } else {
                        rx.recv_timeout(Duration::from_secs(10))
                            .unwrap_or_else(|_| Response::Error {
                                message: "sentryd did not answer in time".into(),
                            })
                    }
                }
            },
        };
        write_message(
            &mut stream,
            &Envelope {
                version: VERSION,
                body: answer,
            },
        )
        .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Who the peer is ([`Peer`]), then [`admits`].
    fn authorised(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = getsockopt(stream, sockopt::PeerCredentials)
            .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
        let peer = Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
            started_by_us: descends_from(cred.pid(), std::process::id()),
        };
        let group = self.group.map(Gid::as_raw);
        admits(&peer, nix::unistd::geteuid().as_raw(), group, || {
            let Some(group) = self.group else {
                return false;
            };
            let Ok(Some(user)) = User::from_uid(Uid::from_raw(peer.uid)) else {
                return false;
            };
            let name = std::ffi::CString::new(user.name).unwrap_or_default();
            nix::unistd::getgrouplist(&name, user.gid).is_ok_and(|gs| gs.contains(&group))
        })
    }
}

/// A client of the socket, as the kernel and /proc say.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Its user (`SO_PEERCRED`).
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its process.
    pub pid: i32,
    /// Whether that process is one the daemon started, or a descendant of one (its `on-block`
    /// program, what that started).
    pub started_by_us: bool,
}

/// Reads one framed message (its length, then at most [`MAX_MESSAGE`] bytes of it) and throws
/// it away, unparsed.
fn skip_message(r: &mut impl Read) -> io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u64::from(u32::from_be_bytes(len)).min(MAX_MESSAGE as u64);
    io::copy(&mut r.take(len), &mut io::sink())?;
    Ok(())
}

/// Who may use the control socket. **Pure.** Never a program the daemon started, whatever its
/// user (the `on-block` program, and what it starts), nor the daemon's own user unless that is
/// root (the program runs as it, without capabilities, and cannot change it: under the unit that
/// user is `scansentry`, whose primary group is the control group); then root, and the members
/// of the control group (`group`: by primary group, or `member` when asked). The socket's mode
/// already keeps others out; this holds even if it is changed.
///
/// # Errors
///
/// Why the peer is refused, as its client is told.
pub fn admits(
    peer: &Peer,
    daemon_uid: u32,
    group: Option<u32>,
    member: impl FnOnce() -> bool,
) -> Result<(), String> {
    if peer.uid == daemon_uid && daemon_uid != 0 {
        return Err(format!(
            "permission denied: uid {} is sentryd's own, which its on-block program runs as; \
             use root or another member of group {GROUP}",
            peer.uid
        ));
    }
    if peer.started_by_us {
        return Err(format!(
            "permission denied: process {} was started by sentryd (its on-block program, or \
             what that started)",
            peer.pid
        ));
    }
    if peer.uid == 0 || group.is_some_and(|g| g == peer.gid) || (group.is_some() && member()) {
        return Ok(());
    }
    Err(format!(
        "permission denied: uid {} is neither root nor in group {GROUP}",
        peer.uid
    ))
}

/// How many parents [`descends_from`] climbs at most.
const MAX_ANCESTORS: usize = 1024;

/// Whether process `pid` is a descendant of `ancestor` (a child, a child's child, …; not
/// `ancestor` itself), by the parents /proc gives; false when /proc does not say (a process
/// gone, or hidden from us).
pub fn descends_from(pid: i32, ancestor: u32) -> bool {
    let Ok(ancestor) = i32::try_from(ancestor) else {
        return false;
    };
    let mut at = pid;
    for _ in 0..MAX_ANCESTORS {
        if at <= 1 || at == ancestor {
            return false;
        }
        match parent_of(at) {
            Some(parent) if parent == ancestor => return true,
            Some(parent) => at = parent,
            None => return false,
        }
    }
    false
}

/// The parent of process `pid`: the field after the state in /proc/PID/stat (the command name
/// before them is in parentheses and may hold anything, so the text after the last `)`).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn one_user_holds_at_most_its_share_and_root_keeps_its_reserve() {
        let mut slots = Slots::default();
        // One user: eight connections, no more.
        let mine = (0..40).filter(|_| slots.admit(1000)).count();
        assert_eq!(mine, MAX_PER_USER);
        // Other users fill what is left but the root reserve.
        let others = (1001..1100).filter(|&u| slots.admit(u)).count();
        assert_eq!(others, MAX_CLIENTS - ROOT_RESERVE - MAX_PER_USER);
        assert!(!slots.admit(2000));
        // Root still gets in, up to the total.
        let root = (0..10).filter(|_| slots.admit(0)).count();
        assert_eq!(root, ROOT_RESERVE);
        // A slot given back is a slot to take (the root reserve given back first).
        for _ in 0..ROOT_RESERVE {
            slots.release(0);
        }
        slots.release(1000);
        assert!(slots.admit(1000));
        assert!(!slots.admit(1000));
        for _ in 0..MAX_PER_USER {
            slots.release(1000);
        }
        assert!(!slots.per_uid.contains_key(&1000), "no entry left behind");
    }

    /// Issue 24, 11: the on-block program drove the socket as the daemon's user and lifted
    /// every block. Neither the daemon's own user (unless root) nor a process it started gets
    /// in, whatever its groups; root and the control group's other members do.
    #[test]
    fn issue_24_the_daemons_own_user_and_what_it_started_are_refused() {
        let peer = |uid, gid, started_by_us| Peer {
            uid,
            gid,
            pid: 4242,
            started_by_us,
        };
        let (daemon, group) = (998, Some(998));
        let never = || panic!("not asked");
        // Under the unit: user and group scansentry (998).
        let own = admits(&peer(998, 998, false), daemon, group, never).unwrap_err();
        assert_eq!(
            own,
            "permission denied: uid 998 is sentryd's own, which its on-block program runs as; \
             use root or another member of group scansentry"
        );
        assert!(admits(&peer(998, 998, false), daemon, group, || true).is_err());
        assert!(admits(&peer(1000, 998, false), daemon, group, never).is_ok());
        assert!(admits(&peer(1000, 100, false), daemon, group, || true).is_ok());
        assert!(admits(&peer(1000, 100, false), daemon, group, || false).is_err());
        assert!(admits(&peer(1000, 100, false), daemon, None, never).is_err());
        assert!(admits(&peer(0, 0, false), daemon, group, never).is_ok());
        // Root's daemon: its program runs as root; it is known as the daemon's descendant.
        assert!(admits(&peer(0, 0, false), 0, group, never).is_ok());
        let started = admits(&peer(0, 0, true), 0, group, never).unwrap_err();
        assert_eq!(
            started,
            "permission denied: process 4242 was started by sentryd (its on-block program, or \
             what that started)"
        );
        assert!(admits(&peer(1000, 998, true), daemon, group, never).is_err());
    }

    /// A child of this process, and its child, descend from it; this process's parent and
    /// init do not.
    #[test]
    fn descendants_are_told_by_their_parents() {
        let me = std::process::id();
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 5 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let child_pid = i32::try_from(child.id()).unwrap();
        assert!(descends_from(child_pid, me));
        assert!(descends_from(grandchild, me));
        let parent = i32::try_from(std::os::unix::process::parent_id()).unwrap();
        assert!(!descends_from(parent, me));
        assert!(!descends_from(1, me));
        assert!(!descends_from(i32::try_from(me).unwrap(), me), "itself");
        assert!(!descends_from(i32::MAX, me), "no such process");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(grandchild),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
    }

    /// Issue 13, 6: the 2-second timeout was per read, so a client sending a byte every 1.5 s
    /// held its slot for ever. The deadline is for the whole request.
    #[test]
    fn issue_13_a_byte_now_and_then_does_not_keep_a_slot() {
        let dir = std::env::temp_dir().join(format!("scansentry-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        let server = Server::bind(&path).unwrap();
        server.spawn(|_request, _uid, reply| {
            reply
                .send(Response::Reloaded { config: "x".into() })
                .is_ok()
        });
        let mut slow = UnixStream::connect(&path).unwrap();
        slow.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        // A length of 100 bytes, then one byte of it every 400 ms (at most 25 of them): the
        // server gives up after 2 s in all and says why.
        slow.write_all(&100u32.to_be_bytes()).unwrap();
        let mut answer = Vec::new();
        for _ in 0..25 {
            if slow.write_all(b" ").is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            match slow.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.contains("bad request: connection failed: the request did not arrive within 2s"),
            "the server kept the slow client: {text:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
