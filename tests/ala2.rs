//! Alanine dipeptide from the CLI: `[system] potential = "openmm"` reads the OpenMM System,
//! `examples/ala2_local.toml` samples it at 300 K with local moves from MD frames, the
//! dihedral collective variable tracks φ, and the scatter plots show the (φ, ψ) plane.
//!
//! The mean energy of the sampled chains is compared with that of the 300 K MD run (OpenMM's
//! reference energies of 100 frames): the same Boltzmann distribution, so the two agree within
//! 4 combined standard errors (the MD frames are 5 ps apart; their error bar treats them as
//! independent, which the agreement below does not depend on being tight).

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn boltzgen(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_boltzgen"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn local_mcmc_on_alanine_dipeptide_matches_the_md_energy() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(ROOT).join("examples/ala2_local.toml");
    let out = boltzgen(
        &["run", config.to_str().unwrap(), "-o", "run", "--quiet"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/sample_report.json")).unwrap(),
    )
    .unwrap();
    let mean = report["energy"]["mean"].as_f64().unwrap();
    let se = report["energy"]["std_error"].as_f64().unwrap();
    let md: Vec<f64> = std::fs::read_to_string(
        Path::new(ROOT).join("examples/data/ala2/reference_energies_public.csv"),
    )
    .unwrap()
    .lines()
    .skip(1)
    .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
    .collect();
    let md_mean = md.iter().sum::<f64>() / md.len() as f64;
    let md_var = md.iter().map(|u| (u - md_mean).powi(2)).sum::<f64>() / (md.len() - 1) as f64;
    let md_se = (md_var / md.len() as f64).sqrt();
    let z = (mean - md_mean) / (se * se + md_se * md_se).sqrt();
    assert!(
        z.abs() < 4.0,
        "MCMC <U> = {mean} ± {se} vs MD {md_mean} ± {md_se} kJ/mol (z = {z:.2})"
    );
    // φ stays in the β/C7eq and αR basins: no chain reaches αL with local moves.
    let cv_mean = report["cv"]["mean"].as_f64().unwrap();
    assert!((-180.0..0.0).contains(&cv_mean), "mean φ {cv_mean}");
    assert!(dir.path().join("run/samples.dcd").is_file());
    // Ramachandran scatters (φ, ψ) of the samples and the MD frames, unless no font exists.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    if summary["plots"]["skipped"].is_null() {
        for f in [
            "samples_2d.png",
            "data_2d.png",
            "samples_2d.svg",
            "data_2d.svg",
        ] {
            assert!(dir.path().join("run").join(f).is_file(), "{f} missing");
        }
        let svg = std::fs::read_to_string(dir.path().join("run/data_2d.svg")).unwrap();
        assert!(svg.contains("dihedral 6-8-14-16"), "ψ axis label missing");
    }
}

#[test]
fn openmm_systems_refuse_wrong_units_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let xml = Path::new(ROOT).join("examples/data/ala2/system.xml");
    let base = format!(
        "[system]\npotential = \"openmm\"\nparameters = {{ xml = \"{}\" }}\ntemperature = 300.0\n",
        xml.display()
    );
    let cases = [
        (
            format!("{base}energy_unit = \"kcal_per_mol\"\n"),
            "system.energy_unit",
        ),
        (
            format!("{base}length_unit = \"angstrom\"\n"),
            "system.length_unit",
        ),
        (
            base.replace(xml.to_str().unwrap(), "nowhere/system.xml"),
            "nowhere/system.xml",
        ),
        (
            format!(
                "{base}[analysis]\ncv = {{ kind = \"dihedral\", particles = [4, 6, 8, 40] }}\n"
            ),
            "analysis.cv",
        ),
    ];
    for (i, (text, mention)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        std::fs::write(dir.path().join(&name), text).unwrap();
        let out = boltzgen(&["run", &name, "-o", "out"], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(mention) && err.contains(&name), "{err}");
    }
}

/// A short internal-coordinate run through the CLI, as `examples/ala2.toml` does it at full
/// length: a spline flow over Z-matrix coordinates trained on frames of both trajectories
/// (maximum likelihood, then with the energy), flow moves mixed with one-atom moves at 300 K,
/// direct draws reweighted, region probabilities and free-energy surfaces reported. It also
/// takes one frame range per file, trains on the 1 000 K frames in αL/C7ax eight times over
/// (`[data] oversample`), relaxes the 1 000 K frames first (`[data] relax`) and splits the
/// direct draws between the Ramachandran regions (`[reweight] balance`).
/// Frames of `md_1000K.dcd` (every 20th of the first 20 000) with 0 < φ < 120°.
const ALPHA_L_FRAMES: usize = 73;

/// An alanine-dipeptide example config cut down to a test's budget, its data paths absolute.
fn shortened(example: &str) -> String {
    let example = std::fs::read_to_string(Path::new(ROOT).join("examples").join(example)).unwrap();
    let data = Path::new(ROOT).join("examples/data");
    example
        .replace("\"data/", &format!("\"{}/", data.display()))
        // One range per file (the same here); the 1 000 K frames are relaxed at 300 K.
        .replace(
            "frames = \"0:20000\"",
            "frames = [\"0:20000:20\", \"0:20000:20\"]",
        )
        .replace("relax = { steps = 500,", "relax = { steps = 300,")
        .replace("steps = 6000", "steps = 120")
        .replace("reverse_from_step = 1500", "reverse_from_step = 80")
        .replace("layers = 9", "layers = 3")
        .replace("hidden = [128, 128]", "hidden = [32]")
        .replace("burn_in = 500", "burn_in = 100")
        .replace("steps = 5000", "steps = 400")
        .replace("draws = 100000", "draws = 4000")
        .replace("pilot = 20000", "pilot = 2000")
}

#[test]
fn an_internal_coordinate_flow_trains_samples_and_reweights_alanine_dipeptide() {
    let dir = tempfile::tempdir().unwrap();
    let config = shortened("ala2.toml");
    assert!(config.contains("coordinates = \"internal\""));
    assert!(config.contains("relax = { steps = 300") && config.contains("\"0:20000:20\", \""));
    assert!(config.contains("balance = { pilot = 2000,"));
    assert!(
        config.contains("[train]\nmethod = \"gradient\"\nsteps = 120 "),
        "the short schedule"
    );
    std::fs::write(dir.path().join("ala2.toml"), &config).unwrap();
    let out = boltzgen(&["run", "ala2.toml", "-o", "run", "--quiet"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run").join(name)).unwrap())
            .unwrap()
    };
    // Of the 1 000 frames read from the 1 000 K run (every 20th), those with 0 < φ < 120°
    // were trained on eight times; all 1 000 K frames and copies were cooled before training,
    // the 300 K frames were left as read.
    let summary = &read("train_report.json")["summary"];
    assert_eq!(
        summary["oversampling"],
        serde_json::json!({ "selected": ALPHA_L_FRAMES, "added": 7 * ALPHA_L_FRAMES }),
        "{summary}"
    );
    let relaxation = &summary["relaxation"];
    assert_eq!(
        relaxation["frames"],
        1000 + 7 * ALPHA_L_FRAMES,
        "{relaxation}"
    );
    let before = relaxation["mean_energy_before"].as_f64().unwrap();
    let after = relaxation["mean_energy_after"].as_f64().unwrap();
    assert!(
        before > 100.0 && after < before - 50.0,
        "1000 K frames average U ≈ 130 kJ/mol and cool by far more than 50: {relaxation}"
    );
    let model = read("model.json");
    let internal = &model["payload"]["model"]["internal"];
    assert_eq!(internal["n_atoms"], 22, "{model}");
    assert_eq!(internal["root"], serde_json::json!([6, 8, 14]));
    let sample = read("sample_report.json");
    // The flow moves proposed from the flow's draws thinned by region ([sample] balance).
    let proposal_strata = sample["balance"]["strata"].as_array().unwrap();
    assert_eq!(proposal_strata.len(), 4, "{sample}");
    let flow_moves = &sample["moves"][0];
    assert_eq!(flow_moves["name"], "flow");
    assert!(flow_moves["production"]["proposed"].as_u64().unwrap() > 1000);
    let regions = sample["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 3);
    assert_eq!(regions[0]["name"], "C7eq_beta");
    let total: f64 = regions
        .iter()
        .map(|r| r["probability"]["mean"].as_f64().unwrap())
        .sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "the regions partition the plane: {total}"
    );
    // The direct draws were thinned region by region: about 4 000 kept, from more generator
    // draws, each region's kept draws counted in the plan.
    let reweight = read("reweight_report.json");
    let draws = reweight["draws"].as_u64().unwrap();
    let balance = &reweight["balance"];
    assert!(
        balance["generator_draws"].as_u64().unwrap() >= draws && draws > 3000,
        "{balance}"
    );
    let strata = balance["strata"].as_array().unwrap();
    assert_eq!(strata.len(), 4, "three regions and the rest: {balance}");
    let kept: u64 = strata.iter().map(|s| s["draws"].as_u64().unwrap()).sum();
    assert_eq!(kept, draws, "{balance}");
    let p: f64 = reweight["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["probability"]["value"].as_f64().unwrap_or(0.0))
        .sum();
    assert!(
        (p - 1.0).abs() < 1e-9,
        "reweighted region probabilities sum to {p}"
    );
    // Every draw lies in exactly one region, and no region has more effective draws than
    // draws (the Kish number of its weights: at least 1 unless all its weights are 0).
    let regions = reweight["regions"].as_array().unwrap();
    let in_regions: u64 = regions.iter().map(|r| r["draws"].as_u64().unwrap()).sum();
    assert_eq!(in_regions, draws, "{regions:?}");
    for r in regions {
        let (n, eff) = (
            r["draws"].as_f64().unwrap(),
            r["effective_draws"].as_f64().unwrap(),
        );
        assert!(eff <= n + 1e-9 && (eff == 0.0 || eff >= 1.0 - 1e-9), "{r}");
    }
    let weights = std::fs::read_to_string(dir.path().join("run/weights.csv")).unwrap();
    assert!(weights.starts_with("draw,energy,log_q,log_w,cv,scatter_x,scatter_y,log_a\n"));
    if read("report.json")["plots"]["skipped"].is_null() {
        for f in ["fes_data", "fes_samples", "fes_generator", "fes_reweighted"] {
            assert!(
                dir.path().join("run").join(format!("{f}.png")).is_file(),
                "{f} missing"
            );
        }
    }

    // The second stage, `examples/ala2_finetune.toml`, fine-tunes that model with the ESS
    // term and samples again: every step reports its batch ESS, and the tuned model differs.
    let tuning = shortened("ala2_finetune.toml")
        .replace("\"../runs/ala2/model.json\"", "\"run/model.json\"")
        .replace("steps = 1000", "steps = 30")
        .replace("warmup_steps = 100", "warmup_steps = 5");
    assert!(tuning.contains("file = \"run/model.json\"") && tuning.contains("ess_weight = 1.0"));
    std::fs::write(dir.path().join("tune.toml"), &tuning).unwrap();
    let out = boltzgen(&["run", "tune.toml", "-o", "tuned", "--quiet"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let losses = std::fs::read_to_string(dir.path().join("tuned/train_loss.csv")).unwrap();
    let batch_ess: Vec<f64> = losses
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(batch_ess.len(), 30);
    assert!(
        batch_ess.iter().all(|e| *e > 0.0 && *e <= 1.0),
        "{batch_ess:?}"
    );
    let first = std::fs::read(dir.path().join("run/model.safetensors")).unwrap();
    let tuned = std::fs::read(dir.path().join("tuned/model.safetensors")).unwrap();
    assert!(first != tuned, "fine-tuning left the weights as they were");
    assert!(dir.path().join("tuned/reweight_report.json").is_file());
}

/// The second stage's config is the first stage's but for `[model] file` and `[train]`: the same
/// system, frames, sampling and analysis, so that the two stages' results compare.
#[test]
fn the_fine_tuning_example_matches_the_first_stage_but_for_its_training() {
    let read = |name: &str| -> toml::Table {
        std::fs::read_to_string(Path::new(ROOT).join("examples").join(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (mut first, mut second) = (read("ala2.toml"), read("ala2_finetune.toml"));
    let file = second["model"]
        .as_table_mut()
        .unwrap()
        .remove("file")
        .unwrap();
    assert_eq!(file.as_str(), Some("../runs/ala2/model.json"));
    assert!(second["train"]["ess_weight"].as_float().unwrap() > 0.0);
    first.remove("train");
    second.remove("train");
    assert_eq!(first, second);
}

#[test]
fn internal_coordinates_and_regions_refuse_what_they_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let xml = Path::new(ROOT).join("examples/data/ala2/system.xml");
    let md = Path::new(ROOT).join("examples/data/ala2/md_300K.dcd");
    let molecule = format!(
        "[system]\npotential = \"openmm\"\nparameters = {{ xml = \"{}\" }}\ntemperature = 300.0\n",
        xml.display()
    );
    let data = format!(
        "[data]\ntrajectory = \"{}\"\nframes = \"0:100\"\n",
        md.display()
    );
    let internal = "[model]\nkind = \"neural_spline\"\ncoordinates = \"internal\"\n";
    let cases = [
        (
            format!("{molecule}{data}{}", internal.replace("neural_spline", "real_nvp")),
            "model.coordinates",
        ),
        (
            format!("[system]\npotential = \"double_well\"\nbeta = 1.0\n[data]\nexact_samples = 100\n{internal}"),
            "model.coordinates",
        ),
        (format!("{molecule}{internal}"), "data"),
        (
            format!("{molecule}{data}{internal}mean_free = true\n"),
            "model.mean_free",
        ),
        (
            format!("{molecule}[analysis]\nregions = [{{ name = \"a\", x = [0.0, 1.0] }}]\n"),
            "analysis.regions",
        ),
        (
            format!(
                "{molecule}[data]\ntrajectory = [\"{}\", \"missing_1000K.dcd\"]\n",
                md.display()
            ),
            "missing_1000K.dcd",
        ),
        (
            format!("{molecule}{data}relax = {{ steps = 10, step = 0.005, files = [\"hot.dcd\"] }}\n"),
            "data.relax.files[0]",
        ),
        (
            format!("{molecule}{data}relax = {{ steps = 0, step = 0.005 }}\n"),
            "data.relax.steps",
        ),
        (
            format!(
                "{molecule}[data]\ntrajectory = \"{}\"\nframes = [\"0:10\", \"0:20\"]\n",
                md.display()
            ),
            "data.frames",
        ),
    ];
    for (i, (text, mention)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        std::fs::write(dir.path().join(&name), text).unwrap();
        let out = boltzgen(&["run", &name, "-o", "out"], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(mention), "case {i}: {err}");
        assert!(
            !dir.path().join("out").exists(),
            "case {i} wrote a run directory"
        );
    }
}
