//! One chain of the sampler: its state, stream, step sizes, counts and recorded samples, and
//! how it advances through a block (per-chain moves on its own thread; batched moves waited
//! for and finished when served). Every decision goes through [`crate::mcmc::kernel`].

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::config::SamplerConfig;
use super::report::MoveCounts;
use crate::error::{Error, Result};
use crate::mcmc::adapt::StepAdapter;
use crate::mcmc::kernel::{decide, proposal_energy};
use crate::mcmc::moves::{Move, Proposed, Target};
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Chain {
    pub(super) state: ChainState,
    pub(super) rng: ChainRng,
    /// Per move: the step size (adaptive or fixed), `None` for moves without one.
    pub(super) steps: Vec<Option<StepAdapter>>,
    pub(super) burn_in_counts: Vec<MoveCounts>,
    pub(super) production_counts: Vec<MoveCounts>,
    /// Steps completed.
    pub(super) t: usize,
    /// Production steps left until the next recorded one (1 records the next step).
    pub(super) until_record: usize,
    /// A learned move picked at step `t`, waiting to be served.
    pub(super) pending: Option<usize>,
    /// Energy evaluations made by this chain's local moves.
    pub(super) evaluations: u64,
    pub(super) samples: Vec<f64>,
    pub(super) energies: Vec<f64>,
    /// A recycled configuration buffer: local proposals write into it instead of allocating.
    #[serde(skip)]
    pub(super) spare: Vec<f64>,
}

/// What every chain needs to know to move, shared read-only across threads.
pub(super) struct Context<'p> {
    pub(super) potential: &'p dyn boltzgen_potentials::Potential,
    /// β per rung (one rung without replica exchange).
    pub(super) betas: &'p [f64],
    pub(super) config: &'p SamplerConfig,
    pub(super) cumulative_weights: &'p [f64],
    /// Per move of the mixture: the move itself when each chain proposes it on its own
    /// thread; `None` for moves served in batches.
    pub(super) per_chain: Vec<Option<&'p (dyn Move + Sync + 'p)>>,
}

impl Chain {
    /// A chain at `state` with stream `rng`, before its first step.
    pub(super) fn new(state: ChainState, rng: ChainRng, config: &SamplerConfig) -> Self {
        let moves = config.moves.len();
        Self {
            state,
            rng,
            steps: config
                .moves
                .iter()
                .map(|m| {
                    m.step
                        .map(|s| StepAdapter::new(s, m.target_acceptance.unwrap_or(0.5)))
                })
                .collect(),
            burn_in_counts: vec![MoveCounts::default(); moves],
            production_counts: vec![MoveCounts::default(); moves],
            t: 0,
            until_record: config.thin,
            pending: None,
            // U(x₀), evaluated by ChainState::new.
            evaluations: 1,
            samples: Vec::new(),
            energies: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// The step size in force for move `k` (0 for moves without one).
    pub(super) fn step_of(&self, k: usize) -> f64 {
        self.steps[k].as_ref().map_or(0.0, StepAdapter::step)
    }

    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative[cumulative.len() - 1];
        let u = self.rng.random::<f64>() * total;
        cumulative
            .partition_point(|&c| c <= u)
            .min(cumulative.len() - 1)
    }

    /// Finishes a served batched move, then makes per-chain moves until the block ends at
    /// `end` or a batched move is picked (which leaves the chain `pending`). The chain is
    /// rung `rung` of its ladder (0, the target, without replica exchange): it moves at that
    /// rung's β and records samples only at the target's.
    pub(super) fn advance(
        &mut self,
        served: Option<Proposed>,
        end: usize,
        rung: usize,
        ctx: &Context,
    ) -> Result<()> {
        let potential = ctx.potential;
        let target = Target {
            potential,
            beta: ctx.betas[rung],
        };
        if let Some(proposed) = served {
            let k = self.pending.take().ok_or_else(|| Error::InvalidArgument {
                name: "sampler".into(),
                message: "a proposal was served to a chain that did not wait for one".into(),
            })?;
            let (energy, evaluated) = proposal_energy(&proposed, potential);
            self.evaluations += u64::from(evaluated);
            self.conclude(k, proposed, energy, target.beta, rung == 0, ctx);
        }
        while self.t < end {
            let k = self.pick(ctx.cumulative_weights);
            let Some(m) = ctx.per_chain[k] else {
                self.pending = Some(k);
                return Ok(());
            };
            let step = self.step_of(k);
            let spare = std::mem::take(&mut self.spare);
            let proposed = m.propose(&mut self.state, step, &target, &mut self.rng, spare)?;
            // One evaluation per local step, whether the move made it (MALA) or the kernel.
            self.evaluations += 1;
            let (energy, _) = proposal_energy(&proposed, potential);
            self.conclude(k, proposed, energy, target.beta, rung == 0, ctx);
        }
        Ok(())
    }

    /// The accept/reject decision of step `t` for move `k` at `beta`, then adaptation and
    /// (when `records`) recording.
    fn conclude(
        &mut self,
        k: usize,
        proposed: Proposed,
        energy: f64,
        beta: f64,
        records: bool,
        ctx: &Context,
    ) {
        let config = ctx.config;
        let burning_in = self.t < config.burn_in;
        let (decision, spare) = decide(&mut self.state, proposed, energy, beta, &mut self.rng);
        self.spare = spare;
        let counts = if burning_in {
            &mut self.burn_in_counts[k]
        } else {
            &mut self.production_counts[k]
        };
        counts.proposed += 1;
        counts.non_finite += u64::from(decision.non_finite);
        counts.accepted += u64::from(decision.accepted);
        if burning_in && config.moves[k].target_acceptance.is_some() {
            if let Some(adapter) = &mut self.steps[k] {
                adapter.update(decision.log_alpha);
            }
        }
        if !burning_in && records {
            // A countdown rather than a modulo: this runs every step of every chain.
            self.until_record -= 1;
            if self.until_record == 0 {
                self.until_record = config.thin;
                self.samples.extend_from_slice(&self.state.x);
                self.energies.push(self.state.energy);
            }
        }
        self.t += 1;
    }
}
