//! Training flows by maximum likelihood, by energy, and the guards around both.

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Generator, Precision};
use boltzgen::potentials::{DoubleWell2D, ExactSampler, Gaussian, Potential};
use boltzgen::rng::stream;
use boltzgen::train::{train_flow, LrSchedule, NoObserver, StepReport, TrainConfig, TrainObserver};
use boltzgen::Error;

fn kish_ess_fraction(log_w: &[f64]) -> f64 {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
    let s: f64 = w.iter().sum();
    s * s / w.iter().map(|v| v * v).sum::<f64>() / log_w.len() as f64
}

#[test]
fn forward_kl_recovers_a_gaussian() {
    let _torch = boltzgen::generator::torch_lock();
    let target = Gaussian::new(vec![1.0, -2.0], vec![2.0, 0.9, 0.9, 1.0]).unwrap();
    let cov = target.covariance();
    let data = target.sample_exact(1.0, 20_000, &mut stream(1, 0)).unwrap();
    tch::manual_seed(0);
    let mut flow = Flow::new(
        FlowConfig::real_nvp(2, 4, &[32, 32]).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let config = TrainConfig {
        steps: 600,
        batch_size: 256,
        learning_rate: 3e-3,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.05,
        },
        ..TrainConfig::default()
    };
    let report = train_flow(&mut flow, Some(&data), None, &config, &mut NoObserver).unwrap();
    assert_eq!(report.skipped_steps, 0);

    // The mean and covariance of 40 000 flow draws against the exact ones. Each statistic's
    // sampling error is below 0.01 here; the bound 0.05 is what the maximum-likelihood fit on
    // 18 000 training rows is expected to reach (its own error is ~σ/√n ≈ 0.01 per entry,
    // plus the flow's approximation error).
    let s = flow.sample(40_000, &mut stream(2, 0)).unwrap();
    let n = s.len() as f64;
    let mean: Vec<f64> = (0..2)
        .map(|k| s.x.chunks_exact(2).map(|p| p[k]).sum::<f64>() / n)
        .collect();
    for (k, m) in mean.iter().enumerate() {
        assert!(
            (m - target.mean()[k]).abs() < 0.05,
            "mean[{k}] = {m}, exact {}",
            target.mean()[k]
        );
    }
    for i in 0..2 {
        for j in 0..2 {
            let c =
                s.x.chunks_exact(2)
                    .map(|p| (p[i] - mean[i]) * (p[j] - mean[j]))
                    .sum::<f64>()
                    / n;
            assert!(
                (c - cov[2 * i + j]).abs() < 0.05,
                "cov[{i}][{j}] = {c}, exact {}",
                cov[2 * i + j]
            );
        }
    }
    // And the density itself: the validation NLL approaches the exact entropy.
    let entropy = 1.0 + (2.0 * std::f64::consts::PI).ln() - 0.5 * target.log_det_precision();
    let nll = report.best_validation_nll.unwrap();
    assert!(
        (nll - entropy).abs() < 0.03,
        "validation NLL {nll} vs entropy {entropy}"
    );
}

/// With the library's recipe against mode-seeking (temperature annealing from β = 0.1 over
/// the first half). Checked on seeds 0–9 (`tch::manual_seed` and `TrainConfig::seed`): Kish
/// ESS 0.82–0.99. Without annealing the same budget failed 2 seeds in 10 with libtorch's Adam
/// arithmetic and 4 in 10 with the host-side update (ESS 0.003–0.22), and which seeds failed
/// changed with rounding alone (Adam amplifies it), so a pass at one seed said little.
#[test]
fn reverse_kl_on_the_double_well_reaches_ess_one_half() {
    let _torch = boltzgen::generator::torch_lock();
    let target = DoubleWell2D::default();
    tch::manual_seed(0);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 4, &[32, 32], 8, 4.0),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let config = TrainConfig {
        steps: 1500,
        batch_size: 256,
        learning_rate: 3e-3,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.05,
        },
        forward_weight: 0.0,
        reverse_weight: 1.0,
        anneal_from_beta: Some(0.1),
        anneal_steps: 750,
        ..TrainConfig::default()
    };
    let report = train_flow(&mut flow, None, Some(&target), &config, &mut NoObserver).unwrap();
    assert_eq!(report.skipped_steps, 0);
    let s = flow.sample(20_000, &mut stream(3, 0)).unwrap();
    let mut u = vec![0.0; s.len()];
    target.energies(&s.x, &mut u).unwrap();
    let log_w: Vec<f64> = u.iter().zip(&s.log_q).map(|(u, lq)| -u - lq).collect();
    let ess = kish_ess_fraction(&log_w);
    assert!(ess >= 0.5, "Kish ESS fraction {ess}");
}

/// The ESS term corrects what the data got wrong. Training frames with the double well's two
/// basins in equal shares (the Boltzmann shares are about 0.97 and 0.03) teach a flow the
/// wrong split, and its ESS cannot exceed 1 / Σₖ Pₖ²/Qₖ ≈ 0.53 while Q stays (½, ½) (the
/// shapes within each basin can only lower it). Then the ESS term alone moves the mass to the
/// Boltzmann shares.
///
/// Both ESS values come from 20 000 independent draws, whose Kish fraction has a standard
/// error of about 0.01 here: the bounds 0.6 (above the ½-½ ceiling) and 0.8 are many
/// standard errors from either value. Measured: 0.51 before, 0.99 after. With the weights
/// dropped from the term (plain maximum likelihood on the flow's own draws, a planted bug)
/// the ESS fell to 0.003 and the test failed.
#[test]
fn the_ess_term_fixes_basin_shares_that_the_data_got_wrong() {
    let _torch = boltzgen::generator::torch_lock();
    let target = DoubleWell2D::default();
    let exact = target
        .sample_exact(1.0, 200_000, &mut stream(1, 0))
        .unwrap();
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for p in exact.chunks_exact(2) {
        if p[0] < 0.0 { &mut left } else { &mut right }.push(p);
    }
    assert!(
        right.len() > 4000 && right.len() < 8000,
        "{} right",
        right.len()
    );
    let data: Vec<f64> = left[..4000]
        .iter()
        .chain(&right[..4000])
        .flat_map(|p| p.iter().copied())
        .collect();
    tch::manual_seed(0);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 4, &[32, 32], 8, 4.0),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let kish = |flow: &Flow| {
        let s = flow.sample(20_000, &mut stream(3, 0)).unwrap();
        let mut u = vec![0.0; s.len()];
        target.energies(&s.x, &mut u).unwrap();
        let log_w: Vec<f64> = u.iter().zip(&s.log_q).map(|(u, lq)| -u - lq).collect();
        kish_ess_fraction(&log_w)
    };
    let schedule = LrSchedule::Cosine {
        final_fraction: 0.05,
    };
    let maximum_likelihood = TrainConfig {
        steps: 600,
        learning_rate: 3e-3,
        schedule,
        ..TrainConfig::default()
    };
    train_flow(
        &mut flow,
        Some(&data),
        None,
        &maximum_likelihood,
        &mut NoObserver,
    )
    .unwrap();
    let before = kish(&flow);
    assert!(
        before < 0.6,
        "maximum likelihood on ½-½ frames: ESS {before}"
    );

    let ess_only = TrainConfig {
        steps: 400,
        learning_rate: 1e-3,
        schedule,
        forward_weight: 0.0,
        ess_weight: 1.0,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut batch_ess = BatchEss(Vec::new());
    let report = train_flow(&mut flow, None, Some(&target), &ess_only, &mut batch_ess).unwrap();
    assert_eq!(report.skipped_steps, 0);
    assert_eq!(batch_ess.0.len(), 400);
    assert!(batch_ess
        .0
        .iter()
        .all(|e| e.is_some_and(|e| e > 0.0 && e <= 1.0)));
    let after = kish(&flow);
    assert!(
        after > 0.8,
        "after the ESS term: ESS {after} (before {before})"
    );
}

/// Records the batch ESS of every step.
struct BatchEss(Vec<Option<f64>>);

impl TrainObserver for BatchEss {
    fn on_step(&mut self, report: &StepReport) {
        self.0.push(report.batch_ess);
    }
}

/// A potential whose energy is NaN everywhere: training must stop with an error that names the
/// step and the term, not loop or panic.
struct Broken;

impl Potential for Broken {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> &str {
        "broken"
    }
    fn compute_energy(&self, _x: &[f64]) -> f64 {
        f64::NAN
    }
    fn compute_energy_and_gradient(&self, _x: &[f64], g: &mut [f64]) -> f64 {
        g.fill(0.0);
        f64::NAN
    }
}

#[derive(Default)]
struct Counter {
    steps: usize,
    skipped: usize,
}

impl TrainObserver for Counter {
    fn on_step(&mut self, r: &StepReport) {
        self.steps += 1;
        self.skipped += r.skipped as usize;
    }
}

#[test]
fn non_finite_steps_are_skipped_then_stop_training_with_a_clear_error() {
    let _torch = boltzgen::generator::torch_lock();
    tch::manual_seed(0);
    let mut flow = Flow::new(FlowConfig::real_nvp(2, 2, &[8]), DeviceChoice::Cpu).unwrap();
    let config = TrainConfig {
        steps: 100,
        forward_weight: 0.0,
        reverse_weight: 1.0,
        max_bad_steps: 5,
        ..TrainConfig::default()
    };
    let before = flow.log_prob(&[0.3, 0.4]).unwrap();
    let mut counter = Counter::default();
    let err = train_flow(&mut flow, None, Some(&Broken), &config, &mut counter).unwrap_err();
    match &err {
        Error::Training { step, message } => {
            assert_eq!(*step, 4);
            assert!(message.contains("reverse KL"), "{message}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        counter.skipped, 4,
        "the first four bad steps were reported as skipped"
    );
    assert_eq!(
        flow.log_prob(&[0.3, 0.4]).unwrap(),
        before,
        "skipped steps must not change the model"
    );
}

#[test]
fn config_errors_name_the_problem() {
    let _torch = boltzgen::generator::torch_lock();
    tch::manual_seed(0);
    let mut flow = Flow::new(FlowConfig::real_nvp(2, 2, &[8]), DeviceChoice::Cpu).unwrap();
    let err = train_flow(
        &mut flow,
        None,
        None,
        &TrainConfig::default(),
        &mut NoObserver,
    )
    .unwrap_err();
    assert!(err.to_string().contains("needs training data"), "{err}");
    let three_d = boltzgen::potentials::ManyWell::new(4).unwrap();
    let config = TrainConfig {
        forward_weight: 0.0,
        reverse_weight: 1.0,
        ..TrainConfig::default()
    };
    let err = train_flow(&mut flow, None, Some(&three_d), &config, &mut NoObserver).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Dimension {
                expected: 2,
                got: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn early_stopping_keeps_the_best_weights() {
    let _torch = boltzgen::generator::torch_lock();
    let target = Gaussian::isotropic(vec![0.0, 0.0], 1.0).unwrap();
    // Very few rows and a large model: validation NLL turns up quickly.
    let data = target.sample_exact(1.0, 60, &mut stream(5, 0)).unwrap();
    tch::manual_seed(0);
    let mut flow = Flow::new(
        FlowConfig::real_nvp(2, 6, &[64, 64]).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let config = TrainConfig {
        steps: 3000,
        batch_size: 32,
        learning_rate: 1e-2,
        validation_fraction: 0.5,
        eval_every: 20,
        patience: Some(5),
        ..TrainConfig::default()
    };
    let report = train_flow(&mut flow, Some(&data), None, &config, &mut NoObserver).unwrap();
    assert!(report.stopped_early, "expected overfitting to stop the run");
    let best = report.best_validation_nll.unwrap();
    assert!(report.validation.iter().all(|&(_, v)| v >= best));
}

/// A particle system end to end: DW4 (translation invariant, so only the centre-of-mass-free
/// subspace is normalisable) with the mean-free base, trained by reverse KL with the energy
/// regulariser and annealing. Every draw stays centre-of-mass free and every weight is finite.
///
/// Quality is not asserted: with this budget (1000 steps) the Kish ESS was 0.2 %, the
/// log-weights spreading over ~9 nats. Tuning a DW4 recipe (more steps, equivariant
/// conditioners) is open work.
#[test]
fn reverse_kl_on_dw4_with_the_mean_free_base() {
    let _torch = boltzgen::generator::torch_lock();
    use boltzgen::potentials::{EnergyRegularizer, ParticleDoubleWell};
    let target = ParticleDoubleWell::dw4();
    tch::manual_seed(0);
    let config = FlowConfig::neural_spline(6, 4, &[64, 64], 8, 6.0)
        .mean_free(4, 2)
        .unwrap();
    let mut flow = Flow::new(config, DeviceChoice::Cpu).unwrap();
    let train = TrainConfig {
        steps: 1000,
        batch_size: 256,
        learning_rate: 2e-3,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.05,
        },
        forward_weight: 0.0,
        reverse_weight: 1.0,
        regularizer: Some(EnergyRegularizer::new(100.0, 1e4).unwrap()),
        anneal_from_beta: Some(0.2),
        anneal_steps: 500,
        ..TrainConfig::default()
    };
    let report = train_flow(&mut flow, None, Some(&target), &train, &mut NoObserver).unwrap();
    assert_eq!(report.skipped_steps, 0);
    let s = flow.sample(10_000, &mut stream(4, 0)).unwrap();
    for c in s.x.chunks_exact(8) {
        let (cx, cy) = (
            c.iter().step_by(2).sum::<f64>(),
            c.iter().skip(1).step_by(2).sum::<f64>(),
        );
        assert!(
            cx.abs() < 1e-4 && cy.abs() < 1e-4,
            "centre of mass ({cx}, {cy})"
        );
    }
    let mut u = vec![0.0; s.len()];
    target.energies(&s.x, &mut u).unwrap();
    let log_w: Vec<f64> = u.iter().zip(&s.log_q).map(|(u, lq)| -u - lq).collect();
    assert!(
        log_w.iter().all(|l| l.is_finite()),
        "every draw must have a finite weight"
    );
    assert!(kish_ess_fraction(&log_w) > 0.0);
}
