//! Whole runs from Python: `train`, `sample`, `reweight` and `run`, from a TOML file or a dict,
//! writing the same run directory as the `boltzgen` command and returning its report as a
//! dict.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use boltzgen::mcmc::OneProcess;
use boltzgen::pipeline::{
    prepare_run, reweight_command, run_command, sample_command, train_command, Options, Prepared,
    Progress, RunReport,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::configurations;
use crate::config::run_config;
use crate::errors::IntoPy;
use crate::model::{device, Model};

/// Progress on stderr, one line per phase and note (nothing when quiet); and Ctrl-C: Python's
/// signal handlers run (at most every 50 ms, with the GIL taken back for a moment), and a
/// `KeyboardInterrupt` stops the run at its next step or block.
struct Log {
    quiet: bool,
    interrupted: bool,
    checked: Instant,
}

impl Log {
    fn new(quiet: bool) -> Self {
        Self {
            quiet,
            interrupted: false,
            checked: Instant::now(),
        }
    }
}

impl Progress for Log {
    fn interrupted(&mut self) -> bool {
        if !self.interrupted && self.checked.elapsed() >= Duration::from_millis(50) {
            self.checked = Instant::now();
            self.interrupted = Python::attach(|py| py.check_signals().is_err());
        }
        self.interrupted
    }
    fn start(&mut self, phase: &str, total: u64) {
        if !self.quiet {
            eprintln!("boltzgen: {phase} ({total})");
        }
    }
    fn note(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("boltzgen: {line}");
        }
    }
}

/// The command-line options every run call takes.
fn options(
    output: Option<PathBuf>,
    seed: Option<u64>,
    device_name: Option<&str>,
    force: bool,
    resume: bool,
) -> PyResult<Options> {
    Ok(Options {
        seed,
        device: device_name.map(device).transpose()?,
        force,
        resume,
        output,
    })
}

/// The config (path or dict) read and checked, ready to run.
fn prepared(config: &Bound<'_, PyAny>, options: &Options) -> PyResult<Prepared> {
    let (config, path) = run_config(config)?;
    Prepared::from_config(config, &path, options).py_err()
}

/// A report as a Python dict (through JSON: NaN and ±∞ become None, as in the report files).
fn to_dict<'py>(py: Python<'py>, report: &RunReport) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(report)
        .map_err(|e| PyRuntimeError::new_err(format!("report cannot be written as JSON: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Trains the ``[model]`` of ``config`` with its ``[train]`` section, exactly as
/// ``boltzgen train`` does, and returns ``(model, report)``.
///
/// ``config`` is a path to a TOML run config or a dict with the same sections (a dict's run
/// directory defaults to ``runs/dict``; relative paths in it are relative to the working
/// directory). ``data``, a float64 array ``(n, dim)``, replaces the training frames of
/// ``[data]`` (it needs no ``[data]`` section). ``output`` overrides the run directory,
/// ``seed`` and ``device`` the config's; ``force`` replaces an existing run directory (only one
/// that boltzgen made), ``resume`` continues from its checkpoints; ``quiet=False`` logs
/// progress on stderr. The GIL is released while training.
///
/// Example::
///
///     model, report = boltzgen.train("examples/double_well.toml", output="runs/dw")
///     print(report["train"]["final_loss"])
#[pyfunction]
#[pyo3(signature = (config, data = None, *, output = None, seed = None, device = None, force = false, resume = false, quiet = true))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    data: Option<&Bound<'py, PyAny>>,
    output: Option<PathBuf>,
    seed: Option<u64>,
    device: Option<&str>,
    force: bool,
    resume: bool,
    quiet: bool,
) -> PyResult<(Model, Bound<'py, PyAny>)> {
    let outcome = (|| {
        let options = options(output, seed, device, force, resume)?;
        let mut prep = prepared(config, &options)?;
        if let Some(data) = data {
            let dim = prep.system.potential.dim();
            let frames = configurations(data, "data", dim)?;
            if !frames.batched || frames.n == 0 {
                return Err(PyValueError::new_err(format!(
                    "data must be a batch of frames (n, {dim}) with n ≥ 1"
                )));
            }
            let values = frames.values();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(PyValueError::new_err(format!(
                    "data: frame {} has a non-finite coordinate ({} at index {})",
                    i / dim,
                    values[i],
                    i % dim
                )));
            }
            prep.data = Some(values.to_vec());
            prep.data_files.clear();
            prep.oversampled_rows.clear();
        }
        let (model, report) = py
            .detach(|| train_command(&prep, &options, &mut Log::new(quiet)))
            .py_err()?;
        let report = to_dict(py, &report)?;
        Ok((Model::new(model), report))
    })();
    crate::log::flushed(py, outcome)
}

/// Samples with exact Metropolis–Hastings, as ``boltzgen sample`` does (learned moves use
/// ``[model] file`` or the model a previous ``train`` left in the run directory), and returns
/// the report as a dict. Options as for ``train``.
///
/// Example::
///
///     report = boltzgen.sample("examples/double_well.toml", output="runs/dw")
///     energy = report["sample"]["energy"]
///     print(energy["mean"], "+-", energy["std_error"], "tau", energy["tau"])
#[pyfunction]
#[pyo3(signature = (config, *, output = None, seed = None, device = None, force = false, resume = false, quiet = true))]
#[allow(clippy::too_many_arguments)]
pub fn sample<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    output: Option<PathBuf>,
    seed: Option<u64>,
    device: Option<&str>,
    force: bool,
    resume: bool,
    quiet: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let outcome = (|| {
        let options = options(output, seed, device, force, resume)?;
        let prep = prepared(config, &options)?;
        let report = py
            .detach(|| sample_command(&prep, &options, &mut Log::new(quiet), &OneProcess))
            .py_err()?;
        to_dict(py, &report)
    })();
    crate::log::flushed(py, outcome)
}

/// Importance-reweights direct draws of the trained model, as ``boltzgen reweight`` does, and
/// returns the report as a dict. Options as for ``train``.
///
/// Example::
///
///     report = boltzgen.reweight("examples/double_well.toml", output="runs/dw")
///     log_z = report["reweight"]["log_z"]
///     print(report["reweight"]["ess_fraction"], log_z["value"], "+-", log_z["std_error"])
#[pyfunction]
#[pyo3(signature = (config, *, output = None, seed = None, device = None, force = false, quiet = true))]
pub fn reweight<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    output: Option<PathBuf>,
    seed: Option<u64>,
    device: Option<&str>,
    force: bool,
    quiet: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let outcome = (|| {
        let options = options(output, seed, device, force, false)?;
        let prep = prepared(config, &options)?;
        let report = py
            .detach(|| reweight_command(&prep, &options, &mut Log::new(quiet)))
            .py_err()?;
        to_dict(py, &report)
    })();
    crate::log::flushed(py, outcome)
}

/// Train, sample, reweight and plot, as ``boltzgen run`` does; ``config=None`` runs the
/// built-in double-well example (into ``runs/double_well`` unless ``output`` says
/// otherwise). Returns the report (``report.json``) as a dict. Options as for ``train``.
///
/// Example::
///
///     report = boltzgen.run(output="runs/example", force=True)
///     print(report["reweight"]["ess_fraction"], report["warnings"])
#[pyfunction]
#[pyo3(signature = (config = None, *, output = None, seed = None, device = None, force = false, resume = false, quiet = true))]
#[allow(clippy::too_many_arguments)]
pub fn run<'py>(
    py: Python<'py>,
    config: Option<&Bound<'py, PyAny>>,
    output: Option<PathBuf>,
    seed: Option<u64>,
    device: Option<&str>,
    force: bool,
    resume: bool,
    quiet: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let outcome = (|| {
        let options = options(output, seed, device, force, resume)?;
        let prep = match config {
            Some(c) => prepared(c, &options)?,
            None => prepare_run(None, &options).py_err()?,
        };
        let report = py
            .detach(|| run_command(&prep, &options, &mut Log::new(quiet), &OneProcess))
            .py_err()?;
        to_dict(py, &report)
    })();
    crate::log::flushed(py, outcome)
}
