//! `boltzgen.Potential`: every built-in potential and an OpenMM System XML, with energies and
//! gradients of one configuration or a batch.

use std::sync::Arc;

use boltzgen::config::SystemConfig;
use boltzgen::potentials::Potential as _;
use pyo3::prelude::*;

use crate::arrays::{configurations, to_numpy, to_numpy_rows};
use crate::config::table_from_json;
use crate::errors::IntoPy;

/// A potential energy U(x) on flat configurations of ``dim`` coordinates (particles' x, y, z
/// row-major), in the potential's own units.
///
/// ``Potential(name, parameters=None)`` builds the potential that a run config's ``[system]``
/// section names: ``double_well``, ``muller_brown``, ``many_well``, ``gmm40``, ``gaussian``,
/// ``dw4``, ``lj13``, ``lj55``, ``lj_cluster``, ``lj_fluid``, or ``openmm`` (a force field from
/// a serialized OpenMM System, ``parameters={"xml": "system.xml"}``), with the parameters that
/// section takes (see ``docs/config.md``); omitted ones keep their defaults.
///
/// Example::
///
///     u = boltzgen.Potential("double_well")
///     u.energy(numpy.array([1.0, 0.0]))                # one configuration -> float
///     e, g = u.energy_and_gradient(numpy.zeros((5, 2)))  # a batch -> (5,), (5, 2)
#[pyclass(module = "boltzgen", frozen)]
pub struct Potential {
    inner: Arc<dyn boltzgen::potentials::Potential>,
    spatial_dim: usize,
    n_particles: usize,
}

impl Potential {
    /// The potential, for the other bindings.
    pub fn shared(&self) -> Arc<dyn boltzgen::potentials::Potential> {
        Arc::clone(&self.inner)
    }
}

#[pymethods]
impl Potential {
    #[new]
    #[pyo3(signature = (name, parameters = None))]
    fn new(name: &str, parameters: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let parameters = parameters
            .map(|p| table_from_json(p, "parameters"))
            .transpose()?;
        let config = SystemConfig {
            potential: name.to_owned(),
            parameters,
            // β does not enter U; the section needs one to be complete.
            beta: Some(1.0),
            temperature: None,
            energy_unit: Default::default(),
            length_unit: Default::default(),
        };
        let system = config
            .build()
            .map_err(|e| match e {
                // The section's errors name no file: name the call instead.
                boltzgen::Error::Config { key, message, .. } => boltzgen::Error::Config {
                    file: format!("boltzgen.Potential({name:?})").into(),
                    key: key.replace("system.", ""),
                    message,
                },
                other => other,
            })
            .py_err()?;
        Ok(Self {
            inner: Arc::from(system.potential),
            spatial_dim: system.spatial_dim,
            n_particles: system.n_particles,
        })
    }

    /// The force field of a serialized OpenMM ``System`` (XML), in kJ/mol and nm.
    ///
    /// Example::
    ///
    ///     u = boltzgen.Potential.openmm("system.xml")
    #[staticmethod]
    fn openmm(py: Python<'_>, xml: std::path::PathBuf) -> PyResult<Self> {
        let parameters = pyo3::types::PyDict::new(py);
        parameters.set_item("xml", xml.to_string_lossy().into_owned())?;
        Self::new("openmm", Some(parameters.as_any()))
    }

    /// Coordinates per configuration.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The potential's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Coordinates per particle.
    #[getter]
    fn spatial_dim(&self) -> usize {
        self.spatial_dim
    }

    /// Number of particles.
    #[getter]
    fn n_particles(&self) -> usize {
        self.n_particles
    }

    /// U(x): a float for one configuration ``(dim,)``, an array ``(n,)`` for a batch
    /// ``(n, dim)`` (computed in parallel, without the GIL).
    ///
    /// Raises ``ValueError`` for a wrong shape or a NaN coordinate (naming it), ``TypeError``
    /// for an array that is not float64.
    fn energy<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let x = configurations(x, "x", self.inner.dim())?;
        let values = x.values();
        if !x.batched {
            let u = self
                .inner
                .energy(values)
                .map_err(boltzgen::Error::from)
                .py_err()?;
            return Ok(u.into_pyobject(py)?.into_any());
        }
        let mut out = vec![0.0; x.n];
        let inner = &self.inner;
        py.detach(|| inner.energies(values, &mut out))
            .map_err(boltzgen::Error::from)
            .py_err()?;
        Ok(to_numpy(py, out).into_any())
    }

    /// ``(U(x), ∇U(x))``: a float and a ``(dim,)`` array for one configuration, arrays
    /// ``(n,)`` and ``(n, dim)`` for a batch.
    fn energy_and_gradient<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let dim = self.inner.dim();
        let x = configurations(x, "x", dim)?;
        let values = x.values();
        let mut grads = vec![0.0; x.n * dim];
        if !x.batched {
            let u = self
                .inner
                .energy_and_gradient(values, &mut grads)
                .map_err(boltzgen::Error::from)
                .py_err()?;
            return Ok((
                u.into_pyobject(py)?.into_any(),
                to_numpy_rows(py, grads, dim, false)?,
            ));
        }
        let mut out = vec![0.0; x.n];
        let inner = &self.inner;
        py.detach(|| inner.energies_and_gradients(values, &mut out, &mut grads))
            .map_err(boltzgen::Error::from)
            .py_err()?;
        Ok((
            to_numpy(py, out).into_any(),
            to_numpy_rows(py, grads, dim, true)?,
        ))
    }

    fn __repr__(&self) -> String {
        format!(
            "boltzgen.Potential({:?}, dim={})",
            self.inner.name(),
            self.inner.dim()
        )
    }
}
