//! Training checkpoints: the model, Adam's moments, the step, the random stream and the
//! early-stopping state, so that a resumed run continues exactly.
//!
//! Layout: `NAME.json` points to `NAME.step-SSSSSSSS.safetensors`. The tensors are written
//! first under a new, step-stamped name, then the JSON is replaced atomically, then the old
//! tensors are removed: at every instant the JSON names a complete, matching tensor file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::adam::Adam;
use super::{TrainConfig, TrainReport, TrainState};
use crate::envelope::{parse_json, read_json, write_json, Format};
use crate::error::{Error, Result};
use crate::generator::store::{load_variables, named_variables, read_tensors, write_tensors};
use crate::generator::{Flow, FlowConfig};
use crate::rng::ChainRng;

/// The envelope of training checkpoints. Version 2: the first in an envelope.
pub const FORMAT: Format = Format {
    magic: "boltzgen-training-checkpoint",
    version: 2,
    what: "training checkpoint",
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    next_step: usize,
    adam_step: i64,
    rng: ChainRng,
    flow: FlowConfig,
    data_initialized: bool,
    train_config: TrainConfig,
    report: TrainReport,
    consecutive_bad: usize,
    evaluations_without_improvement: usize,
    best_validation_nll: Option<f64>,
    tensors: String,
}

fn tensors_path(json: &Path, step: usize) -> PathBuf {
    let stem = json
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    json.with_file_name(format!("{stem}.step-{step:08}.safetensors"))
}

/// Whether `name` is one that [`tensors_path`] gives the tensors of checkpoint `json`.
fn is_tensors_name(json: &Path, name: &str) -> bool {
    let stem = json
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_prefix(&format!("{stem}.step-"))
        .and_then(|rest| rest.strip_suffix(".safetensors"))
        .is_some_and(|digits| digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn model_error(path: &Path, message: String) -> Error {
    Error::Model {
        file: path.to_owned(),
        message,
    }
}

pub(crate) fn save(
    json: &Path,
    flow: &Flow,
    config: &TrainConfig,
    state: &TrainState,
) -> Result<()> {
    let previous = std::fs::read_to_string(json)
        .ok()
        .and_then(|t| parse_json::<CheckpointFile>(json, &FORMAT, &t).ok())
        // Only a tensors file this function wrote is ever deleted: a plain name beside the
        // checkpoint, of the form it gives them.
        .filter(|c| is_tensors_name(json, &c.tensors))
        .and_then(|c| crate::io::sibling_file(json, &c.tensors).ok());

    let mut tensors = named_variables(flow.var_store(), "model.");
    let (adam_step, adam_state) = state.adam.state();
    tensors.extend(adam_state);
    if let Some((_, best)) = &state.best {
        let mut b: Vec<(String, Tensor)> = best
            .iter()
            .map(|(k, v)| (format!("best.{k}"), v.shallow_clone()))
            .collect();
        b.sort_by(|x, y| x.0.cmp(&y.0));
        tensors.extend(b);
    }
    let tensor_file = tensors_path(json, state.next_step);
    write_tensors(&tensor_file, &tensors)?;

    let file = CheckpointFile {
        next_step: state.next_step,
        adam_step,
        rng: state.rng.clone(),
        flow: flow.config().clone(),
        data_initialized: flow.is_data_initialized(),
        train_config: config.clone(),
        report: state.report.clone(),
        consecutive_bad: state.consecutive_bad,
        evaluations_without_improvement: state.evaluations_without_improvement,
        best_validation_nll: state.best.as_ref().map(|(n, _)| *n),
        tensors: tensor_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    write_json(json, &FORMAT, &file)?;
    if let Some(old) = previous.filter(|old| *old != tensor_file) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

pub(crate) fn load(json: &Path, flow: &mut Flow, config: &TrainConfig) -> Result<TrainState> {
    let file: CheckpointFile = read_json(json, &FORMAT)?;
    if &file.flow != flow.config() {
        return Err(model_error(
            json,
            "the checkpoint was written for a different flow architecture".into(),
        ));
    }
    // Only the length of the run may change on resume; anything else would not continue the
    // same run.
    let mut comparable = file.train_config.clone();
    comparable.steps = config.steps;
    if &comparable != config {
        return Err(model_error(
            json,
            "the checkpoint was written with a different training config (only `steps` may change on resume)".into(),
        ));
    }
    let tensor_file = crate::io::sibling_file(json, &file.tensors)?;
    let tensors = read_tensors(&tensor_file)?;
    load_variables(flow.var_store_mut(), &tensors, "model.", &tensor_file)?;
    flow.set_data_initialized(file.data_initialized);
    let mut adam = Adam::new(
        flow.var_store().variables().into_iter().collect(),
        config.learning_rate,
    );
    adam.load_state(file.adam_step, &tensors)
        .map_err(|e| model_error(&tensor_file, e.to_string()))?;
    let best = match file.best_validation_nll {
        None => None,
        Some(nll) => {
            let weights: HashMap<String, Tensor> = tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("best.")
                        .map(|name| (name.to_string(), v.shallow_clone()))
                })
                .collect();
            if weights.len() != flow.var_store().variables().len() {
                return Err(model_error(
                    &tensor_file,
                    "the best-weights snapshot is incomplete".into(),
                ));
            }
            Some((nll, weights))
        }
    };
    Ok(TrainState {
        next_step: file.next_step,
        rng: file.rng,
        adam,
        report: file.report,
        consecutive_bad: file.consecutive_bad,
        best,
        evaluations_without_improvement: file.evaluations_without_improvement,
    })
}
