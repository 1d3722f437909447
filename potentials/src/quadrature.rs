//! Numerical integration and exact sampling of one-dimensional Boltzmann factors.
//!
//! These are the yardsticks of the project: the exact log Z of the double-well and ManyWell
//! targets, their marginals, and exact samples to compare learned generators against.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use crate::error::{invalid, Result};

/// `log ∫_lo^hi exp(log_f(x)) dx` by composite Simpson on `n` intervals (`n` rounded up to even).
///
/// The integrand is shifted by its maximum on the grid, so `log_f` may take values far beyond
/// the range of `exp`. For smooth integrands that decay to zero at both ends the error falls
/// much faster than Simpson's nominal h⁴.
pub fn log_integrate_1d(log_f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
    let n = (n.max(2) + 1) & !1;
    let h = (hi - lo) / n as f64;
    let values: Vec<f64> = (0..=n).map(|i| log_f(lo + i as f64 * h)).collect();
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let w = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * (v - max).exp()
        })
        .sum();
    max + (sum * h / 3.0).ln()
}

/// `log ∫∫ exp(log_f(x, y)) dx dy` over a rectangle by the tensor-product Simpson rule,
/// `n × n` intervals.
pub fn log_integrate_2d(
    log_f: impl Fn(f64, f64) -> f64,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
    n: usize,
) -> f64 {
    let n = (n.max(2) + 1) & !1;
    let hy = (y_hi - y_lo) / n as f64;
    // Integrate over x for each y row, then over y: each row's log-integral keeps its own
    // shift, so nothing underflows.
    let rows: Vec<f64> = (0..=n)
        .map(|j| {
            let y = y_lo + j as f64 * hy;
            log_integrate_1d(|x| log_f(x, y), x_lo, x_hi, n)
        })
        .collect();
    let max = rows.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = rows
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let w = if j == 0 || j == n {
                1.0
            } else if j % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * (v - max).exp()
        })
        .sum();
    max + (sum * hy / 3.0).ln()
}

/// Simpson intervals used for the quartic factor: with the range cut where the Boltzmann
/// factor has fallen by e⁻⁶⁰, 20 000 intervals put the error below 1e-12.
const QUARTIC_INTERVALS: usize = 20_000;
/// How far (in units of βf) the integration range extends above the minimum.
const QUARTIC_DEPTH: f64 = 60.0;

/// The quartic `f(x) = a x⁴ − b x² + c x` (with `a > 0`) and its Boltzmann factor
/// `exp(−β f(x))`, the one-dimensional building block of the double-well and ManyWell targets.
///
/// ```
/// use boltzgen_potentials::quadrature::Quartic1D;
/// let f = Quartic1D::new(1.0, 6.0, -0.5).unwrap();
/// // ln ∫ exp(−(x⁴ − 6x² − 0.5x)) dx, the per-pair constant of ManyWell.
/// let log_z = f.log_normalizer(1.0).unwrap();
/// assert!((log_z + 0.5 * (2.0 * std::f64::consts::PI).ln() - 164.696 / 16.0).abs() < 1e-3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quartic1D {
    /// Quartic coefficient (> 0).
    pub a: f64,
    /// Quadratic coefficient (enters with a minus sign).
    pub b: f64,
    /// Linear (tilt) coefficient.
    pub c: f64,
}

impl Quartic1D {
    /// A quartic with `a > 0` and finite `b`, `c`.
    ///
    /// # Errors
    /// `InvalidParameter` otherwise.
    pub fn new(a: f64, b: f64, c: f64) -> Result<Self> {
        if !(a > 0.0 && a.is_finite()) {
            return Err(invalid(
                "a",
                format!("must be positive and finite, got {a}"),
            ));
        }
        if !b.is_finite() {
            return Err(invalid("b", format!("must be finite, got {b}")));
        }
        if !c.is_finite() {
            return Err(invalid("c", format!("must be finite, got {c}")));
        }
        Ok(Self { a, b, c })
    }

    /// f(x).
    #[inline]
    pub fn value(&self, x: f64) -> f64 {
        let x2 = x * x;
        self.a * x2 * x2 - self.b * x2 + self.c * x
    }

    /// f'(x).
    #[inline]
    pub fn derivative(&self, x: f64) -> f64 {
        4.0 * self.a * x * x * x - 2.0 * self.b * x + self.c
    }

    /// f''(x).
    #[inline]
    pub fn second_derivative(&self, x: f64) -> f64 {
        12.0 * self.a * x * x - 2.0 * self.b
    }

    /// The local minima of f, sorted, found as the real roots of f' where f'' > 0.
    pub fn minima(&self) -> Vec<f64> {
        // f' is a cubic with positive leading coefficient: bracket its roots on a grid wide
        // enough to hold all of them (Cauchy's bound), then bisect.
        let (a3, a1, a0) = (4.0 * self.a, -2.0 * self.b, self.c);
        let bound = 1.0 + (a1.abs().max(a0.abs()) / a3);
        let n = 4000;
        let h = 2.0 * bound / n as f64;
        let mut minima = Vec::new();
        for i in 0..n {
            let (mut lo, mut hi) = (-bound + i as f64 * h, -bound + (i + 1) as f64 * h);
            let (flo, fhi) = (self.derivative(lo), self.derivative(hi));
            // f' rising through zero is a minimum of f.
            if flo < 0.0 && fhi >= 0.0 {
                for _ in 0..100 {
                    let mid = 0.5 * (lo + hi);
                    if self.derivative(mid) < 0.0 {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                minima.push(0.5 * (lo + hi));
            }
        }
        minima
    }

    /// The interval outside which `β f(x) − β f_min > 60`, so that the Boltzmann factor there
    /// is below e⁻⁶⁰ of its peak.
    pub fn integration_range(&self, beta: f64) -> Result<(f64, f64)> {
        check_beta(beta)?;
        let minima = self.minima();
        let f_min = minima
            .iter()
            .map(|&m| self.value(m))
            .fold(f64::INFINITY, f64::min);
        let above = |x: f64| beta * (self.value(x) - f_min) > QUARTIC_DEPTH;
        let mut hi = minima.last().copied().unwrap_or(0.0) + 0.1;
        while !above(hi) {
            hi += 0.25 * (1.0 + hi.abs());
        }
        let mut lo = minima.first().copied().unwrap_or(0.0) - 0.1;
        while !above(lo) {
            lo -= 0.25 * (1.0 + lo.abs());
        }
        Ok((lo, hi))
    }

    /// `ln ∫ exp(−β f(x)) dx` over the real line.
    ///
    /// # Errors
    /// `InvalidParameter` for a non-positive or non-finite β.
    pub fn log_normalizer(&self, beta: f64) -> Result<f64> {
        let (lo, hi) = self.integration_range(beta)?;
        Ok(log_integrate_1d(
            |x| -beta * self.value(x),
            lo,
            hi,
            QUARTIC_INTERVALS,
        ))
    }

    /// The probability of `lo < x < hi` under the normalised density `∝ exp(−β f(x))`.
    /// Infinite bounds are allowed.
    ///
    /// # Errors
    /// `InvalidParameter` for a bad β or `lo > hi`.
    pub fn probability(&self, lo: f64, hi: f64, beta: f64) -> Result<f64> {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(invalid(
                "interval",
                format!("need lo <= hi, got [{lo}, {hi}]"),
            ));
        }
        let (r_lo, r_hi) = self.integration_range(beta)?;
        let (a, b) = (lo.max(r_lo), hi.min(r_hi));
        if a >= b {
            return Ok(0.0);
        }
        let log_total = self.log_normalizer(beta)?;
        let log_part = log_integrate_1d(|x| -beta * self.value(x), a, b, QUARTIC_INTERVALS);
        Ok((log_part - log_total).exp().min(1.0))
    }

    /// The normalised log-density `−β f(x) − ln Z`.
    ///
    /// # Errors
    /// As [`log_normalizer`](Self::log_normalizer).
    pub fn log_density(&self, x: f64, beta: f64) -> Result<f64> {
        Ok(-beta * self.value(x) - self.log_normalizer(beta)?)
    }

    /// An exact sampler of `∝ exp(−β f(x))`.
    ///
    /// # Errors
    /// `InvalidParameter` for a bad β.
    pub fn sampler(&self, beta: f64) -> Result<QuarticSampler> {
        QuarticSampler::new(*self, beta)
    }
}

pub(crate) fn check_beta(beta: f64) -> Result<()> {
    if beta > 0.0 && beta.is_finite() {
        Ok(())
    } else {
        Err(invalid(
            "beta",
            format!("must be positive and finite, got {beta}"),
        ))
    }
}

/// Exact rejection sampler for `p(x) ∝ exp(−β f(x))` with a [`Quartic1D`] f.
///
/// The envelope is a mixture of Gaussians, one per local minimum of f, with the curvature's
/// width inflated by 1.5 so that it covers the anharmonic shoulders. Since the target decays
/// like exp(−βa x⁴) and each Gaussian only like exp(−x²), the ratio p/g is bounded; its
/// maximum is found on a fine grid over the whole integration range and raised by 10 %, so the
/// envelope dominates everywhere and the accepted samples are exact draws.
#[derive(Debug, Clone)]
pub struct QuarticSampler {
    f: Quartic1D,
    beta: f64,
    /// (mean, std, mixture weight) of each envelope component.
    components: Vec<(f64, f64, f64)>,
    /// `ln M` with `p̃(x) ≤ M g(x)` for the unnormalised target p̃ = exp(−β(f − f_min)).
    log_bound: f64,
    f_min: f64,
}

impl QuarticSampler {
    fn new(f: Quartic1D, beta: f64) -> Result<Self> {
        check_beta(beta)?;
        let minima = f.minima();
        let f_min = minima
            .iter()
            .map(|&m| f.value(m))
            .fold(f64::INFINITY, f64::min);
        let mut components: Vec<(f64, f64, f64)> = minima
            .iter()
            .map(|&m| {
                let std = 1.5 / (beta * f.second_derivative(m)).sqrt();
                let weight = (-beta * (f.value(m) - f_min)).exp() * std;
                (m, std, weight)
            })
            .collect();
        let total: f64 = components.iter().map(|c| c.2).sum();
        for c in &mut components {
            c.2 /= total;
        }
        let mut sampler = Self {
            f,
            beta,
            components,
            log_bound: 0.0,
            f_min,
        };
        let (lo, hi) = f.integration_range(beta)?;
        // Widen the scan beyond the integration range: the ratio keeps falling out there, and
        // scanning it confirms that the tails do not hide a larger maximum.
        let width = hi - lo;
        let (lo, hi) = (lo - 0.5 * width, hi + 0.5 * width);
        let n = 200_000;
        let h = (hi - lo) / n as f64;
        let max_log_ratio = (0..=n)
            .map(|i| {
                let x = lo + i as f64 * h;
                sampler.log_target(x) - sampler.log_envelope(x)
            })
            .fold(f64::NEG_INFINITY, f64::max);
        sampler.log_bound = max_log_ratio + 1.1f64.ln();
        Ok(sampler)
    }

    fn log_target(&self, x: f64) -> f64 {
        -self.beta * (self.f.value(x) - self.f_min)
    }

    fn log_envelope(&self, x: f64) -> f64 {
        let norm = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let terms: Vec<f64> = self
            .components
            .iter()
            .map(|&(m, s, w)| {
                let z = (x - m) / s;
                w.ln() - 0.5 * z * z - s.ln() - norm
            })
            .collect();
        log_sum_exp(&terms)
    }

    /// One exact draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        loop {
            let u: f64 = rng.random();
            let mut k = 0;
            let mut acc = self.components[0].2;
            while u > acc && k + 1 < self.components.len() {
                k += 1;
                acc += self.components[k].2;
            }
            let (m, s, _) = self.components[k];
            let eps: f64 = StandardNormal.sample(rng);
            let x = m + s * eps;
            let log_accept = self.log_target(x) - self.log_envelope(x) - self.log_bound;
            let v: f64 = rng.random();
            if v.ln() < log_accept {
                return x;
            }
        }
    }
}

/// `ln Σ exp(v)`, stable for large and `−∞` entries.
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if max == f64::INFINITY {
        return f64::INFINITY;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simpson_integrates_a_gaussian() {
        let log_z = log_integrate_1d(|x| -0.5 * x * x, -40.0, 40.0, 4000);
        let exact = 0.5 * (2.0 * std::f64::consts::PI).ln();
        assert!((log_z - exact).abs() < 1e-12, "{log_z} vs {exact}");
    }

    #[test]
    fn simpson_2d_integrates_a_correlated_gaussian() {
        // Precision [[2, 1], [1, 2]]: det 3, Z = 2π / √3.
        let log_z = log_integrate_2d(
            |x, y| -0.5 * (2.0 * x * x + 2.0 * x * y + 2.0 * y * y),
            (-20.0, 20.0),
            (-20.0, 20.0),
            800,
        );
        let exact = (2.0 * std::f64::consts::PI).ln() - 0.5 * 3f64.ln();
        assert!((log_z - exact).abs() < 1e-10, "{log_z} vs {exact}");
    }

    #[test]
    fn quartic_minima_of_the_double_well() {
        let f = Quartic1D::new(1.0, 6.0, 1.0).unwrap();
        let minima = f.minima();
        assert_eq!(minima.len(), 2);
        for m in minima {
            assert!(f.derivative(m).abs() < 1e-9);
            assert!(f.second_derivative(m) > 0.0);
        }
    }

    #[test]
    fn quartic_probabilities_add_up() {
        let f = Quartic1D::new(1.0, 6.0, 1.0).unwrap();
        let left = f.probability(f64::NEG_INFINITY, 0.0, 1.0).unwrap();
        let right = f.probability(0.0, f64::INFINITY, 1.0).unwrap();
        assert!((left + right - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_beta() {
        let f = Quartic1D::new(1.0, 6.0, 1.0).unwrap();
        assert!(f.log_normalizer(0.0).is_err());
        assert!(f.log_normalizer(f64::NAN).is_err());
    }
}
