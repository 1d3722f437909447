//! Relaxing training frames to the target temperature with local Metropolis moves.
//!
//! A trajectory from a hotter simulation visits states that the target ensemble weights
//! lightly but does contain (for alanine dipeptide, the αL basin that 300 K MD never reaches).
//! Its frames are hot in every degree of freedom, though, so a generator trained on them draws
//! strained bonds and angles there, which the target's energy then rejects. Running a short
//! local chain at the target temperature from each frame cools the fast coordinates while the
//! slow ones (torsions behind barriers) stay where the hot frame put them: the frames keep the
//! hot run's coverage and gain the target's local structure.
//!
//! This prepares data; it is not a sampler. The step size adapts throughout (towards
//! `target_acceptance`) and nothing here claims exactness: the Metropolis–Hastings test and
//! the importance weights downstream are what put every state at its target weight.

use boltzgen_potentials::Potential;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::adapt::StepAdapter;
use super::kernel::decide;
use super::moves::{Move, ParticleWalk, Target};
use super::state::ChainState;
use crate::error::{Error, Result};
use crate::rng::{auxiliary_streams, ChainRng, Purpose};

/// How to relax frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelaxConfig {
    /// Metropolis steps per frame (one particle moves per step).
    pub steps: usize,
    /// Initial one-particle step size, in the system's length unit.
    pub step: f64,
    /// Coordinates per particle (3 for molecules).
    pub spatial_dim: usize,
    /// Acceptance rate the step size adapts towards.
    pub target_acceptance: f64,
    /// Seed of the per-frame streams.
    pub seed: u64,
}

impl RelaxConfig {
    /// Checks the settings for a system of `dim` coordinates.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field (`spatial_dim`, `step`,
    /// `target_acceptance`).
    pub fn validate(&self, dim: usize) -> Result<()> {
        let bad = |name: &str, message: String| {
            Err(Error::InvalidArgument {
                name: name.into(),
                message,
            })
        };
        if self.spatial_dim == 0 || dim % self.spatial_dim != 0 {
            return bad(
                "spatial_dim",
                format!("{} does not divide {dim} coordinates", self.spatial_dim),
            );
        }
        if !(self.step > 0.0 && self.step.is_finite()) {
            return bad("step", format!("must be positive, got {}", self.step));
        }
        if !(self.target_acceptance > 0.0 && self.target_acceptance < 1.0) {
            return bad(
                "target_acceptance",
                format!("must lie in (0, 1), got {}", self.target_acceptance),
            );
        }
        Ok(())
    }
}

/// What relaxing did, averaged over frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelaxReport {
    /// Frames relaxed.
    pub frames: usize,
    /// Metropolis steps per frame.
    pub steps: usize,
    /// Mean U over the frames as read.
    pub mean_energy_before: f64,
    /// Mean U over the relaxed frames.
    pub mean_energy_after: f64,
    /// Accepted / proposed over all frames.
    pub acceptance: f64,
    /// Mean of the frames' final step sizes.
    pub mean_final_step: f64,
}

impl RelaxReport {
    /// The report of both sets of frames together (frame-weighted means).
    pub fn merge(&self, other: &RelaxReport) -> RelaxReport {
        let n = (self.frames + other.frames).max(1) as f64;
        let (a, b) = (self.frames as f64 / n, other.frames as f64 / n);
        let (sa, sb) = (
            (self.frames * self.steps) as f64,
            (other.frames * other.steps) as f64,
        );
        RelaxReport {
            frames: self.frames + other.frames,
            steps: self.steps.max(other.steps),
            mean_energy_before: a * self.mean_energy_before + b * other.mean_energy_before,
            mean_energy_after: a * self.mean_energy_after + b * other.mean_energy_after,
            acceptance: (sa * self.acceptance + sb * other.acceptance) / (sa + sb).max(1.0),
            mean_final_step: a * self.mean_final_step + b * other.mean_final_step,
        }
    }
}

/// Relaxes every frame of `frames` (`[n × dim]`, row-major) in place by `config.steps`
/// one-particle Metropolis steps at inverse temperature `beta`, frames in parallel.
///
/// Frame `i` uses stream `i` of the relaxation purpose of `config.seed`, so the result does
/// not depend on the number of threads.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad config or a frame whose energy is not finite (naming
/// the 0-based frame); what the potential reports. On error `frames` may be partly relaxed.
pub fn relax_frames(
    frames: &mut [f64],
    potential: &dyn Potential,
    beta: f64,
    config: &RelaxConfig,
) -> Result<RelaxReport> {
    let dim = potential.dim();
    if dim == 0 || frames.len() % dim != 0 {
        return Err(Error::Dimension {
            what: "frames to relax".into(),
            expected: dim,
            got: frames.len(),
        });
    }
    config.validate(dim)?;
    let n = frames.len() / dim;
    let streams = auxiliary_streams(config.seed, Purpose::Relaxation, n);
    let per_frame: Vec<FrameOutcome> = frames
        .par_chunks_mut(dim)
        .zip(streams)
        .enumerate()
        .map(|(i, (x, mut rng))| relax_one(i, x, potential, beta, config, &mut rng))
        .collect::<Result<_>>()?;
    let mean = |f: fn(&FrameOutcome) -> f64| per_frame.iter().map(f).sum::<f64>() / n.max(1) as f64;
    let accepted: usize = per_frame.iter().map(|o| o.accepted).sum();
    Ok(RelaxReport {
        frames: n,
        steps: config.steps,
        mean_energy_before: mean(|o| o.energy_before),
        mean_energy_after: mean(|o| o.energy_after),
        acceptance: accepted as f64 / (n * config.steps).max(1) as f64,
        mean_final_step: mean(|o| o.final_step),
    })
}

struct FrameOutcome {
    energy_before: f64,
    energy_after: f64,
    accepted: usize,
    final_step: f64,
}

fn relax_one(
    frame: usize,
    x: &mut [f64],
    potential: &dyn Potential,
    beta: f64,
    config: &RelaxConfig,
    rng: &mut ChainRng,
) -> Result<FrameOutcome> {
    let unusable = |why: String| Error::InvalidArgument {
        name: format!("frame {frame}"),
        message: format!("{why}; it cannot be relaxed"),
    };
    let energy_before = potential.energy(x).map_err(|e| unusable(e.to_string()))?;
    if !energy_before.is_finite() {
        return Err(unusable(format!("its energy is {energy_before}")));
    }
    let mut adapter = StepAdapter::new(config.step, config.target_acceptance);
    let walk = ParticleWalk {
        step: config.step,
        spatial_dim: config.spatial_dim,
    };
    let target = Target { potential, beta };
    let mut state = ChainState::with_energy(x.to_vec(), energy_before);
    let mut accepted = 0;
    let mut spare = Vec::with_capacity(x.len());
    for _ in 0..config.steps {
        let proposed = walk.propose(&mut state, adapter.step(), &target, rng, spare)?;
        // Coordinates the potential refuses count as a rejection (log α = −∞ via NaN).
        let u_new = potential.energy(&proposed.x).unwrap_or(f64::NAN);
        let (decision, unused) = decide(&mut state, proposed, u_new, beta, rng);
        // Unlike the sampler's burn-in, relaxation adapts at every step: it prepares data and
        // claims no stationary distribution (see the module docs).
        adapter.update(decision.log_alpha);
        accepted += usize::from(decision.accepted);
        spare = unused;
    }
    x.copy_from_slice(&state.x);
    Ok(FrameOutcome {
        energy_before,
        energy_after: state.energy,
        accepted,
        final_step: adapter.step(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzgen_potentials::Gaussian;

    fn config(steps: usize) -> RelaxConfig {
        RelaxConfig {
            steps,
            step: 0.5,
            spatial_dim: 1,
            target_acceptance: 0.4,
            seed: 7,
        }
    }

    /// Hot frames of a harmonic well cool to the target temperature: ⟨U⟩ → d/(2β).
    #[test]
    fn hot_gaussian_frames_cool_to_the_target_temperature() {
        let dim = 4;
        let beta = 2.0;
        let potential = Gaussian::isotropic(vec![0.0; dim], 1.0).unwrap();
        // Frames drawn at β = 0.1: ⟨U⟩ = 20 there, d/(2β) = 1 at β = 2.
        let mut rng = crate::rng::stream(3, 0);
        let n = 2000;
        let mut frames: Vec<f64> = (0..n * dim)
            .map(|_| 10f64.sqrt() * crate::mcmc::moves::gaussian(&mut rng))
            .collect();
        let report = relax_frames(&mut frames, &potential, beta, &config(400)).unwrap();
        assert_eq!(report.frames, n);
        assert!((report.mean_energy_before - 20.0).abs() < 1.0, "{report:?}");
        // At β, U of a relaxed frame has variance d/(2β²) = 0.5; the mean of 2000 independent
        // frames has standard error 0.016: 5σ.
        assert!((report.mean_energy_after - 1.0).abs() < 0.08, "{report:?}");
        let direct: f64 = frames
            .chunks(dim)
            .map(|x| potential.energy(x).unwrap())
            .sum::<f64>()
            / n as f64;
        assert!((direct - report.mean_energy_after).abs() < 1e-9);
        assert!(
            report.acceptance > 0.3 && report.acceptance < 0.5,
            "{report:?}"
        );
    }

    /// The result depends on the seed and frame index only, not on the thread count.
    #[test]
    fn relaxation_is_reproducible_across_thread_counts() {
        let potential = Gaussian::isotropic(vec![0.0; 3], 1.0).unwrap();
        let start: Vec<f64> = (0..30).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        let run = |threads: usize| {
            let mut frames = start.clone();
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| relax_frames(&mut frames, &potential, 1.0, &config(50)).unwrap());
            frames
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn bad_frames_and_configs_are_named() {
        let potential = Gaussian::isotropic(vec![0.0; 2], 1.0).unwrap();
        let mut frames = vec![0.0, 0.0, f64::INFINITY, 0.0];
        let e = relax_frames(&mut frames, &potential, 1.0, &config(5)).unwrap_err();
        assert!(e.to_string().contains("frame 1"), "{e}");
        let mut frames = vec![0.0; 3];
        assert!(relax_frames(&mut frames, &potential, 1.0, &config(5)).is_err());
        let mut frames = vec![0.0; 4];
        let c = RelaxConfig {
            step: 0.0,
            ..config(5)
        };
        let e = relax_frames(&mut frames, &potential, 1.0, &c).unwrap_err();
        assert!(e.to_string().contains("step"), "{e}");
    }
}
