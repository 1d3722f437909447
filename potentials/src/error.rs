//! The error type of the potentials crate.

use std::path::PathBuf;

/// Everything that can go wrong when building or evaluating a potential.
///
/// Each variant carries enough context (dimension, index, parameter name, file and line) for
/// the message alone to tell the user what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PotentialError {
    /// A configuration (or a gradient buffer) has the wrong number of coordinates.
    #[error("{what} has {got} values, expected {expected}")]
    WrongLength {
        /// Which slice was wrong ("configuration", "gradient buffer", ...).
        what: &'static str,
        /// The length the potential needs.
        expected: usize,
        /// The length it was given.
        got: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("coordinate {index} is not finite ({value})")]
    NonFiniteCoordinate {
        /// Index of the offending coordinate inside the configuration.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// The energy came out as NaN (an infinite energy is allowed: it is a forbidden state).
    #[error("the energy is NaN")]
    NanEnergy,
    /// An error inside a batch, tagged with the configuration it came from.
    #[error("configuration {index} of the batch: {source}")]
    InBatch {
        /// Index of the configuration inside the batch (0-based).
        index: usize,
        /// What went wrong with it.
        #[source]
        source: Box<PotentialError>,
    },
    /// A constructor parameter is out of its allowed range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name, as in the config files.
        name: &'static str,
        /// What is allowed.
        reason: String,
    },
    /// A data file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong on that line.
        message: String,
    },
    /// An exact reference (sampler, log Z) is not available for these settings.
    #[error("no exact reference: {0}")]
    NoExactReference(String),
}

/// Result alias for this crate.
pub type Result<T, E = PotentialError> = std::result::Result<T, E>;

/// Shorthand for [`PotentialError::InvalidParameter`].
pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> PotentialError {
    PotentialError::InvalidParameter {
        name,
        reason: reason.into(),
    }
}
