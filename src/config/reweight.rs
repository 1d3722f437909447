//! `[reweight]`: importance reweighting of direct draws, and the `balance` tables that both
//! `[reweight]` and `[sample]` take; and their checks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Check, RunConfig, MAX_COORDINATES};
use crate::error::{Error, Result};

/// Importance reweighting of direct draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReweightConfig {
    /// Number of generator draws.
    #[serde(default = "default_draws")]
    pub draws: usize,
    /// Bootstrap resamples for the error of log Ẑ (0: delta method only).
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Also write this many systematically resampled (unweighted) configurations.
    #[serde(default)]
    pub resample: Option<usize>,
    /// Split the weighted draws between the `[analysis] regions` by thinning the flow's
    /// draws region by region (see [`crate::reweight::balance`]).
    #[serde(default)]
    pub balance: Option<BalanceConfig>,
}

impl Default for ReweightConfig {
    fn default() -> Self {
        Self {
            draws: default_draws(),
            bootstrap: default_bootstrap(),
            resample: None,
            balance: None,
        }
    }
}

/// `[reweight] balance`: how the direct draws are split between the `[analysis] regions`.
///
/// A pilot of `pilot` weighted draws estimates each region's probability under exp(−βU), its
/// share of the flow's draws and the spread of its weights. From them each region gets an
/// acceptance probability, and the flow's draws are thinned region by region, so that the
/// weighted draws fall into the regions in the shares that maximise the effective sample
/// size, with at least `min_share` in every region the pilot found. The thinning enters
/// every importance weight, so all estimates stay exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceConfig {
    /// Weighted pilot draws (their energies are evaluated; they enter no estimate).
    #[serde(default = "default_pilot")]
    pub pilot: usize,
    /// The least share of the weighted draws for every region with pilot draws.
    #[serde(default)]
    pub min_share: f64,
    /// No region is thinned below this acceptance: it bounds how far a region whose pilot
    /// estimate was too low can inflate its draws' weights (at most 1 / `min_acceptance`).
    #[serde(default = "default_min_acceptance")]
    pub min_acceptance: f64,
}

fn default_pilot() -> usize {
    20_000
}
fn default_min_acceptance() -> f64 {
    0.01
}

fn default_draws() -> usize {
    100_000
}
fn default_bootstrap() -> usize {
    200
}

impl RunConfig {
    /// Checks `[reweight]` and the `balance` tables of `[reweight]` and `[sample]`.
    pub(super) fn validate_reweight(&self, c: &Check) -> Result<()> {
        let (path, dim) = (c.path, c.dim);
        let bad = |key: &str, message: String| c.bad(key, message);
        if let Some(r) = &self.reweight {
            if r.draws == 0 || r.draws.checked_mul(dim).is_none_or(|c| c > MAX_COORDINATES) {
                return Err(bad(
                    "reweight.draws",
                    format!(
                        "must be from 1 to {} for {dim} coordinates, got {}",
                        MAX_COORDINATES / dim.max(1),
                        r.draws
                    ),
                ));
            }
        }
        let balances = [
            (
                "reweight.balance",
                self.reweight.as_ref().and_then(|r| r.balance.as_ref()),
            ),
            (
                "sample.balance",
                self.sample.as_ref().and_then(|s| s.balance.as_ref()),
            ),
        ];
        for (key, b) in balances {
            if let Some(b) = b {
                self.check_balance(path, key, b)?;
            }
        }
        Ok(())
    }
}

impl RunConfig {
    fn check_balance(&self, path: &Path, key: &str, b: &BalanceConfig) -> Result<()> {
        let bad = |key: &str, message: String| Error::Config {
            file: path.to_owned(),
            key: key.into(),
            message,
        };
        if self.analysis.regions.is_empty() {
            return Err(bad(
                key,
                "splits the draws between regions: set analysis.regions".into(),
            ));
        }
        if b.pilot < 100 {
            return Err(bad(
                &format!("{key}.pilot"),
                format!(
                    "{} draws cannot estimate the regions' weights; use at least 100",
                    b.pilot
                ),
            ));
        }
        // The regions and the part of the plane outside them.
        let strata = self.analysis.regions.len() + 1;
        if !(0.0..=1.0 / strata as f64).contains(&b.min_share) {
            return Err(bad(
                &format!("{key}.min_share"),
                format!(
                    "must lie in [0, 1/{strata}] ({} regions and the rest of the plane)",
                    strata - 1
                ),
            ));
        }
        if !(b.min_acceptance > 0.0 && b.min_acceptance <= 1.0) {
            return Err(bad(
                &format!("{key}.min_acceptance"),
                "must lie in (0, 1]".into(),
            ));
        }
        Ok(())
    }
}
