//! The convergence verdict: the checks every report runs on its own numbers, and the
//! warnings they raise when a run cannot be trusted.
//!
//! A high importance ESS cannot see a mode the generator never proposes, and chains that
//! never cross a barrier agree with themselves; each check below catches one way a run fails
//! silently, and none needs the exact answer:
//!
//! | check                 | fires when                                                   |
//! |-----------------------|--------------------------------------------------------------|
//! | `split_rhat`          | an observable's split-R̂ across chains exceeds 1.05          |
//! | `chain_spread`        | the chains' means of an observable scatter beyond the τ-based error bars (χ², p < 10⁻⁴) |
//! | `ess`                 | the Kish ESS is below 1 % of the draws or below 100 draws    |
//! | `no_transition`       | a configured state was never entered or left by any chain    |
//! | `chains_vs_weights`   | the chains' and the weights' probability of a state differ by more than 4 combined standard errors |
//! | `log_z_error`         | the bootstrap and delta-method errors of log Ẑ differ by more than 2× |
//! | `swap_acceptance`     | replica exchange: neighbouring rungs swapped in under 5 % of attempts |
//! | `round_trips`         | replica exchange: no replica went from the target rung to the hottest and back |
//!
//! Each function returns the warning, or `None` when the check passes or cannot be made
//! (a missing number is not evidence of failure; the report says it is missing).

use serde::{Deserialize, Serialize};

use super::Transitions;

/// Split-R̂ above this says the chains disagree with each other or with their own halves.
pub const MAX_SPLIT_RHAT: f64 = 1.05;
/// A Kish ESS below this fraction of the draws says the generator is far from the target.
pub const MIN_ESS_FRACTION: f64 = 0.01;
/// Fewer effective draws than this leave every error bar untrustworthy.
pub const MIN_ESS: f64 = 100.0;
/// Chains and weights may differ by this many combined standard errors before it is flagged:
/// at 4σ a run whose two estimates are both right raises it about once in 16 000 checks.
pub const MAX_DISAGREEMENT: f64 = 4.0;
/// The bootstrap and the delta-method error of log Ẑ may differ by this factor; beyond it
/// the weights' tail is too heavy for either to be trusted.
pub const MAX_ERROR_RATIO: f64 = 2.0;

/// Neighbouring rungs of a replica-exchange ladder that swap less often than this have a gap
/// between them: configurations from above rarely reach the target.
pub const MIN_SWAP_ACCEPTANCE: f64 = 0.05;

/// The chain-spread check fires beyond this upper quantile of χ² (the normal quantile of
/// p = 10⁻⁴, one-sided).
const CHAIN_SPREAD_Z: f64 = 3.719;

/// Probabilities this close count as equal when neither has an error bar.
const ZERO_ERROR_TOLERANCE: f64 = 1e-9;

/// One failed check of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// Which check failed (`split_rhat`, `chain_spread`, `ess`, `no_transition`,
    /// `chains_vs_weights`, `log_z_error`, `swap_acceptance`, `round_trips`): stable names
    /// for scripts.
    pub check: String,
    /// What was found and what it means, for people.
    pub message: String,
}

impl Warning {
    fn new(check: &str, message: String) -> Self {
        Self {
            check: check.into(),
            message,
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WARNING [{}]: {}", self.check, self.message)
    }
}

/// Split-R̂ of `observable` above [`MAX_SPLIT_RHAT`].
pub fn check_split_rhat(observable: &str, rhat: Option<f64>) -> Option<Warning> {
    let r = rhat?;
    // An infinite R̂ (chains each constant at different values) fails too; NaN is no number.
    (r > MAX_SPLIT_RHAT).then(|| {
        Warning::new(
            "split_rhat",
            format!(
                "split-R̂ of {observable} is {r:.3} (> {MAX_SPLIT_RHAT}): the chains disagree \
                 with each other or drift; run longer, or add moves that cross between modes"
            ),
        )
    })
}

/// The chains' means of `observable` against the error bars the report gives them: with the
/// pooled variance σ² and the pooled integrated time τ, chain c of n_c draws has the error
/// sqrt(σ² τ / n_c), and χ² = Σ (m_c − m)² / (σ² τ / n_c) follows χ² with k − 1 degrees of
/// freedom when τ is right. It fires above the 1 − 10⁻⁴ quantile (Wilson–Hilferty). This is
/// what split-R̂ misses for a rare state: R̂ compares the spread of the means with the raw
/// within-chain variance, which a 0.5 % indicator dwarfs, while the error bar divides it by
/// the ESS; chains fed a rare basin by rare events agree with R̂ and not with their error
/// bars. `None` without two chains of at least 2 draws, or without variance.
pub fn check_chain_spread(observable: &str, chains: &[&[f64]]) -> Option<Warning> {
    if chains.len() < 2 || chains.iter().any(|c| c.len() < 2) {
        return None;
    }
    let s = super::summarize(chains).ok()?;
    let per_draw = s.variance * s.iat.tau;
    if !(per_draw > 0.0 && per_draw.is_finite()) {
        return None;
    }
    let chi2: f64 = chains
        .iter()
        .map(|c| {
            let m = c.iter().sum::<f64>() / c.len() as f64;
            (m - s.mean).powi(2) * c.len() as f64 / per_draw
        })
        .sum();
    let dof = (chains.len() - 1) as f64;
    let h = 2.0 / (9.0 * dof);
    let bound = dof * (1.0 - h + CHAIN_SPREAD_Z * h.sqrt()).powi(3);
    (chi2 > bound).then(|| {
        Warning::new(
            "chain_spread",
            format!(
                "the {} chains' means of {observable} scatter with χ² = {chi2:.1} on {dof} \
                 degrees of freedom (> {bound:.1}, p < 10⁻⁴) against their τ-based error \
                 bars: τ = {:.1} misses slower mixing, and the error bar of {observable} is \
                 too small; take the spread between chains as its error, or run longer",
                chains.len(),
                s.iat.tau
            ),
        )
    })
}

/// A Kish ESS of `ess` from `draws` weighted draws below [`MIN_ESS_FRACTION`] of them or
/// below [`MIN_ESS`].
pub fn check_ess(ess: f64, draws: usize) -> Option<Warning> {
    if draws == 0 || ess.is_nan() {
        return None;
    }
    let fraction = ess / draws as f64;
    (fraction < MIN_ESS_FRACTION || ess < MIN_ESS).then(|| {
        Warning::new(
            "ess",
            format!(
                "Kish ESS is {ess:.1} of {draws} draws ({:.3} %; needs ≥ {} % and ≥ {MIN_ESS}): \
                 the generator is far from the target and the reweighted estimates rest on a \
                 few draws",
                100.0 * fraction,
                100.0 * MIN_ESS_FRACTION
            ),
        )
    })
}

/// Every state of `names` (in the order `transitions` counted them) that no chain entered or
/// left, when there are at least two states.
pub fn check_transitions(transitions: &Transitions, names: &[String]) -> Vec<Warning> {
    let k = transitions.counts.len();
    if k < 2 {
        return Vec::new();
    }
    (0..k)
        .filter(|&i| {
            let out: u64 = transitions.counts[i].iter().sum();
            let into: u64 = transitions.counts.iter().map(|row| row[i]).sum();
            out + into == 0
        })
        .map(|i| {
            let name = names.get(i).map_or("?", String::as_str);
            Warning::new(
                "no_transition",
                format!(
                    "no chain entered or left state `{name}`: its probability comes from where \
                     the chains started, not from the Boltzmann distribution"
                ),
            )
        })
        .collect()
}

/// One estimate of a probability with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probability {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub std_error: f64,
}

/// The chains' and the weights' probability of the state or region `name` more than
/// [`MAX_DISAGREEMENT`] combined standard errors apart.
///
/// Two exact methods estimate the same number; when they disagree, at least one of them has
/// missed part of the distribution (a mode the generator never proposes gets no weight; a
/// mode the chains never reach gets no frames).
pub fn check_agreement(name: &str, chains: Probability, weights: Probability) -> Option<Warning> {
    let all = [
        chains.value,
        chains.std_error,
        weights.value,
        weights.std_error,
    ];
    if all.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let difference = (chains.value - weights.value).abs();
    let se = chains.std_error.hypot(weights.std_error);
    // Both error bars zero (every frame and every draw in the state, or none): they agree
    // only if the values do, up to rounding (a weight of 1e-231 is no weight).
    let apart = if se > 0.0 {
        difference / se > MAX_DISAGREEMENT
    } else {
        difference > ZERO_ERROR_TOLERANCE
    };
    apart.then(|| {
        Warning::new(
            "chains_vs_weights",
            format!(
                "P({name}) is {:.4} ± {:.4} from the chains but {:.4} ± {:.4} from the weights \
                 ({:.1} standard errors apart): one of them misses part of the distribution \
                 (a generator that never proposes a mode gives it no weight)",
                chains.value,
                chains.std_error,
                weights.value,
                weights.std_error,
                if se > 0.0 {
                    difference / se
                } else {
                    f64::INFINITY
                }
            ),
        )
    })
}

/// The bootstrap and delta-method standard errors of log Ẑ more than [`MAX_ERROR_RATIO`]
/// apart (either way).
pub fn check_log_z_errors(delta: Option<f64>, bootstrap: Option<f64>) -> Option<Warning> {
    let (d, b) = (delta?, bootstrap?);
    if !(d.is_finite() && b.is_finite()) {
        return None;
    }
    let ratio = if d > 0.0 && b > 0.0 {
        (b / d).max(d / b)
    } else if d == b {
        1.0
    } else {
        f64::INFINITY
    };
    (ratio > MAX_ERROR_RATIO).then(|| {
        Warning::new(
            "log_z_error",
            format!(
                "the error of log Ẑ is {d:.4} by the delta method but {b:.4} by the bootstrap \
                 ({ratio:.1}× apart, > {MAX_ERROR_RATIO}×): the weights are heavy-tailed and \
                 neither error bar can be trusted"
            ),
        )
    })
}

/// Replica exchange: each pair of neighbours (rungs i, i + 1 at `temperatures[i]`,
/// `temperatures[i + 1]`) whose production swap acceptance is below [`MIN_SWAP_ACCEPTANCE`],
/// and no round trip at all in `production_rounds` rounds (none when there were no rounds).
pub fn check_replica_exchange(
    acceptance: &[Option<f64>],
    temperatures: &[f64],
    round_trips: u64,
    production_rounds: u64,
) -> Vec<Warning> {
    let mut warnings: Vec<Warning> = acceptance
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let a = (*a)?;
            (a < MIN_SWAP_ACCEPTANCE).then(|| {
                Warning::new(
                    "swap_acceptance",
                    format!(
                        "rungs {i} and {} (T = {:.4} and {:.4}) swapped in {:.2} % of attempts \
                         (< {} %): the ladder has a gap there; add rungs between them, or let \
                         `tune` space them",
                        i + 1,
                        temperatures[i],
                        temperatures[i + 1],
                        100.0 * a,
                        100.0 * MIN_SWAP_ACCEPTANCE
                    ),
                )
            })
        })
        .collect();
    if production_rounds > 0 && round_trips == 0 {
        warnings.push(Warning::new(
            "round_trips",
            format!(
                "no replica went from the target rung to the hottest and back in \
                 {production_rounds} swap rounds: configurations from the hot rungs have not \
                 carried the target across its barriers; run longer or close the ladder's gaps"
            ),
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_spread_fires_when_chains_disagree_beyond_their_error_bars() {
        // Four chains of an alternating series (τ small): means equal, no warning.
        let same: Vec<Vec<f64>> = (0..4)
            .map(|_| (0..400).map(|i| f64::from(i % 2)).collect())
            .collect();
        let refs: Vec<&[f64]> = same.iter().map(Vec::as_slice).collect();
        assert!(check_chain_spread("U", &refs).is_none());
        // The alanine-dipeptide replica-exchange run's αL indicator, shaped alike: 6 000
        // frames per ladder with 73, 47, 10 and 8 frames in the basin, in visits of 2 frames.
        let chains: Vec<Vec<f64>> = [73usize, 47, 10, 8]
            .iter()
            .map(|&k| {
                let mut c = vec![0.0; 6000];
                for v in 0..k {
                    c[v * 50] = 1.0;
                    c[v * 50 + 1] = 1.0;
                }
                c.truncate(6000);
                c
            })
            .collect();
        let refs: Vec<&[f64]> = chains.iter().map(Vec::as_slice).collect();
        let w = check_chain_spread("P(αL)", &refs).expect("fires");
        assert_eq!(w.check, "chain_spread");
        // Split-R̂ does not see it.
        assert!(super::super::split_rhat(&refs).unwrap() < MAX_SPLIT_RHAT);
        assert!(check_chain_spread("U", &refs[..1]).is_none());
    }

    #[test]
    fn replica_exchange_flags_gaps_and_missing_round_trips() {
        let t = [1.0, 2.0, 4.0];
        assert!(check_replica_exchange(&[Some(0.3), Some(0.2)], &t, 3, 100).is_empty());
        let w = check_replica_exchange(&[Some(0.3), Some(0.01)], &t, 0, 100);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].check, "swap_acceptance");
        assert!(w[0].message.contains("rungs 1 and 2"), "{}", w[0].message);
        assert_eq!(w[1].check, "round_trips");
        assert!(check_replica_exchange(&[None, None], &t, 0, 0).is_empty());
    }

    fn p(value: f64, std_error: f64) -> Probability {
        Probability { value, std_error }
    }

    #[test]
    fn split_rhat_fires_above_the_bound_only() {
        assert!(check_split_rhat("U", Some(1.049)).is_none());
        assert!(check_split_rhat("U", Some(1.051)).is_some());
        assert!(check_split_rhat("U", Some(f64::INFINITY)).is_some());
        assert!(check_split_rhat("U", None).is_none());
        let w = check_split_rhat("the CV", Some(1.44)).unwrap();
        assert_eq!(w.check, "split_rhat");
        assert!(w.message.contains("1.440") && w.message.contains("the CV"));
    }

    #[test]
    fn ess_fires_below_one_percent_or_below_100_draws() {
        // The collapsed flow: 0.008 % of 10⁵ draws.
        assert!(check_ess(8.0, 100_000).is_some());
        assert!(check_ess(999.0, 100_000).is_some());
        assert!(check_ess(1001.0, 100_000).is_none());
        // 50 % of 150 draws is 75 effective: too few whatever the fraction.
        assert!(check_ess(75.0, 150).is_some());
        assert!(check_ess(100.0, 150).is_none());
        assert!(check_ess(f64::NAN, 10).is_none());
    }

    #[test]
    fn a_state_without_transitions_is_named() {
        let t = Transitions {
            counts: vec![vec![0, 3, 0], vec![2, 0, 0], vec![0, 0, 0]],
            total: 5,
            committed_steps: vec![1, 1, 1, 0],
        };
        let names = ["left".to_string(), "right".into(), "far".into()];
        let w = check_transitions(&t, &names);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("`far`"), "{}", w[0].message);
        // A single state has nothing to cross to.
        let one = Transitions {
            counts: vec![vec![0]],
            total: 0,
            committed_steps: vec![5, 0],
        };
        assert!(check_transitions(&one, &names[..1]).is_empty());
    }

    #[test]
    fn chains_and_weights_disagree_beyond_four_combined_errors() {
        // The minor well: the chains put 0.20 % of their frames there, the weights
        // none at all (the flow never proposed it).
        let w = check_agreement("minor", p(0.0020, 0.0004), p(0.0, 0.0)).unwrap();
        assert_eq!(w.check, "chains_vs_weights");
        // Combined error sqrt(0.03² + 0.04²) = 0.05: 3, 3.98 and 4.002 of them apart.
        assert!(check_agreement("s", p(0.50, 0.03), p(0.35, 0.04)).is_none());
        assert!(check_agreement("s", p(0.50, 0.03), p(0.301, 0.04)).is_none());
        assert!(check_agreement("s", p(0.50, 0.03), p(0.2999, 0.04)).is_some());
        assert!(check_agreement("s", p(1.0, 0.0), p(1.0, 0.0)).is_none());
        assert!(check_agreement("s", p(1.0, 0.0), p(0.9, 0.0)).is_some());
        // No frame and a weight of 1e-231 (alanine dipeptide's αL under a flow that misses
        // it): the same nothing, not "inf standard errors apart".
        assert!(check_agreement("s", p(0.0, 0.0), p(2e-231, 0.0)).is_none());
        assert!(check_agreement("s", p(f64::NAN, 0.0), p(0.9, 0.0)).is_none());
    }

    #[test]
    fn log_z_errors_disagreeing_more_than_twofold_fire() {
        assert!(check_log_z_errors(Some(0.01), Some(0.019)).is_none());
        assert!(check_log_z_errors(Some(0.01), Some(0.0051)).is_none());
        assert!(check_log_z_errors(Some(0.01), Some(0.021)).is_some());
        assert!(check_log_z_errors(Some(0.01), Some(0.0049)).is_some());
        assert!(check_log_z_errors(Some(0.0), Some(0.3)).is_some());
        assert!(check_log_z_errors(Some(0.01), None).is_none());
    }
}
