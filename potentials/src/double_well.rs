//! The two-dimensional double well, the project's default toy target.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{invalid, Result};
use crate::potential::Potential;
use crate::quadrature::{check_beta, Quartic1D};
use crate::reference::{ExactLogZ, ExactSampler};

/// `U(x, y) = a x⁴ − b x² + c x + ½ d y²`.
///
/// With the defaults a = 1, b = 6, c = 1, d = 1 and β = 1 the wells sit near x = ±1.7, the
/// barrier is about 9 units high, and the tilt puts 96.71 % of the mass in the left well
/// (x < 0). The density factorises, so log Z and the x-marginal follow from 1-D quadrature.
///
/// ```
/// use boltzgen_potentials::{DoubleWell2D, Potential, ExactLogZ};
/// let dw = DoubleWell2D::default();
/// // U(1, 2) = 1 − 6 + 1 + 2 = −2
/// assert_eq!(dw.energy(&[1.0, 2.0]).unwrap(), -2.0);
/// let left = dw.x_probability(f64::NEG_INFINITY, 0.0, 1.0).unwrap();
/// assert!((left - 0.9671).abs() < 5e-5);
/// assert!(dw.log_z(1.0).unwrap().is_finite());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DoubleWell2D {
    quartic: Quartic1D,
    d: f64,
}

impl Default for DoubleWell2D {
    fn default() -> Self {
        Self::new(1.0, 6.0, 1.0, 1.0).expect("the default parameters are valid")
    }
}

impl DoubleWell2D {
    /// A double well with the given coefficients.
    ///
    /// # Errors
    /// `InvalidParameter` unless `a > 0`, `d > 0` and all are finite.
    pub fn new(a: f64, b: f64, c: f64, d: f64) -> Result<Self> {
        if !(d > 0.0 && d.is_finite()) {
            return Err(invalid(
                "d",
                format!("must be positive and finite, got {d}"),
            ));
        }
        Ok(Self {
            quartic: Quartic1D::new(a, b, c)?,
            d,
        })
    }

    /// The quartic x-part `a x⁴ − b x² + c x`.
    pub fn x_part(&self) -> Quartic1D {
        self.quartic
    }

    /// The y stiffness d.
    pub fn d(&self) -> f64 {
        self.d
    }

    /// Probability of `lo < x < hi` under `exp(−βU)` (the x-marginal by quadrature).
    ///
    /// # Errors
    /// `InvalidParameter` for a bad β or interval.
    pub fn x_probability(&self, lo: f64, hi: f64, beta: f64) -> Result<f64> {
        self.quartic.probability(lo, hi, beta)
    }
}

impl Potential for DoubleWell2D {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> &str {
        "double_well"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        self.quartic.value(x[0]) + 0.5 * self.d * x[1] * x[1]
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        grad[0] = self.quartic.derivative(x[0]);
        grad[1] = self.d * x[1];
        self.compute_energy(x)
    }
}

impl ExactLogZ for DoubleWell2D {
    fn log_z(&self, beta: f64) -> Result<f64> {
        check_beta(beta)?;
        let y_part = 0.5 * (2.0 * std::f64::consts::PI / (beta * self.d)).ln();
        Ok(self.quartic.log_normalizer(beta)? + y_part)
    }
}

impl ExactSampler for DoubleWell2D {
    fn sample_exact<R: Rng + ?Sized>(&self, beta: f64, n: usize, rng: &mut R) -> Result<Vec<f64>> {
        let sampler = self.quartic.sampler(beta)?;
        let y_std = 1.0 / (beta * self.d).sqrt();
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            out.push(sampler.sample(rng));
            let eps: f64 = StandardNormal.sample(rng);
            out.push(y_std * eps);
        }
        Ok(out)
    }
}
