//! Many chains in parallel: the scheduling of moves, and nothing else.
//!
//! The moves are in [`super::moves`], the accept/reject step in [`super::kernel`]; this
//! module decides who moves when, on which thread, from which stream.
//!
//! # How a run proceeds
//! Steps are grouped in blocks of `sync_interval`, counted from step 0. Within a block every
//! chain, in parallel, makes per-chain moves (random walk, one-particle walk, MALA) on its own
//! until it picks a batched move (flow, latent walk, VAE). The chains that wait are then
//! served together on the calling thread, move by move in the order of the mixture, each
//! move with one batched call for all of its waiting chains
//! ([`Move::propose_batch`](super::moves::Move::propose_batch)), and
//! each chain finishes its accept/reject step in the next parallel round.
//!
//! # Reproducibility
//! Chain c draws move choices, per-chain noise and acceptance uniforms from its own stream
//! `stream(seed, c)`; batched moves draw from one generator stream `stream(seed, chains)`,
//! used only on the calling thread in chain order. The rounds of a block depend only on those
//! streams, so a run is bit-for-bit identical whatever the number of rayon threads, and a run
//! resumed from a checkpoint (taken between blocks, [`checkpoint`]) continues the
//! uninterrupted run exactly.
//!
//! # Adaptation
//! Moves with a `target_acceptance` adapt their step size during burn-in only (see
//! [`super::adapt`]); production steps use the frozen step, so the production chain is
//! exactly Markov. The report says how many steps were adaptive.

use boltzgen_potentials::Potential;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

mod chain;
pub mod checkpoint;
mod config;
mod fingerprint;
mod observer;
pub mod ranks;
mod report;

use chain::{Chain, Context};
pub use config::SamplerConfig;
use fingerprint::generator_fingerprint;
use observer::AfterBlock;
pub use observer::{BlockEnd, SamplerObserver};
pub use ranks::{OneProcess, Ranks};
pub use report::{ChainRun, MoveCounts, MoveReport, SampleRun};

use super::exchange::Exchange;
use super::moves::{Learned, Proposed, Scheduled, Target};
use super::state::ChainState;
use crate::error::{Error, Result};
use crate::rng::{stream, ChainRng};

/// Many Markov chains sampling exp(−βU) with a mixture of per-chain and batched moves.
///
/// ```
/// use boltzgen::mcmc::{Learned, MoveKind, MoveSpec, Sampler, SamplerConfig};
/// use boltzgen::potentials::DoubleWell2D;
///
/// let u = DoubleWell2D::default();
/// let mut config = SamplerConfig::new(
///     4,
///     1.0,
///     vec![MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.5).adapting_to(0.4)],
/// );
/// config.burn_in = 200;
/// config.steps = 1000;
/// let mut sampler = Sampler::new(config, &u, &[1.7, 0.0]).unwrap();
/// sampler.run(&u, Learned::none(), |_| Ok(())).unwrap();
/// let run = sampler.report();
/// assert_eq!(run.chains[0].energies.len(), 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampler {
    config: SamplerConfig,
    dim: usize,
    /// Steps completed by every chain (a block boundary).
    step: usize,
    chains: Vec<Chain>,
    generator_rng: ChainRng,
    /// Per move of the mixture: what it saved at the last block end ([`Move::save`](super::moves::Move::save), its
    /// buffered draws), empty when it holds nothing.
    move_memory: Vec<ByteBuf>,
    /// Energy evaluations of batched moves (buffers, latent walks).
    learned_evaluations: u64,
    /// Fingerprint of the generators the cached terms (chains' log q and VAE latents, the
    /// moves' buffers) came from; `None` before the first learned run.
    generator_fingerprint: Option<u64>,
    /// Times the cached terms were dropped because the generators changed (a resume with
    /// another model).
    generator_changes: u32,
    /// The moves' own names ([`Move::name`](super::moves::Move::name)), for reports, as of the
    /// last run.
    #[serde(default)]
    move_names: Vec<String>,
    /// Replica exchange's ladder, swap stream and counts, when the config asks for it.
    #[serde(default)]
    exchange: Option<Exchange>,
}

impl Sampler {
    /// Chains starting from `initial`: one configuration for all chains, one per chain
    /// (`[chains × dim]`; with replica exchange, one per ladder, for all its rungs), or, with
    /// replica exchange, one per chain of every ladder (`[chains × rungs × dim]`, ladder by
    /// ladder).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad config or an infinite starting energy,
    /// [`Error::Dimension`] for starting points of the wrong size, and what the potential
    /// reports for them.
    pub fn new(config: SamplerConfig, potential: &dyn Potential, initial: &[f64]) -> Result<Self> {
        let dim = potential.dim();
        config.validate(dim)?;
        let n = config.all_chains();
        let (ladders, rungs) = (config.chains, config.rungs());
        if ![dim, ladders * dim, n * dim].contains(&initial.len()) {
            return Err(Error::Dimension {
                what: "initial configurations (one, or one per chain)".into(),
                expected: ladders * dim,
                got: initial.len(),
            });
        }
        let chains = (0..n)
            .map(|c| {
                let x = if initial.len() == dim {
                    initial.to_vec()
                } else if initial.len() == n * dim {
                    initial[c * dim..(c + 1) * dim].to_vec()
                } else {
                    let l = c / rungs;
                    initial[l * dim..(l + 1) * dim].to_vec()
                };
                let state = ChainState::new(x, potential)?;
                Ok(Chain::new(state, stream(config.seed, c as u64), &config))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            generator_rng: stream(config.seed, n as u64),
            exchange: config
                .exchange
                .as_ref()
                .map(|x| Exchange::new(x, ladders, config.seed)),
            move_memory: vec![ByteBuf::new(); config.moves.len()],
            config,
            dim,
            step: 0,
            chains,
            learned_evaluations: 0,
            generator_fingerprint: None,
            generator_changes: 0,
            move_names: Vec::new(),
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Steps completed by every chain.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether every chain has made all its burn-in and production steps.
    pub fn is_finished(&self) -> bool {
        self.step >= self.config.total_steps()
    }

    /// Burn-in plus production steps.
    pub fn total_steps(&self) -> usize {
        self.config.total_steps()
    }

    /// Samples each chain has recorded after `step` steps: production steps / thin.
    pub fn recorded_per_chain(&self, step: usize) -> usize {
        step.saturating_sub(self.config.burn_in) / self.config.thin
    }

    /// Runs block after block until the run is finished, calling `after_block` with the
    /// sampler at every block end (progress, checkpoints; an error it returns stops the run).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a learned move without its generator; whatever the
    /// potential, the generators or `after_block` report.
    pub fn run(
        &mut self,
        potential: &dyn Potential,
        learned: Learned,
        after_block: impl FnMut(&Sampler) -> Result<()>,
    ) -> Result<()> {
        self.run_observed(potential, learned, &mut AfterBlock(after_block))
    }

    /// Runs block after block until the run is finished, telling `observer` at the start,
    /// at every block end (where it may take the recorded samples) and at the finish.
    ///
    /// # Errors
    /// As [`Sampler::run`].
    pub fn run_observed(
        &mut self,
        potential: &dyn Potential,
        learned: Learned,
        observer: &mut dyn SamplerObserver,
    ) -> Result<()> {
        let mut moves = self.prepare(potential, learned)?;
        self.drive(potential, &mut moves, observer, &OneProcess)
    }

    /// As [`Sampler::run_observed`], with the chains spread over the processes of `ranks`
    /// (see [`ranks`] for the scheme). Every process calls it at once: the first with the
    /// sampler to run (fresh or resumed), the others with `None`; each gets the first's
    /// sampler, advances its share of the ladders, and returns the whole sampler at the end,
    /// the same on every process. The observer is told on every process; what it writes is
    /// the caller's business (the first process's, as a rule).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the first process passes no sampler or another one
    /// does, or when what arrives from another process is not a sampler's; as
    /// [`Sampler::run`] otherwise. An error on one process leaves the others waiting in a
    /// collective: the caller must end them (`MPI_Abort`).
    pub fn run_spread(
        sampler: Option<Sampler>,
        potential: &dyn Potential,
        learned: Learned,
        observer: &mut dyn SamplerObserver,
        ranks: &dyn Ranks,
    ) -> Result<Sampler> {
        let first = ranks.rank() == 0;
        if first != sampler.is_some() {
            return Err(Error::InvalidArgument {
                name: "sampler".into(),
                message: "the first process passes the sampler to run_spread, the others none"
                    .into(),
            });
        }
        let mine = match &sampler {
            Some(s) => to_bytes(s)?,
            None => Vec::new(),
        };
        let gathered = ranks.all_gather(&mine)?;
        let mut sampler = match sampler {
            Some(s) => s,
            None => from_bytes(gathered.first().map_or(&[][..], Vec::as_slice))?,
        };
        let mut moves = sampler.prepare(potential, learned)?;
        sampler.drive(potential, &mut moves, observer, ranks)?;
        Ok(sampler)
    }

    /// Runs with moves the caller built, one per entry of the config's `moves` and in that
    /// order: a move of its own (any [`Move`](super::moves::Move), declared in the config as
    /// `MoveKind::Custom` with its weight and, optionally, a step size to adapt) or one of
    /// boltzgen's. Nothing checks that the moves are the ones a checkpoint was written with,
    /// nor drops cached generator terms when they are not (as [`Sampler::run`] does through
    /// its generators' fingerprint): that is the caller's to keep straight.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the number of moves differs from the config's;
    /// whatever the moves, the potential or the observer report.
    pub fn run_with_moves(
        &mut self,
        potential: &dyn Potential,
        moves: &mut [Scheduled],
        observer: &mut dyn SamplerObserver,
    ) -> Result<()> {
        self.check_potential(potential)?;
        if moves.len() != self.config.moves.len() {
            return Err(Error::InvalidArgument {
                name: "moves".into(),
                message: format!(
                    "{} moves for the config's {}",
                    moves.len(),
                    self.config.moves.len()
                ),
            });
        }
        self.restore_moves(moves)?;
        self.drive(potential, moves, observer, &OneProcess)
    }

    /// Blocks until the run is finished, the observer told at each stage.
    fn drive(
        &mut self,
        potential: &dyn Potential,
        moves: &mut [Scheduled],
        observer: &mut dyn SamplerObserver,
        ranks: &dyn Ranks,
    ) -> Result<()> {
        let outcome = self.drive_blocks(potential, moves, observer, ranks);
        // However the run ended, the sampler keeps the moves' buffers as they are now, so that
        // a checkpoint or a later run continues from them.
        let saved = self.save_moves(moves);
        outcome.and(saved)
    }

    fn drive_blocks(
        &mut self,
        potential: &dyn Potential,
        moves: &mut [Scheduled],
        observer: &mut dyn SamplerObserver,
        ranks: &dyn Ranks,
    ) -> Result<()> {
        observer.start(self)?;
        while !self.is_finished() {
            self.run_block(potential, moves, ranks)?;
            observer.block(&mut BlockEnd {
                sampler: self,
                moves,
            })?;
        }
        observer.finish(self)
    }

    /// Takes what the batched moves hold (their buffered draws) into the sampler's state, for
    /// checkpoints and the next run. Encoding a buffer costs time in proportion to its size,
    /// so this runs when a checkpoint is written or a run returns, not at every block.
    pub(super) fn save_moves(&mut self, moves: &[Scheduled]) -> Result<()> {
        for (memory, m) in self.move_memory.iter_mut().zip(moves) {
            if m.is_batched() {
                *memory = ByteBuf::from(m.as_move().save()?);
            }
        }
        Ok(())
    }

    fn check_potential(&self, potential: &dyn Potential) -> Result<()> {
        if potential.dim() != self.dim {
            return Err(Error::Dimension {
                what: "potential against the sampler's chains".into(),
                expected: self.dim,
                got: potential.dim(),
            });
        }
        Ok(())
    }

    /// Gives each move back what it saved, and records the moves' names for reports.
    fn restore_moves(&mut self, moves: &mut [Scheduled]) -> Result<()> {
        for (m, saved) in moves.iter_mut().zip(&self.move_memory) {
            if !saved.is_empty() {
                m.as_move_mut().restore(saved)?;
            }
        }
        self.move_names = moves
            .iter()
            .map(|m| m.as_move().name().to_string())
            .collect();
        Ok(())
    }

    /// Runs whole blocks until at least `step` steps are done (or the run is finished).
    ///
    /// # Errors
    /// As [`Sampler::run`].
    pub fn run_until(
        &mut self,
        potential: &dyn Potential,
        learned: Learned,
        step: usize,
    ) -> Result<()> {
        let mut moves = self.prepare(potential, learned)?;
        let mut outcome = Ok(());
        while outcome.is_ok() && self.step < step.min(self.config.total_steps()) {
            outcome = self.run_block(potential, &mut moves, &OneProcess);
        }
        let saved = self.save_moves(&moves);
        outcome.and(saved)
    }

    /// The moves of the mixture for this run: cached generator terms dropped if the
    /// generators changed ([`Sampler::adopt_generators`]), each move built from its spec and
    /// given back what it saved.
    fn prepare<'a>(
        &mut self,
        potential: &dyn Potential,
        learned: Learned<'a>,
    ) -> Result<Vec<Scheduled<'a>>> {
        self.check_potential(potential)?;
        let mut moves = self
            .config
            .moves
            .iter()
            .enumerate()
            .map(|(i, spec)| spec.build(i, self.dim, learned, self.config.buffer))
            .collect::<Result<Vec<_>>>()?;
        self.adopt_generators(learned)?;
        self.restore_moves(&mut moves)?;
        Ok(moves)
    }

    /// Drops every cached generator term (chains' log q and VAE latents, the moves' buffered
    /// draws) when the generators differ from those that produced them, as after resuming a
    /// checkpoint with another model: a stale log q of the current state would make the
    /// Hastings term wrong. With the same generators nothing changes, so a resume stays bit
    /// for bit.
    fn adopt_generators(&mut self, learned: Learned) -> Result<()> {
        let fingerprint = generator_fingerprint(learned, self.dim)?;
        if fingerprint.is_none() || fingerprint == self.generator_fingerprint {
            return Ok(());
        }
        let cached = self.move_memory.iter().any(|m| !m.is_empty())
            || self.chains.iter().any(|c| c.state.has_generator_terms());
        if cached {
            for c in &mut self.chains {
                c.state.forget_generator_terms();
            }
            for m in &mut self.move_memory {
                m.clear();
            }
            self.generator_changes += 1;
        }
        self.generator_fingerprint = fingerprint;
        Ok(())
    }

    /// Runs every chain to the next block end, with swap rounds at every multiple of the
    /// swap interval on the way when exchanging replicas.
    fn run_block(
        &mut self,
        potential: &dyn Potential,
        moves: &mut [Scheduled],
        ranks: &dyn Ranks,
    ) -> Result<()> {
        let end = ((self.step / self.config.sync_interval + 1) * self.config.sync_interval)
            .min(self.config.total_steps());
        // Once per block, not per swap segment: the mixture's cumulative weights, and a copy
        // of the config that the chains read while the sampler's chains are borrowed.
        let config = self.config.clone();
        let cumulative_weights: Vec<f64> = config
            .moves
            .iter()
            .scan(0.0, |acc, m| {
                *acc += m.weight;
                Some(*acc)
            })
            .collect();
        while self.step < end {
            let segment_end = match &self.exchange {
                Some(x) => ((self.step / x.swap_interval() + 1) * x.swap_interval()).min(end),
                None => end,
            };
            self.run_segment(
                potential,
                moves,
                (&config, &cumulative_weights),
                segment_end,
                ranks,
            )?;
            self.step = segment_end;
            if self
                .exchange
                .as_ref()
                .is_some_and(|x| segment_end % x.swap_interval() == 0)
            {
                self.swap_round();
            }
        }
        Ok(())
    }

    /// β of every rung now (the target's alone without replica exchange).
    fn betas(&self) -> Vec<f64> {
        match &self.exchange {
            Some(x) => x.betas().to_vec(),
            None => vec![self.config.beta],
        }
    }

    /// One round of replica swaps between the chains' configurations; a round after burn-in
    /// is a production round (and the ladder is frozen from then on).
    fn swap_round(&mut self) {
        let Some(exchange) = &mut self.exchange else {
            return;
        };
        let energy: Vec<f64> = self.chains.iter().map(|c| c.state.energy).collect();
        let production = self.step >= self.config.burn_in;
        for (a, b) in exchange.round(&energy, production) {
            let (low, high) = self.chains.split_at_mut(b);
            std::mem::swap(&mut low[a].state, &mut high[0].state);
        }
    }

    /// Runs every chain to step `end`: per-chain moves in parallel, batched ones served.
    /// Spread over processes, each advances its own chains and the processes exchange them
    /// before every serving and at the end.
    fn run_segment(
        &mut self,
        potential: &dyn Potential,
        moves: &mut [Scheduled],
        (config, cumulative_weights): (&SamplerConfig, &[f64]),
        end: usize,
        ranks: &dyn Ranks,
    ) -> Result<()> {
        let (rank, size, n_chains) = (ranks.rank(), ranks.size(), self.chains.len());
        let betas = self.betas();
        let rungs = betas.len();
        let mut served: Vec<Option<Proposed>> = vec![None; self.chains.len()];
        loop {
            {
                let ctx = Context {
                    potential,
                    betas: &betas,
                    config,
                    cumulative_weights,
                    per_chain: moves
                        .iter()
                        .map(|m| match m {
                            Scheduled::PerChain(m) => Some(m.as_ref()),
                            Scheduled::Batched(_) => None,
                        })
                        .collect(),
                };
                self.chains
                    .par_iter_mut()
                    .zip(served.par_drain(..))
                    .enumerate()
                    .try_for_each(|(c, (chain, s))| {
                        if size == 1 || ranks::owner(c, n_chains, size) == rank {
                            chain.advance(s, end, c % rungs, &ctx)
                        } else {
                            Ok(())
                        }
                    })?;
            }
            if size > 1 {
                self.share_chains(ranks)?;
            }
            if self.chains.iter().all(|c| c.pending.is_none()) {
                break;
            }
            served = self.serve(potential, &betas, moves)?;
        }
        Ok(())
    }

    /// Sends the chains this process owns to every other and takes theirs, so that every
    /// process holds the same chains.
    fn share_chains(&mut self, ranks: &dyn Ranks) -> Result<()> {
        let (rank, size) = (ranks.rank(), ranks.size());
        let n_chains = self.chains.len();
        let owned_by = |c: usize| ranks::owner(c, n_chains, size);
        let mine: Vec<(usize, &Chain)> = self
            .chains
            .iter()
            .enumerate()
            .filter(|(c, _)| owned_by(*c) == rank)
            .collect();
        let gathered = ranks.all_gather(&to_bytes(&mine)?)?;
        for (from, bytes) in gathered.iter().enumerate() {
            if from == rank {
                continue;
            }
            let theirs: Vec<(usize, Chain)> = from_bytes(bytes)?;
            for (c, chain) in theirs {
                if c >= self.chains.len() || owned_by(c) != from {
                    return Err(Error::InvalidArgument {
                        name: "ranks".into(),
                        message: format!("process {from} sent chain {c}, which it does not own"),
                    });
                }
                self.chains[c] = chain;
            }
        }
        Ok(())
    }

    /// Serves every waiting chain its batched proposal: move by move in the order of the
    /// mixture, rung by rung (each at its own β; one rung without replica exchange), each
    /// move's waiting chains of a rung in chain order, in one call.
    fn serve(
        &mut self,
        potential: &dyn Potential,
        betas: &[f64],
        moves: &mut [Scheduled],
    ) -> Result<Vec<Option<Proposed>>> {
        let mut out: Vec<Option<Proposed>> = vec![None; self.chains.len()];
        let rungs = betas.len();
        for (k, m) in moves.iter_mut().enumerate() {
            let Scheduled::Batched(m) = m else { continue };
            for (rung, &beta) in betas.iter().enumerate() {
                let waits = |c: usize, chain: &Chain| c % rungs == rung && chain.pending == Some(k);
                let waiting: Vec<usize> = (0..self.chains.len())
                    .filter(|&c| waits(c, &self.chains[c]))
                    .collect();
                if waiting.is_empty() {
                    continue;
                }
                let steps: Vec<f64> = waiting.iter().map(|&c| self.chains[c].step_of(k)).collect();
                let mut states: Vec<&mut ChainState> = self
                    .chains
                    .iter_mut()
                    .enumerate()
                    .filter(|(c, chain)| waits(*c, chain))
                    .map(|(_, chain)| &mut chain.state)
                    .collect();
                let target = Target { potential, beta };
                let batch =
                    m.propose_batch(&mut states, &steps, &target, &mut self.generator_rng)?;
                if batch.proposals.len() != waiting.len() {
                    return Err(Error::InvalidArgument {
                        name: m.name().into(),
                        message: format!(
                            "returned {} proposals for {} chains",
                            batch.proposals.len(),
                            waiting.len()
                        ),
                    });
                }
                self.learned_evaluations += batch.evaluations;
                for (c, p) in waiting.into_iter().zip(batch.proposals) {
                    out[c] = Some(p);
                }
            }
        }
        Ok(out)
    }

    /// Takes the samples recorded since the last call (per chain: configurations `[n × dim]`
    /// and their energies), leaving none in memory: how long runs stream to disk.
    /// [`Sampler::report`] afterwards holds only what was recorded since.
    /// With replica exchange, only the target rung's chains record samples: one entry per
    /// ladder.
    pub fn drain_samples(&mut self) -> Vec<(Vec<f64>, Vec<f64>)> {
        let rungs = self.config.rungs();
        self.chains
            .iter_mut()
            .step_by(rungs)
            .map(|c| {
                (
                    std::mem::take(&mut c.samples),
                    std::mem::take(&mut c.energies),
                )
            })
            .collect()
    }
}

/// CBOR of what crosses between processes.
fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|e| Error::InvalidArgument {
        name: "ranks".into(),
        message: format!("cannot encode the sampler's state: {e}"),
    })?;
    Ok(bytes)
}

/// What [`to_bytes`] made, read back.
fn from_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|e| Error::InvalidArgument {
        name: "ranks".into(),
        message: format!("what another process sent is not the sampler's state: {e}"),
    })
}
