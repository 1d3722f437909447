//! Files that one file names beside itself (a model's weights, a checkpoint's tensors): the
//! name is confined to the naming file's directory, so a file cannot point a read, or a
//! delete, anywhere else.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `name` resolved beside `naming_file`: a plain file name (no directory part, no `..`, not
/// absolute) that names a regular file (a link is followed, but what it leads to must be a
/// regular file: never a device, a FIFO or a directory).
///
/// # Errors
/// [`Error::Model`] naming `naming_file` for a name that is not a plain file name, or a path
/// that is not a regular file.
pub fn sibling_file(naming_file: &Path, name: &str) -> Result<PathBuf> {
    let bad = |message: String| Error::Model {
        file: naming_file.to_owned(),
        message,
    };
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && Path::new(name).file_name().is_some_and(|n| n == name);
    if !plain {
        return Err(bad(format!(
            "names the file `{name}`, which is not a plain file name beside it (no directories, \
             no `..`)"
        )));
    }
    let dir = naming_file.parent().unwrap_or(Path::new("."));
    let path = dir.join(name);
    match std::fs::metadata(&path) {
        Ok(m) if !m.is_file() => Err(bad(format!(
            "names {}, which is not a regular file",
            path.display()
        ))),
        // A missing file is reported by whoever opens it, with the usual I/O error.
        _ => Ok(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_of_regular_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("model.json");
        std::fs::write(dir.path().join("w.safetensors"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(
            sibling_file(&json, "w.safetensors").unwrap(),
            dir.path().join("w.safetensors")
        );
        for name in [
            "../w.safetensors",
            "/etc/passwd",
            "sub/w",
            "..",
            ".",
            "",
            "sub",
        ] {
            let err = sibling_file(&json, name).unwrap_err().to_string();
            assert!(err.contains("model.json"), "{name}: {err}");
        }
        // A missing file passes here; opening it names it.
        assert!(sibling_file(&json, "missing.safetensors").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("model.json");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("w.safetensors")).unwrap();
        assert!(sibling_file(&json, "w.safetensors").is_err());
    }
}
