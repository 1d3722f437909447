//! Exactness of the Metropolis–Hastings kernels against a Gaussian with known moments.
//!
//! Each chain's mean and variance of x₀ are compared with the exact values by a z-test whose
//! standard error comes from batch means (100 batches), which accounts for autocorrelation:
//! |estimate − exact| < 4 se. Power (planted bugs, checked once each and noted here):
//! - MALA with its Hastings term set to 0 (unadjusted Langevin): the variance test failed;
//! - the flow-independence proposal with its Hastings term set to 0 and a poor generator
//!   (𝒩(0, I) against a target centred at (1, −1)): the mean test failed;
//! - the latent walk with its Jacobian term set to 0, through a perturbed flow: see below.

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Precision};
use boltzgen::mcmc::{
    run_chain, ChainState, FlowIndependence, LatentWalk, Mala, Move, RandomWalk, Target,
};
use boltzgen::potentials::Gaussian;
use boltzgen::rng::stream;

mod common;
use common::nonlinear_flow;

const STEPS: usize = 200_000;
const BURN_IN: usize = 2_000;
const BATCHES: usize = 100;

fn target() -> Gaussian {
    Gaussian::new(vec![1.0, -1.0], vec![2.0, 0.6, 0.6, 1.0]).unwrap()
}

/// Batch-means estimate and standard error of the mean of `values`.
fn batch_mean(values: &[f64]) -> (f64, f64) {
    let size = values.len() / BATCHES;
    let means: Vec<f64> = values
        .chunks_exact(size)
        .map(|c| c.iter().sum::<f64>() / size as f64)
        .collect();
    let m = means.iter().sum::<f64>() / means.len() as f64;
    let var = means.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (means.len() - 1) as f64;
    (m, (var / means.len() as f64).sqrt())
}

fn check_moments(name: &str, moves: Vec<(Box<dyn Move>, f64)>, seed: u64, steps: usize) {
    let g = target();
    let beta = 1.0;
    let mut moves = moves;
    let mut state = ChainState::new(vec![0.0, 0.0], &g).unwrap();
    let mut xs = Vec::with_capacity(steps);
    let mut step = 0;
    let stats = run_chain(
        &mut state,
        &g,
        beta,
        &mut moves,
        steps + BURN_IN,
        &mut stream(seed, 0),
        |s| {
            if step >= BURN_IN {
                xs.push(s.x[0]);
            }
            step += 1;
        },
    )
    .unwrap();
    for s in &stats {
        assert!(
            s.acceptance_rate() > 0.05,
            "{name}: {} accepts {:.3}",
            s.name,
            s.acceptance_rate()
        );
    }
    let exact_mean = g.mean()[0];
    let exact_var = g.covariance()[0];
    let (m, se_m) = batch_mean(&xs);
    assert!(
        (m - exact_mean).abs() < 4.0 * se_m,
        "{name}: mean {m} vs {exact_mean} (se {se_m})"
    );
    let sq: Vec<f64> = xs.iter().map(|x| (x - exact_mean).powi(2)).collect();
    let (v, se_v) = batch_mean(&sq);
    assert!(
        (v - exact_var).abs() < 4.0 * se_v,
        "{name}: variance {v} vs {exact_var} (se {se_v})"
    );
}

#[test]
fn random_walk_samples_the_gaussian() {
    let _torch = boltzgen::generator::torch_lock();
    check_moments(
        "random walk",
        vec![(Box::new(RandomWalk { step: 0.8 }), 1.0)],
        1,
        STEPS,
    );
}

#[test]
fn mala_samples_the_gaussian() {
    let _torch = boltzgen::generator::torch_lock();
    check_moments("MALA", vec![(Box::new(Mala { step: 0.9 }), 1.0)], 2, STEPS);
}

#[test]
fn flow_independence_with_a_poor_generator_is_still_exact() {
    let _torch = boltzgen::generator::torch_lock();
    // An untrained flow is 𝒩(0, I): wrong mean, wrong covariance. Exactness must not care.
    tch::manual_seed(0);
    let flow = Flow::new(
        FlowConfig::real_nvp(2, 2, &[8]).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let moves: Vec<(Box<dyn Move>, f64)> = vec![
        (Box::new(FlowIndependence::new(flow, 256).unwrap()), 1.0),
        (Box::new(RandomWalk { step: 0.5 }), 1.0),
    ];
    check_moments("flow + random walk", moves, 3, STEPS);
}

/// The latent walk's Hastings term is `log|det J_{f⁻¹}(x)| − log|det J_{f⁻¹}(x′)|`, each side
/// recomputed here through the flow's own inverse.
#[test]
fn latent_walk_hastings_term_is_the_jacobian_ratio() {
    let _torch = boltzgen::generator::torch_lock();
    let g = target();
    let mut walk = LatentWalk::new(nonlinear_flow(), 0.7);
    let mut state = ChainState::new(vec![0.3, -0.4], &g).unwrap();
    let mut rng = stream(8, 0);
    for _ in 0..20 {
        let target = Target {
            potential: &g,
            beta: 1.0,
        };
        let p = walk
            .propose_batch(&mut [&mut state], &[0.7], &target, &mut rng)
            .unwrap()
            .proposals
            .remove(0);
        let (_, ld_x) = walk.flow().inverse(&state.x).unwrap();
        let (_, ld_new) = walk.flow().inverse(&p.x).unwrap();
        let expected = ld_x[0] - ld_new[0];
        assert!(
            (p.log_hastings - expected).abs() < 1e-8,
            "{} vs {expected}",
            p.log_hastings
        );
    }
}

/// Exactness of the latent walk through a flow unrelated to the target. Slow (two unbatched
/// flow calls per step: ~300 s for 2·10⁵ steps), so it is run by hand:
/// `cargo test --release --test mcmc_exact -- --ignored`. It passed when written. At 2·10⁴
/// steps it failed (mean 0.68 and 0.85 against 1): this chain mixes slowly and 100 batches of
/// 200 steps are too short for a valid batch-means error bar.
#[test]
#[ignore]
fn latent_walk_through_a_nonlinear_flow_is_exact() {
    let _torch = boltzgen::generator::torch_lock();
    check_moments(
        "latent walk",
        vec![(Box::new(LatentWalk::new(nonlinear_flow(), 0.5)), 1.0)],
        4,
        STEPS,
    );
}
