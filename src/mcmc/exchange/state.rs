//! The state of replica exchange inside a sampler: the ladder in force, the swap stream,
//! which replica is where, and the counts the report is made of. It lives in the sampler's
//! checkpoint, so a resumed run swaps exactly as the uninterrupted one.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::config::ExchangeConfig;
use super::ladder::LadderTuner;
use super::report::{ExchangeReport, PairReport, RungReport};
use crate::mcmc::accept::accept;
use crate::rng::{auxiliary_stream, ChainRng, Purpose};

/// Attempts and acceptances of one pair of neighbouring rungs, over all ladders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PairCounts {
    pub(super) attempted: u64,
    pub(super) accepted: u64,
    /// Sum of min(1, α) over the attempts: the expected acceptance, with less noise.
    pub(super) probability_sum: f64,
}

/// Where a replica is on its way round the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Not at the bottom yet (it started higher up).
    Unanchored,
    /// Left the bottom, not at the top yet.
    Rising,
    /// Reached the top after the bottom: back at the bottom completes a round trip.
    Falling,
}

/// Replica exchange between the sampler's chains. Chains are laid out ladder by ladder:
/// chain `l · R + r` is rung `r` of ladder `l`, always at β_r; configurations (with their
/// cached generator terms) move between chains when swapped, step sizes stay with the rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Exchange {
    /// β per rung, as tuned so far (fixed after burn-in).
    betas: Vec<f64>,
    swap_interval: usize,
    rng: ChainRng,
    /// Per chain: the replica (a label that follows a configuration through swaps) it holds.
    replica_at: Vec<usize>,
    /// Per replica.
    phase: Vec<Phase>,
    /// Per replica: bottom → top → bottom trips completed in production.
    round_trips: Vec<u64>,
    /// Per replica × rung: production rounds spent there.
    occupancy: Vec<u64>,
    /// Per pair of neighbours, in production and in burn-in.
    production_pairs: Vec<PairCounts>,
    burn_in_pairs: Vec<PairCounts>,
    /// Per rung: the sum over production rounds and ladders of U at that rung.
    energy_sums: Vec<f64>,
    /// Swap rounds made: in all, and in production.
    rounds: u64,
    production_rounds: u64,
    /// Present while the ladder is being tuned.
    tuner: Option<LadderTuner>,
    /// Whether the ladder was tuned (for the report).
    tuned: bool,
}

impl Exchange {
    /// Replica exchange between `ladders` ladders of the config's rungs, swapping from the
    /// `seed`'s own stream.
    pub(crate) fn new(config: &ExchangeConfig, ladders: usize, seed: u64) -> Self {
        let rungs = config.rungs();
        let chains = ladders * rungs;
        let mut phase = vec![Phase::Unanchored; chains];
        for l in 0..ladders {
            phase[l * rungs] = Phase::Rising;
        }
        Self {
            betas: config.betas.clone(),
            swap_interval: config.swap_interval,
            rng: auxiliary_stream(seed, Purpose::ReplicaSwaps),
            replica_at: (0..chains).collect(),
            phase,
            round_trips: vec![0; chains],
            occupancy: vec![0; chains * rungs],
            production_pairs: vec![PairCounts::default(); rungs - 1],
            burn_in_pairs: vec![PairCounts::default(); rungs - 1],
            energy_sums: vec![0.0; rungs],
            rounds: 0,
            production_rounds: 0,
            tuner: config.tune.then(|| LadderTuner::new(rungs - 1)),
            tuned: config.tune,
        }
    }

    /// Whether this state fits `chains` chains of ladders of `config`'s rungs (every length,
    /// and the replica labels a permutation): what a resume checks of a checkpoint's state, so
    /// that a damaged one is refused rather than indexed out of range.
    pub(crate) fn fits(&self, config: &ExchangeConfig, chains: usize) -> bool {
        let rungs = config.rungs();
        let mut seen = vec![false; chains];
        let permutation = self.replica_at.len() == chains
            && self
                .replica_at
                .iter()
                .all(|&r| r < chains && !std::mem::replace(&mut seen[r], true));
        permutation
            && rungs >= 2
            && chains % rungs == 0
            && self.betas.len() == rungs
            && self.phase.len() == chains
            && self.round_trips.len() == chains
            && self.occupancy.len() == chains * rungs
            && self.production_pairs.len() == rungs - 1
            && self.burn_in_pairs.len() == rungs - 1
            && self.energy_sums.len() == rungs
            && self.tuner.as_ref().is_none_or(|t| t.pairs() == rungs - 1)
    }

    /// β of every rung, as now in force.
    pub(crate) fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// Rungs per ladder.
    pub(crate) fn rungs(&self) -> usize {
        self.betas.len()
    }

    /// Steps between swap rounds.
    pub(crate) fn swap_interval(&self) -> usize {
        self.swap_interval
    }

    /// One swap round: the even pairs of every ladder, or the odd ones, alternately. `energy`
    /// holds U of every chain's configuration; returns the pairs of chains whose
    /// configurations swap (disjoint, so they may be swapped in any order). In burn-in
    /// (`production` false) the round tunes the ladder, when tuning; the first production
    /// round freezes it.
    pub(crate) fn round(&mut self, energy: &[f64], production: bool) -> Vec<(usize, usize)> {
        let rungs = self.rungs();
        let ladders = energy.len() / rungs;
        if production {
            self.tuner = None;
        }
        let parity = (self.rounds % 2) as usize;
        self.rounds += 1;
        let mut swaps = Vec::new();
        let mut energy_after = energy.to_vec();
        for l in 0..ladders {
            for i in (parity..rungs - 1).step_by(2) {
                let (a, b) = (l * rungs + i, l * rungs + i + 1);
                let log_alpha = (self.betas[i] - self.betas[i + 1]) * (energy[a] - energy[b]);
                // One uniform per attempt, drawn whatever α is, so that the stream does not
                // depend on the outcome.
                let accepted = accept(log_alpha, self.rng.random::<f64>());
                let probability = log_alpha.min(0.0).exp();
                let counts = if production {
                    &mut self.production_pairs[i]
                } else {
                    &mut self.burn_in_pairs[i]
                };
                counts.attempted += 1;
                counts.accepted += u64::from(accepted);
                counts.probability_sum += probability;
                if let Some(t) = &mut self.tuner {
                    t.observe(i, probability);
                }
                if accepted {
                    swaps.push((a, b));
                    self.replica_at.swap(a, b);
                    energy_after.swap(a, b);
                }
            }
        }
        if let Some(t) = &mut self.tuner {
            t.update(&mut self.betas);
        }
        if production {
            self.production_rounds += 1;
        }
        for (chain, &replica) in self.replica_at.iter().enumerate() {
            let rung = chain % rungs;
            if production {
                self.occupancy[replica * rungs + rung] += 1;
                self.energy_sums[rung] += energy_after[chain];
            }
            let phase = &mut self.phase[replica];
            if rung == 0 {
                if *phase == Phase::Falling && production {
                    self.round_trips[replica] += 1;
                }
                *phase = Phase::Rising;
            } else if rung + 1 == rungs && *phase == Phase::Rising {
                *phase = Phase::Falling;
            }
        }
        swaps
    }

    /// What the exchange did, with `rung_moves` the per-rung detail the sampler adds.
    pub(crate) fn report(&self, rung_moves: Vec<RungReport>) -> ExchangeReport {
        let rungs = self.rungs();
        let pair = |i: usize| {
            let p = &self.production_pairs[i];
            PairReport {
                rungs: (i, i + 1),
                attempted: p.attempted,
                accepted: p.accepted,
                acceptance: (p.attempted > 0).then(|| p.probability_sum / p.attempted as f64),
                burn_in_acceptance: (self.burn_in_pairs[i].attempted > 0).then(|| {
                    self.burn_in_pairs[i].probability_sum / self.burn_in_pairs[i].attempted as f64
                }),
            }
        };
        let ladders = self.replica_at.len() / rungs;
        let rounds = self.production_rounds;
        ExchangeReport {
            betas: self.betas.clone(),
            temperature_factors: self.betas.iter().map(|b| self.betas[0] / b).collect(),
            tuned: self.tuned,
            ladders,
            swap_interval: self.swap_interval,
            production_rounds: rounds,
            pairs: (0..rungs - 1).map(pair).collect(),
            round_trips: self.round_trips.clone(),
            occupancy: self
                .occupancy
                .chunks_exact(rungs)
                .map(|o| o.iter().map(|&n| n as f64 / rounds.max(1) as f64).collect())
                .collect(),
            mean_energy: self
                .energy_sums
                .iter()
                .map(|s| (rounds > 0).then(|| s / (rounds as f64 * ladders as f64)))
                .collect(),
            rungs: rung_moves,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tune: bool) -> ExchangeConfig {
        ExchangeConfig {
            betas: vec![1.0, 0.5, 0.25],
            swap_interval: 1,
            tune,
        }
    }

    #[test]
    fn downhill_swaps_always_happen_and_rounds_alternate() {
        let mut x = Exchange::new(&config(false), 1, 3);
        // The hot rung holds the lower energy: (β₀ − β₁)(U₀ − U₁) > 0, always accepted.
        assert_eq!(x.round(&[5.0, 1.0, 0.0], true), vec![(0, 1)]);
        // The next round tries the odd pair (1–2) only.
        let swaps = x.round(&[1.0, 7.0, 5.0], true);
        assert_eq!(swaps, vec![(1, 2)], "1–2 downhill");
        assert_eq!(x.replica_at, vec![1, 2, 0]);
    }

    #[test]
    fn a_round_trip_is_bottom_top_bottom() {
        let mut x = Exchange::new(&config(false), 1, 3);
        // Replica 0 (at the bottom) moves up twice, then down twice, always downhill.
        x.round(&[5.0, 1.0, 0.0], true); // 0–1: replicas [1, 0, 2]
        x.round(&[1.0, 5.0, 0.0], true); // 1–2: replicas [1, 2, 0], replica 0 at the top
        assert_eq!(x.round_trips[0], 0);
        x.round(&[5.0, 0.0, 9.0], true); // 0–1: replicas [2, 1, 0]
        x.round(&[0.0, 9.0, 1.0], true); // 1–2: replicas [2, 0, 1]
        x.round(&[9.0, 1.0, 0.0], true); // 0–1: replicas [0, 2, 1], replica 0 back down
        assert_eq!(x.replica_at, vec![0, 2, 1]);
        assert_eq!(x.round_trips[0], 1);
        assert_eq!(x.report(Vec::new()).occupancy[0].iter().sum::<f64>(), 1.0);
    }

    #[test]
    fn a_state_fits_only_its_own_ladder_and_chains() {
        let mut x = Exchange::new(&config(false), 2, 1);
        assert!(x.fits(&config(false), 6));
        assert!(!x.fits(&config(false), 9), "three ladders, not two");
        let mut four = config(false);
        four.betas.push(0.1);
        assert!(!x.fits(&four, 8));
        x.replica_at[0] = 1; // replica 1 twice, replica 0 nowhere
        assert!(!x.fits(&config(false), 6));
    }

    #[test]
    fn the_ladder_freezes_at_production() {
        let mut x = Exchange::new(&config(true), 2, 1);
        for _ in 0..20 {
            x.round(&[0.0, 3.0, 0.1, 0.0, 3.0, 0.1], false);
        }
        let tuned = x.betas.clone();
        assert_ne!(tuned, config(true).betas);
        x.round(&[0.0, 3.0, 0.1, 0.0, 3.0, 0.1], true);
        x.round(&[0.0, 3.0, 0.1, 0.0, 3.0, 0.1], true);
        assert_eq!(x.betas, tuned);
    }
}
