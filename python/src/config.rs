//! Run configs from Python: a TOML file's path, or a dict with the same sections and keys.
//!
//! A dict goes through JSON into TOML text and then through the same parser and checks as a
//! file, so that it accepts exactly what a file accepts and its errors name the same keys.

use std::path::{Path, PathBuf};

use boltzgen::config::RunConfig;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::{ConfigError, IntoPy};

/// The name a dict config goes by in error messages and in its default run directory
/// (`runs/dict`).
pub const DICT_CONFIG: &str = "dict.toml";

/// A Python dict (or anything `json.dumps` takes) as a TOML table; `name` names it in errors.
pub fn table_from_json(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<toml::Table> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a dict, got a {}",
            obj.get_type().name()?
        )));
    }
    let text: String = obj
        .py()
        .import("json")?
        .call_method1("dumps", (obj,))
        .map_err(|e| ConfigError::new_err(format!("{name} cannot be written as JSON: {e}")))?
        .extract()?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ConfigError::new_err(format!("{name}: {e}")))?;
    let value: toml::Value =
        serde::Deserialize::deserialize(value).map_err(|e: serde_json::Error| {
            ConfigError::new_err(format!(
                "{name} has a value TOML cannot hold (None, or a list mixing types): {e}"
            ))
        })?;
    match value {
        toml::Value::Table(t) => Ok(t),
        _ => Err(PyTypeError::new_err(format!("{name} must be a dict"))),
    }
}

/// A config given as a path (str or `os.PathLike`) or a dict: the parsed config and the path
/// that names it (the file, or [`DICT_CONFIG`]).
pub fn run_config(obj: &Bound<'_, PyAny>) -> PyResult<(RunConfig, PathBuf)> {
    if obj.is_instance_of::<PyDict>() {
        let table = table_from_json(obj, "config")?;
        let text = toml::to_string(&table)
            .map_err(|e| ConfigError::new_err(format!("config cannot be written as TOML: {e}")))?;
        let path = PathBuf::from(DICT_CONFIG);
        let config = RunConfig::parse(&text, &path).py_err()?;
        return Ok((config, path));
    }
    let path: PathBuf = if obj.is_instance_of::<PyString>() {
        PathBuf::from(obj.extract::<String>()?)
    } else {
        obj.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "config must be a path to a TOML file or a dict, got a {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
    };
    let config = RunConfig::load(Path::new(&path)).py_err()?;
    Ok((config, path))
}
