//! `[train]`: how the generator is trained. The section is
//! [`TrainConfig`](crate::train::TrainConfig) itself (it lives
//! beside the training loop, which the library's users call without a config file); here its
//! checks are mapped to config keys.

use super::{Check, RunConfig};
use crate::error::{Error, Result};

impl RunConfig {
    /// Checks `[train]`, naming `train.KEY` in errors.
    pub(super) fn validate_train(&self, c: &Check) -> Result<()> {
        let bad = |key: &str, message: String| c.bad(key, message);
        if let Some(t) = &self.train {
            t.validate().map_err(|e| match e {
                Error::InvalidArgument { name, message } => bad(&format!("train.{name}"), message),
                other => bad("train", other.to_string()),
            })?;
        }
        Ok(())
    }
}
