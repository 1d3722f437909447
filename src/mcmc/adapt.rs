//! Step-size adaptation during burn-in (and only then).
//!
//! A Robbins–Monro recursion on the log step size,
//! `log σ ← log σ + γ_n (min(1, α_n) − target)`, `γ_n = (n + 1)^{-0.6}`,
//! drives the mean acceptance probability towards the target. Using the acceptance
//! probability rather than the accept/reject indicator removes one source of noise. The
//! gains decrease (Σγ = ∞, Σγ² < ∞), and the sampler freezes the step when burn-in ends, so
//! the production chain is an exactly Markov, π-invariant chain with a fixed kernel.

use serde::{Deserialize, Serialize};

/// The adaptive step size of one move of one chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAdapter {
    log_step: f64,
    /// exp(log_step), kept so that reading the step in a tight loop costs no exponential.
    step: f64,
    target: f64,
    updates: u64,
}

/// Keeps adapted steps within a sane range whatever the early acceptance did.
const LOG_STEP_BOUND: f64 = 30.0;

impl StepAdapter {
    /// Starts at `step`, aiming at acceptance rate `target` ∈ (0, 1).
    pub fn new(step: f64, target: f64) -> Self {
        Self {
            log_step: step.ln(),
            step,
            target,
            updates: 0,
        }
    }

    /// The current step size.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Updates after a proposal whose `log α` was `log_alpha`.
    pub fn update(&mut self, log_alpha: f64) {
        let prob = if log_alpha.is_nan() {
            0.0
        } else {
            log_alpha.min(0.0).exp()
        };
        self.updates += 1;
        let gain = (self.updates as f64).powf(-0.6);
        self.log_step =
            (self.log_step + gain * (prob - self.target)).clamp(-LOG_STEP_BOUND, LOG_STEP_BOUND);
        self.step = self.log_step.exp();
    }

    /// Number of updates made.
    pub fn updates(&self) -> u64 {
        self.updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model in which acceptance falls with the step as exp(−σ): the fixed point is
    /// σ* = −ln(target).
    #[test]
    fn converges_to_the_step_that_gives_the_target_rate() {
        let target = 0.4;
        let mut a = StepAdapter::new(20.0, target);
        for _ in 0..20_000 {
            let log_alpha = -a.step();
            a.update(log_alpha);
        }
        assert!((a.step() - (-target.ln())).abs() < 0.01, "{}", a.step());
    }

    #[test]
    fn nan_counts_as_rejection() {
        let mut a = StepAdapter::new(1.0, 0.5);
        a.update(f64::NAN);
        assert!(a.step() < 1.0);
    }
}
