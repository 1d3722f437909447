//! Mode coverage of samples against known mode weights.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reweight::ImportanceWeights;

/// One mode's share of the samples against its exact weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeShare {
    /// Fraction of the (unweighted) samples assigned to this mode.
    pub observed: f64,
    /// Importance-weighted fraction, when weights were given.
    pub weighted: Option<f64>,
    /// The exact weight of the mode under the target.
    pub exact: f64,
}

/// How well a set of samples covers the modes of a target with known mode weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeCoverage {
    /// Per mode, in the order of the exact weights.
    pub modes: Vec<ModeShare>,
    /// Modes with positive exact weight that received no sample at all.
    pub missed: usize,
    /// Largest |observed − exact| (or |weighted − exact| when weighted) over the modes.
    pub max_abs_error: f64,
}

/// Assigns each configuration of `x` (`[n × dim]`) to a mode with `assign`, and compares the
/// fractions (raw, and importance-weighted if `weights` is given) with `exact`.
///
/// # Errors
/// [`Error::Dimension`] for mismatched lengths, [`Error::InvalidArgument`] if `assign`
/// returns an index outside `exact`.
pub fn mode_coverage(
    x: &[f64],
    dim: usize,
    assign: impl Fn(&[f64]) -> usize,
    exact: &[f64],
    weights: Option<&ImportanceWeights>,
) -> Result<ModeCoverage> {
    if dim == 0 || x.len() % dim != 0 {
        return Err(Error::Dimension {
            what: "samples (length must be a multiple of dim)".into(),
            expected: dim,
            got: x.len(),
        });
    }
    let n = x.len() / dim;
    if let Some(w) = weights {
        if w.len() != n {
            return Err(Error::Dimension {
                what: "importance weights against samples".into(),
                expected: n,
                got: w.len(),
            });
        }
    }
    let k = exact.len();
    let mut counts = vec![0usize; k];
    let mut indicator = vec![vec![0.0; n]; if weights.is_some() { k } else { 0 }];
    for (i, c) in x.chunks_exact(dim).enumerate() {
        let m = assign(c);
        if m >= k {
            return Err(Error::InvalidArgument {
                name: "assign".into(),
                message: format!("mode {m} assigned, but only {k} exact weights given"),
            });
        }
        counts[m] += 1;
        if weights.is_some() {
            indicator[m][i] = 1.0;
        }
    }
    let mut modes = Vec::with_capacity(k);
    for m in 0..k {
        let weighted = match weights {
            Some(w) => Some(w.expectation(&indicator[m])?.value),
            None => None,
        };
        modes.push(ModeShare {
            observed: counts[m] as f64 / n as f64,
            weighted,
            exact: exact[m],
        });
    }
    let missed = modes
        .iter()
        .zip(&counts)
        .filter(|(s, &c)| s.exact > 0.0 && c == 0)
        .count();
    let max_abs_error = modes
        .iter()
        .map(|s| (s.weighted.unwrap_or(s.observed) - s.exact).abs())
        .fold(0.0, f64::max);
    Ok(ModeCoverage {
        modes,
        missed,
        max_abs_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzgen_potentials::{ExactSampler, GaussianMixture};

    #[test]
    fn exact_gmm40_samples_cover_every_mode() {
        let gmm = GaussianMixture::gmm40();
        let n = 40_000;
        let x = gmm
            .sample_exact(1.0, n, &mut crate::rng::stream(1, 0))
            .unwrap();
        // Nearest-mean assignment: exact weights of those Voronoi cells are not exactly 1/40
        // where means are close, so only coverage is asserted here, not the fractions.
        let exact = vec![1.0 / 40.0; 40];
        let cov = mode_coverage(&x, 2, |c| gmm.nearest_component(c), &exact, None).unwrap();
        assert_eq!(cov.missed, 0);
        assert_eq!(cov.modes.len(), 40);
    }

    #[test]
    fn a_collapsed_sample_misses_modes() {
        let x = vec![-1.0; 100];
        let cov = mode_coverage(&x, 1, |c| (c[0] > 0.0) as usize, &[0.9671, 0.0329], None).unwrap();
        assert_eq!(cov.missed, 1);
        assert!((cov.max_abs_error - 0.0329).abs() < 1e-12);
    }
}
