//! Run configurations: TOML files read through serde with unknown keys refused.
//!
//! Every field is documented in `docs/config.md`. Errors name the file, the key (as a path
//! such as `sample.moves[1].kind`), the line, and what is allowed.
//!
//! One file per section, each holding the section's types and its checks: `system`
//! (`[system]`), `data`, `model`, `train` (the checks of [`TrainConfig`], which lives in
//! [`crate::train`]), `sample`, `reweight` (with the `balance` tables) and `analysis`. This
//! file holds the whole ([`RunConfig`]), `[output]`, loading, path resolution, and the order
//! in which the sections are checked against the built system.

mod analysis;
mod data;
mod exchange;
mod model;
mod reweight;
mod sample;
mod system;
mod train;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::generator::DeviceChoice;
use crate::train::TrainConfig;

pub(crate) use analysis::in_interval;
pub use analysis::{AnalysisConfig, CollectiveVariable, ProfileConfig, Region};
pub(crate) use data::FrameSelection;
pub use data::{DataConfig, FrameRanges, KeepSpec, OversampleSpec, RelaxSpec, Trajectories};
pub use exchange::ReplicaExchangeConfig;
pub use model::{Coordinates, ModelConfig, ModelKind};
pub use reweight::{BalanceConfig, ReweightConfig};
pub use sample::SampleConfig;
pub use system::{EnergyUnit, LengthUnit, System, SystemConfig};

/// What every section's checks need: the file (for errors), the built system and its
/// number of coordinates.
struct Check<'a> {
    path: &'a Path,
    system: &'a System,
    dim: usize,
}

impl Check<'_> {
    /// A config error naming the file and `key`.
    fn bad(&self, key: &str, message: String) -> Error {
        Error::Config {
            file: self.path.to_owned(),
            key: key.into(),
            message,
        }
    }
}

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
        let c = Check {
            path,
            system: &system,
            dim,
        };
        self.validate_data(&c)?;
        self.validate_analysis(&c)?;
        self.validate_reweight(&c)?;
        self.validate_model(&c)?;
        self.validate_train(&c)?;
        self.validate_sample(&c)?;
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
