//! The verdict of a whole run: each stage's own warnings, and the check only a run with both
//! chains and weights can make, that the two agree on every state's and region's probability.

use super::reweight::Value;
use super::sample::ObservableReport;
use super::{ReweightSummary, SampleSummary};
use crate::diagnostics::verdict::{check_agreement, Probability};
use crate::diagnostics::Warning;

/// Every warning of a run: the sampler's, the reweighting's, then the comparison of the
/// chains' probabilities of the `[analysis] states` and `regions` with the weights'.
pub fn run_warnings(
    sampled: Option<&SampleSummary>,
    reweighted: Option<&ReweightSummary>,
) -> Vec<Warning> {
    let mut warnings: Vec<Warning> = sampled
        .map(|s| s.warnings.clone())
        .into_iter()
        .chain(reweighted.map(|r| r.warnings.clone()))
        .flatten()
        .collect();
    if let (Some(s), Some(r)) = (sampled, reweighted) {
        warnings.extend(chains_against_weights(s, r));
    }
    warnings
}

/// The states and regions both stages estimated, where their probabilities disagree.
pub fn chains_against_weights(s: &SampleSummary, r: &ReweightSummary) -> Vec<Warning> {
    let states = s.states.iter().filter_map(|c| {
        let w = r.states.iter().find(|w| w.name == c.name)?;
        compare(
            &format!("state {}", c.name),
            c.probability.as_ref()?,
            &w.probability,
        )
    });
    let regions = s.regions.iter().filter_map(|c| {
        let w = r.regions.iter().find(|w| w.name == c.name)?;
        compare(
            &format!("region {}", c.name),
            c.probability.as_ref()?,
            &w.probability,
        )
    });
    states.chain(regions).collect()
}

fn compare(name: &str, chains: &ObservableReport, weights: &Value) -> Option<Warning> {
    check_agreement(
        name,
        Probability {
            value: chains.mean?,
            std_error: chains.std_error?,
        },
        Probability {
            value: weights.value?,
            std_error: weights.std_error?,
        },
    )
}
