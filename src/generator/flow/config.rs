//! A flow's architecture: its layers, its base distribution and the checks that bound them,
//! everything needed to rebuild a flow before loading its weights.

use serde::{Deserialize, Serialize};

use super::{Activation, InternalCoordinates};
use crate::error::{Error, Result};
use crate::generator::mlp::{add_parameters, parameter_count, MAX_MODEL_DIM};
use crate::generator::Precision;

/// One layer of a flow, as written in a config file or a model's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// RealNVP affine coupling on the coordinates `transformed`, conditioned on the rest.
    AffineCoupling {
        /// Indices of the coordinates this layer changes.
        transformed: Vec<usize>,
        /// Hidden layer sizes of the conditioner.
        hidden: Vec<usize>,
        /// Bound c on each log-scale: |s| < c.
        scale_bound: f64,
    },
    /// Rational-quadratic spline coupling.
    SplineCoupling {
        /// Indices of the coordinates this layer changes.
        transformed: Vec<usize>,
        /// Hidden layer sizes of the conditioner.
        hidden: Vec<usize>,
        /// Number of spline bins K.
        bins: usize,
        /// The spline acts on [−B, B]; identity outside.
        tail_bound: f64,
    },
    /// Per-coordinate scale and shift, initialised from data.
    ActNorm,
    /// A fixed permutation: `x_i = z_{order[i]}`.
    Permutation {
        /// A permutation of `0..dim`.
        order: Vec<usize>,
    },
    /// A fixed map from 𝒩(0, 1) to the uniform density on `(−bound, bound)` on the
    /// coordinates `transformed`: `x = bound · erf(z / √2)`. Internal-coordinate flows put it
    /// first (at the latent side) for their torsions.
    UniformCdf {
        /// Indices of the coordinates this layer changes.
        transformed: Vec<usize>,
        /// Half-width of the interval.
        bound: f64,
    },
}

/// The base distribution of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BaseSpec {
    /// 𝒩(0, I) in `dim` coordinates; the layers act on all of them.
    #[default]
    StandardNormal,
    /// The mean-free (centre-of-mass-free) Gaussian of `n_particles` in `spatial_dim`
    /// dimensions. The layers act on (n − 1)·d internal coordinates, which a fixed orthonormal
    /// (Helmert) basis embeds into the centre-of-mass-free subspace of ℝ^{n·d}. Every draw has
    /// its centre of mass at the origin, and log q is the density on that (n − 1)·d-dimensional
    /// subspace; `log_prob` of any configuration first removes its centre of mass, which
    /// translation-invariant potentials do not see.
    MeanFree {
        /// Number of particles n.
        n_particles: usize,
        /// Spatial dimension d.
        spatial_dim: usize,
    },
}

/// The architecture of a flow: everything needed to rebuild it before loading weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Number of coordinates of a configuration.
    pub dim: usize,
    /// Layers, applied in this order from latent to configuration space, on
    /// [`latent_dim`](FlowConfig::latent_dim) coordinates.
    pub layers: Vec<LayerSpec>,
    /// Base distribution.
    #[serde(default)]
    pub base: BaseSpec,
    /// Hidden-layer non-linearity of every conditioner.
    #[serde(default)]
    pub activation: Activation,
    /// Parameter precision.
    #[serde(default)]
    pub precision: Precision,
    /// When set, the layers act on the normalised internal coordinates of a molecule and the
    /// flow generates Cartesian configurations (see [`internal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<InternalCoordinates>,
}

/// The two halves used by alternating couplings: the upper half first, then the lower.
fn halves(dim: usize, k: usize) -> Vec<usize> {
    let half = dim / 2;
    if k % 2 == 0 {
        (half..dim).collect()
    } else {
        (0..half).collect()
    }
}

impl FlowConfig {
    /// RealNVP: `couplings` affine couplings alternating between the two halves of the
    /// coordinates, log-scales bounded by 2, with an ActNorm in front (at the data side).
    pub fn real_nvp(dim: usize, couplings: usize, hidden: &[usize]) -> Self {
        let mut layers: Vec<LayerSpec> = (0..couplings)
            .map(|k| LayerSpec::AffineCoupling {
                transformed: halves(dim, k),
                hidden: hidden.to_vec(),
                scale_bound: 2.0,
            })
            .collect();
        layers.push(LayerSpec::ActNorm);
        Self {
            dim,
            layers,
            base: BaseSpec::StandardNormal,
            activation: Activation::LeakyRelu,
            precision: Precision::Float32,
            internal: None,
        }
    }

    /// A neural spline flow: `couplings` rational-quadratic spline couplings with `bins` bins
    /// on `[−tail_bound, tail_bound]`, alternating halves, with an ActNorm at the data side.
    pub fn neural_spline(
        dim: usize,
        couplings: usize,
        hidden: &[usize],
        bins: usize,
        tail_bound: f64,
    ) -> Self {
        let mut layers: Vec<LayerSpec> = (0..couplings)
            .map(|k| LayerSpec::SplineCoupling {
                transformed: halves(dim, k),
                hidden: hidden.to_vec(),
                bins,
                tail_bound,
            })
            .collect();
        layers.push(LayerSpec::ActNorm);
        Self {
            dim,
            layers,
            base: BaseSpec::StandardNormal,
            activation: Activation::LeakyRelu,
            precision: Precision::Float32,
            internal: None,
        }
    }

    /// A neural spline flow in the internal coordinates of a molecule (see [`internal`]):
    /// a [`LayerSpec::UniformCdf`] for the torsions at the latent side, then `couplings`
    /// spline couplings on `[−B, B]` (`B = internal.torsion_bound`) that cycle through three
    /// transformed sets: the first half of the torsions, the second half, and all bond lengths
    /// and angles, each conditioned on the rest. No ActNorm: the internal coordinates are
    /// already normalised, and a scale would push torsions off their interval.
    pub fn internal_spline(
        internal: InternalCoordinates,
        couplings: usize,
        hidden: &[usize],
        bins: usize,
    ) -> Self {
        Self::internal_spline_with(internal, couplings, hidden, bins, false)
    }

    /// [`internal_spline`](Self::internal_spline), optionally with the bond lengths and
    /// angles split into two halves that condition on each other (four transformed sets
    /// instead of three): the root's three coordinates and the (r, θ) of every second placed
    /// atom, and the (r, θ) of the others. Siblings are placed one after another, so the
    /// angles around one atom fall into different halves.
    pub fn internal_spline_with(
        internal: InternalCoordinates,
        couplings: usize,
        hidden: &[usize],
        bins: usize,
        split_bonds_angles: bool,
    ) -> Self {
        let torsions = internal.torsions();
        let others: Vec<usize> = (0..internal.internal_dim())
            .filter(|i| !torsions.contains(i))
            .collect();
        let half = torsions.len() / 2;
        let mut sets = vec![torsions[..half].to_vec(), torsions[half..].to_vec()];
        if split_bonds_angles && others.len() > 3 {
            // others = [r_ab, r_bc, θ_abc, r₁, θ₁, r₂, θ₂, …]: pairs after the root's three.
            // The root's three join the pairs of the 2nd, 4th, … placed atoms; the 1st, 3rd, …
            // form the other half.
            let (mut with_root, mut alternate) = (others[..3].to_vec(), Vec::new());
            for (k, pair) in others[3..].chunks(2).enumerate() {
                if k % 2 == 0 {
                    &mut alternate
                } else {
                    &mut with_root
                }
                .extend_from_slice(pair);
            }
            sets.push(with_root);
            sets.push(alternate);
        } else {
            sets.push(others);
        }
        let bound = internal.torsion_bound;
        let mut layers = vec![LayerSpec::UniformCdf {
            transformed: torsions.clone(),
            bound,
        }];
        layers.extend(
            sets.iter()
                .filter(|set| !set.is_empty())
                .cycle()
                .take(couplings)
                .map(|set| LayerSpec::SplineCoupling {
                    transformed: set.clone(),
                    hidden: hidden.to_vec(),
                    bins,
                    tail_bound: bound,
                }),
        );
        Self {
            dim: 3 * internal.n_atoms,
            layers,
            base: BaseSpec::StandardNormal,
            activation: Activation::LeakyRelu,
            precision: Precision::Float32,
            internal: Some(internal),
        }
    }

    /// Turns a flow built for (n − 1)·d coordinates into a flow on `n_particles` in
    /// `spatial_dim` dimensions with the mean-free Gaussian base (see [`BaseSpec::MeanFree`]):
    /// `FlowConfig::neural_spline((n - 1) * d, ..).mean_free(n, d)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `dim == (n − 1)·d` and n ≥ 2.
    pub fn mean_free(mut self, n_particles: usize, spatial_dim: usize) -> Result<Self> {
        if n_particles < 2 || spatial_dim == 0 || self.dim != (n_particles - 1) * spatial_dim {
            return Err(Error::InvalidArgument {
                name: "base".into(),
                message: format!(
                    "a mean-free base for {n_particles} particles in {spatial_dim}-D needs layers on {} coordinates, these have {}",
                    n_particles.saturating_sub(1) * spatial_dim,
                    self.dim
                ),
            });
        }
        self.dim = n_particles * spatial_dim;
        self.base = BaseSpec::MeanFree {
            n_particles,
            spatial_dim,
        };
        Ok(self)
    }

    /// Number of coordinates the layers act on: `dim`, (n − 1)·d with a mean-free base, or
    /// 3n − 6 in internal coordinates.
    pub fn latent_dim(&self) -> usize {
        if let Some(internal) = &self.internal {
            return internal.internal_dim();
        }
        match self.base {
            BaseSpec::StandardNormal => self.dim,
            BaseSpec::MeanFree {
                n_particles,
                spatial_dim,
            } => n_particles.saturating_sub(1) * spatial_dim,
        }
    }

    /// The same architecture in another precision.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Checks that every layer fits `dim`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer and what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |i: usize, message: String| Error::InvalidArgument {
            name: format!("layers[{i}]"),
            message,
        };
        if self.dim == 0 || self.dim > MAX_MODEL_DIM {
            return Err(Error::InvalidArgument {
                name: "dim".into(),
                message: format!("must be from 1 to {MAX_MODEL_DIM}, got {}", self.dim),
            });
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(Error::InvalidArgument {
                name: "layers".into(),
                message: format!("at most {MAX_LAYERS} layers, got {}", self.layers.len()),
            });
        }
        if let BaseSpec::MeanFree {
            n_particles,
            spatial_dim,
        } = self.base
        {
            if n_particles < 2 || n_particles.checked_mul(spatial_dim) != Some(self.dim) {
                return Err(Error::InvalidArgument {
                    name: "base".into(),
                    message: format!(
                        "{n_particles} particles in {spatial_dim}-D do not make {} coordinates",
                        self.dim
                    ),
                });
            }
        }
        let dim = self.latent_dim();
        let mut parameters = 0usize;
        for (i, layer) in self.layers.iter().enumerate() {
            match layer {
                LayerSpec::AffineCoupling {
                    transformed,
                    hidden,
                    scale_bound,
                } => {
                    check_subset(dim, transformed).map_err(|m| bad(i, m))?;
                    check_hidden(hidden).map_err(|m| bad(i, m))?;
                    let out = transformed.len().checked_mul(2);
                    add_parameters(
                        &mut parameters,
                        out.and_then(|o| parameter_count(dim - transformed.len(), hidden, o)),
                    )
                    .map_err(|m| bad(i, m))?;
                    if !(*scale_bound > 0.0 && scale_bound.is_finite()) {
                        return Err(bad(
                            i,
                            format!("scale_bound must be positive, got {scale_bound}"),
                        ));
                    }
                }
                LayerSpec::SplineCoupling {
                    transformed,
                    hidden,
                    bins,
                    tail_bound,
                } => {
                    check_subset(dim, transformed).map_err(|m| bad(i, m))?;
                    check_hidden(hidden).map_err(|m| bad(i, m))?;
                    if *bins < 2 || (*bins as f64) * spline_min_bin() >= 1.0 {
                        return Err(bad(
                            i,
                            format!("bins must be between 2 and 999, got {bins}"),
                        ));
                    }
                    let out = transformed.len().checked_mul(3 * bins - 1);
                    add_parameters(
                        &mut parameters,
                        out.and_then(|o| parameter_count(dim - transformed.len(), hidden, o)),
                    )
                    .map_err(|m| bad(i, m))?;
                    if !(*tail_bound > 0.0 && tail_bound.is_finite()) {
                        return Err(bad(
                            i,
                            format!("tail_bound must be positive, got {tail_bound}"),
                        ));
                    }
                }
                LayerSpec::ActNorm => {}
                LayerSpec::UniformCdf { transformed, bound } => {
                    check_subset(dim, transformed).map_err(|m| bad(i, m))?;
                    if !(*bound > 0.0 && bound.is_finite()) {
                        return Err(bad(i, format!("bound must be positive, got {bound}")));
                    }
                }
                LayerSpec::Permutation { order } => {
                    let mut sorted = order.clone();
                    sorted.sort_unstable();
                    if sorted != (0..dim).collect::<Vec<_>>() {
                        return Err(bad(i, format!("order must be a permutation of 0..{dim}")));
                    }
                }
            }
        }
        if let Some(internal) = &self.internal {
            self.validate_internal(internal)?;
        }
        Ok(())
    }

    /// An internal-coordinate flow must keep every torsion on `[−B, B]`: a uniform base for
    /// exactly the torsions first, then only spline couplings on exactly `[−B, B]`.
    fn validate_internal(&self, internal: &InternalCoordinates) -> Result<()> {
        internal.validate()?;
        let bad = |name: &str, message: String| Error::InvalidArgument {
            name: name.into(),
            message,
        };
        if self.base != BaseSpec::StandardNormal {
            return Err(bad(
                "base",
                "internal coordinates take the standard-normal base".into(),
            ));
        }
        if self.dim != 3 * internal.n_atoms {
            return Err(bad(
                "dim",
                format!(
                    "{} atoms have {} Cartesian coordinates, not {}",
                    internal.n_atoms,
                    3 * internal.n_atoms,
                    self.dim
                ),
            ));
        }
        let bound = internal.torsion_bound;
        let torsions = internal.torsions();
        match self.layers.first() {
            Some(LayerSpec::UniformCdf {
                transformed,
                bound: b,
            }) if *transformed == torsions && *b == bound => {}
            _ => {
                return Err(bad(
                    "layers[0]",
                    format!(
                        "an internal-coordinate flow starts with a uniform_cdf layer on its torsions {torsions:?} with bound {bound}"
                    ),
                ))
            }
        }
        for (i, layer) in self.layers.iter().enumerate().skip(1) {
            match layer {
                LayerSpec::SplineCoupling { tail_bound, .. } if *tail_bound == bound => {}
                _ => {
                    return Err(bad(
                        &format!("layers[{i}]"),
                        format!(
                            "an internal-coordinate flow takes only spline couplings with tail_bound = torsion_bound = {bound} after its first layer"
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The most layers a flow may have.
pub const MAX_LAYERS: usize = 10_000;

fn spline_min_bin() -> f64 {
    1e-3
}

fn check_subset(dim: usize, transformed: &[usize]) -> std::result::Result<(), String> {
    if transformed.is_empty() || transformed.len() >= dim {
        return Err(format!(
            "a coupling must transform between 1 and {} of the {dim} coordinates, got {}",
            dim.saturating_sub(1),
            transformed.len()
        ));
    }
    let mut seen = vec![false; dim];
    for &t in transformed {
        if t >= dim || seen[t] {
            return Err(format!("transformed index {t} is out of range or repeated"));
        }
        seen[t] = true;
    }
    Ok(())
}

fn check_hidden(hidden: &[usize]) -> std::result::Result<(), String> {
    if hidden.contains(&0) {
        Err("hidden layer sizes must be positive".into())
    } else {
        Ok(())
    }
}
