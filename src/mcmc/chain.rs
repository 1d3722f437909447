//! One Markov chain: pick a move, propose, accept or reject with the exact rule.

use boltzgen_potentials::Potential;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::accept::{accept, log_acceptance};
use super::proposal::{Proposal, Proposed};
use crate::error::{Error, Result};
use crate::rng::ChainRng;

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
    pub(crate) latent: Option<crate::mcmc::vae_move::ExtendedLatent>,
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

    /// Moves the state to an accepted proposal, keeping what the proposal computed and
    /// forgetting what belonged to the old x. Returns the old x's buffer for reuse.
    pub(crate) fn accept(&mut self, proposed: Proposed, energy: f64) -> Vec<f64> {
        let old = std::mem::replace(&mut self.x, proposed.x);
        self.energy = energy;
        self.gradient = proposed.gradient;
        self.log_q = proposed.log_q;
        self.latent = None;
        old
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

/// Acceptance counts of one kind of move.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoveStats {
    /// The proposal's name.
    pub name: String,
    /// Times it was proposed.
    pub proposed: usize,
    /// Times it was accepted.
    pub accepted: usize,
}

impl MoveStats {
    /// Accepted / proposed.
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.proposed.max(1) as f64
    }
}

/// Runs `steps` Metropolis–Hastings steps from `state`, choosing move k with probability
/// proportional to `moves[k].1`, and calls `observe` with the state after every step.
///
/// # Errors
/// [`Error::InvalidArgument`] for no moves or non-positive weights; whatever a proposal or the
/// potential reports.
pub fn run_chain(
    state: &mut ChainState,
    potential: &dyn Potential,
    beta: f64,
    moves: &mut [(Box<dyn Proposal>, f64)],
    steps: usize,
    rng: &mut ChainRng,
    mut observe: impl FnMut(&ChainState),
) -> Result<Vec<MoveStats>> {
    let total: f64 = moves.iter().map(|(_, w)| *w).sum();
    if moves.is_empty() || moves.iter().any(|(_, w)| !(*w > 0.0 && w.is_finite())) {
        return Err(Error::InvalidArgument {
            name: "moves".into(),
            message: "need at least one move, all weights positive".into(),
        });
    }
    let mut stats: Vec<MoveStats> = moves
        .iter()
        .map(|(p, _)| MoveStats {
            name: p.name().to_string(),
            ..MoveStats::default()
        })
        .collect();
    for _ in 0..steps {
        let mut pick = rng.random::<f64>() * total;
        let mut k = 0;
        while k + 1 < moves.len() && pick >= moves[k].1 {
            pick -= moves[k].1;
            k += 1;
        }
        let proposed = moves[k].0.propose(state, potential, beta, rng)?;
        let u_new = match proposed.energy {
            Some(u) => u,
            // A configuration the potential rejects (non-finite coordinates) is refused: NaN
            // makes log α = −∞.
            None => potential.energy(&proposed.x).unwrap_or(f64::NAN),
        };
        let log_alpha = log_acceptance(beta, state.energy, u_new, proposed.log_hastings);
        stats[k].proposed += 1;
        if accept(log_alpha, rng.random::<f64>()) {
            stats[k].accepted += 1;
            state.accept(proposed, u_new);
        }
        observe(state);
    }
    Ok(stats)
}
