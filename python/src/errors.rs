//! boltzgen's errors as Python exceptions, each carrying the library's message (which names
//! the file, the key, the frame or the dimension).
//!
//! Bad arguments (a wrong length, a NaN coordinate, an out-of-range value) are `ValueError`s,
//! a file that cannot be read is an `OSError` (`FileNotFoundError` when it does not exist),
//! and everything else is a [`BoltzgenError`] subclass named after what went wrong.

use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError,
};
use pyo3::PyErr;

create_exception!(
    _boltzgen,
    BoltzgenError,
    PyException,
    "Base class of boltzgen's own errors."
);
create_exception!(
    _boltzgen,
    ConfigError,
    BoltzgenError,
    "A run config (TOML file or dict) is malformed, has an unknown key or a bad value."
);
create_exception!(
    _boltzgen,
    ModelError,
    BoltzgenError,
    "A model file is missing parts, corrupt, or does not fit the system."
);
create_exception!(
    _boltzgen,
    TrajectoryError,
    BoltzgenError,
    "A trajectory file cannot be read or does not fit the system."
);
create_exception!(_boltzgen, TorchError, BoltzgenError, "libtorch failed.");
create_exception!(
    _boltzgen,
    TrainingError,
    BoltzgenError,
    "Training diverged or could not proceed."
);

/// The Python exception for a boltzgen error.
pub fn to_py(error: boltzgen::Error) -> PyErr {
    use boltzgen::Error as E;
    let message = error.to_string();
    match &error {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        E::Io { .. } => PyOSError::new_err(message),
        E::Config { .. } => ConfigError::new_err(message),
        E::Interrupted { .. } => PyKeyboardInterrupt::new_err(message),
        E::Model { .. } => ModelError::new_err(message),
        E::Trajectory { .. } => TrajectoryError::new_err(message),
        E::Torch { .. } => TorchError::new_err(message),
        E::Training { .. } => TrainingError::new_err(message),
        E::Potential(_) | E::Dimension { .. } | E::NonFinite { .. } | E::InvalidArgument { .. } => {
            PyValueError::new_err(message)
        }
        _ => BoltzgenError::new_err(message),
    }
}

/// `Result::map_err(to_py)`, shorter.
pub trait IntoPy<T> {
    /// The value, or the error as a Python exception.
    fn py_err(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for boltzgen::Result<T> {
    fn py_err(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
