//! The sampler's chains spread over processes ([`Sampler::run_spread`]), with threads
//! standing in for MPI ranks: the same chains, bit for bit, as one process, whatever the
//! number of ranks, with and without replica exchange; and a checkpoint written by the first
//! rank resumes on another number of ranks. (`tests/mpi.rs` runs the real thing under
//! `mpirun` when boltzgen is built with `--features mpi`.)
//!
//! Planted once (2026-12-04): ranks that do not take each other's chains after a stretch of
//! moves (`share_chains` skipped in `Sampler::run_segment`) failed both tests ("exchange
//! false, 2 ranks: rank 0 differs from one process").

use std::sync::{Barrier, Mutex};

use boltzgen::mcmc::{
    ExchangeConfig, Learned, MoveKind, MoveSpec, Ranks, SampleRun, Sampler, SamplerConfig,
    SamplerObserver,
};
use boltzgen::potentials::DoubleWell2D;
use boltzgen::Result;

/// `size` threads of one process acting as ranks.
struct ThreadRanks<'a> {
    rank: usize,
    size: usize,
    barrier: &'a Barrier,
    slots: &'a Mutex<Vec<Vec<u8>>>,
}

impl Ranks for ThreadRanks<'_> {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.slots.lock().unwrap()[self.rank] = mine.to_vec();
        self.barrier.wait();
        let all = self.slots.lock().unwrap().clone();
        // Nobody writes the next round's slot before everyone has read this one.
        self.barrier.wait();
        Ok(all)
    }
}

struct Quiet;
impl SamplerObserver for Quiet {}

fn config(exchange: bool) -> SamplerConfig {
    let mut c = SamplerConfig::new(
        5,
        1.5,
        vec![
            MoveSpec::new(MoveKind::RandomWalk, 1.0)
                .with_step(0.5)
                .adapting_to(0.4),
            MoveSpec::new(MoveKind::Mala, 0.5)
                .with_step(0.2)
                .adapting_to(0.57),
        ],
    );
    c.seed = 21;
    c.burn_in = 300;
    c.steps = 1_000;
    c.thin = 2;
    c.sync_interval = 50;
    if exchange {
        let mut x = ExchangeConfig::geometric(1.5, 5.0, 4).unwrap();
        x.swap_interval = 10;
        c.exchange = Some(x);
    }
    c
}

/// Runs `sampler` (or a fresh one) on `size` thread-ranks; every rank's final report.
fn spread(size: usize, exchange: bool, sampler: Option<Sampler>) -> Vec<SampleRun> {
    let barrier = Barrier::new(size);
    let slots = Mutex::new(vec![Vec::new(); size]);
    let u = DoubleWell2D::default();
    let first =
        Mutex::new(Some(sampler.unwrap_or_else(|| {
            Sampler::new(config(exchange), &u, &[1.7, 0.0]).unwrap()
        })));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let (barrier, slots, first) = (&barrier, &slots, &first);
                scope.spawn(move || {
                    let ranks = ThreadRanks {
                        rank,
                        size,
                        barrier,
                        slots,
                    };
                    let u = DoubleWell2D::default();
                    let mine = if rank == 0 {
                        first.lock().unwrap().take()
                    } else {
                        None
                    };
                    Sampler::run_spread(mine, &u, Learned::none(), &mut Quiet, &ranks)
                        .unwrap()
                        .report()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn spread_over_ranks_the_chains_are_those_of_one_process() {
    let u = DoubleWell2D::default();
    for exchange in [false, true] {
        let mut alone = Sampler::new(config(exchange), &u, &[1.7, 0.0]).unwrap();
        alone.run(&u, Learned::none(), |_| Ok(())).unwrap();
        let alone = alone.report();
        // 5 chains, or 5 ladders of 4 rungs: with 3 ranks, rungs of one ladder sit on two.
        for size in [1, 2, 3] {
            let reports = spread(size, exchange, None);
            for (rank, r) in reports.iter().enumerate() {
                assert!(
                    *r == alone,
                    "exchange {exchange}, {size} ranks: rank {rank} differs from one process"
                );
            }
        }
    }
}

#[test]
fn a_checkpoint_resumes_on_another_number_of_ranks() {
    let u = DoubleWell2D::default();
    let mut whole = Sampler::new(config(true), &u, &[1.7, 0.0]).unwrap();
    whole.run(&u, Learned::none(), |_| Ok(())).unwrap();

    // Stopped at step 650 by one process, continued by three.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spread.ckpt");
    let mut part = Sampler::new(config(true), &u, &[1.7, 0.0]).unwrap();
    part.run_until(&u, Learned::none(), 650).unwrap();
    part.checkpoint(&path).unwrap();
    let resumed = Sampler::resume(&path, &config(true), &u).unwrap();
    let reports = spread(3, true, Some(resumed));
    assert!(reports.iter().all(|r| *r == whole.report()));
}
