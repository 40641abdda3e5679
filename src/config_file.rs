//! **Shell**: reads the configuration file (its text and its permission bits) and hands them
//! to the pure [`config::from_file`]. A missing file at the default path means the built-in
//! default; any other file that cannot be read is an error naming it.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigError, DEFAULT_PATH, Loaded, Origin};

/// Loads `path`, or the default path (falling back to the built-in default when that file does
/// not exist).
///
/// # Errors
///
/// When a file that exists (or was named explicitly) cannot be read, parsed or validated.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let (text, mode) = match read(&path) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit => {
            return Ok(Loaded {
                config: Config::default(),
                origin: Origin::BuiltIn,
                warnings: Vec::new(),
            });
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    config::from_file(&path, &text, mode)
}

/// The file's text, and its permission bits (of the file that was read): a regular file,
/// opened without waiting, of bounded size ([`crate::host::read_text`]).
fn read(path: &Path) -> io::Result<(String, Option<u32>)> {
    crate::host::read_text_and_mode(path).map(|(text, mode)| (text, Some(mode)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    #[test]
    fn load_falls_back_to_the_default_only_for_the_default_path() {
        let missing = Path::new("/nonexistent/scansentry.toml");
        let err = load(Some(missing)).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert_eq!(
            err.to_string(),
            "cannot read configuration /nonexistent/scansentry.toml"
        );
    }

    #[test]
    fn a_file_writable_by_others_gets_a_warning() {
        let dir = std::env::temp_dir().join(format!("scansentry-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scansentry.toml");
        std::fs::write(&path, "[respond]\nblock-for = \"2h\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let loaded = load(Some(&path)).unwrap();
        assert_eq!(loaded.config.respond.block_for, Duration::from_secs(7200));
        assert_eq!(loaded.origin, Origin::File(path.clone()));
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("writable by other users"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(Some(&path)).unwrap().warnings.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Red team of issue 25: a reload reads the configuration in the daemon's main loop. A FIFO
    /// put in the file's place held it there (no capture, no block, no answer) until something
    /// wrote to the FIFO; `/dev/zero`, or a file of gigabytes, was read whole into memory. Now
    /// the file is opened without waiting, must be a regular file, and is read up to
    /// `MAX_FILE_BYTES`.
    #[test]
    fn issue_25_a_fifo_a_device_or_a_huge_file_is_refused_not_waited_on_nor_read_whole() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::env::temp_dir().join(format!("scansentry-red-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.toml");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(
                load(Some(&path))
                    .map(|_| ())
                    .map_err(|e| crate::exit::chain(&e)),
            );
        });
        // A bound, not a timer: the load either answers at once or waits for a writer forever.
        let answer = rx.recv_timeout(std::time::Duration::from_secs(10));
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&fifo); // frees a load that waits, if it does
        let err = answer
            .expect("loading a FIFO waited for a writer")
            .unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");

        let zero = dir.join("zero.toml");
        let _ = std::fs::remove_file(&zero);
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = crate::exit::chain(&load(Some(&zero)).unwrap_err());
        assert!(err.contains("not a regular file"), "{err}");

        let huge = dir.join("huge.toml");
        let file = std::fs::File::create(&huge).unwrap();
        file.set_len(crate::host::MAX_FILE_BYTES + 1).unwrap(); // sparse: nothing written
        let err = crate::exit::chain(&load(Some(&huge)).unwrap_err());
        assert!(err.contains("over the 16 MiB"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
