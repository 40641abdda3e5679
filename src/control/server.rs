//! The daemon's side of the control socket. **Shell.**
//!
//! One thread accepts connections and gives each a short-lived thread of its own, which checks
//! the peer's credentials, reads one bounded request (all of it within [`REQUEST_DEADLINE`], one
//! request per connection), hands it to the daemon's main loop and writes back the answer. The
//! main loop never waits for a client, and a client that sends nothing holds up nobody else.
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
use super::protocol::{Envelope, Request, Response, VERSION, read_message, write_message};
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

/// Reads from a stream until a deadline: each read waits at most for the time left.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Timestamp,
    clock: SteadyClock,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let late = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request did not arrive within {}s",
                    REQUEST_DEADLINE.as_secs()
                ),
            )
        };
        let left = self.until.saturating_since(self.clock.now());
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
        submit: impl Fn(Request, Sender<Response>) -> bool + Send + Sync + 'static,
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
                            if let Err(e) = server.serve(stream, &*submit) {
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
        submit: &(impl Fn(Request, Sender<Response>) -> bool + ?Sized),
    ) -> io::Result<()> {
        stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
        let clock = SteadyClock::new();
        let mut request = Deadline {
            stream: &stream,
            until: clock.now().saturating_add(REQUEST_DEADLINE),
            clock,
        };
        let answer = match self.authorised(&stream) {
            Err(why) => Response::Error { message: why },
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
                    if !submit(req.body, tx) {
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

    /// Root, the daemon's own user, and members of group `scansentry` may use the socket. The
    /// socket's mode already keeps others out; this holds even if it is changed.
    fn authorised(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = getsockopt(stream, sockopt::PeerCredentials)
            .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
        let uid = Uid::from_raw(cred.uid());
        if uid.is_root() || uid == nix::unistd::geteuid() {
            return Ok(());
        }
        if let Some(group) = self.group {
            if Gid::from_raw(cred.gid()) == group {
                return Ok(());
            }
            if let Ok(Some(user)) = User::from_uid(uid) {
                let name = std::ffi::CString::new(user.name).unwrap_or_default();
                if nix::unistd::getgrouplist(&name, user.gid).is_ok_and(|gs| gs.contains(&group)) {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "permission denied: uid {uid} is neither root nor in group {GROUP}"
        ))
    }
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

    /// Issue 13, 6: the 2-second timeout was per read, so a client sending a byte every 1.5 s
    /// held its slot for ever. The deadline is for the whole request.
    #[test]
    fn issue_13_a_byte_now_and_then_does_not_keep_a_slot() {
        let dir = std::env::temp_dir().join(format!("scansentry-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        let server = Server::bind(&path).unwrap();
        server.spawn(|_request, reply| {
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
