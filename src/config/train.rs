//! `[train]`: how the generator is trained. The section is
//! [`TrainConfig`](crate::train::TrainConfig) itself (it lives
//! beside the training loop, which the library's users call without a config file); here its
//! checks are mapped to config keys.

use super::{Check, ModelKind, RunConfig};
use crate::error::{Error, Result};
use crate::train::TrainMethod;

impl RunConfig {
    /// Checks `[train]`, naming `train.KEY` in errors.
    pub(super) fn validate_train(&self, c: &Check) -> Result<()> {
        let bad = |key: &str, message: String| c.bad(key, message);
        if let Some(t) = &self.train {
            t.validate().map_err(|e| match e {
                Error::InvalidArgument { name, message } => bad(&format!("train.{name}"), message),
                other => bad("train", other.to_string()),
            })?;
            let kind = self.model.as_ref().map(|m| m.kind);
            let is_flow = !matches!(kind, Some(ModelKind::Vae | ModelKind::Torchscript));
            let method = t.method.unwrap_or(TrainMethod::default_for(is_flow));
            if method == TrainMethod::Smc {
                if !is_flow {
                    return Err(bad(
                        "train.method",
                        "SMC annealing trains flows; a VAE is trained by method = \"gradient\""
                            .into(),
                    ));
                }
                if let Some(key) = t.key_unused_by_smc() {
                    let by_default = if t.method.is_none() {
                        ", the default for flows"
                    } else {
                        ""
                    };
                    return Err(bad(
                        &format!("train.{key}"),
                        format!(
                            "is not used by SMC annealing (method = \"smc\"{by_default}), \
                             whose schedule is its own ([train.smc]); set method = \"gradient\" \
                             to train by the objective terms and their schedule"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
