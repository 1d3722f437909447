//! `mpirun -np N boltzgen sample` as a user runs it (built with `--features mpi`, on Open
//! MPI): the same files, bit for bit, as one process for N = 1, 2, 3 — with replica exchange,
//! and with flow moves (served on every rank from the same stream); `boltzgen run` trains once
//! on the first rank and samples on all; a run stopped on two ranks resumes on three; an error
//! on one rank ends them all with exit code 2; and commands that do not spread over ranks are
//! refused rather than run N times into the same files.
//!
//! Planted once (2026-12-04): a rank that does not take the other ranks' chains after a
//! stretch of moves (`share_chains` skipped in `Sampler::run_segment`) failed all four tests:
//! the first rank found no samples for the chains it did not advance (it panicked writing
//! them, exit 101).
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::boltzgen;

const EXCHANGE: &str = r#"
seed = 4
[system]
potential = "double_well"
parameters = { a = 1.0, b = 6.0, c = 0.3, d = 1.0 }
beta = 2.0
[sample]
chains = 5
burn_in = 2000
steps = STEPS
thin = 5
start = [1.7, 0.0]
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
target_acceptance = 0.4
[[sample.moves]]
kind = "mala"
weight = 0.5
step = 0.1
target_acceptance = 0.57
[sample.replica_exchange]
replicas = 4
max_temperature = 4.0
"#;

/// `mpirun -np n boltzgen ARGS` in `dir`, one thread per rank.
fn mpirun(n: usize, args: &[&str], dir: &Path) -> Output {
    Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &n.to_string(),
        ])
        .arg(env!("CARGO_BIN_EXE_boltzgen"))
        .args(args)
        .args(["--threads", "1"])
        .current_dir(dir)
        .output()
        .expect("mpirun runs (Open MPI is installed by scripts/env.sh)")
}

fn same_files(a: &Path, b: &Path) {
    for f in ["samples.csv", "samples.xyz"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f}: {} and {} differ", a.display(), b.display());
    }
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn mpirun_gives_the_chains_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("x.toml"), EXCHANGE.replace("STEPS", "6000")).unwrap();
    ok(&boltzgen(
        &["sample", "x.toml", "-o", "alone", "-q", "--threads", "1"],
        d,
    ));
    for n in [1, 2, 3] {
        let out = format!("np{n}");
        let o = mpirun(n, &["sample", "x.toml", "-o", &out, "-q"], d);
        ok(&o);
        same_files(&d.join("alone"), &d.join(&out));
    }
    // The report says the same, but for the wall time.
    let report = |dir: &str| {
        let mut r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join(dir).join("sample_report.json")).unwrap(),
        )
        .unwrap();
        r["seconds"] = serde_json::Value::Null;
        r["trajectory"] = serde_json::Value::Null;
        r["table"] = serde_json::Value::Null;
        r
    };
    assert_eq!(report("alone"), report("np3"));
}

#[test]
fn a_run_stopped_on_two_ranks_resumes_on_three() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("short.toml"), EXCHANGE.replace("STEPS", "3000")).unwrap();
    std::fs::write(d.join("long.toml"), EXCHANGE.replace("STEPS", "6000")).unwrap();
    ok(&boltzgen(
        &["sample", "long.toml", "-o", "whole", "-q", "--threads", "1"],
        d,
    ));
    ok(&mpirun(
        2,
        &["sample", "short.toml", "-o", "moved", "-q"],
        d,
    ));
    ok(&mpirun(
        3,
        &["sample", "long.toml", "-o", "moved", "-q", "--resume"],
        d,
    ));
    same_files(&d.join("whole"), &d.join("moved"));
}

const FLOW_RUN: &str = r#"
seed = 1
[system]
potential = "double_well"
beta = 1.0
[model]
kind = "neural_spline"
layers = 2
hidden = [16]
FILE
[train]
method = "gradient"
steps = 150
batch_size = 128
learning_rate = 3e-3
forward_weight = 0.0
reverse_weight = 1.0
anneal_from_beta = 0.2
anneal_steps = 75
[sample]
chains = 6
burn_in = 100
steps = 600
sync_interval = 50
buffer = 64
[[sample.moves]]
kind = "flow"
weight = 1.0
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
[reweight]
draws = 2000
"#;

#[test]
fn flow_moves_spread_over_ranks_are_those_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("train.toml"), FLOW_RUN.replace("FILE", "")).unwrap();
    ok(&boltzgen(
        &["train", "train.toml", "-o", "model", "-q", "--threads", "1"],
        d,
    ));
    std::fs::write(
        d.join("sample.toml"),
        FLOW_RUN.replace("FILE", "file = \"model/model.json\""),
    )
    .unwrap();
    ok(&boltzgen(
        &[
            "sample",
            "sample.toml",
            "-o",
            "alone",
            "-q",
            "--threads",
            "1",
        ],
        d,
    ));
    let o = mpirun(2, &["sample", "sample.toml", "-o", "np2", "-q"], d);
    ok(&o);
    same_files(&d.join("alone"), &d.join("np2"));
}

/// `boltzgen run` on three ranks: the first trains (once: the others load its model from the
/// run directory), all sample, the first reweights; the same files as one process.
#[test]
fn mpirun_run_trains_once_and_samples_on_every_rank() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("run.toml"), FLOW_RUN.replace("FILE", "")).unwrap();
    ok(&boltzgen(
        &["run", "run.toml", "-o", "alone", "-q", "--threads", "1"],
        d,
    ));
    let o = mpirun(3, &["run", "run.toml", "-o", "np3", "-q"], d);
    ok(&o);
    same_files(&d.join("alone"), &d.join("np3"));
    for f in ["model.safetensors", "weights.csv"] {
        let (x, y) = (
            std::fs::read(d.join("alone").join(f)).unwrap(),
            std::fs::read(d.join("np3").join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs");
    }
}

#[test]
fn an_error_on_one_rank_ends_every_rank_and_other_commands_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("x.toml"), EXCHANGE.replace("STEPS", "500")).unwrap();
    ok(&mpirun(2, &["sample", "x.toml", "-o", "out", "-q"], d));
    // The run directory exists: the first rank refuses it, and MPI_Abort ends the other,
    // which was already waiting for the sampler.
    let o = mpirun(2, &["sample", "x.toml", "-o", "out", "-q"], d);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("MPI rank 0 of 2") && err.contains("out"),
        "{err}"
    );

    let o = mpirun(2, &["train", "x.toml", "-o", "twice"], d);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("only `boltzgen sample` and `run` spread over MPI ranks"),
        "{err}"
    );
    assert!(!d.join("twice").exists(), "nothing was written");
}
