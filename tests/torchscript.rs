//! Bring your own PyTorch flow: a TorchScript module exported by
//! `tests/fixtures/export_torchscript_flow.py` (run with the project's venv python, found as
//! `$BOLTZGEN_PYTHON` or `python3` on the PATH that `scripts/env.sh` sets) is used as a
//! boltzgen generator.
//!
//! - boltzgen's `log_prob` reproduces PyTorch's on fixed points to 1e-6;
//! - the same seed gives the same draws;
//! - Metropolis–Hastings with this proposal (mixed with a random walk) samples the double
//!   well: the left-well weight and x-bins against quadrature, z-tests whose error bars come
//!   from the measured autocorrelation time (|z| < 4);
//! - the proposal engine opens the `.pt` file; a module without `log_prob`, a file that is not
//!   TorchScript, and a missing file are errors that name the file;
//! - `boltzgen run` with `[model] kind = "torchscript"` samples and reweights with it: log Ẑ
//!   against the exact log Z within 4 standard errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use boltzgen::engine::{EngineConfig, ProposalEngine};
use boltzgen::generator::{torch_lock, DeviceChoice, Generator, TorchScriptGenerator};
use boltzgen::mcmc::{Learned, MoveKind, MoveSpec, Sampler, SamplerConfig};
use boltzgen::potentials::DoubleWell2D;
use boltzgen::rng::stream;

mod common;
use common::chain_average;

fn export_fixture(dir: &Path) -> PathBuf {
    let python = std::env::var("BOLTZGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export_torchscript_flow.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{python}` (set BOLTZGEN_PYTHON or source scripts/env.sh): {e}")
        });
    assert!(
        out.status.success(),
        "{} failed (does `{python}` have torch? scripts/env.sh sets up the venv):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("flow.pt")
}

#[derive(serde::Deserialize)]
struct Reference {
    x: Vec<[f64; 2]>,
    log_q: Vec<f64>,
}

#[test]
fn a_torchscript_flow_is_a_generator_with_pytorchs_density() {
    let _torch = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = export_fixture(dir.path());
    let flow = TorchScriptGenerator::load(&file, DeviceChoice::Cpu).unwrap();
    assert_eq!(flow.dim(), 2);
    assert!(flow.exact_density());

    // log_prob against PyTorch's own values.
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reference.json")).unwrap())
            .unwrap();
    let x: Vec<f64> = reference.x.iter().flatten().copied().collect();
    let ours = flow.log_prob(&x).unwrap();
    for (i, (a, b)) in ours.iter().zip(&reference.log_q).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "point {i}: boltzgen {a} vs PyTorch {b}"
        );
    }

    // Reproducible draws, consistent with log_prob.
    let a = flow.sample(100, &mut stream(5, 0)).unwrap();
    let b = flow.sample(100, &mut stream(5, 0)).unwrap();
    assert_eq!(a, b);
    let c = flow.sample(100, &mut stream(6, 0)).unwrap();
    assert_ne!(a.x, c.x);
    for (l, r) in flow.log_prob(&a.x).unwrap().iter().zip(&a.log_q) {
        assert!((l - r).abs() < 1e-9, "{l} vs {r}");
    }

    // MH with the TorchScript proposal samples the double well.
    let u = DoubleWell2D::new(1.0, 6.0, 1.0, 1.0).unwrap();
    let moves = vec![
        MoveSpec::new(MoveKind::Flow, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.5),
    ];
    let mut config = SamplerConfig::new(32, 1.0, moves);
    config.seed = 31;
    config.burn_in = 200;
    config.steps = 3_000;
    config.buffer = 1024;
    let mut sampler = Sampler::new(config, &u, &[-1.7, 0.0]).unwrap();
    let learned = Learned {
        independence: Some(&flow),
        ..Learned::none()
    };
    sampler.run(&u, learned, |_| Ok(())).unwrap();
    let run = sampler.report();
    let flow_acceptance = run.moves[0].production.acceptance_rate();
    assert!(flow_acceptance > 0.3, "flow acceptance {flow_acceptance}");
    for (lo, hi) in [(-10.0, 0.0), (-2.0, -1.5), (-1.5, -1.0), (1.0, 10.0)] {
        let exact = u.x_probability(lo, hi, 1.0).unwrap();
        let (mean, se) = chain_average(&run, |x| f64::from(u8::from(x[0] >= lo && x[0] < hi)));
        let z = (mean - exact) / se;
        assert!(
            z.abs() < 4.0,
            "P({lo} < x < {hi}) = {mean} ± {se} against exact {exact} (z = {z:.2})"
        );
    }

    // The proposal engine takes the .pt file as it is.
    let config = EngineConfig {
        device: DeviceChoice::Cpu,
        ..EngineConfig::default()
    };
    let mut engine = ProposalEngine::open(&file, config.clone()).unwrap();
    let p = engine.propose(&[-1.7, 0.1]).unwrap();
    let lq = flow.log_prob(&[-1.7, 0.1, p.x[0], p.x[1]]).unwrap();
    assert!((p.log_hastings - (lq[0] - lq[1])).abs() < 1e-9);

    // Bad modules are errors that name the file.
    let no_log_prob = dir.path().join("no_log_prob.pt");
    let err = ProposalEngine::open(&no_log_prob, config.clone()).unwrap_err();
    assert!(
        err.to_string().contains("no_log_prob.pt") && err.to_string().contains("log_prob"),
        "{err}"
    );
    let garbage = dir.path().join("garbage.pt");
    std::fs::write(&garbage, "not a module").unwrap();
    let err = ProposalEngine::open(&garbage, config.clone()).unwrap_err();
    assert!(
        err.to_string().contains("garbage.pt") && err.to_string().contains("TorchScript"),
        "{err}"
    );
    let err = ProposalEngine::open(&dir.path().join("missing.pt"), config).unwrap_err();
    assert!(err.to_string().contains("missing.pt"), "{err}");

    // The CLI: sample and reweight with the TorchScript flow.
    std::fs::write(dir.path().join("ts.toml"), CLI_CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_boltzgen"))
        .args(["run", "ts.toml", "-o", "out", "--quiet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("out/model.pt").is_file());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/reweight_report.json")).unwrap(),
    )
    .unwrap();
    let log_z = report["log_z"]["value"].as_f64().unwrap();
    let se = report["log_z"]["std_error"].as_f64().unwrap();
    let exact = report["exact_log_z"].as_f64().unwrap();
    assert!(
        (log_z - exact).abs() < 4.0 * se && se < 0.01,
        "log Z {log_z} ± {se} vs exact {exact}"
    );
    // Training a TorchScript model is refused, naming the key.
    std::fs::write(
        dir.path().join("train.toml"),
        format!("{CLI_CONFIG}\n[train]\nsteps = 10\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_boltzgen"))
        .args(["run", "train.toml", "-o", "out2"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("train.toml") && err.contains("torchscript"),
        "{err}"
    );
}

const CLI_CONFIG: &str = r#"
seed = 3
[system]
potential = "double_well"
beta = 1.0
[model]
kind = "torchscript"
file = "flow.pt"
[sample]
chains = 8
burn_in = 100
steps = 1000
[[sample.moves]]
kind = "flow"
weight = 1.0
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
[reweight]
draws = 20000
"#;
