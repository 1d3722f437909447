//! The mode-coverage benchmark (issue 22): a family of double wells whose barriers and
//! minor-well weights are drawn from a seed, each trained from its energy alone by one
//! method, then judged by 10⁵ importance-weighted direct draws against the exact answers.
//!
//! ```sh
//! MODE_COVERAGE_METHOD=smc|reverse_kl MODE_COVERAGE_MEMBERS=12 MODE_COVERAGE_SEED=2026 \
//!     cargo bench --bench mode_coverage_family
//! ```
//!
//! `smc` is annealing by sequential Monte Carlo (`train::smc`); `reverse_kl` is the built-in
//! example's recipe (reverse KL annealed from β = 0.1 over 750 of 1500 steps). Prints one
//! row per member: barrier, exact minor weight, Kish ESS, log Ẑ − log Z with its error, the
//! weights' minor share with its error, whether both pass, and the seconds.

use std::time::Instant;

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Generator};
use boltzgen::potentials::{DoubleWell2D, ExactLogZ};
use boltzgen::reweight::ImportanceWeights;
use boltzgen::train::{train_flow, train_flow_smc, LrSchedule, SmcConfig, TrainConfig};
use rand::RngExt;

/// A double well with barrier `barrier` (kT at β = 1, from the x-part's maximum at the
/// untilted well) and right-well (x > 0) probability `minor`: the tilt c is found by
/// bisection on the exact probability.
fn member(barrier: f64, minor: f64) -> DoubleWell2D {
    let b = 2.0 * barrier.sqrt();
    let p = |c: f64| {
        DoubleWell2D::new(1.0, b, c, 1.0)
            .unwrap()
            .x_probability(0.0, 50.0, 1.0)
            .unwrap()
    };
    // P(x > 0) falls as c grows (the right well rises).
    let (mut lo, mut hi) = (0.0, 20.0);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if p(mid) > minor {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DoubleWell2D::new(1.0, b, 0.5 * (lo + hi), 1.0).unwrap()
}

fn main() -> boltzgen::Result<()> {
    let var = |name: &str| std::env::var(name).ok();
    let method = var("MODE_COVERAGE_METHOD").unwrap_or_else(|| "smc".into());
    let members: usize = var("MODE_COVERAGE_MEMBERS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let seed: u64 = var("MODE_COVERAGE_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let mut draw = boltzgen::rng::stream(seed, 0);
    println!("method {method}, seed {seed}");
    println!(
        "{:>8} {:>9} {:>8} {:>18} {:>20} {:>6} {:>7}",
        "barrier", "minor", "ESS %", "logZ err ± se", "minor (weights)", "pass", "seconds"
    );
    for k in 0..members {
        // Barriers 5–30 kT, minor weights 0.1 %–50 % (log-uniform).
        let barrier = 5.0 + 25.0 * draw.random::<f64>();
        let minor = (0.001f64.ln() + (0.5f64.ln() - 0.001f64.ln()) * draw.random::<f64>()).exp();
        let u = member(barrier, minor);
        let exact = u.log_z(1.0)?;
        let started = Instant::now();
        tch::manual_seed(k as i64);
        let mut flow = Flow::new(
            FlowConfig::neural_spline(2, 4, &[32, 32], 8, 5.0),
            DeviceChoice::Cpu,
        )?;
        let train = TrainConfig {
            steps: 1500,
            batch_size: 256,
            learning_rate: 3e-3,
            seed: seed + k as u64,
            ..Default::default()
        };
        match method.as_str() {
            "reverse_kl" => {
                let config = TrainConfig {
                    schedule: LrSchedule::Cosine {
                        final_fraction: 0.02,
                    },
                    forward_weight: 0.0,
                    reverse_weight: 1.0,
                    anneal_from_beta: Some(0.1),
                    anneal_steps: 750,
                    validation_fraction: 0.0,
                    ..train
                };
                train_flow(
                    &mut flow,
                    None,
                    Some(&u),
                    &config,
                    &mut boltzgen::train::NoObserver,
                )?;
            }
            _ => {
                let (_, report) = train_flow_smc(
                    &mut flow,
                    None,
                    &u,
                    &train,
                    &SmcConfig::default(),
                    &mut |_| {},
                )?;
                eprintln!(
                    "  {} rungs, {} ML steps, {} energy evaluations, final ESS {:.3}",
                    report.rungs.len(),
                    report.refit_steps,
                    report.energy_evaluations,
                    report.final_ess_fraction
                );
            }
        }
        let s = flow.sample(
            100_000,
            &mut boltzgen::rng::stream(seed + 1000 + k as u64, 0),
        )?;
        let energies: Vec<f64> =
            s.x.chunks_exact(2)
                .map(|x| boltzgen::potentials::Potential::energy(&u, x).unwrap_or(f64::NAN))
                .collect();
        let w = ImportanceWeights::new(1.0, &energies, &s.log_q)?;
        let z = w.log_z();
        let right: Vec<f64> =
            s.x.chunks_exact(2)
                .map(|x| f64::from(u8::from(x[0] > 0.0)))
                .collect();
        let share = w.expectation(&right)?;
        let err = z.value - exact;
        let pass_z = err.abs() <= (3.0 * z.std_error).max(0.02);
        let pass_m = (share.value - minor).abs() <= 3.0 * share.std_error;
        println!(
            "{barrier:>8.2} {minor:>9.5} {:>8.2} {:>9.4} ± {:<7.4} {:>9.5} ± {:<8.5} {:>6} {:>7.1}",
            100.0 * w.ess_fraction(),
            err,
            z.std_error,
            share.value,
            share.std_error,
            if pass_z && pass_m { "yes" } else { "NO" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
