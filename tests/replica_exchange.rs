//! Replica exchange (parallel tempering) as a user drives it through the Rust API: exact on
//! a Gaussian ladder and on a double well whose barrier local moves cannot cross, a tuned
//! ladder that equalises swap acceptance, and runs that are bit-for-bit reproducible across
//! thread counts and checkpoints.
//!
//! Every exactness check is a z-test whose standard error comes from the measured
//! integrated autocorrelation time of the target rung's recorded series
//! ([`common::chain_average`]); the bound is 4 standard errors per check.
//!
//! Power, checked by planting each bug once in `src/` (2026-12-04),
//! then reverting; the first failing check and its z:
//!
//! | planted bug | test | first failing check |
//! |---|---|---|
//! | swap acceptance with the wrong sign, `(β_i − β_j)(U_j − U_i)` | `a_gaussian_ladder_is_exact_at_the_target_rung` | variance x₀, z = +34.3 |
//! | same | `replica_exchange_crosses_a_barrier_that_local_moves_cannot` | P(x > 0), z = +123.4 |
//! | configurations swapped, their energies left behind (`state.x` swapped, not `state`; in `src/mcmc/sampler/mod.rs`) | `a_gaussian_ladder_is_exact_at_the_target_rung` | variance x₀, z = +8.6 |
//! | same | `replica_exchange_crosses_a_barrier_that_local_moves_cannot` | P(x > 0), z = +14.9 |

use boltzgen::generator::torch_lock;
use boltzgen::mcmc::{ExchangeConfig, Learned, MoveKind, MoveSpec, Sampler, SamplerConfig};
use boltzgen::potentials::{DoubleWell2D, Gaussian, Potential};

mod common;
use common::{chain_average, nonlinear_flow};

const Z_BOUND: f64 = 4.0;

fn random_walk(step: f64) -> MoveSpec {
    MoveSpec::new(MoveKind::RandomWalk, 1.0)
        .with_step(step)
        .adapting_to(0.4)
}

fn check(name: &str, (estimate, error): (f64, f64), exact: f64) {
    let z = (estimate - exact) / error;
    println!("{name}: {estimate:.5} ± {error:.5} (exact {exact:.5}, z = {z:+.2})");
    assert!(z.abs() < Z_BOUND, "{name}: z = {z:+.2}");
}

/// A correlated 2-D Gaussian at β₀ = 1 on a ladder to 10 times its temperature, every rung
/// running a random walk and independence proposals from a nonlinear flow (not trained on
/// this target, so the flow's proposals are poor at every rung and its Hastings term
/// matters): the target rung's mean, variance and mean energy against the exact ones.
#[test]
fn a_gaussian_ladder_is_exact_at_the_target_rung() {
    let _torch = torch_lock();
    tch::set_num_threads(1);
    // U = ½ (x − μ)ᵀ P (x − μ): Σ = P⁻¹, ⟨U⟩ = d / (2β).
    let u = Gaussian::new(vec![1.0, -1.0], vec![2.0, 0.6, 0.6, 1.0]).unwrap();
    let flow = nonlinear_flow();
    let mut config = SamplerConfig::new(
        8,
        1.0,
        vec![random_walk(0.8), MoveSpec::new(MoveKind::Flow, 0.3)],
    );
    let mut ladder = ExchangeConfig::geometric(1.0, 10.0, 5).unwrap();
    ladder.tune = false;
    config.exchange = Some(ladder);
    config.seed = 11;
    config.burn_in = 2_000;
    config.steps = 40_000;
    config.thin = 4;
    config.buffer = 256;
    let mut sampler = Sampler::new(config, &u, &[1.0, -1.0]).unwrap();
    sampler.run(&u, Learned::flow(&flow), |_| Ok(())).unwrap();
    let run = sampler.report();
    assert_eq!(run.chains.len(), 8, "one recorded chain per ladder");
    let exchange = run.exchange.as_ref().unwrap();
    println!("{:#?}", exchange.pairs);
    assert!(exchange.pairs.iter().all(|p| p.accepted > 0));
    assert!(
        exchange.rungs.iter().all(|r| r.acceptance[1] > 0.0),
        "the flow proposes at every rung"
    );

    let det = 2.0 - 0.36;
    check("mean x0", chain_average(&run, |x| x[0]), 1.0);
    check("mean x1", chain_average(&run, |x| x[1]), -1.0);
    check(
        "variance x0",
        chain_average(&run, |x| (x[0] - 1.0).powi(2)),
        1.0 / det,
    );
    check("<U>", chain_average(&run, |x| u.energy(x).unwrap()), 1.0);
}

/// The double well U = x⁴ − 6x² + 0.3x + ½y² at β = 2: a barrier of 18 kT that a random
/// walk from the right well does not cross in the run (checked), while a ladder to 8 times
/// the temperature (tuned in burn-in) carries configurations over it. The target rung's
/// weight of the right well against quadrature.
#[test]
fn replica_exchange_crosses_a_barrier_that_local_moves_cannot() {
    let u = DoubleWell2D::new(1.0, 6.0, 0.3, 1.0).unwrap();
    let beta = 2.0;
    let exact = u.x_probability(0.0, f64::INFINITY, beta).unwrap();
    let base = || {
        let mut c = SamplerConfig::new(8, beta, vec![random_walk(0.5)]);
        c.seed = 5;
        c.burn_in = 10_000;
        c.steps = 60_000;
        c.thin = 5;
        c
    };
    let right = |x: &[f64]| f64::from(u8::from(x[0] > 0.0));

    let mut local = Sampler::new(base(), &u, &[1.7, 0.0]).unwrap();
    local.run(&u, Learned::none(), |_| Ok(())).unwrap();
    let stuck = local.report();
    assert!(
        stuck
            .chains
            .iter()
            .all(|c| c.samples.chunks_exact(2).all(|x| x[0] > 0.0)),
        "the random walk alone never leaves the right well"
    );

    let mut config = base();
    config.exchange = Some(ExchangeConfig::geometric(beta, 8.0, 6).unwrap());
    let mut sampler = Sampler::new(config, &u, &[1.7, 0.0]).unwrap();
    sampler.run(&u, Learned::none(), |_| Ok(())).unwrap();
    let run = sampler.report();
    let exchange = run.exchange.as_ref().unwrap();
    println!(
        "ladder {:?}\nacceptance {:?}\nround trips {}",
        exchange.temperature_factors,
        exchange
            .pairs
            .iter()
            .map(|p| p.acceptance.unwrap())
            .collect::<Vec<_>>(),
        exchange.total_round_trips()
    );
    assert!(exchange.total_round_trips() > 0);
    check("P(x > 0)", chain_average(&run, right), exact);
}

/// A ladder spaced evenly in temperature is far from equal acceptance for an 8-D Gaussian
/// (the cold pairs, whose energy distributions are narrow, rarely swap); tuned in burn-in,
/// the spread of the pairs' acceptances falls to a fraction of it, with the ends in place.
#[test]
fn tuning_equalises_swap_acceptance() {
    let d = 8;
    let mut precision = vec![0.0; d * d];
    for i in 0..d {
        precision[i * d + i] = 1.0;
    }
    let u = Gaussian::new(vec![0.0; d], precision).unwrap();
    let temperatures = [1.0, 4.0, 7.0, 10.0, 13.0, 16.0];
    let run = |tune: bool| {
        let mut c = SamplerConfig::new(4, 1.0, vec![random_walk(0.5)]);
        c.seed = 2;
        c.burn_in = 20_000;
        c.steps = 20_000;
        c.thin = 10;
        c.exchange = Some(ExchangeConfig {
            betas: temperatures.iter().map(|t| 1.0 / t).collect(),
            swap_interval: 10,
            tune,
        });
        let mut s = Sampler::new(c, &u, &vec![0.0; d]).unwrap();
        s.run(&u, Learned::none(), |_| Ok(())).unwrap();
        s.report().exchange.unwrap()
    };
    let spread = |x: &boltzgen::mcmc::ExchangeReport| {
        let a: Vec<f64> = x.pairs.iter().map(|p| p.acceptance.unwrap()).collect();
        println!("factors {:?}\nacceptance {a:?}", x.temperature_factors);
        a.iter().copied().fold(f64::MIN, f64::max) - a.iter().copied().fold(f64::MAX, f64::min)
    };
    let fixed = run(false);
    let tuned = run(true);
    let (before, after) = (spread(&fixed), spread(&tuned));
    assert!(after < 0.3 * before, "spread {before:.3} → {after:.3}");
    assert_eq!(tuned.betas[0], 1.0);
    assert_eq!(tuned.betas[5], 1.0 / 16.0);
    assert!(tuned.tuned && !fixed.tuned);
}

fn resumable_config() -> SamplerConfig {
    let mut c = SamplerConfig::new(
        3,
        2.0,
        vec![random_walk(0.5), MoveSpec::new(MoveKind::Flow, 0.2)],
    );
    c.seed = 9;
    c.burn_in = 600;
    c.steps = 1_500;
    c.thin = 3;
    c.buffer = 64;
    c.sync_interval = 50;
    let mut x = ExchangeConfig::geometric(2.0, 6.0, 4).unwrap();
    x.swap_interval = 5;
    c.exchange = Some(x);
    c
}

/// A run stopped in burn-in (the ladder still tuning) and in production, checkpointed and
/// resumed, ends exactly where the uninterrupted one does; so does a run on one thread
/// against two.
#[test]
fn replica_exchange_resumes_and_ignores_thread_count_bit_for_bit() {
    let _torch = torch_lock();
    tch::set_num_threads(1);
    let u = DoubleWell2D::default();
    let flow = nonlinear_flow();
    let learned = Learned::flow(&flow);
    let on_threads = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| {
                // Built inside the pool: a flow holds tensors, which do not cross threads.
                let flow = nonlinear_flow();
                let mut s = Sampler::new(resumable_config(), &u, &[1.7, 0.0]).unwrap();
                s.run(&u, Learned::flow(&flow), |_| Ok(())).unwrap();
                s.report()
            })
    };
    let whole = on_threads(2);
    assert_eq!(on_threads(1), whole);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exchange.ckpt");
    let mut first = Sampler::new(resumable_config(), &u, &[1.7, 0.0]).unwrap();
    first.run_until(&u, learned, 300).unwrap();
    first.checkpoint(&path).unwrap();
    let mut second = Sampler::resume(&path, &resumable_config(), &u).unwrap();
    second.run_until(&u, learned, 1_200).unwrap();
    second.checkpoint(&path).unwrap();
    let mut third = Sampler::resume(&path, &resumable_config(), &u).unwrap();
    third.run(&u, learned, |_| Ok(())).unwrap();
    assert_eq!(third.report(), whole);

    // Another ladder is another run: the checkpoint is refused, naming the file.
    let mut other = resumable_config();
    other.exchange.as_mut().unwrap().betas[1] *= 0.99;
    let e = Sampler::resume(&path, &other, &u).unwrap_err().to_string();
    assert!(e.contains("exchange.ckpt"), "{e}");
}

/// The barrier test through the command line, as a user writes it: `[sample.replica_exchange]`
/// with a geometric ladder in the system's units; the report's right-well probability (the
/// chains' τ-based error) against quadrature, no warnings, and a run stopped and resumed
/// with more steps writes exactly the files of the uninterrupted run.
#[test]
fn the_cli_runs_replica_exchange_and_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = r#"
seed = 4
[system]
potential = "double_well"
parameters = { a = 1.0, b = 6.0, c = 0.3, d = 1.0 }
beta = 2.0
[sample]
chains = 8
burn_in = 10000
steps = STEPS
thin = 5
start = [1.7, 0.0]
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
target_acceptance = 0.4
[sample.replica_exchange]
replicas = 6
max_temperature = 4.0     # 1/β = 0.5 at the target: 8 times hotter
[analysis]
cv = { kind = "coordinate", index = 0 }
states = [{ name = "left", lower = -10.0, upper = -1.0 }, { name = "right", lower = 0.0, upper = 10.0 }]
"#;
    std::fs::write(d.join("short.toml"), config.replace("STEPS", "20000")).unwrap();
    std::fs::write(d.join("long.toml"), config.replace("STEPS", "60000")).unwrap();
    let o = common::boltzgen(&["sample", "long.toml", "-o", "whole"], d);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("replica exchange: 8 ladders × 6 rungs (T = 0.5,"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("whole/sample_report.json")).unwrap())
            .unwrap();
    let x = &report["replica_exchange"];
    assert_eq!(x["temperatures"].as_array().unwrap().len(), 6);
    assert!((x["temperatures"][5].as_f64().unwrap() - 4.0).abs() < 1e-12);
    assert!(x["round_trips"].as_array().unwrap().len() == 48);
    assert_eq!(report["warnings"], serde_json::json!([]), "{err}");
    let right = &report["states"][1]["probability"];
    let exact = DoubleWell2D::new(1.0, 6.0, 0.3, 1.0)
        .unwrap()
        .x_probability(0.0, f64::INFINITY, 2.0)
        .unwrap();
    check(
        "P(right) from the CLI",
        (
            right["mean"].as_f64().unwrap(),
            right["std_error"].as_f64().unwrap(),
        ),
        exact,
    );

    let o = common::boltzgen(&["sample", "short.toml", "-o", "stopped", "-q"], d);
    assert!(o.status.success());
    let o = common::boltzgen(
        &["sample", "long.toml", "-o", "stopped", "--resume", "-q"],
        d,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["samples.csv", "samples.xyz"] {
        let a = std::fs::read(d.join("stopped").join(f)).unwrap();
        let b = std::fs::read(d.join("whole").join(f)).unwrap();
        assert!(a == b, "{f} differs after resuming");
    }
}
