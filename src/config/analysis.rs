//! `[analysis]`: the collective variables, states, regions and profile the reports measure;
//! and their checks.

use serde::{Deserialize, Serialize};

use super::{Check, RunConfig};
use crate::diagnostics::StateInterval;
use crate::error::{Error, Result};

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

    pub(super) fn validate(
        &self,
        dim: usize,
        spatial_dim: usize,
    ) -> std::result::Result<(), String> {
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

impl RunConfig {
    /// Checks `[analysis]` against the system.
    pub(super) fn validate_analysis(&self, c: &Check) -> Result<()> {
        let (system, dim) = (c.system, c.dim);
        let bad = |key: &str, message: String| c.bad(key, message);
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
        if !self.analysis.states.is_empty() && self.analysis.cv.is_none() {
            return Err(bad("analysis.states", "needs analysis.cv".into()));
        }
        crate::diagnostics::check_states(&self.analysis.states).map_err(|e| match e {
            Error::InvalidArgument { name, message } => {
                bad("analysis.states", format!("{name}: {message}"))
            }
            other => bad("analysis.states", other.to_string()),
        })?;
        Ok(())
    }
}
