//! `boltzgen.Model`: a saved generator (flow, VAE or TorchScript flow), to draw from and to
//! evaluate.

use std::path::PathBuf;
use std::sync::Mutex;

use boltzgen::generator::DeviceChoice;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::{configurations, to_numpy, to_numpy_rows};
use crate::errors::IntoPy;

/// `"auto"`, `"cpu"` or `"cuda"`.
pub fn device(name: &str) -> PyResult<DeviceChoice> {
    match name {
        "auto" => Ok(DeviceChoice::Auto),
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda),
        other => Err(PyValueError::new_err(format!(
            "device must be \"auto\", \"cpu\" or \"cuda\", got {other:?}"
        ))),
    }
}

/// A trained generator: a normalizing flow, a VAE or a TorchScript flow.
///
/// Load one with ``Model.load(path)`` (``model.json`` as ``boltzgen train`` writes it, or a
/// TorchScript ``.pt``), or get one from ``boltzgen.train``.
///
/// Example::
///
///     m = boltzgen.Model.load("runs/double_well/model.json")
///     x, log_q = m.sample(1000, seed=1)   # (1000, dim), (1000,)
///     assert numpy.array_equal(m.log_prob(x), log_q)
#[pyclass(module = "boltzgen", frozen)]
pub struct Model {
    // libtorch modules may be used from one thread at a time: calls are serialised.
    inner: Mutex<boltzgen::pipeline::Model>,
    dim: usize,
    kind: &'static str,
    exact_density: bool,
}

impl Model {
    /// Wraps a model.
    pub fn new(model: boltzgen::pipeline::Model) -> Self {
        let generator = model.generator();
        Self {
            dim: generator.dim(),
            exact_density: generator.exact_density(),
            kind: model.kind(),
            inner: Mutex::new(model),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&boltzgen::pipeline::Model) -> boltzgen::Result<T>,
    ) -> PyResult<T> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the model was poisoned by an earlier panic"))?;
        f(&guard).py_err()
    }
}

#[pymethods]
impl Model {
    /// Opens a saved model; ``device`` is ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    ///
    /// Raises ``FileNotFoundError`` for a missing file and ``boltzgen.ModelError`` for a
    /// corrupt one (naming the file).
    #[staticmethod]
    #[pyo3(signature = (path, device = "cpu"))]
    fn load(py: Python<'_>, path: PathBuf, device: &str) -> PyResult<Self> {
        let device = self::device(device)?;
        let model = py
            .detach(|| boltzgen::pipeline::Model::open(&path, device))
            .py_err();
        Ok(Self::new(crate::log::flushed(py, model)?))
    }

    /// Coordinates per configuration.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }

    /// ``"flow"``, ``"vae"`` or ``"torchscript"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// True when ``log_prob`` is exact (flows); a VAE's is an importance-sampled estimate, and
    /// it never enters an independence proposal's Hastings ratio.
    #[getter]
    fn exact_density(&self) -> bool {
        self.exact_density
    }

    /// ``n`` draws and their ``log q``: arrays ``(n, dim)`` and ``(n,)``. The same ``seed``
    /// gives the same draws (they are the first ``n`` of a ``ProposalEngine`` with that seed
    /// and a buffer of ``n``).
    #[pyo3(signature = (n, seed = 0))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let samples = py.detach(|| {
            self.with(|m| {
                let mut rng = boltzgen::rng::stream(seed, 0);
                m.generator().sample(n, &mut rng)
            })
        })?;
        Ok((
            to_numpy_rows(py, samples.x, self.dim, true)?,
            to_numpy(py, samples.log_q).into_any(),
        ))
    }

    /// ``log q(x)``: a float for ``(dim,)``, an array ``(n,)`` for ``(n, dim)``.
    fn log_prob<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = configurations(x, "x", self.dim)?;
        let values = x.values();
        let log_q = py.detach(|| self.with(|m| m.generator().log_prob(values)))?;
        if x.batched {
            Ok(to_numpy(py, log_q).into_any())
        } else {
            Ok(log_q[0].into_pyobject(py)?.into_any())
        }
    }

    fn __repr__(&self) -> String {
        format!("boltzgen.Model(kind={:?}, dim={})", self.kind, self.dim)
    }
}
