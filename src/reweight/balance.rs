//! Splitting direct draws between regions: stratified thinning of a generator's draws.
//!
//! A flow trained on data splits its mass between metastable states as training left it, not
//! as the Boltzmann distribution does. A flow for alanine dipeptide may put three quarters of
//! its draws in a basin that holds 1 % of the target's weight: those draws cost an energy
//! evaluation each and carry almost no weight. Or it may put 1 % of its draws in a basin
//! whose weight then rests on a few dozen of them. Thinning the flow's draws region by region
//! fixes both, at the price of generator draws (cheap next to the energies they save).
//!
//! **The scheme.** Every draw `x ~ q` falls in one stratum `k(x)`: the first region that
//! contains it, or the rest of the plane. It is kept with probability `a_k ∈ (0, 1]` and
//! weighted with `log q(x) + ln a_k`, over a number `M` of generator draws fixed in advance.
//! The kept draws have density `q(x) a_k / A`, `A = Σ_k Q_k a_k` (`Q_k` the flow's mass in
//! stratum `k`), so the weights `w / a_k` are exact up to the constant `A`, which cancels in
//! every self-normalised estimate. For `Ẑ`, the kept terms `w / a` and a zero for each
//! rejected draw are the Horvitz–Thompson terms of all `M` draws, whose mean is unbiased for
//! `Z` ([`ImportanceWeights::with_rejected`]). No `a_k` is 0, so no part of the flow's support
//! is dropped.
//!
//! **The plan** ([`Plan::from_pilot`]) comes from a pilot of weighted draws, independent of the
//! production draws, so that the `a_k` are constants for them. Per stratum: the target's
//! probability `P_k = Σ_k w / Σ w`, the flow's share `Q_k = n_k / n` and the spread of the
//! weights `c_k = n_k Σ_k w² / (Σ_k w)²` (1 + the χ² divergence of the flow from the target
//! within the stratum). Kept draws split in shares `S_k` have the Kish ESS fraction
//! `1 / Σ_k P_k² c_k / S_k`, largest at `S_k ∝ P_k √c_k`. Every stratum the pilot found is then
//! raised to at least `min_share` (so that its probability rests on draws of its own), and
//! `a_k ∝ S_k / Q_k`, scaled so that the largest is 1 and raised to at least `min_acceptance`.
//! A stratum without pilot draws keeps `a_k = 1`: nothing is thinned that the pilot did not see.
//!
//! **Balanced flow moves** ([`ThinnedGenerator`](crate::generator::ThinnedGenerator)). The same thinning makes a proposal for the
//! flow-independence move of Metropolis–Hastings chains: its density `q(x) a_k(x) / A` enters
//! the Hastings term, where the unknown constant `A` cancels. Chains then propose a rare basin
//! as often as the plan's shares say, not as rarely as the flow does.

use rand::RngExt;
use serde::Serialize;

use super::ImportanceWeights;
use crate::error::{Error, Result};
use crate::generator::thinned::Thinning;
use crate::generator::Generator;
use crate::rng::ChainRng;

/// What the pilot found in one stratum, and the acceptance it gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StratumPlan {
    /// Pilot draws in the stratum.
    pub pilot_draws: usize,
    /// `Q_k`: the flow's share of the pilot draws.
    pub flow_share: f64,
    /// `P_k`: the stratum's probability under exp(−βU), from the pilot's weights.
    pub probability: f64,
    /// `c_k = n_k Σ w² / (Σ w)²` over the stratum (1 + χ² within it; NaN without weight).
    pub spread: f64,
    /// `S_k`: the share of the kept draws aimed at.
    pub target_share: f64,
    /// `a_k`: the probability that a flow draw in the stratum is kept.
    pub acceptance: f64,
}

/// Acceptances per stratum, planned from a pilot (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// One entry per stratum.
    pub strata: Vec<StratumPlan>,
}

impl Plan {
    /// Plans the acceptances from pilot draws: `stratum[i] < n_strata` is the stratum of pilot
    /// draw `i`, `weights` its importance weights.
    ///
    /// # Errors
    /// [`Error::Dimension`] if `stratum` and `weights` differ in length,
    /// [`Error::InvalidArgument`] for a stratum index out of range, `min_share` outside
    /// `[0, 1/n_strata]` or `min_acceptance` outside `(0, 1]`.
    pub fn from_pilot(
        stratum: &[usize],
        n_strata: usize,
        weights: &ImportanceWeights,
        min_share: f64,
        min_acceptance: f64,
    ) -> Result<Self> {
        if stratum.len() != weights.len() {
            return Err(Error::Dimension {
                what: "pilot strata against pilot weights".into(),
                expected: weights.len(),
                got: stratum.len(),
            });
        }
        let invalid = |name: &str, message: String| Error::InvalidArgument {
            name: name.into(),
            message,
        };
        if let Some(&k) = stratum.iter().find(|&&k| k >= n_strata) {
            return Err(invalid("stratum", format!("stratum {k} of {n_strata}")));
        }
        if !(0.0..=1.0 / n_strata.max(1) as f64).contains(&min_share) {
            return Err(invalid(
                "min_share",
                format!("{min_share} is not in [0, 1/{n_strata}]"),
            ));
        }
        if !(min_acceptance > 0.0 && min_acceptance <= 1.0) {
            return Err(invalid(
                "min_acceptance",
                format!("{min_acceptance} is not in (0, 1]"),
            ));
        }
        // Per stratum: draws, Σ w, Σ w² (weights relative to the largest; NaN ones skipped).
        let mut count = vec![0usize; n_strata];
        let mut sum = vec![0.0; n_strata];
        let mut sum_sq = vec![0.0; n_strata];
        let max = weights
            .log_weights()
            .iter()
            .copied()
            .filter(|l| !l.is_nan())
            .fold(f64::NEG_INFINITY, f64::max);
        for (&k, &l) in stratum.iter().zip(weights.log_weights()) {
            count[k] += 1;
            if !l.is_nan() {
                let w = (l - max).exp();
                sum[k] += w;
                sum_sq[k] += w * w;
            }
        }
        let total: f64 = sum.iter().sum();
        let n = stratum.len().max(1) as f64;
        let probability: Vec<f64> = sum.iter().map(|s| s / total).collect();
        let spread: Vec<f64> = (0..n_strata)
            .map(|k| {
                if sum[k] > 0.0 {
                    count[k] as f64 * sum_sq[k] / (sum[k] * sum[k])
                } else {
                    f64::NAN
                }
            })
            .collect();
        // ESS-optimal shares over the strata the pilot saw, then the floor `min_share`.
        let seen: Vec<bool> = count.iter().map(|&c| c > 0).collect();
        let optimal: Vec<f64> = (0..n_strata)
            .map(|k| {
                if seen[k] && sum[k] > 0.0 {
                    probability[k] * spread[k].sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        let target_share = floor_shares(&optimal, &seen, min_share);
        let ratio: Vec<f64> = (0..n_strata)
            .map(|k| {
                if seen[k] {
                    target_share[k] / (count[k] as f64 / n)
                } else {
                    0.0
                }
            })
            .collect();
        let largest = ratio.iter().copied().fold(0.0, f64::max);
        let strata = (0..n_strata)
            .map(|k| StratumPlan {
                pilot_draws: count[k],
                flow_share: count[k] as f64 / n,
                probability: probability[k],
                spread: spread[k],
                target_share: target_share[k],
                acceptance: if seen[k] && largest > 0.0 {
                    (ratio[k] / largest).max(min_acceptance)
                } else {
                    1.0
                },
            })
            .collect();
        Ok(Self { strata })
    }

    /// The acceptance `a_k` of each stratum.
    pub fn acceptance(&self) -> Vec<f64> {
        self.strata.iter().map(|s| s.acceptance).collect()
    }

    /// The pilot's estimate of the fraction of flow draws kept, `Σ_k Q_k a_k`.
    pub fn expected_acceptance(&self) -> f64 {
        self.strata
            .iter()
            .map(|s| s.flow_share * s.acceptance)
            .sum()
    }
}

/// Shares proportional to `optimal` over the `seen` strata (equal shares if all are 0), with
/// every seen stratum raised to at least `min_share` and the others scaled down to make room.
fn floor_shares(optimal: &[f64], seen: &[bool], min_share: f64) -> Vec<f64> {
    let mut fixed = vec![false; optimal.len()];
    loop {
        let free_total: f64 = (0..optimal.len())
            .filter(|&k| seen[k] && !fixed[k])
            .map(|k| optimal[k])
            .sum();
        let n_free = (0..optimal.len()).filter(|&k| seen[k] && !fixed[k]).count();
        let room = 1.0 - min_share * fixed.iter().filter(|&&f| f).count() as f64;
        let shares: Vec<f64> = (0..optimal.len())
            .map(|k| match (seen[k], fixed[k]) {
                (false, _) => 0.0,
                (true, true) => min_share,
                (true, false) if free_total > 0.0 => room * optimal[k] / free_total,
                (true, false) => room / n_free as f64,
            })
            .collect();
        let low: Vec<usize> = (0..optimal.len())
            .filter(|&k| seen[k] && !fixed[k] && shares[k] < min_share)
            .collect();
        if low.is_empty() {
            return shares;
        }
        for k in low {
            fixed[k] = true;
        }
    }
}

/// Flow draws thinned stratum by stratum ([`draw_thinned`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Thinned {
    /// Kept configurations, row-major.
    pub x: Vec<f64>,
    /// The generator's `log q` of each kept draw.
    pub log_q: Vec<f64>,
    /// `ln a_k` of each kept draw's stratum: weight it with `log q + ln a`.
    pub log_acceptance: Vec<f64>,
    /// The stratum of each kept draw.
    pub stratum: Vec<usize>,
    /// Generator draws made, kept or not.
    pub generator_draws: usize,
}

impl Thinned {
    /// Number of kept draws.
    pub fn len(&self) -> usize {
        self.log_q.len()
    }

    /// True when no draw was kept.
    pub fn is_empty(&self) -> bool {
        self.log_q.is_empty()
    }

    /// `log q + ln a` of each kept draw: the log-density to weight it with.
    pub fn weighting_log_q(&self) -> Vec<f64> {
        self.log_q
            .iter()
            .zip(&self.log_acceptance)
            .map(|(q, a)| q + a)
            .collect()
    }
}

/// Makes `generator_draws` draws of `generator` in batches of `batch` and keeps each with the
/// acceptance of its stratum, `acceptance[stratum_of(x)]` (decided by `rng`, after the batch's
/// draws). `on_batch` hears the number of generator draws made so far.
///
/// # Errors
/// Whatever the generator reports; [`Error::InvalidArgument`] for an acceptance outside
/// `(0, 1]`, a stratum index out of range or a zero batch.
pub fn draw_thinned(
    generator: &dyn Generator,
    generator_draws: usize,
    batch: usize,
    stratum_of: &dyn Fn(&[f64]) -> usize,
    acceptance: &[f64],
    rng: &mut ChainRng,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Thinned> {
    if batch == 0 {
        return Err(Error::InvalidArgument {
            name: "batch".into(),
            message: "must be positive".into(),
        });
    }
    let thinning = Thinning::new(stratum_of, acceptance.to_vec())?;
    let dim = generator.dim();
    let mut kept = Thinned {
        x: Vec::new(),
        log_q: Vec::new(),
        log_acceptance: Vec::new(),
        stratum: Vec::new(),
        generator_draws: 0,
    };
    while kept.generator_draws < generator_draws {
        let n = batch.min(generator_draws - kept.generator_draws);
        let s = generator.sample(n, rng)?;
        for (row, &lq) in s.x.chunks_exact(dim).zip(&s.log_q) {
            let (k, a) = thinning.classify(row)?;
            if rng.random::<f64>() < a {
                kept.x.extend_from_slice(row);
                kept.log_q.push(lq);
                kept.log_acceptance.push(a.ln());
                kept.stratum.push(k);
            }
        }
        kept.generator_draws += n;
        on_batch(kept.generator_draws);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::DiagonalGaussian;
    use crate::rng::stream;

    /// Weights 1 for every draw: `P_k = Q_k` and `c_k = 1`.
    fn flat(n: usize) -> ImportanceWeights {
        ImportanceWeights::new(1.0, &vec![0.0; n], &vec![0.0; n]).unwrap()
    }

    #[test]
    fn a_flow_that_matches_the_target_keeps_every_draw() {
        let stratum = [0, 0, 0, 1, 1, 2];
        let plan = Plan::from_pilot(&stratum, 3, &flat(6), 0.0, 0.01).unwrap();
        for s in &plan.strata {
            assert!((s.acceptance - 1.0).abs() < 1e-12, "{plan:?}");
            assert!((s.target_share - s.flow_share).abs() < 1e-12);
        }
        assert!((plan.expected_acceptance() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_overweighted_stratum_is_thinned_to_its_probability() {
        // Stratum 0 holds 3 of 4 draws but weight 1/3 each against 1 for stratum 1's draw:
        // P = (0.5, 0.5), c = (1, 1), so the shares should be equal and stratum 0 is kept
        // with probability (0.5 / 0.75) / (0.5 / 0.25) = 1/3.
        let w = ImportanceWeights::new(1.0, &[0.0; 4], &[3f64.ln(), 3f64.ln(), 3f64.ln(), 0.0])
            .unwrap();
        let plan = Plan::from_pilot(&[0, 0, 0, 1], 2, &w, 0.0, 0.01).unwrap();
        assert!(
            (plan.strata[0].acceptance - 1.0 / 3.0).abs() < 1e-12,
            "{plan:?}"
        );
        assert!((plan.strata[1].acceptance - 1.0).abs() < 1e-12);
        assert!((plan.expected_acceptance() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn min_share_and_min_acceptance_bound_the_plan() {
        // Stratum 1 has 1 draw of 1000 and weight 1e-6 of the total: optimal share ≈ 1e-6.
        let mut log_q = vec![0.0; 1000];
        log_q[999] = 1e6f64.ln() - 999f64.ln();
        let w = ImportanceWeights::new(1.0, &[0.0; 1000], &log_q).unwrap();
        let mut stratum = vec![0; 1000];
        stratum[999] = 1;
        // With min_share 0.2 stratum 1 is aimed at 20 % of the kept draws: stratum 0 (99.9 %
        // of the flow) is thinned to (0.8 / 0.999) / (0.2 / 0.001) ≈ 0.004, raised to 0.01.
        let plan = Plan::from_pilot(&stratum, 3, &w, 0.2, 0.01).unwrap();
        assert!(
            (plan.strata[1].target_share - 0.2).abs() < 1e-12,
            "{plan:?}"
        );
        assert!((plan.strata[0].target_share - 0.8).abs() < 1e-12);
        assert_eq!(plan.strata[0].acceptance, 0.01);
        assert_eq!(plan.strata[1].acceptance, 1.0);
        // Stratum 2 had no pilot draw: it is never thinned.
        assert_eq!(plan.strata[2].pilot_draws, 0);
        assert_eq!(plan.strata[2].acceptance, 1.0);
        for bad in [
            Plan::from_pilot(&stratum, 3, &w, 0.5, 0.01),
            Plan::from_pilot(&stratum, 3, &w, 0.1, 0.0),
            Plan::from_pilot(&stratum, 1, &w, 0.1, 0.5),
            Plan::from_pilot(&stratum[1..], 3, &w, 0.1, 0.5),
        ] {
            assert!(bad.is_err());
        }
    }

    #[test]
    fn floor_shares_raise_small_strata_and_rescale_the_rest() {
        let s = floor_shares(&[0.9, 0.09, 0.01, 0.0], &[true, true, true, false], 0.1);
        assert_eq!(s[3], 0.0);
        assert!(
            (s[2] - 0.1).abs() < 1e-12 && (s[1] - 0.1).abs() < 1e-12,
            "{s:?}"
        );
        assert!((s[0] - 0.8).abs() < 1e-12);
        // All-zero optima: equal shares.
        let s = floor_shares(&[0.0, 0.0], &[true, true], 0.0);
        assert_eq!(s, vec![0.5, 0.5]);
    }

    /// The target `exp(−U)` on the line is the mixture `0.99 𝒩(−2, 0.5²) + 0.01 𝒩(2, 0.5²)`
    /// times `Z = e³`, so `log Z = 3` and `P(x > 0) = 0.01` up to the Gaussians' tails across
    /// 0 (Φ(−4) ≈ 3·10⁻⁵, far below the error bars). The proposal 𝒩(0, 2²) puts half its draws
    /// at x > 0, where 1 % of the weight is: thinning them gives the region draws in
    /// proportion to its weight and lifts the ESS.
    fn target_energy(x: f64) -> f64 {
        let g = |m: f64| {
            (-(x - m).powi(2) / (2.0 * 0.25)).exp() / (2.0 * std::f64::consts::PI * 0.25).sqrt()
        };
        -(0.99 * g(-2.0) + 0.01 * g(2.0)).ln() - 3.0
    }

    fn exact_right() -> f64 {
        // P(x > 0) = 0.99 Φ(−4) + 0.01 Φ(4) with Φ(−4) = 3.167 124 183 311 992e-5.
        let tail = 3.167_124_183_311_992e-5;
        0.99 * tail + 0.01 * (1.0 - tail)
    }

    #[test]
    fn thinned_draws_give_the_exact_log_z_and_region_weight_with_a_higher_ess() {
        let q = DiagonalGaussian::isotropic(vec![0.0], 2.0).unwrap();
        let side = |x: &[f64]| usize::from(x[0] > 0.0);
        let weigh = |x: &[f64], log_q: &[f64]| {
            let u: Vec<f64> = x.iter().map(|&v| target_energy(v)).collect();
            ImportanceWeights::new(1.0, &u, log_q).unwrap()
        };
        // Plan from a pilot of 5 000 plain draws.
        let mut rng = stream(11, 0);
        let pilot = q.sample(5_000, &mut rng).unwrap();
        let pilot_w = weigh(&pilot.x, &pilot.log_q);
        let strata: Vec<usize> = pilot.x.iter().map(|&v| usize::from(v > 0.0)).collect();
        let plan = Plan::from_pilot(&strata, 2, &pilot_w, 0.0, 0.01).unwrap();
        // x > 0 holds about half the flow and 1 % of the weight: thinned hard.
        assert!(plan.strata[1].acceptance < 0.1, "{plan:?}");
        assert_eq!(plan.strata[0].acceptance, 1.0);

        let m = 200_000;
        let t = draw_thinned(
            &q,
            m,
            10_000,
            &side,
            &plan.acceptance(),
            &mut rng,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(t.generator_draws, m);
        let w = weigh(&t.x, &t.weighting_log_q()).with_rejected(m - t.len());
        let right: Vec<f64> = t.stratum.iter().map(|&k| k as f64).collect();

        // Estimates within 4 standard errors of the exact values (fixed seed; the errors are
        // the delta-method ones, which rest on the ESS).
        let log_z = w.log_z();
        assert!(
            (log_z.value - 3.0).abs() < 4.0 * log_z.std_error,
            "{log_z:?}"
        );
        assert!(log_z.std_error < 0.01, "{log_z:?}");
        let p = w.expectation(&right).unwrap();
        assert!((p.value - exact_right()).abs() < 4.0 * p.std_error, "{p:?}");

        // The same number of plain draws has a lower ESS fraction (half of them at x > 0
        // with little weight), and thinning made fewer than 60 % of the energy evaluations.
        let plain = q.sample(m, &mut stream(12, 0)).unwrap();
        let plain_w = weigh(&plain.x, &plain.log_q);
        assert!(
            w.ess_fraction() > 1.5 * plain_w.ess_fraction(),
            "thinned {} against plain {}",
            w.ess_fraction(),
            plain_w.ess_fraction()
        );
        assert!(t.len() < 6 * m / 10, "{} kept", t.len());
    }
}
