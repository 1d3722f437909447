//! Metropolis–Hastings with exact acceptance.
//!
//! - [`accept`](mod@accept): the one acceptance rule every kernel uses;
//! - [`proposal`]: proposals that report their own Hastings term (random walk, one-particle
//!   walk, MALA, flow independence, latent walk), usable one chain at a time through
//!   [`run_chain`] or from a host's own Monte Carlo loop;
//! - [`vae_move`]: the VAE proposal in the extended space (x, z) and its Gibbs refresh;
//! - [`adapt`]: burn-in step-size adaptation;
//! - [`relax`]: cooling hot training frames to the target temperature with local moves;
//! - [`sampler`]: many chains in parallel, learned moves served in batches from buffers,
//!   checkpoints that resume bit for bit.

pub mod accept;
pub mod adapt;
pub mod chain;
pub mod proposal;
pub mod relax;
pub mod sampler;
pub mod vae_move;

pub use accept::{accept, log_acceptance};
pub use adapt::StepAdapter;
pub use chain::{run_chain, ChainState, MoveStats};
pub use proposal::{
    FlowIndependence, LatentWalk, Mala, ParticleWalk, Proposal, Proposed, RandomWalk,
};
pub use relax::{relax_frames, RelaxConfig, RelaxReport};
pub use sampler::{
    ChainRun, Learned, MoveCounts, MoveKind, MoveReport, MoveSpec, SampleRun, Sampler,
    SamplerConfig,
};
pub use vae_move::{vae_log_hastings, ExtendedLatent};
