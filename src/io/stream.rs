//! Files that grow while a run goes on (sample trajectories, sample tables) and the lengths a
//! checkpoint records of them.
//!
//! A checkpoint is written only after every streamed file is on disk (fsynced), and it records
//! each file's length in bytes at that moment. A run killed at any later moment, even in the
//! middle of writing a frame, is resumed by cutting each file back to its recorded length:
//! nothing after that length is read or parsed, so a torn last frame cannot stop a resume.

use std::fs::{File, OpenOptions};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The length of one streamed file when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMark {
    /// The file's name inside the run directory (never a path: a checkpoint cannot point a
    /// resume at a file elsewhere).
    pub name: String,
    /// Its length in bytes, everything before which was on disk when the checkpoint was written.
    pub bytes: u64,
}

/// Puts `path` on disk (fsync) and returns its length in bytes.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn sync_and_measure(path: &Path) -> Result<u64> {
    let file = File::open(path).map_err(Error::io(path))?;
    file.sync_all().map_err(Error::io(path))?;
    Ok(file.metadata().map_err(Error::io(path))?.len())
}

/// Cuts `dir/mark.name` back to `mark.bytes` bytes and syncs it.
///
/// # Errors
/// [`Error::Io`] if the name is not a plain file name or the file cannot be cut;
/// [`Error::Trajectory`] naming the file if it is shorter than the mark (it was replaced or
/// cut after the checkpoint, so the checkpoint no longer describes it).
pub fn cut_back(dir: &Path, mark: &StreamMark) -> Result<()> {
    let plain = Path::new(&mark.name)
        .file_name()
        .is_some_and(|n| n == mark.name.as_str());
    let path = dir.join(&mark.name);
    if !plain {
        return Err(Error::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a checkpoint names a streamed file that is not a plain file name",
            ),
        });
    }
    let file = match OpenOptions::new().write(true).open(&path) {
        Ok(file) => file,
        // A stream that had nothing in it at the checkpoint may never have been created.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && mark.bytes == 0 => return Ok(()),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let len = file.metadata().map_err(Error::io(&path))?.len();
    if len < mark.bytes {
        return Err(Error::Trajectory {
            file: path,
            frame: None,
            message: format!(
                "holds {len} bytes, but the checkpoint was written when it held {}: it was cut \
                 or replaced since, so the run cannot be resumed from it",
                mark.bytes
            ),
        });
    }
    if len > mark.bytes {
        file.set_len(mark.bytes).map_err(Error::io(&path))?;
        file.sync_all().map_err(Error::io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_a_torn_tail_and_refuses_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "head\n1\n2\n").unwrap();
        let bytes = sync_and_measure(&path).unwrap();
        assert_eq!(bytes, 9);
        std::fs::write(&path, "head\n1\n2\n3\n4,tor").unwrap();
        let mark = StreamMark {
            name: "a.csv".into(),
            bytes,
        };
        cut_back(dir.path(), &mark).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "head\n1\n2\n");
        // Cutting again is a no-op.
        cut_back(dir.path(), &mark).unwrap();
        std::fs::write(&path, "head\n").unwrap();
        let err = cut_back(dir.path(), &mark).unwrap_err().to_string();
        assert!(
            err.contains("a.csv") && err.contains("cannot be resumed"),
            "{err}"
        );
        let outside = StreamMark {
            name: "../a.csv".into(),
            bytes: 0,
        };
        assert!(cut_back(dir.path(), &outside).is_err());
    }
}
