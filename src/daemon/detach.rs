//! `sentryd -D`: going into the background only once the daemon is up. **Shell.**
//!
//! The process that was started forks and stays in the foreground, reading a pipe that is the
//! daemon's standard error until it is ready. Whatever the start says there (why it failed)
//! reaches the terminal, and a failed start ends the foreground process with the daemon's own
//! exit code: a bad interface is an error on the terminal and a non-zero status, never a
//! silent death behind an exit code of 0. Once the start succeeded, the daemon writes one NUL
//! byte (no text it writes holds one), points its standard error at /dev/null, and the
//! foreground process exits 0.
//!
//! The pid file is written by the daemon just before it says it is ready, so that whoever
//! waits for the foreground process to end finds it; it is removed when the daemon stops.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

/// What the daemon holds of its start until it is ready: the pipe to the waiting foreground
/// process (with `-D`) and the pid file to write (with `--pidfile`).
#[derive(Default)]
pub struct Readiness {
    pipe: Option<OwnedFd>,
    pidfile: Option<PathBuf>,
}

impl Readiness {
    /// Without `-D`: only the pid file, if asked for.
    pub fn foreground(pidfile: Option<PathBuf>) -> Self {
        Readiness {
            pipe: None,
            pidfile,
        }
    }

    /// Whether the daemon runs detached (its standard output goes nowhere).
    pub fn detached(&self) -> bool {
        self.pipe.is_some()
    }

    /// The start succeeded: writes the pid file, tells systemd (`READY=1`, when it asked),
    /// then releases the foreground process. Returns the pid file to remove at the end, or why
    /// it could not be written (the start then fails: whoever asked for it relies on it).
    pub fn ready(self) -> io::Result<Option<PidFile>> {
        let pidfile = match self.pidfile {
            Some(path) => Some(PidFile::write(path)?),
            None => None,
        };
        crate::daemon::notify::ready();
        if let Some(pipe) = self.pipe {
            let mut pipe = File::from(pipe);
            // The foreground process may be gone (killed): the daemon runs on regardless.
            let _ = pipe.write_all(&[0]);
            drop(pipe);
            let _ = stderr_to_dev_null();
        }
        Ok(pidfile)
    }
}

/// `--pidfile`: written whole (a temporary file renamed over it); removed on drop if it still
/// holds this process's ID.
pub struct PidFile(PathBuf);

impl PidFile {
    fn write(path: PathBuf) -> io::Result<PidFile> {
        let fail =
            |e: io::Error| io::Error::new(e.kind(), format!("--pidfile {}: {e}", path.display()));
        let partial = path.with_extension("pid.partial");
        std::fs::write(&partial, format!("{}\n", std::process::id())).map_err(fail)?;
        std::fs::rename(&partial, &path).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            fail(e)
        })?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    /// Removes the file, unless another process has written its own ID there since.
    fn drop(&mut self) {
        let ours = format!("{}\n", std::process::id());
        if std::fs::read_to_string(&self.0).is_ok_and(|held| held == ours) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `-D`: forks. In the foreground process this never returns: it waits for the daemon's start
/// and exits with its verdict. In the daemon (a new session, working directory `/`, standard
/// input and output on /dev/null, standard error on the pipe until ready) it returns the
/// [`Readiness`] to hand to the start.
pub fn detach(pidfile: Option<PathBuf>) -> io::Result<Readiness> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match crate::process::fork()? {
        ForkResult::Parent { child } => {
            drop(write);
            std::process::exit(wait_for_start(read, child));
        }
        ForkResult::Child => {
            drop(read);
            nix::unistd::setsid()?;
            std::env::set_current_dir("/")?;
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            nix::unistd::dup2_stdin(&null)?;
            nix::unistd::dup2_stdout(&null)?;
            // Descriptor 2 is the pipe until the start succeeded; programs the daemon starts
            // never inherit it (`process::command` closes every descriptor above 2, and
            // none runs before readiness).
            nix::unistd::dup2_stderr(&write)?;
            Ok(Readiness {
                pipe: Some(write),
                pidfile,
            })
        }
    }
}

/// The foreground process: copies what the daemon says on standard error to its own until the
/// daemon is ready (exit code 0) or ends (its exit code, or 1 if a signal ended it).
fn wait_for_start(read: OwnedFd, child: Pid) -> i32 {
    let mut pipe = File::from(read);
    let mut stderr = io::stderr();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let said = &buf[..n];
                if let Some(end) = said.iter().position(|&b| b == 0) {
                    let _ = stderr.write_all(&said[..end]);
                    return 0;
                }
                let _ = stderr.write_all(said);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // The pipe closed without the NUL: every write end is gone, so the daemon has ended.
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, code)) if code != 0 => code,
        Ok(WaitStatus::Exited(..)) => {
            eprintln!("sentryd: the daemon ended before it was ready");
            1
        }
        Ok(WaitStatus::Signaled(_, signal, _)) => {
            eprintln!("sentryd: the daemon was killed by {signal} before it was ready");
            1
        }
        other => {
            eprintln!("sentryd: the daemon's start could not be followed: {other:?}");
            1
        }
    }
}

/// Points standard error at /dev/null.
fn stderr_to_dev_null() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}
