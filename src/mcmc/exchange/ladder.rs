//! Burn-in tuning of a temperature ladder towards equal swap acceptance between neighbours.
//!
//! Each pair's acceptance A_i is followed as an exponential average of its swap attempts'
//! min(1, α) (the expected acceptance, less noisy than the accept/reject indicator). After
//! every round the logarithm of each temperature gap T_{i+1} − T_i grows by κ_t (A_i − Ā),
//! Ā the mean over pairs: a pair that accepts more often than the others is closer than it
//! need be, so its gap widens and the others narrow. The gaps are then rescaled so that the
//! two ends stay where the user put them. The gain κ_t = κ₀ / (1 + t / t₀) decays with the
//! round count t (a Robbins–Monro schedule), so the ladder settles instead of following the
//! noise; the sampler freezes it when burn-in ends whatever its state.

use serde::{Deserialize, Serialize};

/// Weight of the newest attempt in a pair's running acceptance.
const SMOOTHING: f64 = 0.1;
/// Initial gain on the log-gaps.
const GAIN: f64 = 0.5;
/// Rounds over which the gain halves.
const GAIN_HALF_LIFE: f64 = 100.0;

/// The running state of the tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct LadderTuner {
    /// Per pair of neighbours: running expected acceptance (`None` before its first attempt).
    acceptance: Vec<Option<f64>>,
    /// Rounds that have updated the ladder.
    rounds: u64,
}

impl LadderTuner {
    pub(super) fn new(pairs: usize) -> Self {
        Self {
            acceptance: vec![None; pairs],
            rounds: 0,
        }
    }

    /// Pairs of neighbours it follows.
    pub(super) fn pairs(&self) -> usize {
        self.acceptance.len()
    }

    /// Takes in the expected acceptance of one attempt at pair `i`.
    pub(super) fn observe(&mut self, i: usize, probability: f64) {
        let a = &mut self.acceptance[i];
        *a = Some(match *a {
            None => probability,
            Some(old) => old + SMOOTHING * (probability - old),
        });
    }

    /// Moves the interior rungs of `betas` one step towards equal acceptance (nothing until
    /// every pair has been attempted, and nothing for a ladder without interior rungs).
    pub(super) fn update(&mut self, betas: &mut [f64]) {
        let n = betas.len();
        if n < 3 {
            return;
        }
        let Some(acceptance) = self
            .acceptance
            .iter()
            .copied()
            .collect::<Option<Vec<f64>>>()
        else {
            return;
        };
        let mean = acceptance.iter().sum::<f64>() / acceptance.len() as f64;
        let gain = GAIN / (1.0 + self.rounds as f64 / GAIN_HALF_LIFE);
        self.rounds += 1;
        let temperatures: Vec<f64> = betas.iter().map(|b| 1.0 / b).collect();
        let span = temperatures[n - 1] - temperatures[0];
        let mut gaps: Vec<f64> = temperatures
            .windows(2)
            .zip(&acceptance)
            .map(|(w, a)| (w[1] - w[0]) * (gain * (a - mean)).exp())
            .collect();
        let total: f64 = gaps.iter().sum();
        for g in &mut gaps {
            *g *= span / total;
        }
        let mut t = temperatures[0];
        for (r, g) in gaps.iter().enumerate().take(n - 2) {
            t += g;
            betas[r + 1] = 1.0 / t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_that_accepts_more_widens_and_the_ends_stay() {
        let mut betas = vec![1.0, 0.5, 1.0 / 3.0, 0.25];
        let mut tuner = LadderTuner::new(3);
        tuner.update(&mut betas);
        assert_eq!(betas, vec![1.0, 0.5, 1.0 / 3.0, 0.25], "no attempts yet");
        for (i, a) in [0.9, 0.3, 0.3].into_iter().enumerate() {
            tuner.observe(i, a);
        }
        tuner.update(&mut betas);
        assert_eq!((betas[0], betas[3]), (1.0, 0.25));
        assert!(
            1.0 / betas[1] - 1.0 > 1.0,
            "the first gap widened: {betas:?}"
        );
        assert!(betas.windows(2).all(|w| w[1] < w[0]));
    }
}
