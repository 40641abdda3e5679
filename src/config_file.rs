//! **Shell**: reads the configuration file (its text and its permission bits) and hands them
//! to the pure [`config::from_file`]. A missing file at the default path means the built-in
//! default; any other file that cannot be read is an error naming it.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
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

/// The file's text, and its permission bits when they can be seen (of the file that was read).
fn read(path: &Path) -> io::Result<(String, Option<u32>)> {
    let mut file = std::fs::File::open(path)?;
    let mode = file.metadata().ok().map(|meta| meta.permissions().mode());
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok((text, mode))
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
