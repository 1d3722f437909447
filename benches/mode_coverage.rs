//! Task benchmark: does a learned generator cover every mode? Reverse KL is mode-seeking;
//! boltzgen's documented recipe is a rational-quadratic spline flow trained by reverse KL with
//! temperature annealing (the target starts hot, where the wells merge, and cools to β = 1),
//! then importance-weighted.
//!
//! Targets (issue: generators): 2-D double well, minor-well weight 0.0329 ± 0.003 and
//! |log Ẑ − log Z| ≤ 0.01; ManyWell-32, |log Ẑ − 164.696| ≤ 0.1 from 10⁵ draws and the
//! weighted fraction of x₁ > 0 per pair at 0.8443 ± 0.02; ≤ 10 minutes of training on 2 cores.
//!
//! `MODE_COVERAGE=double_well|many_well|both` (default both), `*_STEPS` to override steps.

use std::time::Instant;

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Generator};
use boltzgen::potentials::{DoubleWell2D, ExactLogZ, ManyWell, Potential};
use boltzgen::reweight::ImportanceWeights;
use boltzgen::rng::stream;
use boltzgen::train::{train_flow, LrSchedule, TrainConfig};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn report<P: Potential + ExactLogZ>(
    name: &str,
    flow: &Flow,
    target: &P,
    n: usize,
    seconds: f64,
    x_index: usize,
    exact_fraction: f64,
) {
    let s = flow.sample(n, &mut stream(99, 0)).expect("sampling");
    let mut u = vec![0.0; n];
    target.energies(&s.x, &mut u).expect("energies");
    let w = ImportanceWeights::new(1.0, &u, &s.log_q).expect("weights");
    let log_z = w.log_z();
    let exact = target.log_z(1.0).expect("exact log Z");
    let dim = target.dim();
    // Fraction of x > 0: over pairs for ManyWell (every even coordinate), over the one x for
    // the double well.
    let pairs: Vec<usize> = (x_index..dim).step_by(2).collect();
    let f: Vec<f64> =
        s.x.chunks_exact(dim)
            .map(|c| pairs.iter().filter(|&&i| c[i] > 0.0).count() as f64 / pairs.len() as f64)
            .collect();
    let frac = w.expectation(&f).expect("expectation");
    let raw = f.iter().sum::<f64>() / n as f64;
    println!(
        "{name}: trained {seconds:.0} s; {n} draws, Kish ESS {:.1} %, invalid {}",
        100.0 * w.ess_fraction(),
        w.invalid()
    );
    println!(
        "{name}: log Z estimate {:.4} ± {:.4}, exact {exact:.4}, error {:+.4}",
        log_z.value,
        log_z.std_error,
        log_z.value - exact
    );
    println!(
        "{name}: weight of x > 0: weighted {:.4} ± {:.4}, unweighted generator {raw:.4}, exact {exact_fraction:.4}",
        frac.value, frac.std_error
    );
}

fn double_well() {
    let target = DoubleWell2D::default();
    tch::manual_seed(0);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 6, &[64, 64], 10, 5.0),
        DeviceChoice::Cpu,
    )
    .expect("flow");
    let steps = env_usize("DOUBLE_WELL_STEPS", 3000);
    let config = TrainConfig {
        steps,
        batch_size: 512,
        learning_rate: 3e-3,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.02,
        },
        forward_weight: 0.0,
        reverse_weight: 1.0,
        anneal_from_beta: Some(0.1),
        anneal_steps: steps / 2,
        ..TrainConfig::default()
    };
    let t = Instant::now();
    train_flow(
        &mut flow,
        None,
        Some(&target),
        &config,
        &mut boltzgen::train::NoObserver,
    )
    .expect("training");
    let exact = target
        .x_probability(0.0, f64::INFINITY, 1.0)
        .expect("exact");
    report(
        "double_well",
        &flow,
        &target,
        100_000,
        t.elapsed().as_secs_f64(),
        0,
        exact,
    );
}

fn many_well() {
    let target = ManyWell::new(32).expect("target");
    tch::manual_seed(0);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(32, 8, &[128, 128], 10, 5.0),
        DeviceChoice::Cpu,
    )
    .expect("flow");
    let steps = env_usize("MANY_WELL_STEPS", 4000);
    let config = TrainConfig {
        steps,
        batch_size: 256,
        learning_rate: 1e-3,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.02,
        },
        forward_weight: 0.0,
        reverse_weight: 1.0,
        anneal_from_beta: Some(0.1),
        anneal_steps: steps / 2,
        ..TrainConfig::default()
    };
    let t = Instant::now();
    train_flow(
        &mut flow,
        None,
        Some(&target),
        &config,
        &mut boltzgen::train::NoObserver,
    )
    .expect("training");
    let exact = target
        .pair_x_probability(0.0, f64::INFINITY, 1.0)
        .expect("exact");
    report(
        "many_well_32",
        &flow,
        &target,
        100_000,
        t.elapsed().as_secs_f64(),
        0,
        exact,
    );
}

fn main() {
    tch::set_num_threads(2);
    let which = std::env::var("MODE_COVERAGE").unwrap_or_else(|_| "both".into());
    if which == "both" || which == "double_well" {
        double_well();
    }
    if which == "both" || which == "many_well" {
        many_well();
    }
}
