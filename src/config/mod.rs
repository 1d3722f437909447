//! Run configurations: TOML files read through serde with unknown keys refused.
//!
//! Every field is documented in `docs/config.md`. Errors name the file, the key (as a path
//! such as `sample.moves[1].kind`), the line, and what is allowed.

mod system;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostics::StateInterval;
use crate::error::{Error, Result};
use crate::generator::{DeviceChoice, Precision};
use crate::mcmc::MoveSpec;
use crate::train::TrainConfig;

pub use system::{EnergyUnit, LengthUnit, System, SystemConfig};

/// A whole run: the system, where training data comes from, the model, and what to do with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The potential, its parameters and the temperature.
    pub system: SystemConfig,
    /// Seed of every random stream (the CLI's `--seed` overrides it).
    #[serde(default)]
    pub seed: u64,
    /// Where models run (`--device` overrides it).
    #[serde(default)]
    pub device: DeviceChoice,
    /// Training frames from a trajectory file (for forward KL).
    #[serde(default)]
    pub data: Option<DataConfig>,
    /// The generator's architecture, or a file to load it from.
    #[serde(default)]
    pub model: Option<ModelConfig>,
    /// How to train the generator.
    #[serde(default)]
    pub train: Option<TrainConfig>,
    /// Metropolis–Hastings sampling.
    #[serde(default)]
    pub sample: Option<SampleConfig>,
    /// Importance reweighting of direct generator draws.
    #[serde(default)]
    pub reweight: Option<ReweightConfig>,
    /// Collective variable, states and profile for reports.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Where results go.
    #[serde(default)]
    pub output: OutputConfig,
}

/// Training data: frames of a trajectory, or exact samples of a reference potential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The trajectory file (any format chemfiles reads), relative to the config file, or a
    /// list of them (their frames are concatenated, `selection` applies to each, `frames` to each unless it is a list).
    #[serde(default)]
    pub trajectory: Option<Trajectories>,
    /// Instead of a trajectory: this many exact samples of the potential (double_well,
    /// many_well, gmm40, gaussian), for benchmarks against a perfect data set.
    #[serde(default)]
    pub exact_samples: Option<usize>,
    /// Frames as `start:stop:stride` (Python slice rules, no negatives), for every file or
    /// one range per trajectory file; all by default.
    #[serde(default)]
    pub frames: Option<FrameRanges>,
    /// A chemfiles selection (`"name Ar"`, `"index < 13"`); all atoms by default.
    #[serde(default)]
    pub selection: Option<String>,
    /// Cool the training frames to the system's temperature before training, by local
    /// one-particle Metropolis moves from each frame (see [`crate::mcmc::relax`]). Meant for
    /// frames from a hotter run: they keep its coverage of slow coordinates and gain the
    /// target's bond and angle distributions. Plots and starting points use the frames as read.
    #[serde(default)]
    pub relax: Option<RelaxSpec>,
    /// Keep only the frames whose collective variable lies in a range, from the files named
    /// (all by default): e.g. only the hot run's frames in the basin the cold run misses, so
    /// that the hot run teaches that basin without making the whole model hotter.
    #[serde(default)]
    pub keep: Option<KeepSpec>,
    /// Train on the frames whose collective variable lies in a range (of the files named, or
    /// all) `factor` times: e.g. the few hot-run frames in the basin the cold run misses, so
    /// that the model learns that basin as well as the others.
    #[serde(default)]
    pub oversample: Option<OversampleSpec>,
}

/// `[data] oversample = { cv = { kind = "dihedral", particles = [4, 6, 8, 14] }, range = [0.0,
/// 120.0], factor = 4, files = ["md_1000K.dcd"] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OversampleSpec {
    /// The collective variable that selects frames.
    pub cv: CollectiveVariable,
    /// `[lower, upper]` of the CV; `lower > upper` wraps around, as for `keep`.
    pub range: [f64; 2],
    /// How many times each selected frame is trained on in all (1 changes nothing).
    pub factor: usize,
    /// Oversample only the frames of these trajectory files (each one of `[data]
    /// trajectory`, relative to the config file). All files by default.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
}

impl OversampleSpec {
    /// Whether the frames of `file` are candidates at all.
    pub fn filters(&self, file: &Path) -> bool {
        self.selection().filters(file)
    }

    /// Whether a CV value lies in `range` (wrapping around when `lower > upper`).
    pub fn in_range(&self, value: f64) -> bool {
        self.selection().in_range(value)
    }

    /// The frames it picks, as `keep` describes its own.
    pub(crate) fn selection(&self) -> FrameSelection<'_> {
        FrameSelection {
            key: "data.oversample",
            cv: &self.cv,
            range: self.range,
            files: self.files.as_deref(),
        }
    }
}

/// How `[data] keep` and `[data] oversample` pick frames: the frames of some files (all when
/// `files` is `None`) whose collective variable lies in `range`. One type, so that both are
/// checked and applied by the same code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameSelection<'a> {
    /// The config key, for errors.
    pub key: &'static str,
    /// The collective variable that selects frames.
    pub cv: &'a CollectiveVariable,
    /// `[lower, upper]`; `lower > upper` wraps around.
    pub range: [f64; 2],
    /// The files it picks from (all when `None`).
    pub files: Option<&'a [PathBuf]>,
}

impl FrameSelection<'_> {
    /// Whether it picks among the frames of `file` at all.
    pub fn filters(&self, file: &Path) -> bool {
        self.files
            .is_none_or(|files| files.iter().any(|f| f == file))
    }

    /// Whether a CV value lies in `range` (wrapping around when `lower > upper`).
    pub fn in_range(&self, value: f64) -> bool {
        in_interval(self.range, value)
    }
}

/// `[data] keep = { cv = { kind = "dihedral", particles = [4, 6, 8, 14] }, range = [0.0,
/// 120.0], files = ["md_1000K.dcd"] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepSpec {
    /// The collective variable that selects frames.
    pub cv: CollectiveVariable,
    /// `[lower, upper]` of the CV; `lower > upper` wraps around (values `≥ lower` or
    /// `≤ upper`), as for periodic angles.
    pub range: [f64; 2],
    /// Filter only the frames of these trajectory files (each one of `[data] trajectory`,
    /// relative to the config file); the others are kept whole. All files by default.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
}

impl KeepSpec {
    /// Whether a frame of `file` with CV value `value` is kept.
    pub fn keeps(&self, file: &Path, value: f64) -> bool {
        !self.filters(file) || self.in_range(value)
    }

    /// Whether the frames of `file` are filtered at all (others are kept whole, and their
    /// CV need not be computed).
    pub fn filters(&self, file: &Path) -> bool {
        self.selection().filters(file)
    }

    /// Whether a CV value lies in `range` (wrapping around when `lower > upper`).
    pub fn in_range(&self, value: f64) -> bool {
        self.selection().in_range(value)
    }

    /// The frames it keeps, as `oversample` describes its own.
    pub(crate) fn selection(&self) -> FrameSelection<'_> {
        FrameSelection {
            key: "data.keep",
            cv: &self.cv,
            range: self.range,
            files: self.files.as_deref(),
        }
    }
}

/// `[data] relax = { steps = 1000, step = 0.005 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaxSpec {
    /// Metropolis steps per frame (each moves one particle).
    pub steps: usize,
    /// Initial step size per coordinate, in the system's length unit; adapted throughout.
    pub step: f64,
    /// The acceptance rate the step adapts towards (0.4 by default).
    #[serde(default = "default_relax_acceptance")]
    pub target_acceptance: f64,
    /// Relax only the frames of these trajectory files (each one of `[data] trajectory`,
    /// relative to the config file): typically the hot run's. All files by default.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
}

impl RelaxSpec {
    /// The relaxation settings for particles of `spatial_dim` coordinates and streams of `seed`.
    pub fn settings(&self, spatial_dim: usize, seed: u64) -> crate::mcmc::RelaxConfig {
        crate::mcmc::RelaxConfig {
            steps: self.steps,
            step: self.step,
            spatial_dim,
            target_acceptance: self.target_acceptance,
            seed,
        }
    }
}

fn default_relax_acceptance() -> f64 {
    0.4
}

/// `frames = "0:1000"` for every trajectory file, or `frames = ["0:20000", "0:20000:4"]`, one
/// per file (to take fewer frames of a hot run than of the target-temperature one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FrameRanges {
    /// The same range for every file.
    All(String),
    /// One range per file, in the order of `trajectory`.
    PerFile(Vec<String>),
}

impl FrameRanges {
    /// The range text for file `index`.
    pub fn for_file(&self, index: usize) -> Option<&str> {
        match self {
            FrameRanges::All(f) => Some(f),
            FrameRanges::PerFile(v) => v.get(index).map(String::as_str),
        }
    }
}

/// One trajectory file or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Trajectories {
    /// `trajectory = "md.dcd"`.
    One(PathBuf),
    /// `trajectory = ["md_300K.dcd", "md_1000K.dcd"]`.
    Many(Vec<PathBuf>),
}

impl Trajectories {
    /// The files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            Trajectories::One(p) => std::slice::from_ref(p),
            Trajectories::Many(v) => v,
        }
    }

    fn paths_mut(&mut self) -> &mut [PathBuf] {
        match self {
            Trajectories::One(p) => std::slice::from_mut(p),
            Trajectories::Many(v) => v,
        }
    }
}

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Affine couplings.
    RealNvp,
    /// Rational-quadratic spline couplings.
    NeuralSpline,
    /// A β-VAE.
    Vae,
    /// A flow trained in PyTorch and exported as TorchScript (`file` names the `.pt`; see
    /// [`TorchScriptGenerator`](crate::generator::TorchScriptGenerator)). boltzgen samples and
    /// reweights with it but does not train it.
    Torchscript,
}

/// The coordinates a flow's layers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Coordinates {
    /// The configuration's own coordinates.
    #[default]
    Cartesian,
    /// Z-matrix bond lengths, angles and torsions from the system's bonds.
    Internal,
}

/// The generator's architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `real_nvp`, `neural_spline`, `vae` or `torchscript`.
    pub kind: ModelKind,
    /// Coupling layers (flows).
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Hidden layer widths of the conditioners / encoder and decoder.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Spline bins (neural_spline).
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Spline interval [−B, B] (neural_spline).
    #[serde(default = "default_tail_bound")]
    pub tail_bound: f64,
    /// Latent dimension (vae).
    #[serde(default)]
    pub latent_dim: Option<usize>,
    /// `float32` or `float64`.
    #[serde(default)]
    pub precision: Precision,
    /// Remove the centre of mass (particle systems with a translation-invariant U).
    #[serde(default)]
    pub mean_free: bool,
    /// `cartesian` (default) or `internal`: a `neural_spline` flow over the bond lengths,
    /// angles and torsions of the system's bond graph (molecules in vacuum; see
    /// [`crate::generator::flow::internal`]). `tail_bound` is then the torsions' interval.
    #[serde(default)]
    pub coordinates: Coordinates,
    /// Internal coordinates only: split the bond lengths and angles into two halves (by
    /// placed atom, alternating), each transformed by its own couplings conditioned on the
    /// other half and the torsions, so that bonds and angles can depend on each other. By
    /// default one coupling transforms all of them at once, given the torsions only.
    #[serde(default)]
    pub split_bonds_angles: bool,
    /// Load this model file (`.json`, relative to the config) instead of building a new one.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

fn default_layers() -> usize {
    4
}
fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_bins() -> usize {
    8
}
fn default_tail_bound() -> f64 {
    5.0
}

/// Metropolis–Hastings sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Number of chains.
    #[serde(default = "default_chains")]
    pub chains: usize,
    /// Burn-in steps per chain (adaptive, not written).
    #[serde(default = "default_burn_in")]
    pub burn_in: usize,
    /// Production steps per chain.
    pub steps: usize,
    /// Write every `thin`-th production step.
    #[serde(default = "default_one")]
    pub thin: usize,
    /// Learned draws per generator call.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Steps per block (chains align at block ends).
    #[serde(default = "default_sync")]
    pub sync_interval: usize,
    /// Checkpoint (and flush the trajectory) every this many blocks.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Starting configuration for every chain; by default generator draws when there is a
    /// model, else the first training frames.
    #[serde(default)]
    pub start: Option<Vec<f64>>,
    /// The mixture of moves.
    pub moves: Vec<MoveSpec>,
    /// Balance the flow moves' proposals between the `[analysis] regions`: a pilot plans an
    /// acceptance per region as for `[reweight] balance`, and the flow's draws are thinned
    /// with it before they are proposed, `ln a` entering the Hastings term (see
    /// [`crate::reweight::balance::ThinnedGenerator`]).
    #[serde(default)]
    pub balance: Option<BalanceConfig>,
}

fn default_chains() -> usize {
    16
}
fn default_burn_in() -> usize {
    1000
}
fn default_one() -> usize {
    1
}
fn default_buffer() -> usize {
    1024
}
fn default_sync() -> usize {
    100
}
fn default_checkpoint_every() -> usize {
    10
}

/// Importance reweighting of direct draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReweightConfig {
    /// Number of generator draws.
    #[serde(default = "default_draws")]
    pub draws: usize,
    /// Bootstrap resamples for the error of log Ẑ (0: delta method only).
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Also write this many systematically resampled (unweighted) configurations.
    #[serde(default)]
    pub resample: Option<usize>,
    /// Split the weighted draws between the `[analysis] regions` by thinning the flow's
    /// draws region by region (see [`crate::reweight::balance`]).
    #[serde(default)]
    pub balance: Option<BalanceConfig>,
}

impl Default for ReweightConfig {
    fn default() -> Self {
        Self {
            draws: default_draws(),
            bootstrap: default_bootstrap(),
            resample: None,
            balance: None,
        }
    }
}

/// `[reweight] balance`: how the direct draws are split between the `[analysis] regions`.
///
/// A pilot of `pilot` weighted draws estimates each region's probability under exp(−βU), its
/// share of the flow's draws and the spread of its weights. From them each region gets an
/// acceptance probability, and the flow's draws are thinned region by region, so that the
/// weighted draws fall into the regions in the shares that maximise the effective sample
/// size, with at least `min_share` in every region the pilot found. The thinning enters
/// every importance weight, so all estimates stay exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceConfig {
    /// Weighted pilot draws (their energies are evaluated; they enter no estimate).
    #[serde(default = "default_pilot")]
    pub pilot: usize,
    /// The least share of the weighted draws for every region with pilot draws.
    #[serde(default)]
    pub min_share: f64,
    /// No region is thinned below this acceptance: it bounds how far a region whose pilot
    /// estimate was too low can inflate its draws' weights (at most 1 / `min_acceptance`).
    #[serde(default = "default_min_acceptance")]
    pub min_acceptance: f64,
}

fn default_pilot() -> usize {
    20_000
}
fn default_min_acceptance() -> f64 {
    0.01
}

fn default_draws() -> usize {
    100_000
}
fn default_bootstrap() -> usize {
    200
}

/// A collective variable of a configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CollectiveVariable {
    /// One coordinate, `x[index]`.
    Coordinate {
        /// Index into the flat configuration.
        index: usize,
    },
    /// The distance between two particles.
    Distance {
        /// The two particle indices.
        particles: [usize; 2],
    },
    /// The dihedral angle of four particles in 3-D, in degrees in (−180, 180] (IUPAC sign,
    /// as OpenMM's torsions): e.g. alanine dipeptide's φ is `[4, 6, 8, 14]`.
    Dihedral {
        /// The four particle indices.
        particles: [usize; 4],
    },
}

impl CollectiveVariable {
    /// A short axis label: `x[3]`, `|r₀ − r₁|`, `dihedral 4-6-8-14 (°)`.
    pub fn label(&self) -> String {
        match self {
            CollectiveVariable::Coordinate { index } => format!("x[{index}]"),
            CollectiveVariable::Distance { particles: [i, j] } => format!("distance {i}-{j}"),
            CollectiveVariable::Dihedral {
                particles: [a, b, c, d],
            } => {
                format!("dihedral {a}-{b}-{c}-{d} (°)")
            }
        }
    }

    /// The value for configuration `x` of a system with `spatial_dim` coordinates per
    /// particle.
    pub fn value(&self, x: &[f64], spatial_dim: usize) -> f64 {
        match self {
            CollectiveVariable::Coordinate { index } => x[*index],
            CollectiveVariable::Distance { particles: [i, j] } => {
                let (a, b) = (
                    &x[i * spatial_dim..(i + 1) * spatial_dim],
                    &x[j * spatial_dim..(j + 1) * spatial_dim],
                );
                a.iter()
                    .zip(b)
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
                    .sqrt()
            }
            CollectiveVariable::Dihedral { particles } => {
                let p = |i: usize| [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
                let [a, b, c, d] = particles.map(p);
                crate::potentials::openmm::dihedral(a, b, c, d).to_degrees()
            }
        }
    }

    fn validate(&self, dim: usize, spatial_dim: usize) -> std::result::Result<(), String> {
        match self {
            CollectiveVariable::Coordinate { index } if *index < dim => Ok(()),
            CollectiveVariable::Coordinate { index } => Err(format!(
                "coordinate index {index} is outside the {dim} coordinates"
            )),
            CollectiveVariable::Distance { particles: [i, j] } => {
                let n = dim / spatial_dim;
                if *i < n && *j < n && i != j {
                    Ok(())
                } else {
                    Err(format!(
                        "particles [{i}, {j}] must be two different indices below {n}"
                    ))
                }
            }
            CollectiveVariable::Dihedral { particles } => {
                let n = dim / spatial_dim;
                let distinct = (0..4).all(|a| (a + 1..4).all(|b| particles[a] != particles[b]));
                if spatial_dim != 3 {
                    Err(format!(
                        "a dihedral needs particles in 3-D; this system has {spatial_dim}-D ones"
                    ))
                } else if particles.iter().all(|&i| i < n) && distinct {
                    Ok(())
                } else {
                    Err(format!(
                        "particles {particles:?} must be four different indices below {n}"
                    ))
                }
            }
        }
    }
}

/// Bins of a free-energy profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Lower end of the first bin.
    pub lower: f64,
    /// Upper end of the last bin.
    pub upper: f64,
    /// Number of bins.
    #[serde(default = "default_profile_bins")]
    pub bins: usize,
}

fn default_profile_bins() -> usize {
    50
}

impl ProfileConfig {
    /// The bin edges.
    pub fn edges(&self) -> Vec<f64> {
        (0..=self.bins)
            .map(|i| self.lower + (self.upper - self.lower) * i as f64 / self.bins as f64)
            .collect()
    }
}

/// What the reports measure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The collective variable of profiles, states and transitions.
    #[serde(default)]
    pub cv: Option<CollectiveVariable>,
    /// Metastable states as CV intervals (free-energy differences, transitions).
    #[serde(default)]
    pub states: Vec<StateInterval>,
    /// A free-energy profile along the CV.
    #[serde(default)]
    pub profile: Option<ProfileConfig>,
    /// The two collective variables of the 2-D scatter plots of the samples and the training
    /// frames (default: the first two coordinates); e.g. φ and ψ for a Ramachandran plot.
    #[serde(default)]
    pub scatter: Option<[CollectiveVariable; 2]>,
    /// Regions of the `scatter` plane (e.g. Ramachandran basins), whose probabilities and
    /// free energies relative to the first region the reports give with error bars.
    #[serde(default)]
    pub regions: Vec<Region>,
}

/// A box in the plane of the two `scatter` collective variables. Each side is an interval
/// `[lower, upper]`; `lower > upper` wraps around (the values `≥ lower` or `≤ upper`), as
/// periodic angles need: `x = [120.0, 0.0]` is φ outside (0°, 120°).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// A name for reports.
    pub name: String,
    /// Interval of the first scatter CV (all values when omitted).
    #[serde(default)]
    pub x: Option<[f64; 2]>,
    /// Interval of the second scatter CV (all values when omitted).
    #[serde(default)]
    pub y: Option<[f64; 2]>,
}

impl Region {
    /// Whether the point `(x, y)` of the scatter plane lies in the region.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let inside =
            |interval: Option<[f64; 2]>, v: f64| interval.is_none_or(|i| in_interval(i, v));
        inside(self.x, x) && inside(self.y, y)
    }
}

/// Whether `v` lies in `[lower, upper]`; `lower > upper` wraps around (the values `≥ lower`
/// or `≤ upper`), as periodic angles need.
pub(crate) fn in_interval([lower, upper]: [f64; 2], v: f64) -> bool {
    if lower <= upper {
        v >= lower && v <= upper
    } else {
        v >= lower || v <= upper
    }
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The run directory (relative to the working directory); `runs/<config name>` by default.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Trajectory format, as a file extension: one of [`TRAJECTORY_FORMATS`].
    #[serde(default = "default_format")]
    pub trajectory_format: String,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            directory: None,
            trajectory_format: default_format(),
        }
    }
}

/// The most coordinates (f64 values) a config may ask boltzgen to hold at once, in exact
/// samples as training data or in reweighting draws: 2.5·10⁸, i.e. 2 GB.
pub const MAX_COORDINATES: usize = 250_000_000;

/// The trajectory formats samples may be written in: chemfiles writes each of them frame by
/// frame in append mode, and a file cut back to a checkpoint's length in bytes is a valid file
/// of the frames before it (tested in `io::trajectory`).
pub const TRAJECTORY_FORMATS: &[&str] = &["xyz", "pdb", "gro", "dcd", "xtc", "trr"];

fn default_format() -> String {
    "xyz".into()
}

impl RunConfig {
    /// Reads and checks a config file.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read; [`Error::Config`] naming the file, the key and the
    /// line for bad TOML, unknown keys, wrong types and values that make no sense.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let mut config: RunConfig = crate::io::toml::parse(&text, path)?;
        // Paths first: checking the system may read a file named in it (an OpenMM System).
        config.resolve_paths(path);
        config.validate(path)?;
        Ok(config)
    }

    /// Parses config text; `path` is only used in error messages.
    ///
    /// # Errors
    /// As [`RunConfig::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: RunConfig = crate::io::toml::parse(text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Makes file paths inside the config relative to the config's directory.
    fn resolve_paths(&mut self, path: &Path) {
        let base = path.parent().unwrap_or(Path::new(""));
        if self.system.potential == "openmm" {
            if let Some(toml::Value::String(xml)) = self
                .system
                .parameters
                .as_mut()
                .and_then(|p| p.get_mut("xml"))
            {
                if Path::new(xml.as_str()).is_relative() {
                    *xml = base.join(&*xml).to_string_lossy().into_owned();
                }
            }
        }
        if let Some(t) = self.data.as_mut().and_then(|d| d.trajectory.as_mut()) {
            for t in t.paths_mut() {
                if t.is_relative() {
                    *t = base.join(&*t);
                }
            }
        }
        if let Some(d) = self.data.as_mut() {
            let relax_files = d.relax.as_mut().and_then(|r| r.files.as_mut());
            let keep_files = d.keep.as_mut().and_then(|k| k.files.as_mut());
            let oversample_files = d.oversample.as_mut().and_then(|o| o.files.as_mut());
            let named = relax_files
                .into_iter()
                .chain(keep_files)
                .chain(oversample_files);
            for f in named.flatten() {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
        if let Some(m) = &mut self.model {
            if let Some(f) = &mut m.file {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
    }

    /// The checks of one `balance` table (`key` = `reweight.balance` or `sample.balance`).
    fn check_balance(&self, path: &Path, key: &str, b: &BalanceConfig) -> Result<()> {
        let bad = |key: &str, message: String| Error::Config {
            file: path.to_owned(),
            key: key.into(),
            message,
        };
        if self.analysis.regions.is_empty() {
            return Err(bad(
                key,
                "splits the draws between regions: set analysis.regions".into(),
            ));
        }
        if b.pilot < 100 {
            return Err(bad(
                &format!("{key}.pilot"),
                format!(
                    "{} draws cannot estimate the regions' weights; use at least 100",
                    b.pilot
                ),
            ));
        }
        // The regions and the part of the plane outside them.
        let strata = self.analysis.regions.len() + 1;
        if !(0.0..=1.0 / strata as f64).contains(&b.min_share) {
            return Err(bad(
                &format!("{key}.min_share"),
                format!(
                    "must lie in [0, 1/{strata}] ({} regions and the rest of the plane)",
                    strata - 1
                ),
            ));
        }
        if !(b.min_acceptance > 0.0 && b.min_acceptance <= 1.0) {
            return Err(bad(
                &format!("{key}.min_acceptance"),
                "must lie in (0, 1]".into(),
            ));
        }
        Ok(())
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |key: &str, message: String| Error::Config {
            file: path.to_owned(),
            key: key.into(),
            message,
        };
        let system = self.system.build().map_err(|e| match e {
            Error::Config { key, message, .. } => bad(&key, message),
            other => bad("system", other.to_string()),
        })?;
        let dim = system.potential.dim();
        let format = self.output.trajectory_format.as_str();
        if !TRAJECTORY_FORMATS.contains(&format) {
            return Err(bad(
                "output.trajectory_format",
                format!(
                    "`{format}` is not one of the formats boltzgen writes and resumes: {}",
                    TRAJECTORY_FORMATS.join(", ")
                ),
            ));
        }
        if let Some(d) = &self.data {
            match (&d.trajectory, d.exact_samples) {
                (Some(t), None) if !t.paths().is_empty() => {}
                (None, Some(n)) if n > 0 && system.exact_sampler.is_some() => {}
                (None, Some(_)) if system.exact_sampler.is_none() => {
                    return Err(bad(
                        "data.exact_samples",
                        format!("`{}` has no exact sampler", self.system.potential),
                    ))
                }
                _ => {
                    return Err(bad(
                        "data",
                        "give either trajectory or exact_samples (a positive count)".into(),
                    ))
                }
            }
            if let Some(selection) = &d.selection {
                crate::io::trajectory::check_selection(selection)
                    .map_err(|m| bad("data.selection", m))?;
            }
            if let (Some(FrameRanges::PerFile(f)), Some(t)) = (&d.frames, &d.trajectory) {
                if f.len() != t.paths().len() {
                    return Err(bad(
                        "data.frames",
                        format!(
                            "{} ranges for {} trajectory files: give one per file, or one string for all",
                            f.len(),
                            t.paths().len()
                        ),
                    ));
                }
            }
            let files = d.trajectory.as_ref().map(|t| t.paths().len()).unwrap_or(0);
            for i in 0..files {
                if let Some(Err(m)) = d
                    .frames
                    .as_ref()
                    .and_then(|f| f.for_file(i))
                    .map(|f| f.parse::<crate::io::trajectory::FrameRange>())
                {
                    return Err(bad("data.frames", m));
                }
            }
            if let Some(r) = &d.relax {
                if r.steps == 0 {
                    return Err(bad("data.relax.steps", "must be positive".into()));
                }
                r.settings(system.spatial_dim, 0)
                    .validate(dim)
                    .map_err(|e| match e {
                        Error::InvalidArgument { name, message } => {
                            bad(&format!("data.relax.{name}"), message)
                        }
                        other => bad("data.relax", other.to_string()),
                    })?;
                let trajectories = d.trajectory.as_ref().map(|t| t.paths()).unwrap_or(&[]);
                for (i, f) in r.files.iter().flatten().enumerate() {
                    if !trajectories.contains(f) {
                        return Err(bad(
                            &format!("data.relax.files[{i}]"),
                            format!("{} is not one of [data] trajectory", f.display()),
                        ));
                    }
                }
            }
        }
        let trajectories = self
            .data
            .as_ref()
            .and_then(|d| d.trajectory.as_ref())
            .map(|t| t.paths())
            .unwrap_or(&[]);
        // `keep` and `oversample` select frames the same way, and are checked the same way.
        let selections = self.data.iter().flat_map(|d| {
            let keep = d.keep.as_ref().map(KeepSpec::selection);
            keep.into_iter()
                .chain(d.oversample.as_ref().map(OversampleSpec::selection))
        });
        for FrameSelection {
            key,
            cv,
            range,
            files,
        } in selections
        {
            cv.validate(dim, system.spatial_dim)
                .map_err(|m| bad(&format!("{key}.cv"), m))?;
            if !range.iter().all(|v| v.is_finite()) {
                return Err(bad(
                    &format!("{key}.range"),
                    format!("must be two finite numbers, got {range:?}"),
                ));
            }
            if trajectories.is_empty() {
                return Err(bad(
                    key,
                    "selects trajectory frames, but [data] has no trajectory".into(),
                ));
            }
            for (i, f) in files.into_iter().flatten().enumerate() {
                if !trajectories.contains(f) {
                    return Err(bad(
                        &format!("{key}.files[{i}]"),
                        format!("{} is not one of [data] trajectory", f.display()),
                    ));
                }
            }
        }
        if let Some(o) = self.data.as_ref().and_then(|d| d.oversample.as_ref()) {
            if o.factor == 0 {
                return Err(bad(
                    "data.oversample.factor",
                    "must be at least 1 (1 changes nothing; use keep to drop frames)".into(),
                ));
            }
        }
        if let Some(cv) = &self.analysis.cv {
            cv.validate(dim, system.spatial_dim)
                .map_err(|m| bad("analysis.cv", m))?;
        }
        for (i, cv) in self.analysis.scatter.iter().flatten().enumerate() {
            cv.validate(dim, system.spatial_dim)
                .map_err(|m| bad(&format!("analysis.scatter[{i}]"), m))?;
        }
        if let Some(p) = &self.analysis.profile {
            if self.analysis.cv.is_none() {
                return Err(bad("analysis.profile", "needs analysis.cv".into()));
            }
            if p.upper.partial_cmp(&p.lower) != Some(std::cmp::Ordering::Greater) || p.bins == 0 {
                return Err(bad(
                    "analysis.profile",
                    "needs lower < upper and at least one bin".into(),
                ));
            }
        }
        if !self.analysis.regions.is_empty() && self.analysis.scatter.is_none() {
            return Err(bad(
                "analysis.regions",
                "regions live in the scatter plane: set analysis.scatter".into(),
            ));
        }
        for (i, r) in self.analysis.regions.iter().enumerate() {
            if self.analysis.regions[..i].iter().any(|o| o.name == r.name) {
                return Err(bad(
                    &format!("analysis.regions[{i}]"),
                    format!("the name `{}` is used twice", r.name),
                ));
            }
            if r.x.iter().chain(&r.y).flatten().any(|v| !v.is_finite()) {
                return Err(bad(
                    &format!("analysis.regions[{i}]"),
                    "interval bounds must be finite".into(),
                ));
            }
        }
        let balances = [
            (
                "reweight.balance",
                self.reweight.as_ref().and_then(|r| r.balance.as_ref()),
            ),
            (
                "sample.balance",
                self.sample.as_ref().and_then(|s| s.balance.as_ref()),
            ),
        ];
        for (key, b) in balances {
            if let Some(b) = b {
                self.check_balance(path, key, b)?;
            }
        }
        if !self.analysis.states.is_empty() && self.analysis.cv.is_none() {
            return Err(bad("analysis.states", "needs analysis.cv".into()));
        }
        crate::diagnostics::check_states(&self.analysis.states).map_err(|e| match e {
            Error::InvalidArgument { name, message } => {
                bad("analysis.states", format!("{name}: {message}"))
            }
            other => bad("analysis.states", other.to_string()),
        })?;
        if let Some(m) = self.model.as_ref().filter(|m| m.file.is_none()) {
            // The architecture is checked now, before anything is allocated or written: its
            // sizes are bounded (generator::mlp::MAX_PARAMETERS).
            let flow_max = crate::generator::flow::MAX_LAYERS;
            if m.layers > flow_max {
                return Err(bad(
                    "model.layers",
                    format!("at most {flow_max}, got {}", m.layers),
                ));
            }
            let checked = match (m.kind, m.coordinates) {
                (ModelKind::RealNvp, _) => {
                    crate::generator::FlowConfig::real_nvp(dim, m.layers, &m.hidden).validate()
                }
                (ModelKind::NeuralSpline, Coordinates::Cartesian) => {
                    crate::generator::FlowConfig::neural_spline(
                        dim,
                        m.layers,
                        &m.hidden,
                        m.bins,
                        m.tail_bound,
                    )
                    .validate()
                }
                (ModelKind::Vae, _) => {
                    crate::generator::VaeConfig::new(dim, m.latent_dim.unwrap_or(2), &m.hidden)
                        .validate()
                }
                _ => Ok(()),
            };
            checked.map_err(|e| match e {
                Error::InvalidArgument { name, message } if name.starts_with("layers[") => {
                    bad("model.hidden", format!("{name}: {message}"))
                }
                Error::InvalidArgument { name, message } => bad(&format!("model.{name}"), message),
                other => bad("model", other.to_string()),
            })?;
        }
        if let Some(m) = &self.model {
            if m.split_bonds_angles && m.coordinates != Coordinates::Internal {
                return Err(bad(
                    "model.split_bonds_angles",
                    "applies to internal coordinates only (coordinates = \"internal\")".into(),
                ));
            }
            if m.coordinates == Coordinates::Internal {
                self.validate_internal(m, &system)
                    .map_err(|(key, m)| bad(key, m))?;
            }
            if m.kind == ModelKind::Vae && m.latent_dim.is_none() && m.file.is_none() {
                return Err(bad("model.latent_dim", "a VAE needs latent_dim".into()));
            }
            if m.kind == ModelKind::Torchscript {
                if m.file.is_none() {
                    return Err(bad(
                        "model.file",
                        "a torchscript model needs `file`, the exported .pt module".into(),
                    ));
                }
                if self.train.is_some() {
                    return Err(bad(
                        "train",
                        "a torchscript model is trained in PyTorch; boltzgen samples and reweights with it as it is (remove [train])".into(),
                    ));
                }
            }
        }
        if let Some(t) = &self.train {
            t.validate().map_err(|e| match e {
                Error::InvalidArgument { name, message } => bad(&format!("train.{name}"), message),
                other => bad("train", other.to_string()),
            })?;
        }
        if let Some(n) = self.data.as_ref().and_then(|d| d.exact_samples) {
            if n.checked_mul(dim).is_none_or(|c| c > MAX_COORDINATES) {
                return Err(bad(
                    "data.exact_samples",
                    format!(
                        "{n} samples of {dim} coordinates exceed the {MAX_COORDINATES} \
                         coordinates boltzgen holds in memory"
                    ),
                ));
            }
        }
        if let Some(r) = &self.reweight {
            if r.draws == 0 || r.draws.checked_mul(dim).is_none_or(|c| c > MAX_COORDINATES) {
                return Err(bad(
                    "reweight.draws",
                    format!(
                        "must be from 1 to {} for {dim} coordinates, got {}",
                        MAX_COORDINATES / dim.max(1),
                        r.draws
                    ),
                ));
            }
        }
        if let Some(s) = &self.sample {
            for (i, m) in s.moves.iter().enumerate() {
                let learned = matches!(
                    m.kind,
                    crate::mcmc::MoveKind::Flow
                        | crate::mcmc::MoveKind::LatentWalk
                        | crate::mcmc::MoveKind::Vae
                );
                if learned && self.model.is_none() {
                    return Err(bad(
                        &format!("sample.moves[{i}].kind"),
                        format!(
                            "a `{}` move proposes from a model: add a [model] section",
                            m.kind.name()
                        ),
                    ));
                }
            }
            if let Some(start) = &s.start {
                if let Some(k) = start.iter().position(|v| !v.is_finite()) {
                    return Err(bad(
                        &format!("sample.start[{k}]"),
                        format!("must be finite, got {}", start[k]),
                    ));
                }
            }
            let mut c = crate::mcmc::SamplerConfig::new(s.chains, system.beta, s.moves.clone());
            c.thin = s.thin;
            c.buffer = s.buffer;
            c.sync_interval = s.sync_interval;
            c.validate(dim).map_err(|e| match e {
                Error::InvalidArgument { name, message } => bad(&format!("sample.{name}"), message),
                other => bad("sample", other.to_string()),
            })?;
            if s.checkpoint_every == 0 {
                return Err(bad("sample.checkpoint_every", "must be positive".into()));
            }
            if let Some(start) = &s.start {
                if start.len() != dim {
                    return Err(bad(
                        "sample.start",
                        format!("has {} coordinates, the system {dim}", start.len()),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl RunConfig {
    /// What an internal-coordinate flow needs: a spline flow, a molecule with bonds, and
    /// training frames (the normalisation is fitted to them).
    fn validate_internal(
        &self,
        m: &ModelConfig,
        system: &System,
    ) -> std::result::Result<(), (&'static str, String)> {
        if m.kind != ModelKind::NeuralSpline {
            return Err((
                "model.coordinates",
                "internal coordinates take kind = \"neural_spline\"".into(),
            ));
        }
        if m.mean_free {
            return Err((
                "model.mean_free",
                "internal coordinates already leave out position and orientation; remove mean_free"
                    .into(),
            ));
        }
        if system.bonds.is_none() || system.spatial_dim != 3 {
            return Err((
                "model.coordinates",
                format!(
                    "internal coordinates need a molecule with bonds in 3-D (potential = \"openmm\"); `{}` has none",
                    self.system.potential
                ),
            ));
        }
        if m.file.is_none() && self.data.is_none() {
            return Err((
                "data",
                "an internal-coordinate flow fits its normalisation to training frames: add a [data] section".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
seed = 3
[system]
potential = "double_well"
beta = 1.0

[model]
kind = "neural_spline"
layers = 2
hidden = [16]

[sample]
steps = 100
[[sample.moves]]
kind = "flow"
weight = 1.0
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
target_acceptance = 0.4

[analysis]
cv = { kind = "coordinate", index = 0 }
states = [{ name = "left", lower = -10.0, upper = -1.0 }, { name = "right", lower = 1.0, upper = 10.0 }]
profile = { lower = -2.5, upper = 2.5, bins = 25 }
"#;

    fn parse(text: &str) -> Result<RunConfig> {
        RunConfig::parse(text, Path::new("run.toml"))
    }

    #[test]
    fn a_good_config_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.seed, 3);
        let s = c.sample.unwrap();
        assert_eq!(s.chains, 16);
        assert_eq!(s.moves.len(), 2);
        assert_eq!(c.output.trajectory_format, "xyz");
        assert_eq!(c.analysis.profile.unwrap().edges().len(), 26);
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// `[data] keep`: wrap-around ranges, files it does not name kept whole, and errors that
    /// name the key.
    #[test]
    fn keep_selects_frames_by_a_cv_range() {
        let with_data = |keep: &str| {
            GOOD.replace(
                "[model]",
                &format!(
                    "[data]\ntrajectory = [\"hot.xyz\", \"cold.xyz\"]\nkeep = {keep}\n\n[model]"
                ),
            )
        };
        let c = parse(&with_data(
            "{ cv = { kind = \"coordinate\", index = 0 }, range = [120.0, -60.0], files = [\"hot.xyz\"] }",
        ))
        .unwrap();
        let keep = c.data.unwrap().keep.unwrap();
        // Relative to the config's directory, like the trajectories.
        let (hot, cold) = (Path::new("hot.xyz"), Path::new("cold.xyz"));
        assert!(keep.keeps(hot, 150.0) && keep.keeps(hot, -90.0) && !keep.keeps(hot, 0.0));
        assert!(keep.keeps(cold, 0.0));

        let e = error_of(&with_data(
            "{ cv = { kind = \"coordinate\", index = 0 }, range = [0.0, 1.0], files = [\"warm.xyz\"] }",
        ));
        assert!(
            e.contains("data.keep.files[0]") && e.contains("warm.xyz"),
            "{e}"
        );
        let e = error_of(&with_data(
            "{ cv = { kind = \"coordinate\", index = 5 }, range = [0.0, 1.0] }",
        ));
        assert!(e.contains("data.keep.cv"), "{e}");
        let e = error_of(&with_data(
            "{ cv = { kind = \"coordinate\", index = 0 }, range = [0.0, nan] }",
        ));
        assert!(e.contains("data.keep.range"), "{e}");
    }

    /// `[data] oversample`: parsed like `keep`, and its errors name the key.
    #[test]
    fn oversample_selects_frames_and_names_its_keys() {
        let with_data = |oversample: &str| {
            GOOD.replace(
                "[model]",
                &format!(
                    "[data]\ntrajectory = [\"hot.xyz\", \"cold.xyz\"]\noversample = {oversample}\n\n[model]"
                ),
            )
        };
        let c = parse(&with_data(
            "{ cv = { kind = \"coordinate\", index = 0 }, range = [120.0, -60.0], factor = 4, files = [\"hot.xyz\"] }",
        ))
        .unwrap();
        let o = c.data.unwrap().oversample.unwrap();
        assert_eq!(o.factor, 4);
        assert!(o.filters(Path::new("hot.xyz")) && !o.filters(Path::new("cold.xyz")));
        assert!(o.in_range(150.0) && o.in_range(-90.0) && !o.in_range(0.0));

        let cv = "cv = { kind = \"coordinate\", index = 0 }";
        let e = error_of(&with_data(&format!(
            "{{ {cv}, range = [0.0, 1.0], factor = 0 }}"
        )));
        assert!(e.contains("data.oversample.factor"), "{e}");
        let e = error_of(&with_data(&format!(
            "{{ {cv}, range = [0.0, 1.0], factor = 2, files = [\"warm.xyz\"] }}"
        )));
        assert!(
            e.contains("data.oversample.files[0]") && e.contains("warm.xyz"),
            "{e}"
        );
        let e = error_of(&with_data(&format!(
            "{{ {cv}, range = [inf, 1.0], factor = 2 }}"
        )));
        assert!(e.contains("data.oversample.range"), "{e}");
        let e = error_of(&with_data(&format!("{{ {cv}, range = [0.0, 1.0] }}")));
        assert!(e.contains("factor"), "{e}");
    }

    #[test]
    fn errors_name_file_key_line_and_choices() {
        let e = error_of(&GOOD.replace("kind = \"flow\"", "kind = \"flw\""));
        assert!(e.contains("run.toml"), "{e}");
        assert!(e.contains("sample.moves[0].kind"), "{e}");
        assert!(
            e.contains("flw") && e.contains("random_walk") && e.contains("latent_walk"),
            "{e}"
        );
        assert!(e.contains("line 15"), "{e}");

        let e = error_of(&GOOD.replace("layers = 2", "layers = 2\nsplit_bonds_angles = true"));
        assert!(
            e.contains("model.split_bonds_angles") && e.contains("internal"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("seed = 3", "seed = 3\nsed = 4"));
        assert!(e.contains("sed"), "{e}");
        let e = error_of(&GOOD.replace("layers = 2", "layers = \"two\""));
        assert!(e.contains("model.layers"), "{e}");
        let e = error_of("[system\npotential = 1");
        assert!(e.contains("not valid TOML") && e.contains("line 1"), "{e}");
        let e = error_of(&GOOD.replace("step = 0.5\n", ""));
        assert!(e.contains("sample.moves[1]") && e.contains("step"), "{e}");
        let e = error_of(&GOOD.replace("index = 0", "index = 7"));
        assert!(e.contains("analysis.cv"), "{e}");
        let e =
            error_of(&GOOD.replace("potential = \"double_well\"", "potential = \"double_wel\""));
        assert!(
            e.contains("system.potential") && e.contains("double_well"),
            "{e}"
        );
    }
}
