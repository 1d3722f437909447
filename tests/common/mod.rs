//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Output};

use boltzgen::generator::{DeviceChoice, Flow, FlowConfig, Precision, Vae, VaeConfig};

/// A spline flow trained on data unrelated to any target, so that its Jacobian varies
/// strongly across space.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn nonlinear_flow() -> Flow {
    tch::manual_seed(1);
    let mut flow = Flow::new(
        FlowConfig::neural_spline(2, 2, &[16], 6, 3.0).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let data = curve(2000);
    let config = boltzgen::train::TrainConfig {
        steps: 200,
        learning_rate: 1e-2,
        ..Default::default()
    };
    boltzgen::train::train_flow(
        &mut flow,
        Some(&data),
        None,
        &config,
        &mut boltzgen::train::NoObserver,
    )
    .unwrap();
    flow
}

/// Points on a curve unrelated to any test target: what the non-trivial generators are
/// trained on.
fn curve(n: usize) -> Vec<f64> {
    (0..n)
        .flat_map(|i| {
            let t = i as f64 * 0.37;
            [2.0 * t.sin(), 0.5 * (1.3 * t).cos()]
        })
        .collect()
}

/// A VAE trained on [`curve`] data: its encoder r(z | x) depends on x and its decoder
/// p(x | z) on z (an untrained VAE here has r(z | x) = 𝒩(0, I) for every x, and exactness
/// tests through it could not see a bug that confuses x with x′).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn nonlinear_vae(seed: i64) -> Vae {
    tch::manual_seed(seed);
    let mut vae = Vae::new(
        VaeConfig::new(2, 2, &[16]).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let config = boltzgen::train::TrainConfig {
        steps: 300,
        learning_rate: 1e-2,
        ..Default::default()
    };
    boltzgen::train::train_vae(
        &mut vae,
        &curve(2000),
        &config,
        &boltzgen::train::VaeObjective::default(),
        &mut boltzgen::train::NoObserver,
    )
    .unwrap();
    vae
}

/// log|det| of a square matrix (given as rows) by LU with partial pivoting.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn log_abs_det(mut m: Vec<Vec<f64>>) -> f64 {
    let n = m.len();
    let mut total = 0.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&a, &b| m[a][c].abs().partial_cmp(&m[b][c].abs()).unwrap())
            .unwrap();
        m.swap(c, p);
        let (upper, lower) = m.split_at_mut(c + 1);
        let pivot_row = &upper[c];
        total += pivot_row[c].abs().ln();
        for row in lower {
            let f = row[c] / pivot_row[c];
            for (v, p) in row.iter_mut().zip(pivot_row).skip(c) {
                *v -= f * p;
            }
        }
    }
    total
}

/// Mean ± standard error of `f` over the recorded samples of all chains of `run`, the error
/// bar from the measured integrated autocorrelation time. Panics unless the chains are long
/// enough for that estimate (converged window, ≥ 50 τ per chain).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn chain_average(run: &boltzgen::mcmc::SampleRun, f: impl Fn(&[f64]) -> f64) -> (f64, f64) {
    let series: Vec<Vec<f64>> = run
        .chains
        .iter()
        .map(|c| c.samples.chunks_exact(run.dim).map(&f).collect())
        .collect();
    let refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
    let s = boltzgen::diagnostics::summarize(&refs).unwrap();
    assert!(
        s.iat.converged && refs[0].len() as f64 >= 50.0 * s.iat.tau,
        "chains of {} draws are too short for tau = {:.1}",
        refs[0].len(),
        s.iat.tau
    );
    (s.mean, s.std_error)
}

/// Runs the `boltzgen` command in `cwd` as a user does, with the thread counts of rayon and
/// libtorch fixed at 2 (what CI has; `--threads` in `args` overrides both), so that no
/// outcome depends on the machine's core count.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn boltzgen(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boltzgen"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .env("OMP_NUM_THREADS", "2")
        .output()
        .expect("the boltzgen binary runs")
}

/// 2000 exact draws of the double well's right well (x > 0), as an XYZ trajectory.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn write_right_well(dir: &Path) {
    let dw = boltzgen::potentials::DoubleWell2D::default();
    let x = boltzgen::potentials::ExactSampler::sample_exact(
        &dw,
        1.0,
        200_000,
        &mut boltzgen::rng::stream(11, 0),
    )
    .unwrap();
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(dir.join("right_well.xyz")).unwrap());
    let mut written = 0;
    for p in x.chunks_exact(2).filter(|p| p[0] > 0.0).take(2000) {
        std::io::Write::write_fmt(
            &mut out,
            format_args!("1\nframe {written}\nX {} {} 0.0\n", p[0], p[1]),
        )
        .unwrap();
        written += 1;
    }
    assert_eq!(written, 2000, "the right well holds 3.3 % of 200 000 draws");
}

/// Runs `boltzgen run` with `args` (after `run`) in `dir`, expects success, and returns the
/// run directory `run_dir`'s `report.json` with stdout and stderr.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn run_and_report(
    dir: &Path,
    args: &[&str],
    run_dir: &str,
) -> (serde_json::Value, String, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let o = boltzgen(&all, dir);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{out}\n{err}");
    let report = serde_json::from_str(
        &std::fs::read_to_string(dir.join(run_dir).join("report.json")).unwrap(),
    )
    .unwrap();
    (report, out, err)
}
