//! A fixed layer that turns standard-normal latent coordinates into uniform ones on an interval:
//! the base of the periodic (torsion) coordinates of internal-coordinate flows.

use tch::{Kind, Tensor};

use super::split::Split;

/// `x_B = B · erf(z_B / √2)` on the coordinates B (the standard-normal CDF, stretched to
/// `(−B, B)`), the identity elsewhere. No parameters.
///
/// Pushing 𝒩(0, 1) through it gives the uniform density `1 / 2B` on `(−B, B)`; spline
/// couplings whose interval is exactly `[−B, B]` then keep those coordinates inside it.
#[derive(Debug)]
pub(crate) struct UniformCdf {
    split: Split,
    bound: f64,
}

impl UniformCdf {
    pub(crate) fn new(split: Split, bound: f64) -> Self {
        Self { split, bound }
    }

    /// `log(dx/dz) = log B + ½ log(2/π) − z²/2` per coordinate.
    fn log_derivative(&self, z: &Tensor) -> Tensor {
        let constant = self.bound.ln() + 0.5 * (2.0 / std::f64::consts::PI).ln();
        (z.to_kind(Kind::Double).square() * -0.5 + constant).sum_dim_intlist(1, false, Kind::Double)
    }

    pub(crate) fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(z);
        let logdet = self.log_derivative(&moved);
        let x = (moved / std::f64::consts::SQRT_2).erf() * self.bound;
        (self.split.join(&cond, &x), logdet)
    }

    pub(crate) fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(x);
        // The interval's end points map to ±∞; keep a margin that float32 can represent, so a
        // value that rounding put on the boundary stays finite.
        let margin = if moved.kind() == Kind::Double {
            1e-15
        } else {
            1e-7
        };
        let z = (moved / self.bound)
            .clamp(-1.0 + margin, 1.0 - margin)
            .erfinv()
            * std::f64::consts::SQRT_2;
        let logdet = -self.log_derivative(&z);
        (self.split.join(&cond, &z), logdet)
    }
}
