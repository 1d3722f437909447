//! What a sampling run does: chains, temperature, lengths, blocks and the mixture of moves.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mcmc::exchange::ExchangeConfig;
use crate::mcmc::moves::MoveSpec;

/// What a sampling run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Number of chains; with replica exchange, of independent ladders (each of
    /// `exchange.betas.len()` chains, only the target rung's recorded).
    pub chains: usize,
    /// Inverse temperature β of the target exp(−βU).
    pub beta: f64,
    /// Seed of every stream.
    pub seed: u64,
    /// Burn-in steps per chain (adaptive, not recorded).
    pub burn_in: usize,
    /// Production steps per chain.
    pub steps: usize,
    /// Record every `thin`-th production step.
    pub thin: usize,
    /// Learned draws per generator call.
    pub buffer: usize,
    /// Steps per block: chains align at block ends, where checkpoints are taken.
    pub sync_interval: usize,
    /// The mixture of moves.
    pub moves: Vec<MoveSpec>,
    /// Replica exchange between a ladder of temperatures, every rung running `moves`
    /// (see [`crate::mcmc::exchange`]); `None` samples the target alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeConfig>,
}

impl SamplerConfig {
    /// A config with `chains` chains at inverse temperature `beta` and the given moves;
    /// 1000 burn-in and 10 000 production steps, thin 1, buffer 1024, blocks of 100 steps.
    pub fn new(chains: usize, beta: f64, moves: Vec<MoveSpec>) -> Self {
        Self {
            chains,
            beta,
            seed: 0,
            burn_in: 1000,
            steps: 10_000,
            thin: 1,
            buffer: 1024,
            sync_interval: 100,
            moves,
            exchange: None,
        }
    }

    /// Checks the config against a system of `dim` coordinates.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the offending field.
    pub fn validate(&self, dim: usize) -> Result<()> {
        let bad = |name: &str, message: &str| {
            Err(Error::InvalidArgument {
                name: name.into(),
                message: message.into(),
            })
        };
        if self.chains == 0 {
            return bad("chains", "need at least one chain");
        }
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return bad("beta", "must be positive and finite");
        }
        if self.thin == 0 || self.buffer == 0 || self.sync_interval == 0 {
            return bad("thin, buffer, sync_interval", "must be positive");
        }
        if self.moves.is_empty() {
            return bad("moves", "need at least one move");
        }
        for (i, m) in self.moves.iter().enumerate() {
            m.validate(i, dim)?;
        }
        if let Some(x) = &self.exchange {
            x.validate(self.beta, self.sync_interval)?;
        }
        Ok(())
    }

    /// Rungs per ladder: 1 without replica exchange.
    pub fn rungs(&self) -> usize {
        self.exchange.as_ref().map_or(1, ExchangeConfig::rungs)
    }

    /// Chains the sampler runs: `chains` times the rungs of a ladder.
    pub fn all_chains(&self) -> usize {
        self.chains * self.rungs()
    }

    /// Burn-in plus production steps.
    pub fn total_steps(&self) -> usize {
        self.burn_in + self.steps
    }
}
