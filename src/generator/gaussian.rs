//! A diagonal Gaussian generator in pure Rust: the baseline independence proposal and the
//! broad proposal of importance-sampling checks. Exact density, no libtorch.

use rand_distr::{Distribution, StandardNormal};

use super::{Generator, Samples};
use crate::error::{Error, Result};
use crate::rng::ChainRng;

/// `q(x) = Π_i 𝒩(x_i; μ_i, σ_i²)`.
///
/// ```
/// use boltzgen::generator::{DiagonalGaussian, Generator};
/// let q = DiagonalGaussian::isotropic(vec![0.0, 0.0], 2.0).unwrap();
/// let lq = q.log_prob(&[0.0, 0.0]).unwrap()[0];
/// assert!((lq - (-(2.0 * std::f64::consts::PI * 4.0).ln())).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DiagonalGaussian {
    mean: Vec<f64>,
    std: Vec<f64>,
    /// `−Σ ln σ_i − (d/2) ln 2π`.
    log_norm: f64,
}

impl DiagonalGaussian {
    /// Mean μ and per-coordinate standard deviations σ.
    ///
    /// # Errors
    /// [`Error::Dimension`] for mismatched lengths, [`Error::InvalidArgument`] for an empty
    /// mean, non-finite values or σ ≤ 0.
    pub fn new(mean: Vec<f64>, std: Vec<f64>) -> Result<Self> {
        if mean.len() != std.len() {
            return Err(Error::Dimension {
                what: "standard deviations against the mean".into(),
                expected: mean.len(),
                got: std.len(),
            });
        }
        if mean.is_empty()
            || mean.iter().any(|m| !m.is_finite())
            || std.iter().any(|s| !(*s > 0.0 && s.is_finite()))
        {
            return Err(Error::InvalidArgument {
                name: "gaussian".into(),
                message: "need a non-empty finite mean and positive finite standard deviations"
                    .into(),
            });
        }
        let log_norm = -std.iter().map(|s| s.ln()).sum::<f64>()
            - 0.5 * mean.len() as f64 * (2.0 * std::f64::consts::PI).ln();
        Ok(Self {
            mean,
            std,
            log_norm,
        })
    }

    /// The same σ on every coordinate.
    ///
    /// # Errors
    /// As [`DiagonalGaussian::new`].
    pub fn isotropic(mean: Vec<f64>, std: f64) -> Result<Self> {
        let n = mean.len();
        Self::new(mean, vec![std; n])
    }

    fn log_density(&self, x: &[f64]) -> f64 {
        self.log_norm
            - 0.5
                * x.iter()
                    .zip(self.mean.iter().zip(&self.std))
                    .map(|(x, (m, s))| ((x - m) / s).powi(2))
                    .sum::<f64>()
    }
}

impl Generator for DiagonalGaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples> {
        let d = self.mean.len();
        let mut x = Vec::with_capacity(n * d);
        let mut log_q = Vec::with_capacity(n);
        for _ in 0..n {
            let start = x.len();
            for (m, s) in self.mean.iter().zip(&self.std) {
                let e: f64 = StandardNormal.sample(rng);
                x.push(m + s * e);
            }
            log_q.push(self.log_density(&x[start..]));
        }
        Ok(Samples { dim: d, x, log_q })
    }

    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        let d = self.mean.len();
        if x.len() % d != 0 {
            return Err(Error::Dimension {
                what: "configuration batch (length must be a multiple of the dimension)".into(),
                expected: d,
                got: x.len(),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "coordinate".into(),
                index,
            });
        }
        Ok(x.chunks_exact(d).map(|c| self.log_density(c)).collect())
    }

    fn exact_density(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn samples_have_the_right_moments_and_log_q() {
        let q = DiagonalGaussian::new(vec![1.0, -2.0], vec![0.5, 3.0]).unwrap();
        let s = q.sample(100_000, &mut stream(1, 0)).unwrap();
        for i in 0..2 {
            let v: Vec<f64> = s.x.chunks_exact(2).map(|c| c[i]).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64;
            let (mu, sd) = ([1.0, -2.0][i], [0.5, 3.0][i]);
            // 5 standard errors of the mean and of the variance (√(2/N) σ²).
            assert!((m - mu).abs() < 5.0 * sd / 316.2, "{m}");
            assert!(
                (var / (sd * sd) - 1.0).abs() < 5.0 * (2.0f64 / 1e5).sqrt(),
                "{var}"
            );
        }
        let again = q.log_prob(&s.x[..20]).unwrap();
        assert_eq!(again, s.log_q[..10].to_vec());
        assert!(q.log_prob(&[1.0, f64::NAN]).is_err());
        assert!(q.log_prob(&[1.0, 2.0, 3.0]).is_err());
        assert!(DiagonalGaussian::new(vec![0.0], vec![0.0]).is_err());
    }
}
