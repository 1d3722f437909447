//! Mode seeking and mode covering on the seed's own example: a target made of two separated
//! Gaussians, one holding 70 % of the mass. A unimodal model fitted by reverse KL (the
//! variational free energy) picks one mode; fitted by forward KL (maximum likelihood) it
//! covers both and fills the gap between them; the default training (SMC annealing, a flow)
//! recovers both modes with their weights.

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Generator};
use boltzgen::potentials::Potential;
use boltzgen::reweight::ImportanceWeights;
use boltzgen::train::{train_flow_smc, SmcConfig, TrainConfig};

mod common;

/// Mixture weights, means and the common standard deviation of the target's x-marginal.
const WEIGHTS: [f64; 2] = [0.7, 0.3];
const MEANS: [f64; 2] = [-3.0, 3.0];
const SD: f64 = 0.5;

/// log p(x) of the two-Gaussian mixture (normalised).
fn log_mixture(x: f64) -> f64 {
    let terms: Vec<f64> = WEIGHTS
        .iter()
        .zip(MEANS)
        .map(|(w, m)| {
            w.ln() - 0.5 * ((x - m) / SD).powi(2) - (SD * (2.0 * std::f64::consts::PI).sqrt()).ln()
        })
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// KL(q‖p) and KL(p‖q) of the Gaussian q = 𝒩(μ, s²) against the mixture, by the midpoint rule
/// on [−12, 12] (the integrands vanish far inside it).
fn divergences(mu: f64, s: f64) -> (f64, f64) {
    let n = 24_000;
    let h = 24.0 / n as f64;
    let (mut reverse, mut forward) = (0.0, 0.0);
    for i in 0..n {
        let x = -12.0 + (i as f64 + 0.5) * h;
        let log_q = -0.5 * ((x - mu) / s).powi(2) - (s * (2.0 * std::f64::consts::PI).sqrt()).ln();
        let log_p = log_mixture(x);
        reverse += h * log_q.exp() * (log_q - log_p);
        forward += h * log_p.exp() * (log_p - log_q);
    }
    (reverse, forward)
}

/// The (μ, s) minimising `which` of the two divergences: a grid, then a finer grid around the
/// best point (the objective is smooth; each refinement shrinks the box tenfold).
fn fit(which: fn((f64, f64)) -> f64) -> (f64, f64) {
    let (mut mu, mut s) = (0.0, 1.0);
    let (mut mu_width, mut s_width) = (8.0, 4.0);
    for _ in 0..3 {
        let mut best = f64::INFINITY;
        let (mu0, s0) = (mu, s);
        for i in 0..=40 {
            for j in 0..=40 {
                let m = mu0 - mu_width + 2.0 * mu_width * i as f64 / 40.0;
                let v = (s0 - s_width + 2.0 * s_width * j as f64 / 40.0).max(0.05);
                let d = which(divergences(m, v));
                if d < best {
                    best = d;
                    (mu, s) = (m, v);
                }
            }
        }
        mu_width /= 10.0;
        s_width /= 10.0;
    }
    (mu, s)
}

#[test]
fn a_unimodal_model_seeks_one_mode_by_reverse_kl_and_covers_both_by_forward_kl() {
    // Reverse KL: the Gaussian sits on the heavier mode with the mode's own width. It pays
    // nothing for the mode it leaves out, since its own mass there is ~0.
    let (mu, s) = fit(|(reverse, _)| reverse);
    assert!(
        (mu - MEANS[0]).abs() < 0.05 && (s - SD).abs() < 0.05,
        "{mu} {s}"
    );
    let (reverse, _) = divergences(mu, s);
    // What it costs: KL = −ln 0.7 exactly in the limit of separated modes.
    assert!((reverse + WEIGHTS[0].ln()).abs() < 1e-3, "{reverse}");

    // Forward KL: moment matching (the optimum of KL(p‖q) over Gaussians), μ = Σ wₖ mₖ and
    // s² = Σ wₖ (σ² + mₖ²) − μ², a broad Gaussian over both modes and the gap between them.
    let (mu, s) = fit(|(_, forward)| forward);
    let mean: f64 = WEIGHTS.iter().zip(MEANS).map(|(w, m)| w * m).sum();
    let var: f64 = WEIGHTS
        .iter()
        .zip(MEANS)
        .map(|(w, m)| w * (SD * SD + m * m))
        .sum::<f64>()
        - mean * mean;
    assert!(
        (mu - mean).abs() < 0.01 && (s - var.sqrt()).abs() < 0.01,
        "{mu} {s} vs {mean} {}",
        var.sqrt()
    );
}

/// The mixture in x, a standard normal in y: a 2-D target for a coupling flow.
struct TwoGaussians;

impl Potential for TwoGaussians {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> &str {
        "two_gaussians"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        -log_mixture(x[0]) + 0.5 * x[1] * x[1]
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        // Not used by SMC annealing (random walks and flow moves need no forces).
        let h = 1e-6;
        grad[0] = (log_mixture(x[0] - h) - log_mixture(x[0] + h)) / (2.0 * h);
        grad[1] = x[1];
        self.compute_energy(x)
    }
}

/// A flow like the default's, from the same seed.
fn new_flow() -> Flow {
    tch::manual_seed(7);
    Flow::new(
        FlowConfig::neural_spline(2, 4, &[32, 32], 8, 6.0),
        DeviceChoice::Cpu,
    )
    .unwrap()
}

/// (P(left) estimate, its error, log Ẑ − log Z, its error) from 10⁵ weighted draws of `flow`.
fn judge(flow: &Flow) -> (f64, f64, f64, f64) {
    let s = flow
        .sample(100_000, &mut boltzgen::rng::stream(99, 0))
        .unwrap();
    let energies: Vec<f64> =
        s.x.chunks_exact(2)
            .map(|x| TwoGaussians.energy(x).unwrap())
            .collect();
    let w = ImportanceWeights::new(1.0, &energies, &s.log_q).unwrap();
    let left: Vec<f64> =
        s.x.chunks_exact(2)
            .map(|x| f64::from(u8::from(x[0] < 0.0)))
            .collect();
    let share = w.expectation(&left).unwrap();
    let z = w.log_z();
    let exact = 0.5 * (2.0 * std::f64::consts::PI).ln();
    eprintln!(
        "ESS {:.3}; P(left) = {:.4} ± {:.4}; log Ẑ − log Z = {:.4} ± {:.4}",
        w.ess_fraction(),
        share.value,
        share.std_error,
        z.value - exact,
        z.std_error
    );
    (share.value, share.std_error, z.value - exact, z.std_error)
}

/// The default training recovers both modes with their weights: 10⁵ direct draws,
/// importance-weighted, give log Z (exactly ln √(2π), the y-part; the mixture is normalised)
/// and the heavier mode's weight 0.7 within 3 standard errors. The same flow trained by
/// reverse KL alone, from the same start, does not: that is what the assertions tell apart.
///
/// Measured 2026-12-03: SMC gives P(left) = 0.6983 ± 0.0015, log Ẑ − log Z = −0.0016 ± 0.0010
/// (ESS 90.5 %); reverse KL gives P(left) = 1.0000, log Ẑ − log Z = −0.3558 (ESS 97.4 %).
/// Planted bugs that this test does *not* catch, because the rejuvenation's
/// exact flow moves re-equilibrate the population at every rung of so easy a target: the
/// rung reweighting with the wrong sign, and a resampling that copies particle 0 only.
#[test]
fn smc_annealing_recovers_both_modes_with_their_weights() {
    let _guard = boltzgen::generator::torch_lock();
    let mut flow = new_flow();
    let train = TrainConfig {
        learning_rate: 3e-3,
        seed: 5,
        ..Default::default()
    };
    train_flow_smc(
        &mut flow,
        None,
        &TwoGaussians,
        &train,
        &SmcConfig::default(),
        &mut |_: &boltzgen::train::Rung| {},
    )
    .unwrap();
    let (p, p_se, dz, dz_se) = judge(&flow);
    assert!(
        (p - WEIGHTS[0]).abs() < 3.0 * p_se,
        "P(left) = {p} ± {p_se}"
    );
    assert!(dz.abs() < 3.0 * dz_se, "log Ẑ − log Z = {dz} ± {dz_se}");

    // Reverse KL alone (the variational free energy, no annealing): mode-seeking.
    let mut flow = new_flow();
    let reverse = TrainConfig {
        steps: 1500,
        forward_weight: 0.0,
        reverse_weight: 1.0,
        validation_fraction: 0.0,
        ..train
    };
    boltzgen::train::train_flow(
        &mut flow,
        None,
        Some(&TwoGaussians),
        &reverse,
        &mut boltzgen::train::NoObserver,
    )
    .unwrap();
    // It sits on the heavier mode alone, with a high ESS and log Ẑ low by ln 0.7: the
    // assertions above, which the default passes, fail for it.
    let (p, p_se, dz, dz_se) = judge(&flow);
    assert!(
        (p - WEIGHTS[0]).abs() > 3.0 * p_se,
        "P(left) = {p} ± {p_se}"
    );
    assert!(
        (dz - WEIGHTS[0].ln()).abs() < 0.01,
        "log Ẑ − log Z = {dz} ± {dz_se}"
    );
}

/// Data is a starting point, not the answer: the built-in double well trained by the default
/// method from frames of its minor (right) well alone, through the CLI as a user would. The
/// population starts from those frames, spreads at the hot end, and the ladder gives the
/// major well its 96.7 % back: log Ẑ within 3 of its standard errors of the exact value
/// (the flow fitted by maximum likelihood to the same frames is low by 3.4, tests/verdict.rs),
/// and the chains and the weights agree with no warning.
///
/// Planted (2026-12-03): the ladder removed (`[train.smc] start_beta_fraction = 1.0`, the
/// population never heated): one rung, flow ESS 1.4 %, log Ẑ 10.974 ± 0.060 (still within
/// 3 se, its error bar is that wide) and a `split_rhat` warning, so the test fails at the
/// warnings.
#[test]
fn the_default_recovers_a_well_the_data_misses() {
    let dir = tempfile::tempdir().unwrap();
    common::write_right_well(dir.path());
    let config = r#"
seed = 3
[system]
potential = "double_well"
beta = 1.0
[data]
trajectory = "right_well.xyz"
[model]
kind = "neural_spline"
layers = 4
hidden = [32, 32]
[train]
learning_rate = 3e-3
[sample]
chains = 16
burn_in = 200
steps = 2000
[[sample.moves]]
kind = "flow"
weight = 1.0
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
[reweight]
draws = 20000
[analysis]
cv = { kind = "coordinate", index = 0 }
states = [{ name = "left", lower = -10.0, upper = -1.0 }, { name = "right", lower = 1.0, upper = 10.0 }]
"#;
    std::fs::write(dir.path().join("one_well.toml"), config).unwrap();
    let (report, out, err) = common::run_and_report(
        dir.path(),
        &["one_well.toml", "-o", "out", "--threads", "2"],
        "out",
    );
    assert!(
        err.contains("SMC annealing") && err.contains("starting from the training frames"),
        "{out}{err}"
    );
    let r = &report["reweight"];
    let (log_z, se, exact) = (
        r["log_z"]["value"].as_f64().unwrap(),
        r["log_z"]["std_error"].as_f64().unwrap(),
        r["exact_log_z"].as_f64().unwrap(),
    );
    eprintln!(
        "log Ẑ {log_z} ± {se} (exact {exact}); ESS {}",
        r["ess_fraction"]
    );
    assert!(
        (log_z - exact).abs() < 3.0 * se,
        "{log_z} ± {se} vs {exact}"
    );
    assert_eq!(report["warnings"], serde_json::json!([]), "{err}");
    assert!(
        report["train"]["annealing"]["rungs"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
}
