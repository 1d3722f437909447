//! `[model]`: the generator's architecture, or a file to load it from; and its checks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::System;
use super::{Check, RunConfig};
use crate::error::{Error, Result};
use crate::generator::Precision;

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Affine couplings.
    RealNvp,
    /// Rational-quadratic spline couplings.
    NeuralSpline,
    /// A β-VAE.
    Vae,
    /// A flow trained in PyTorch and exported as TorchScript (`file` names the `.pt`; see
    /// [`TorchScriptGenerator`](crate::generator::TorchScriptGenerator)). boltzgen samples and
    /// reweights with it but does not train it.
    Torchscript,
}

/// The coordinates a flow's layers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Coordinates {
    /// The configuration's own coordinates.
    #[default]
    Cartesian,
    /// Z-matrix bond lengths, angles and torsions from the system's bonds.
    Internal,
}

/// The generator's architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `real_nvp`, `neural_spline`, `vae` or `torchscript`.
    pub kind: ModelKind,
    /// Coupling layers (flows).
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Hidden layer widths of the conditioners / encoder and decoder.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Spline bins (neural_spline).
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Spline interval [−B, B] (neural_spline).
    #[serde(default = "default_tail_bound")]
    pub tail_bound: f64,
    /// Latent dimension (vae).
    #[serde(default)]
    pub latent_dim: Option<usize>,
    /// `float32` or `float64`.
    #[serde(default)]
    pub precision: Precision,
    /// Remove the centre of mass (particle systems with a translation-invariant U).
    #[serde(default)]
    pub mean_free: bool,
    /// `cartesian` (default) or `internal`: a `neural_spline` flow over the bond lengths,
    /// angles and torsions of the system's bond graph (molecules in vacuum; see
    /// [`crate::generator::flow::internal`]). `tail_bound` is then the torsions' interval.
    #[serde(default)]
    pub coordinates: Coordinates,
    /// Internal coordinates only: split the bond lengths and angles into two halves (by
    /// placed atom, alternating), each transformed by its own couplings conditioned on the
    /// other half and the torsions, so that bonds and angles can depend on each other. By
    /// default one coupling transforms all of them at once, given the torsions only.
    #[serde(default)]
    pub split_bonds_angles: bool,
    /// Load this model file (`.json`, relative to the config) instead of building a new one.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

fn default_layers() -> usize {
    4
}
fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_bins() -> usize {
    8
}
fn default_tail_bound() -> f64 {
    5.0
}

impl RunConfig {
    /// Checks `[model]` (its architecture is built and bounded before anything is allocated).
    pub(super) fn validate_model(&self, c: &Check) -> Result<()> {
        let (system, dim) = (c.system, c.dim);
        let bad = |key: &str, message: String| c.bad(key, message);
        if let Some(m) = self.model.as_ref().filter(|m| m.file.is_none()) {
            // The architecture is checked now, before anything is allocated or written: its
            // sizes are bounded (generator::mlp::MAX_PARAMETERS).
            let flow_max = crate::generator::flow::MAX_LAYERS;
            if m.layers > flow_max {
                return Err(bad(
                    "model.layers",
                    format!("at most {flow_max}, got {}", m.layers),
                ));
            }
            let checked = match (m.kind, m.coordinates) {
                (ModelKind::RealNvp, _) => {
                    crate::generator::FlowConfig::real_nvp(dim, m.layers, &m.hidden).validate()
                }
                (ModelKind::NeuralSpline, Coordinates::Cartesian) => {
                    crate::generator::FlowConfig::neural_spline(
                        dim,
                        m.layers,
                        &m.hidden,
                        m.bins,
                        m.tail_bound,
                    )
                    .validate()
                }
                (ModelKind::Vae, _) => {
                    crate::generator::VaeConfig::new(dim, m.latent_dim.unwrap_or(2), &m.hidden)
                        .validate()
                }
                _ => Ok(()),
            };
            checked.map_err(|e| match e {
                Error::InvalidArgument { name, message } if name.starts_with("layers[") => {
                    bad("model.hidden", format!("{name}: {message}"))
                }
                Error::InvalidArgument { name, message } => bad(&format!("model.{name}"), message),
                other => bad("model", other.to_string()),
            })?;
        }
        if let Some(m) = &self.model {
            if m.split_bonds_angles && m.coordinates != Coordinates::Internal {
                return Err(bad(
                    "model.split_bonds_angles",
                    "applies to internal coordinates only (coordinates = \"internal\")".into(),
                ));
            }
            if m.coordinates == Coordinates::Internal {
                self.validate_internal(m, system)
                    .map_err(|(key, m)| bad(key, m))?;
            }
            if m.kind == ModelKind::Vae && m.latent_dim.is_none() && m.file.is_none() {
                return Err(bad("model.latent_dim", "a VAE needs latent_dim".into()));
            }
            if m.kind == ModelKind::Torchscript {
                if m.file.is_none() {
                    return Err(bad(
                        "model.file",
                        "a torchscript model needs `file`, the exported .pt module".into(),
                    ));
                }
                if self.train.is_some() {
                    return Err(bad(
                        "train",
                        "a torchscript model is trained in PyTorch; boltzgen samples and reweights with it as it is (remove [train])".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl RunConfig {
    /// What an internal-coordinate flow needs: a spline flow, a molecule with bonds, and
    /// training frames (the normalisation is fitted to them).
    fn validate_internal(
        &self,
        m: &ModelConfig,
        system: &System,
    ) -> std::result::Result<(), (&'static str, String)> {
        if m.kind != ModelKind::NeuralSpline {
            return Err((
                "model.coordinates",
                "internal coordinates take kind = \"neural_spline\"".into(),
            ));
        }
        if m.mean_free {
            return Err((
                "model.mean_free",
                "internal coordinates already leave out position and orientation; remove mean_free"
                    .into(),
            ));
        }
        if system.bonds.is_none() || system.spatial_dim != 3 {
            return Err((
                "model.coordinates",
                format!(
                    "internal coordinates need a molecule with bonds in 3-D (potential = \"openmm\"); `{}` has none",
                    self.system.potential
                ),
            ));
        }
        if m.file.is_none() && self.data.is_none() {
            return Err((
                "data",
                "an internal-coordinate flow fits its normalisation to training frames: add a [data] section".into(),
            ));
        }
        Ok(())
    }
}
