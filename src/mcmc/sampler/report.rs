//! What a sampling run reports: per-move acceptance counts, per-chain samples and steps.

use serde::{Deserialize, Serialize};

use super::chain::Chain;
use super::Sampler;
use crate::mcmc::adapt::StepAdapter;
use crate::mcmc::exchange::{ExchangeReport, RungReport};

/// Counts of one move in one chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveCounts {
    /// Proposals made.
    pub proposed: u64,
    /// Proposals accepted.
    pub accepted: u64,
    /// Proposals refused because U or a log-density was not finite (also in `proposed`).
    pub non_finite: u64,
}

impl MoveCounts {
    pub(crate) fn add(&mut self, other: &MoveCounts) {
        self.proposed += other.proposed;
        self.accepted += other.accepted;
        self.non_finite += other.non_finite;
    }

    /// accepted / proposed (0 when nothing was proposed).
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.proposed.max(1) as f64
    }
}

/// One move's totals over all chains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveReport {
    /// The move's kind name.
    pub name: String,
    /// Whether its step adapted during burn-in.
    pub adapted: bool,
    /// Counts during burn-in.
    pub burn_in: MoveCounts,
    /// Counts during production.
    pub production: MoveCounts,
}

/// One chain's recorded production samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainRun {
    /// Recorded configurations, `[n × dim]`.
    pub samples: Vec<f64>,
    /// Their energies U(x).
    pub energies: Vec<f64>,
    /// Per move: the (frozen) step size, or `None` for moves without one.
    pub step_sizes: Vec<Option<f64>>,
    /// Per move: production counts.
    pub production: Vec<MoveCounts>,
    /// The chain's current configuration.
    pub final_state: Vec<f64>,
}

/// The result of a sampling run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRun {
    /// Coordinates per configuration.
    pub dim: usize,
    /// Inverse temperature.
    pub beta: f64,
    /// Steps made by each chain.
    pub steps_done: usize,
    /// Steps `0..adaptive_steps` adapted step sizes; later steps used frozen ones.
    pub adaptive_steps: usize,
    /// Per move of the mixture (with replica exchange, over the target rung's chains).
    pub moves: Vec<MoveReport>,
    /// Per chain (with replica exchange, the target rung's chain of every ladder).
    pub chains: Vec<ChainRun>,
    /// Every evaluation of U, including learned draws that were buffered but never used.
    pub energy_evaluations: u64,
    /// Times cached generator terms were dropped because the generators changed (a resume
    /// with another model); 0 in an ordinary run.
    pub generator_changes: u32,
    /// Replica exchange's ladder, swaps and round trips, when there was replica exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeReport>,
}

impl SampleRun {
    /// Coordinate `i` of every recorded sample of chain `c`.
    pub fn coordinate(&self, c: usize, i: usize) -> Vec<f64> {
        self.chains[c]
            .samples
            .chunks_exact(self.dim)
            .map(|x| x[i])
            .collect()
    }
}

/// The median of the chains' step sizes of move `k` (`None` for a move without one).
fn median_step<'c>(chains: impl Iterator<Item = &'c Chain>, k: usize) -> Option<f64> {
    let mut v: Vec<f64> = chains
        .filter_map(|c| c.steps[k].as_ref().map(StepAdapter::step))
        .collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

impl Sampler {
    /// The samples, energies, acceptance counts and adaptation of the run so far. With
    /// replica exchange, `chains` and `moves` are the target rung's, and `exchange` holds the
    /// other rungs' moves and the swaps.
    pub fn report(&self) -> SampleRun {
        let moves = self.config.moves.len();
        let rungs = self.config.rungs();
        let of_rung = |rung: usize| {
            self.chains
                .iter()
                .enumerate()
                .filter(move |(c, _)| c % rungs == rung)
                .map(|(_, chain)| chain)
        };
        let sum = |rung: usize, get: fn(&Chain) -> &Vec<MoveCounts>| {
            let mut total = vec![MoveCounts::default(); moves];
            for c in of_rung(rung) {
                for (t, m) in total.iter_mut().zip(get(c)) {
                    t.add(m);
                }
            }
            total
        };
        let burn_in = sum(0, |c| &c.burn_in_counts);
        let production = sum(0, |c| &c.production_counts);
        let exchange = self.exchange.as_ref().map(|x| {
            let per_rung = x
                .betas()
                .iter()
                .enumerate()
                .map(|(rung, &beta)| RungReport {
                    beta,
                    acceptance: sum(rung, |c| &c.production_counts)
                        .iter()
                        .map(MoveCounts::acceptance_rate)
                        .collect(),
                    step_sizes: (0..moves).map(|k| median_step(of_rung(rung), k)).collect(),
                })
                .collect();
            x.report(per_rung)
        });
        SampleRun {
            dim: self.dim,
            beta: self.config.beta,
            steps_done: self.step,
            adaptive_steps: self.config.burn_in.min(self.step),
            moves: self
                .config
                .moves
                .iter()
                .enumerate()
                .map(|(k, m)| MoveReport {
                    name: self
                        .move_names
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| m.kind.name().to_string()),
                    adapted: m.target_acceptance.is_some(),
                    burn_in: burn_in[k],
                    production: production[k],
                })
                .collect(),
            chains: of_rung(0)
                .map(|c| ChainRun {
                    samples: c.samples.clone(),
                    energies: c.energies.clone(),
                    step_sizes: c
                        .steps
                        .iter()
                        .map(|s| s.as_ref().map(StepAdapter::step))
                        .collect(),
                    production: c.production_counts.clone(),
                    final_state: c.state.x.clone(),
                })
                .collect(),
            energy_evaluations: self.learned_evaluations
                + self.chains.iter().map(|c| c.evaluations).sum::<u64>(),
            generator_changes: self.generator_changes,
            exchange,
        }
    }
}
