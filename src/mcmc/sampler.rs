//! Many chains in parallel, local moves on rayon, learned moves in batches.
//!
//! # How a run proceeds
//! Steps are grouped in blocks of `sync_interval`, counted from step 0. Within a block every
//! chain, in parallel, makes local moves (random walk, one-particle walk, MALA) on its own
//! until it picks a learned move (flow, latent walk, VAE). The chains that wait are then
//! served together on the calling thread: the current states' generator terms are computed
//! in one batch, draws come from a buffer that one generator call fills with `buffer`
//! configurations whose energies are evaluated in parallel (flowMC-style), and each chain
//! finishes its accept/reject step in the next parallel round.
//!
//! # Reproducibility
//! Chain c draws move choices, local noise and acceptance uniforms from its own stream
//! `stream(seed, c)`; learned noise comes from one generator stream `stream(seed, chains)`,
//! used only on the calling thread in chain order. The rounds of a block depend only on those
//! streams, so a run is bit-for-bit identical whatever the number of rayon threads, and a run
//! resumed from a checkpoint (taken between blocks) continues the uninterrupted run exactly.
//!
//! # Adaptation
//! Moves with a `target_acceptance` adapt their step size during burn-in only (see
//! [`super::adapt`]); production steps use the frozen step, so the production chain is
//! exactly Markov. The report says how many steps were adaptive.

use std::path::Path;

use boltzgen_potentials::Potential;
use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::accept::{accept, log_acceptance};
use super::adapt::StepAdapter;
use super::chain::ChainState;
use super::proposal::{gaussian, mala, particle_walk, random_walk, Proposed};
use super::vae_move::{refresh_latents, vae_log_hastings, ExtendedLatent, VaeBuffer};
use crate::error::{Error, Result};
use crate::generator::{Flow, Generator, Vae};
use crate::io::StreamMark;
use crate::rng::{stream, ChainRng};

/// The kinds of move the sampler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Gaussian random walk on all coordinates (needs `step`).
    RandomWalk,
    /// Gaussian random walk of one particle (needs `step` and `spatial_dim`).
    ParticleWalk,
    /// Metropolis-adjusted Langevin (needs `step`).
    Mala,
    /// Independence proposal from a generator with an exact density.
    Flow,
    /// Random walk in the latent space of a flow (needs `step`).
    LatentWalk,
    /// VAE proposal in the extended space (x, z).
    Vae,
}

impl MoveKind {
    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::RandomWalk => "random_walk",
            MoveKind::ParticleWalk => "particle_walk",
            MoveKind::Mala => "mala",
            MoveKind::Flow => "flow",
            MoveKind::LatentWalk => "latent_walk",
            MoveKind::Vae => "vae",
        }
    }

    /// Whether the move is served in batches by a learned generator.
    pub fn is_learned(self) -> bool {
        matches!(self, MoveKind::Flow | MoveKind::LatentWalk | MoveKind::Vae)
    }

    fn has_step(self) -> bool {
        !matches!(self, MoveKind::Flow | MoveKind::Vae)
    }
}

/// One move of the mixture: its kind, its weight and its step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveSpec {
    /// What kind of move.
    pub kind: MoveKind,
    /// Relative probability of choosing this move at a step.
    pub weight: f64,
    /// Initial step size (random walks, MALA, latent walk).
    #[serde(default)]
    pub step: Option<f64>,
    /// Coordinates per particle (particle walk).
    #[serde(default)]
    pub spatial_dim: Option<usize>,
    /// Adapt the step towards this acceptance rate during burn-in; `None` keeps it fixed.
    #[serde(default)]
    pub target_acceptance: Option<f64>,
}

impl MoveSpec {
    /// A move of `kind` with weight `weight`, no step and no adaptation.
    pub fn new(kind: MoveKind, weight: f64) -> Self {
        Self {
            kind,
            weight,
            step: None,
            spatial_dim: None,
            target_acceptance: None,
        }
    }

    /// With initial step size `step`.
    pub fn with_step(mut self, step: f64) -> Self {
        self.step = Some(step);
        self
    }

    /// Adapting the step towards `target` during burn-in.
    pub fn adapting_to(mut self, target: f64) -> Self {
        self.target_acceptance = Some(target);
        self
    }

    /// Moving particles of `spatial_dim` coordinates (particle walk).
    pub fn with_spatial_dim(mut self, spatial_dim: usize) -> Self {
        self.spatial_dim = Some(spatial_dim);
        self
    }

    fn validate(&self, index: usize, dim: usize) -> Result<()> {
        let bad = |message: String| {
            Err(Error::InvalidArgument {
                name: format!("moves[{index}] ({})", self.kind.name()),
                message,
            })
        };
        if !(self.weight > 0.0 && self.weight.is_finite()) {
            return bad(format!("weight must be positive, got {}", self.weight));
        }
        match (self.kind.has_step(), self.step) {
            (true, None) => return bad("needs a step size".into()),
            (true, Some(s)) if !(s > 0.0 && s.is_finite()) => {
                return bad(format!("step must be positive, got {s}"))
            }
            (false, Some(_)) => return bad("takes no step size".into()),
            _ => {}
        }
        if let Some(t) = self.target_acceptance {
            if !self.kind.has_step() {
                return bad("has no step to adapt".into());
            }
            if !(t > 0.0 && t < 1.0) {
                return bad(format!("target_acceptance must be in (0, 1), got {t}"));
            }
        }
        match (self.kind, self.spatial_dim) {
            (MoveKind::ParticleWalk, Some(s)) if s > 0 && dim % s == 0 => Ok(()),
            (MoveKind::ParticleWalk, s) => bad(format!(
                "spatial_dim must divide the {dim} coordinates, got {s:?}"
            )),
            (_, Some(_)) => bad("spatial_dim belongs to particle_walk only".into()),
            _ => Ok(()),
        }
    }
}

/// What a sampling run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Number of chains.
    pub chains: usize,
    /// Inverse temperature β of the target exp(−βU).
    pub beta: f64,
    /// Seed of every stream.
    pub seed: u64,
    /// Burn-in steps per chain (adaptive, not recorded).
    pub burn_in: usize,
    /// Production steps per chain.
    pub steps: usize,
    /// Record every `thin`-th production step.
    pub thin: usize,
    /// Learned draws per generator call.
    pub buffer: usize,
    /// Steps per block: chains align at block ends, where checkpoints are taken.
    pub sync_interval: usize,
    /// The mixture of moves.
    pub moves: Vec<MoveSpec>,
}

impl SamplerConfig {
    /// A config with `chains` chains at inverse temperature `beta` and the given moves;
    /// 1000 burn-in and 10 000 production steps, thin 1, buffer 1024, blocks of 100 steps.
    pub fn new(chains: usize, beta: f64, moves: Vec<MoveSpec>) -> Self {
        Self {
            chains,
            beta,
            seed: 0,
            burn_in: 1000,
            steps: 10_000,
            thin: 1,
            buffer: 1024,
            sync_interval: 100,
            moves,
        }
    }

    /// Checks the config against a system of `dim` coordinates.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the offending field.
    pub fn validate(&self, dim: usize) -> Result<()> {
        let bad = |name: &str, message: &str| {
            Err(Error::InvalidArgument {
                name: name.into(),
                message: message.into(),
            })
        };
        if self.chains == 0 {
            return bad("chains", "need at least one chain");
        }
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return bad("beta", "must be positive and finite");
        }
        if self.thin == 0 || self.buffer == 0 || self.sync_interval == 0 {
            return bad("thin, buffer, sync_interval", "must be positive");
        }
        if self.moves.is_empty() {
            return bad("moves", "need at least one move");
        }
        for (i, m) in self.moves.iter().enumerate() {
            m.validate(i, dim)?;
        }
        Ok(())
    }

    fn total_steps(&self) -> usize {
        self.burn_in + self.steps
    }
}

/// The learned generators a run may use; each learned move needs its own.
#[derive(Default, Clone, Copy)]
pub struct Learned<'a> {
    /// Generator of the `flow` independence move (must have an exact density).
    pub independence: Option<&'a dyn Generator>,
    /// Flow of the `latent_walk` move.
    pub latent_flow: Option<&'a Flow>,
    /// VAE of the `vae` move.
    pub vae: Option<&'a Vae>,
}

impl<'a> Learned<'a> {
    /// No generator: local moves only.
    pub fn none() -> Self {
        Self::default()
    }

    /// One flow for both the independence and the latent-walk moves.
    pub fn flow(flow: &'a Flow) -> Self {
        Self {
            independence: Some(flow),
            latent_flow: Some(flow),
            vae: None,
        }
    }

    /// With a VAE for the `vae` move.
    pub fn with_vae(mut self, vae: &'a Vae) -> Self {
        self.vae = Some(vae);
        self
    }
}

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
    fn add(&mut self, other: &MoveCounts) {
        self.proposed += other.proposed;
        self.accepted += other.accepted;
        self.non_finite += other.non_finite;
    }

    /// accepted / proposed (0 when nothing was proposed).
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.proposed.max(1) as f64
    }
}

/// A learned proposal served to a waiting chain, with the generator terms of its current
/// state that the serving computed.
#[derive(Debug, Clone)]
struct Served {
    proposed: Proposed,
    /// U(x′) when the serving computed it; `None` leaves it to the chain (in parallel).
    energy: Option<f64>,
    current_log_q: Option<f64>,
    current_latent: Option<ExtendedLatent>,
    proposed_latent: Option<ExtendedLatent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chain {
    state: ChainState,
    rng: ChainRng,
    /// Per move: the step size (adaptive or fixed), `None` for moves without one.
    steps: Vec<Option<StepAdapter>>,
    burn_in_counts: Vec<MoveCounts>,
    production_counts: Vec<MoveCounts>,
    /// Steps completed.
    t: usize,
    /// Production steps left until the next recorded one (1 records the next step).
    until_record: usize,
    /// A learned move picked at step `t`, waiting to be served.
    pending: Option<usize>,
    /// Energy evaluations made by this chain's local moves.
    evaluations: u64,
    samples: Vec<f64>,
    energies: Vec<f64>,
    /// A recycled configuration buffer: local proposals write into it instead of allocating.
    #[serde(skip)]
    spare: Vec<f64>,
}

/// What every chain needs to know to move, shared read-only across threads.
struct Context<'p> {
    potential: &'p dyn Potential,
    config: &'p SamplerConfig,
    cumulative_weights: Vec<f64>,
}

impl Chain {
    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative[cumulative.len() - 1];
        let u = self.rng.random::<f64>() * total;
        cumulative
            .partition_point(|&c| c <= u)
            .min(cumulative.len() - 1)
    }

    /// Finishes a served learned move, then makes local moves until the block ends at `end`
    /// or a learned move is picked.
    fn advance(&mut self, served: Option<Served>, end: usize, ctx: &Context) -> Result<()> {
        if let Some(s) = served {
            let k = self.pending.take().ok_or_else(|| Error::InvalidArgument {
                name: "sampler".into(),
                message: "a proposal was served to a chain that did not wait for one".into(),
            })?;
            if let Some(lq) = s.current_log_q {
                self.state.log_q = Some(lq);
            }
            if let Some(latent) = s.current_latent {
                self.state.latent = Some(latent);
            }
            let energy = match s.energy {
                Some(u) => u,
                None => {
                    self.evaluations += 1;
                    ctx.potential.energy(&s.proposed.x).unwrap_or(f64::NAN)
                }
            };
            self.conclude(k, s.proposed, energy, s.proposed_latent, ctx);
        }
        while self.t < end {
            let k = self.pick(&ctx.cumulative_weights);
            let spec = &ctx.config.moves[k];
            if spec.kind.is_learned() {
                self.pending = Some(k);
                return Ok(());
            }
            let step = self.steps[k].as_ref().map_or(0.0, StepAdapter::step);
            let spare = std::mem::take(&mut self.spare);
            let proposed = match spec.kind {
                MoveKind::RandomWalk => random_walk(&self.state.x, step, &mut self.rng, spare),
                MoveKind::ParticleWalk => particle_walk(
                    &self.state.x,
                    step,
                    spec.spatial_dim.unwrap_or(1),
                    &mut self.rng,
                    spare,
                )?,
                MoveKind::Mala => mala(
                    &mut self.state,
                    ctx.potential,
                    ctx.config.beta,
                    step,
                    &mut self.rng,
                )?,
                MoveKind::Flow | MoveKind::LatentWalk | MoveKind::Vae => unreachable!(),
            };
            self.evaluations += 1;
            let energy = match proposed.energy {
                Some(u) => u,
                None => ctx.potential.energy(&proposed.x).unwrap_or(f64::NAN),
            };
            self.conclude(k, proposed, energy, None, ctx);
        }
        Ok(())
    }

    /// The accept/reject decision of step `t` for move `k`, then adaptation and recording.
    fn conclude(
        &mut self,
        k: usize,
        proposed: Proposed,
        energy: f64,
        latent: Option<ExtendedLatent>,
        ctx: &Context,
    ) {
        let config = ctx.config;
        let log_alpha = log_acceptance(
            config.beta,
            self.state.energy,
            energy,
            proposed.log_hastings,
        );
        let burning_in = self.t < config.burn_in;
        let counts = if burning_in {
            &mut self.burn_in_counts[k]
        } else {
            &mut self.production_counts[k]
        };
        counts.proposed += 1;
        if !energy.is_finite() || !proposed.log_hastings.is_finite() {
            counts.non_finite += 1;
        }
        if accept(log_alpha, self.rng.random::<f64>()) {
            counts.accepted += 1;
            self.spare = self.state.accept(proposed, energy);
            self.state.latent = latent;
        } else {
            self.spare = proposed.x;
        }
        if burning_in && config.moves[k].target_acceptance.is_some() {
            if let Some(adapter) = &mut self.steps[k] {
                adapter.update(log_alpha);
            }
        }
        if !burning_in {
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

/// Draws of a generator with exact density and their energies, consumed in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FlowBuffer {
    x: Vec<f64>,
    log_q: Vec<f64>,
    energy: Vec<f64>,
    next: usize,
}

/// Energies of a batch evaluated in parallel; a configuration the potential refuses (NaN
/// coordinates) gets NaN, which the acceptance rule rejects.
pub(crate) fn energies_or_nan(potential: &dyn Potential, xs: &[f64]) -> Vec<f64> {
    let d = potential.dim().max(1);
    xs.par_chunks(d)
        .map(|x| potential.energy(x).unwrap_or(f64::NAN))
        .collect()
}

/// Many Markov chains sampling exp(−βU) with a mixture of local and learned moves.
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
    flow_buffer: FlowBuffer,
    vae_buffer: VaeBuffer,
    /// Energy evaluations of learned draws (buffers, latent walks).
    learned_evaluations: u64,
    /// Fingerprint of the generators the cached terms (chains' log q and VAE latents, the
    /// buffers) came from; `None` before the first learned run.
    #[serde(default)]
    generator_fingerprint: Option<u64>,
    /// Times the cached terms were dropped because the generators changed (a resume with
    /// another model).
    #[serde(default)]
    generator_changes: u32,
}

/// A fingerprint of the learned generators: `log q` (rounded to f32, so that the last bits of
/// libtorch's sums do not matter) of a few fixed probe configurations, FNV-1a hashed. Two
/// different models agree on it only by an extraordinary coincidence.
fn generator_fingerprint(learned: Learned, dim: usize) -> Result<Option<u64>> {
    let generators: [(u8, Option<&dyn Generator>); 3] = [
        (1, learned.independence),
        (2, learned.latent_flow.map(|f| f as &dyn Generator)),
        (3, learned.vae.map(|v| v as &dyn Generator)),
    ];
    if generators.iter().all(|(_, g)| g.is_none()) {
        return Ok(None);
    }
    let probes: Vec<f64> = (0..4 * dim)
        .map(|i| 0.5 * (0.7 * i as f64 + 0.1).sin() + 0.3)
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (tag, g) in generators {
        if let Some(g) = g {
            feed(&[tag]);
            feed(&(g.dim() as u64).to_le_bytes());
            if g.dim() == dim {
                for v in g.log_prob(&probes)? {
                    feed(&(v as f32).to_bits().to_le_bytes());
                }
            }
        }
    }
    Ok(Some(hash))
}

/// Identifies a sampler checkpoint file and its layout.
const CHECKPOINT_MAGIC: &str = "boltzgen-sampler-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct CheckpointFile<S> {
    magic: String,
    version: u32,
    sampler: S,
    /// The lengths of the files the caller streams samples to, as they were on disk when the
    /// checkpoint was written (absent in checkpoints of earlier builds).
    #[serde(default)]
    streams: Vec<StreamMark>,
}

impl Sampler {
    /// Chains starting from `initial`: one configuration for all chains, or one per chain
    /// (`[chains × dim]`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad config or an infinite starting energy,
    /// [`Error::Dimension`] for starting points of the wrong size, and what the potential
    /// reports for them.
    pub fn new(config: SamplerConfig, potential: &dyn Potential, initial: &[f64]) -> Result<Self> {
        let dim = potential.dim();
        config.validate(dim)?;
        let n = config.chains;
        if initial.len() != dim && initial.len() != n * dim {
            return Err(Error::Dimension {
                what: "initial configurations (one, or one per chain)".into(),
                expected: n * dim,
                got: initial.len(),
            });
        }
        let chains = (0..n)
            .map(|c| {
                let x = if initial.len() == dim {
                    initial.to_vec()
                } else {
                    initial[c * dim..(c + 1) * dim].to_vec()
                };
                Ok(Chain {
                    state: ChainState::new(x, potential)?,
                    rng: stream(config.seed, c as u64),
                    steps: config
                        .moves
                        .iter()
                        .map(|m| {
                            m.step
                                .map(|s| StepAdapter::new(s, m.target_acceptance.unwrap_or(0.5)))
                        })
                        .collect(),
                    burn_in_counts: vec![MoveCounts::default(); config.moves.len()],
                    production_counts: vec![MoveCounts::default(); config.moves.len()],
                    t: 0,
                    until_record: config.thin,
                    pending: None,
                    evaluations: 1,
                    samples: Vec::new(),
                    energies: Vec::new(),
                    spare: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            generator_rng: stream(config.seed, n as u64),
            config,
            dim,
            step: 0,
            chains,
            flow_buffer: FlowBuffer::default(),
            vae_buffer: VaeBuffer::default(),
            learned_evaluations: 0,
            generator_fingerprint: None,
            generator_changes: 0,
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
        mut after_block: impl FnMut(&Sampler) -> Result<()>,
    ) -> Result<()> {
        self.adopt_generators(potential, learned)?;
        while !self.is_finished() {
            self.run_block(potential, learned)?;
            after_block(self)?;
        }
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
        self.adopt_generators(potential, learned)?;
        while self.step < step.min(self.config.total_steps()) {
            self.run_block(potential, learned)?;
        }
        Ok(())
    }

    /// Drops every cached generator term (chains' log q and VAE latents, buffered draws) when
    /// the generators differ from those that produced them, as after resuming a checkpoint
    /// with another model: a stale log q of the current state would make the Hastings term
    /// wrong. With the same generators nothing changes, so a resume stays bit for bit.
    fn adopt_generators(&mut self, potential: &dyn Potential, learned: Learned) -> Result<()> {
        self.check_learned(potential, learned)?;
        let fingerprint = generator_fingerprint(learned, self.dim)?;
        if fingerprint.is_none() || fingerprint == self.generator_fingerprint {
            return Ok(());
        }
        let cached = self.flow_buffer != FlowBuffer::default()
            || self.vae_buffer != VaeBuffer::default()
            || self
                .chains
                .iter()
                .any(|c| c.state.log_q.is_some() || c.state.latent.is_some());
        if cached {
            for c in &mut self.chains {
                c.state.log_q = None;
                c.state.latent = None;
            }
            self.flow_buffer = FlowBuffer::default();
            self.vae_buffer = VaeBuffer::default();
            self.generator_changes += 1;
        }
        self.generator_fingerprint = fingerprint;
        Ok(())
    }

    fn check_learned(&self, potential: &dyn Potential, learned: Learned) -> Result<()> {
        if potential.dim() != self.dim {
            return Err(Error::Dimension {
                what: "potential against the sampler's chains".into(),
                expected: self.dim,
                got: potential.dim(),
            });
        }
        for (i, m) in self.config.moves.iter().enumerate() {
            let missing = |what: &str| Error::InvalidArgument {
                name: format!("moves[{i}] ({})", m.kind.name()),
                message: format!("needs {what}"),
            };
            let dim = match m.kind {
                MoveKind::Flow => {
                    let g = learned
                        .independence
                        .ok_or_else(|| missing("a generator with an exact density"))?;
                    if !g.exact_density() {
                        return Err(missing(
                            "a generator with an exact density (a VAE has none: use the vae move)",
                        ));
                    }
                    g.dim()
                }
                MoveKind::LatentWalk => learned.latent_flow.ok_or_else(|| missing("a flow"))?.dim(),
                MoveKind::Vae => learned.vae.ok_or_else(|| missing("a VAE"))?.dim(),
                _ => continue,
            };
            if dim != self.dim {
                return Err(Error::Dimension {
                    what: format!("generator of moves[{i}] against the system"),
                    expected: self.dim,
                    got: dim,
                });
            }
        }
        Ok(())
    }

    fn run_block(&mut self, potential: &dyn Potential, learned: Learned) -> Result<()> {
        self.check_learned(potential, learned)?;
        let end = ((self.step / self.config.sync_interval + 1) * self.config.sync_interval)
            .min(self.config.total_steps());
        let mut cumulative_weights = Vec::with_capacity(self.config.moves.len());
        let mut acc = 0.0;
        for m in &self.config.moves {
            acc += m.weight;
            cumulative_weights.push(acc);
        }
        let config = self.config.clone();
        let ctx = Context {
            potential,
            config: &config,
            cumulative_weights,
        };
        let mut served: Vec<Option<Served>> = vec![None; self.chains.len()];
        loop {
            self.chains
                .par_iter_mut()
                .zip(served.par_drain(..))
                .try_for_each(|(chain, s)| chain.advance(s, end, &ctx))?;
            if self.chains.iter().all(|c| c.pending.is_none()) {
                break;
            }
            served = self.serve(potential, learned)?;
        }
        self.step = end;
        Ok(())
    }

    /// Serves every waiting chain its learned proposal, in chain order, batching the
    /// generator calls by move kind.
    fn serve(
        &mut self,
        potential: &dyn Potential,
        learned: Learned,
    ) -> Result<Vec<Option<Served>>> {
        let mut out: Vec<Option<Served>> = vec![None; self.chains.len()];
        let waiting = |kind: MoveKind| -> Vec<usize> {
            self.chains
                .iter()
                .enumerate()
                .filter(|(_, c)| c.pending.is_some_and(|k| self.config.moves[k].kind == kind))
                .map(|(i, _)| i)
                .collect()
        };
        let (flow_chains, latent_chains, vae_chains) = (
            waiting(MoveKind::Flow),
            waiting(MoveKind::LatentWalk),
            waiting(MoveKind::Vae),
        );
        if !flow_chains.is_empty() {
            let generator = learned.independence.ok_or_else(|| Error::InvalidArgument {
                name: "flow".into(),
                message: "no generator".into(),
            })?;
            self.serve_independence(generator, potential, &flow_chains, &mut out)?;
        }
        if !latent_chains.is_empty() {
            let flow = learned.latent_flow.ok_or_else(|| Error::InvalidArgument {
                name: "latent_walk".into(),
                message: "no flow".into(),
            })?;
            self.serve_latent_walk(flow, potential, &latent_chains, &mut out)?;
        }
        if !vae_chains.is_empty() {
            let vae = learned.vae.ok_or_else(|| Error::InvalidArgument {
                name: "vae".into(),
                message: "no VAE".into(),
            })?;
            self.serve_vae(vae, potential, &vae_chains, &mut out)?;
        }
        Ok(out)
    }

    fn gather(&self, chains: &[usize], select: impl Fn(&Chain) -> bool) -> (Vec<usize>, Vec<f64>) {
        let picked: Vec<usize> = chains
            .iter()
            .copied()
            .filter(|&c| select(&self.chains[c]))
            .collect();
        let x = picked
            .iter()
            .flat_map(|&c| self.chains[c].state.x.iter().copied())
            .collect();
        (picked, x)
    }

    /// Flow independence: `log_hastings = log q(x) − log q(x′)`.
    fn serve_independence(
        &mut self,
        generator: &dyn Generator,
        potential: &dyn Potential,
        chains: &[usize],
        out: &mut [Option<Served>],
    ) -> Result<()> {
        // log q of current states that did not come from the generator, in one batch.
        let (missing, x) = self.gather(chains, |c| c.state.log_q.is_none());
        let computed = if missing.is_empty() {
            Vec::new()
        } else {
            generator.log_prob(&x)?
        };
        let mut current: Vec<Option<f64>> = vec![None; self.chains.len()];
        for (&c, &lq) in missing.iter().zip(&computed) {
            current[c] = Some(lq);
        }
        let dim = self.dim;
        // Draws of a generator that leaves external coordinates to the caller are moved to
        // each chain's centre of mass or frame (`Generator::place_like`), so their energies
        // are left to the chains: the sampler does not assume that the potential is invariant.
        let keeps_external_dofs = generator.keeps_external_dofs();
        for &c in chains {
            let buffer = &mut self.flow_buffer;
            if buffer.next >= buffer.log_q.len() {
                let s = generator.sample(self.config.buffer, &mut self.generator_rng)?;
                buffer.energy = if keeps_external_dofs {
                    Vec::new()
                } else {
                    self.learned_evaluations += s.log_q.len() as u64;
                    energies_or_nan(potential, &s.x)
                };
                buffer.x = s.x;
                buffer.log_q = s.log_q;
                buffer.next = 0;
            }
            let i = buffer.next;
            buffer.next += 1;
            let log_q_new = buffer.log_q[i];
            let log_q_current = current[c]
                .or(self.chains[c].state.log_q)
                .unwrap_or(f64::NAN);
            let mut x_new = buffer.x[i * dim..(i + 1) * dim].to_vec();
            generator.place_like(&mut x_new, &self.chains[c].state.x)?;
            out[c] = Some(Served {
                proposed: Proposed {
                    log_q: Some(log_q_new),
                    ..Proposed::new(x_new, log_q_current - log_q_new)
                },
                energy: buffer.energy.get(i).copied(),
                current_log_q: current[c],
                current_latent: None,
                proposed_latent: None,
            });
        }
        Ok(())
    }

    /// Latent walk: `z′ = f⁻¹(x) + σ ξ`, `x′ = f(z′)`,
    /// `log_hastings = log|det J_{f⁻¹}(x)| + log|det J_f(z′)|`.
    fn serve_latent_walk(
        &mut self,
        flow: &Flow,
        potential: &dyn Potential,
        chains: &[usize],
        out: &mut [Option<Served>],
    ) -> Result<()> {
        let (_, x) = self.gather(chains, |_| true);
        let (mut z, logdet_inverse) = flow.inverse(&x)?;
        let l = z.len() / chains.len();
        for (row, &c) in chains.iter().enumerate() {
            let k = self.chains[c].pending.unwrap_or(0);
            let step = self.chains[c].steps[k]
                .as_ref()
                .map_or(0.0, StepAdapter::step);
            for v in &mut z[row * l..(row + 1) * l] {
                *v += step * gaussian(&mut self.generator_rng);
            }
        }
        let (mut x_new, logdet_forward) = flow.forward(&z)?;
        if flow.keeps_external_dofs() {
            let dim = self.dim;
            for (row, &c) in chains.iter().enumerate() {
                flow.place_like(
                    &mut x_new[row * dim..(row + 1) * dim],
                    &self.chains[c].state.x,
                )?;
            }
        }
        let energies = energies_or_nan(potential, &x_new);
        self.learned_evaluations += chains.len() as u64;
        let dim = self.dim;
        for (row, &c) in chains.iter().enumerate() {
            out[c] = Some(Served {
                proposed: Proposed::new(
                    x_new[row * dim..(row + 1) * dim].to_vec(),
                    logdet_inverse[row] + logdet_forward[row],
                ),
                energy: Some(energies[row]),
                current_log_q: None,
                current_latent: None,
                proposed_latent: None,
            });
        }
        Ok(())
    }

    /// VAE in the extended space: refresh stale latents `z ~ r(z | x)` in one batch, then
    /// propose `(x′, z′)` from the decoder's joint.
    fn serve_vae(
        &mut self,
        vae: &Vae,
        potential: &dyn Potential,
        chains: &[usize],
        out: &mut [Option<Served>],
    ) -> Result<()> {
        let (stale, x) = self.gather(chains, |c| c.state.latent.is_none());
        let mut refreshed: Vec<Option<ExtendedLatent>> = vec![None; self.chains.len()];
        if !stale.is_empty() {
            for (c, latent) in stale
                .iter()
                .zip(refresh_latents(vae, &x, &mut self.generator_rng)?)
            {
                refreshed[*c] = Some(latent);
            }
        }
        for &c in chains {
            let draw =
                self.vae_buffer
                    .take(vae, self.config.buffer, &mut self.generator_rng, |xs| {
                        energies_or_nan(potential, xs)
                    })?;
            self.learned_evaluations += draw.evaluations;
            let current = refreshed[c]
                .as_ref()
                .or(self.chains[c].state.latent.as_ref())
                .ok_or_else(|| Error::InvalidArgument {
                    name: "vae".into(),
                    message: "a chain has no extended-space latent".into(),
                })?;
            out[c] = Some(Served {
                proposed: Proposed::new(draw.x, vae_log_hastings(current, &draw.latent)),
                energy: Some(draw.energy),
                current_log_q: None,
                current_latent: refreshed[c].take(),
                proposed_latent: Some(draw.latent),
            });
        }
        Ok(())
    }

    /// Writes the whole sampler state (chains, streams, adaptation, buffers, counters and the
    /// samples so far) to `path`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint_with_streams(path, &[])
    }

    /// As [`Sampler::checkpoint`], recording the lengths of the files the samples stream to
    /// (which the caller has synced first), so that a resume cuts them back to exactly what
    /// this checkpoint describes, whatever a crash left after it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn checkpoint_with_streams(&self, path: &Path, streams: &[StreamMark]) -> Result<()> {
        crate::io::write_atomically(path, |tmp| {
            let file = std::fs::File::create(tmp).map_err(Error::io(tmp))?;
            let mut writer = std::io::BufWriter::new(file);
            ciborium::into_writer(
                &CheckpointFile {
                    magic: CHECKPOINT_MAGIC.into(),
                    version: CHECKPOINT_VERSION,
                    sampler: self,
                    streams: streams.to_vec(),
                },
                &mut writer,
            )
            .map_err(|e| Error::Model {
                file: tmp.to_owned(),
                message: format!("cannot write the sampler checkpoint: {e}"),
            })?;
            std::io::Write::flush(&mut writer).map_err(Error::io(tmp))
        })
    }

    /// Resumes from a checkpoint written by [`Sampler::checkpoint`]. `config` must equal the
    /// checkpoint's, except that `steps` may grow (to extend a finished run).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Model`] naming the file if it is
    /// not a sampler checkpoint, is truncated or corrupted, has another version, or was
    /// written for another configuration or system.
    pub fn resume(path: &Path, config: &SamplerConfig, potential: &dyn Potential) -> Result<Self> {
        Self::resume_with_streams(path, config, potential).map(|(sampler, _)| sampler)
    }

    /// As [`Sampler::resume`], also returning the stream lengths that
    /// [`Sampler::checkpoint_with_streams`] recorded (empty for a checkpoint without them).
    ///
    /// # Errors
    /// As [`Sampler::resume`].
    pub fn resume_with_streams(
        path: &Path,
        config: &SamplerConfig,
        potential: &dyn Potential,
    ) -> Result<(Self, Vec<StreamMark>)> {
        let bad = |message: String| Error::Model {
            file: path.to_owned(),
            message,
        };
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let saved: CheckpointFile<Sampler> = ciborium::from_reader(std::io::BufReader::new(file))
            .map_err(|e| {
            bad(format!(
                "not a readable sampler checkpoint (truncated or corrupted?): {e}"
            ))
        })?;
        if saved.magic != CHECKPOINT_MAGIC {
            return Err(bad("not a boltzgen sampler checkpoint".into()));
        }
        if saved.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "checkpoint format version {} (this build reads {CHECKPOINT_VERSION})",
                saved.version
            )));
        }
        let mut sampler = saved.sampler;
        let mut expected = sampler.config.clone();
        expected.steps = config.steps;
        if &expected != config {
            return Err(bad(
                "written for another sampler configuration (only `steps` may change on resume)"
                    .into(),
            ));
        }
        if config.steps < sampler.config.steps {
            return Err(bad(format!(
                "the checkpoint has {} production steps planned; `steps` may grow, not shrink",
                sampler.config.steps
            )));
        }
        if sampler.dim != potential.dim() || sampler.chains.len() != config.chains {
            return Err(bad(format!(
                "written for a system of {} coordinates and {} chains",
                sampler.dim,
                sampler.chains.len()
            )));
        }
        if sampler.chains.iter().any(|c| c.t != sampler.step) {
            return Err(bad("chains are not aligned at a block end".into()));
        }
        sampler.config.steps = config.steps;
        Ok((sampler, saved.streams))
    }

    /// Takes the samples recorded since the last call (per chain: configurations `[n × dim]`
    /// and their energies), leaving none in memory: how long runs stream to disk.
    /// [`Sampler::report`] afterwards holds only what was recorded since.
    pub fn drain_samples(&mut self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.chains
            .iter_mut()
            .map(|c| {
                (
                    std::mem::take(&mut c.samples),
                    std::mem::take(&mut c.energies),
                )
            })
            .collect()
    }

    /// Samples each chain has recorded after `step` steps: production steps / thin.
    pub fn recorded_per_chain(&self, step: usize) -> usize {
        step.saturating_sub(self.config.burn_in) / self.config.thin
    }

    /// Burn-in plus production steps.
    pub fn total_steps(&self) -> usize {
        self.config.total_steps()
    }

    /// Reads a checkpoint's configuration and progress without resuming it (for `inspect`).
    ///
    /// # Errors
    /// As [`Sampler::resume`], except that no configuration is compared.
    pub fn peek_checkpoint(path: &Path) -> Result<(SamplerConfig, usize, usize)> {
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let saved: CheckpointFile<Sampler> = ciborium::from_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::Model {
            file: path.to_owned(),
            message: format!("not a readable sampler checkpoint (truncated or corrupted?): {e}"),
        })?;
        if saved.magic != CHECKPOINT_MAGIC {
            return Err(Error::Model {
                file: path.to_owned(),
                message: "not a boltzgen sampler checkpoint".into(),
            });
        }
        Ok((saved.sampler.config, saved.sampler.step, saved.sampler.dim))
    }

    /// The samples, energies, acceptance counts and adaptation of the run so far.
    pub fn report(&self) -> SampleRun {
        let moves = self.config.moves.len();
        let sum = |get: fn(&Chain) -> &Vec<MoveCounts>| {
            let mut total = vec![MoveCounts::default(); moves];
            for c in &self.chains {
                for (t, m) in total.iter_mut().zip(get(c)) {
                    t.add(m);
                }
            }
            total
        };
        let burn_in = sum(|c| &c.burn_in_counts);
        let production = sum(|c| &c.production_counts);
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
                    name: m.kind.name().to_string(),
                    adapted: m.target_acceptance.is_some(),
                    burn_in: burn_in[k],
                    production: production[k],
                })
                .collect(),
            chains: self
                .chains
                .iter()
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
        }
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
    /// Per move of the mixture.
    pub moves: Vec<MoveReport>,
    /// Per chain.
    pub chains: Vec<ChainRun>,
    /// Every evaluation of U, including learned draws that were buffered but never used.
    pub energy_evaluations: u64,
    /// Times cached generator terms were dropped because the generators changed (a resume
    /// with another model); 0 in an ordinary run.
    pub generator_changes: u32,
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
