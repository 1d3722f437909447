//! Whole runs driven by a [`RunConfig`]: train → sample → reweight, each writing into a run
//! directory. The `boltzgen` command is a thin layer over this module; embedders can call it
//! too.
//!
//! Everything the user gave is checked (config, trajectory, model file) before the run
//! directory is touched, so bad input leaves nothing behind. Reports are written atomically;
//! sample trajectories stream and are flushed at every checkpoint.

mod balance;
mod commands;
mod inspect;
mod phases;
mod plot;
mod reweight;
mod run_dir;
mod sample;
mod train;
mod verdict;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{
    CollectiveVariable, FrameSelection, KeepSpec, ModelKind, OversampleSpec, RunConfig, System,
};
use crate::error::{Error, Result};
use crate::generator::store::{load_flow, load_vae, ModelMetadata};
use crate::generator::{DeviceChoice, Flow, Generator, TorchScriptGenerator, Vae};
use crate::io::trajectory::{read_frames, FrameRange, ReadSpec};

pub use commands::{
    draw_plots, existing_model, prepare_run, reweight_command, run_command, sample_command,
    train_command, RunReport, BUILTIN_EXAMPLE,
};
pub use inspect::inspect;
pub use plot::{plot_run, Phase, PlotSummary, Scatter, Surface};
pub use reweight::{reweight, BalanceReport, ReweightSummary, StateEstimate, StratumReport};
pub use run_dir::{Stage, RUN_DIR_MARKER};
pub use sample::{
    sample, sample_on, sample_worker, ReplicaExchangeSummary, SampleSummary, StateReport,
};
pub use train::{train, OversampleReport, TrainSummary};
pub use verdict::{chains_against_weights, run_warnings};

/// Command-line level choices that override or complement the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overrides the config's seed.
    pub seed: Option<u64>,
    /// Overrides the config's device.
    pub device: Option<DeviceChoice>,
    /// Replace an existing run directory.
    pub force: bool,
    /// Continue from the checkpoints in an existing run directory.
    pub resume: bool,
    /// Overrides the run directory.
    pub output: Option<PathBuf>,
}

/// Receives progress; the CLI draws bars from it. Every method defaults to nothing.
pub trait Progress {
    /// A phase with `total` units of work begins.
    fn start(&mut self, _phase: &str, _total: u64) {}
    /// `done` units of the current phase are complete.
    fn update(&mut self, _done: u64, _message: &str) {}
    /// The current phase is over.
    fn finish(&mut self) {}
    /// A line for the user's log.
    fn note(&mut self, _line: &str) {}
    /// True when the user asked the run to stop (Ctrl-C in Python): training, sampling and
    /// reweighting then end with [`Error::Interrupted`], sampling after a checkpoint.
    fn interrupted(&mut self) -> bool {
        false
    }
}

/// Progress that goes nowhere.
pub struct Silent;
impl Progress for Silent {}

/// A trained or loaded generator.
pub enum Model {
    /// A normalizing flow.
    Flow(Flow),
    /// A VAE.
    Vae(Vae),
    /// A PyTorch flow exported as TorchScript.
    TorchScript(TorchScriptGenerator),
}

impl Model {
    /// Opens a saved model of any kind: a TorchScript module by its extension (`.pt`, `.ts`,
    /// `.torchscript`), otherwise a boltzgen model file (`model.json` and its weights), flow
    /// or VAE as the file says.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Model`] naming the file for a missing, corrupt or unusable model.
    pub fn open(file: &Path, device: DeviceChoice) -> Result<Self> {
        let is_torchscript = file
            .extension()
            .is_some_and(|e| e == "pt" || e == "ts" || e == "torchscript");
        if is_torchscript {
            return Ok(Model::TorchScript(TorchScriptGenerator::load(
                file, device,
            )?));
        }
        Ok(
            match crate::generator::store::read_model_file(file)?.model {
                crate::generator::store::ModelSpec::Vae(_) => Model::Vae(load_vae(file, device)?.0),
                crate::generator::store::ModelSpec::Flow(_) => {
                    Model::Flow(load_flow(file, device)?.0)
                }
            },
        )
    }

    /// The model's kind: `flow`, `vae` or `torchscript`.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Flow(_) => "flow",
            Model::Vae(_) => "vae",
            Model::TorchScript(_) => "torchscript",
        }
    }

    /// The model as a generator.
    pub fn generator(&self) -> &dyn Generator {
        match self {
            Model::Flow(f) => f,
            Model::Vae(v) => v,
            Model::TorchScript(t) => t,
        }
    }
}

/// Everything a run needs, checked before any file is written.
pub struct Prepared {
    /// The config, as read.
    pub config: RunConfig,
    /// The config file's path (for naming outputs).
    pub config_path: PathBuf,
    /// The system.
    pub system: System,
    /// Training frames, `[n × dim]`, when `[data]` is given.
    pub data: Option<Vec<f64>>,
    /// Where the frames of `data` came from: each trajectory file with its number of frames,
    /// in order (empty for exact samples).
    pub data_files: Vec<(PathBuf, usize)>,
    /// The frames `[data] oversample` selects: each file it names with the rows of `data` (in
    /// order) whose CV lies in its range. Checked as the frames are read, so that a file
    /// without such a frame fails before anything is written.
    pub oversampled_rows: Vec<(PathBuf, Vec<usize>)>,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The seed in force.
    pub seed: u64,
    /// The device in force.
    pub device: DeviceChoice,
}

impl Prepared {
    /// Reads the config, builds the system and reads the training frames.
    ///
    /// # Errors
    /// Whatever is wrong with the config or the trajectory, naming the file.
    pub fn new(config_path: &Path, options: &Options) -> Result<Self> {
        let config = RunConfig::load(config_path)?;
        Self::from_config(config, config_path, options)
    }

    /// As [`Prepared::new`] from an already parsed config.
    ///
    /// # Errors
    /// As [`Prepared::new`].
    pub fn from_config(config: RunConfig, config_path: &Path, options: &Options) -> Result<Self> {
        let system = config.system.build().map_err(|e| match e {
            Error::Config { key, message, .. } => Error::Config {
                file: config_path.to_owned(),
                key,
                message,
            },
            other => other,
        })?;
        let mut data_files = Vec::new();
        let mut oversampled_rows = Vec::new();
        let data = match &config.data {
            Some(d) if d.exact_samples.is_some() => {
                let draw = system.exact_sampler.as_ref().ok_or_else(|| Error::Config {
                    file: config_path.to_owned(),
                    key: "data.exact_samples".into(),
                    message: "this potential has no exact sampler".into(),
                })?;
                let seed = options.seed.unwrap_or(config.seed);
                Some(draw(d.exact_samples.unwrap_or(0), seed)?)
            }
            Some(d) => {
                let trajectories = d.trajectory.as_ref().ok_or_else(|| Error::Config {
                    file: config_path.to_owned(),
                    key: "data.trajectory".into(),
                    message: "required (or exact_samples)".into(),
                })?;
                let mut all = Vec::new();
                for (i, trajectory) in trajectories.paths().iter().enumerate() {
                    let frames: FrameRange = match d.frames.as_ref().map(|f| f.for_file(i)) {
                        Some(Some(f)) => f.parse().map_err(|m: String| Error::Config {
                            file: config_path.to_owned(),
                            key: "data.frames".into(),
                            message: m,
                        })?,
                        Some(None) => {
                            return Err(Error::Config {
                                file: config_path.to_owned(),
                                key: "data.frames".into(),
                                message: format!("no range for {}", trajectory.display()),
                            })
                        }
                        None => FrameRange::default(),
                    };
                    let spec = ReadSpec {
                        frames,
                        selection: d.selection.clone(),
                        n_particles: system.n_particles,
                        spatial_dim: system.spatial_dim,
                        length_per_angstrom: system.length_per_angstrom,
                    };
                    let mut frames = read_frames(trajectory, &spec)?;
                    let dim = system.potential.dim();
                    let applies = |s: &FrameSelection| s.filters(trajectory);
                    if let Some(keep) = d.keep.as_ref().map(KeepSpec::selection).filter(applies) {
                        let rows = rows_in_range(&frames, &system, keep, trajectory, config_path)?;
                        frames = rows
                            .iter()
                            .flat_map(|&i| &frames[i * dim..(i + 1) * dim])
                            .copied()
                            .collect();
                    }
                    let oversample = d.oversample.as_ref().map(OversampleSpec::selection);
                    if let Some(o) = oversample.filter(applies) {
                        let first = all.len() / dim;
                        let rows = rows_in_range(&frames, &system, o, trajectory, config_path)?;
                        let rows = rows.into_iter().map(|i| first + i).collect();
                        oversampled_rows.push((trajectory.clone(), rows));
                    }
                    data_files.push((trajectory.clone(), frames.len() / dim));
                    all.extend(frames);
                }
                Some(all)
            }
            None => None,
        };
        let stem = config_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let run_dir = options
            .output
            .clone()
            .or_else(|| config.output.directory.clone())
            .unwrap_or_else(|| PathBuf::from("runs").join(stem));
        let device = options.device.unwrap_or(config.device);
        // A device that is not there is refused now, not after the run directory exists.
        if config.model.is_some() {
            device.device().map_err(|e| match e {
                Error::InvalidArgument { message, .. } => Error::InvalidArgument {
                    name: "device".into(),
                    message: format!("{message} (--device or the config's `device`)"),
                },
                other => other,
            })?;
        }
        Ok(Self {
            seed: options.seed.unwrap_or(config.seed),
            device,
            config,
            config_path: config_path.to_owned(),
            system,
            data,
            data_files,
            oversampled_rows,
            run_dir,
        })
    }

    /// Reads every frame of a trajectory this run wrote (all atoms, the system's units).
    ///
    /// # Errors
    /// [`Error::Trajectory`] naming the file.
    pub fn read_written(&self, path: &Path) -> Result<Vec<f64>> {
        // A run that recorded no frame (fewer production steps than `thin`) leaves an empty
        // file, which some formats (DCD) cannot even open: it holds no configuration.
        if std::fs::metadata(path).map_err(Error::io(path))?.len() == 0 {
            return Ok(Vec::new());
        }
        read_frames(
            path,
            &ReadSpec {
                frames: FrameRange::default(),
                selection: None,
                n_particles: self.system.n_particles,
                spatial_dim: self.system.spatial_dim,
                length_per_angstrom: self.system.length_per_angstrom,
            },
        )
    }

    /// Loads the model named by `[model] file`, checking it was made for this system.
    ///
    /// # Errors
    /// [`Error::Model`] naming the file for a missing, corrupt or foreign model.
    pub fn load_model_file(&self) -> Result<Option<Model>> {
        let Some(m) = &self.config.model else {
            return Ok(None);
        };
        let Some(file) = &m.file else {
            return Ok(None);
        };
        self.load_model(file, m.kind).map(Some)
    }

    /// Loads a model file of the given kind and checks its system tag.
    ///
    /// # Errors
    /// As [`Prepared::load_model_file`].
    pub fn load_model(&self, file: &Path, kind: ModelKind) -> Result<Model> {
        let (model, metadata) = match kind {
            ModelKind::Vae => {
                let (v, m) = load_vae(file, self.device)?;
                (Model::Vae(v), m)
            }
            ModelKind::Torchscript => (
                Model::TorchScript(TorchScriptGenerator::load(file, self.device)?),
                ModelMetadata::default(),
            ),
            _ => {
                let (f, m) = load_flow(file, self.device)?;
                (Model::Flow(f), m)
            }
        };
        let dim = self.system.potential.dim();
        let name = self.system.potential.name().to_string();
        if let Some(tag) = &metadata.system {
            if tag.dim != dim || tag.potential != name {
                return Err(Error::Model {
                    file: file.to_owned(),
                    message: format!(
                        "made for `{}` with {} coordinates; this run's system is `{name}` with {dim}",
                        tag.potential, tag.dim
                    ),
                });
            }
        }
        let model_dim = model.generator().dim();
        if model_dim != dim {
            return Err(Error::Model {
                file: file.to_owned(),
                message: format!("has {model_dim} coordinates; the system has {dim}"),
            });
        }
        Ok(model)
    }

    /// A path inside the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    /// The chemfiles element name atoms get in written trajectories.
    pub fn element(&self) -> &'static str {
        match self.system.potential.name() {
            n if n.contains("lennard") || n.contains("lj") => "Ar",
            _ => "X",
        }
    }
}

/// Draws the plots of the run directory (see [`plot_run`]), with 2-D scatters of up to 20 000
/// samples and training frames: of the two `[analysis] scatter` collective variables (φ and
/// ψ for a Ramachandran plot), else of the first two coordinates.
///
/// # Errors
/// As [`plot_run`]; an unreadable sample trajectory only drops its scatter.
pub fn plots(prep: &Prepared) -> Result<PlotSummary> {
    let format = &prep.config.output.trajectory_format;
    let samples = prep.path(&format!("samples.{format}"));
    let dim = prep.system.potential.dim();
    let spatial_dim = prep.system.spatial_dim;
    let axes = prep.config.analysis.scatter.clone();
    let labels = match &axes {
        Some([a, b]) => (a.label(), b.label()),
        None => ("x₀".to_string(), "x₁".to_string()),
    };
    let plane = |x: &[f64], stride: usize| -> Vec<(f64, f64)> {
        x.chunks_exact(dim)
            .step_by(stride.max(1))
            .map(|c| match &axes {
                Some([a, b]) => (a.value(c, spatial_dim), b.value(c, spatial_dim)),
                None => (c[0], c[1]),
            })
            .collect()
    };
    // Scatters show at most 20 000 points; surfaces use them all.
    let points = |x: &[f64]| plane(x, (x.len() / dim.max(1)).div_ceil(20_000));
    let angles = matches!(
        &axes,
        Some([
            CollectiveVariable::Dihedral { .. },
            CollectiveVariable::Dihedral { .. }
        ])
    );
    let surface = |name: &str, title: &str, points: Vec<(f64, f64)>, log_weights| Surface {
        name: name.into(),
        title: title.into(),
        x_label: labels.0.clone(),
        y_label: labels.1.clone(),
        points,
        log_weights,
        range: angles.then_some([[-180.0, 180.0], [-180.0, 180.0]]),
    };
    let mut scatters = Vec::new();
    let mut surfaces = Vec::new();
    if dim >= 2 && samples.is_file() {
        if let Ok(x) = prep.read_written(&samples) {
            scatters.push(Scatter {
                name: "samples_2d".into(),
                title: "Samples (MCMC)".into(),
                x_label: labels.0.clone(),
                y_label: labels.1.clone(),
                points: points(&x),
            });
            if axes.is_some() {
                surfaces.push(surface(
                    "fes_samples",
                    "Free energy: MCMC samples",
                    plane(&x, 1),
                    None,
                ));
            }
        }
    }
    if let (Some(data), true) = (&prep.data, dim >= 2) {
        scatters.push(Scatter {
            name: "data_2d".into(),
            title: "Training frames".into(),
            x_label: labels.0.clone(),
            y_label: labels.1.clone(),
            points: points(data),
        });
        if axes.is_some() {
            surfaces.push(surface(
                "fes_data",
                "Free energy: training frames (as given)",
                plane(data, 1),
                None,
            ));
        }
    }
    // Generator draws from weights.csv, as drawn and importance-weighted.
    let weights = axes.as_ref().and_then(|_| {
        plot::read_columns(
            &prep.path("weights.csv"),
            &["scatter_x", "scatter_y", "log_w", "log_a"],
        )
    });
    if let Some([x, y, log_w, log_a]) = weights
        .and_then(|c| <[Vec<f64>; 4]>::try_from(c).ok())
        .filter(|[x, ..]| x.iter().any(|v| v.is_finite()))
    {
        let points: Vec<(f64, f64)> = x.into_iter().zip(y).collect();
        // Draws thinned by region (`[reweight] balance`, the column `log_a`) count 1/a each,
        // which gives back the generator's own distribution.
        let undo_thinning = log_a
            .iter()
            .all(|a| a.is_finite())
            .then(|| log_a.iter().map(|a| -a).collect());
        surfaces.push(surface(
            "fes_generator",
            "Free energy: generator draws",
            points.clone(),
            undo_thinning,
        ));
        surfaces.push(surface(
            "fes_reweighted",
            "Free energy: generator draws reweighted to exp(−βU)",
            points,
            Some(log_w),
        ));
    }
    plot_run(
        &prep.run_dir,
        &scatters,
        &surfaces,
        &phases::training_phases(prep),
    )
}

/// Writes `value` as pretty JSON to `path`, atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidArgument {
        name: "report".into(),
        message: e.to_string(),
    })?;
    crate::io::write_atomically(path, |tmp| {
        std::fs::write(tmp, text).map_err(Error::io(tmp))
    })
}

/// A finite number for JSON (NaN and ±∞ are not JSON numbers): `None` otherwise.
pub(crate) fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The rows of `frames` (of `file`) whose collective variable lies in the range of `[data]
/// keep` or `oversample` (`key`); an error naming the key, the file and the range if there is
/// none.
fn rows_in_range(
    frames: &[f64],
    system: &System,
    selection: FrameSelection,
    file: &Path,
    config_path: &Path,
) -> Result<Vec<usize>> {
    let FrameSelection { key, cv, range, .. } = selection;
    let rows: Vec<usize> = frames
        .chunks_exact(system.potential.dim())
        .enumerate()
        .filter(|(_, x)| selection.in_range(cv.value(x, system.spatial_dim)))
        .map(|(i, _)| i)
        .collect();
    if rows.is_empty() && !frames.is_empty() {
        return Err(Error::Config {
            file: config_path.to_owned(),
            key: key.into(),
            message: format!(
                "no frame of {} has {} in [{}, {}]",
                file.display(),
                cv.label(),
                range[0],
                range[1]
            ),
        });
    }
    Ok(rows)
}
