//! Integrated autocorrelation times and effective sample sizes of chain series.
//!
//! `τ = 1 + 2 Σ_{t=1}^{M} ρ(t)`, where ρ is the normalised autocorrelation function and the
//! window M is Sokal's automatic choice: the smallest M with `M ≥ c τ(M)`, c = 5. For
//! several chains the autocovariances (each about its own chain mean) are averaged before
//! normalising, so τ describes the kernel rather than one chain's luck. ESS = N / τ, and the
//! standard error of a chain average is `sqrt(var · τ / N)`.

use rustfft::{num_complex::Complex, FftPlanner};
use serde::{Deserialize, Serialize};

use super::convergence::split_rhat;
use crate::error::{Error, Result};

/// Sokal's window constant.
const WINDOW_C: f64 = 5.0;

/// An integrated autocorrelation time and the window it was summed over.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Iat {
    /// τ, in steps of the series (≥ 0; 1 for independent draws).
    pub tau: f64,
    /// The window M.
    pub window: usize,
    /// False when no M up to the series length satisfied `M ≥ c τ(M)`: the series is too
    /// short for a reliable τ (it is then a lower bound).
    pub converged: bool,
}

/// The normalised autocorrelation function ρ(0..n) of one series, by FFT (O(n log n)),
/// with the biased (1/n) autocovariance estimator.
pub fn autocorrelation(series: &[f64]) -> Vec<f64> {
    let acov = autocovariance(series);
    let c0 = acov.first().copied().unwrap_or(0.0);
    if c0 <= 0.0 {
        let mut rho = vec![0.0; acov.len()];
        if let Some(r) = rho.first_mut() {
            *r = 1.0;
        }
        return rho;
    }
    acov.iter().map(|c| c / c0).collect()
}

fn autocovariance(series: &[f64]) -> Vec<f64> {
    let n = series.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = series.iter().sum::<f64>() / n as f64;
    let len = (2 * n).next_power_of_two();
    let mut buf: Vec<Complex<f64>> = series
        .iter()
        .map(|v| Complex::new(v - mean, 0.0))
        .chain(std::iter::repeat(Complex::new(0.0, 0.0)))
        .take(len)
        .collect();
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(len).process(&mut buf);
    for v in &mut buf {
        *v = Complex::new(v.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(len).process(&mut buf);
    // rustfft does not normalise: divide by len for the inverse, by n for the estimator.
    buf[..n]
        .iter()
        .map(|v| v.re / (len as f64 * n as f64))
        .collect()
}

/// τ of one or more chains of the same observable (chains may differ in length; the
/// averaged function is cut at the shortest).
///
/// # Errors
/// [`Error::InvalidArgument`] for no chains or a chain shorter than 2.
pub fn integrated_time(chains: &[&[f64]]) -> Result<Iat> {
    let shortest = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    if shortest < 2 {
        return Err(Error::InvalidArgument {
            name: "chains".into(),
            message: "need at least one chain of length 2 or more".into(),
        });
    }
    let mut acov = vec![0.0; shortest];
    for c in chains {
        for (a, v) in acov.iter_mut().zip(autocovariance(c)) {
            *a += v;
        }
    }
    if acov[0] <= 0.0 {
        // A constant series: every draw is the same, no information beyond one.
        return Ok(Iat {
            tau: shortest as f64,
            window: 0,
            converged: false,
        });
    }
    let mut tau = 1.0;
    for m in 1..shortest {
        tau += 2.0 * acov[m] / acov[0];
        if m as f64 >= WINDOW_C * tau {
            return Ok(Iat {
                tau: tau.max(f64::MIN_POSITIVE),
                window: m,
                converged: true,
            });
        }
    }
    Ok(Iat {
        tau: tau.max(1.0),
        window: shortest - 1,
        converged: false,
    })
}

/// A chain average with its error bar and convergence diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// The average over all chains.
    pub mean: f64,
    /// Its standard error, `sqrt(var τ / N)`.
    pub std_error: f64,
    /// Sample variance over all chains.
    pub variance: f64,
    /// The integrated autocorrelation time.
    pub iat: Iat,
    /// Effective sample size over all chains, N / τ.
    pub ess: f64,
    /// Per chain: its length over its own τ (NaN for a chain shorter than 2).
    pub ess_per_chain: Vec<f64>,
    /// Split-R̂ (needs ≥ 4 draws per chain; NaN otherwise).
    pub split_rhat: f64,
}

/// Mean, error bar, τ, ESS and split-R̂ of an observable recorded by several chains.
///
/// # Errors
/// As [`integrated_time`].
pub fn summarize(chains: &[&[f64]]) -> Result<SeriesSummary> {
    let iat = integrated_time(chains)?;
    let n: usize = chains.iter().map(|c| c.len()).sum();
    let mean = chains.iter().flat_map(|c| c.iter()).sum::<f64>() / n as f64;
    let variance = chains
        .iter()
        .flat_map(|c| c.iter())
        .map(|v| (v - mean).powi(2))
        .sum::<f64>()
        / (n as f64 - 1.0);
    let ess = n as f64 / iat.tau;
    Ok(SeriesSummary {
        mean,
        std_error: (variance / ess).sqrt(),
        variance,
        iat,
        ess,
        ess_per_chain: chains
            .iter()
            .map(|c| integrated_time(&[c]).map_or(f64::NAN, |i| c.len() as f64 / i.tau))
            .collect(),
        split_rhat: split_rhat(chains).unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    /// AR(1) `x_t = φ x_{t−1} + ξ_t` has ρ(t) = φ^t and τ = (1 + φ)/(1 − φ).
    fn ar1(phi: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = stream(seed, 0);
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                x = phi * x + e;
                x
            })
            .collect()
    }

    #[test]
    fn fft_autocorrelation_matches_the_direct_sum() {
        let x = ar1(0.5, 300, 1);
        let rho = autocorrelation(&x);
        let n = x.len();
        let m = x.iter().sum::<f64>() / n as f64;
        let c = |t: usize| (0..n - t).map(|i| (x[i] - m) * (x[i + t] - m)).sum::<f64>() / n as f64;
        for t in [0, 1, 5, 50, 299] {
            assert!((rho[t] - c(t) / c(0)).abs() < 1e-12, "lag {t}");
        }
    }

    #[test]
    fn ar1_tau_matches_the_closed_form() {
        for (phi, seed) in [(0.0, 2), (0.5, 3), (0.9, 4)] {
            let chains: Vec<Vec<f64>> = (0..4).map(|c| ar1(phi, 50_000, seed + 10 * c)).collect();
            let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
            let iat = integrated_time(&refs).unwrap();
            let exact = (1.0 + phi) / (1.0 - phi);
            // Sokal's estimator has relative sd ≈ sqrt(2(2M + 1)/N) (Madras & Sokal 1988):
            // 0.01 for φ = 0, 0.045 for φ = 0.9 here. Allow 4 sd.
            let rel_sd = (2.0 * (2.0 * iat.window as f64 + 1.0) / 200_000.0).sqrt();
            assert!(iat.converged);
            assert!(
                (iat.tau / exact - 1.0).abs() < 4.0 * rel_sd,
                "phi {phi}: {} vs {exact} (relative sd {rel_sd})",
                iat.tau
            );
        }
    }

    #[test]
    fn summary_error_bar_covers_the_true_mean() {
        let x = ar1(0.8, 100_000, 7);
        let s = summarize(&[&x]).unwrap();
        assert!(s.mean.abs() < 4.0 * s.std_error, "{s:?}");
        // var of AR(1) with unit noise: 1/(1 − φ²).
        assert!((s.variance - 1.0 / (1.0 - 0.64)).abs() < 0.1);
        assert!((s.ess - 100_000.0 / 9.0).abs() < 0.15 * 100_000.0 / 9.0);
        assert_eq!(s.ess_per_chain, vec![s.ess]);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(integrated_time(&[]).is_err());
        assert!(integrated_time(&[&[1.0]]).is_err());
        let constant = integrated_time(&[&[2.0; 10]]).unwrap();
        assert!(!constant.converged);
    }
}
