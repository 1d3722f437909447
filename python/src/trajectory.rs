//! `boltzgen.read_frames`: trajectory files (every format chemfiles reads) as NumPy arrays,
//! read the way a run's `[data]` section reads them.

use std::path::PathBuf;

use boltzgen::config::LengthUnit;
use boltzgen::io::trajectory::{count_atoms, read_frames as read, FrameRange, ReadSpec};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::to_numpy_rows;
use crate::errors::IntoPy;

/// The frames of a trajectory file as an array ``(n_frames, n_atoms * spatial_dim)``, each row
/// one configuration in boltzgen's layout (atom by atom, x y z).
///
/// ``frames`` is a range as in ``[data] frames`` (``"0:1000:10"``, ``"5:"``, ``"7"``; all by
/// default); ``selection`` a chemfiles selection (``"not name H"``); ``spatial_dim`` the
/// coordinates kept per atom (1–3); ``length_unit`` the unit of the returned numbers:
/// ``"nanometer"`` (OpenMM's, the default), ``"angstrom"`` or ``"reduced"`` (the file's numbers
/// unchanged).
///
/// Raises ``boltzgen.TrajectoryError`` naming the file and the frame for a missing, truncated
/// or unreadable file, or a frame with a non-finite coordinate.
///
/// Example::
///
///     x = boltzgen.read_frames("md_300K.dcd", frames="0:20000:10")
///     u = boltzgen.Potential.openmm("system.xml").energy(x)
#[pyfunction]
#[pyo3(signature = (path, frames = None, selection = None, spatial_dim = 3, length_unit = "nanometer"))]
pub fn read_frames<'py>(
    py: Python<'py>,
    path: PathBuf,
    frames: Option<&str>,
    selection: Option<String>,
    spatial_dim: usize,
    length_unit: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let unit = match length_unit {
        "nanometer" | "nm" => LengthUnit::Nanometer,
        "angstrom" => LengthUnit::Angstrom,
        "reduced" => LengthUnit::Reduced,
        other => {
            return Err(PyValueError::new_err(format!(
                "length_unit must be \"nanometer\", \"angstrom\" or \"reduced\", got {other:?}"
            )))
        }
    };
    let range: FrameRange = match frames {
        Some(f) => f
            .parse()
            .map_err(|e| PyValueError::new_err(format!("frames {f:?}: {e}")))?,
        None => FrameRange::default(),
    };
    let values = py
        .detach(|| -> boltzgen::Result<(Vec<f64>, usize)> {
            let n_particles = count_atoms(&path, selection.as_deref())?;
            let values = read(
                &path,
                &ReadSpec {
                    frames: range,
                    selection,
                    n_particles,
                    spatial_dim,
                    length_per_angstrom: unit.per_angstrom(),
                },
            )?;
            Ok((values, n_particles))
        })
        .py_err();
    let (values, n_particles) = crate::log::flushed(py, values)?;
    to_numpy_rows(py, values, n_particles * spatial_dim, true)
}
