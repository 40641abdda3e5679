//! The daemon's side of the control socket. **Shell.**
//!
//! One thread accepts connections and gives each a short-lived thread of its own (at most
//! [`MAX_CLIENTS`] at once; past that a connection is closed at once), which checks the peer's
//! credentials, reads one bounded request (2 s read and write timeouts, one request per
//! connection), hands it to the daemon's main loop and writes back the answer. The main loop
//! never waits for a client, and a client that sends nothing holds up nobody else.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Group, Uid, User};

use super::GROUP;
use super::protocol::{Envelope, Request, Response, VERSION, read_message, write_message};

/// Connections served at once at most.
pub const MAX_CLIENTS: usize = 32;

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
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(BindError::NotASocket(path.to_path_buf()));
            }
            Ok(_) => {
                if UnixStream::connect(path).is_ok() {
                    return Err(BindError::InUse(path.to_path_buf()));
                }
                std::fs::remove_file(path).map_err(io_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
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
                let busy = Arc::new(AtomicUsize::new(0));
                for stream in server.listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                        // Closed unanswered: its client sees the connection end.
                        busy.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                    let (server, submit, done) =
                        (Arc::clone(&server), Arc::clone(&submit), Arc::clone(&busy));
                    let spawned = std::thread::Builder::new()
                        .name("control-client".into())
                        .spawn(move || {
                            if let Err(e) = server.serve(stream, &*submit) {
                                tracing::warn!("control connection: {e}");
                            }
                            done.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        busy.fetch_sub(1, Ordering::SeqCst);
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
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let answer = match self.authorised(&stream) {
            Err(why) => Response::Error { message: why },
            Ok(()) => match read_message::<Envelope<Request>>(&mut stream) {
                Err(e) => Response::Error {
                    message: format!("bad request: {e}"),
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
