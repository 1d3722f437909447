//! `boltzgen reweight`: direct draws from the flow, importance-weighted against U.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{finite, write_json, Model, Prepared, Progress};
use crate::config::CollectiveVariable;
use crate::error::{Error, Result};
use crate::io::trajectory::TrajectoryWriter;
use crate::mcmc::sampler::energies_or_nan;
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

/// What a reweighting run produced.
#[derive(Debug, Clone, Serialize)]
pub struct ReweightSummary {
    /// Draws made.
    pub draws: usize,
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
    let mut x = Vec::with_capacity(cfg.draws * dim);
    let mut log_q = Vec::with_capacity(cfg.draws);
    progress.start("drawing", cfg.draws as u64);
    while log_q.len() < cfg.draws {
        let n = BATCH.min(cfg.draws - log_q.len());
        let s = flow.sample(n, &mut rng)?;
        x.extend(s.x);
        log_q.extend(s.log_q);
        progress.update(log_q.len() as u64, "");
    }
    progress.finish();
    let energies = energies_or_nan(u, &x);
    let w = ImportanceWeights::new(system.beta, &energies, &log_q)?;
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
            "draw,energy,log_q,log_w{}{}",
            if cv.is_some() { ",cv" } else { "" },
            if plane.is_some() {
                ",scatter_x,scatter_y"
            } else {
                ""
            }
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
    let mut profile = Vec::new();
    let mut cv_mean = None;
    if let Some(values) = &cv_values {
        let e = w.expectation(values)?;
        cv_mean = Some(Value::new(e.value, e.std_error));
        let states = &prep.config.analysis.states;
        if let Some(first) = states.first() {
            let member = |s: &crate::diagnostics::StateInterval| -> Vec<bool> {
                values
                    .iter()
                    .map(|v| *v >= s.lower && *v <= s.upper)
                    .collect()
            };
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

    let summary = ReweightSummary {
        draws: log_q.len(),
        ess: w.ess(),
        ess_fraction: w.ess_fraction(),
        zero_weight: w.zero_weight(),
        invalid: w.invalid(),
        log_z: Value::new(log_z.value, log_z.std_error),
        log_z_bootstrap_error: bootstrap.and_then(|b| finite(b.std_error)),
        exact_log_z: system.exact_log_z,
        cv_mean,
        state_differences,
        regions,
        profile,
        weights_file,
        resampled_file,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&prep.path("reweight_report.json"), &summary)?;
    Ok(summary)
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
            let indicator: Vec<f64> = inside.iter().map(|&b| f64::from(u8::from(b))).collect();
            let p = w.expectation(&indicator)?;
            let delta_f = match w.free_energy_difference(beta, &in_first, &inside) {
                Ok(d) => Value::new(d.value, d.std_error),
                Err(_) => Value::new(f64::NAN, f64::NAN),
            };
            Ok(RegionEstimate {
                name: r.name.clone(),
                probability: Value::new(p.value, p.std_error),
                delta_f,
            })
        })
        .collect()
}
