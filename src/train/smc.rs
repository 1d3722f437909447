//! Training by sequential Monte Carlo annealing: a population of configurations is carried
//! from a hot temperature, where every mode is reachable, down to the target's, on a ladder
//! the population chooses itself; the flow is refitted by maximum likelihood on the
//! population at every rung and serves as a proposal that moves particles between modes.
//!
//! Why this route against mode collapse. Reverse KL, `E_q[log q − log p]`, is mode-seeking:
//! where q puts no mass it pays nothing, so a flow trained on energy alone can settle on one
//! mode and see no gradient towards the others. Maximum likelihood on samples of p is
//! mode-covering (forward KL pays `−log q` wherever p has mass), but needs the samples. The
//! annealing makes them: at the hot end the population spreads over every basin; each rung
//! then reweights it to the next temperature by exact incremental weights
//! `exp(−(β′ − β) U)`, which give every basin its relative weight at β′ however far apart
//! the basins are, resamples, and rejuvenates it by MCMC at β′. A mode therefore keeps its
//! share of the population as long as it kept particles at the rung before: no gradient
//! has to find it.
//!
//! - The ladder: β′ is the largest inverse temperature at which the incremental weights keep
//!   a Kish ESS of at least `ess_threshold` of the population (bisection), so the rungs are
//!   dense where the distribution changes fast (a barrier rising) and sparse elsewhere.
//! - Rejuvenation at each rung: `local_sweeps` random-walk Metropolis sweeps whose step
//!   follows the population's spread per coordinate (adapted towards acceptance 0.3 between
//!   sweeps), then `flow_sweeps` independence Metropolis–Hastings sweeps with the flow
//!   refitted at the rung before (exact at β′ for any flow), which carry particles between
//!   modes that local moves cannot cross.
//! - The refit: `refit_steps` Adam steps of maximum likelihood on the rejuvenated
//!   population, warm-started from the flow of the rung before; at the target, `final_steps`
//!   more.
//!
//! MCMC here only has to feed the flow: the flow's use in sampling and reweighting is exact
//! whatever it is, and the report's verdict says when it is poor.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use boltzgen_potentials::Potential;

use super::{train_flow, LrSchedule, TrainConfig, TrainReport};
use crate::error::{Error, Result};
use crate::generator::{Flow, Generator};
use crate::reweight::ImportanceWeights;
use crate::rng::{auxiliary_stream, auxiliary_streams, ChainRng, Purpose};

/// The knobs of [`train_flow_smc`]; every one has a default that needs no tuning per system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmcConfig {
    /// Particles in the population; None: [`SmcConfig::default_particles`] for the
    /// dimension.
    pub particles: Option<usize>,
    /// The hot end of the ladder, as a fraction of the target β.
    pub start_beta_fraction: f64,
    /// Local sweeps at the hot end before the first rung, to spread the population.
    pub start_sweeps: usize,
    /// Each rung keeps this Kish ESS fraction of the incremental weights.
    pub ess_threshold: f64,
    /// Random-walk sweeps per rung.
    pub local_sweeps: usize,
    /// Flow independence sweeps per rung (after the first refit).
    pub flow_sweeps: usize,
    /// Maximum-likelihood steps of each refit.
    pub refit_steps: usize,
    /// Maximum-likelihood steps at the target, after the last rung.
    pub final_steps: usize,
    /// The ladder stops with an error beyond this many rungs.
    pub max_rungs: usize,
}

impl Default for SmcConfig {
    fn default() -> Self {
        Self {
            particles: None,
            start_beta_fraction: 0.01,
            start_sweeps: 100,
            ess_threshold: 0.5,
            local_sweeps: 10,
            flow_sweeps: 2,
            refit_steps: 200,
            final_steps: 1000,
            max_rungs: 500,
        }
    }
}

impl SmcConfig {
    /// 512 particles per coordinate, at least 4096 and at most 32 768. Every rung's refit
    /// is maximum likelihood on the population, and too few particles per dimension are
    /// overfitted: on ManyWell-32, 4096 particles left a flow with a Kish ESS of 0.8 %, and
    /// 16 384 one of 32.6 % (BENCHMARKS.md).
    pub fn default_particles(dim: usize) -> usize {
        dim.saturating_mul(512).clamp(4096, 32_768)
    }

    /// The population size for `dim` coordinates.
    pub fn particles_for(&self, dim: usize) -> usize {
        self.particles
            .unwrap_or_else(|| Self::default_particles(dim))
    }

    /// Checks every knob, naming it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the knob.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, message: String| {
            Err(Error::InvalidArgument {
                name: format!("smc.{name}"),
                message,
            })
        };
        if let Some(n) = self.particles.filter(|n| !(16..=10_000_000).contains(n)) {
            return bad("particles", format!("must be from 16 to 10⁷, got {n}"));
        }
        if !(self.start_beta_fraction > 0.0 && self.start_beta_fraction <= 1.0) {
            return bad(
                "start_beta_fraction",
                format!("must be in (0, 1], got {}", self.start_beta_fraction),
            );
        }
        if !(self.ess_threshold > 0.0 && self.ess_threshold < 1.0) {
            return bad(
                "ess_threshold",
                format!("must be in (0, 1), got {}", self.ess_threshold),
            );
        }
        if self.max_rungs == 0 {
            return bad("max_rungs", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Hears SMC annealing: each rung as it is done, and whether to stop (asked after every refit
/// step). A closure `FnMut(&Rung)` is an observer that never stops.
pub trait SmcObserver {
    /// After each rung's refit.
    fn on_rung(&mut self, rung: &Rung);
    /// True stops the annealing with [`Error::Interrupted`].
    fn should_stop(&mut self) -> bool {
        false
    }
}

impl<F: FnMut(&Rung)> SmcObserver for F {
    fn on_rung(&mut self, rung: &Rung) {
        self(rung)
    }
}

/// The refits' observer: it only relays the stop question.
struct RelayStop<'a>(&'a mut dyn SmcObserver);

impl super::TrainObserver for RelayStop<'_> {
    fn should_stop(&mut self) -> bool {
        self.0.should_stop()
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The rung's inverse temperature.
    pub beta: f64,
    /// Kish ESS fraction of the incremental weights from the rung before (1 at the hot start).
    pub ess_fraction: f64,
    /// Random-walk acceptance over the rung's sweeps.
    pub local_acceptance: f64,
    /// Flow-move acceptance over the rung's sweeps (None before the first refit).
    pub flow_acceptance: Option<f64>,
    /// Mean energy of the population after rejuvenation.
    pub mean_energy: f64,
}

/// What [`train_flow_smc`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmcReport {
    /// The ladder, hot to cold (the first rung is the hot start).
    pub rungs: Vec<Rung>,
    /// Every evaluation of U.
    pub energy_evaluations: u64,
    /// Maximum-likelihood steps in all refits.
    pub refit_steps: usize,
    /// Kish ESS fraction of `particles` fresh flow draws weighted to the target, at the end.
    pub final_ess_fraction: f64,
}

/// A population of configurations with their energies.
struct Population {
    dim: usize,
    x: Vec<f64>,
    u: Vec<f64>,
    /// One stream per particle slot (the stream stays with the slot through resampling).
    streams: Vec<ChainRng>,
}

impl Population {
    fn len(&self) -> usize {
        self.u.len()
    }

    /// The per-coordinate standard deviation of the population (floored, so that a
    /// coordinate the population holds fixed still moves).
    fn spread(&self) -> Vec<f64> {
        let n = self.len() as f64;
        let mut mean = vec![0.0; self.dim];
        for x in self.x.chunks_exact(self.dim) {
            for (m, v) in mean.iter_mut().zip(x) {
                *m += v / n;
            }
        }
        let mut var = vec![0.0; self.dim];
        for x in self.x.chunks_exact(self.dim) {
            for ((s, v), m) in var.iter_mut().zip(x).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        var.into_iter().map(|v| v.sqrt().max(1e-6)).collect()
    }

    /// One random-walk Metropolis sweep at `beta` with per-coordinate steps `scale · spread`;
    /// returns the number accepted.
    fn local_sweep(&mut self, u: &dyn Potential, beta: f64, steps: &[f64]) -> usize {
        let dim = self.dim;
        self.x
            .par_chunks_mut(dim)
            .zip(self.u.par_iter_mut())
            .zip(self.streams.par_iter_mut())
            .map(|((x, ux), rng)| {
                let proposal: Vec<f64> = x
                    .iter()
                    .zip(steps)
                    .map(|(v, s)| {
                        let e: f64 = StandardNormal.sample(rng);
                        v + s * e
                    })
                    .collect();
                let uniform: f64 = rng.random();
                let Ok(u_new) = u.energy(&proposal) else {
                    return 0;
                };
                if u_new.is_finite() && uniform.ln() < -beta * (u_new - *ux) {
                    x.copy_from_slice(&proposal);
                    *ux = u_new;
                    1
                } else {
                    0
                }
            })
            .sum()
    }

    /// One independence Metropolis–Hastings sweep at `beta` with the flow's draws;
    /// returns the number accepted.
    fn flow_sweep(
        &mut self,
        u: &dyn Potential,
        beta: f64,
        flow: &Flow,
        rng: &mut ChainRng,
    ) -> Result<usize> {
        let n = self.len();
        let dim = self.dim;
        let draws = flow.sample(n, rng)?;
        let log_q_current = flow.log_prob(&self.x)?;
        let u_new = crate::mcmc::moves::energies_or_nan(u, &draws.x);
        let mut accepted = 0;
        for i in 0..n {
            let uniform: f64 = self.streams[i].random();
            let log_alpha = -beta * (u_new[i] - self.u[i]) + log_q_current[i] - draws.log_q[i];
            if u_new[i].is_finite() && log_alpha.is_finite() && uniform.ln() < log_alpha {
                self.x[i * dim..(i + 1) * dim].copy_from_slice(&draws.x[i * dim..(i + 1) * dim]);
                self.u[i] = u_new[i];
                accepted += 1;
            }
        }
        Ok(accepted)
    }

    /// Systematic resampling by `weights` (one per particle).
    fn resample(&mut self, weights: &ImportanceWeights, rng: &mut ChainRng) {
        let picked = weights.systematic_resample(self.len(), rng);
        self.x = picked
            .iter()
            .flat_map(|&i| &self.x[i * self.dim..(i + 1) * self.dim])
            .copied()
            .collect();
        self.u = picked.iter().map(|&i| self.u[i]).collect();
    }
}

/// The weights `exp(−Δβ U)` of a population (infinite energies weigh 0).
fn tempering_weights(energies: &[f64], delta_beta: f64) -> Result<ImportanceWeights> {
    ImportanceWeights::new(delta_beta, energies, &vec![0.0; energies.len()])
}

/// The next rung: the largest β′ ≤ `target` whose incremental weights `exp(−(β′ − β) U)`
/// keep a Kish ESS fraction of at least `threshold` (bisection on β′ − β).
fn next_beta(energies: &[f64], beta: f64, target: f64, threshold: f64) -> f64 {
    let ess_at =
        |b: f64| -> f64 { tempering_weights(energies, b - beta).map_or(0.0, |w| w.ess_fraction()) };
    if ess_at(target) >= threshold {
        return target;
    }
    let (mut lo, mut hi) = (beta, target);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if ess_at(mid) >= threshold {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Always advance, if only a little: a population whose every energy ties cannot stall.
    lo.max(beta + (target - beta) * 1e-6)
}

/// Trains `flow` by sequential Monte Carlo annealing against `potential` at `train.beta`
/// (see the module docs). The population starts from `data` (resampled to `particles`
/// rows) when given, else from the flow's own draws, and is spread by `start_sweeps` local
/// sweeps at the hot end. `train` gives the refits' batch size, learning rate and seed.
///
/// Returns the refits' steps in order (one [`TrainReport`], for the loss curve) and the
/// ladder.
///
/// # Errors
/// [`Error::InvalidArgument`] for bad knobs or a population without a finite energy;
/// [`Error::Training`] when the ladder needs more than `max_rungs` rungs; what training,
/// the flow and the potential report.
pub fn train_flow_smc(
    flow: &mut Flow,
    data: Option<&[f64]>,
    potential: &dyn Potential,
    train: &TrainConfig,
    smc: &SmcConfig,
    observer: &mut dyn SmcObserver,
) -> Result<(TrainReport, SmcReport)> {
    smc.validate()?;
    let dim = flow.dim();
    if potential.dim() != dim {
        return Err(Error::Dimension {
            what: format!("potential `{}` against the flow", potential.name()),
            expected: dim,
            got: potential.dim(),
        });
    }
    let n = smc.particles_for(dim);
    let target = train.beta;
    let mut rng = auxiliary_stream(train.seed, Purpose::Annealing);
    let start: Vec<f64> = match data {
        Some(d) if !d.is_empty() && d.len() % dim == 0 => {
            let rows = d.len() / dim;
            (0..n)
                .flat_map(|i| {
                    let r = i * rows / n;
                    d[r * dim..(r + 1) * dim].iter().copied()
                })
                .collect()
        }
        _ => flow.sample(n, &mut rng)?.x,
    };
    let u0 = crate::mcmc::moves::energies_or_nan(potential, &start);
    let mut population = Population {
        dim,
        x: start,
        u: u0,
        streams: auxiliary_streams(train.seed, Purpose::AnnealingParticles, n),
    };
    let mut evaluations = n as u64;
    // Configurations of infinite energy (clashes) are replaced by finite ones.
    if population.u.iter().all(|u| !u.is_finite()) {
        return Err(Error::InvalidArgument {
            name: "data".into(),
            message: "no starting configuration has a finite energy".into(),
        });
    }
    let finite = tempering_weights(&population.u, 0.0)?;
    population.resample(&finite, &mut rng);

    let mut report = TrainReport {
        steps: 0,
        skipped_steps: 0,
        final_loss: None,
        validation: Vec::new(),
        best_validation_nll: None,
        stopped_early: false,
        losses: Vec::new(),
        step_terms: Vec::new(),
    };
    let mut refit = |flow: &mut Flow,
                     x: &[f64],
                     steps: usize,
                     round: u64,
                     observer: &mut dyn SmcObserver|
     -> Result<()> {
        let config = TrainConfig {
            steps,
            forward_weight: 1.0,
            reverse_weight: 0.0,
            ess_weight: 0.0,
            validation_fraction: 0.0,
            patience: None,
            anneal_from_beta: None,
            anneal_steps: 0,
            reverse_from_step: 0,
            reverse_warmup_steps: 0,
            ess_from_step: 0,
            eval_every: steps.max(1),
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            seed: train.seed.wrapping_add(round),
            ..train.clone()
        };
        let r = train_flow(flow, Some(x), None, &config, &mut RelayStop(observer))?;
        report.steps += r.steps;
        report.skipped_steps += r.skipped_steps;
        report.final_loss = r.final_loss.or(report.final_loss);
        report.losses.extend(r.losses);
        report.step_terms.extend(r.step_terms);
        Ok(())
    };

    let mut scale = 1.0;
    let mut rungs: Vec<Rung> = Vec::new();
    let mut beta = target * smc.start_beta_fraction;
    let mut fitted = false;
    let mut climb_ess = 1.0;
    // The hot start, then one rung per pass; the last pass is at the target.
    loop {
        // Rejuvenate at `beta`.
        let sweeps = if rungs.is_empty() {
            smc.start_sweeps
        } else {
            smc.local_sweeps
        };
        let mut accepted = 0usize;
        for _ in 0..sweeps {
            let spread = population.spread();
            let steps: Vec<f64> = spread.iter().map(|s| scale * s).collect();
            let a = population.local_sweep(potential, beta, &steps);
            // Between sweeps the step follows the acceptance towards 0.3 (the population's
            // spread sets the shape; this sets the size).
            let rate = a as f64 / n as f64;
            scale = (scale * (2.0 * (rate - 0.3)).exp()).clamp(1e-4, 10.0);
            accepted += a;
            evaluations += n as u64;
        }
        let mut flow_acceptance = None;
        if fitted && smc.flow_sweeps > 0 {
            let mut a = 0;
            for _ in 0..smc.flow_sweeps {
                a += population.flow_sweep(potential, beta, flow, &mut rng)?;
                evaluations += n as u64;
            }
            flow_acceptance = Some(a as f64 / (n * smc.flow_sweeps) as f64);
        }
        let at_target = beta >= target;
        let steps = if at_target {
            smc.final_steps
        } else {
            smc.refit_steps
        };
        refit(flow, &population.x, steps, rungs.len() as u64, observer)?;
        fitted = true;
        let rung = Rung {
            beta,
            ess_fraction: climb_ess,
            local_acceptance: accepted as f64 / (n * sweeps.max(1)) as f64,
            flow_acceptance,
            mean_energy: population.u.iter().sum::<f64>() / n as f64,
        };
        observer.on_rung(&rung);
        rungs.push(rung);
        if at_target {
            break;
        }
        if rungs.len() >= smc.max_rungs {
            return Err(Error::Training {
                step: report.steps,
                message: format!(
                    "the annealing ladder needs more than smc.max_rungs = {} rungs (reached β = \
                     {beta:.4e} of {target})",
                    smc.max_rungs
                ),
            });
        }
        // Climb: reweight to the next β, resample.
        let next = next_beta(&population.u, beta, target, smc.ess_threshold);
        let climb = tempering_weights(&population.u, next - beta)?;
        climb_ess = climb.ess_fraction();
        population.resample(&climb, &mut rng);
        beta = next;
    }

    // How good is the flow now: fresh draws weighted to the target.
    let draws = flow.sample(n, &mut rng)?;
    let u = crate::mcmc::moves::energies_or_nan(potential, &draws.x);
    evaluations += n as u64;
    let final_ess_fraction =
        ImportanceWeights::new(target, &u, &draws.log_q).map_or(0.0, |w| w.ess_fraction());
    let ladder = SmcReport {
        rungs,
        energy_evaluations: evaluations,
        refit_steps: report.steps,
        final_ess_fraction,
    };
    Ok((report, ladder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_rung_keeps_the_ess_threshold() {
        let u: Vec<f64> = (0..1000).map(|i| (i as f64 / 100.0).powi(2)).collect();
        let b = next_beta(&u, 0.1, 10.0, 0.5);
        assert!(b > 0.1 && b < 10.0);
        let ess = tempering_weights(&u, b - 0.1).unwrap().ess_fraction();
        assert!((ess - 0.5).abs() < 1e-6);
        // Equal energies: the target is one step away.
        assert_eq!(next_beta(&[1.0; 10], 0.1, 10.0, 0.5), 10.0);
    }

    #[test]
    fn systematic_resampling_keeps_the_weights_proportions() {
        let mut p = Population {
            dim: 1,
            x: vec![0.0, 1.0, 2.0, 3.0],
            u: vec![0.0; 4],
            streams: Vec::new(),
        };
        let mut big = Population {
            dim: 1,
            x: (0..1000).map(|i| f64::from(i / 250)).collect(),
            u: vec![0.0; 1000],
            streams: Vec::new(),
        };
        // Weights exp(−U) = 0.1, 0.2, 0.3, 0.4 by block.
        let u: Vec<f64> = (0..1000)
            .map(|i| -[0.1f64, 0.2, 0.3, 0.4][i / 250].ln())
            .collect();
        big.resample(
            &tempering_weights(&u, 1.0).unwrap(),
            &mut crate::rng::stream(1, 0),
        );
        for (k, share) in [0.1, 0.2, 0.3, 0.4].iter().enumerate() {
            let count = big.x.iter().filter(|&&v| v == k as f64).count();
            // Systematic resampling: the copies of a contiguous block of particles are within
            // 1 of N times its weight (of interleaved ones they need not be: the grid aliases).
            assert!((count as f64 - 1000.0 * share).abs() <= 1.0, "{k}: {count}");
        }
        // Only particle 1 has a finite energy.
        let inf = f64::INFINITY;
        p.resample(
            &tempering_weights(&[inf, 0.0, inf, inf], 1.0).unwrap(),
            &mut crate::rng::stream(1, 0),
        );
        assert_eq!(p.x, vec![1.0; 4]);
    }
}
