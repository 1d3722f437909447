//! Saving and loading generators: weights as safetensors, architecture as JSON.
//!
//! A model is two files side by side: `NAME.json` (format version, architecture, metadata)
//! and `NAME.safetensors` (the weights, named as in the model's variable store). Both are
//! written atomically. Loading rebuilds the architecture from the JSON and then insists that
//! the weights file holds exactly the tensors, with exactly the shapes, that it needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{DeviceChoice, Flow, FlowConfig, Vae, VaeConfig};
use crate::envelope::{parse_json, write_json, Format};
use crate::error::{Error, Result};
use crate::io::write_atomically;

/// The envelope of model descriptions ([`crate::envelope`]). Version 2: in an envelope, with
/// a content hash of the weights. Version 1 files (before the envelope) are still read.
pub const FORMAT: Format = Format {
    magic: "boltzgen-model",
    version: 2,
    what: "model file",
};

/// The model-file format this version writes.
pub const FORMAT_VERSION: u32 = FORMAT.version;

/// What kind of generator a model file holds, with its architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelSpec {
    /// A normalizing flow.
    Flow(FlowConfig),
    /// A variational autoencoder.
    Vae(VaeConfig),
}

/// The system a model was trained for, so that a model cannot silently be used on another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemTag {
    /// The potential's name (`Potential::name`).
    pub potential: String,
    /// Number of coordinates.
    pub dim: usize,
    /// Inverse temperature of the training target, if it had one.
    pub beta: Option<f64>,
}

/// Free-form facts about how a model came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ModelMetadata {
    /// The system it was trained for.
    pub system: Option<SystemTag>,
    /// Optimiser steps it was trained for.
    pub training_steps: Option<usize>,
    /// The training config, as JSON.
    pub training_config: Option<serde_json::Value>,
    /// Anything else worth keeping.
    pub notes: Option<String>,
}

/// The JSON half of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The format version the file was read in (not stored in the payload: the envelope
    /// holds it).
    #[serde(skip, default = "current_version")]
    pub format_version: u32,
    /// The boltzgen version that wrote it.
    pub boltzgen_version: String,
    /// Architecture.
    pub model: ModelSpec,
    /// File name of the weights, relative to the JSON file.
    pub weights: String,
    /// SHA-256 of the weights file as written (hex). The JSON and the weights are replaced
    /// one after the other; a crash in between would pair this description with another
    /// save's weights, which loading then refuses. `None` only in version-1 files.
    #[serde(default)]
    pub weights_sha256: Option<String>,
    /// Whether ActNorm layers were initialised from data.
    pub data_initialized: bool,
    /// Provenance.
    pub metadata: ModelMetadata,
}

fn current_version() -> u32 {
    FORMAT.version
}

/// A model file as version 1 wrote it: the fields at the top level, no weights hash.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFileV1 {
    format_version: u32,
    boltzgen_version: String,
    model: ModelSpec,
    weights: String,
    data_initialized: bool,
    metadata: ModelMetadata,
}

/// SHA-256 of a file's bytes, in hex.
fn sha256_of(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The weights file that goes with a model JSON path: same stem, `.safetensors`.
pub fn weights_path(json_path: &Path) -> PathBuf {
    json_path.with_extension("safetensors")
}

/// Saves a flow as `json_path` plus its weights file ([`weights_path`]).
///
/// # Errors
/// [`Error::Io`] or [`Error::Torch`] naming the file that could not be written.
pub fn save_flow(flow: &Flow, json_path: &Path, metadata: ModelMetadata) -> Result<()> {
    save_model(
        json_path,
        ModelSpec::Flow(flow.config().clone()),
        flow.var_store(),
        flow.is_data_initialized(),
        metadata,
    )
}

/// Saves a VAE as `json_path` plus its weights file.
///
/// # Errors
/// As [`save_flow`].
pub fn save_vae(vae: &Vae, json_path: &Path, metadata: ModelMetadata) -> Result<()> {
    save_model(
        json_path,
        ModelSpec::Vae(vae.config().clone()),
        vae.var_store(),
        false,
        metadata,
    )
}

fn save_model(
    json_path: &Path,
    model: ModelSpec,
    vs: &tch::nn::VarStore,
    data_initialized: bool,
    metadata: ModelMetadata,
) -> Result<()> {
    let weights = weights_path(json_path);
    write_tensors(&weights, &named_variables(vs, ""))?;
    let file = ModelFile {
        format_version: FORMAT.version,
        boltzgen_version: env!("CARGO_PKG_VERSION").to_string(),
        model,
        weights: weights
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        weights_sha256: Some(sha256_of(&weights)?),
        data_initialized,
        metadata,
    };
    write_json(json_path, &FORMAT, &file)
}

/// Loads a flow saved by [`save_flow`] onto `device`.
///
/// # Errors
/// [`Error::Io`] for a missing file; [`Error::Model`] for malformed JSON, another format
/// version, another kind of model, or weights that do not match the architecture (missing,
/// extra or differently shaped tensors, each named).
pub fn load_flow(json_path: &Path, device: DeviceChoice) -> Result<(Flow, ModelMetadata)> {
    let file = read_model_file(json_path)?;
    let ModelSpec::Flow(config) = file.model.clone() else {
        return Err(Error::Model {
            file: json_path.to_owned(),
            message: "this model file holds a VAE, not a flow".into(),
        });
    };
    let mut flow = Flow::new(config, device).map_err(invalid_architecture(json_path))?;
    load_weights_file(json_path, &file, flow.var_store_mut())?;
    flow.set_data_initialized(file.data_initialized);
    Ok((flow, file.metadata))
}

/// Loads a VAE saved by [`save_vae`].
///
/// # Errors
/// As [`load_flow`].
pub fn load_vae(json_path: &Path, device: DeviceChoice) -> Result<(Vae, ModelMetadata)> {
    let file = read_model_file(json_path)?;
    let ModelSpec::Vae(config) = file.model.clone() else {
        return Err(Error::Model {
            file: json_path.to_owned(),
            message: "this model file holds a flow, not a VAE".into(),
        });
    };
    let mut vae = Vae::new(config, device).map_err(invalid_architecture(json_path))?;
    load_weights_file(json_path, &file, vae.var_store_mut())?;
    Ok((vae, file.metadata))
}

/// Maps a model-construction error to a [`Error::Model`] naming the JSON file.
fn invalid_architecture(json_path: &Path) -> impl FnOnce(Error) -> Error + '_ {
    move |e| Error::Model {
        file: json_path.to_owned(),
        message: format!("invalid architecture: {e}"),
    }
}

/// Reads the weights file named in a model JSON (relative to it) into `vs`, checked against
/// the JSON's hash of it and against the architecture.
fn load_weights_file(json_path: &Path, file: &ModelFile, vs: &mut tch::nn::VarStore) -> Result<()> {
    let path = crate::io::sibling_file(json_path, &file.weights)?;
    if let Some(expected) = &file.weights_sha256 {
        if &sha256_of(&path)? != expected {
            return Err(Error::Model {
                file: path,
                message: format!(
                    "does not match {} (SHA-256 differs): the two come from different saves, \
                     as after an interrupted one; save the model again",
                    json_path.display()
                ),
            });
        }
    }
    let tensors = read_tensors(&path)?;
    load_variables(vs, &tensors, "", &path)
}

/// Reads and checks the JSON half of a model file.
///
/// # Errors
/// As [`load_flow`].
pub fn read_model_file(json_path: &Path) -> Result<ModelFile> {
    let text = std::fs::read_to_string(json_path).map_err(Error::io(json_path))?;
    let legacy_version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("format_version").and_then(|v| v.as_u64()));
    if legacy_version == Some(1) {
        let v1: ModelFileV1 = serde_json::from_str(&text).map_err(|e| Error::Model {
            file: json_path.to_owned(),
            message: format!("malformed model description (format version 1): {e}"),
        })?;
        return Ok(ModelFile {
            format_version: v1.format_version,
            boltzgen_version: v1.boltzgen_version,
            model: v1.model,
            weights: v1.weights,
            weights_sha256: None,
            data_initialized: v1.data_initialized,
            metadata: v1.metadata,
        });
    }
    if let Some(v) = legacy_version {
        return Err(Error::Model {
            file: json_path.to_owned(),
            message: format!(
                "model format version {v}; this build reads versions 1 and {}",
                FORMAT.version
            ),
        });
    }
    parse_json(json_path, &FORMAT, &text)
}

/// A model's variables under `prefix`, sorted by name.
pub(crate) fn named_variables(vs: &tch::nn::VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (format!("{prefix}{k}"), t))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Writes named tensors as safetensors, atomically.
pub(crate) fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    write_atomically(path, |tmp| {
        let cpu: Vec<(String, Tensor)> = tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.detach().to_device(tch::Device::Cpu).contiguous(),
                )
            })
            .collect();
        Tensor::write_safetensors(&cpu, tmp).map_err(|source| Error::Torch {
            context: format!("writing {}", path.display()),
            source,
        })
    })
}

/// Reads a safetensors file into a name → tensor map.
pub(crate) fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        });
    }
    let tensors = Tensor::read_safetensors(path).map_err(|e| Error::Model {
        file: path.to_owned(),
        message: format!("not a readable safetensors file: {e}"),
    })?;
    Ok(tensors.into_iter().collect())
}

/// Copies `tensors[prefix + name]` into each of the model's variables, after checking that
/// the set of names and every shape match exactly.
pub(crate) fn load_variables(
    vs: &mut tch::nn::VarStore,
    tensors: &HashMap<String, Tensor>,
    prefix: &str,
    file: &Path,
) -> Result<()> {
    let vars = vs.variables();
    let mut problems = Vec::new();
    for (name, var) in &vars {
        match tensors.get(&format!("{prefix}{name}")) {
            None => problems.push(format!("missing tensor `{prefix}{name}`")),
            Some(t) if t.size() != var.size() => problems.push(format!(
                "tensor `{prefix}{name}` has shape {:?}, the architecture needs {:?}",
                t.size(),
                var.size()
            )),
            Some(_) => {}
        }
    }
    for key in tensors.keys() {
        if let Some(name) = key.strip_prefix(prefix) {
            if !vars.contains_key(name) {
                problems.push(format!(
                    "unexpected tensor `{key}` (not part of this architecture)"
                ));
            }
        }
    }
    if !problems.is_empty() {
        problems.sort();
        let shown = problems.len().min(5);
        return Err(Error::Model {
            file: file.to_owned(),
            message: format!(
                "weights do not match the architecture: {}{}",
                problems[..shown].join("; "),
                if problems.len() > shown {
                    format!(" (and {} more)", problems.len() - shown)
                } else {
                    String::new()
                }
            ),
        });
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let src = &tensors[&format!("{prefix}{name}")];
            var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
        }
    });
    Ok(())
}
