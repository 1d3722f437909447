//! Engine overhead per Metropolis–Hastings step, with a potential that costs ~1 ns, so that
//! the time per step is the sampler's own: move choice, proposal noise, the acceptance rule,
//! bookkeeping and recording. Target: ≤ 100 ns per step.
//!
//! `cargo bench --bench sampler_overhead`

use std::hint::black_box;

use boltzgen::mcmc::{
    run_chain, ChainState, Learned, Move, MoveKind, MoveSpec, RandomWalk, Sampler, SamplerConfig,
};
use boltzgen::potentials::Potential;
use boltzgen::rng::stream;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// U(x) = ½‖x‖²: as cheap as a potential gets.
struct Trivial(usize);

impl Potential for Trivial {
    fn dim(&self) -> usize {
        self.0
    }
    fn name(&self) -> &str {
        "trivial"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        0.5 * x.iter().map(|v| v * v).sum::<f64>()
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        grad.copy_from_slice(x);
        self.compute_energy(x)
    }
}

const STEPS: usize = 10_000;

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("mh_step");
    group.throughput(Throughput::Elements(STEPS as u64));
    for dim in [1, 3] {
        let u = Trivial(dim);
        group.bench_function(format!("run_chain_random_walk_d{dim}"), |b| {
            let mut rng = stream(1, 0);
            let mut moves: Vec<(Box<dyn Move>, f64)> =
                vec![(Box::new(RandomWalk { step: 1.0 }), 1.0)];
            let mut state = ChainState::new(vec![0.0; dim], &u).unwrap();
            b.iter(|| {
                run_chain(&mut state, &u, 1.0, &mut moves, STEPS, &mut rng, |s| {
                    black_box(s.energy);
                })
                .unwrap()
            })
        });
        group.bench_function(format!("sampler_1_chain_random_walk_d{dim}"), |b| {
            b.iter_batched(
                || {
                    let mut config = SamplerConfig::new(
                        1,
                        1.0,
                        vec![MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(1.0)],
                    );
                    config.burn_in = 0;
                    config.steps = STEPS;
                    config.thin = 10;
                    config.sync_interval = STEPS;
                    Sampler::new(config, &u, &vec![0.0; dim]).unwrap()
                },
                |mut s| {
                    s.run(&u, Learned::none(), |_| Ok(())).unwrap();
                    s
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
