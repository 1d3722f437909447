//! `[data]`: training frames from trajectories (which, how many, kept, oversampled, relaxed),
//! or exact samples of a reference potential; and their checks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{in_interval, CollectiveVariable, MAX_COORDINATES};
use super::{Check, RunConfig};
use crate::error::{Error, Result};

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

    pub(super) fn paths_mut(&mut self) -> &mut [PathBuf] {
        match self {
            Trajectories::One(p) => std::slice::from_mut(p),
            Trajectories::Many(v) => v,
        }
    }
}

impl RunConfig {
    /// Checks `[data]` against the system and the rest of the config.
    pub(super) fn validate_data(&self, c: &Check) -> Result<()> {
        let (system, dim) = (c.system, c.dim);
        let bad = |key: &str, message: String| c.bad(key, message);
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
        Ok(())
    }
}
