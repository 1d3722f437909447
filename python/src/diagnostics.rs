//! Importance weights and MCMC diagnostics on NumPy arrays: the same estimators the reports
//! use, for samples the caller produced.

use boltzgen::reweight::ImportanceWeights;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{chain_slices, chains, to_numpy, vector};
use crate::errors::IntoPy;

/// Importance weights of direct draws, ``log w = −β u − log q``, and what they give: the
/// Kish ESS, ``log Ẑ`` with its delta-method standard error, and the normalised weights.
///
/// ``energies`` and ``log_q`` are 1-D float64 arrays of the same length. A draw of infinite
/// energy keeps weight 0; NaN energies or log q are counted in ``invalid``.
///
/// Returns a dict: ``ess``, ``ess_fraction``, ``log_z``, ``log_z_std_error``, ``draws``,
/// ``zero_weight``, ``invalid``, ``log_weights`` and ``weights`` (normalised, summing to 1).
///
/// Example::
///
///     x, log_q = model.sample(10_000, seed=1)
///     w = boltzgen.importance_weights(beta, u.energy(x), log_q)
///     mean_x0 = (w["weights"] * x[:, 0]).sum()
#[pyfunction]
pub fn importance_weights<'py>(
    py: Python<'py>,
    beta: f64,
    energies: &Bound<'py, PyAny>,
    log_q: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let energies = vector(energies, "energies", None)?;
    let n = energies.len()?;
    let log_q = vector(log_q, "log_q", Some(n))?;
    let weights = ImportanceWeights::new(beta, energies.as_slice()?, log_q.as_slice()?).py_err()?;
    let log_z = weights.log_z();
    let d = PyDict::new(py);
    d.set_item("ess", weights.ess())?;
    d.set_item("ess_fraction", weights.ess_fraction())?;
    d.set_item("log_z", log_z.value)?;
    d.set_item("log_z_std_error", log_z.std_error)?;
    d.set_item("draws", weights.len())?;
    d.set_item("zero_weight", weights.zero_weight())?;
    d.set_item("invalid", weights.invalid())?;
    d.set_item("log_weights", to_numpy(py, weights.log_weights().to_vec()))?;
    d.set_item("weights", to_numpy(py, weights.normalized()))?;
    Ok(d)
}

/// Mean, standard error, τ, ESS and split-R̂ of an observable recorded by one or more
/// chains: ``chains`` is a 1-D array (one chain), a 2-D array ``(chains, steps)``, or a list
/// of 1-D arrays (chains of different lengths).
///
/// Returns a dict: ``mean``, ``std_error`` (``sqrt(var τ / N)``), ``variance``, ``tau``,
/// ``window``, ``tau_converged`` (False when the series is too short for a reliable τ: it is
/// then a lower bound), ``ess``, ``ess_per_chain`` and ``split_rhat`` (NaN with fewer than 4
/// draws per chain).
///
/// Example::
///
///     s = boltzgen.summarize(energies)          # (chains, steps)
///     print(s["mean"], "+-", s["std_error"], "tau", s["tau"], "R-hat", s["split_rhat"])
#[pyfunction]
pub fn summarize<'py>(py: Python<'py>, chains: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let arrays = self::chains(chains, "chains")?;
    let slices = chain_slices(&arrays);
    let s = boltzgen::diagnostics::summarize(&slices).py_err()?;
    let d = PyDict::new(py);
    d.set_item("mean", s.mean)?;
    d.set_item("std_error", s.std_error)?;
    d.set_item("variance", s.variance)?;
    d.set_item("tau", s.iat.tau)?;
    d.set_item("window", s.iat.window)?;
    d.set_item("tau_converged", s.iat.converged)?;
    d.set_item("ess", s.ess)?;
    d.set_item("ess_per_chain", to_numpy(py, s.ess_per_chain))?;
    d.set_item("split_rhat", s.split_rhat)?;
    Ok(d)
}

/// The integrated autocorrelation time τ (in steps) of one or more chains (as for
/// ``summarize``), with Sokal's self-consistent window.
///
/// Example::
///
///     tau = boltzgen.integrated_time(x[:, 0])   # one chain of one coordinate
///     ess = x.shape[0] / tau
#[pyfunction]
pub fn integrated_time(chains: &Bound<'_, PyAny>) -> PyResult<f64> {
    let arrays = self::chains(chains, "chains")?;
    let iat = boltzgen::diagnostics::integrated_time(&chain_slices(&arrays)).py_err()?;
    Ok(iat.tau)
}

/// Split-R̂ of two or more chains (as for ``summarize``); near 1 when they have mixed.
///
/// Example::
///
///     assert boltzgen.split_rhat(energies) < 1.01   # energies: (chains, steps)
#[pyfunction]
pub fn split_rhat(chains: &Bound<'_, PyAny>) -> PyResult<f64> {
    let arrays = self::chains(chains, "chains")?;
    boltzgen::diagnostics::split_rhat(&chain_slices(&arrays)).py_err()
}
