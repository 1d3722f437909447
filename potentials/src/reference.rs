//! Exact references: the yardsticks that learned generators and samplers are judged against.

use rand::Rng;

use crate::error::Result;

/// A target whose log partition function `ln Z(β) = ln ∫ exp(−β U(x)) dx` is known exactly
/// (in closed form or by quadrature to ~1e-10).
pub trait ExactLogZ {
    /// `ln Z(β)`.
    ///
    /// # Errors
    /// `InvalidParameter` for a non-positive or non-finite β, `NoExactReference` where the
    /// target has no exact value at that β.
    fn log_z(&self, beta: f64) -> Result<f64>;
}

/// A target that can be sampled exactly from `π(x) ∝ exp(−β U(x))`.
pub trait ExactSampler {
    /// Draws `n` independent configurations, row-major `[n × dim]`.
    ///
    /// # Errors
    /// As [`ExactLogZ::log_z`].
    fn sample_exact<R: Rng + ?Sized>(&self, beta: f64, n: usize, rng: &mut R) -> Result<Vec<f64>>;
}
