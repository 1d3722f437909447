//! Metropolis-adjusted Langevin: `x′ = x − (ε²/2) β ∇U(x) + ε ξ`.
//!
//! The proposal is asymmetric: with `m(x) = x − (ε²/2) β ∇U(x)`,
//! `log q(x′ | x) = −‖x′ − m(x)‖² / (2ε²) + const`, and the Hastings term is
//! `[‖x′ − m(x)‖² − ‖x − m(x′)‖²] / (2ε²)`. It needs ∇U(x′), which it computes together with
//! U(x′) and hands to the kernel (the state keeps the gradient if x′ is accepted, so the next
//! MALA step from there costs no extra evaluation).

use super::{gaussian, Move, Proposed, Target};
use crate::error::Result;
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

/// Metropolis-adjusted Langevin with step ε.
#[derive(Debug, Clone)]
pub struct Mala {
    /// Step size ε (the initial one, when the sampler adapts it).
    pub step: f64,
}

impl Move for Mala {
    fn name(&self) -> &str {
        "mala"
    }

    fn step(&self) -> Option<f64> {
        Some(self.step)
    }

    fn propose(
        &self,
        state: &mut ChainState,
        step: f64,
        target: &Target,
        rng: &mut ChainRng,
        _spare: Vec<f64>,
    ) -> Result<Proposed> {
        let potential = target.potential;
        let e2 = step * step;
        let drift = 0.5 * e2 * target.beta;
        let (x, grad_x) = state.x_and_gradient(potential)?;
        let mean_fwd: Vec<f64> = x.iter().zip(grad_x).map(|(x, g)| x - drift * g).collect();
        let x_new: Vec<f64> = mean_fwd.iter().map(|m| m + step * gaussian(rng)).collect();
        let mut grad_new = vec![0.0; x_new.len()];
        let u_new = match potential.energy_and_gradient(&x_new, &mut grad_new) {
            Ok(u) => u,
            // A proposal the potential rejects (e.g. a non-finite step) is simply refused.
            Err(_) => {
                return Ok(Proposed {
                    energy: Some(f64::NAN),
                    ..Proposed::new(x_new, f64::NAN)
                })
            }
        };
        // ‖x′ − m(x)‖² and ‖x − m(x′)‖², with m(y) = y − (ε²/2) β ∇U(y).
        let fwd: f64 = x_new
            .iter()
            .zip(&mean_fwd)
            .map(|(a, m)| (a - m) * (a - m))
            .sum();
        let bwd: f64 = state
            .x
            .iter()
            .zip(x_new.iter().zip(&grad_new))
            .map(|(a, (xn, g))| {
                let m = xn - drift * g;
                (a - m) * (a - m)
            })
            .sum();
        Ok(Proposed {
            energy: Some(u_new),
            gradient: Some(grad_new),
            ..Proposed::new(x_new, (fwd - bwd) / (2.0 * e2))
        })
    }
}
