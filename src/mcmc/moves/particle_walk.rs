//! A Gaussian random walk of one particle at a time: a particle is chosen uniformly and its
//! `spatial_dim` coordinates move by `σ ξ`. Symmetric, Hastings term 0. For particle systems
//! (LJ, DW4, molecules) this keeps the acceptance reasonable where moving every atom at once
//! would not; relaxation of training frames uses it too ([`crate::mcmc::relax`]).

use rand::RngExt;

use super::{gaussian, Move, Proposed, Target};
use crate::error::{Error, Result};
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

/// One uniformly chosen particle moves by `σ ξ`.
#[derive(Debug, Clone)]
pub struct ParticleWalk {
    /// Step size σ (the initial one, when the sampler adapts it).
    pub step: f64,
    /// Coordinates per particle (2 or 3).
    pub spatial_dim: usize,
}

impl Move for ParticleWalk {
    fn name(&self) -> &str {
        "particle_walk"
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
        let (x, spatial_dim) = (&state.x, self.spatial_dim);
        if spatial_dim == 0 || x.len() % spatial_dim != 0 {
            return Err(Error::Dimension {
                what: "particle walk (coordinates must be a multiple of spatial_dim)".into(),
                expected: spatial_dim,
                got: x.len(),
            });
        }
        let particle = rng.random_range(0..x.len() / spatial_dim);
        let mut x_new = spare;
        x_new.clear();
        x_new.extend_from_slice(x);
        for v in &mut x_new[particle * spatial_dim..(particle + 1) * spatial_dim] {
            *v += step * gaussian(rng);
        }
        Ok(Proposed::new(x_new, 0.0))
    }
}
