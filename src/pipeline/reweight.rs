//! `boltzgen reweight`: direct draws from the flow, importance-weighted against U.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{finite, write_json, Model, Prepared, Progress};
use crate::config::CollectiveVariable;
use crate::diagnostics::verdict::{check_ess, check_log_z_errors};
use crate::diagnostics::Warning;
use crate::error::{Error, Result};
use crate::io::trajectory::TrajectoryWriter;
use crate::mcmc::moves::energies_or_nan;
use crate::reweight::balance::{draw_thinned, Thinned};
use crate::reweight::ImportanceWeights;
use crate::rng::{auxiliary_stream, Purpose};

/// Draws per generator call.
const BATCH: usize = 10_000;

/// An estimate with a JSON-safe error bar.
#[derive(Debug, Clone, Serialize)]
pub struct Value {
    /// The estimate.
    pub value: Option<f64>,
    /// One standard error.
    pub std_error: Option<f64>,
}

impl Value {
    fn new(value: f64, std_error: f64) -> Self {
        Self {
            value: finite(value),
            std_error: finite(std_error),
        }
    }
}

/// A free-energy difference between two configured states.
#[derive(Debug, Clone, Serialize)]
pub struct StateDifference {
    /// From this state …
    pub from: String,
    /// … to this one: F_to − F_from.
    pub to: String,
    /// The estimate, in the potential's energy unit.
    pub delta_f: Value,
}

/// The weight of a configured region of the scatter plane, and its free energy relative to
/// the first region.
#[derive(Debug, Clone, Serialize)]
pub struct RegionEstimate {
    /// The region's name.
    pub name: String,
    /// Its probability under exp(−βU).
    pub probability: Value,
    /// `F_region − F_first = −kT ln(P_region / P_first)`, in the potential's energy unit.
    pub delta_f: Value,
    /// Draws in the region, and their Kish effective number: the region's estimates rest on
    /// these, and with a few effective draws their error bars are not to be trusted.
    pub draws: usize,
    /// See `draws`.
    pub effective_draws: f64,
}

/// One bin of the written profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRow {
    /// Bin centre.
    pub center: f64,
    /// Reweighted free energy (lowest bin 0).
    pub free_energy: Option<f64>,
    /// Its standard error.
    pub std_error: Option<f64>,
    /// The exact value where known, shifted like the estimate.
    pub exact: Option<f64>,
}

/// How `[reweight] balance` split the draws between the regions.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceReport {
    /// Weighted pilot draws (they enter no estimate).
    pub pilot_draws: usize,
    /// The pilot's ESS fraction: the flow's own, unthinned.
    pub pilot_ess_fraction: f64,
    /// Generator draws made for the kept ones (`draws`): the rest were thinned away.
    pub generator_draws: usize,
    /// Per stratum: the `[analysis] regions` in order, then `rest` (the plane outside them).
    pub strata: Vec<StratumReport>,
}

/// One stratum of [`BalanceReport`].
#[derive(Debug, Clone, Serialize)]
pub struct StratumReport {
    /// The region's name, or `rest`.
    pub name: String,
    /// What the pilot found and the acceptance it gave.
    #[serde(flatten)]
    pub plan: crate::reweight::balance::StratumPlan,
    /// Kept draws in the stratum.
    pub draws: usize,
}

/// What a reweighting run produced.
#[derive(Debug, Clone, Serialize)]
pub struct ReweightSummary {
    /// Draws weighted (each with an energy evaluation): kept ones, with `balance`.
    pub draws: usize,
    /// With `[reweight] balance`: the pilot, the acceptances and the generator draws.
    pub balance: Option<BalanceReport>,
    /// Kish effective sample size.
    pub ess: f64,
    /// ESS / draws.
    pub ess_fraction: f64,
    /// Draws with infinite energy (weight 0, kept).
    pub zero_weight: usize,
    /// Draws that could not be weighted (NaN energy or non-finite log q).
    pub invalid: usize,
    /// log Ẑ with the delta-method error.
    pub log_z: Value,
    /// The bootstrap error of log Ẑ, when requested.
    pub log_z_bootstrap_error: Option<f64>,
    /// The exact log Z where known.
    pub exact_log_z: Option<f64>,
    /// The reweighted mean of the collective variable.
    pub cv_mean: Option<Value>,
    /// Free-energy differences from the first state to each other state.
    pub state_differences: Vec<StateDifference>,
    /// The probability of each `[analysis] states` core under exp(−βU).
    pub states: Vec<StateEstimate>,
    /// Probabilities and free energies of the `[analysis] regions`.
    pub regions: Vec<RegionEstimate>,
    /// The free-energy profile along the CV.
    pub profile: Vec<ProfileRow>,
    /// Per-draw weights.
    pub weights_file: PathBuf,
    /// Resampled configurations, when requested.
    pub resampled_file: Option<PathBuf>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The convergence checks that failed (see [`crate::diagnostics::verdict`]): empty for a
    /// run with nothing to warn of.
    pub warnings: Vec<Warning>,
}

/// The weight of a configured state's core.
#[derive(Debug, Clone, Serialize)]
pub struct StateEstimate {
    /// The state's name.
    pub name: String,
    /// Its probability under exp(−βU).
    pub probability: Value,
    /// Draws in the core, and their Kish effective number.
    pub draws: usize,
    /// See `draws`.
    pub effective_draws: f64,
}

/// Draws `[reweight] draws` configurations from the flow, weights them, and writes
/// `weights.csv`, `profile.csv` (with a profile), `resampled.<format>` (with `resample`) and
/// `reweight_report.json`.
///
/// # Errors
/// [`Error::Config`] for a model without an exact density (a VAE); whatever the generator,
/// the potential and the files report; [`Error::InvalidArgument`] if no draw has a weight.
pub fn reweight(
    prep: &Prepared,
    model: &Model,
    progress: &mut dyn Progress,
) -> Result<ReweightSummary> {
    let cfg = prep.config.reweight.clone().unwrap_or_default();
    let flow = match model {
        Model::Flow(_) | Model::TorchScript(_) => model.generator(),
        Model::Vae(_) => {
            return Err(Error::Config {
                file: prep.config_path.clone(),
                key: "model.kind".into(),
                message: "reweighting needs an exact log q; a VAE has only an estimate (use it in MCMC through the vae move)".into(),
            })
        }
    };
    let started = Instant::now();
    let system = &prep.system;
    let u = system.potential.as_ref();
    let dim = u.dim();
    let mut rng = auxiliary_stream(prep.seed, Purpose::Reweighting);
    // Plain draws, or (`balance`) draws thinned region by region: `log_a` is then each kept
    // draw's ln acceptance, which its weight includes.
    let (x, log_q, log_a, balance) = match &cfg.balance {
        None => {
            let mut x = Vec::with_capacity(cfg.draws * dim);
            let mut log_q = Vec::with_capacity(cfg.draws);
            progress.start("drawing", cfg.draws as u64);
            while log_q.len() < cfg.draws {
                let n = BATCH.min(cfg.draws - log_q.len());
                let s = flow.sample(n, &mut rng)?;
                x.extend(s.x);
                log_q.extend(s.log_q);
                progress.update(log_q.len() as u64, "");
                if progress.interrupted() {
                    return Err(Error::Interrupted {
                        stage: "reweighting".into(),
                    });
                }
            }
            progress.finish();
            (x, log_q, None, None)
        }
        Some(b) => {
            let (thinned, report) = balanced_draws(prep, flow, b, cfg.draws, &mut rng, progress)?;
            (
                thinned.x,
                thinned.log_q,
                Some(thinned.log_acceptance),
                Some(report),
            )
        }
    };
    let energies = energies_or_nan(u, &x);
    // A thinned draw is weighted with log q + ln a; the rejected ones count as weight 0 in Ẑ.
    let w = match &log_a {
        None => ImportanceWeights::new(system.beta, &energies, &log_q)?,
        Some(log_a) => {
            let weighting: Vec<f64> = log_q.iter().zip(log_a).map(|(q, a)| q + a).collect();
            ImportanceWeights::new(system.beta, &energies, &weighting)?
        }
    }
    .with_rejected(
        balance
            .as_ref()
            .map_or(0, |b| b.generator_draws - log_q.len()),
    );
    let log_z = w.log_z();
    let bootstrap = (cfg.bootstrap >= 2)
        .then(|| {
            w.log_z_bootstrap(
                cfg.bootstrap,
                &mut auxiliary_stream(prep.seed, Purpose::Bootstrap),
            )
        })
        .transpose()?;

    let cv: Option<&CollectiveVariable> = prep.config.analysis.cv.as_ref();
    let cv_values: Option<Vec<f64>> = cv.map(|cv| {
        x.chunks_exact(dim)
            .map(|c| cv.value(c, system.spatial_dim))
            .collect()
    });
    // The two scatter CVs of every draw (φ, ψ for a Ramachandran plane), for regions and
    // the free-energy surfaces drawn from weights.csv.
    let plane: Option<Vec<(f64, f64)>> = prep.config.analysis.scatter.as_ref().map(|[a, b]| {
        x.chunks_exact(dim)
            .map(|c| {
                (
                    a.value(c, system.spatial_dim),
                    b.value(c, system.spatial_dim),
                )
            })
            .collect()
    });

    let weights_file = prep.path("weights.csv");
    crate::io::write_atomically(&weights_file, |tmp| {
        let file = std::fs::File::create(tmp).map_err(Error::io(tmp))?;
        let mut out = std::io::BufWriter::new(file);
        let io = |e| Error::io(tmp)(e);
        writeln!(
            out,
            "draw,energy,log_q,log_w{}{}{}",
            if cv.is_some() { ",cv" } else { "" },
            if plane.is_some() {
                ",scatter_x,scatter_y"
            } else {
                ""
            },
            if log_a.is_some() { ",log_a" } else { "" }
        )
        .map_err(io)?;
        for i in 0..log_q.len() {
            let mut cv_text = cv_values
                .as_ref()
                .map(|v| format!(",{}", v[i]))
                .unwrap_or_default();
            if let Some(p) = &plane {
                cv_text += &format!(",{},{}", p[i].0, p[i].1);
            }
            if let Some(a) = &log_a {
                cv_text += &format!(",{}", a[i]);
            }
            writeln!(
                out,
                "{i},{},{},{}{cv_text}",
                energies[i],
                log_q[i],
                w.log_weights()[i]
            )
            .map_err(io)?;
        }
        out.flush().map_err(io)
    })?;

    let mut state_differences = Vec::new();
    let mut state_estimates = Vec::new();
    let mut profile = Vec::new();
    let mut cv_mean = None;
    if let Some(values) = &cv_values {
        let e = w.expectation(values)?;
        cv_mean = Some(Value::new(e.value, e.std_error));
        let states = &prep.config.analysis.states;
        let member = |s: &crate::diagnostics::StateInterval| -> Vec<bool> {
            values
                .iter()
                .map(|v| *v >= s.lower && *v <= s.upper)
                .collect()
        };
        for state in states {
            let (probability, draws, effective_draws) = share(&w, &member(state))?;
            state_estimates.push(StateEstimate {
                name: state.name.clone(),
                probability,
                draws,
                effective_draws,
            });
        }
        if let Some(first) = states.first() {
            let in_first = member(first);
            for other in &states[1..] {
                let d = w.free_energy_difference(system.beta, &in_first, &member(other));
                state_differences.push(StateDifference {
                    from: first.name.clone(),
                    to: other.name.clone(),
                    delta_f: match d {
                        Ok(d) => Value::new(d.value, d.std_error),
                        Err(_) => Value::new(f64::NAN, f64::NAN),
                    },
                });
            }
        }
        if let Some(p) = &prep.config.analysis.profile {
            let edges = p.edges();
            let bins = w.free_energy_profile(system.beta, values, &edges)?;
            // The exact curve, binned the same way, where the marginal is known.
            let exact: Option<Vec<f64>> = match (cv, &system.exact_marginal_x0) {
                (Some(CollectiveVariable::Coordinate { index: 0 }), Some(q)) => edges
                    .windows(2)
                    .map(|e| {
                        q.probability(e[0], e[1], system.beta)
                            .ok()
                            .map(|p| -(p / (e[1] - e[0])).ln() / system.beta)
                    })
                    .collect(),
                _ => None,
            };
            // Shift the exact curve to the estimate's reference bin (the lowest estimate).
            let reference = bins.iter().position(|b| b.free_energy == 0.0).unwrap_or(0);
            let shift = exact.as_ref().map(|e| e[reference]);
            profile = bins
                .iter()
                .enumerate()
                .map(|(i, b)| ProfileRow {
                    center: b.center,
                    free_energy: finite(b.free_energy),
                    std_error: finite(b.std_error),
                    exact: exact
                        .as_ref()
                        .zip(shift)
                        .and_then(|(e, s)| finite(e[i] - s)),
                })
                .collect();
            let path = prep.path("profile.csv");
            let text = std::iter::once("cv,free_energy,std_error,exact".to_string())
                .chain(profile.iter().map(|r| {
                    let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
                    format!(
                        "{},{},{},{}",
                        r.center,
                        f(r.free_energy),
                        f(r.std_error),
                        f(r.exact)
                    )
                }))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
            crate::io::write_atomically(&path, |tmp| {
                std::fs::write(tmp, text).map_err(Error::io(tmp))
            })?;
        }
    }

    let regions = match &plane {
        Some(points) => region_estimates(&w, system.beta, points, &prep.config.analysis.regions)?,
        None => Vec::new(),
    };

    let resampled_file = match cfg.resample {
        Some(n) if n > 0 => {
            let format = &prep.config.output.trajectory_format;
            let path = prep.path(&format!("resampled.{format}"));
            let idx =
                w.systematic_resample(n, &mut auxiliary_stream(prep.seed, Purpose::Resampling));
            let mut writer = TrajectoryWriter::create(
                &path,
                system.n_particles,
                system.spatial_dim,
                system.length_per_angstrom,
                prep.element(),
                false,
            )?;
            for (k, i) in idx.iter().enumerate() {
                writer.write(&x[i * dim..(i + 1) * dim], k)?;
            }
            Some(path)
        }
        _ => None,
    };

    let bootstrap_error = bootstrap.and_then(|b| finite(b.std_error));
    let warnings: Vec<Warning> = check_ess(w.ess(), w.len() - w.invalid())
        .into_iter()
        .chain(check_log_z_errors(finite(log_z.std_error), bootstrap_error))
        .collect();
    let summary = ReweightSummary {
        draws: log_q.len(),
        balance,
        ess: w.ess(),
        ess_fraction: w.ess_fraction(),
        zero_weight: w.zero_weight(),
        invalid: w.invalid(),
        log_z: Value::new(log_z.value, log_z.std_error),
        log_z_bootstrap_error: bootstrap_error,
        exact_log_z: system.exact_log_z,
        cv_mean,
        state_differences,
        states: state_estimates,
        regions,
        profile,
        weights_file,
        resampled_file,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
    };
    write_json(&prep.path("reweight_report.json"), &summary)?;
    Ok(summary)
}

/// About `draws` flow draws thinned region by region (`[reweight] balance`, see
/// [`crate::reweight::balance`]): a weighted pilot on a stream of its own plans the
/// acceptances, then a number of generator draws fixed in advance is thinned.
fn balanced_draws(
    prep: &Prepared,
    flow: &dyn crate::generator::Generator,
    b: &crate::config::BalanceConfig,
    draws: usize,
    rng: &mut crate::rng::ChainRng,
    progress: &mut dyn Progress,
) -> Result<(Thinned, BalanceReport)> {
    let (stratum_of, n_strata) = super::balance::region_strata(prep, "reweight.balance")?;
    let (plan, pilot_w) =
        super::balance::balance_plan(prep, flow, b, &stratum_of, n_strata, progress)?;
    // Generator draws fixed in advance (so that the Horvitz–Thompson Ẑ is unbiased),
    // enough for `draws` kept ones on the pilot's estimate.
    let generator_draws = (draws as f64 / plan.expected_acceptance()).ceil() as usize;
    progress.start("drawing (thinned by region)", generator_draws as u64);
    let thinned = draw_thinned(
        flow,
        generator_draws,
        BATCH,
        &stratum_of,
        &plan.acceptance(),
        rng,
        &mut |done| progress.update(done as u64, ""),
    )?;
    progress.finish();
    let report = BalanceReport {
        pilot_draws: b.pilot,
        pilot_ess_fraction: pilot_w.ess_fraction(),
        generator_draws: thinned.generator_draws,
        strata: super::balance::stratum_names(prep)
            .zip(plan.strata)
            .enumerate()
            .map(|(k, (name, plan))| StratumReport {
                name,
                plan,
                draws: thinned.stratum.iter().filter(|&&s| s == k).count(),
            })
            .collect(),
    };
    Ok((thinned, report))
}

/// The weighted probability of the draws with `inside[i]`, their number and their Kish
/// effective number.
fn share(w: &ImportanceWeights, inside: &[bool]) -> Result<(Value, usize, f64)> {
    let indicator: Vec<f64> = inside.iter().map(|&b| f64::from(u8::from(b))).collect();
    let p = w.expectation(&indicator)?;
    Ok((
        Value::new(p.value, p.std_error),
        inside.iter().filter(|&&i| i).count(),
        w.ess_within(inside)?,
    ))
}

/// Importance-sampling estimates of the regions' probabilities and free energies.
fn region_estimates(
    w: &ImportanceWeights,
    beta: f64,
    points: &[(f64, f64)],
    regions: &[crate::config::Region],
) -> Result<Vec<RegionEstimate>> {
    let Some(first) = regions.first() else {
        return Ok(Vec::new());
    };
    let member = |r: &crate::config::Region| -> Vec<bool> {
        points.iter().map(|&(x, y)| r.contains(x, y)).collect()
    };
    let in_first = member(first);
    regions
        .iter()
        .map(|r| {
            let inside = member(r);
            let (probability, draws, effective_draws) = share(w, &inside)?;
            let delta_f = match w.free_energy_difference(beta, &in_first, &inside) {
                Ok(d) => Value::new(d.value, d.std_error),
                Err(_) => Value::new(f64::NAN, f64::NAN),
            };
            Ok(RegionEstimate {
                name: r.name.clone(),
                probability,
                delta_f,
                draws,
                effective_draws,
            })
        })
        .collect()
}
