//! Replica exchange (parallel tempering): copies of the system at a ladder of inverse
//! temperatures β₀ > β₁ > … (β₀ the target's), each rung running the sampler's mixture of
//! moves, with neighbour swaps of configurations between rungs.
//!
//! # The swap
//! Rungs i and j = i + 1 holding x_i and x_j swap them with probability
//! `min(1, exp[(β_i − β_j)(U(x_i) − U(x_j))])`, the Metropolis ratio of the product target
//! ∏_r exp(−β_r U(x_r)) — exact, so every rung samples its own Boltzmann distribution and the
//! target rung's trajectory is a valid chain of exp(−β₀U). Rounds alternate between the even
//! pairs (0–1, 2–3, …) and the odd ones (1–2, 3–4, …), so that no configuration takes part in
//! two swaps of one round.
//!
//! A scaled Hamiltonian λU at β is the same distribution as U at λβ, so a ladder of scaled
//! potentials is a ladder of β here.
//!
//! # Tuning
//! With [`ExchangeConfig::tune`], the interior rungs move during burn-in (the two ends stay)
//! towards equal swap acceptance between every pair of neighbours ([`ladder`]); the ladder
//! is frozen when burn-in ends, so production is an exact, time-homogeneous chain.
//!
//! Which configuration is where is tracked by replica labels, which follow the
//! configurations through swaps: round trips (bottom → top → bottom) and the time each replica
//! spends at each rung are reported ([`ExchangeReport`]).

mod config;
mod ladder;
mod report;
mod state;

pub use config::ExchangeConfig;
pub use report::{ExchangeReport, PairReport, RungReport};
pub(crate) use state::Exchange;
