//! The `boltzgen` command.
//!
//! For now it runs one built-in demonstration, which is what the README's main-job command
//! does: a Boltzmann generator for the 2-D double well. It trains a neural-spline flow by
//! reverse KL against U(x) with temperature annealing, draws from it, reweights the draws
//! against U(x), and compares log Ẑ and the minor-well weight with their exact values. The
//! full CLI (train / sample / reweight / run / inspect with TOML configs) replaces it.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Generator};
use boltzgen::potentials::{DoubleWell2D, ExactLogZ, Potential};
use boltzgen::reweight::ImportanceWeights;
use boltzgen::rng::stream;
use boltzgen::train::{train_flow, LrSchedule, StepReport, TrainConfig, TrainObserver};
use boltzgen::Result;

const SEED: u64 = 42;
const BETA: f64 = 1.0;

fn main() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("boltzgen: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints a line every 250 steps (the CLI will attach a progress bar instead).
struct Progress;

impl TrainObserver for Progress {
    fn on_step(&mut self, r: &StepReport) {
        if (r.step + 1) % 250 == 0 {
            if let Some(f) = r.reverse_free_energy {
                println!(
                    "    step {:>5}: free energy mean[βU + log q] = {f:>9.4}",
                    r.step + 1
                );
                let _ = std::io::stdout().flush();
            }
        }
    }
}

fn demo() -> Result<()> {
    let target = DoubleWell2D::default();
    println!("boltzgen demo: a Boltzmann generator for the 2-D double well");
    println!(
        "  U(x, y) = x⁴ − 6x² + x + ½y², β = {BETA}; libtorch CUDA available: {}",
        tch::Cuda::is_available()
    );

    tch::manual_seed(SEED as i64);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 4, &[32, 32], 8, 5.0),
        DeviceChoice::Auto,
    )?;
    let steps = 1500;
    let config = TrainConfig {
        steps,
        batch_size: 256,
        learning_rate: 3e-3,
        schedule: LrSchedule::Cosine {
            final_fraction: 0.02,
        },
        forward_weight: 0.0,
        reverse_weight: 1.0,
        anneal_from_beta: Some(0.1),
        anneal_steps: steps / 2,
        seed: SEED,
        ..TrainConfig::default()
    };
    println!(
        "  training a 4-layer neural-spline flow by reverse KL, annealed from β = 0.1 to {BETA}:"
    );
    let started = Instant::now();
    train_flow(&mut flow, None, Some(&target), &config, &mut Progress)?;
    println!("  trained in {:.1} s", started.elapsed().as_secs_f64());

    let n = 100_000;
    let draws = flow.sample(n, &mut stream(SEED, 1))?;
    let mut energies = vec![0.0; n];
    target.energies(&draws.x, &mut energies)?;
    println!("  first draws:      x          y          U(x)      log q(x)");
    for (i, u) in energies.iter().take(5).enumerate() {
        let c = draws.configuration(i);
        println!(
            "              {:>9.4}  {:>9.4}  {:>10.4}  {:>10.4}",
            c[0], c[1], u, draws.log_q[i]
        );
    }

    let weights = ImportanceWeights::new(BETA, &energies, &draws.log_q)?;
    let log_z = weights.log_z();
    let minor: Vec<f64> = draws
        .x
        .chunks_exact(2)
        .map(|c| (c[0] > 0.0) as u8 as f64)
        .collect();
    let minor_weighted = weights.expectation(&minor)?;
    let minor_raw = minor.iter().sum::<f64>() / n as f64;
    let exact_log_z = target.log_z(BETA)?;
    let exact_minor = target.x_probability(0.0, f64::INFINITY, BETA)?;
    println!(
        "  {n} draws, Kish ESS {:.1} %",
        100.0 * weights.ess_fraction()
    );
    println!(
        "  log Z: estimate {:.4} ± {:.4}, exact {exact_log_z:.4}",
        log_z.value, log_z.std_error
    );
    println!(
        "  weight of the minor well (x > 0): reweighted {:.4} ± {:.4}, raw generator {minor_raw:.4}, exact {exact_minor:.4}",
        minor_weighted.value, minor_weighted.std_error
    );
    Ok(())
}
