//! The state of one Markov chain: its configuration, U(x), and what moves cached about it.

use boltzgen_potentials::Potential;
use serde::{Deserialize, Serialize};

use super::moves::{ExtendedLatent, Proposed};
use crate::error::{Error, Result};

/// The state of a chain: the configuration and what is known about it.
///
/// Serialised in sampler checkpoints. The cached gradient is not (it is recomputed, to the
/// same bits, from x); the cached generator terms are, because recomputing them in a batch
/// of another shape could change their last bits and so a resumed chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainState {
    /// The configuration x.
    pub x: Vec<f64>,
    /// U(x).
    pub energy: f64,
    /// ∇U(x), computed on demand and kept until x changes.
    #[serde(skip)]
    pub(crate) gradient: Option<Vec<f64>>,
    /// log q_θ(x) of the independence proposal's generator, likewise cached.
    pub(crate) log_q: Option<f64>,
    /// The auxiliary latent of the VAE proposal's extended space, valid for this x.
    pub(crate) latent: Option<ExtendedLatent>,
}

impl ChainState {
    /// A state at x.
    ///
    /// # Errors
    /// What the potential reports for x, or [`Error::InvalidArgument`] if U(x) is infinite.
    pub fn new(x: Vec<f64>, potential: &dyn Potential) -> Result<Self> {
        let energy = potential.energy(&x)?;
        if !energy.is_finite() {
            return Err(Error::InvalidArgument {
                name: "x0".into(),
                message: format!("the starting energy is {energy}"),
            });
        }
        Ok(Self {
            x,
            energy,
            gradient: None,
            log_q: None,
            latent: None,
        })
    }

    /// A state at x whose energy is already known to be `energy` (finite).
    pub(crate) fn with_energy(x: Vec<f64>, energy: f64) -> Self {
        Self {
            x,
            energy,
            gradient: None,
            log_q: None,
            latent: None,
        }
    }

    /// Moves the state to an accepted proposal, keeping what the proposal computed (∇U,
    /// log q, the VAE latent) and forgetting what belonged to the old x. Returns the old x's
    /// buffer for reuse.
    #[inline]
    pub(crate) fn accept(&mut self, proposed: Proposed, energy: f64) -> Vec<f64> {
        let old = std::mem::replace(&mut self.x, proposed.x);
        self.energy = energy;
        self.gradient = proposed.gradient;
        self.log_q = proposed.log_q;
        self.latent = proposed.latent;
        old
    }

    /// log q_θ(x) cached by the flow-independence move, if any.
    pub fn cached_log_q(&self) -> Option<f64> {
        self.log_q
    }

    /// Drops every cached generator term (log q, the VAE latent): after the generators
    /// changed, they no longer describe this state.
    pub(crate) fn forget_generator_terms(&mut self) {
        self.log_q = None;
        self.latent = None;
    }

    /// Whether a generator term is cached.
    pub(crate) fn has_generator_terms(&self) -> bool {
        self.log_q.is_some() || self.latent.is_some()
    }

    /// x and ∇U(x) together (MALA needs both).
    pub(crate) fn x_and_gradient(&mut self, potential: &dyn Potential) -> Result<(&[f64], &[f64])> {
        self.gradient(potential)?;
        Ok((&self.x, self.gradient.as_deref().unwrap_or(&[])))
    }

    /// ∇U(x), computed once per configuration.
    ///
    /// # Errors
    /// What the potential reports.
    pub fn gradient(&mut self, potential: &dyn Potential) -> Result<&[f64]> {
        if self.gradient.is_none() {
            let mut g = vec![0.0; self.x.len()];
            potential.energy_and_gradient(&self.x, &mut g)?;
            self.gradient = Some(g);
        }
        Ok(self.gradient.as_deref().unwrap_or(&[]))
    }
}
