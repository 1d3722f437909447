//! Task benchmark: reverse-KL training of a RealNVP on ManyWell-32, and sampling throughput.
//!
//! Model (as in the normflows comparison, `benches/python/normflows_many_well.py`): 8 affine
//! couplings alternating halves, conditioner MLP 16→64→64→32 with leaky ReLU, batch 256, Adam
//! 1e-3, float32, 2 libtorch threads. Prints the median seconds per training iteration and
//! samples (x and log q) per second. `BENCH_DEVICE=cuda` runs the model on the GPU (the
//! energies and forces stay in Rust on the CPU; latent noise comes from the CPU stream).
//!
//! Run both sides in one go with `benches/reverse_kl_vs_normflows.sh`.

use std::time::Instant;

use boltzgen::generator::{
    Activation, BaseSpec, DeviceChoice, Flow, FlowConfig, Generator, LayerSpec, Precision,
};
use boltzgen::potentials::ManyWell;
use boltzgen::rng::stream;
use boltzgen::train::{train_flow, StepReport, TrainConfig, TrainObserver};

struct Timer {
    last: Instant,
    durations: Vec<f64>,
}

impl TrainObserver for Timer {
    fn on_start(&mut self, _: usize) {
        self.last = Instant::now();
    }
    fn on_step(&mut self, _: &StepReport) {
        let now = Instant::now();
        self.durations.push((now - self.last).as_secs_f64());
        self.last = now;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let threads: i32 = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let steps: usize = std::env::var("BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let dim = 32;
    let layers = (0..8)
        .map(|k| LayerSpec::AffineCoupling {
            transformed: if k % 2 == 0 {
                (16..32).collect()
            } else {
                (0..16).collect()
            },
            hidden: vec![64, 64],
            scale_bound: 2.0,
        })
        .collect();
    let config = FlowConfig {
        dim,
        layers,
        base: BaseSpec::StandardNormal,
        activation: Activation::LeakyRelu,
        precision: Precision::Float32,
        internal: None,
    };
    let device = match std::env::var("BENCH_DEVICE").as_deref() {
        Ok("cuda") => DeviceChoice::Cuda,
        Ok("auto") => DeviceChoice::Auto,
        _ => DeviceChoice::Cpu,
    };
    let mut flow = Flow::new(config, device).expect("flow");
    let device_name = format!("{:?}", flow.device());
    let target = ManyWell::new(dim).expect("many well");
    let train = TrainConfig {
        steps,
        batch_size: 256,
        learning_rate: 1e-3,
        forward_weight: 0.0,
        reverse_weight: 1.0,
        clip_grad_norm: None,
        ..TrainConfig::default()
    };
    let mut timer = Timer {
        last: Instant::now(),
        durations: Vec::new(),
    };
    train_flow(&mut flow, None, Some(&target), &train, &mut timer).expect("training");
    // Drop the first 10% as warm-up.
    let warm = timer.durations.len() / 10;
    let per_iter = median(timer.durations[warm..].to_vec());
    println!("boltzgen reverse-KL ManyWell-32 RealNVP: median {:.3} ms/iteration over {} iterations ({threads} threads, {device_name})", per_iter * 1e3, timer.durations.len() - warm);

    let n = 100_000;
    let mut rng = stream(1, 0);
    let _ = flow.sample(1000, &mut rng).expect("warm-up");
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let s = flow.sample(n, &mut rng).expect("sampling");
        assert_eq!(s.len(), n);
        times.push(t.elapsed().as_secs_f64());
    }
    let t = median(times);
    println!("boltzgen sampling (x and log q), ManyWell-32 RealNVP, {device_name}: {:.3e} samples/s (median of 5 x {n})", n as f64 / t);
}
