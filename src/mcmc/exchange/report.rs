//! What replica exchange reports: the ladder, swaps per pair, round trips, occupancy and
//! each rung's moves.

use serde::{Deserialize, Serialize};

/// Swaps between one pair of neighbouring rungs, over every ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairReport {
    /// The two rungs (i, i + 1).
    pub rungs: (usize, usize),
    /// Production swap attempts.
    pub attempted: u64,
    /// Production swaps made.
    pub accepted: u64,
    /// Mean min(1, α) over production attempts (`None` without any).
    pub acceptance: Option<f64>,
    /// The same over burn-in, while the ladder may have been moving.
    pub burn_in_acceptance: Option<f64>,
}

/// One rung's local moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungReport {
    /// β of the rung.
    pub beta: f64,
    /// Per move of the mixture: production acceptance over the rung's chains.
    pub acceptance: Vec<f64>,
    /// Per move: the median step size over the rung's chains (`None` without one).
    pub step_sizes: Vec<Option<f64>>,
}

/// The result of replica exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeReport {
    /// β per rung (as frozen after burn-in when tuned); the target's first.
    pub betas: Vec<f64>,
    /// Each rung's temperature over the target's.
    pub temperature_factors: Vec<f64>,
    /// Whether the interior rungs were tuned in burn-in.
    pub tuned: bool,
    /// Independent ladders (the sampler's `chains`).
    pub ladders: usize,
    /// Steps between swap rounds.
    pub swap_interval: usize,
    /// Swap rounds in production.
    pub production_rounds: u64,
    /// Per pair of neighbours.
    pub pairs: Vec<PairReport>,
    /// Per replica: production round trips bottom → top → bottom.
    pub round_trips: Vec<u64>,
    /// Per replica, per rung: the fraction of production rounds it spent there.
    pub occupancy: Vec<Vec<f64>>,
    /// Per rung: the mean U at that rung over production rounds (a check on the ladder's
    /// overlap: neighbouring rungs' energy distributions must overlap for swaps to pass).
    pub mean_energy: Vec<Option<f64>>,
    /// Per rung: its moves.
    pub rungs: Vec<RungReport>,
}

impl ExchangeReport {
    /// Round trips of all replicas.
    pub fn total_round_trips(&self) -> u64 {
        self.round_trips.iter().sum()
    }
}
