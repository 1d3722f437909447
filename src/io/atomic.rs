//! Crash-safe file replacement: write a temporary file, fsync it, rename it over the target.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `path` so that a reader (or a crash) sees either the old file or the complete new
/// one, never a half-written file.
///
/// `write` receives a temporary path in the same directory and must create the file there;
/// it is then fsynced, renamed over `path`, and the directory entry is fsynced. If `write`
/// fails, the temporary file is removed and `path` is left untouched.
///
/// # Errors
/// [`Error::Io`] naming the file, or whatever `write` returned.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write(&tmp).and_then(|()| {
        let file = OpenOptions::new()
            .read(true)
            .open(&tmp)
            .map_err(Error::io(&tmp))?;
        file.sync_all().map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_or_leaves_it_alone() {
        let dir = std::env::temp_dir().join(format!("boltzgen-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_atomically(&path, |tmp| {
            std::fs::write(tmp, "one").map_err(Error::io(tmp))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let err = write_atomically(&path, |tmp| {
            std::fs::write(tmp, "half").map_err(Error::io(tmp))?;
            Err(Error::InvalidArgument {
                name: "x".into(),
                message: "failed midway".into(),
            })
        });
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "one",
            "a failed write must not touch the file"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the temporary file is cleaned up");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
