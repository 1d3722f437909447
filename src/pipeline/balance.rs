//! Balance in one place: the strata a config's `[analysis] regions` define, the pilot that
//! plans how a flow's draws are thinned between them, and the thinned proposal of balanced
//! flow moves (`[sample] balance`). Reweighting (`[reweight] balance`) draws with the same
//! strata and plan ([`crate::reweight::balance`] holds the arithmetic).

use super::sample::{NamedStratumPlan, ProposalBalance};
use super::{Model, Prepared, Progress};
use crate::error::{Error, Result};
use crate::generator::{Generator, ThinnedGenerator};
use crate::mcmc::moves::energies_or_nan;
use crate::mcmc::MoveKind;
use crate::reweight::balance::Plan;
use crate::reweight::ImportanceWeights;
use crate::rng::{auxiliary_stream, Purpose};

/// The stratum of a configuration for balancing (`key`, for errors): the index of the first
/// `[analysis] region` whose (scatter x, scatter y) rectangle holds it, or the number of
/// regions ("rest") for none. Also returns the number of strata.
pub(super) fn region_strata<'p>(
    prep: &'p Prepared,
    key: &str,
) -> Result<(impl Fn(&[f64]) -> usize + 'p, usize)> {
    let regions = &prep.config.analysis.regions;
    let [cv_x, cv_y] = prep
        .config
        .analysis
        .scatter
        .as_ref()
        .ok_or_else(|| Error::Config {
            file: prep.config_path.clone(),
            key: key.into(),
            message: "splits the draws between regions: set analysis.scatter and analysis.regions"
                .into(),
        })?;
    let spatial_dim = prep.system.spatial_dim;
    let stratum_of = move |c: &[f64]| {
        let (px, py) = (cv_x.value(c, spatial_dim), cv_y.value(c, spatial_dim));
        regions
            .iter()
            .position(|r| r.contains(px, py))
            .unwrap_or(regions.len())
    };
    Ok((stratum_of, regions.len() + 1))
}

/// A weighted pilot of `b.pilot` plain draws, on a stream of its own, and the balancing plan
/// it gives (see [`Plan::from_pilot`]).
pub(super) fn balance_plan(
    prep: &Prepared,
    generator: &dyn crate::generator::Generator,
    b: &crate::config::BalanceConfig,
    stratum_of: &dyn Fn(&[f64]) -> usize,
    n_strata: usize,
    progress: &mut dyn Progress,
) -> Result<(Plan, ImportanceWeights)> {
    let u = prep.system.potential.as_ref();
    progress.start("pilot draws", b.pilot as u64);
    let pilot = generator.sample(
        b.pilot,
        &mut auxiliary_stream(prep.seed, Purpose::BalancePilot),
    )?;
    progress.finish();
    let pilot_w = ImportanceWeights::new(
        prep.system.beta,
        &energies_or_nan(u, &pilot.x),
        &pilot.log_q,
    )?;
    let pilot_strata: Vec<usize> = pilot.x.chunks_exact(u.dim()).map(stratum_of).collect();
    let plan = Plan::from_pilot(
        &pilot_strata,
        n_strata,
        &pilot_w,
        b.min_share,
        b.min_acceptance,
    )?;
    Ok((plan, pilot_w))
}

/// The names of the strata: the regions', then `rest`.
pub(super) fn stratum_names(prep: &Prepared) -> impl Iterator<Item = String> + '_ {
    prep.config
        .analysis
        .regions
        .iter()
        .map(|r| r.name.clone())
        .chain(std::iter::once("rest".to_string()))
}

/// The flow move's proposal thinned by region (`[sample] balance`), and what its pilot found.
///
/// # Errors
/// [`Error::Config`] without a flow move, without a model of exact density, or with a
/// region coordinate that the generator's placement of draws would change.
pub(super) fn balanced_proposals<'a>(
    prep: &Prepared,
    s: &crate::config::SampleConfig,
    model: Option<&'a Model>,
    b: &crate::config::BalanceConfig,
    stratum_of: &'a dyn Fn(&[f64]) -> usize,
    n_strata: usize,
    progress: &mut dyn Progress,
) -> Result<(ThinnedGenerator<'a>, ProposalBalance)> {
    let bad = |message: &str| Error::Config {
        file: prep.config_path.clone(),
        key: "sample.balance".into(),
        message: message.into(),
    };
    if !s.moves.iter().any(|m| m.kind == MoveKind::Flow) {
        return Err(bad(
            "thins the proposals of flow moves, and [[sample.moves]] has none",
        ));
    }
    let generator: &dyn Generator = match model {
        Some(Model::Flow(f)) => f,
        Some(Model::TorchScript(t)) => t,
        _ => return Err(bad("thins a flow's proposals: needs a flow model")),
    };
    // A draw is kept by its region before `place_like` gives it the chain's external degrees
    // of freedom: the regions must not depend on them.
    let cartesian_regions = prep
        .config
        .analysis
        .scatter
        .iter()
        .flatten()
        .any(|cv| matches!(cv, crate::config::CollectiveVariable::Coordinate { .. }));
    if generator.keeps_external_dofs() && cartesian_regions {
        return Err(bad(
            "this generator places its draws at each chain's centre of mass or orientation, which changes a Cartesian coordinate: define the regions by distances or dihedrals",
        ));
    }
    let (plan, pilot_w) = balance_plan(prep, generator, b, stratum_of, n_strata, progress)?;
    let thinned = ThinnedGenerator::new(generator, stratum_of, plan.acceptance())?;
    let balance = ProposalBalance {
        pilot_draws: b.pilot,
        pilot_ess_fraction: pilot_w.ess_fraction(),
        strata: stratum_names(prep)
            .zip(plan.strata)
            .map(|(name, plan)| NamedStratumPlan { name, plan })
            .collect(),
    };
    Ok((thinned, balance))
}
