//! The `boltzgen` command as a user runs it: the written files, resuming after a crash, and
//! clear errors (exit code 2, no panic, nothing half-written) for bad input.

use std::path::{Path, PathBuf};
use std::process::Output;

use boltzgen::io::trajectory::{count_frames, read_frames, FrameRange, ReadSpec};
use boltzgen::potentials::DoubleWell2D;

mod common;
use common::boltzgen;

const SMALL_RUN: &str = r#"
seed = 1
[system]
potential = "double_well"
beta = 1.0

[model]
kind = "neural_spline"
layers = 2
hidden = [16]

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
chains = 8
burn_in = 100
steps = 400
thin = 2
sync_interval = 50
checkpoint_every = 1
buffer = 256
[[sample.moves]]
kind = "flow"
weight = 1.0
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5

[reweight]
draws = 5000
bootstrap = 50
resample = 100

[analysis]
cv = { kind = "coordinate", index = 0 }
states = [{ name = "left", lower = -10.0, upper = -1.0 }, { name = "right", lower = 1.0, upper = 10.0 }]
profile = { lower = -2.5, upper = 2.5, bins = 20 }
"#;

/// `[analysis]` lines for SMALL_RUN that split the plane into the two wells.
const TWO_WELL_REGIONS: &str = r#"scatter = [{ kind = "coordinate", index = 0 }, { kind = "coordinate", index = 1 }]
regions = [{ name = "left", x = [-10.0, 0.0] }, { name = "right", x = [0.0, 10.0] }]"#;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// Runs and expects a clean failure: exit code 2, an error naming `mentions`, no panic.
fn expect_failure(args: &[&str], cwd: &Path, mentions: &[&str]) -> String {
    let o = boltzgen(args, cwd);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for m in mentions {
        assert!(err.contains(m), "{args:?}: `{m}` not in: {err}");
    }
    err
}

#[test]
fn run_writes_a_model_samples_weights_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    // 1600 production steps: the split-R̂ check below needs tens of effective samples per
    // half-chain (R̂ − 1 fluctuates like 1/ESS per half-chain). At 400 steps there were
    // about 9 (ESS 145 over 16 half-chains), and on an Intel Xeon, where libtorch trains this
    // flow to a slightly different result than on the AMD EPYC the bound was set on, R̂ came
    // out at 1.1009. At 1600 steps the ESS is 474 (30 per half-chain) and R̂ = 1.020.
    write(
        dir.path(),
        "small.toml",
        &SMALL_RUN.replace("\nsteps = 400\n", "\nsteps = 1600\n"),
    );
    let o = boltzgen(
        &["run", "small.toml", "-o", "out", "--threads", "2"],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("log Z") && out.contains("written to out"),
        "{out}"
    );
    let run = dir.path().join("out");
    for f in [
        "model.json",
        "model.safetensors",
        "train_report.json",
        "train_loss.csv",
        "samples.xyz",
        "samples.csv",
        "sampler.ckpt",
        "sample_report.json",
        "weights.csv",
        "profile.csv",
        "resampled.xyz",
        "reweight_report.json",
        "report.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // train_loss.csv: one row per step with the reverse-KL free energy (reverse KL only
    // here, so no data NLL and no ESS term), a gradient norm and the learning rate.
    let losses = std::fs::read_to_string(run.join("train_loss.csv")).unwrap();
    let mut lines = losses.lines();
    assert_eq!(
        lines.next(),
        Some("step,loss,validation_nll,forward_nll,free_energy,grad_norm,learning_rate,batch_ess")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 150);
    for row in &rows {
        assert_eq!(row.len(), 8, "{row:?}");
        assert!(row[3].is_empty(), "{row:?}");
        assert!(row[7].is_empty(), "{row:?}");
        for cell in [row[4], row[5], row[6]] {
            assert!(cell.parse::<f64>().unwrap().is_finite(), "{row:?}");
        }
    }
    // The trajectory is readable by chemfiles: 8 chains × 1600 / 2 frames of one 2-D particle.
    assert_eq!(count_frames(&run.join("samples.xyz")).unwrap(), 6400);
    let x = read_frames(
        &run.join("samples.xyz"),
        &ReadSpec {
            frames: FrameRange::default(),
            selection: None,
            n_particles: 1,
            spatial_dim: 2,
            length_per_angstrom: 1.0,
        },
    )
    .unwrap();
    assert!(x.iter().all(|v| v.is_finite() && v.abs() < 10.0));
    let rows = std::fs::read_to_string(run.join("samples.csv")).unwrap();
    assert_eq!(rows.lines().count(), 6401);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let num = |path: &str| -> f64 {
        report
            .pointer(path)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{path} missing or not a number in {report}"))
    };
    // log Ẑ of even a briefly trained flow lands near the exact value: within 5 of its own
    // standard errors plus the bias a few-percent ESS allows.
    let (log_z, se, exact) = (
        num("/reweight/log_z/value"),
        num("/reweight/log_z/std_error"),
        num("/reweight/exact_log_z"),
    );
    assert!(
        (log_z - exact).abs() < 5.0 * se + 0.05,
        "{log_z} ± {se} vs {exact}"
    );
    let ess = num("/reweight/ess_fraction");
    assert!(ess > 0.0 && ess <= 1.0);
    for k in 0..2 {
        let m = &report["sample"]["moves"][k]["production"];
        let (p, a) = (
            m["proposed"].as_f64().unwrap(),
            m["accepted"].as_f64().unwrap(),
        );
        assert!(p > 0.0 && a > 0.0 && a <= p, "{m}");
    }
    let u = num("/sample/energy/mean");
    assert!(u > -12.0 && u < -5.0, "⟨U⟩ = {u}");
    assert!(num("/sample/energy/split_rhat") < 1.1);
    assert!(num("/train/steps") == 150.0);
    // Both stages estimate each well's probability. (This brief run's flow proposes almost
    // nothing in the minor well, and the verdict says so: see tests/verdict.rs for the
    // verdict itself, and for a good run without warnings.)
    for stage in ["sample", "reweight"] {
        let states = report[stage]["states"].as_array().unwrap();
        assert_eq!(states.len(), 2, "{stage}: {states:?}");
    }
    assert!(report["warnings"].is_array(), "{report}");

    // Plots, as PNG and SVG — or, on a machine without any TrueType font, a note saying so.
    match report["plots"]["skipped"].as_str() {
        None => {
            for stem in [
                "train_loss",
                "energy_histogram",
                "free_energy_profile",
                "samples_2d",
            ] {
                let png = std::fs::read(run.join(format!("{stem}.png"))).unwrap();
                assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
                let svg = std::fs::read_to_string(run.join(format!("{stem}.svg"))).unwrap();
                assert!(svg.starts_with("<svg"), "{stem}.svg");
            }
        }
        Some(why) => assert!(why.contains("font"), "{why}"),
    }

    // The run directory is not overwritten without --force …
    let stamp = std::fs::metadata(run.join("model.json"))
        .unwrap()
        .modified()
        .unwrap();
    expect_failure(
        &["run", "small.toml", "-o", "out"],
        dir.path(),
        &["--force"],
    );
    assert_eq!(
        std::fs::metadata(run.join("model.json"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );

    // … nor are an earlier reweight's results, which --force replaces (and only them).
    let weights = std::fs::read(run.join("weights.csv")).unwrap();
    expect_failure(
        &["reweight", "small.toml", "-o", "out"],
        dir.path(),
        &["earlier `boltzgen reweight`", "weights.csv", "--force"],
    );
    assert_eq!(std::fs::read(run.join("weights.csv")).unwrap(), weights);
    let o = boltzgen(
        &["reweight", "small.toml", "-o", "out", "--force", "-q"],
        dir.path(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(run.join("model.json").is_file() && run.join("samples.xyz").is_file());

    // … and `inspect` reads what was written.
    for (file, words) in [
        ("out/model.json", "normalizing flow"),
        ("out/sampler.ckpt", "8 chains"),
        ("out/samples.xyz", "6400 frames"),
    ] {
        let o = boltzgen(&["inspect", file], dir.path());
        let (out, err) = text(&o);
        assert!(o.status.success() && out.contains(words), "{out}{err}");
    }
}

const LOCAL_SAMPLE: &str = r#"
seed = 5
[system]
potential = "dw4"
beta = 1.0
[sample]
chains = 4
burn_in = 50
steps = STEPS
thin = 5
sync_interval = 50
checkpoint_every = 2
start = [-2.0, -2.0, 2.0, -2.0, 2.0, 2.0, -2.0, 2.0]
[[sample.moves]]
kind = "particle_walk"
weight = 2.0
step = 0.3
spatial_dim = 2
target_acceptance = 0.4
[[sample.moves]]
kind = "mala"
weight = 1.0
step = 0.05
[analysis]
cv = { kind = "distance", particles = [0, 1] }
"#;

/// A run killed after writing frames past its last checkpoint, then resumed (and extended),
/// ends with exactly the files of an uninterrupted run.
#[test]
fn a_resumed_run_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "short.toml", &LOCAL_SAMPLE.replace("STEPS", "400"));
    write(d, "long.toml", &LOCAL_SAMPLE.replace("STEPS", "900"));
    let o = boltzgen(&["sample", "short.toml", "-o", "interrupted", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    // The crash: frames and rows written after the last checkpoint.
    let run = d.join("interrupted");
    let xyz = std::fs::read_to_string(run.join("samples.xyz")).unwrap();
    let one_frame: String = xyz.lines().take(6).map(|l| format!("{l}\n")).collect();
    std::fs::write(
        run.join("samples.xyz"),
        xyz.clone() + &one_frame + &one_frame,
    )
    .unwrap();
    let csv = std::fs::read_to_string(run.join("samples.csv")).unwrap();
    std::fs::write(run.join("samples.csv"), csv + "999,0,999,1.0,1.0\n").unwrap();

    let o = boltzgen(&["sample", "long.toml", "-o", "interrupted", "--resume"], d);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    // Notes go to stderr, results to stdout.
    assert!(
        err.contains("resuming") && !out.contains("resuming"),
        "{out}{err}"
    );
    let o = boltzgen(&["sample", "long.toml", "-o", "whole", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    for f in ["samples.csv", "samples.xyz"] {
        let a = std::fs::read(d.join("interrupted").join(f)).unwrap();
        let b = std::fs::read(d.join("whole").join(f)).unwrap();
        assert!(a == b, "{f} differs after resuming");
    }
    assert_eq!(
        count_frames(&d.join("whole/samples.xyz")).unwrap(),
        4 * 900 / 5
    );
}

/// The same with a learned model and balanced flow moves: what a resume must bring back
/// includes the flow move's buffered draws, the chains' cached log q and the balance plan
/// (its pilot is drawn again from the seed). Interrupted, resumed and extended, the run ends
/// with exactly the files of an uninterrupted one.
///
/// Planted once (2026-12-03): a resume that drops the flow move's saved buffer (cleared in
/// `Sampler::resume_with_streams`) made samples.csv differ, and this test failed.
#[test]
fn a_resumed_run_with_balanced_flow_moves_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A flow trained long enough to draw in both wells, so that there is something to balance.
    let training = SMALL_RUN
        .replace("steps = 150", "steps = 600")
        .replace("anneal_steps = 75", "anneal_steps = 300");
    write(d, "train.toml", &training);
    let o = boltzgen(&["train", "train.toml", "-o", "model", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    let sampling = SMALL_RUN
        .replace("[model]\n", "[model]\nfile = \"model/model.json\"\n")
        .replace(
            "buffer = 256",
            "buffer = 256\nbalance = { pilot = 2000, min_share = 0.3 }",
        )
        .replace("profile = {", &format!("{TWO_WELL_REGIONS}\nprofile = {{"));
    assert!(sampling.contains("file = \"model/model.json\"") && sampling.contains("balance ="));
    write(d, "short.toml", &sampling);
    write(
        d,
        "long.toml",
        &sampling.replace("steps = 400", "steps = 900"),
    );
    let o = boltzgen(&["sample", "short.toml", "-o", "interrupted", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    // The crash: a row written after the last checkpoint.
    let run = d.join("interrupted");
    let csv = std::fs::read_to_string(run.join("samples.csv")).unwrap();
    std::fs::write(run.join("samples.csv"), csv + "999,0,999,1.0,1.0\n").unwrap();

    let o = boltzgen(&["sample", "long.toml", "-o", "interrupted", "--resume"], d);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    // Notes go to stderr, results to stdout.
    assert!(
        err.contains("resuming") && !out.contains("resuming"),
        "{out}{err}"
    );
    let o = boltzgen(&["sample", "long.toml", "-o", "whole", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    for f in ["samples.csv", "samples.xyz"] {
        let a = std::fs::read(d.join("interrupted").join(f)).unwrap();
        let b = std::fs::read(d.join("whole").join(f)).unwrap();
        assert!(a == b, "{f} differs after resuming");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("whole/sample_report.json")).unwrap())
            .unwrap();
    assert!(
        report["balance"].is_object(),
        "the run was not balanced: {report}"
    );
    assert!(
        report["moves"][0]["production"]["accepted"]
            .as_u64()
            .unwrap()
            > 100,
        "too few flow moves accepted for the resume to have mattered: {report}"
    );
}

/// `[sample] balance`: the flow moves propose from the flow's draws thinned by region, with
/// the thinning in their Hastings term. The report gives the plan, and the chains' weight of
/// the right well (3.3 % of the mass, exact by quadrature) agrees with the exact one within
/// 4 standard errors (τ-based). Bad input names the key.
#[test]
fn balanced_flow_moves_keep_the_chains_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = SMALL_RUN
        .replace(
            "buffer = 256",
            "buffer = 256\nbalance = { pilot = 2000, min_share = 0.3 }",
        )
        .replace("steps = 400", "steps = 4000")
        // Trained long enough to put about 1 % of its draws in the right well (150 steps
        // leave it out, and then there is nothing to balance and the chains never cross).
        .replace("steps = 150", "steps = 600")
        .replace("anneal_steps = 75", "anneal_steps = 300")
        .replace("profile = {", &format!("{TWO_WELL_REGIONS}\nprofile = {{"));
    assert!(config.contains("steps = 4000") && config.contains("balance = { pilot = 2000"));
    assert!(config.contains("steps = 600") && config.contains("anneal_steps = 300"));
    write(d, "balanced.toml", &config);
    let out = boltzgen(&["run", "balanced.toml", "-o", "run", "--quiet"], d);
    assert!(out.status.success(), "{}", text(&out).1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/sample_report.json")).unwrap())
            .unwrap();
    let strata = report["balance"]["strata"].as_array().unwrap();
    let names: Vec<&str> = strata.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["left", "right", "rest"]);
    for s in strata {
        let a = s["acceptance"].as_f64().unwrap();
        assert!(a > 0.0 && a <= 1.0, "{s}");
    }
    // The pilot saw both wells, and the left one (97 % of the mass, most of the flow's
    // draws) is thinned so that the right one gets its 30 % of the proposals.
    assert!(strata[1]["pilot_draws"].as_u64().unwrap() > 0, "{strata:?}");
    assert!(
        strata[0]["acceptance"].as_f64().unwrap() < 0.5,
        "{strata:?}"
    );
    let right = &report["regions"][1];
    assert_eq!(right["name"], "right");
    let (p, se) = (
        right["probability"]["mean"].as_f64().unwrap(),
        right["probability"]["std_error"].as_f64().unwrap(),
    );
    let exact = DoubleWell2D::default()
        .x_probability(0.0, 10.0, 1.0)
        .unwrap();
    assert!(
        (p - exact).abs() < 4.0 * se && se < 0.01,
        "P(right) = {p} ± {se} from the chains, exact {exact}"
    );

    // No flow move to balance; and regions missing.
    let local_only = config.replace("kind = \"flow\"", "kind = \"random_walk\"\nstep = 0.5");
    write(d, "local.toml", &local_only);
    expect_failure(
        &["run", "local.toml", "-o", "local"],
        d,
        &["sample.balance", "flow"],
    );
    let no_regions = SMALL_RUN.replace("buffer = 256", "buffer = 256\nbalance = { pilot = 2000 }");
    write(d, "no_regions.toml", &no_regions);
    expect_failure(
        &["run", "no_regions.toml", "-o", "none"],
        d,
        &["sample.balance", "regions"],
    );
    assert!(!d.join("none").exists() && !d.join("local/sample_report.json").exists());
}

/// A trained model fine-tuned by the ESS term alone, the way a user would: `[model] file` names
/// the first run's model and a new `[train]` asks for `ess_weight` only. Every step reports
/// its batch ESS, the model records the config it was trained with, and a negative weight is
/// refused by name before anything is written.
#[test]
fn a_trained_model_is_fine_tuned_by_the_ess_term() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "small.toml", SMALL_RUN);
    let o = boltzgen(&["train", "small.toml", "-o", "first", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    let train_block = SMALL_RUN
        .split("[train]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap();
    let tuning = SMALL_RUN
        .replace(
            "hidden = [16]",
            "hidden = [16]\nfile = \"first/model.json\"",
        )
        .replace(
            train_block,
            "\nmethod = \"gradient\"\nsteps = 60\nbatch_size = 128\nlearning_rate = 1e-3\nforward_weight = 0.0\ness_weight = 1.0\n",
        );
    write(d, "tune.toml", &tuning);
    let o = boltzgen(&["train", "tune.toml", "-o", "tuned", "-q"], d);
    assert!(o.status.success(), "{:?}", text(&o));
    let losses = std::fs::read_to_string(d.join("tuned/train_loss.csv")).unwrap();
    let mut lines = losses.lines();
    assert!(lines.next().unwrap().ends_with(",batch_ess"));
    let mut rows = 0;
    for line in lines {
        let row: Vec<&str> = line.split(',').collect();
        assert!(row[4].is_empty(), "no reverse KL: {line}");
        let ess: f64 = row[7].parse().unwrap();
        assert!(ess > 0.0 && ess <= 1.0, "{line}");
        rows += 1;
    }
    assert_eq!(rows, 60);
    let model = std::fs::read_to_string(d.join("tuned/model.json")).unwrap();
    assert!(model.contains("\"ess_weight\": 1.0"), "{model}");

    write(
        d,
        "bad.toml",
        &tuning.replace("ess_weight = 1.0", "ess_weight = -1.0"),
    );
    expect_failure(&["train", "bad.toml", "-o", "bad"], d, &["ess_weight"]);
    assert!(!d.join("bad/model.json").exists());
}

/// `[data] oversample` trains on the frames it selects `factor` times in all: the report
/// counts them, and `relax` cools the copies as well as the frames as read.
#[test]
fn oversampling_adds_copies_of_the_selected_frames() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let frame = |i: usize| format!("1\nframe {i}\nX {} 0.5 0\n", -1.5 + 0.01 * i as f64);
    write(d, "ten.xyz", &(0..10).map(frame).collect::<String>());
    // x = −1.45 … −1.41: the last five frames.
    let data = "[data]\ntrajectory = \"ten.xyz\"\n\
        oversample = { cv = { kind = \"coordinate\", index = 0 }, range = [-1.455, 0.0], factor = 3 }\n\
        relax = { steps = 20, step = 0.1 }\n\n[model]";
    let config = SMALL_RUN
        .replace("[model]", data)
        .replace("forward_weight = 0.0", "forward_weight = 1.0");
    write(d, "over.toml", &config);
    let out = boltzgen(&["train", "over.toml", "-o", "over", "--quiet"], d);
    assert!(out.status.success(), "{}", text(&out).1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("over/train_report.json")).unwrap())
            .unwrap();
    let summary = &report["summary"];
    assert_eq!(
        summary["oversampling"],
        serde_json::json!({ "selected": 5, "added": 10 }),
        "{summary}"
    );
    assert_eq!(summary["relaxation"]["frames"], 20, "{summary}");
}

/// `[reweight] balance` through the CLI: the draws are split between the regions as planned,
/// every weight carries its region's acceptance, and log Ẑ stays on the exact value.
#[test]
fn balanced_reweighting_splits_the_draws_between_regions_and_keeps_log_z_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = SMALL_RUN
        .replace(
            "resample = 100",
            "resample = 100\nbalance = { pilot = 2000, min_share = 0.3 }",
        )
        .replace("profile = {", &format!("{TWO_WELL_REGIONS}\nprofile = {{"));
    write(d, "balanced.toml", &config);
    let out = boltzgen(&["run", "balanced.toml", "-o", "run", "--quiet"], d);
    assert!(out.status.success(), "{}", text(&out).1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/reweight_report.json")).unwrap())
            .unwrap();
    let balance = &report["balance"];
    let draws = report["draws"].as_u64().unwrap();
    let generator_draws = balance["generator_draws"].as_u64().unwrap();
    assert!(draws > 0 && generator_draws >= draws, "{balance}");
    let strata = balance["strata"].as_array().unwrap();
    assert_eq!(
        strata
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["left", "right", "rest"]
    );
    let kept: u64 = strata.iter().map(|s| s["draws"].as_u64().unwrap()).sum();
    assert_eq!(kept, draws, "{balance}");
    // Every stratum the pilot saw (the left well at least: 96.7 % of the mass) is aimed at
    // 30 % of the draws or more; one it did not see (a briefly trained flow may miss the right
    // well) is never thinned.
    assert!(strata[0]["pilot_draws"].as_u64().unwrap() > 0, "{balance}");
    for s in strata {
        let (seen, share, a) = (
            s["pilot_draws"].as_u64().unwrap() > 0,
            s["target_share"].as_f64().unwrap(),
            s["acceptance"].as_f64().unwrap(),
        );
        assert!(a > 0.0 && a <= 1.0, "{s}");
        assert!(if seen { share >= 0.3 - 1e-12 } else { a == 1.0 }, "{s}");
    }
    // weights.csv: log_w = −βU − log q − ln a (β = 1), and ln a is one of the acceptances.
    let acceptances: Vec<f64> = strata
        .iter()
        .map(|s| s["acceptance"].as_f64().unwrap().ln())
        .collect();
    let weights = std::fs::read_to_string(d.join("run/weights.csv")).unwrap();
    let mut lines = weights.lines();
    assert_eq!(
        lines.next(),
        Some("draw,energy,log_q,log_w,cv,scatter_x,scatter_y,log_a")
    );
    let mut rows = 0;
    for line in lines {
        let v: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let (u, log_q, log_w, log_a) = (v[1], v[2], v[3], v[7]);
        assert!((log_w - (-u - log_q - log_a)).abs() < 1e-9, "{line}");
        assert!(
            acceptances.iter().any(|a| (a - log_a).abs() < 1e-12),
            "{line}"
        );
        rows += 1;
    }
    assert_eq!(rows, draws);
    // log Ẑ of the Horvitz–Thompson estimator: within 5 standard errors plus the bias a
    // briefly trained flow allows, as for plain draws.
    let (log_z, se, exact) = (
        report["log_z"]["value"].as_f64().unwrap(),
        report["log_z"]["std_error"].as_f64().unwrap(),
        report["exact_log_z"].as_f64().unwrap(),
    );
    assert!(
        (log_z - exact).abs() < 5.0 * se + 0.05,
        "{log_z} ± {se} vs {exact}"
    );
}

#[test]
fn bad_input_gives_clear_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs = d.join("runs");

    write(d, "broken.toml", "[system\npotential = 'double_well'\n");
    expect_failure(&["run", "broken.toml"], d, &["broken.toml", "line 1"]);

    write(
        d,
        "typo.toml",
        &SMALL_RUN.replace("kind = \"flow\"", "kind = \"flw\""),
    );
    expect_failure(
        &["run", "typo.toml"],
        d,
        &[
            "typo.toml",
            "sample.moves[0].kind",
            "flw",
            "random_walk",
            "line",
        ],
    );
    write(
        d,
        "unknown.toml",
        &SMALL_RUN.replace("seed = 1", "seed = 1\nsteps = 3"),
    );
    expect_failure(&["run", "unknown.toml"], d, &["unknown.toml", "steps"]);
    expect_failure(&["run", "missing.toml"], d, &["missing.toml"]);

    // Training data: missing, truncated, wrong atom count.
    let data_config = |traj: &str| {
        SMALL_RUN.replace(
            "[model]",
            &format!("[data]\ntrajectory = \"{traj}\"\n\n[model]"),
        )
    };
    write(d, "no_data.toml", &data_config("nowhere.xyz"));
    expect_failure(
        &["train", "no_data.toml"],
        d,
        &["nowhere.xyz", "no such file"],
    );
    let frame = |i: usize| format!("1\nframe {i}\nX {} 0.5 0\n", -1.5 + 0.01 * i as f64);
    let good: String = (0..10).map(frame).collect();
    write(d, "cut.xyz", &good[..good.len() - 8]);
    write(d, "cut.toml", &data_config("cut.xyz"));
    expect_failure(&["train", "cut.toml"], d, &["cut.xyz", "frame 9"]);
    // `[data] keep` that keeps no frame names the key, the file and the range.
    write(d, "good.xyz", &good);
    write(
        d,
        "keep_none.toml",
        &data_config("good.xyz").replace(
            "[model]",
            "keep = { cv = { kind = \"coordinate\", index = 0 }, range = [100.0, 200.0] }\n\n[model]",
        ),
    );
    expect_failure(
        &["train", "keep_none.toml"],
        d,
        &["data.keep", "good.xyz", "x[0] in [100, 200]"],
    );
    // So does `[data] oversample` that selects no frame.
    write(
        d,
        "oversample_none.toml",
        &data_config("good.xyz").replace(
            "[model]",
            "oversample = { cv = { kind = \"coordinate\", index = 0 }, range = [100.0, 200.0], factor = 2 }\n\n[model]",
        ),
    );
    expect_failure(
        &["train", "oversample_none.toml"],
        d,
        &["data.oversample", "good.xyz", "x[0] in [100, 200]"],
    );
    // `[reweight] balance` splits the draws between regions: without regions it is refused,
    // and so is a floor share that the regions cannot all have.
    write(
        d,
        "balance.toml",
        &SMALL_RUN.replace(
            "resample = 100",
            "resample = 100\nbalance = { pilot = 1000 }",
        ),
    );
    expect_failure(
        &["run", "balance.toml"],
        d,
        &["balance.toml", "reweight.balance", "analysis.regions"],
    );
    write(
        d,
        "balance_share.toml",
        &SMALL_RUN
            .replace("resample = 100", "resample = 100\nbalance = { min_share = 0.6 }")
            .replace(
                "profile = {",
                "scatter = [{ kind = \"coordinate\", index = 0 }, { kind = \"coordinate\", index = 1 }]\nregions = [{ name = \"left\", x = [-10.0, 0.0] }]\nprofile = {",
            ),
    );
    expect_failure(
        &["run", "balance_share.toml"],
        d,
        &[
            "balance_share.toml",
            "reweight.balance.min_share",
            "[0, 1/2]",
        ],
    );
    write(d, "three.xyz", "3\n\nX 0 0 0\nX 1 0 0\nX 2 0 0\n");
    write(d, "three.toml", &data_config("three.xyz"));
    expect_failure(
        &["train", "three.toml"],
        d,
        &["three.xyz", "frame 0", "3 atoms"],
    );
    write(d, "nan.xyz", "1\n\nX nan 0 0\n");
    write(d, "nan.toml", &data_config("nan.xyz"));
    // chemfiles itself refuses `nan` in XYZ; binary formats reach boltzgen's own check (see
    // the unit tests of io::trajectory).
    expect_failure(&["train", "nan.toml"], d, &["nan.xyz", "frame 0", "nan"]);

    // A model made for another system.
    {
        let _torch = boltzgen::generator::torch_lock();
        let flow = boltzgen::generator::Flow::new(
            boltzgen::generator::FlowConfig::real_nvp(4, 2, &[8]),
            boltzgen::generator::DeviceChoice::Cpu,
        )
        .unwrap();
        boltzgen::generator::store::save_flow(
            &flow,
            &d.join("other.json"),
            boltzgen::generator::store::ModelMetadata {
                system: Some(boltzgen::generator::store::SystemTag {
                    potential: "many_well".into(),
                    dim: 4,
                    beta: Some(1.0),
                }),
                ..Default::default()
            },
        )
        .unwrap();
    }
    write(
        d,
        "foreign.toml",
        &SMALL_RUN.replace("layers = 2", "layers = 2\nfile = \"other.json\""),
    );
    expect_failure(&["run", "foreign.toml"], d, &["other.json", "many_well"]);

    assert!(!runs.exists(), "an error left a run directory behind");
}

/// A run too short to record a frame (fewer production steps than `thin`) finishes with an
/// empty trajectory and reports no frames, in every trajectory format. Before the fix, the
/// region estimates read the empty DCD back and chemfiles refused it ("mmap failed"), found
/// when the oracle shrank `examples/ala2_exchange.toml`.
#[test]
fn a_run_that_records_no_frame_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for format in ["xyz", "dcd"] {
        let config = format!(
            r#"
[system]
potential = "double_well"
beta = 1.0
[sample]
chains = 2
burn_in = 10
steps = 10
thin = 20
start = [1.7, 0.0]
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
[analysis]
scatter = [{{ kind = "coordinate", index = 0 }}, {{ kind = "coordinate", index = 1 }}]
regions = [{{ name = "left", x = [-10.0, 0.0] }}]
[output]
trajectory_format = "{format}"
"#
        );
        write(d, &format!("{format}.toml"), &config);
        let o = boltzgen(
            &["sample", &format!("{format}.toml"), "-o", format, "-q"],
            d,
        );
        assert!(o.status.success(), "{format}: {:?}", text(&o));
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join(format).join("sample_report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["frames"], 0, "{format}");
    }
}

/// A short local-moves run for the tests of what goes where.
const LOCAL_RUN: &str = r#"
[system]
potential = "double_well"
beta = 1.0

[sample]
chains = 2
burn_in = 100
steps = 200
start = [-1.7, 0.0]
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
"#;

#[test]
fn results_go_to_stdout_and_progress_and_notes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "local.toml", LOCAL_RUN);
    let o = boltzgen(&["sample", "local.toml", "-o", "plain"], d);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("sample    400 frames") && out.contains("written to plain:"),
        "{out}"
    );
    assert!(!out.contains("sampling:"), "progress on stdout: {out}");
    assert!(
        err.contains("sampling: 300 steps"),
        "no progress on stderr: {err}"
    );
    assert!(!err.contains("debug:"), "{err}");

    // -q: nothing on stderr but the verdict's warnings (this short run gets some); the
    // results still on stdout.
    let o = boltzgen(&["sample", "local.toml", "-o", "quiet", "-q"], d);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.lines().all(|l| l.starts_with("WARNING [")), "{err}");
    assert!(out.contains("written to quiet:"), "{out}");

    // -v: the debug log too, on stderr.
    let o = boltzgen(&["sample", "local.toml", "-o", "verbose", "-v"], d);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("debug: sample: config local.toml, system `double_well`"),
        "{err}"
    );
    assert!(!out.contains("debug:"), "{out}");
    expect_failure(
        &["sample", "local.toml", "-q", "-v"],
        d,
        &["--quiet", "--verbose"],
    );
}

#[test]
fn inspect_names_atoms_and_elements_and_gives_time_step_and_box() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/ala2");
    let dir = tempfile::tempdir().unwrap();
    let show = |file: &str| {
        let o = boltzgen(&["inspect", data.join(file).to_str().unwrap()], dir.path());
        let (out, err) = text(&o);
        assert!(o.status.success() && err.is_empty(), "{out}{err}");
        // Nothing prints an empty field.
        for line in out.lines() {
            assert!(
                !line.trim_end().ends_with(':'),
                "empty field: {line:?} in\n{out}"
            );
        }
        out
    };
    let pdb = show("ala2.pdb");
    for words in [
        "1 frame\n",
        "atoms: 22",
        "names: H1 CH3 H2 H3 C O N H CA HA CB",
        "elements: H ×12, C ×6, O ×2, N ×2",
        "residues: 3 (ACE ALA NME)",
        "bonds: 21",
        "box: none (no unit cell in the file)",
    ] {
        assert!(pdb.contains(words), "`{words}` not in\n{pdb}");
    }
    // The DCD stores the time in AKMA units: 0.5 ps between frames, as the data's README says.
    let dcd = show("md_300K.dcd");
    for words in [
        "20000 frames",
        "time: 0.5000 → 10000.0000 ps, 0.5000 ps between frames",
        "names: none in the file",
        "steps: not recorded in the file",
    ] {
        assert!(dcd.contains(words), "`{words}` not in\n{dcd}");
    }
}

#[test]
fn chemfiles_warnings_reach_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let pdb = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/ala2/ala2.pdb"),
    )
    .unwrap();
    let mut lines: Vec<&str> = pdb.lines().collect();
    lines.insert(3, "ZZZZZZ an unknown record");
    lines.insert(5, "ZZZZZZ an unknown record");
    write(dir.path(), "odd.pdb", &(lines.join("\n") + "\n"));
    let o = boltzgen(&["inspect", "odd.pdb"], dir.path());
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.contains("atoms: 22"),
        "{out}{err}"
    );
    let warning =
        "warning: [chemfiles] PDB reader: ignoring unknown record: ZZZZZZ an unknown record";
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    // -q keeps warnings.
    let o = boltzgen(&["inspect", "odd.pdb", "-q"], dir.path());
    assert!(text(&o).1.contains(warning));
}

/// A run long enough to be interrupted once its first samples are on disk.
const LONG_LOCAL_RUN: &str = r#"
seed = 5
[system]
potential = "double_well"
beta = 1.0

[sample]
chains = 4
burn_in = 100
steps = 100000
thin = 10
checkpoint_every = 1
start = [-1.7, 0.0]
[[sample.moves]]
kind = "random_walk"
weight = 1.0
step = 0.5
"#;

#[test]
fn ctrl_c_stops_sampling_at_a_checkpoint_and_resume_finishes_it_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "long.toml", LONG_LOCAL_RUN);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_boltzgen"))
        .args(["sample", "long.toml", "-o", "stopped", "--threads", "2"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The signal comes once samples are on disk (not after a fixed time).
    let csv = d.join("stopped/samples.csv");
    while std::fs::read(&csv).map_or(true, |b| b.iter().filter(|&&c| c == b'\n').count() < 2) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it wrote samples");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}{err}");
    assert!(
        err.contains("interrupted during sampling") && err.contains("Ctrl-C again quits"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let partial = std::fs::read(&csv).unwrap();
    let o = boltzgen(
        &["sample", "long.toml", "-o", "stopped", "--resume", "-q"],
        d,
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let o = boltzgen(&["sample", "long.toml", "-o", "whole", "-q"], d);
    assert!(o.status.success(), "{}", text(&o).1);
    let whole = std::fs::read(d.join("whole/samples.csv")).unwrap();
    assert!(partial.len() < whole.len(), "the run was not interrupted");
    assert_eq!(std::fs::read(&csv).unwrap(), whole);
    assert_eq!(
        std::fs::read(d.join("stopped/samples.xyz")).unwrap(),
        std::fs::read(d.join("whole/samples.xyz")).unwrap()
    );
}
