//! The Gaussian (harmonic) potential with a full precision matrix.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{invalid, Result};
use crate::potential::Potential;
use crate::quadrature::check_beta;
use crate::reference::{ExactLogZ, ExactSampler};

/// `U(x) = ½ (x − μ)ᵀ P (x − μ)` with a symmetric positive-definite precision matrix P.
///
/// `ln Z(β) = (d/2) ln(2π/β) − ½ ln det P`, and exact samples are `μ + L⁻ᵀ ε / √β` with
/// `P = L Lᵀ` (Cholesky). This is the harmonic reference for every sampler test.
///
/// ```
/// use boltzgen_potentials::{Gaussian, Potential, ExactLogZ};
/// let g = Gaussian::new(vec![1.0, -1.0], vec![2.0, 0.5, 0.5, 1.0]).unwrap();
/// assert_eq!(g.energy(&[1.0, -1.0]).unwrap(), 0.0);
/// // U(μ + e₀) = ½ P₀₀ = 1
/// assert_eq!(g.energy(&[2.0, -1.0]).unwrap(), 1.0);
/// let det: f64 = 2.0 * 1.0 - 0.25;
/// let exact = (2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln();
/// assert!((g.log_z(1.0).unwrap() - exact).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    mean: DVector<f64>,
    precision: DMatrix<f64>,
    /// Lower Cholesky factor of the precision.
    cholesky_lower: DMatrix<f64>,
    log_det_precision: f64,
}

impl Gaussian {
    /// A Gaussian with mean `mean` (length d) and precision `precision` (row-major d × d,
    /// symmetric positive definite).
    ///
    /// # Errors
    /// `InvalidParameter` for mismatched sizes, an asymmetric, non-finite or not positive
    /// definite precision.
    pub fn new(mean: Vec<f64>, precision: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if d == 0 {
            return Err(invalid("mean", "must have at least one coordinate"));
        }
        if precision.len() != d * d {
            return Err(invalid(
                "precision",
                format!("need {d} × {d} = {} values, got {}", d * d, precision.len()),
            ));
        }
        if mean.iter().chain(&precision).any(|v| !v.is_finite()) {
            return Err(invalid("precision", "mean and precision must be finite"));
        }
        let p = DMatrix::from_row_slice(d, d, &precision);
        let scale = p.amax().max(1.0);
        if (&p - p.transpose()).amax() > 1e-12 * scale {
            return Err(invalid("precision", "must be symmetric"));
        }
        let chol = p
            .clone()
            .cholesky()
            .ok_or_else(|| invalid("precision", "must be positive definite"))?;
        let lower = chol.l();
        let log_det = 2.0 * lower.diagonal().iter().map(|v| v.ln()).sum::<f64>();
        Ok(Self {
            mean: DVector::from_vec(mean),
            precision: p,
            cholesky_lower: lower,
            log_det_precision: log_det,
        })
    }

    /// An isotropic Gaussian `𝒩(μ, σ² I)`.
    ///
    /// # Errors
    /// As [`Gaussian::new`], and for `std ≤ 0`.
    pub fn isotropic(mean: Vec<f64>, std: f64) -> Result<Self> {
        if !(std > 0.0 && std.is_finite()) {
            return Err(invalid(
                "std",
                format!("must be positive and finite, got {std}"),
            ));
        }
        let d = mean.len();
        let mut p = vec![0.0; d * d];
        for i in 0..d {
            p[i * d + i] = 1.0 / (std * std);
        }
        Self::new(mean, p)
    }

    /// The mean μ.
    pub fn mean(&self) -> &[f64] {
        self.mean.as_slice()
    }

    /// The covariance matrix P⁻¹ at β = 1, row-major.
    pub fn covariance(&self) -> Vec<f64> {
        let d = self.mean.len();
        let linv = self
            .cholesky_lower
            .clone()
            .solve_lower_triangular(&DMatrix::identity(d, d))
            .expect("the Cholesky factor has a positive diagonal");
        let cov = linv.transpose() * linv;
        cov.transpose().as_slice().to_vec()
    }

    /// ln det P.
    pub fn log_det_precision(&self) -> f64 {
        self.log_det_precision
    }
}

impl Potential for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn name(&self) -> &str {
        "gaussian"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        let delta = DVector::from_iterator(
            self.dim(),
            x.iter().zip(self.mean.iter()).map(|(a, m)| a - m),
        );
        0.5 * delta.dot(&(&self.precision * &delta))
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let delta = DVector::from_iterator(
            self.dim(),
            x.iter().zip(self.mean.iter()).map(|(a, m)| a - m),
        );
        let g = &self.precision * &delta;
        grad.copy_from_slice(g.as_slice());
        0.5 * delta.dot(&g)
    }
}

impl ExactLogZ for Gaussian {
    fn log_z(&self, beta: f64) -> Result<f64> {
        check_beta(beta)?;
        let d = self.dim() as f64;
        Ok(0.5 * d * (2.0 * std::f64::consts::PI / beta).ln() - 0.5 * self.log_det_precision)
    }
}

impl ExactSampler for Gaussian {
    fn sample_exact<R: Rng + ?Sized>(&self, beta: f64, n: usize, rng: &mut R) -> Result<Vec<f64>> {
        check_beta(beta)?;
        let d = self.dim();
        let lt = self.cholesky_lower.transpose();
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let eps = DVector::from_iterator(d, (0..d).map(|_| StandardNormal.sample(rng)));
            // Lᵀ y = ε gives y ~ 𝒩(0, (L Lᵀ)⁻¹) = 𝒩(0, P⁻¹).
            let y = lt
                .solve_upper_triangular(&eps)
                .expect("the Cholesky factor has a positive diagonal");
            let s = 1.0 / beta.sqrt();
            out.extend(y.iter().zip(self.mean.iter()).map(|(yi, mi)| mi + s * yi));
        }
        Ok(out)
    }
}
