//! The mode-coverage benchmark (issue 22): a family of targets whose exact answers are known
//! and whose parameters are drawn from a seed — double wells (barriers 5–30 kT, minor wells
//! 0.1–50 %), ManyWell-d, GMM-40 with fresh means, Müller–Brown at several temperatures —
//! each trained from its energy alone by one method, then judged by 10⁵ importance-weighted
//! direct draws against the exact log Z and mode weights.
//!
//! ```sh
//! MODE_COVERAGE_METHOD=smc|reverse_kl MODE_COVERAGE_MEMBERS=12 MODE_COVERAGE_SEED=2026 \
//!     MODE_COVERAGE_KINDS=double_well,many_well,gmm,muller_brown \
//!     cargo bench --bench mode_coverage_family
//! ```
//!
//! `smc` is the default training (`train::smc`); `reverse_kl` is the built-in example's former
//! recipe (reverse KL annealed from β = 0.1 over 750 of 1500 steps). `MEMBERS` double wells are
//! drawn; the other kinds have fixed sizes (ManyWell-8/16/32, one GMM-40, Müller–Brown at
//! three scales). One row per member: Kish ESS, log Ẑ − log Z with its error, the worst mode
//! (in standard errors from its exact weight), whether the issue's test passes, the seconds.

use std::time::Instant;

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Generator};
use boltzgen::potentials::{
    DoubleWell2D, ExactLogZ, ExactSampler, GaussianMixture, ManyWell, MullerBrown, Potential,
};
use boltzgen::reweight::ImportanceWeights;
use boltzgen::rng::{stream, ChainRng};
use boltzgen::train::{train_flow, train_flow_smc, LrSchedule, SmcConfig, TrainConfig};
use rand::RngExt;

/// Whether a configuration belongs to a mode.
type Membership = Box<dyn Fn(&[f64]) -> bool>;

/// A mode: which configurations belong to it, and its exact weight with the error of that
/// weight (0 where it comes from quadrature, the Monte Carlo error where from exact samples).
struct Mode {
    name: String,
    inside: Membership,
    exact: f64,
    exact_error: f64,
}

/// One target of the family.
struct Member {
    name: String,
    potential: Box<dyn Potential>,
    log_z: f64,
    modes: Vec<Mode>,
    /// Couplings and hidden width of its flow.
    layers: usize,
    hidden: usize,
    tail_bound: f64,
}

/// A double well with barrier `barrier` (kT at β = 1, of the untilted x-part) and right-well
/// probability `minor`: the tilt is found by bisection on the exact probability.
fn double_well(barrier: f64, minor: f64) -> Member {
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
    let u = DoubleWell2D::new(1.0, b, 0.5 * (lo + hi), 1.0).unwrap();
    Member {
        name: format!("double well {barrier:.1} kT, minor {minor:.5}"),
        log_z: u.log_z(1.0).unwrap(),
        modes: vec![Mode {
            name: "right well".into(),
            inside: Box::new(|x| x[0] > 0.0),
            exact: p(0.5 * (lo + hi)),
            exact_error: 0.0,
        }],
        potential: Box::new(u),
        layers: 4,
        hidden: 32,
        tail_bound: 5.0,
    }
}

/// ManyWell-d: each pair's x > 0 is a mode of its marginal (the 2^(d/2) joint modes are
/// products of them).
fn many_well(d: usize) -> Member {
    let u = ManyWell::new(d).unwrap();
    let p = u.pair_x_probability(0.0, 50.0, 1.0).unwrap();
    Member {
        name: format!("ManyWell-{d}"),
        log_z: u.log_z(1.0).unwrap(),
        modes: (0..d / 2)
            .map(|k| Mode {
                name: format!("pair {k} x > 0"),
                inside: Box::new(move |x: &[f64]| x[2 * k] > 0.0),
                exact: p,
                exact_error: 0.0,
            })
            .collect(),
        potential: Box::new(u),
        layers: 8,
        hidden: 64,
        tail_bound: 5.0,
    }
}

/// GMM-40 with its 40 means drawn uniformly in [−40, 40]² (σ = ln(1 + e), as the standard
/// one). A mode is a component's Voronoi cell; its exact weight comes from 10⁶ exact draws.
fn gmm(rng: &mut ChainRng) -> Member {
    let means: Vec<f64> = (0..80)
        .map(|_| -40.0 + 80.0 * rng.random::<f64>())
        .collect();
    let std = (1.0 + std::f64::consts::E).ln();
    let u = GaussianMixture::new(2, means, std).unwrap();
    let n = 1_000_000;
    let x = u.sample_exact(1.0, n, rng).unwrap();
    let mut counts = [0usize; 40];
    for c in x.chunks_exact(2) {
        counts[u.nearest_component(c)] += 1;
    }
    let modes = (0..40)
        .map(|k| {
            let p = counts[k] as f64 / n as f64;
            let u = u.clone();
            Mode {
                name: format!("component {k}"),
                inside: Box::new(move |x: &[f64]| u.nearest_component(x) == k),
                exact: p,
                exact_error: (p * (1.0 - p) / n as f64).sqrt(),
            }
        })
        .collect();
    Member {
        name: "GMM-40, fresh means".into(),
        log_z: u.log_z(1.0).unwrap(),
        modes,
        potential: Box::new(u),
        layers: 6,
        hidden: 64,
        tail_bound: 5.0,
    }
}

/// Müller–Brown scaled by `scale` at β = 1 (a smaller scale is a higher temperature): log Z
/// by quadrature; its basins are not judged (no exact basin weights here).
fn muller_brown(scale: f64) -> Member {
    let u = MullerBrown::new(scale).unwrap();
    Member {
        name: format!("Müller–Brown × {scale}"),
        log_z: u.log_z(1.0).unwrap(),
        modes: Vec::new(),
        potential: Box::new(u),
        layers: 6,
        hidden: 64,
        tail_bound: 5.0,
    }
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
    let kinds = var("MODE_COVERAGE_KINDS")
        .unwrap_or_else(|| "double_well,many_well,gmm,muller_brown".into());
    let mut draw = stream(seed, 0);
    let mut family = Vec::new();
    if kinds.contains("double_well") {
        for _ in 0..members {
            // Barriers 5–30 kT, minor weights 0.1 %–50 % (log-uniform).
            let barrier = 5.0 + 25.0 * draw.random::<f64>();
            let minor =
                (0.001f64.ln() + (0.5f64.ln() - 0.001f64.ln()) * draw.random::<f64>()).exp();
            family.push(double_well(barrier, minor));
        }
    }
    if kinds.contains("many_well") {
        for d in [8, 16, 32] {
            family.push(many_well(d));
        }
    }
    if kinds.contains("gmm") {
        family.push(gmm(&mut stream(seed, 1)));
    }
    if kinds.contains("muller_brown") {
        for scale in [0.05, 0.1, 0.2] {
            family.push(muller_brown(scale));
        }
    }
    println!("method {method}, seed {seed}");
    println!(
        "{:<34} {:>7} {:>20} {:>28} {:>5} {:>7}",
        "target", "ESS %", "log Ẑ − log Z", "worst mode (se from exact)", "pass", "seconds"
    );
    for (k, m) in family.iter().enumerate() {
        let u = m.potential.as_ref();
        let dim = u.dim();
        let started = Instant::now();
        tch::manual_seed(k as i64);
        let mut flow = Flow::new(
            FlowConfig::neural_spline(dim, m.layers, &[m.hidden, m.hidden], 8, m.tail_bound),
            DeviceChoice::Cpu,
        )?;
        let train = TrainConfig {
            steps: 1500,
            batch_size: 256,
            learning_rate: 3e-3,
            seed: seed + k as u64,
            ..Default::default()
        };
        let mut note = String::new();
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
                    Some(u),
                    &config,
                    &mut boltzgen::train::NoObserver,
                )?;
            }
            _ => {
                let (_, ladder) = train_flow_smc(
                    &mut flow,
                    None,
                    u,
                    &train,
                    &SmcConfig::default(),
                    &mut |_: &boltzgen::train::Rung| {},
                )?;
                note = format!(
                    "{} rungs, {} energy evaluations",
                    ladder.rungs.len(),
                    ladder.energy_evaluations
                );
            }
        }
        let s = flow.sample(100_000, &mut stream(seed + 1000 + k as u64, 0))?;
        let energies: Vec<f64> =
            s.x.chunks_exact(dim)
                .map(|x| u.energy(x).unwrap_or(f64::NAN))
                .collect();
        let w = ImportanceWeights::new(1.0, &energies, &s.log_q)?;
        let z = w.log_z();
        let err = z.value - m.log_z;
        let pass_z = err.abs() <= (3.0 * z.std_error).max(0.02);
        // Every mode of exact weight ≥ 0.1 % within 3 combined standard errors.
        let mut worst = (0.0f64, String::from("—"));
        for mode in m.modes.iter().filter(|mode| mode.exact >= 0.001) {
            let inside: Vec<f64> =
                s.x.chunks_exact(dim)
                    .map(|x| f64::from(u8::from((mode.inside)(x))))
                    .collect();
            let share = w.expectation(&inside)?;
            let se = share.std_error.hypot(mode.exact_error);
            let off = if se > 0.0 {
                (share.value - mode.exact).abs() / se
            } else if share.value == mode.exact {
                0.0
            } else {
                f64::INFINITY
            };
            if off > worst.0 || worst.1 == "—" {
                worst = (
                    off,
                    format!("{} {:.4}/{:.4}", mode.name, share.value, mode.exact),
                );
            }
        }
        let pass = pass_z && worst.0 <= 3.0;
        println!(
            "{:<34} {:>7.2} {:>9.4} ± {:<8.4} {:>20} {:>5.1} {:>5} {:>7.1}  {note}",
            m.name,
            100.0 * w.ess_fraction(),
            err,
            z.std_error,
            worst.1,
            worst.0,
            if pass { "yes" } else { "NO" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
