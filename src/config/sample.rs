//! `[sample]`: Metropolis–Hastings sampling (chains, lengths, moves, balance); and its checks.

use serde::{Deserialize, Serialize};

use super::{BalanceConfig, ReplicaExchangeConfig};
use super::{Check, RunConfig};
use crate::error::{Error, Result};
use crate::mcmc::MoveSpec;

/// Metropolis–Hastings sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Number of chains.
    #[serde(default = "default_chains")]
    pub chains: usize,
    /// Burn-in steps per chain (adaptive, not written).
    #[serde(default = "default_burn_in")]
    pub burn_in: usize,
    /// Production steps per chain.
    pub steps: usize,
    /// Write every `thin`-th production step.
    #[serde(default = "default_one")]
    pub thin: usize,
    /// Learned draws per generator call.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Steps per block (chains align at block ends).
    #[serde(default = "default_sync")]
    pub sync_interval: usize,
    /// Checkpoint (and flush the trajectory) every this many blocks.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Starting configuration for every chain; by default generator draws when there is a
    /// model, else the first training frames.
    #[serde(default)]
    pub start: Option<Vec<f64>>,
    /// The mixture of moves.
    pub moves: Vec<MoveSpec>,
    /// Balance the flow moves' proposals between the `[analysis] regions`: a pilot plans an
    /// acceptance per region as for `[reweight] balance`, and the flow's draws are thinned
    /// with it before they are proposed, `ln a` entering the Hastings term (see
    /// [`crate::reweight::balance::ThinnedGenerator`]).
    #[serde(default)]
    pub balance: Option<BalanceConfig>,
    /// Replica exchange: `chains` independent ladders, each rung running `moves`, only the
    /// target rung written.
    #[serde(default)]
    pub replica_exchange: Option<ReplicaExchangeConfig>,
}

fn default_chains() -> usize {
    16
}
fn default_burn_in() -> usize {
    1000
}
fn default_one() -> usize {
    1
}
fn default_buffer() -> usize {
    1024
}
fn default_sync() -> usize {
    100
}
fn default_checkpoint_every() -> usize {
    10
}

impl RunConfig {
    /// Checks `[sample]`: its moves against the model and the system.
    pub(super) fn validate_sample(&self, c: &Check) -> Result<()> {
        let (system, dim) = (c.system, c.dim);
        let bad = |key: &str, message: String| c.bad(key, message);
        if let Some(s) = &self.sample {
            for (i, m) in s.moves.iter().enumerate() {
                let learned = matches!(
                    m.kind,
                    crate::mcmc::MoveKind::Flow
                        | crate::mcmc::MoveKind::LatentWalk
                        | crate::mcmc::MoveKind::Vae
                );
                if m.kind == crate::mcmc::MoveKind::Custom {
                    return Err(bad(
                        &format!("sample.moves[{i}].kind"),
                        "`custom` moves are supplied through the Rust API \
                         (Sampler::run_with_moves), not a config file"
                            .into(),
                    ));
                }
                if learned && self.model.is_none() {
                    return Err(bad(
                        &format!("sample.moves[{i}].kind"),
                        format!(
                            "a `{}` move proposes from a model: add a [model] section",
                            m.kind.name()
                        ),
                    ));
                }
            }
            if let Some(start) = &s.start {
                if let Some(k) = start.iter().position(|v| !v.is_finite()) {
                    return Err(bad(
                        &format!("sample.start[{k}]"),
                        format!("must be finite, got {}", start[k]),
                    ));
                }
            }
            let mut sampler =
                crate::mcmc::SamplerConfig::new(s.chains, system.beta, s.moves.clone());
            sampler.thin = s.thin;
            sampler.buffer = s.buffer;
            sampler.sync_interval = s.sync_interval;
            sampler.exchange = self.exchange_ladder(c.path, system.beta)?;
            sampler.validate(dim).map_err(|e| match e {
                Error::InvalidArgument { name, message } => bad(&format!("sample.{name}"), message),
                other => bad("sample", other.to_string()),
            })?;
            if s.checkpoint_every == 0 {
                return Err(bad("sample.checkpoint_every", "must be positive".into()));
            }
            if let Some(start) = &s.start {
                if start.len() != dim {
                    return Err(bad(
                        "sample.start",
                        format!("has {} coordinates, the system {dim}", start.len()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The sampler's ladder from `[sample.replica_exchange]` (`None` without one), its
    /// temperatures converted to β against the system's: `[system] temperature`, or 1/β.
    ///
    /// # Errors
    /// [`Error::Config`] naming `path` and the key.
    pub(crate) fn exchange_ladder(
        &self,
        path: &std::path::Path,
        beta: f64,
    ) -> Result<Option<crate::mcmc::ExchangeConfig>> {
        let Some(s) = &self.sample else {
            return Ok(None);
        };
        let Some(x) = &s.replica_exchange else {
            return Ok(None);
        };
        let temperature = self.system.temperature.unwrap_or(1.0 / beta);
        x.ladder(beta, temperature, s.sync_interval)
            .map(Some)
            .map_err(|(key, message)| Error::Config {
                file: path.to_owned(),
                key: format!("sample.replica_exchange.{key}"),
                message,
            })
    }
}
