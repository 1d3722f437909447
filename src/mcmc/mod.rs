//! Metropolis–Hastings with exact acceptance.
//!
//! - [`accept`](mod@accept): the one acceptance rule;
//! - [`moves`]: the moves, one file each, behind one [`Move`] trait;
//! - [`kernel`]: the one step every caller takes (propose, energy, accept/reject), and
//!   [`run_chain`], one chain at a time for a host's own loop;
//! - [`state`]: a chain's configuration and what moves cached about it;
//! - [`sampler`]: many chains in parallel: scheduling (blocks, batched learned moves,
//!   threads, streams) and checkpoints that resume bit for bit;
//! - [`adapt`]: burn-in step-size adaptation;
//! - [`exchange`]: replica exchange (parallel tempering) between a ladder of temperatures;
//! - [`relax`]: cooling hot training frames to the target temperature with local moves.

pub mod accept;
pub mod adapt;
pub mod exchange;
pub mod kernel;
pub mod moves;
pub mod relax;
pub mod sampler;
pub mod state;

pub use accept::{accept, log_acceptance};
pub use adapt::StepAdapter;
pub use exchange::{ExchangeConfig, ExchangeReport, PairReport, RungReport};
pub use kernel::{decide, run_chain, Decision, MoveStats};
pub use moves::{
    vae_log_hastings, Batch, ExtendedLatent, FlowIndependence, LatentWalk, Learned, Mala, Move,
    MoveKind, MoveSpec, ParticleWalk, Proposed, RandomWalk, Scheduled, Target, VaeMove,
};
pub use relax::{relax_frames, RelaxConfig, RelaxReport};
pub use sampler::{
    BlockEnd, ChainRun, MoveCounts, MoveReport, OneProcess, Ranks, SampleRun, Sampler,
    SamplerConfig, SamplerObserver,
};
pub use state::ChainState;
