//! Metropolis–Hastings with exact acceptance: the acceptance rule, proposals that report
//! their own Hastings term, and a single-chain runner.
//!
//! This is the first part of the sampling engine: random-walk, MALA, flow-independence and
//! latent-walk proposals, weighted mixtures of them, and a sequential chain. Batched learned
//! proposals, adaptation, VAE moves, many parallel chains, checkpoints and chain diagnostics
//! are still to come.

pub mod accept;
pub mod chain;
pub mod proposal;

pub use accept::{accept, log_acceptance};
pub use chain::{run_chain, ChainState, MoveStats};
pub use proposal::{FlowIndependence, LatentWalk, Mala, Proposal, Proposed, RandomWalk};
