//! The one envelope of every file boltzgen resumes from or loads later: sampler checkpoints
//! (CBOR), training checkpoints and model descriptions (JSON).
//!
//! An envelope is `{ magic, version, payload }`. Reading checks the magic first, so that a
//! file of another kind is named as such ("not a boltzgen sampler checkpoint"), then the
//! version, so that a file of another build gets a version message rather than a decoding
//! error about some field, and only then decodes the payload. Writing goes through
//! [`write_atomically`]: a unique temporary name beside the file, fsync of the file, rename,
//! fsync of the directory; a crash leaves the old file or the new one, never a mixture.
//!
//! When checkpoints are taken is a [`Cadence`] passed in by the caller (training counts
//! optimiser steps, the sampler counts blocks); the writers here do not decide it.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::write_atomically;

/// What kind of file an envelope holds, and the layout version this build writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Identifies the kind of file ("boltzgen-sampler-checkpoint").
    pub magic: &'static str,
    /// The payload's layout version.
    pub version: u32,
    /// How error messages name the kind ("sampler checkpoint").
    pub what: &'static str,
}

/// The outer layer of the file.
#[derive(Serialize)]
struct Envelope<'a, T> {
    magic: &'a str,
    version: u32,
    payload: &'a T,
}

/// The outer layer as read, its payload not yet decoded.
#[derive(Deserialize)]
struct Opened<V> {
    magic: Option<String>,
    version: Option<u32>,
    payload: Option<V>,
}

/// When to write a checkpoint: after every `every` units of progress (optimiser steps,
/// sampler blocks) and after the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Units of progress between checkpoints (at least 1).
    pub every: usize,
}

impl Cadence {
    /// Whether a checkpoint is due after `done` units, `finished` saying whether the work is
    /// complete.
    pub fn due(&self, done: usize, finished: bool) -> bool {
        finished || (self.every > 0 && done % self.every == 0)
    }
}

fn model_error(path: &Path, message: String) -> Error {
    Error::Model {
        file: path.to_owned(),
        message,
    }
}

/// Checks the magic and version of an opened envelope and returns its payload.
fn check<V>(path: &Path, format: &Format, opened: Opened<V>) -> Result<V> {
    if opened.magic.as_deref() != Some(format.magic) {
        return Err(model_error(path, format!("not a boltzgen {}", format.what)));
    }
    match opened.version {
        Some(v) if v == format.version => {}
        v => {
            return Err(model_error(
                path,
                format!(
                    "{} format version {}; this build reads version {}",
                    format.what,
                    v.map_or_else(|| "missing".to_string(), |v| v.to_string()),
                    format.version
                ),
            ))
        }
    }
    opened
        .payload
        .ok_or_else(|| model_error(path, format!("the {} holds no payload", format.what)))
}

/// Writes `payload` in an envelope of `format` to `path` as CBOR, atomically.
///
/// # Errors
/// [`Error::Io`] naming the file; [`Error::Model`] if the payload cannot be encoded.
pub fn write_cbor<T: Serialize>(path: &Path, format: &Format, payload: &T) -> Result<()> {
    write_atomically(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(Error::io(tmp))?;
        let mut writer = std::io::BufWriter::new(file);
        let envelope = Envelope {
            magic: format.magic,
            version: format.version,
            payload,
        };
        ciborium::into_writer(&envelope, &mut writer)
            .map_err(|e| model_error(tmp, format!("cannot write the {}: {e}", format.what)))?;
        writer.flush().map_err(Error::io(tmp))
    })
}

/// Reads a CBOR envelope of `format` written by [`write_cbor`].
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Model`] naming the file if it is not
/// of this kind, has another version, or is truncated or corrupted.
pub fn read_cbor<T: DeserializeOwned>(path: &Path, format: &Format) -> Result<T> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    let unreadable = |e: String| {
        model_error(
            path,
            format!(
                "not a readable {} (truncated or corrupted?): {e}",
                format.what
            ),
        )
    };
    let opened: Opened<ciborium::Value> = ciborium::from_reader(std::io::BufReader::new(file))
        .map_err(|e| unreadable(e.to_string()))?;
    check(path, format, opened)?
        .deserialized()
        .map_err(|e| unreadable(e.to_string()))
}

/// Writes `payload` in an envelope of `format` to `path` as pretty-printed JSON, atomically.
///
/// # Errors
/// As [`write_cbor`].
pub fn write_json<T: Serialize>(path: &Path, format: &Format, payload: &T) -> Result<()> {
    let envelope = Envelope {
        magic: format.magic,
        version: format.version,
        payload,
    };
    let text = serde_json::to_string_pretty(&envelope)
        .map_err(|e| model_error(path, format!("cannot write the {}: {e}", format.what)))?;
    write_atomically(path, |tmp| {
        std::fs::write(tmp, text).map_err(Error::io(tmp))
    })
}

/// Reads a JSON envelope of `format` written by [`write_json`] from its text.
///
/// # Errors
/// [`Error::Model`] naming `path` if the text is not an envelope of this kind and version, or
/// its payload does not decode.
pub fn parse_json<T: DeserializeOwned>(path: &Path, format: &Format, text: &str) -> Result<T> {
    let opened: Opened<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        model_error(
            path,
            format!(
                "not a readable {} (truncated, corrupted, or not JSON?): {e}",
                format.what
            ),
        )
    })?;
    serde_json::from_value(check(path, format, opened)?)
        .map_err(|e| model_error(path, format!("malformed {}: {e}", format.what)))
}

/// Reads the JSON envelope at `path` (see [`parse_json`]).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, and as [`parse_json`].
pub fn read_json<T: DeserializeOwned>(path: &Path, format: &Format) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    parse_json(path, format, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Format = Format {
        magic: "boltzgen-test",
        version: 3,
        what: "test file",
    };

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Payload {
        x: Vec<f64>,
        name: String,
    }

    fn payload() -> Payload {
        Payload {
            x: vec![0.1, -2.5e-300, f64::MAX],
            name: "a".into(),
        }
    }

    #[test]
    fn both_encodings_round_trip_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let cbor = dir.path().join("f.cbor");
        write_cbor(&cbor, &TEST, &payload()).unwrap();
        assert_eq!(read_cbor::<Payload>(&cbor, &TEST).unwrap(), payload());
        let json = dir.path().join("f.json");
        write_json(&json, &TEST, &payload()).unwrap();
        assert_eq!(read_json::<Payload>(&json, &TEST).unwrap(), payload());
    }

    #[test]
    fn another_kind_another_version_and_a_truncated_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.cbor");
        write_cbor(&path, &TEST, &payload()).unwrap();
        let other = Format {
            magic: "boltzgen-other",
            ..TEST
        };
        let e = read_cbor::<Payload>(&path, &other).unwrap_err().to_string();
        assert!(
            e.contains("not a boltzgen test file") && e.contains("f.cbor"),
            "{e}"
        );
        let newer = Format { version: 4, ..TEST };
        let e = read_cbor::<Payload>(&path, &newer).unwrap_err().to_string();
        assert!(
            e.contains("version 3") && e.contains("reads version 4"),
            "{e}"
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_cbor::<Payload>(&path, &TEST).unwrap_err().to_string();
        assert!(e.contains("truncated or corrupted"), "{e}");
        let e = parse_json::<Payload>(&path, &TEST, "{\"format_version\": 1}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a boltzgen test file"), "{e}");
    }

    #[test]
    fn cadence_is_every_n_and_at_the_end() {
        let c = Cadence { every: 3 };
        let due: Vec<usize> = (1..=7).filter(|&d| c.due(d, d == 7)).collect();
        assert_eq!(due, [3, 6, 7]);
    }
}
