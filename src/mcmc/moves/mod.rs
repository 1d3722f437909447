//! The moves of the Metropolis–Hastings mixture: one file per move, one trait for all.
//!
//! A move proposes x′ from a chain's state and reports its Hastings term
//! `log q(x | x′) − log q(x′ | x)`; the [kernel](super::kernel) does the rest (energy,
//! acceptance, state update) the same way for every move and every caller.
//!
//! | move | file | Hastings term |
//! |---|---|---|
//! | Gaussian random walk | [`random_walk`] | 0 |
//! | one-particle walk | [`particle_walk`] | 0 |
//! | Metropolis-adjusted Langevin | [`mala`] | `[‖x′ − m(x)‖² − ‖x − m(x′)‖²] / 2ε²` |
//! | flow independence | [`flow`] | `log q(x) − log q(x′)` |
//! | balanced (thinned) flow | [`balanced`] | `log q(x) + ln a(x) − log q(x′) − ln a(x′)` |
//! | latent walk through a flow | [`latent_walk`] | `log|J_{f⁻¹}(x)| + log|J_f(z′)|` |
//! | VAE in the extended space (x, z) | [`vae`] | `w(x, z) − w(x′, z′)`, `w = log p(z) + log p(x|z) − log r(z|x)` |
//!
//! **Two ways to be scheduled.** Local moves ([`Scheduled::PerChain`]) are proposed by each
//! chain on its own thread from its own random stream, through [`Move::propose`]; they must be
//! `Sync`. Learned moves ([`Scheduled::Batched`]) wrap a libtorch generator, which is not
//! `Sync`: the sampler collects the chains that picked one and serves them together on the
//! calling thread, through [`Move::propose_batch`], one generator call for all of them
//! ([`Move::is_batched`] says which a move is). The single-chain API ([`super::run_chain`])
//! calls `propose` for a local move and `propose_batch` with one chain for a learned one; the
//! default `propose_batch` runs `propose` chain by chain, so a local move needs only
//! `propose`.
//!
//! **State across blocks.** A learned move may buffer draws (one generator call fills a
//! buffer that later proposals consume). The sampler builds its moves afresh at every
//! [`run`](super::Sampler::run) call, from borrowed generators, so a move hands its buffer
//! over as bytes ([`Move::save`]) and gets it back ([`Move::restore`]); the sampler keeps
//! those bytes in its checkpoints, which is how a resumed run continues bit for bit.
//!
//! A move of your own implements [`Move`] and joins a run through
//! [`Sampler::run_with_moves`](super::Sampler::run_with_moves).

use boltzgen_potentials::Potential;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::state::ChainState;
use crate::error::{Error, Result};
use crate::rng::ChainRng;

pub mod balanced;
pub mod flow;
pub mod latent_walk;
pub mod mala;
pub mod particle_walk;
pub mod random_walk;
pub mod spec;
pub mod vae;

pub use balanced::balanced_flow;
pub use flow::FlowIndependence;
pub use latent_walk::LatentWalk;
pub use mala::Mala;
pub use particle_walk::ParticleWalk;
pub use random_walk::RandomWalk;
pub use spec::{Learned, MoveKind, MoveSpec};
pub use vae::{vae_log_hastings, ExtendedLatent, VaeMove};

/// The distribution a move proposes for: exp(−β U).
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// U.
    pub potential: &'a dyn Potential,
    /// β.
    pub beta: f64,
}

/// A proposed configuration with everything the acceptance test needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposed {
    /// x′.
    pub x: Vec<f64>,
    /// `log q(x | x′) − log q(x′ | x)`.
    pub log_hastings: f64,
    /// U(x′), when the move computed it (MALA, learned draws evaluated in a batch); `None`
    /// leaves it to the kernel.
    pub energy: Option<f64>,
    /// ∇U(x′), likewise (MALA): kept by the state if the proposal is accepted.
    pub gradient: Option<Vec<f64>>,
    /// log q_θ(x′) of the flow-independence generator, kept likewise.
    pub log_q: Option<f64>,
    /// The auxiliary latent z′ of the VAE move's extended space, kept likewise.
    pub latent: Option<ExtendedLatent>,
}

impl Proposed {
    /// A proposal that computed nothing but x′ and its Hastings term.
    #[inline]
    pub fn new(x: Vec<f64>, log_hastings: f64) -> Self {
        Self {
            x,
            log_hastings,
            energy: None,
            gradient: None,
            log_q: None,
            latent: None,
        }
    }
}

/// Proposals for a batch of chains, in the order of the chains passed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// One proposal per chain.
    pub proposals: Vec<Proposed>,
    /// Evaluations of U the move made (a buffer refill evaluates all of its draws).
    pub evaluations: u64,
}

/// A Metropolis–Hastings move (see the [module docs](self)).
pub trait Move {
    /// The name in configs and reports ("random_walk", "flow", ...).
    fn name(&self) -> &str;

    /// The step size the move was configured with (random walks, MALA, latent walk), or
    /// `None` for moves without one. The sampler adapts a copy per chain during burn-in and
    /// passes the one in force to every proposal.
    fn step(&self) -> Option<f64> {
        None
    }

    /// Whether the move proposes only in batches ([`Move::propose_batch`]): learned moves,
    /// whose generator serves many chains per call. Callers that move one chain propose
    /// through [`Move::propose`] otherwise, which allocates nothing.
    fn is_batched(&self) -> bool {
        false
    }

    /// One proposal from `state` with step size `step`, drawing noise from the chain's own
    /// stream `rng`. `spare` is a recycled buffer for x′ (contents ignored), so that a chain
    /// in a tight loop does not allocate every step.
    ///
    /// # Errors
    /// Whatever the potential reports; [`Error::InvalidArgument`] for a move that is only
    /// proposed in batches.
    fn propose(
        &self,
        state: &mut ChainState,
        step: f64,
        target: &Target,
        rng: &mut ChainRng,
        spare: Vec<f64>,
    ) -> Result<Proposed> {
        let _ = (state, step, target, rng, spare);
        Err(Error::InvalidArgument {
            name: self.name().into(),
            message: "is proposed in batches (propose_batch), not one chain at a time".into(),
        })
    }

    /// One proposal for each chain of `chains`, with the step sizes `steps` (one per chain),
    /// drawing from `rng`. A move may cache terms of the current states in them (log q, the
    /// VAE latent), computed together in one batch.
    ///
    /// The default proposes chain after chain through [`Move::propose`].
    ///
    /// # Errors
    /// Whatever the potential or the generator reports.
    fn propose_batch(
        &mut self,
        chains: &mut [&mut ChainState],
        steps: &[f64],
        target: &Target,
        rng: &mut ChainRng,
    ) -> Result<Batch> {
        let proposals = chains
            .iter_mut()
            .zip(steps)
            .map(|(state, &step)| self.propose(state, step, target, rng, Vec::new()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Batch {
            proposals,
            evaluations: 0,
        })
    }

    /// The move's buffered state as bytes (empty when it holds none), for checkpoints.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if it cannot be encoded.
    fn save(&self) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    /// Restores what [`Move::save`] returned (never called with empty bytes).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for bytes this move did not write.
    fn restore(&mut self, saved: &[u8]) -> Result<()> {
        let _ = saved;
        Ok(())
    }
}

/// How the sampler runs a move (see the [module docs](self)).
pub enum Scheduled<'a> {
    /// Proposed by each chain on its own thread, from its own stream.
    PerChain(Box<dyn Move + Sync + 'a>),
    /// Proposed for all waiting chains together on the calling thread, from the generator
    /// stream.
    Batched(Box<dyn Move + 'a>),
}

impl<'a> Scheduled<'a> {
    /// The move itself.
    pub fn as_move(&self) -> &(dyn Move + 'a) {
        match self {
            Scheduled::PerChain(m) => m.as_ref(),
            Scheduled::Batched(m) => m.as_ref(),
        }
    }

    /// The move itself, mutably.
    pub fn as_move_mut(&mut self) -> &mut (dyn Move + 'a) {
        match self {
            Scheduled::PerChain(m) => m.as_mut(),
            Scheduled::Batched(m) => m.as_mut(),
        }
    }

    /// Whether the sampler serves it in batches.
    pub fn is_batched(&self) -> bool {
        matches!(self, Scheduled::Batched(_))
    }
}

/// A standard normal draw.
#[inline]
pub(crate) fn gaussian(rng: &mut ChainRng) -> f64 {
    StandardNormal.sample(rng)
}

/// Energies of a batch `[n × dim]` evaluated in parallel; a configuration the potential
/// refuses (NaN coordinates) gets NaN, which the acceptance rule rejects.
pub(crate) fn energies_or_nan(potential: &dyn Potential, xs: &[f64]) -> Vec<f64> {
    let d = potential.dim().max(1);
    xs.par_chunks(d)
        .map(|x| potential.energy(x).unwrap_or(f64::NAN))
        .collect()
}

/// Encodes a move's buffer for [`Move::save`]: no bytes for an empty (default) buffer.
pub(crate) fn encode<T: serde::Serialize + Default + PartialEq>(
    move_name: &str,
    value: &T,
) -> Result<Vec<u8>> {
    if value == &T::default() {
        return Ok(Vec::new());
    }
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|e| Error::InvalidArgument {
        name: move_name.into(),
        message: format!("cannot encode its buffer: {e}"),
    })?;
    Ok(bytes)
}

/// Decodes what [`encode`] wrote, for [`Move::restore`].
pub(crate) fn decode<T: serde::de::DeserializeOwned>(move_name: &str, bytes: &[u8]) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|e| Error::InvalidArgument {
        name: move_name.into(),
        message: format!("saved buffer not readable: {e}"),
    })
}
