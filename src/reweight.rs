//! Importance weights of direct generator draws: `log w = −βU(x) − log q(x)`.
//!
//! From them: the Kish effective sample size, `log Ẑ = logsumexp(log w) − ln N` with a
//! delta-method standard error, and self-normalised expectations with error bars.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A set of log importance weights, with the count of draws that had to be excluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportanceWeights {
    log_w: Vec<f64>,
    /// Draws whose energy was +∞ (weight exactly 0): kept, since dropping them would bias Ẑ.
    zero_weight: usize,
    /// Draws whose energy or log q was NaN, or log q infinite: these cannot be weighted; the
    /// estimates are invalid if any occur, so they are counted and reported, not hidden.
    invalid: usize,
    max: f64,
    sum: f64,
    sum_sq: f64,
}

/// An estimate and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The value.
    pub value: f64,
    /// One standard error.
    pub std_error: f64,
}

impl ImportanceWeights {
    /// Weights `log w_i = −β u_i − log q_i` from energies and generator log-densities.
    ///
    /// # Errors
    /// [`Error::Dimension`] if the lengths differ, [`Error::InvalidArgument`] if no draw has a
    /// positive weight.
    pub fn new(beta: f64, energies: &[f64], log_q: &[f64]) -> Result<Self> {
        if energies.len() != log_q.len() {
            return Err(Error::Dimension {
                what: "log q against energies".into(),
                expected: energies.len(),
                got: log_q.len(),
            });
        }
        let mut log_w = Vec::with_capacity(energies.len());
        let (mut zero_weight, mut invalid) = (0, 0);
        for (&u, &lq) in energies.iter().zip(log_q) {
            if u.is_nan() || !lq.is_finite() {
                invalid += 1;
                log_w.push(f64::NAN);
            } else if u == f64::INFINITY {
                zero_weight += 1;
                log_w.push(f64::NEG_INFINITY);
            } else {
                log_w.push(-beta * u - lq);
            }
        }
        let max = log_w
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return Err(Error::InvalidArgument {
                name: "energies".into(),
                message: "no draw has a finite, positive importance weight".into(),
            });
        }
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for &l in log_w.iter().filter(|v| !v.is_nan()) {
            let w = (l - max).exp();
            sum += w;
            sum_sq += w * w;
        }
        Ok(Self {
            log_w,
            zero_weight,
            invalid,
            max,
            sum,
            sum_sq,
        })
    }

    /// Number of draws (including zero-weight and invalid ones).
    pub fn len(&self) -> usize {
        self.log_w.len()
    }

    /// True when there are no draws.
    pub fn is_empty(&self) -> bool {
        self.log_w.is_empty()
    }

    /// Draws with infinite energy (weight 0).
    pub fn zero_weight(&self) -> usize {
        self.zero_weight
    }

    /// Draws that could not be weighted (NaN energy, non-finite log q).
    pub fn invalid(&self) -> usize {
        self.invalid
    }

    /// The log-weights (NaN for invalid draws).
    pub fn log_weights(&self) -> &[f64] {
        &self.log_w
    }

    fn valid(&self) -> usize {
        self.log_w.len() - self.invalid
    }

    /// Kish effective sample size `(Σw)² / Σw²`.
    pub fn ess(&self) -> f64 {
        self.sum * self.sum / self.sum_sq
    }

    /// ESS as a fraction of the number of weighted draws.
    pub fn ess_fraction(&self) -> f64 {
        self.ess() / self.valid() as f64
    }

    /// `log Ẑ = logsumexp(log w) − ln N`, an estimate of `ln ∫ exp(−βU)`; its standard error
    /// by the delta method, `sd(w) / (mean(w) √N)`.
    pub fn log_z(&self) -> Estimate {
        let n = self.valid() as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0) * n / (n - 1.0).max(1.0);
        Estimate {
            value: self.max + mean.ln(),
            std_error: (var / n).sqrt() / mean,
        }
    }

    /// The self-normalised estimate of ⟨f⟩ under exp(−βU) from per-draw values `f`, with its
    /// delta-method standard error `√(Σ wᵢ² (fᵢ − ⟨f⟩)²) / Σ wᵢ`.
    ///
    /// # Errors
    /// [`Error::Dimension`] if `f` has the wrong length.
    pub fn expectation(&self, f: &[f64]) -> Result<Estimate> {
        if f.len() != self.log_w.len() {
            return Err(Error::Dimension {
                what: "observable values against draws".into(),
                expected: self.log_w.len(),
                got: f.len(),
            });
        }
        let mut num = 0.0;
        for (&l, &fi) in self.log_w.iter().zip(f) {
            if !l.is_nan() && l > f64::NEG_INFINITY {
                num += (l - self.max).exp() * fi;
            }
        }
        let mean = num / self.sum;
        let mut var = 0.0;
        for (&l, &fi) in self.log_w.iter().zip(f) {
            if !l.is_nan() && l > f64::NEG_INFINITY {
                let w = (l - self.max).exp();
                var += w * w * (fi - mean) * (fi - mean);
            }
        }
        Ok(Estimate {
            value: mean,
            std_error: var.sqrt() / self.sum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_give_full_ess_and_the_plain_mean() {
        let w = ImportanceWeights::new(1.0, &[1.0; 4], &[-1.0; 4]).unwrap();
        assert!((w.ess() - 4.0).abs() < 1e-12);
        assert!((w.log_z().value - 0.0).abs() < 1e-12);
        let e = w.expectation(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((e.value - 2.5).abs() < 1e-12);
    }

    #[test]
    fn infinite_energies_count_as_zero_weight_and_nan_as_invalid() {
        let w =
            ImportanceWeights::new(1.0, &[0.0, f64::INFINITY, f64::NAN], &[0.0, 0.0, 0.0]).unwrap();
        assert_eq!(w.zero_weight(), 1);
        assert_eq!(w.invalid(), 1);
        // Ẑ = (1 + 0) / 2: the zero-weight draw stays in the denominator.
        assert!((w.log_z().value - 0.5f64.ln()).abs() < 1e-12);
        assert!(ImportanceWeights::new(1.0, &[f64::INFINITY], &[0.0]).is_err());
    }
}
