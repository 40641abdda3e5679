//! `sentryctl`'s side of the control socket. **Shell.**

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{
    Envelope, FrameError, Request, Response, VERSION, read_message, write_message,
};

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("cannot reach sentryd at {}", path.display())]
    Unavailable {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The socket's permissions keep us out.
    #[error("cannot open {}", path.display())]
    Permission {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The exchange failed.
    #[error("talking to sentryd at {} failed", path.display())]
    Exchange {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: FrameError,
    },
}

impl ClientError {
    /// What to do about it, for the line after the error.
    pub fn hint(&self) -> &'static str {
        match self {
            ClientError::Unavailable { .. } => {
                "hint: is the daemon running? try `systemctl status scansentry`"
            }
            ClientError::Permission { .. } => {
                "hint: run as root or as a member of group `scansentry`"
            }
            ClientError::Exchange { .. } => "hint: see the daemon's log",
        }
    }
}

/// Sends `request` to the daemon at `path` and returns its answer.
///
/// # Errors
///
/// When the daemon cannot be reached or the exchange fails.
pub fn ask(path: &Path, request: Request) -> Result<Response, ClientError> {
    let mut stream = UnixStream::connect(path).map_err(|source| match source.kind() {
        io::ErrorKind::PermissionDenied => ClientError::Permission {
            path: path.to_path_buf(),
            source,
        },
        _ => ClientError::Unavailable {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let exchange = |source| ClientError::Exchange {
        path: path.to_path_buf(),
        source,
    };
    let timeout = Some(Duration::from_secs(15));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|e| exchange(FrameError::Io(e)))?;
    write_message(
        &mut stream,
        &Envelope {
            version: VERSION,
            body: request,
        },
    )
    .map_err(exchange)?;
    let answer: Envelope<Response> = read_message(&mut stream).map_err(exchange)?;
    Ok(answer.body)
}
