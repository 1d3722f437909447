//! Task benchmark: well-to-well transitions on the 2-D double well, per 10⁶ energy
//! evaluations, for tuned random-walk MH, tuned MALA, and flow-MH (a mixture of a random walk
//! and independence proposals from a flow trained by reverse KL, as in the demo).
//!
//! For each sampler: transitions between the cores x < −1 and x > 1 (hysteresis), per 10⁶
//! energy evaluations (every evaluation counts, including buffered flow draws never used);
//! the fraction of time in the left well (x < 0) with its error bar, against the exact value
//! by quadrature; and the ESS of that indicator per second of wall time.
//!
//! `cargo bench --bench double_well_transitions` (env: `BENCH_LOCAL_STEPS`, `BENCH_FLOW_STEPS`
//! per chain; `BENCH_CHAINS`, default 16).

use std::time::Instant;

use boltzgen::diagnostics::{count_transitions, summarize, StateInterval};
use boltzgen::generator::{DeviceChoice, Flow, FlowConfig};
use boltzgen::mcmc::{Learned, MoveKind, MoveSpec, SampleRun, Sampler, SamplerConfig};
use boltzgen::potentials::DoubleWell2D;
use boltzgen::train::{train_flow, LrSchedule, NoObserver, TrainConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn trained_flow(u: &DoubleWell2D) -> Flow {
    tch::manual_seed(42);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 4, &[32, 32], 8, 5.0),
        DeviceChoice::Cpu,
    )
    .unwrap();
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
        seed: 42,
        ..TrainConfig::default()
    };
    train_flow(&mut flow, None, Some(u), &config, &mut NoObserver).unwrap();
    flow
}

struct Row {
    name: &'static str,
    evaluations: u64,
    transitions: u64,
    left: f64,
    left_se: f64,
    ess: f64,
    seconds: f64,
    acceptance: Vec<(String, f64)>,
}

fn measure(
    chains: usize,
    name: &'static str,
    u: &DoubleWell2D,
    learned: Learned,
    moves: Vec<MoveSpec>,
    steps: usize,
) -> Row {
    let mut config = SamplerConfig::new(chains, 1.0, moves);
    config.seed = 7;
    config.burn_in = 2000;
    config.steps = steps;
    config.buffer = 4096;
    config.sync_interval = 1000;
    // Chains start in the left well, 0.9671 of the mass, where an unmixed chain would stay.
    let mut sampler = Sampler::new(config, u, &[-1.7, 0.0]).unwrap();
    let started = Instant::now();
    sampler.run(u, learned, |_| Ok(())).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let run: SampleRun = sampler.report();
    let states = [
        StateInterval {
            name: "left".into(),
            lower: f64::NEG_INFINITY,
            upper: -1.0,
        },
        StateInterval {
            name: "right".into(),
            lower: 1.0,
            upper: f64::INFINITY,
        },
    ];
    let mut transitions = 0;
    let mut indicators = Vec::new();
    for c in 0..chains {
        let x = run.coordinate(c, 0);
        transitions += count_transitions(&x, &states).unwrap().total;
        indicators.push(
            x.iter()
                .map(|v| f64::from(u8::from(*v < 0.0)))
                .collect::<Vec<f64>>(),
        );
    }
    let refs: Vec<&[f64]> = indicators.iter().map(|v| v.as_slice()).collect();
    let s = summarize(&refs).unwrap();
    Row {
        name,
        evaluations: run.energy_evaluations,
        transitions,
        left: s.mean,
        left_se: s.std_error,
        ess: s.ess,
        seconds,
        acceptance: run
            .moves
            .iter()
            .map(|m| (m.name.clone(), m.production.acceptance_rate()))
            .collect(),
    }
}

fn main() {
    tch::set_num_threads(2);
    let u = DoubleWell2D::default();
    let exact_left = u.x_probability(-10.0, 0.0, 1.0).unwrap();
    let local_steps = env("BENCH_LOCAL_STEPS", 1_000_000);
    let flow_steps = env("BENCH_FLOW_STEPS", 62_500);
    let chains = env("BENCH_CHAINS", 16);

    let started = Instant::now();
    let flow = trained_flow(&u);
    println!("flow trained in {:.1} s", started.elapsed().as_secs_f64());

    let rw = MoveSpec::new(MoveKind::RandomWalk, 1.0)
        .with_step(0.5)
        .adapting_to(0.4);
    let rows = [
        measure(
            chains,
            "random walk",
            &u,
            Learned::none(),
            vec![rw.clone()],
            local_steps,
        ),
        measure(
            chains,
            "MALA",
            &u,
            Learned::none(),
            vec![MoveSpec::new(MoveKind::Mala, 1.0)
                .with_step(0.3)
                .adapting_to(0.57)],
            local_steps,
        ),
        measure(
            chains,
            "flow-MH (flow 1 : RW 1)",
            &u,
            Learned::flow(&flow),
            vec![MoveSpec::new(MoveKind::Flow, 1.0), rw],
            flow_steps,
        ),
    ];
    println!("exact fraction of time in the left well: {exact_left:.5}");
    println!(
        "{:<26} {:>12} {:>11} {:>14} {:>18} {:>10} {:>9}  acceptance",
        "sampler", "U evals", "transitions", "per 1e6 evals", "left fraction", "ESS/s", "seconds"
    );
    for r in &rows {
        println!(
            "{:<26} {:>12} {:>11} {:>14.1} {:>10.5} ± {:.5} {:>10.0} {:>9.2}  {}",
            r.name,
            r.evaluations,
            r.transitions,
            r.transitions as f64 * 1e6 / r.evaluations as f64,
            r.left,
            r.left_se,
            r.ess / r.seconds,
            r.seconds,
            r.acceptance
                .iter()
                .map(|(n, a)| format!("{n} {a:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let rate = |r: &Row| r.transitions as f64 / r.evaluations as f64;
    let flow_row = &rows[2];
    println!(
        "flow-MH / random walk transitions per evaluation: {}",
        if rows[0].transitions == 0 {
            format!(
                "> {:.0} (the random walk made none)",
                rate(flow_row) * rows[0].evaluations as f64
            )
        } else {
            format!("{:.0}", rate(flow_row) / rate(&rows[0]))
        }
    );
    println!(
        "flow-MH left fraction − exact: {:+.5} (± {:.5})",
        flow_row.left - exact_left,
        flow_row.left_se
    );
}
