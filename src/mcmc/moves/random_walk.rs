//! Gaussian random walk on every coordinate: `x′ = x + σ ξ`, symmetric, Hastings term 0.

use super::{gaussian, Move, Proposed, Target};
use crate::error::Result;
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

/// Gaussian random walk `x′ = x + σ ξ` on all coordinates.
#[derive(Debug, Clone)]
pub struct RandomWalk {
    /// Step size σ (the initial one, when the sampler adapts it).
    pub step: f64,
}

impl Move for RandomWalk {
    fn name(&self) -> &str {
        "random_walk"
    }

    fn step(&self) -> Option<f64> {
        Some(self.step)
    }

    fn propose(
        &self,
        state: &mut ChainState,
        step: f64,
        _: &Target,
        rng: &mut ChainRng,
        spare: Vec<f64>,
    ) -> Result<Proposed> {
        let mut x_new = spare;
        x_new.clear();
        x_new.extend(state.x.iter().map(|v| v + step * gaussian(rng)));
        Ok(Proposed::new(x_new, 0.0))
    }
}
