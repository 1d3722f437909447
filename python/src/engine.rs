//! `boltzgen.ProposalEngine`: independence proposals from a flow for the caller's own
//! Metropolis–Hastings loop, and the acceptance helpers that go with them.

use std::path::PathBuf;
use std::sync::Mutex;

use boltzgen::engine::{EngineConfig, ProposalEngine as Engine};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{configurations, to_numpy, to_numpy_rows};
use crate::errors::IntoPy;
use crate::model::device;

/// Independence proposals x′ ~ q from a flow, each with its Hastings term
/// ``log q(x) − log q(x′)``, for a Metropolis–Hastings loop of your own.
///
/// Accept x′ with ``accept(log_acceptance(beta, u(x), u(x′), log_hastings), uniform)``. The
/// engine remembers ``log q`` of the configurations it saw in the previous call, so that a
/// chain's current state is not evaluated twice.
///
/// Example::
///
///     engine = boltzgen.ProposalEngine("runs/double_well/model.json", seed=7)
///     x_new, log_h = engine.propose(x)
///     log_a = boltzgen.log_acceptance(beta, u.energy(x), u.energy(x_new), log_h)
///     if boltzgen.accept(log_a, rng.random()):
///         x = x_new
#[pyclass(module = "boltzgen", frozen)]
pub struct ProposalEngine {
    inner: Mutex<Engine>,
    dim: usize,
}

impl ProposalEngine {
    fn with<T>(&self, f: impl FnOnce(&mut Engine) -> boltzgen::Result<T>) -> PyResult<T> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the engine was poisoned by an earlier panic"))?;
        f(&mut guard).py_err()
    }
}

#[pymethods]
impl ProposalEngine {
    /// Opens the flow saved at ``model`` (``model.json`` or a TorchScript ``.pt``).
    ///
    /// ``seed``: the engine's random stream; ``buffer``: draws per generator call;
    /// ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"``; ``threads``: libtorch's intra-op
    /// threads (a process-wide setting; ``None`` leaves it alone).
    #[new]
    #[pyo3(signature = (model, seed = 42, buffer = 256, device = "cpu", threads = None))]
    fn new(
        py: Python<'_>,
        model: PathBuf,
        seed: u64,
        buffer: usize,
        device: &str,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let config = EngineConfig {
            seed,
            buffer,
            device: self::device(device)?,
            threads,
        };
        let engine = crate::log::flushed(py, py.detach(|| Engine::open(&model, config)).py_err())?;
        let dim = engine.dim();
        Ok(Self {
            inner: Mutex::new(engine),
            dim,
        })
    }

    /// Coordinates per configuration.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    /// One proposal for the current state ``x`` ``(dim,)``: ``(x_new, log_hastings)``.
    fn propose<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, f64)> {
        let x = configurations(x, "x", self.dim)?;
        if x.batched {
            return Err(PyValueError::new_err(
                "propose takes one configuration (dim,); use propose_batch for (n, dim)",
            ));
        }
        let values = x.values();
        let p = py.detach(|| self.with(|e| e.propose(values)))?;
        Ok((to_numpy(py, p.x).into_any(), p.log_hastings))
    }

    /// One proposal for each row of ``x`` ``(n, dim)``: ``(x_new (n, dim), log_hastings (n,))``;
    /// row i proposes for row i and is accepted or rejected on its own.
    fn propose_batch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let x = configurations(x, "x", self.dim)?;
        let values = x.values();
        let n = x.n;
        let mut proposed = vec![0.0; n * self.dim];
        let mut log_h = vec![0.0; n];
        py.detach(|| self.with(|e| e.propose_batch(values, &mut proposed, &mut log_h)))?;
        Ok((
            to_numpy_rows(py, proposed, self.dim, x.batched)?,
            to_numpy(py, log_h).into_any(),
        ))
    }

    /// ``log q(x)``: a float for ``(dim,)``, an array ``(n,)`` for ``(n, dim)``.
    fn log_prob<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = configurations(x, "x", self.dim)?;
        let values = x.values();
        let log_q = py.detach(|| self.with(|e| e.log_prob(values)))?;
        if x.batched {
            Ok(to_numpy(py, log_q).into_any())
        } else {
            Ok(log_q[0].into_pyobject(py)?.into_any())
        }
    }

    /// What the engine has done: ``proposals``, ``draws``, ``log_prob_evaluations`` and
    /// ``remembered`` (current states whose ``log q`` came from the previous call).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.with(|e| Ok(e.stats()))?;
        let d = PyDict::new(py);
        d.set_item("proposals", s.proposals)?;
        d.set_item("draws", s.draws)?;
        d.set_item("log_prob_evaluations", s.log_prob_evaluations)?;
        d.set_item("remembered", s.remembered)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("boltzgen.ProposalEngine(dim={})", self.dim)
    }
}

/// ``log α = −β (u_proposed − u_current) + log_hastings``; ``-inf`` for a NaN or infinite
/// proposed energy or a NaN Hastings term, so that such a proposal is always rejected.
///
/// Example::
///
///     x_new, log_h = engine.propose(x)
///     log_a = boltzgen.log_acceptance(beta, u.energy(x), u.energy(x_new), log_h)
#[pyfunction]
pub fn log_acceptance(beta: f64, u_current: f64, u_proposed: f64, log_hastings: f64) -> f64 {
    boltzgen::engine::log_acceptance(beta, u_current, u_proposed, log_hastings)
}

/// The Metropolis–Hastings decision for ``log_alpha`` and a uniform draw in [0, 1):
/// ``uniform < exp(log_alpha)``, without the exponential when ``log_alpha ≥ 0``.
///
/// Example::
///
///     if boltzgen.accept(log_a, rng.random()):
///         x = x_new
#[pyfunction]
pub fn accept(log_alpha: f64, uniform: f64) -> PyResult<bool> {
    if !(0.0..1.0).contains(&uniform) {
        return Err(PyValueError::new_err(format!(
            "uniform must lie in [0, 1), got {uniform}"
        )));
    }
    Ok(boltzgen::engine::accept(log_alpha, uniform))
}
