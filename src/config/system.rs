//! The `[system]` section: a built-in potential with its parameters, the temperature, and
//! the layout that trajectories need (particles × spatial dimension, length unit).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::potentials::{
    DoubleWell2D, ExactLogZ, ExactSampler, Gaussian, GaussianMixture, LennardJonesCluster,
    LennardJonesFluid, ManyWell, MullerBrown, OpenMmForceField, ParticleDoubleWell, Potential,
};

/// Units of energy when the temperature is given instead of β.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EnergyUnit {
    /// k_B = 1: β = 1/T.
    #[default]
    Reduced,
    /// kJ/mol, T in kelvin.
    KjPerMol,
    /// kcal/mol, T in kelvin.
    KcalPerMol,
}

impl EnergyUnit {
    /// k_B in this unit per kelvin (1 for reduced units).
    pub fn boltzmann(self) -> f64 {
        match self {
            EnergyUnit::Reduced => 1.0,
            EnergyUnit::KjPerMol => 0.008_314_462_618,
            EnergyUnit::KcalPerMol => 0.001_987_204_259,
        }
    }
}

/// The length unit of the potential's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Reduced units: trajectory files hold the numbers unchanged.
    #[default]
    Reduced,
    /// Ångström (chemfiles' own unit).
    Angstrom,
    /// Nanometre.
    Nanometer,
}

impl LengthUnit {
    /// Potential length units per ångström, the unit of chemfiles positions.
    pub fn per_angstrom(self) -> f64 {
        match self {
            LengthUnit::Reduced | LengthUnit::Angstrom => 1.0,
            LengthUnit::Nanometer => 0.1,
        }
    }
}

/// The `[system]` section as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// A built-in potential: `double_well`, `muller_brown`, `many_well`, `gmm40`, `gaussian`,
    /// `dw4`, `lj13`, `lj55`, `lj_cluster`, `lj_fluid`, or `openmm` (a force field from an
    /// OpenMM System XML, `parameters = { xml = "system.xml" }`).
    pub potential: String,
    /// The potential's parameters (see `docs/config.md`); defaults where omitted.
    #[serde(default)]
    pub parameters: Option<toml::Table>,
    /// Inverse temperature (give this or `temperature`).
    #[serde(default)]
    pub beta: Option<f64>,
    /// Temperature, with `energy_unit`.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Energy unit of the potential (for `temperature`).
    #[serde(default)]
    pub energy_unit: EnergyUnit,
    /// Length unit of the potential's coordinates (for trajectory files).
    #[serde(default)]
    pub length_unit: LengthUnit,
}

/// A system ready to sample.
pub struct System {
    /// U(x).
    pub potential: Box<dyn Potential>,
    /// Inverse temperature.
    pub beta: f64,
    /// Coordinates per particle (how configurations map onto trajectory atoms).
    pub spatial_dim: usize,
    /// Number of particles.
    pub n_particles: usize,
    /// Exact ln Z(β) where known.
    pub exact_log_z: Option<f64>,
    /// The exact marginal density of coordinate 0 where known (the double well), for
    /// overlaying the exact free-energy profile.
    pub exact_marginal_x0: Option<crate::potentials::quadrature::Quartic1D>,
    /// Potential length units per ångström.
    pub length_per_angstrom: f64,
    /// Draws exact samples `(n, seed) → [n × dim]` where the potential has an exact sampler.
    pub exact_sampler: Option<ExactDraws>,
    /// The bonds (0-based particle pairs) of a molecular force field: what an
    /// internal-coordinate flow builds its Z-matrix from.
    pub bonds: Option<Vec<(usize, usize)>>,
}

/// An exact sampler of a reference potential at the system's β: `(n, seed) → [n × dim]`.
pub type ExactDraws = Box<dyn Fn(usize, u64) -> Result<Vec<f64>> + Send + Sync>;

/// Wraps a reference potential's exact sampler at `beta`.
fn exact_draws<P: ExactSampler + Clone + Send + Sync + 'static>(p: &P, beta: f64) -> ExactDraws {
    let p = p.clone();
    Box::new(move |n, seed| {
        let mut rng = crate::rng::auxiliary_stream(seed, crate::rng::Purpose::ExactSamples);
        p.sample_exact(beta, n, &mut rng).map_err(Error::from)
    })
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("potential", &self.potential.name())
            .field("dim", &self.potential.dim())
            .field("beta", &self.beta)
            .field("n_particles", &self.n_particles)
            .field("spatial_dim", &self.spatial_dim)
            .finish_non_exhaustive()
    }
}

/// Known potential names, for error messages.
const POTENTIALS: &str = "double_well, muller_brown, many_well, gmm40, gaussian, dw4, lj13, lj55, lj_cluster, lj_fluid, openmm";

/// `openmm`: a serialized OpenMM System; the path is relative to the config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenMmParams {
    xml: std::path::PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DoubleWellParams {
    a: f64,
    b: f64,
    c: f64,
    d: f64,
}
impl Default for DoubleWellParams {
    fn default() -> Self {
        Self {
            a: 1.0,
            b: 6.0,
            c: 1.0,
            d: 1.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ScaleParams {
    scale: f64,
}
impl Default for ScaleParams {
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ManyWellParams {
    dim: usize,
}
impl Default for ManyWellParams {
    fn default() -> Self {
        Self { dim: 32 }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GaussianParams {
    mean: Vec<f64>,
    precision: Vec<f64>,
    #[serde(default = "one")]
    spatial_dim: usize,
}
fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Dw4Params {
    n_particles: usize,
    spatial_dim: usize,
    a: f64,
    b: f64,
    c: f64,
    d0: f64,
}
impl Default for Dw4Params {
    fn default() -> Self {
        Self {
            n_particles: 4,
            spatial_dim: 2,
            a: 0.0,
            b: -4.0,
            c: 0.9,
            d0: 4.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LjClusterParams {
    n_particles: usize,
    spatial_dim: usize,
    epsilon: f64,
    r_m: f64,
    k: f64,
}
impl Default for LjClusterParams {
    fn default() -> Self {
        Self {
            n_particles: 13,
            spatial_dim: 3,
            epsilon: 1.0,
            r_m: 1.0,
            k: 1.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LjFluidParams {
    n_particles: usize,
    box_length: f64,
    #[serde(default = "unit")]
    sigma: f64,
    #[serde(default = "unit")]
    epsilon: f64,
    #[serde(default = "default_cutoff")]
    cutoff: f64,
    #[serde(default = "yes")]
    shift: bool,
}
fn unit() -> f64 {
    1.0
}
fn default_cutoff() -> f64 {
    2.5
}
fn yes() -> bool {
    true
}

impl SystemConfig {
    fn params<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T> {
        match &self.parameters {
            None => Ok(T::default()),
            Some(_) => self.required_params(),
        }
    }

    fn required_params<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let table = self.parameters.clone().unwrap_or_default();
        table
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config {
                file: Default::default(),
                key: "system.parameters".into(),
                message: format!("for potential `{}`: {}", self.potential, e.message().trim()),
            })
    }

    /// Builds the potential and works out β and the particle layout.
    ///
    /// # Errors
    /// [`Error::Config`] (with an empty file, filled in by the caller) for an unknown
    /// potential, bad parameters, or a missing or doubly given temperature.
    pub fn build(&self) -> Result<System> {
        let bad = |key: &str, message: String| Error::Config {
            file: Default::default(),
            key: key.into(),
            message,
        };
        // An OpenMM System is in kJ/mol and nm, whatever the defaults say.
        let openmm = self.potential == "openmm";
        let energy_unit = match (openmm, self.energy_unit) {
            (true, EnergyUnit::Reduced | EnergyUnit::KjPerMol) => EnergyUnit::KjPerMol,
            (true, EnergyUnit::KcalPerMol) => {
                return Err(bad(
                    "system.energy_unit",
                    "an OpenMM System's energies are in kJ/mol (use kj_per_mol)".into(),
                ))
            }
            (false, unit) => unit,
        };
        let length_per_angstrom = match (openmm, self.length_unit) {
            (true, LengthUnit::Reduced | LengthUnit::Nanometer) => 0.1,
            (true, LengthUnit::Angstrom) => {
                return Err(bad(
                    "system.length_unit",
                    "an OpenMM System's lengths are in nm (use nanometer)".into(),
                ))
            }
            (false, unit) => unit.per_angstrom(),
        };
        let beta = match (self.beta, self.temperature) {
            (Some(b), None) if b > 0.0 && b.is_finite() => b,
            (None, Some(t)) if t > 0.0 && t.is_finite() => 1.0 / (energy_unit.boltzmann() * t),
            (Some(_), Some(_)) => {
                return Err(bad(
                    "system",
                    "give either beta or temperature, not both".into(),
                ))
            }
            (None, None) => {
                return Err(bad("system.beta", "required (or give temperature)".into()))
            }
            _ => {
                return Err(bad(
                    "system",
                    "beta and temperature must be positive and finite".into(),
                ))
            }
        };
        let invalid = |e: crate::potentials::PotentialError| {
            bad(
                "system.parameters",
                format!("for potential `{}`: {e}", self.potential),
            )
        };
        let exact = |p: &dyn ExactLogZ| p.log_z(beta).ok();
        let mut sampler: Option<ExactDraws> = None;
        // The bond graph, for potentials that have one (internal-coordinate flows need it).
        let mut bonds = None;
        let (potential, spatial_dim, exact_log_z, marginal): (Box<dyn Potential>, usize, _, _) =
            match self.potential.as_str() {
                "double_well" => {
                    let p: DoubleWellParams = self.params()?;
                    let u = DoubleWell2D::new(p.a, p.b, p.c, p.d).map_err(invalid)?;
                    let (z, m) = (exact(&u), Some(u.x_part()));
                    sampler = Some(exact_draws(&u, beta));
                    (Box::new(u), 2, z, m)
                }
                "muller_brown" => {
                    let p: ScaleParams = self.params()?;
                    let u = MullerBrown::new(p.scale).map_err(invalid)?;
                    let z = exact(&u);
                    (Box::new(u), 2, z, None)
                }
                "many_well" => {
                    let p: ManyWellParams = self.params()?;
                    let u = ManyWell::new(p.dim).map_err(invalid)?;
                    let z = exact(&u);
                    sampler = Some(exact_draws(&u, beta));
                    (Box::new(u), 2, z, None)
                }
                "gmm40" => {
                    let _: NoParams = self.params()?;
                    let u = GaussianMixture::gmm40();
                    let z = exact(&u);
                    sampler = Some(exact_draws(&u, beta));
                    (Box::new(u), 2, z, None)
                }
                "gaussian" => {
                    let p: GaussianParams = self.required_params()?;
                    let u = Gaussian::new(p.mean, p.precision).map_err(invalid)?;
                    let z = exact(&u);
                    sampler = Some(exact_draws(&u, beta));
                    (Box::new(u), p.spatial_dim, z, None)
                }
                "dw4" => {
                    let p: Dw4Params = self.params()?;
                    let u =
                        ParticleDoubleWell::new(p.n_particles, p.spatial_dim, p.a, p.b, p.c, p.d0)
                            .map_err(invalid)?;
                    (Box::new(u), p.spatial_dim, None, None)
                }
                "lj13" | "lj55" | "lj_cluster" => {
                    let mut p: LjClusterParams = self.params()?;
                    // lj13 and lj55 are named by their size; other sizes are lj_cluster's.
                    let named = match self.potential.as_str() {
                        "lj13" => Some(13),
                        "lj55" => Some(55),
                        _ => None,
                    };
                    if let Some(n) = named {
                        let given = self
                            .parameters
                            .as_ref()
                            .and_then(|t| t.get("n_particles"))
                            .is_some();
                        if given && p.n_particles != n {
                            return Err(bad(
                                "system.parameters.n_particles",
                                format!(
                                    "`{}` has {n} particles, not {}; use potential = \
                                     \"lj_cluster\" for other sizes",
                                    self.potential, p.n_particles
                                ),
                            ));
                        }
                        p.n_particles = n;
                    }
                    let u = LennardJonesCluster::new(
                        p.n_particles,
                        p.spatial_dim,
                        p.epsilon,
                        p.r_m,
                        p.k,
                    )
                    .map_err(invalid)?;
                    (Box::new(u), p.spatial_dim, None, None)
                }
                "lj_fluid" => {
                    let p: LjFluidParams = self.required_params()?;
                    let u = LennardJonesFluid::new(
                        p.n_particles,
                        p.box_length,
                        p.sigma,
                        p.epsilon,
                        p.cutoff,
                        p.shift,
                    )
                    .map_err(invalid)?;
                    (Box::new(u), 3, None, None)
                }
                "openmm" => {
                    let p: OpenMmParams = self.required_params()?;
                    let u = OpenMmForceField::from_file(&p.xml)
                        .map_err(|e| bad("system.parameters.xml", e.to_string()))?;
                    bonds = Some(u.bonds());
                    (Box::new(u), 3, None, None)
                }
                other => {
                    return Err(bad(
                        "system.potential",
                        format!("unknown potential `{other}`; expected one of {POTENTIALS}"),
                    ))
                }
            };
        let dim = potential.dim();
        if spatial_dim == 0 || dim % spatial_dim != 0 {
            return Err(bad(
                "system.parameters.spatial_dim",
                format!("{spatial_dim} does not divide the {dim} coordinates"),
            ));
        }
        Ok(System {
            n_particles: dim / spatial_dim,
            potential,
            beta,
            spatial_dim,
            exact_log_z,
            exact_marginal_x0: marginal,
            length_per_angstrom,
            exact_sampler: sampler,
            bonds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(text: &str) -> Result<System> {
        let c: SystemConfig = toml::from_str(text).unwrap();
        c.build()
    }

    #[test]
    fn builds_each_potential_with_its_layout() {
        let s = system("potential = 'double_well'\nbeta = 1.0").unwrap();
        assert_eq!((s.n_particles, s.spatial_dim), (1, 2));
        assert!(
            (s.exact_log_z.unwrap() - DoubleWell2D::default().log_z(1.0).unwrap()).abs() < 1e-12
        );
        let s = system("potential = 'lj55'\nbeta = 2.0").unwrap();
        assert_eq!((s.n_particles, s.spatial_dim), (55, 3));
        let s = system("potential = 'many_well'\nbeta = 1.0\nparameters = { dim = 8 }").unwrap();
        assert_eq!((s.n_particles, s.spatial_dim), (4, 2));
        let s =
            system("potential = 'dw4'\ntemperature = 300.0\nenergy_unit = 'kj_per_mol'").unwrap();
        assert!((s.beta - 1.0 / (0.008_314_462_618 * 300.0)).abs() < 1e-12);
    }

    #[test]
    fn bad_systems_say_what_is_wrong() {
        let e = system("potential = 'double_well'").unwrap_err().to_string();
        assert!(e.contains("system.beta"), "{e}");
        let e = system("potential = 'double_well'\nbeta = 1.0\ntemperature = 1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
        let e = system("potential = 'double_well'\nbeta = 1.0\nparameters = { e = 1.0 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("system.parameters") && e.contains("`e`"), "{e}");
        let e = system("potential = 'muller_brown'\nbeta = 1.0\nparameters = { scale = -1.0 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scale"), "{e}");
        let e = system("potential = 'lj_fluid'\nbeta = 1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("n_particles"), "{e}");
    }
}
