//! What the C ABI adds to a proposal: `bg_propose` / `bg_propose_batch` against the Rust
//! API's `ProposalEngine::propose` / `propose_batch` on the same model file, single calls
//! against batches of 256. Target: a batched C call costs ≤ 1.1× the Rust batched call.
//!
//! The C functions are called from Rust through their `extern "C"` definitions, which is the
//! code a C program runs (its only extra is the call through the shared library's PLT).
//! Every call passes states the engine has not seen in its previous call (two sets of states
//! alternate), so each pays `log q` of the current states, as a host whose local moves
//! changed them would.
//!
//! Before the criterion groups, an interleaved measurement decides the target: 300 rounds,
//! each timing one Rust and one C batched call (in alternating order), so that the machine's
//! drift affects both alike; it prints the medians and their ratio.
//!
//! `cargo bench --features capi --bench engine_overhead`

use std::ffi::CString;
use std::hint::black_box;
use std::path::Path;

use boltzgen::capi::{
    bg_engine_free, bg_engine_open, bg_propose, bg_propose_batch, BgEngine, BgStatus,
};
use boltzgen::engine::{EngineConfig, ProposalEngine};
use boltzgen::generator::store::{save_flow, ModelMetadata};
use boltzgen::generator::{DeviceChoice, Flow, FlowConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BATCH: usize = 256;

fn states(dim: usize, n: usize, offset: f64) -> Vec<f64> {
    (0..n * dim)
        .map(|i| ((i as f64) * 0.37 + offset).sin())
        .collect()
}

fn bench_model(c: &mut Criterion, name: &str, config: FlowConfig, dir: &Path) {
    tch::manual_seed(1);
    let flow = Flow::new(config, DeviceChoice::Cpu).unwrap();
    let file = dir.join(format!("{name}.json"));
    save_flow(&flow, &file, ModelMetadata::default()).unwrap();
    let dim = boltzgen::generator::Generator::dim(&flow);
    let engine_config = "seed = 1\nbuffer = 1024\ndevice = \"cpu\"\nthreads = 1";
    let mut rust =
        ProposalEngine::open(&file, EngineConfig::from_toml(engine_config).unwrap()).unwrap();
    let path = CString::new(file.to_str().unwrap()).unwrap();
    let toml = CString::new(engine_config).unwrap();
    let mut handle: *mut BgEngine = std::ptr::null_mut();
    assert_eq!(
        unsafe { bg_engine_open(path.as_ptr(), toml.as_ptr(), &mut handle) },
        BgStatus::BgOk
    );
    let sets = [states(dim, BATCH, 0.0), states(dim, BATCH, 0.5)];
    let mut out = vec![0.0; BATCH * dim];
    let mut lh = vec![0.0; BATCH];

    // Interleaved: Rust and C batched calls alternate, so drift hits both alike.
    let (mut rust_times, mut c_times) = (Vec::new(), Vec::new());
    for round in 0..300 {
        for side in [round % 2, 1 - round % 2] {
            let set = &sets[(round + side) % 2];
            let start = std::time::Instant::now();
            if side == 0 {
                rust.propose_batch(set, &mut out, &mut lh).unwrap();
            } else {
                let status = unsafe {
                    bg_propose_batch(
                        handle,
                        set.as_ptr(),
                        BATCH,
                        dim,
                        out.as_mut_ptr(),
                        lh.as_mut_ptr(),
                    )
                };
                assert_eq!(status, BgStatus::BgOk);
            }
            let elapsed = start.elapsed().as_secs_f64();
            if side == 0 {
                rust_times.push(elapsed);
            } else {
                c_times.push(elapsed);
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (r, cc) = (median(rust_times), median(c_times));
    println!(
        "interleaved {name}: batch of {BATCH}, median Rust {:.3} ms, C {:.3} ms, C/Rust {:.3}",
        r * 1e3,
        cc * 1e3,
        cc / r
    );

    let mut group = c.benchmark_group(format!("propose_{name}"));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    let mut k = 0;
    group.bench_function("rust_single", |b| {
        b.iter(|| {
            k ^= 1;
            black_box(rust.propose(&sets[k][..dim]).unwrap());
        })
    });
    group.bench_function("c_single", |b| {
        b.iter(|| {
            k ^= 1;
            let status = unsafe {
                bg_propose(
                    handle,
                    sets[k].as_ptr(),
                    dim,
                    out.as_mut_ptr(),
                    lh.as_mut_ptr(),
                )
            };
            assert_eq!(status, BgStatus::BgOk);
            black_box(&out);
        })
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("rust_batch256", |b| {
        b.iter(|| {
            k ^= 1;
            rust.propose_batch(&sets[k], &mut out, &mut lh).unwrap();
            black_box(&out);
        })
    });
    group.bench_function("c_batch256", |b| {
        b.iter(|| {
            k ^= 1;
            let status = unsafe {
                bg_propose_batch(
                    handle,
                    sets[k].as_ptr(),
                    BATCH,
                    dim,
                    out.as_mut_ptr(),
                    lh.as_mut_ptr(),
                )
            };
            assert_eq!(status, BgStatus::BgOk);
            black_box(&out);
        })
    });
    group.finish();
    unsafe { bg_engine_free(handle) };
}

fn overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    bench_model(
        c,
        "double_well_spline",
        FlowConfig::neural_spline(2, 4, &[32, 32], 8, 5.0),
        dir.path(),
    );
    bench_model(
        c,
        "lj13_real_nvp",
        FlowConfig::real_nvp(36, 4, &[64, 64])
            .mean_free(13, 3)
            .unwrap(),
        dir.path(),
    );
}

criterion_group!(benches, overhead);
criterion_main!(benches);
