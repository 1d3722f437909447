//! A random walk in the latent space of a flow `x = f(z)`: `z′ = f⁻¹(x) + σ ξ`, `x′ = f(z′)`.
//!
//! The Gaussian parts cancel, leaving the Jacobians:
//! `log q(x | x′) − log q(x′ | x) = log|det J_{f⁻¹}(x)| − log|det J_{f⁻¹}(x′)|`
//! `= log|det J_{f⁻¹}(x)| + log|det J_f(z′)|`.
//!
//! A flow that leaves external degrees of freedom to the caller (centre of mass, or position
//! and orientation) drops them in `f⁻¹` and draws them at the origin in `f`; x′ is given the
//! current state's ([`Generator::place_like`]), on whose fibre the Jacobians above are exact.

use std::borrow::Borrow;

use super::{energies_or_nan, gaussian, Batch, Move, Proposed, Target};
use crate::error::Result;
use crate::generator::{Flow, Generator};
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

/// The latent walk through a flow (owned, or borrowed as `&Flow`) with step σ.
pub struct LatentWalk<F: Borrow<Flow>> {
    flow: F,
    /// Step size σ in latent space (the initial one, when the sampler adapts it).
    pub step: f64,
}

impl<F: Borrow<Flow>> LatentWalk<F> {
    /// A latent walk through `flow` with step σ.
    pub fn new(flow: F, step: f64) -> Self {
        Self { flow, step }
    }

    /// The flow it walks through.
    pub fn flow(&self) -> &Flow {
        self.flow.borrow()
    }
}

impl<F: Borrow<Flow>> Move for LatentWalk<F> {
    fn name(&self) -> &str {
        "latent_walk"
    }

    fn is_batched(&self) -> bool {
        true
    }

    fn step(&self) -> Option<f64> {
        Some(self.step)
    }

    /// All chains through one inverse and one forward pass of the flow, their energies in
    /// parallel.
    fn propose_batch(
        &mut self,
        chains: &mut [&mut ChainState],
        steps: &[f64],
        target: &Target,
        rng: &mut ChainRng,
    ) -> Result<Batch> {
        let flow = self.flow.borrow();
        let x: Vec<f64> = chains.iter().flat_map(|s| s.x.iter().copied()).collect();
        let (mut z, logdet_inverse) = flow.inverse(&x)?;
        let l = z.len() / chains.len().max(1);
        for (row, &step) in steps.iter().enumerate().take(chains.len()) {
            for v in &mut z[row * l..(row + 1) * l] {
                *v += step * gaussian(rng);
            }
        }
        let (mut x_new, logdet_forward) = flow.forward(&z)?;
        let dim = x_new.len() / chains.len().max(1);
        if flow.keeps_external_dofs() {
            for (row, state) in chains.iter().enumerate() {
                flow.place_like(&mut x_new[row * dim..(row + 1) * dim], &state.x)?;
            }
        }
        let energies = energies_or_nan(target.potential, &x_new);
        let proposals = (0..chains.len())
            .map(|row| Proposed {
                energy: Some(energies[row]),
                ..Proposed::new(
                    x_new[row * dim..(row + 1) * dim].to_vec(),
                    logdet_inverse[row] + logdet_forward[row],
                )
            })
            .collect();
        Ok(Batch {
            proposals,
            evaluations: chains.len() as u64,
        })
    }
}
