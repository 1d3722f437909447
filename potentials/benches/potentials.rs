//! Criterion benchmarks of the potentials (issue: foundation). Numbers go to BENCHMARKS.md.
//!
//! cargo bench -p boltzgen-potentials --bench potentials
//!
//! - LJ13 energy+gradient, one configuration, one thread (target ≤ 1 µs).
//! - LJ fluid at ρ = 0.8, r_c = 2.5σ, energy+gradient for N = 512, 4096, 32768 (target
//!   ≤ 15 ns per pair inside the cutoff, and t(32768)/t(4096) ≤ 9). The pair count of each
//!   configuration is printed once, so ns/pair = time / pairs.
//! - Batched energies of 10⁵ ManyWell-32 configurations on 1 and 2 rayon threads.
//! - Alanine dipeptide (OpenMM System XML, vacuum AMBER ff96): energy+gradient of one
//!   configuration on one thread, and batched energy+gradient of 10⁴ configurations on 1 and 2
//!   rayon threads.

use std::hint::black_box;
use std::time::Duration;

use boltzgen_potentials::{
    LennardJonesCluster, LennardJonesFluid, ManyWell, OpenMmForceField, Potential,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// SplitMix64 in [lo, hi): deterministic inputs without an RNG crate in the hot loop.
fn uniform(state: &mut u64, lo: f64, hi: f64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    lo + (hi - lo) * (((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64)
}

/// A rayon pool of `threads` workers, for comparing batched calls on 1 and 2 threads.
fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// A simple cubic lattice filling the box, jittered by ±0.1 of the spacing.
fn jittered_box(n: usize, box_length: f64, seed: u64) -> Vec<f64> {
    let side = (n as f64).cbrt().ceil() as usize;
    let a = box_length / side as f64;
    let mut s = seed;
    (0..n)
        .flat_map(|i| [i % side, (i / side) % side, i / (side * side)])
        .map(|c| (c as f64 + 0.5) * a + uniform(&mut s, -0.1 * a, 0.1 * a))
        .collect()
}

fn lj13(c: &mut Criterion) {
    let lj = LennardJonesCluster::lj13();
    // A compact 13-atom blob: jittered 3×3×2 lattice, spacing r_m.
    let x: Vec<f64> = jittered_box(13, 3.0, 1);
    let mut g = vec![0.0; lj.dim()];
    c.bench_function("lj13_energy_gradient", |b| {
        b.iter(|| lj.energy_and_gradient(black_box(&x), &mut g).unwrap())
    });
}

fn lj_fluid(c: &mut Criterion) {
    let mut group = c.benchmark_group("lj_fluid_energy_gradient");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for n in [512usize, 4096, 32768] {
        let base = LennardJonesFluid::at_density(n, 0.8, 2.5, true).unwrap();
        let x = jittered_box(n, base.box_length(), n as u64);
        let pairs = count_pairs(&base, &x);
        group.throughput(Throughput::Elements(pairs as u64));
        // Both cell sizes in the same run, so their ratio means something on a noisy machine.
        for reach in [2u8, 1] {
            let lj = base.with_cell_reach(reach).unwrap();
            eprintln!(
                "lj_fluid N = {n}, reach {reach}: {pairs} pairs inside the cutoff, {} cells per side",
                lj.cells_per_side()
            );
            let mut g = vec![0.0; lj.dim()];
            group.bench_with_input(BenchmarkId::new(format!("reach{reach}"), n), &x, |b, x| {
                b.iter(|| lj.energy_and_gradient(black_box(x), &mut g).unwrap())
            });
        }
    }
    group.finish();
}

/// Pairs within the cutoff, by minimum image over all pairs (O(N²), done once).
fn count_pairs(lj: &LennardJonesFluid, x: &[f64]) -> usize {
    let (l, rc2) = (lj.box_length(), lj.cutoff() * lj.cutoff());
    let n = x.len() / 3;
    let mut count = 0;
    for i in 0..n {
        for j in i + 1..n {
            let r2: f64 = (0..3)
                .map(|k| {
                    let d = x[3 * i + k] - x[3 * j + k];
                    let d = d - l * (d / l).round();
                    d * d
                })
                .sum();
            count += (r2 < rc2) as usize;
        }
    }
    count
}

fn many_well_batch(c: &mut Criterion) {
    let mw = ManyWell::new(32).unwrap();
    let n = 100_000;
    let mut s = 7;
    let xs: Vec<f64> = (0..n * 32).map(|_| uniform(&mut s, -2.5, 2.5)).collect();
    let mut out = vec![0.0; n];
    let mut group = c.benchmark_group("many_well32_batch_1e5");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for threads in [1usize, 2] {
        let pool = thread_pool(threads);
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| pool.install(|| mw.energies(black_box(&xs), &mut out).unwrap()))
        });
    }
    group.finish();
}

/// The PDB's coordinates (Å → nm), read from its ATOM/HETATM records.
fn pdb_coordinates(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with("ATOM") || l.starts_with("HETATM"))
        .flat_map(|l| {
            [30..38, 38..46, 46..54]
                .map(|r| 0.1 * l[r].trim().parse::<f64>().expect("PDB coordinate"))
        })
        .collect()
}

fn alanine_dipeptide(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/ala2");
    let ff = OpenMmForceField::from_file(&dir.join("system.xml")).unwrap();
    let x = pdb_coordinates(&std::fs::read_to_string(dir.join("ala2.pdb")).unwrap());
    assert_eq!(x.len(), ff.dim());
    let mut g = vec![0.0; ff.dim()];
    c.bench_function("ala2_energy_gradient", |b| {
        b.iter(|| ff.energy_and_gradient(black_box(&x), &mut g).unwrap())
    });
    let n = 10_000;
    let mut s = 3;
    let xs: Vec<f64> = (0..n)
        .flat_map(|_| {
            x.iter()
                .map(|v| v + uniform(&mut s, -0.005, 0.005))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut out = vec![0.0; n];
    let mut grads = vec![0.0; xs.len()];
    let mut group = c.benchmark_group("ala2_energy_gradient_batch_1e4");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(n as u64));
    for threads in [1usize, 2] {
        let pool = thread_pool(threads);
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                pool.install(|| {
                    ff.energies_and_gradients(black_box(&xs), &mut out, &mut grads)
                        .unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lj13, lj_fluid, many_well_batch, alanine_dipeptide);
criterion_main!(benches);
