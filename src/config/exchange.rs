//! `[sample.replica_exchange]`: a ladder of temperatures for parallel tempering, in the
//! units of `[system]`'s temperature, and its checks.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::mcmc::ExchangeConfig;

/// Replica exchange between rungs at rising temperatures (see [`crate::mcmc::exchange`]).
/// Temperatures are in the units of `[system] temperature` (kelvin for OpenMM systems), or
/// are 1/β when the system gives `beta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaExchangeConfig {
    /// Rungs per ladder, the target's included, spaced geometrically up to
    /// `max_temperature` (give these two, or `temperatures`).
    #[serde(default)]
    pub replicas: Option<usize>,
    /// The hottest rung's temperature.
    #[serde(default)]
    pub max_temperature: Option<f64>,
    /// Every rung's temperature, the system's first, rising.
    #[serde(default)]
    pub temperatures: Option<Vec<f64>>,
    /// Steps between swap rounds; must divide `[sample] sync_interval`.
    #[serde(default = "default_swap_interval")]
    pub swap_interval: usize,
    /// Move the interior rungs during burn-in towards equal swap acceptance (then freeze
    /// them); the two ends stay where they are given.
    #[serde(default = "default_tune")]
    pub tune: bool,
}

fn default_swap_interval() -> usize {
    10
}
fn default_tune() -> bool {
    true
}

impl ReplicaExchangeConfig {
    /// The sampler's ladder for a target at `beta` whose temperature is `temperature` in the
    /// units the section uses. Errors name the key (relative to the section) and say why.
    pub(crate) fn ladder(
        &self,
        beta: f64,
        temperature: f64,
        sync_interval: usize,
    ) -> std::result::Result<ExchangeConfig, (String, String)> {
        let bad = |key: &str, message: String| Err((key.to_string(), message));
        let temperatures = match (&self.temperatures, self.replicas, self.max_temperature) {
            (Some(t), None, None) => t.clone(),
            (None, Some(n), Some(max)) => {
                if n < 2 {
                    return bad("replicas", format!("need at least 2 rungs, got {n}"));
                }
                if !(max > temperature && max.is_finite()) {
                    return bad(
                        "max_temperature",
                        format!("must be above the system's temperature {temperature}, got {max}"),
                    );
                }
                let ladder = ExchangeConfig::geometric(beta, max / temperature, n)
                    .map_err(|e| ("replicas".to_string(), e.to_string()))?;
                ladder
                    .betas
                    .iter()
                    .map(|b| temperature * beta / b)
                    .collect()
            }
            (None, None, Some(_)) => {
                return bad("replicas", "required with max_temperature".into());
            }
            (None, Some(_), None) => {
                return bad("max_temperature", "required with replicas".into());
            }
            (None, None, None) => {
                return bad(
                    "temperatures",
                    "give the ladder: `temperatures = [...]`, or `replicas` and \
                     `max_temperature`"
                        .into(),
                );
            }
            (Some(_), _, _) => {
                return bad(
                    "temperatures",
                    "give either temperatures or replicas and max_temperature, not both".into(),
                );
            }
        };
        if temperatures.len() < 2 {
            return bad("temperatures", "need at least 2 rungs".into());
        }
        if let Some(r) = temperatures
            .iter()
            .position(|t| !(*t > 0.0 && t.is_finite()))
        {
            return bad(
                &format!("temperatures[{r}]"),
                format!("must be positive and finite, got {}", temperatures[r]),
            );
        }
        if (temperatures[0] - temperature).abs() > 1e-9 * temperature {
            return bad(
                "temperatures[0]",
                format!(
                    "must be the system's temperature {temperature} (the target rung), got {}",
                    temperatures[0]
                ),
            );
        }
        let mut betas: Vec<f64> = temperatures
            .iter()
            .map(|t| beta * temperature / t)
            .collect();
        // The target rung is the system's own β, bit for bit.
        betas[0] = beta;
        let ladder = ExchangeConfig {
            betas,
            swap_interval: self.swap_interval,
            tune: self.tune,
        };
        // The ladder's own checks (rising, swap interval), named by the user's keys: β index
        // r is temperature index r.
        ladder.validate(beta, sync_interval).map_err(|e| match e {
            Error::InvalidArgument { name, message } => (
                name.trim_start_matches("replica_exchange.")
                    .replace("betas", "temperatures"),
                message,
            ),
            other => ("temperatures".to_string(), other.to_string()),
        })?;
        Ok(ladder)
    }
}
