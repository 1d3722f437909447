//! Importance weights of direct generator draws: `log w = −βU(x) − log q(x)`.
//!
//! From them: the Kish effective sample size, `log Ẑ = logsumexp(log w) − ln N` with a
//! delta-method or bootstrap standard error, self-normalised expectations with error bars,
//! free-energy differences between states and profiles along a collective variable, and
//! systematic resampling into unweighted samples. [`balance`] splits the draws between
//! regions by thinning them region by region, with the thinning in every weight.
//!
//! Draws with infinite energy keep weight 0 (dropping them would bias Ẑ upwards); draws with
//! NaN energy or non-finite log q cannot be weighted at all, and are counted in
//! [`ImportanceWeights::invalid`] for the report to show.

pub mod balance;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::ChainRng;

/// A set of log importance weights, with the count of draws that had to be excluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportanceWeights {
    log_w: Vec<f64>,
    /// Draws whose energy was +∞ (weight exactly 0): kept, since dropping them would bias Ẑ.
    zero_weight: usize,
    /// Draws whose energy or log q was NaN, or log q infinite: these cannot be weighted; the
    /// estimates are invalid if any occur, so they are counted and reported, not hidden.
    invalid: usize,
    /// Draws thinned away before weighting ([`with_rejected`](Self::with_rejected)): they
    /// count as zero weights in `Ẑ`, and nowhere else.
    #[serde(default)]
    rejected: usize,
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
            rejected: 0,
            max,
            sum,
            sum_sq,
        })
    }

    /// Marks these draws as the ones kept, by independent thinning, of `rejected` more
    /// generator draws: draw `i` was kept with probability `a_i > 0`, and the `log q` it was
    /// weighted with is `log q(x_i) + ln a_i`. Then `wᵢ/aᵢ` over the kept draws and 0 over
    /// the rejected ones are the Horvitz–Thompson terms of all the generator's draws, so
    /// [`log_z`](Self::log_z) and [`log_z_bootstrap`](Self::log_z_bootstrap) average over
    /// both; self-normalised estimates and the ESS use the kept draws alone (the constant
    /// cancels in them).
    pub fn with_rejected(mut self, rejected: usize) -> Self {
        self.rejected = rejected;
        self
    }

    /// Draws thinned away before weighting (see [`with_rejected`](Self::with_rejected)).
    pub fn rejected(&self) -> usize {
        self.rejected
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

    /// Kish effective sample size of the draws with `inside[i]` alone, `(Σ_in w)² / Σ_in w²`
    /// (0 when none of them has weight). A region's probability rests on these draws: with a
    /// handful of them its delta-method error bar cannot be trusted, however small it is.
    ///
    /// # Errors
    /// [`Error::Dimension`] if `inside` has the wrong length.
    pub fn ess_within(&self, inside: &[bool]) -> Result<f64> {
        self.check_len("region membership", inside.len())?;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for (&l, _) in self.log_w.iter().zip(inside).filter(|(_, &i)| i) {
            if !l.is_nan() {
                let w = (l - self.max).exp();
                sum += w;
                sum_sq += w * w;
            }
        }
        Ok(if sum_sq > 0.0 {
            sum * sum / sum_sq
        } else {
            0.0
        })
    }

    /// `log Ẑ = logsumexp(log w) − ln N`, an estimate of `ln ∫ exp(−βU)`; its standard error
    /// by the delta method, `sd(w) / (mean(w) √N)`. `N` counts the rejected draws of a
    /// thinned set ([`with_rejected`](Self::with_rejected)) with weight 0.
    pub fn log_z(&self) -> Estimate {
        let n = (self.valid() + self.rejected) as f64;
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

/// One bin of a free-energy profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileBin {
    /// Centre of the bin.
    pub center: f64,
    /// `F = −(1/β) ln(P_bin / width)`, shifted so that the lowest bin is 0; +∞ for an empty bin.
    pub free_energy: f64,
    /// Delta-method standard error of `free_energy` (of the unshifted value).
    pub std_error: f64,
    /// Probability of the bin, self-normalised.
    pub probability: f64,
}

impl ImportanceWeights {
    /// Normalised weights `wᵢ / Σw` (0 for zero-weight and invalid draws).
    pub fn normalized(&self) -> Vec<f64> {
        self.log_w
            .iter()
            .map(|&l| {
                if l.is_nan() {
                    0.0
                } else {
                    (l - self.max).exp() / self.sum
                }
            })
            .collect()
    }

    /// `log Ẑ` with a bootstrap standard error from `resamples` resamples of the draws (drawn
    /// from `rng`), for when the delta method is doubtful (few effective draws, heavy tails).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for fewer than 2 resamples.
    pub fn log_z_bootstrap(&self, resamples: usize, rng: &mut ChainRng) -> Result<Estimate> {
        if resamples < 2 {
            return Err(Error::InvalidArgument {
                name: "resamples".into(),
                message: "need at least 2".into(),
            });
        }
        let w: Vec<f64> = self
            .log_w
            .iter()
            .filter(|l| !l.is_nan())
            .map(|&l| (l - self.max).exp())
            .collect();
        // Rejected draws of a thinned set are the indices past the kept ones: weight 0.
        let n = w.len() + self.rejected;
        let estimates: Vec<f64> = (0..resamples)
            .map(|_| {
                let s: f64 = (0..n)
                    .map(|_| w.get(rng.random_range(0..n)).copied().unwrap_or(0.0))
                    .sum();
                self.max + (s / n as f64).ln()
            })
            .collect();
        let finite: Vec<f64> = estimates.into_iter().filter(|v| v.is_finite()).collect();
        let m = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        let var = finite.iter().map(|v| (v - m).powi(2)).sum::<f64>()
            / (finite.len() as f64 - 1.0).max(1.0);
        Ok(Estimate {
            value: self.log_z().value,
            std_error: var.sqrt(),
        })
    }

    fn check_len(&self, what: &str, len: usize) -> Result<()> {
        if len != self.log_w.len() {
            return Err(Error::Dimension {
                what: format!("{what} against draws"),
                expected: self.log_w.len(),
                got: len,
            });
        }
        Ok(())
    }

    /// `ΔF = F_B − F_A = −(1/β) ln(P_B / P_A)` between two states given by per-draw
    /// membership, with the delta-method error `sd(ln R) / β`,
    /// `var(ln R) ≈ Σ wᵢ² (1_B(i)/S_B − 1_A(i)/S_A)²`, `S_X = Σ wᵢ 1_X(i)`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for wrong lengths; [`Error::InvalidArgument`] if a state has no
    /// weight (its free energy is not estimable from these draws).
    pub fn free_energy_difference(
        &self,
        beta: f64,
        in_a: &[bool],
        in_b: &[bool],
    ) -> Result<Estimate> {
        self.check_len("state A membership", in_a.len())?;
        self.check_len("state B membership", in_b.len())?;
        let w = self.normalized();
        let s_a: f64 = w.iter().zip(in_a).filter(|(_, &a)| a).map(|(w, _)| w).sum();
        let s_b: f64 = w.iter().zip(in_b).filter(|(_, &b)| b).map(|(w, _)| w).sum();
        if s_a <= 0.0 || s_b <= 0.0 {
            return Err(Error::InvalidArgument {
                name: "states".into(),
                message: format!(
                    "state {} has no weight among the draws",
                    if s_a <= 0.0 { "A" } else { "B" }
                ),
            });
        }
        let var: f64 = w
            .iter()
            .zip(in_a.iter().zip(in_b))
            .map(|(w, (&a, &b))| {
                let g = f64::from(u8::from(b)) / s_b - f64::from(u8::from(a)) / s_a;
                w * w * g * g
            })
            .sum();
        Ok(Estimate {
            value: -(s_b / s_a).ln() / beta,
            std_error: var.sqrt() / beta,
        })
    }

    /// The free-energy profile along a collective variable `cv` (one value per draw) over
    /// the bins between consecutive `edges`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for a wrong `cv` length; [`Error::InvalidArgument`] for fewer
    /// than two edges or edges that do not increase.
    pub fn free_energy_profile(
        &self,
        beta: f64,
        cv: &[f64],
        edges: &[f64],
    ) -> Result<Vec<ProfileBin>> {
        self.check_len("collective variable", cv.len())?;
        if edges.len() < 2
            || edges
                .windows(2)
                .any(|e| e[1].partial_cmp(&e[0]) != Some(std::cmp::Ordering::Greater))
        {
            return Err(Error::InvalidArgument {
                name: "edges".into(),
                message: "need at least two strictly increasing bin edges".into(),
            });
        }
        let w = self.normalized();
        let nb = edges.len() - 1;
        let mut p = vec![0.0; nb];
        let mut bin_of = vec![None; cv.len()];
        for (i, &v) in cv.iter().enumerate() {
            if v >= edges[0] && v < edges[nb] {
                let b = edges.partition_point(|&e| e <= v) - 1;
                bin_of[i] = Some(b);
                p[b] += w[i];
            }
        }
        // var(P_b) ≈ Σ wᵢ² (1_b(i) − P_b)² for self-normalised weights; F = −ln P / β.
        let mut var = vec![0.0; nb];
        for (i, wi) in w.iter().enumerate() {
            if *wi == 0.0 {
                continue;
            }
            for (b, v) in var.iter_mut().enumerate() {
                let ind = if bin_of[i] == Some(b) { 1.0 } else { 0.0 };
                *v += wi * wi * (ind - p[b]).powi(2);
            }
        }
        let raw: Vec<f64> = (0..nb)
            .map(|b| -(p[b] / (edges[b + 1] - edges[b])).ln() / beta)
            .collect();
        let lowest = raw.iter().copied().fold(f64::INFINITY, f64::min);
        Ok((0..nb)
            .map(|b| ProfileBin {
                center: 0.5 * (edges[b] + edges[b + 1]),
                free_energy: raw[b] - lowest,
                std_error: if p[b] > 0.0 {
                    var[b].sqrt() / (p[b] * beta)
                } else {
                    f64::INFINITY
                },
                probability: p[b],
            })
            .collect())
    }

    /// Systematic resampling: `n` draw indices, each draw appearing ⌊n wᵢ⌋ or ⌈n wᵢ⌉ times,
    /// from a single uniform offset. The indices, read as unweighted samples, follow the
    /// reweighted distribution (with the duplicates that a low ESS implies).
    pub fn systematic_resample(&self, n: usize, rng: &mut ChainRng) -> Vec<usize> {
        let w = self.normalized();
        let offset: f64 = rng.random::<f64>();
        let mut out = Vec::with_capacity(n);
        let mut cumulative = 0.0;
        let mut i = 0;
        for k in 0..n {
            let u = (k as f64 + offset) / n as f64;
            while i + 1 < w.len() && cumulative + w[i] <= u {
                cumulative += w[i];
                i += 1;
            }
            out.push(i);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn equal_weights_give_full_ess_and_the_plain_mean() {
        let w = ImportanceWeights::new(1.0, &[1.0; 4], &[-1.0; 4]).unwrap();
        assert!((w.ess() - 4.0).abs() < 1e-12);
        assert!((w.log_z().value - 0.0).abs() < 1e-12);
        let e = w.expectation(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((e.value - 2.5).abs() < 1e-12);
    }

    #[test]
    fn ess_within_a_region_counts_only_its_weights() {
        // Weights 1, 1, 2, 2, NaN: the region {0, 2, 4} holds weights 1 and 2 (the invalid
        // draw counts for nothing), Kish (1 + 2)² / (1 + 4) = 1.8.
        let w = ImportanceWeights::new(
            1.0,
            &[0.0, 0.0, 0.0, 0.0, f64::NAN],
            &[0.0, 0.0, -(2f64.ln()), -(2f64.ln()), 0.0],
        )
        .unwrap();
        let region = [true, false, true, false, true];
        assert!((w.ess_within(&region).unwrap() - 1.8).abs() < 1e-12);
        assert!((w.ess_within(&[true; 5]).unwrap() - w.ess()).abs() < 1e-12);
        assert_eq!(w.ess_within(&[false; 5]).unwrap(), 0.0);
        assert!(w.ess_within(&[true; 4]).is_err());
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

    #[test]
    fn free_energy_difference_of_two_equal_states_is_zero_and_of_weighted_is_log_ratio() {
        // Four draws, weights 1, 1, 2, 2 (log q chosen so that −βU − log q = ln w).
        let w = ImportanceWeights::new(1.0, &[0.0; 4], &[0.0, 0.0, -(2f64.ln()), -(2f64.ln())])
            .unwrap();
        let a = [true, true, false, false];
        let b = [false, false, true, true];
        let d = w.free_energy_difference(2.0, &a, &b).unwrap();
        // P_B / P_A = 4 / 2: ΔF = −ln 2 / β.
        assert!((d.value + 2f64.ln() / 2.0).abs() < 1e-12);
        assert!(w.free_energy_difference(1.0, &a, &[false; 4]).is_err());
    }

    #[test]
    fn profile_of_a_uniform_sample_is_flat_and_empty_bins_are_infinite() {
        let cv: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let w = ImportanceWeights::new(1.0, &vec![0.0; 1000], &vec![0.0; 1000]).unwrap();
        let prof = w
            .free_energy_profile(1.0, &cv, &[0.0, 0.25, 0.5, 0.75, 1.0, 2.0])
            .unwrap();
        for b in &prof[..4] {
            assert!(b.free_energy.abs() < 1e-9, "{b:?}");
            assert!((b.probability - 0.25).abs() < 1e-12);
            // Binomial: sd(ln p) = sqrt((1 − p)/(N p)).
            assert!((b.std_error - (0.75f64 / 250.0).sqrt()).abs() < 1e-9);
        }
        assert_eq!(prof[4].free_energy, f64::INFINITY);
    }

    #[test]
    fn systematic_resampling_follows_the_weights() {
        let w = ImportanceWeights::new(1.0, &[0.0, 0.0, f64::INFINITY], &[0.0, -(3f64.ln()), 0.0])
            .unwrap();
        let idx = w.systematic_resample(1000, &mut stream(1, 0));
        let count = |k| idx.iter().filter(|&&i| i == k).count() as f64 / 1000.0;
        let total: f64 = w.normalized().iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        for k in 0..3 {
            assert!((count(k) - w.normalized()[k]).abs() <= 1e-3 + 1e-12, "{k}");
        }
    }

    #[test]
    fn bootstrap_error_agrees_with_the_delta_method_for_many_draws() {
        let mut rng = stream(9, 0);
        let log_q: Vec<f64> = (0..5000).map(|_| -rng.random::<f64>()).collect();
        let w = ImportanceWeights::new(1.0, &vec![0.0; 5000], &log_q).unwrap();
        let b = w.log_z_bootstrap(400, &mut stream(10, 0)).unwrap();
        let d = w.log_z();
        assert_eq!(b.value, d.value);
        // 400 resamples: the bootstrap sd is itself uncertain by ≈ 1/sqrt(2·400) ≈ 4 %.
        assert!(
            (b.std_error / d.std_error - 1.0).abs() < 0.15,
            "{b:?} {d:?}"
        );
    }
}
