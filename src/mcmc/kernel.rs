//! The one Metropolis–Hastings kernel: every caller (the sampler's chains, the single-chain
//! [`run_chain`], relaxation of training frames) finishes a step here.
//!
//! A step is: a [move](super::moves) proposes x′ with its Hastings term; U(x′) is the move's
//! own or is evaluated ([`proposal_energy`]); [`decide`] takes
//! `log α = −β [U(x′) − U(x)] + log_hastings` ([`log_acceptance`]), draws the uniform from
//! the chain's stream, and on acceptance moves the state to x′ with what the move computed
//! there. Which move, when, and what is recorded is the caller's business.

use boltzgen_potentials::Potential;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::accept::{accept, log_acceptance};
use super::moves::{Move, Proposed, Target};
use super::state::ChainState;
use crate::error::{Error, Result};
use crate::rng::ChainRng;

/// The outcome of one accept/reject decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// `log α` (−∞ for a refused proposal).
    pub log_alpha: f64,
    /// Whether the state moved to x′.
    pub accepted: bool,
    /// Whether U(x′) or the Hastings term was not finite (the proposal was refused).
    pub non_finite: bool,
}

/// U(x′): the move's own value, or an evaluation (NaN, hence a refusal, when the potential
/// rejects x′). The flag says whether U was evaluated here.
#[inline]
pub fn proposal_energy(proposed: &Proposed, potential: &dyn Potential) -> (f64, bool) {
    match proposed.energy {
        Some(u) => (u, false),
        None => (potential.energy(&proposed.x).unwrap_or(f64::NAN), true),
    }
}

/// Accepts or rejects `proposed` (with energy `energy`) at inverse temperature `beta`, the
/// uniform drawn from `rng`. Returns the decision and the configuration buffer no longer in
/// use (x′'s when rejected, the old x's when accepted), for the next proposal to reuse.
#[inline]
pub fn decide(
    state: &mut ChainState,
    proposed: Proposed,
    energy: f64,
    beta: f64,
    rng: &mut ChainRng,
) -> (Decision, Vec<f64>) {
    let log_alpha = log_acceptance(beta, state.energy, energy, proposed.log_hastings);
    let non_finite = !energy.is_finite() || !proposed.log_hastings.is_finite();
    if accept(log_alpha, rng.random::<f64>()) {
        let spare = state.accept(proposed, energy);
        (
            Decision {
                log_alpha,
                accepted: true,
                non_finite,
            },
            spare,
        )
    } else {
        (
            Decision {
                log_alpha,
                accepted: false,
                non_finite,
            },
            proposed.x,
        )
    }
}

/// Acceptance counts of one move of a single chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoveStats {
    /// The move's name.
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

/// Runs `steps` Metropolis–Hastings steps of one chain from `state`, choosing move k with
/// probability proportional to `moves[k].1`, and calls `observe` with the state after every
/// step. Every move draws from `rng` (learned ones too, one chain at a time) with its own
/// configured step size.
///
/// # Errors
/// [`Error::InvalidArgument`] for no moves or non-positive weights; whatever a move or the
/// potential reports.
pub fn run_chain(
    state: &mut ChainState,
    potential: &dyn Potential,
    beta: f64,
    moves: &mut [(Box<dyn Move + '_>, f64)],
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
        .map(|(m, _)| MoveStats {
            name: m.name().to_string(),
            ..MoveStats::default()
        })
        .collect();
    let target = Target { potential, beta };
    // The configuration buffer that a rejected proposal (or the old x) leaves for the next.
    let mut spare = Vec::new();
    for _ in 0..steps {
        let mut pick = rng.random::<f64>() * total;
        let mut k = 0;
        while k + 1 < moves.len() && pick >= moves[k].1 {
            pick -= moves[k].1;
            k += 1;
        }
        let m = &mut moves[k].0;
        let step = m.step().unwrap_or(0.0);
        let proposed = if m.is_batched() {
            m.propose_batch(&mut [&mut *state], &[step], &target, rng)?
                .proposals
                .pop()
                .ok_or_else(|| Error::InvalidArgument {
                    name: m.name().into(),
                    message: "returned no proposal".into(),
                })?
        } else {
            m.propose(state, step, &target, rng, std::mem::take(&mut spare))?
        };
        let (energy, _) = proposal_energy(&proposed, potential);
        let (decision, unused) = decide(state, proposed, energy, beta, rng);
        spare = unused;
        stats[k].proposed += 1;
        stats[k].accepted += usize::from(decision.accepted);
        observe(state);
    }
    Ok(stats)
}
