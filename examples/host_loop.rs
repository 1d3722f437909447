//! A host Monte Carlo code that owns its LJ13 energy and its one-atom displacement moves, and
//! mixes in learned global moves from boltzgen's [`ProposalEngine`] through the Rust API.
//!
//! 1. The host samples LJ13 (ε = r_m = 1, harmonic confinement k = 1 to the centre of mass,
//!    β = 2) with its own moves from the icosahedron, and keeps frames as training data.
//! 2. boltzgen trains a mean-free RealNVP on those frames (forward KL) and serves it through a
//!    `ProposalEngine`. The host's walkers ask for one batched proposal every
//!    `LOCAL_PER_ENGINE` local moves and accept it with the host's own energy and
//!    [`log_acceptance`]. Draws keep each walker's centre of mass.
//! 3. boltzgen's own sampler runs the same energy (its `lj13` potential), the same flow and
//!    the same move mix; ⟨U⟩ and the mean squared radius must agree within error bars
//!    (|z| < 4, error bars from the measured autocorrelation times). The process exits with
//!    status 1 if they do not.
//!
//! Run: `cargo run --release --example host_loop` (about a minute on 2 cores), or with
//! `-- --quick` for the shorter run that the test suite makes.

use std::process::ExitCode;

use boltzgen::diagnostics::summarize;
use boltzgen::engine::{accept, log_acceptance, EngineConfig, ProposalEngine};
use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Precision};
use boltzgen::mcmc::{Learned, MoveKind, MoveSpec, Sampler, SamplerConfig};
use boltzgen::potentials::{LennardJonesCluster, Potential};
use boltzgen::train::{train_flow, NoObserver, TrainConfig};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

const N: usize = 13;
const DIM: usize = 3 * N;
const BETA: f64 = 2.0;
const STEP: f64 = 0.12;
const LOCAL_PER_ENGINE: usize = 50;
const WALKERS: usize = 8;

/// The host's own energy: Lennard-Jones with ε = r_m = 1 plus ½ Σ |xᵢ − x̄|².
fn host_energy(x: &[f64]) -> f64 {
    let mut u = 0.0;
    for i in 0..N {
        for j in i + 1..N {
            let d2: f64 = (0..3).map(|k| (x[3 * i + k] - x[3 * j + k]).powi(2)).sum();
            let s3 = (1.0 / d2).powi(3);
            u += s3 * (s3 - 2.0);
        }
    }
    u + 0.5 * radius_squared_sum(x)
}

/// Σ |xᵢ − x̄|².
fn radius_squared_sum(x: &[f64]) -> f64 {
    let centre: Vec<f64> = (0..3)
        .map(|k| x.iter().skip(k).step_by(3).sum::<f64>() / N as f64)
        .collect();
    x.chunks(3)
        .map(|p| (0..3).map(|k| (p[k] - centre[k]).powi(2)).sum::<f64>())
        .sum()
}

/// Mean squared distance of an atom from the centre: the observable compared besides U.
fn mean_squared_radius(x: &[f64]) -> f64 {
    radius_squared_sum(x) / N as f64
}

fn icosahedron() -> Vec<f64> {
    let (a, b) = (0.5, 0.809);
    let mut x = vec![0.0, 0.0, 0.0];
    for (p, q) in [(a, b), (-a, b), (a, -b), (-a, -b)] {
        x.extend([0.0, p, q, p, q, 0.0, q, 0.0, p]);
    }
    x
}

/// One host walker: its state, energy and random stream.
struct Walker {
    x: Vec<f64>,
    u: f64,
    rng: Xoshiro256PlusPlus,
}

impl Walker {
    /// One displacement move of a random atom (symmetric: Hastings term 0).
    fn local_move(&mut self) -> bool {
        let atom = self.rng.random_range(0..N);
        let mut x_new = self.x.clone();
        for k in 0..3 {
            let xi: f64 = StandardNormal.sample(&mut self.rng);
            x_new[3 * atom + k] += STEP * xi;
        }
        self.consider(x_new, 0.0)
    }

    /// The host's accept/reject step, for its own moves and for the engine's alike.
    fn consider(&mut self, x_new: Vec<f64>, log_hastings: f64) -> bool {
        let u_new = host_energy(&x_new);
        let log_alpha = log_acceptance(BETA, self.u, u_new, log_hastings);
        if accept(log_alpha, self.rng.random()) {
            self.x = x_new;
            self.u = u_new;
            true
        } else {
            false
        }
    }
}

/// Mean ± standard error of `f` over the chains' series (error bar from the measured τ).
fn estimate(series: &[Vec<f64>]) -> Result<(f64, f64, f64), String> {
    let refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
    let s = summarize(&refs).map_err(|e| e.to_string())?;
    if !s.iat.converged {
        return Err(format!("series too short for τ = {:.1}", s.iat.tau));
    }
    Ok((s.mean, s.std_error, s.iat.tau))
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("host_loop: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let sweeps = if quick { 1_500 } else { 6_000 };
    let lj13 = LennardJonesCluster::lj13();
    let start = icosahedron();
    let diff = (host_energy(&start) - lj13.energy(&start)?).abs();
    assert!(
        diff < 1e-9,
        "host and boltzgen LJ13 energies differ by {diff}"
    );

    // 1. The host's own sampling, kept as training data.
    let mut walkers: Vec<Walker> = (0..WALKERS as u64)
        .map(|w| Walker {
            x: start.clone(),
            u: host_energy(&start),
            rng: Xoshiro256PlusPlus::seed_from_u64(1000 + w),
        })
        .collect();
    let mut data = Vec::new();
    for walker in &mut walkers {
        for t in 0..60_000 {
            walker.local_move();
            if t >= 20_000 && t % 50 == 0 {
                data.extend_from_slice(&walker.x);
            }
        }
    }

    // 2. A mean-free flow trained on them, served by the engine.
    tch::manual_seed(13);
    let config = FlowConfig::real_nvp(DIM - 3, 4, &[64, 64])
        .mean_free(N, 3)?
        .with_precision(Precision::Float32);
    let mut flow = Flow::new(config, DeviceChoice::Cpu)?;
    let training = TrainConfig {
        steps: if quick { 300 } else { 1_000 },
        learning_rate: 1e-3,
        ..TrainConfig::default()
    };
    train_flow(&mut flow, Some(&data), None, &training, &mut NoObserver)?;
    let engine_config = EngineConfig {
        seed: 5,
        device: DeviceChoice::Cpu,
        ..EngineConfig::default()
    };
    let mut engine = ProposalEngine::new(Box::new(flow), engine_config)?;

    // The host loop: LOCAL_PER_ENGINE local moves per walker, then one batched engine call.
    let (mut proposed, mut accepted) = (0u64, 0u64);
    let mut energies = vec![Vec::new(); WALKERS];
    let mut radii = vec![Vec::new(); WALKERS];
    let mut current = vec![0.0; WALKERS * DIM];
    let mut x_new = vec![0.0; WALKERS * DIM];
    let mut log_hastings = vec![0.0; WALKERS];
    for _ in 0..sweeps {
        for (w, walker) in walkers.iter_mut().enumerate() {
            for _ in 0..LOCAL_PER_ENGINE {
                walker.local_move();
            }
            current[w * DIM..(w + 1) * DIM].copy_from_slice(&walker.x);
        }
        engine.propose_batch(&current, &mut x_new, &mut log_hastings)?;
        for (w, walker) in walkers.iter_mut().enumerate() {
            proposed += 1;
            let candidate = x_new[w * DIM..(w + 1) * DIM].to_vec();
            accepted += u64::from(walker.consider(candidate, log_hastings[w]));
            energies[w].push(walker.u);
            radii[w].push(mean_squared_radius(&walker.x));
        }
    }
    let host_u = estimate(&energies)?;
    let host_r = estimate(&radii)?;
    let stats = engine.stats();
    println!(
        "host loop: {WALKERS} walkers × {sweeps} sweeps of {LOCAL_PER_ENGINE} local moves + 1 engine move"
    );
    println!(
        "  engine moves accepted {accepted}/{proposed} ({:.2} %); log q evaluated for {} states, remembered for {}",
        100.0 * accepted as f64 / proposed as f64,
        stats.log_prob_evaluations,
        stats.remembered
    );

    // 3. boltzgen's own sampler: same energy, same flow, same move mix.
    let moves = vec![
        MoveSpec::new(MoveKind::ParticleWalk, LOCAL_PER_ENGINE as f64)
            .with_step(STEP)
            .with_spatial_dim(3),
        MoveSpec::new(MoveKind::Flow, 1.0),
    ];
    let mut config = SamplerConfig::new(WALKERS, BETA, moves);
    config.seed = 6;
    config.burn_in = 20_000;
    config.steps = sweeps * (LOCAL_PER_ENGINE + 1);
    config.thin = LOCAL_PER_ENGINE + 1;
    let mut sampler = Sampler::new(config, &lj13, &start)?;
    let learned = Learned {
        independence: Some(engine.generator()),
        ..Learned::none()
    };
    sampler.run(&lj13, learned, |_| Ok(()))?;
    let report = sampler.report();
    let per_chain = |f: fn(&[f64]) -> f64| -> Vec<Vec<f64>> {
        report
            .chains
            .iter()
            .map(|c| c.samples.chunks_exact(DIM).map(f).collect())
            .collect()
    };
    let sampler_u = estimate(&per_chain(host_energy))?;
    let sampler_r = estimate(&per_chain(mean_squared_radius))?;
    println!(
        "boltzgen sampler: flow moves accepted {:.2} %",
        100.0 * report.moves[1].production.acceptance_rate()
    );

    let mut agree = true;
    for (name, host, ours) in [
        ("<U>", host_u, sampler_u),
        ("<|x - centre|^2>", host_r, sampler_r),
    ] {
        let z = (host.0 - ours.0) / (host.1 * host.1 + ours.1 * ours.1).sqrt();
        println!(
            "  {name:>17}: host {:.4} ± {:.4} (τ {:.1} sweeps), boltzgen {:.4} ± {:.4} (τ {:.1}), z = {z:.2}",
            host.0, host.1, host.2, ours.0, ours.1, ours.2
        );
        agree &= z.abs() < 4.0;
    }
    println!(
        "{}",
        if agree {
            "the host loop reproduces boltzgen's sampler"
        } else {
            "MISMATCH between the host loop and boltzgen's sampler"
        }
    );
    Ok(agree)
}
