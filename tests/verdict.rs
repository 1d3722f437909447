//! The convergence verdict as a user meets it: a run whose flow has collapsed onto one mode
//! says so in `WARNING` lines and in the reports' `warnings`, even where the importance ESS
//! looks excellent; a good run (the built-in example) says nothing of the kind.

use std::path::Path;

mod common;
use common::{run_and_report, write_right_well};

/// The built-in double well, with a flow fitted by maximum likelihood to frames of its minor
/// (right) well alone: a flow that has collapsed onto one mode, planted. The exact weight of
/// the right well is 3.3 %; this flow proposes nothing else.
const COLLAPSED: &str = r#"
seed = 3
[system]
potential = "double_well"
beta = 1.0
[data]
trajectory = "right_well.xyz"
[model]
kind = "neural_spline"
layers = 2
hidden = [16]
[train]
method = "gradient"
steps = 200
batch_size = 128
learning_rate = 3e-3
forward_weight = 1.0
reverse_weight = 0.0
[sample]
chains = 8
burn_in = 100
steps = 400
buffer = 256
START
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
[analysis]
cv = { kind = "coordinate", index = 0 }
states = [{ name = "left", lower = -10.0, upper = -1.0 }, { name = "right", lower = 1.0, upper = 10.0 }]
"#;

/// Runs the collapsed config with `start` and returns (report.json, stdout, stderr).
fn run_collapsed(dir: &Path, name: &str, start: &str) -> (serde_json::Value, String, String) {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        COLLAPSED.replace("START", start),
    )
    .unwrap();
    let config = format!("{name}.toml");
    run_and_report(dir, &[&config, "-o", name, "--threads", "2"], name)
}

fn checks(report: &serde_json::Value) -> Vec<(String, String)> {
    report["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no `warnings` list in {report}"))
        .iter()
        .map(|w| {
            (
                w["check"].as_str().unwrap().to_string(),
                w["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Planted bugs, each caught here (2026-12-03): `check_transitions` returning no warning
/// fails at "no no_transition warning for left"; `check_agreement` returning none fails at
/// the `chains_vs_weights` assertion of the second run.
#[test]
fn a_collapsed_flow_is_reported_loudly_though_its_ess_is_high() {
    let dir = tempfile::tempdir().unwrap();
    write_right_well(dir.path());

    // Chains started where the flow proposes (its own draws, all in the right well): they
    // stay there, so chains and weights agree on the wrong answer, and the ESS is high. Only
    // the transitions can tell: no chain ever entered or left either well.
    let (report, out, err) = run_collapsed(dir.path(), "from_flow", "");
    let ess = report["reweight"]["ess_fraction"].as_f64().unwrap();
    let (log_z, exact) = (
        report["reweight"]["log_z"]["value"].as_f64().unwrap(),
        report["reweight"]["exact_log_z"].as_f64().unwrap(),
    );
    // The premise: the collapse is silent to the usual numbers. A high ESS, and log Ẑ off by
    // ln 0.033 ≈ −3.4, the log of the missing well's complement.
    assert!(ess > 0.3, "ESS {ess}");
    assert!(log_z - exact < -3.0, "log Ẑ {log_z} vs exact {exact}");
    let found = checks(&report);
    for state in ["left", "right"] {
        assert!(
            found
                .iter()
                .any(|(c, m)| c == "no_transition" && m.contains(&format!("`{state}`"))),
            "no no_transition warning for {state}: {found:?}"
        );
    }
    assert!(
        err.contains("WARNING [no_transition]") && out.contains("convergence warning"),
        "{out}\n{err}"
    );
    // Each stage's report carries its own warnings; the run's report has them all.
    let sample_report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("from_flow/sample_report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        sample_report["warnings"].as_array().unwrap().len(),
        found
            .iter()
            .filter(|(c, _)| c == "no_transition" || c == "split_rhat")
            .count()
    );

    // Chains started in the major (left) well, where the flow never proposes: a flow move
    // out of it is accepted with q(x)/q(x′) ≈ 0, so they stay, and the chains put all their
    // frames in the left well where the weights put none.
    let (report, _, err) = run_collapsed(dir.path(), "from_left", "start = [-1.7, 0.0]");
    let found = checks(&report);
    assert!(
        found
            .iter()
            .any(|(c, m)| c == "chains_vs_weights" && m.contains("P(state left)")),
        "{found:?}"
    );
    assert!(err.contains("WARNING [chains_vs_weights]"), "{err}");
}

/// The built-in example (`boltzgen run`, about 10 s here) is a good run: both wells, log Ẑ
/// within its error bar of the exact value, chains and weights agreeing. It has nothing to
/// warn of, and says so.
#[test]
fn the_built_in_example_has_nothing_to_warn_of() {
    let dir = tempfile::tempdir().unwrap();
    let (report, out, err) = run_and_report(dir.path(), &["-o", "dw", "--threads", "2"], "dw");
    // The premise, that this is a good run, on numbers the verdict does not use: log Ẑ
    // within 4 of its standard errors of the exact value.
    let r = &report["reweight"];
    let (log_z, se, exact) = (
        r["log_z"]["value"].as_f64().unwrap(),
        r["log_z"]["std_error"].as_f64().unwrap(),
        r["exact_log_z"].as_f64().unwrap(),
    );
    assert!(
        (log_z - exact).abs() < 4.0 * se,
        "{log_z} ± {se} vs {exact}"
    );
    assert_eq!(checks(&report), Vec::new(), "{report}");
    for stage in ["train", "sample", "reweight"] {
        if let Some(w) = report[stage].get("warnings") {
            assert_eq!(w, &serde_json::json!([]), "{stage}");
        }
    }
    assert!(out.contains("verdict: no convergence warning"), "{out}");
    assert!(!err.contains("WARNING"), "{err}");
}
