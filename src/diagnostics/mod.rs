//! Diagnostics of generators and chains.
//!
//! - [`autocorrelation`](mod@autocorrelation): integrated autocorrelation time (Sokal's automatic window), ESS,
//!   and the error bar of a chain average;
//! - [`convergence`]: split-R̂ across chains;
//! - [`transitions`]: transitions between user-defined states, with hysteresis;
//! - [`coverage`]: mode coverage of samples against known mode weights;
//! - [`verdict`]: the convergence checks every report runs, and the warnings they raise.

pub mod autocorrelation;
pub mod convergence;
pub mod coverage;
pub mod transitions;
pub mod verdict;

pub use autocorrelation::{autocorrelation, integrated_time, summarize, Iat, SeriesSummary};
pub use convergence::split_rhat;
pub use coverage::{mode_coverage, ModeCoverage, ModeShare};
pub use transitions::{check_states, count_transitions, StateInterval, Transitions};
pub use verdict::Warning;
