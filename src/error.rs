//! The error type of the boltzgen library.

use std::path::PathBuf;

use boltzgen_potentials::PotentialError;

/// Everything that can go wrong in boltzgen, with the context a user needs to fix it: the
/// file, the config key, the trajectory frame or the dimensions involved.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a catch-all arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A potential rejected its input or parameters.
    #[error(transparent)]
    Potential(#[from] PotentialError),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A configuration value is missing, malformed or out of range.
    #[error("{}: key `{key}`: {message}", file.display())]
    Config {
        /// The config file.
        file: PathBuf,
        /// The offending key, dotted (`sample.moves[1].kind`).
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// A trajectory could not be read or does not fit the system.
    #[error("{}{}: {message}", file.display(), frame.map(|f| format!(", frame {f}")).unwrap_or_default())]
    Trajectory {
        /// The trajectory file.
        file: PathBuf,
        /// The 0-based frame index, if the problem is in one frame.
        frame: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// Two parts of a run disagree about a dimension.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    Dimension {
        /// Which quantity (e.g. "model input", "configuration batch").
        what: String,
        /// The dimension required.
        expected: usize,
        /// The dimension found.
        got: usize,
    },

    /// A model file is missing, corrupt, or built for something else.
    #[error("{}: {message}", file.display())]
    Model {
        /// The model file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A libtorch operation failed.
    #[error("libtorch error while {context}: {source}")]
    Torch {
        /// What boltzgen was doing.
        context: String,
        /// The error reported by tch.
        #[source]
        source: tch::TchError,
    },

    /// A value that must be finite was NaN or infinite.
    #[error("non-finite {what} at index {index}")]
    NonFinite {
        /// The quantity ("log q", "coordinate", ...).
        what: String,
        /// Where it was found.
        index: usize,
    },

    /// Training could not continue.
    #[error("training stopped at step {step}: {message}")]
    Training {
        /// The 0-based step where it stopped.
        step: usize,
        /// What went wrong, with the offending loss term.
        message: String,
    },

    /// The caller asked the run to stop (Ctrl-C in Python); what was checkpointed is kept.
    #[error("interrupted during {stage}: the run directory keeps its last checkpoint (resume continues from it)")]
    Interrupted {
        /// What was running: `training`, `sampling`, `reweighting`.
        stage: String,
    },

    /// An argument is outside its allowed range.
    #[error("invalid argument `{name}`: {message}")]
    InvalidArgument {
        /// The argument's name.
        name: String,
        /// What is allowed.
        message: String,
    },
}

/// Result alias with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a tch error with what boltzgen was doing.
    pub fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> Self {
        let context = context.into();
        move |source| Error::Torch { context, source }
    }

    /// Wraps an I/O error with its file.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_key_and_frame() {
        let e = Error::Config {
            file: "run.toml".into(),
            key: "sample.moves[1].kind".into(),
            message: "unknown proposal 'flw'".into(),
        };
        assert_eq!(
            e.to_string(),
            "run.toml: key `sample.moves[1].kind`: unknown proposal 'flw'"
        );
        let e = Error::Trajectory {
            file: "md.dcd".into(),
            frame: Some(17),
            message: "22 atoms, expected 13".into(),
        };
        assert_eq!(e.to_string(), "md.dcd, frame 17: 22 atoms, expected 13");
        let e = Error::Trajectory {
            file: "md.dcd".into(),
            frame: None,
            message: "unknown format".into(),
        };
        assert_eq!(e.to_string(), "md.dcd: unknown format");
    }

    #[test]
    fn potential_errors_pass_through() {
        let p = boltzgen_potentials::PotentialError::NanEnergy;
        let e: Error = p.into();
        assert_eq!(e.to_string(), "the energy is NaN");
    }
}
