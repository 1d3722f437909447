//! NumPy arrays in: borrowed, never copied, and checked (dtype, shape, contiguity) with an
//! error that names the argument and says how to fix it. Arrays out: the Rust vectors are
//! handed to NumPy without a copy.

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A shape as NumPy writes it: `(3,)`, `(4, 3)`.
pub fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A borrowed float64 array of configurations: one `(dim,)` or a batch `(n, dim)`.
pub struct Configurations<'py> {
    array: PyReadonlyArrayDyn<'py, f64>,
    /// Number of configurations.
    pub n: usize,
    /// True for a `(n, dim)` batch, false for one `(dim,)` configuration.
    pub batched: bool,
}

impl Configurations<'_> {
    /// The coordinates, row-major `[n × dim]`, borrowed from the array.
    pub fn values(&self) -> &[f64] {
        // Contiguity was checked when the array was taken.
        self.array.as_slice().unwrap_or(&[])
    }
}

/// Borrows `obj` as float64, C-contiguous, with any shape; `name` is the argument's name.
pub fn float64<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArrayDyn<'py, f64>> {
    let array = match obj.cast::<PyArrayDyn<f64>>() {
        Ok(a) => a,
        Err(_) => {
            let got = match obj.getattr("dtype") {
                Ok(dtype) => format!("an array of dtype {dtype}"),
                Err(_) => format!("a {}", obj.get_type().name()?),
            };
            return Err(PyTypeError::new_err(format!(
                "{name} must be a NumPy array of float64, got {got} \
                 (convert it with numpy.asarray({name}, dtype=numpy.float64))"
            )));
        }
    };
    let readonly = array.try_readonly().map_err(|e| {
        PyValueError::new_err(format!("{name} cannot be borrowed for reading: {e}"))
    })?;
    if !readonly.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name} is not C-contiguous (a transposed or strided view); boltzgen reads arrays \
             in place and does not copy them behind your back: pass \
             numpy.ascontiguousarray({name})"
        )));
    }
    Ok(readonly)
}

/// Borrows `obj` as configurations of `dim` coordinates: shape `(dim,)` or `(n, dim)`.
pub fn configurations<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    dim: usize,
) -> PyResult<Configurations<'py>> {
    let array = float64(obj, name)?;
    let shape = array.shape().to_vec();
    let (n, batched) = match shape.as_slice() {
        [d] if *d == dim => (1, false),
        [n, d] if *d == dim => (*n, true),
        _ => {
            return Err(PyValueError::new_err(format!(
                "{name} has shape {}; expected ({dim},) for one configuration or \
                 (n, {dim}) for a batch",
                shape_text(&shape)
            )))
        }
    };
    Ok(Configurations { array, n, batched })
}

/// Borrows `obj` as a 1-D float64 array, optionally of a given length.
pub fn vector<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    len: Option<usize>,
) -> PyResult<PyReadonlyArrayDyn<'py, f64>> {
    let array = float64(obj, name)?;
    match (array.shape(), len) {
        ([n], Some(len)) if *n != len => Err(PyValueError::new_err(format!(
            "{name} has {n} values; expected {len}"
        ))),
        ([_], _) => Ok(array),
        (shape, _) => Err(PyValueError::new_err(format!(
            "{name} has shape {}; expected a 1-D array",
            shape_text(shape)
        ))),
    }
}

/// The rows of a 2-D float64 array `(chains, steps)`, or a list of 1-D arrays (chains of any
/// lengths), as owned slices' borrows.
pub fn chains<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Vec<PyReadonlyArrayDyn<'py, f64>>> {
    if let Ok(list) = obj.cast::<pyo3::types::PyList>() {
        return list
            .iter()
            .enumerate()
            .map(|(i, item)| vector(&item, &format!("{name}[{i}]"), None))
            .collect();
    }
    let array = float64(obj, name)?;
    match array.shape() {
        [_] => Ok(vec![array]),
        [_, _] => {
            // Row views of one contiguous array: split by the caller via `rows_of`.
            Ok(vec![array])
        }
        shape => Err(PyValueError::new_err(format!(
            "{name} has shape {}; expected (steps,), (chains, steps) or a list of 1-D arrays",
            shape_text(shape)
        ))),
    }
}

/// The chains of [`chains`] as slices: a 2-D array splits into its rows.
pub fn chain_slices<'a>(arrays: &'a [PyReadonlyArrayDyn<'_, f64>]) -> Vec<&'a [f64]> {
    let mut out = Vec::new();
    for a in arrays {
        let values = a.as_slice().unwrap_or(&[]);
        match a.shape() {
            [rows, cols] if *cols > 0 => out.extend(values.chunks(*cols).take(*rows)),
            [_, _] => {}
            _ => out.push(values),
        }
    }
    out
}

/// A vector handed to NumPy without a copy.
pub fn to_numpy<'py>(py: Python<'py>, values: Vec<f64>) -> Bound<'py, PyArray1<f64>> {
    PyArray1::from_vec(py, values)
}

/// A row-major `[n × dim]` vector as an `(n, dim)` array (or `(dim,)` when `batched` is false),
/// without a copy.
pub fn to_numpy_rows<'py>(
    py: Python<'py>,
    values: Vec<f64>,
    dim: usize,
    batched: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, values);
    if batched {
        let n = flat.len().checked_div(dim).unwrap_or(0);
        Ok(flat.reshape([n, dim])?.into_any())
    } else {
        Ok(flat.into_any())
    }
}
