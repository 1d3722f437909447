//! ManyWell-d: d/2 independent copies of a tilted 2-D double well.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{invalid, Result};
use crate::potential::Potential;
use crate::quadrature::{check_beta, Quartic1D};
use crate::reference::{ExactLogZ, ExactSampler};

/// `U(x) = Σ_{k<d/2} [x_{2k}⁴ − 6 x_{2k}² − 0.5 x_{2k} + ½ x_{2k+1}²]`.
///
/// Coordinates are interleaved pairs `(x₁, y₁, x₂, y₂, …)`. Each pair has two wells in x, so
/// the target has `2^{d/2}` modes; for d = 32 that is 65 536, with `ln Z ≈ 164.696` at β = 1.
/// The pairs are independent, so log Z and exact samples come from one 1-D quadrature.
///
/// ```
/// use boltzgen_potentials::{ManyWell, Potential, ExactLogZ};
/// let mw = ManyWell::new(32).unwrap();
/// assert_eq!(mw.dim(), 32);
/// assert!((mw.log_z(1.0).unwrap() - 164.696).abs() < 1e-3);
/// // The origin has zero energy.
/// assert_eq!(mw.energy(&vec![0.0; 32]).unwrap(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManyWell {
    dim: usize,
    quartic: Quartic1D,
}

impl ManyWell {
    /// ManyWell in `dim` dimensions (even, ≥ 2).
    ///
    /// # Errors
    /// `InvalidParameter` for an odd or zero dimension.
    pub fn new(dim: usize) -> Result<Self> {
        if dim == 0 || dim % 2 != 0 {
            return Err(invalid(
                "dim",
                format!("must be even and positive, got {dim}"),
            ));
        }
        Ok(Self {
            dim,
            quartic: Quartic1D::new(1.0, 6.0, -0.5)?,
        })
    }

    /// The 1-D quartic `x⁴ − 6x² − 0.5x` of each pair.
    pub fn x_part(&self) -> Quartic1D {
        self.quartic
    }

    /// Probability that one pair's x lies in `(lo, hi)`; e.g. `x > 0` has weight 0.8443 at β = 1.
    ///
    /// # Errors
    /// `InvalidParameter` for a bad β or interval.
    pub fn pair_x_probability(&self, lo: f64, hi: f64, beta: f64) -> Result<f64> {
        self.quartic.probability(lo, hi, beta)
    }
}

impl Potential for ManyWell {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> &str {
        "many_well"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        x.chunks_exact(2)
            .map(|p| self.quartic.value(p[0]) + 0.5 * p[1] * p[1])
            .sum()
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let mut u = 0.0;
        for (p, g) in x.chunks_exact(2).zip(grad.chunks_exact_mut(2)) {
            u += self.quartic.value(p[0]) + 0.5 * p[1] * p[1];
            g[0] = self.quartic.derivative(p[0]);
            g[1] = p[1];
        }
        u
    }
}

impl ExactLogZ for ManyWell {
    fn log_z(&self, beta: f64) -> Result<f64> {
        check_beta(beta)?;
        let pairs = (self.dim / 2) as f64;
        let y_part = 0.5 * (2.0 * std::f64::consts::PI / beta).ln();
        Ok(pairs * (self.quartic.log_normalizer(beta)? + y_part))
    }
}

impl ExactSampler for ManyWell {
    fn sample_exact<R: Rng + ?Sized>(&self, beta: f64, n: usize, rng: &mut R) -> Result<Vec<f64>> {
        let sampler = self.quartic.sampler(beta)?;
        let y_std = 1.0 / beta.sqrt();
        let mut out = Vec::with_capacity(self.dim * n);
        for _ in 0..n * self.dim / 2 {
            out.push(sampler.sample(rng));
            let eps: f64 = StandardNormal.sample(rng);
            out.push(y_std * eps);
        }
        Ok(out)
    }
}
