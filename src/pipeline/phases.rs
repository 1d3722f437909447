//! Where a training run changed what it optimises, for the marks on the training plot: the
//! rungs of SMC annealing, the step where the energy term or the ESS term joins, the annealing
//! window of gradient training, and the start of a fine-tuning run.
//!
//! Read from the config and `train_report.json`, so the plot can be redrawn from the run
//! directory alone.

use super::plot::Phase;
use super::Prepared;
use crate::config::ModelKind;
use crate::train::TrainMethod;

/// The phases of the training that wrote `prep`'s run directory, in step order.
pub fn training_phases(prep: &Prepared) -> Vec<Phase> {
    let Some(train) = &prep.config.train else {
        return Vec::new();
    };
    let model = prep.config.model.as_ref();
    let is_flow = !matches!(
        model.map(|m| m.kind),
        Some(ModelKind::Vae | ModelKind::Torchscript)
    );
    let mut phases = Vec::new();
    if let Some(file) = model.and_then(|m| m.file.as_ref()) {
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        phases.push(Phase::new(0, format!("fine-tuning {name}")));
    }
    match train.method.unwrap_or(TrainMethod::default_for(is_flow)) {
        TrainMethod::Smc => phases.extend(smc_rungs(prep, train.smc.refit_steps, prep.system.beta)),
        TrainMethod::Gradient => {
            let beta = train.beta;
            if let Some(b0) = train.anneal_from_beta.filter(|_| train.anneal_steps > 0) {
                phases.push(Phase::new(0, format!("annealing β {b0:.3} → {beta:.3}")));
                phases.push(Phase::new(
                    train.anneal_steps,
                    format!("β = {beta:.3} reached"),
                ));
            }
            if train.reverse_weight > 0.0 && train.reverse_from_step > 0 {
                phases.push(Phase::new(
                    train.reverse_from_step,
                    "energy term joins".into(),
                ));
            }
            if train.ess_weight > 0.0 && train.ess_from_step > 0 {
                phases.push(Phase::new(train.ess_from_step, "ESS term joins".into()));
            }
        }
    }
    phases.sort_by_key(|p| p.step);
    phases
}

/// SMC's rungs from `train_report.json`: rung k's refit starts at step k × `refit_steps`;
/// each is labelled with its β as a fraction of the target's, `target_beta`.
fn smc_rungs(prep: &Prepared, refit_steps: usize, target_beta: f64) -> Vec<Phase> {
    let Ok(text) = std::fs::read_to_string(prep.path("train_report.json")) else {
        return Vec::new();
    };
    let Ok(report) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let rungs = report["summary"]["annealing"]["rungs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rungs
        .iter()
        .enumerate()
        .filter_map(|(k, r)| {
            let beta = r["beta"].as_f64()?;
            Some(Phase::new(
                k * refit_steps,
                format!("β/β₀ = {:.3}", beta / target_beta),
            ))
        })
        .collect()
}
