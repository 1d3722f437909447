//! Proposals, each returning its own Hastings term `log q(x | x′) − log q(x′ | x)`.

use boltzgen_potentials::Potential;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use super::chain::ChainState;
use crate::error::{Error, Result};
use crate::generator::Generator;
use crate::rng::ChainRng;

/// A proposed configuration with everything the acceptance test needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposed {
    /// x′.
    pub x: Vec<f64>,
    /// `log q(x | x′) − log q(x′ | x)`.
    pub log_hastings: f64,
    /// U(x′), when the proposal had to compute it anyway (MALA).
    pub energy: Option<f64>,
    /// ∇U(x′), likewise.
    pub gradient: Option<Vec<f64>>,
    /// log q_θ(x′) of a generator, for independence proposals.
    pub log_q: Option<f64>,
}

impl Proposed {
    /// A proposal that computed nothing but x′ and its Hastings term.
    pub fn new(x: Vec<f64>, log_hastings: f64) -> Self {
        Self {
            x,
            log_hastings,
            energy: None,
            gradient: None,
            log_q: None,
        }
    }
}

/// A Metropolis–Hastings proposal.
pub trait Proposal {
    /// A short name for reports ("random_walk", "mala", "flow").
    fn name(&self) -> &str;

    /// Proposes x′ from the current state.
    ///
    /// # Errors
    /// Whatever the potential or generator reports.
    fn propose(
        &mut self,
        state: &mut ChainState,
        potential: &dyn Potential,
        beta: f64,
        rng: &mut ChainRng,
    ) -> Result<Proposed>;
}

pub(crate) fn gaussian(rng: &mut ChainRng) -> f64 {
    StandardNormal.sample(rng)
}

/// Gaussian random walk `x′ = x + σ ξ` on all coordinates: symmetric, Hastings term 0.
#[derive(Debug, Clone)]
pub struct RandomWalk {
    /// Step size σ.
    pub step: f64,
}

impl Proposal for RandomWalk {
    fn name(&self) -> &str {
        "random_walk"
    }

    fn propose(
        &mut self,
        state: &mut ChainState,
        _: &dyn Potential,
        _: f64,
        rng: &mut ChainRng,
    ) -> Result<Proposed> {
        Ok(random_walk(&state.x, self.step, rng, Vec::new()))
    }
}

/// `x′ = x + σ ξ` on every coordinate.
///
/// `spare` is a recycled buffer for x′ (its contents are ignored), so that a chain in a
/// tight loop does not allocate every step.
pub(crate) fn random_walk(x: &[f64], step: f64, rng: &mut ChainRng, spare: Vec<f64>) -> Proposed {
    let mut x_new = spare;
    x_new.clear();
    x_new.extend(x.iter().map(|v| v + step * gaussian(rng)));
    Proposed::new(x_new, 0.0)
}

/// A Gaussian random walk of one particle at a time: a particle is chosen uniformly and its
/// `spatial_dim` coordinates move by `σ ξ`. Symmetric, Hastings term 0. For particle systems
/// (LJ, DW4) this keeps the acceptance reasonable where moving every atom at once would not.
#[derive(Debug, Clone)]
pub struct ParticleWalk {
    /// Step size σ.
    pub step: f64,
    /// Coordinates per particle (2 or 3).
    pub spatial_dim: usize,
}

impl Proposal for ParticleWalk {
    fn name(&self) -> &str {
        "particle_walk"
    }

    fn propose(
        &mut self,
        state: &mut ChainState,
        _: &dyn Potential,
        _: f64,
        rng: &mut ChainRng,
    ) -> Result<Proposed> {
        particle_walk(&state.x, self.step, self.spatial_dim, rng, Vec::new())
    }
}

/// Moves one uniformly chosen particle of `x` by `σ ξ` (`spare` as in [`random_walk`]).
pub(crate) fn particle_walk(
    x: &[f64],
    step: f64,
    spatial_dim: usize,
    rng: &mut ChainRng,
    spare: Vec<f64>,
) -> Result<Proposed> {
    if spatial_dim == 0 || x.len() % spatial_dim != 0 {
        return Err(Error::Dimension {
            what: "particle walk (coordinates must be a multiple of spatial_dim)".into(),
            expected: spatial_dim,
            got: x.len(),
        });
    }
    let particle = rng.random_range(0..x.len() / spatial_dim);
    let mut x_new = spare;
    x_new.clear();
    x_new.extend_from_slice(x);
    for v in &mut x_new[particle * spatial_dim..(particle + 1) * spatial_dim] {
        *v += step * gaussian(rng);
    }
    Ok(Proposed::new(x_new, 0.0))
}

/// Metropolis-adjusted Langevin: `x′ = x − (ε²/2) β ∇U(x) + ε ξ`.
///
/// The proposal is asymmetric: with `m(x) = x − (ε²/2) β ∇U(x)`,
/// `log q(x′ | x) = −‖x′ − m(x)‖² / (2ε²) + const`, and the Hastings term is
/// `[‖x′ − m(x)‖² − ‖x − m(x′)‖²] / (2ε²)`. It needs ∇U(x′), which it computes and returns with
/// U(x′).
#[derive(Debug, Clone)]
pub struct Mala {
    /// Step size ε.
    pub step: f64,
}

impl Proposal for Mala {
    fn name(&self) -> &str {
        "mala"
    }

    fn propose(
        &mut self,
        state: &mut ChainState,
        potential: &dyn Potential,
        beta: f64,
        rng: &mut ChainRng,
    ) -> Result<Proposed> {
        mala(state, potential, beta, self.step, rng)
    }
}

/// One MALA proposal from `state` with step ε (see [`Mala`]).
pub(crate) fn mala(
    state: &mut ChainState,
    potential: &dyn Potential,
    beta: f64,
    step: f64,
    rng: &mut ChainRng,
) -> Result<Proposed> {
    let e2 = step * step;
    let drift = 0.5 * e2 * beta;
    let (x, grad_x) = state.x_and_gradient(potential)?;
    let mean_fwd: Vec<f64> = x.iter().zip(grad_x).map(|(x, g)| x - drift * g).collect();
    let x_new: Vec<f64> = mean_fwd.iter().map(|m| m + step * gaussian(rng)).collect();
    let mut grad_new = vec![0.0; x_new.len()];
    let u_new = match potential.energy_and_gradient(&x_new, &mut grad_new) {
        Ok(u) => u,
        // A proposal the potential rejects (e.g. a non-finite step) is simply refused.
        Err(_) => {
            return Ok(Proposed {
                energy: Some(f64::NAN),
                ..Proposed::new(x_new, f64::NAN)
            })
        }
    };
    // ‖x′ − m(x)‖² and ‖x − m(x′)‖², with m(y) = y − (ε²/2) β ∇U(y).
    let fwd: f64 = x_new
        .iter()
        .zip(&mean_fwd)
        .map(|(a, m)| (a - m) * (a - m))
        .sum();
    let bwd: f64 = state
        .x
        .iter()
        .zip(x_new.iter().zip(&grad_new))
        .map(|(a, (xn, g))| {
            let m = xn - drift * g;
            (a - m) * (a - m)
        })
        .sum();
    Ok(Proposed {
        x: x_new,
        log_hastings: (fwd - bwd) / (2.0 * e2),
        energy: Some(u_new),
        gradient: Some(grad_new),
        log_q: None,
    })
}

/// Independence proposals from a generator with an exact density:
/// `x′ ~ q_θ`, Hastings term `log q_θ(x) − log q_θ(x′)`.
///
/// Draws are made in batches of `batch` (one generator call per batch) and consumed one per
/// proposal. Exactness does not depend on the generator being good, only on log q being its
/// exact density, so generators without one (VAEs) are refused.
pub struct FlowIndependence<G: Generator> {
    generator: G,
    batch: usize,
    buffer: Vec<(Vec<f64>, f64)>,
}

impl<G: Generator> FlowIndependence<G> {
    /// An independence proposal drawing `batch` configurations per generator call.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a generator without an exact density or `batch == 0`.
    pub fn new(generator: G, batch: usize) -> Result<Self> {
        if !generator.exact_density() {
            return Err(Error::InvalidArgument {
                name: "generator".into(),
                message: "an independence proposal needs an exact log q (a flow); use the VAE proposal for VAEs".into(),
            });
        }
        if batch == 0 {
            return Err(Error::InvalidArgument {
                name: "batch".into(),
                message: "must be positive".into(),
            });
        }
        Ok(Self {
            generator,
            batch,
            buffer: Vec::new(),
        })
    }
}

impl<G: Generator> Proposal for FlowIndependence<G> {
    fn name(&self) -> &str {
        "flow"
    }

    fn propose(
        &mut self,
        state: &mut ChainState,
        _: &dyn Potential,
        _: f64,
        rng: &mut ChainRng,
    ) -> Result<Proposed> {
        if self.buffer.is_empty() {
            let s = self.generator.sample(self.batch, rng)?;
            // Reversed so that pop() hands them out in draw order.
            self.buffer = (0..s.len())
                .rev()
                .map(|i| (s.configuration(i).to_vec(), s.log_q[i]))
                .collect();
        }
        let (mut x, log_q_new) = self.buffer.pop().ok_or_else(|| Error::InvalidArgument {
            name: "generator".into(),
            message: "the generator returned no samples".into(),
        })?;
        self.generator.place_like(&mut x, &state.x)?;
        let log_q_current = match state.log_q {
            Some(l) => l,
            None => {
                let l = self.generator.log_prob(&state.x)?[0];
                state.log_q = Some(l);
                l
            }
        };
        Ok(Proposed {
            log_q: Some(log_q_new),
            ..Proposed::new(x, log_q_current - log_q_new)
        })
    }
}

/// A random walk in the latent space of a flow `x = f(z)`: `z′ = f⁻¹(x) + σ ξ`, `x′ = f(z′)`.
///
/// The Gaussian parts cancel, leaving the Jacobians:
/// `log q(x | x′) − log q(x′ | x) = log|det J_{f⁻¹}(x)| − log|det J_{f⁻¹}(x′)|`
/// `= log|det J_{f⁻¹}(x)| + log|det J_f(z′)|`.
pub struct LatentWalk {
    flow: crate::generator::Flow,
    /// Step size σ in latent space.
    pub step: f64,
}

impl LatentWalk {
    /// A latent walk through `flow` with step σ.
    pub fn new(flow: crate::generator::Flow, step: f64) -> Self {
        Self { flow, step }
    }

    /// The flow it walks through.
    pub fn flow(&self) -> &crate::generator::Flow {
        &self.flow
    }
}

impl Proposal for LatentWalk {
    fn name(&self) -> &str {
        "latent_walk"
    }

    fn propose(
        &mut self,
        state: &mut ChainState,
        _: &dyn Potential,
        _: f64,
        rng: &mut ChainRng,
    ) -> Result<Proposed> {
        let (z, logdet_inverse_x) = self.flow.inverse(&state.x)?;
        let z_new: Vec<f64> = z.iter().map(|v| v + self.step * gaussian(rng)).collect();
        let (mut x_new, logdet_forward_z_new) = self.flow.forward(&z_new)?;
        // The flow's inverse drops the external coordinates (centre of mass, or position and
        // orientation) and its forward draws them at the origin.
        self.flow.place_like(&mut x_new, &state.x)?;
        Ok(Proposed::new(
            x_new,
            logdet_inverse_x[0] + logdet_forward_z_new[0],
        ))
    }
}
