//! Split-R̂: do several chains agree with each other and with their own halves?

use crate::error::{Error, Result};

/// Split-R̂ (Gelman et al., *Bayesian Data Analysis*, 3rd ed., §11.4): each chain is cut in
/// half, and with W the mean within-half variance and B/n the variance of the half means,
/// `R̂ = sqrt(((n − 1)/n · W + B/n) / W)`. Values near 1 (below ≈ 1.01) mean the chains have
/// mixed; a chain stuck in another mode, or a trend within chains, raises it.
///
/// Chains are cut to the shortest length (rounded down to even).
///
/// # Errors
/// [`Error::InvalidArgument`] if there is no chain or the shortest has fewer than 4 draws.
pub fn split_rhat(chains: &[&[f64]]) -> Result<f64> {
    let shortest = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    let n = shortest / 2;
    if n < 2 {
        return Err(Error::InvalidArgument {
            name: "chains".into(),
            message: "split-R̂ needs at least one chain of 4 or more draws".into(),
        });
    }
    let halves: Vec<&[f64]> = chains
        .iter()
        .flat_map(|c| [&c[..n], &c[n..2 * n]])
        .collect();
    let means: Vec<f64> = halves
        .iter()
        .map(|h| h.iter().sum::<f64>() / n as f64)
        .collect();
    let m = halves.len() as f64;
    let grand = means.iter().sum::<f64>() / m;
    let b = n as f64 * means.iter().map(|v| (v - grand).powi(2)).sum::<f64>() / (m - 1.0);
    let w = halves
        .iter()
        .zip(&means)
        .map(|(h, mean)| h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0))
        .sum::<f64>()
        / m;
    if w <= 0.0 {
        return Ok(if b > 0.0 { f64::INFINITY } else { 1.0 });
    }
    let var_plus = (n as f64 - 1.0) / n as f64 * w + b / n as f64;
    Ok((var_plus / w).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    fn normal(n: usize, shift: f64, seed: u64) -> Vec<f64> {
        let mut rng = stream(seed, 0);
        (0..n)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                shift + e
            })
            .collect()
    }

    #[test]
    fn mixed_chains_are_near_one_and_a_stuck_chain_is_not() {
        let a = normal(5000, 0.0, 1);
        let b = normal(5000, 0.0, 2);
        let r = split_rhat(&[&a, &b]).unwrap();
        assert!((r - 1.0).abs() < 0.01, "{r}");
        let stuck = normal(5000, 3.0, 3);
        assert!(split_rhat(&[&a, &stuck]).unwrap() > 1.5);
        // A trend inside one chain is caught by the split.
        let trend: Vec<f64> = (0..5000).map(|i| i as f64 / 1000.0).collect();
        assert!(split_rhat(&[&trend]).unwrap() > 1.5);
    }

    #[test]
    fn too_short_is_an_error() {
        assert!(split_rhat(&[&[1.0, 2.0, 3.0]]).is_err());
        assert!(split_rhat(&[]).is_err());
    }
}
