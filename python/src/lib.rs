//! The extension module `boltzgen._boltzgen`, re-exported by the Python package `boltzgen`
//! (`python/boltzgen/__init__.py`): potentials, models, the proposal engine, whole runs and
//! diagnostics, with NumPy arrays in and out.
//!
//! Arrays are borrowed, not copied, on the way in (float64, C-contiguous; anything else is a
//! `TypeError`/`ValueError` that says how to fix it) and handed to NumPy without a copy on the
//! way out. Errors are Python exceptions carrying the library's messages; a panic inside
//! boltzgen becomes pyo3's `PanicException`, never an abort. Long calls release the GIL. The
//! library's log goes to Python's `logging` (loggers `boltzgen`, `boltzgen.chemfiles`).

mod arrays;
mod config;
mod diagnostics;
mod engine;
mod errors;
mod log;
mod model;
mod potential;
mod runs;
mod trajectory;

use pyo3::prelude::*;

#[pymodule]
fn _boltzgen(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    log::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BoltzgenError", py.get_type::<errors::BoltzgenError>())?;
    m.add("ConfigError", py.get_type::<errors::ConfigError>())?;
    m.add("ModelError", py.get_type::<errors::ModelError>())?;
    m.add("TrajectoryError", py.get_type::<errors::TrajectoryError>())?;
    m.add("TorchError", py.get_type::<errors::TorchError>())?;
    m.add("TrainingError", py.get_type::<errors::TrainingError>())?;
    m.add_class::<potential::Potential>()?;
    m.add_class::<model::Model>()?;
    m.add_class::<engine::ProposalEngine>()?;
    m.add_function(wrap_pyfunction!(engine::log_acceptance, m)?)?;
    m.add_function(wrap_pyfunction!(engine::accept, m)?)?;
    m.add_function(wrap_pyfunction!(diagnostics::importance_weights, m)?)?;
    m.add_function(wrap_pyfunction!(diagnostics::summarize, m)?)?;
    m.add_function(wrap_pyfunction!(diagnostics::integrated_time, m)?)?;
    m.add_function(wrap_pyfunction!(diagnostics::split_rhat, m)?)?;
    m.add_function(wrap_pyfunction!(trajectory::read_frames, m)?)?;
    m.add_function(wrap_pyfunction!(runs::train, m)?)?;
    m.add_function(wrap_pyfunction!(runs::sample, m)?)?;
    m.add_function(wrap_pyfunction!(runs::reweight, m)?)?;
    m.add_function(wrap_pyfunction!(runs::run, m)?)?;
    Ok(())
}
