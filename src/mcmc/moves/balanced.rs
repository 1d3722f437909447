//! Balanced flow moves: the flow-independence move with the flow's draws thinned by region.
//!
//! A flow splits its mass between metastable states as training left it; chains that propose
//! from it visit a basin it underweights only as often as it draws there. Thinning its draws
//! region by region ([`ThinnedGenerator`], planned from a pilot of weighted draws by
//! [`Plan::from_pilot`](crate::reweight::balance::Plan::from_pilot)) makes the proposal
//! `q(x) a_k(x) / A`: draws in stratum k are kept with probability `a_k`, and `A` is the
//! fraction kept. The independence move with that proposal has the Hastings term
//!
//! `log q(x) + ln a_k(x) − log q(x′) − ln a_k(x′)`,
//!
//! in which `A` cancels, so it is exact whatever the plan, as long as every `a_k > 0` (no part
//! of the flow's support is dropped) and the strata do not depend on the degrees of freedom
//! that [`Generator::place_like`] sets (a draw is kept by its stratum before it is placed).

use super::flow::FlowIndependence;
use crate::error::Result;
use crate::generator::{Generator, ThinnedGenerator};

/// The flow-independence move whose proposals are `inner`'s draws kept with
/// `acceptance[stratum_of(x)]`, drawing `batch` kept configurations per call.
///
/// # Errors
/// [`crate::Error::InvalidArgument`] for an acceptance outside `(0, 1]`, an empty plan, a
/// zero batch, or a generator without an exact density.
pub fn balanced_flow<'a>(
    inner: &'a dyn Generator,
    stratum_of: &'a dyn Fn(&[f64]) -> usize,
    acceptance: Vec<f64>,
    batch: usize,
) -> Result<FlowIndependence<ThinnedGenerator<'a>>> {
    FlowIndependence::new(ThinnedGenerator::new(inner, stratum_of, acceptance)?, batch)
}
