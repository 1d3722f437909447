//! The proposal engine inside a host's own Monte Carlo loop (Rust API).
//!
//! - A host with its own double-well energy and random walk mixes in engine proposals from a
//!   Gaussian generator with an exact density: its x-marginal bins and left-well weight match
//!   quadrature (|z| < 4, error bars from the measured τ). Planted once: with the Hastings
//!   term's sign flipped in `ProposalEngine::propose_batch`, the left-well weight fails with
//!   z = +62.
//! - `examples/host_loop.rs --quick` (LJ13, a mean-free flow trained on the host's frames,
//!   compared with boltzgen's own sampler within error bars) exits successfully.

use std::process::Command;

use boltzgen::diagnostics::summarize;
use boltzgen::engine::{accept, log_acceptance, EngineConfig, ProposalEngine};
use boltzgen::generator::{torch_lock, DiagonalGaussian};
use boltzgen::potentials::DoubleWell2D;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

fn energy(x: &[f64]) -> f64 {
    x[0].powi(4) - 6.0 * x[0].powi(2) + x[0] + 0.5 * x[1] * x[1]
}

#[test]
fn a_host_loop_with_engine_proposals_samples_the_double_well() {
    // Broad enough to cover both wells; the engine makes it exact.
    let proposals = DiagonalGaussian::new(vec![-1.0, 0.0], vec![1.6, 1.2]).unwrap();
    let config = EngineConfig {
        seed: 17,
        buffer: 64,
        ..EngineConfig::default()
    };
    let mut engine = ProposalEngine::new(Box::new(proposals), config).unwrap();
    let walkers = 16;
    let steps = 20_000;
    let mut series: Vec<Vec<[f64; 2]>> = (0..walkers).map(|_| Vec::with_capacity(steps)).collect();
    let mut states: Vec<Vec<f64>> = vec![vec![-1.7, 0.0]; walkers];
    let mut u: Vec<f64> = states.iter().map(|x| energy(x)).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let (mut tried, mut taken) = (0, 0);
    for t in 0..steps + 1_000 {
        for w in 0..walkers {
            let (x_new, log_hastings) = if t % 3 == 0 {
                let p = engine.propose(&states[w]).unwrap();
                tried += 1;
                (p.x, p.log_hastings)
            } else {
                let step: Vec<f64> = states[w]
                    .iter()
                    .map(|v| {
                        let xi: f64 = StandardNormal.sample(&mut rng);
                        v + 0.5 * xi
                    })
                    .collect();
                (step, 0.0)
            };
            let u_new = energy(&x_new);
            if accept(log_acceptance(1.0, u[w], u_new, log_hastings), rng.random()) {
                taken += usize::from(t % 3 == 0);
                states[w] = x_new;
                u[w] = u_new;
            }
            if t >= 1_000 {
                series[w].push([states[w][0], states[w][1]]);
            }
        }
    }
    assert!(taken as f64 / tried as f64 > 0.1);
    let stats = engine.stats();
    assert_eq!(stats.proposals, tried as u64);
    assert!(stats.remembered > 0, "{stats:?}");

    let dw = DoubleWell2D::new(1.0, 6.0, 1.0, 1.0).unwrap();
    for (lo, hi) in [
        (-10.0, 0.0),
        (-2.4, -2.0),
        (-2.0, -1.5),
        (-1.5, -1.0),
        (1.0, 10.0),
    ] {
        let exact = dw.x_probability(lo, hi, 1.0).unwrap();
        let indicator: Vec<Vec<f64>> = series
            .iter()
            .map(|s| {
                s.iter()
                    .map(|x| f64::from(u8::from(x[0] >= lo && x[0] < hi)))
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = indicator.iter().map(Vec::as_slice).collect();
        let s = summarize(&refs).unwrap();
        assert!(s.iat.converged && refs[0].len() as f64 >= 50.0 * s.iat.tau);
        let z = (s.mean - exact) / s.std_error;
        if std::env::var("SHOW_Z").is_ok() {
            eprintln!("P({lo} < x < {hi}): z = {z:.2}, tau = {:.1}", s.iat.tau);
        }
        assert!(
            z.abs() < 4.0,
            "P({lo} < x < {hi}) = {} ± {} against exact {exact} (z = {z:.2})",
            s.mean,
            s.std_error
        );
    }
}

#[test]
fn the_lj13_host_loop_example_agrees_with_the_sampler() {
    let _torch = torch_lock();
    // Integration tests run from target/<profile>/deps; cargo builds examples next door.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/host_loop");
    let out = Command::new(&example)
        .arg("--quick")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", example.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "host_loop --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reproduces boltzgen's sampler"), "{stdout}");
}
