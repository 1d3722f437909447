//! The training-only energy regulariser.

use crate::error::{invalid, Result};

/// Softens very high energies for training, and only for training:
///
/// `U_reg = U` for `U ≤ U_high`, `U_high + ln(1 + U − U_high)` above, and at most `U_max`.
///
/// A freshly initialised generator proposes overlapping atoms with U ~ 10¹², whose gradients
/// would wreck a reverse-KL step; the logarithm keeps them finite while preserving the
/// ordering. It changes the target, so acceptance tests and importance weights must always
/// use the raw U.
///
/// ```
/// use boltzgen_potentials::EnergyRegularizer;
/// let reg = EnergyRegularizer::new(100.0, 1e3).unwrap();
/// assert_eq!(reg.apply(50.0), (50.0, 1.0));
/// let (u, slope) = reg.apply(100.0 + std::f64::consts::E - 1.0);
/// assert!((u - 101.0).abs() < 1e-12 && (slope - 1.0 / std::f64::consts::E).abs() < 1e-12);
/// assert_eq!(reg.apply(f64::INFINITY), (1e3, 0.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RegularizerFields")]
pub struct EnergyRegularizer {
    high: f64,
    max: f64,
}

/// The fields as written in a config or a checkpoint, checked by [`EnergyRegularizer::new`]
/// when read: unknown keys and a cap that is not above the switch point are refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RegularizerFields {
    high: f64,
    max: f64,
}

impl TryFrom<RegularizerFields> for EnergyRegularizer {
    type Error = crate::PotentialError;

    fn try_from(f: RegularizerFields) -> Result<Self> {
        Self::new(f.high, f.max)
    }
}

impl EnergyRegularizer {
    /// A regulariser that is linear up to `high` and capped at `max` (`max > high`).
    ///
    /// # Errors
    /// `InvalidParameter` for non-finite values or `max ≤ high`.
    pub fn new(high: f64, max: f64) -> Result<Self> {
        if !high.is_finite() {
            return Err(invalid(
                "energy_high",
                format!("must be finite, got {high}"),
            ));
        }
        if !(max > high && max.is_finite()) {
            return Err(invalid(
                "energy_max",
                format!("must be finite and above energy_high ({high}), got {max}"),
            ));
        }
        Ok(Self { high, max })
    }

    /// The linear-to-logarithmic switch point U_high.
    pub fn high(&self) -> f64 {
        self.high
    }

    /// The hard cap U_max.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// `(U_reg, dU_reg/dU)`; multiply the gradient of U by the slope. A NaN energy stays NaN
    /// so that the trainer's non-finite guard sees it.
    pub fn apply(&self, u: f64) -> (f64, f64) {
        if u.is_nan() {
            return (f64::NAN, f64::NAN);
        }
        if u <= self.high {
            return (u, 1.0);
        }
        let soft = self.high + (u - self.high).ln_1p();
        if soft >= self.max {
            (self.max, 0.0)
        } else {
            (soft, 1.0 / (1.0 + u - self.high))
        }
    }
}
