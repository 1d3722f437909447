//! What a replica-exchange run is told: the ladder, how often to swap, whether to tune.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Replica exchange on top of the sampler's moves (see [the module](super)).
///
/// ```
/// use boltzgen::mcmc::ExchangeConfig;
/// // Target β = 1, hottest rung at 4 times the temperature, 5 rungs spaced geometrically.
/// let c = ExchangeConfig::geometric(1.0, 4.0, 5).unwrap();
/// assert_eq!(c.betas.len(), 5);
/// assert!((c.betas[4] - 0.25).abs() < 1e-12);
/// assert!((c.betas[1] / c.betas[2] - c.betas[2] / c.betas[3]).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// β of every rung, the target's first and strictly decreasing (the temperature rises
    /// along the ladder). With `tune`, the starting ladder; its ends stay fixed.
    pub betas: Vec<f64>,
    /// Steps between swap rounds; must divide the sampler's `sync_interval`.
    pub swap_interval: usize,
    /// Move the interior rungs during burn-in towards equal swap acceptance between all
    /// neighbours, then freeze them.
    pub tune: bool,
}

impl ExchangeConfig {
    /// A ladder from `beta` (the target) to `beta / max_temperature_factor` in `rungs` rungs
    /// of equal temperature ratio — the spacing of equal swap acceptance when the heat
    /// capacity does not depend on the temperature; swaps every 10 steps, tuned.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for fewer than two rungs or a factor not above 1.
    pub fn geometric(beta: f64, max_temperature_factor: f64, rungs: usize) -> Result<Self> {
        if rungs < 2 {
            return Err(Error::InvalidArgument {
                name: "replicas".into(),
                message: format!("need at least 2 rungs for replica exchange, got {rungs}"),
            });
        }
        if !(max_temperature_factor > 1.0 && max_temperature_factor.is_finite()) {
            return Err(Error::InvalidArgument {
                name: "max_temperature".into(),
                message: "must be above the system's temperature".into(),
            });
        }
        let ratio = max_temperature_factor.powf(1.0 / (rungs - 1) as f64);
        let betas = (0..rungs)
            .map(|r| {
                if r + 1 == rungs {
                    beta / max_temperature_factor
                } else {
                    beta / ratio.powi(r as i32)
                }
            })
            .collect();
        Ok(Self {
            betas,
            swap_interval: 10,
            tune: true,
        })
    }

    /// Rungs per ladder.
    pub fn rungs(&self) -> usize {
        self.betas.len()
    }

    /// Checks the ladder against the target's β and the sampler's block length.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self, beta: f64, sync_interval: usize) -> Result<()> {
        let bad = |name: &str, message: String| {
            Err(Error::InvalidArgument {
                name: format!("replica_exchange.{name}"),
                message,
            })
        };
        if self.betas.len() < 2 {
            return bad("betas", "need at least 2 rungs".into());
        }
        if let Some(r) = self.betas.iter().position(|b| !(*b > 0.0 && b.is_finite())) {
            return bad(
                &format!("betas[{r}]"),
                format!("must be positive and finite, got {}", self.betas[r]),
            );
        }
        if (self.betas[0] - beta).abs() > 1e-12 * beta {
            return bad(
                "betas[0]",
                format!("must be the target's β {beta}, got {}", self.betas[0]),
            );
        }
        if let Some(r) = self.betas.windows(2).position(|w| w[1] >= w[0]) {
            return bad(
                &format!("betas[{}]", r + 1),
                "the ladder must rise in temperature: every β below the one before".into(),
            );
        }
        if self.swap_interval == 0 || sync_interval % self.swap_interval != 0 {
            return bad(
                "swap_interval",
                format!(
                    "must be positive and divide sync_interval ({sync_interval}), got {}",
                    self.swap_interval
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = ExchangeConfig::geometric(2.0, 3.0, 4).unwrap();
        assert!(c.validate(2.0, 100).is_ok());
        let e = c.validate(1.0, 100).unwrap_err().to_string();
        assert!(e.contains("betas[0]"), "{e}");
        let e = c.validate(2.0, 15).unwrap_err().to_string();
        assert!(e.contains("swap_interval"), "{e}");
        c.betas.swap(1, 2);
        let e = c.validate(2.0, 100).unwrap_err().to_string();
        assert!(e.contains("betas[2]"), "{e}");
        assert!(ExchangeConfig::geometric(1.0, 0.5, 4).is_err());
        assert!(ExchangeConfig::geometric(1.0, 2.0, 1).is_err());
    }
}
