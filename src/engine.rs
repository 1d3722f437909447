//! boltzgen as a proposal engine inside another Monte Carlo code.
//!
//! A host code owns its energies, its local moves and its I/O. It asks the engine for a
//! learned global move and gets the proposed configuration with its Hastings term; it
//! computes U itself and accepts with the usual rule. Nothing else is imposed on it.
//!
//! The move is the independence proposal of a generator with an exact density (a boltzgen
//! flow, a [`DiagonalGaussian`](crate::generator::DiagonalGaussian), or a TorchScript flow
//! from PyTorch): `x′ ~ q`, `log_hastings = log q(x) − log q(x′)`, and the host accepts with
//! probability `min(1, exp(−β[U(x′) − U(x)] + log_hastings))` ([`log_acceptance`], [`accept()`]).
//!
//! What the engine does for speed, none of which changes the move:
//! - draws come from a buffer filled by one generator call of [`EngineConfig::buffer`]
//!   configurations;
//! - `log q` of the configurations of the previous call (the states passed in and the
//!   proposals handed out) is remembered, so a host that passes back either the state it
//!   kept or the proposal it accepted costs no `log_prob` evaluation. Only a state that came
//!   from the host's own moves needs one, and a batch of those is evaluated in one call.
//! - For a mean-free flow (particle systems), each draw is moved to the centre of mass of the
//!   state it replaces, so the proposal keeps the host's centre of mass; for an
//!   internal-coordinate flow (molecules), it takes the state's position and orientation (see
//!   [`Generator::place_like`]).
//!
//! A host loop, with its own double-well energy and its own random walk:
//!
//! ```
//! use boltzgen::engine::{accept, log_acceptance, EngineConfig, ProposalEngine};
//! use boltzgen::generator::DiagonalGaussian;
//! use rand::{RngExt, SeedableRng};
//!
//! // The host's energy: U(x, y) = x⁴ − 6x² + x + ½y², at β = 1.
//! let energy = |x: &[f64]| x[0].powi(4) - 6.0 * x[0].powi(2) + x[0] + 0.5 * x[1] * x[1];
//! // Any generator with an exact density; a trained flow would be `ProposalEngine::open`.
//! let proposals = DiagonalGaussian::new(vec![-1.7, 0.0], vec![1.2, 1.0])?;
//! let mut engine = ProposalEngine::new(Box::new(proposals), EngineConfig::default())?;
//!
//! let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
//! let mut x = vec![-1.7, 0.0];
//! let mut u = energy(&x);
//! let (mut accepted, mut left) = (0, 0);
//! for step in 0..20_000 {
//!     let (x_new, log_hastings) = if step % 4 == 0 {
//!         // A learned global move, with its Hastings term.
//!         let p = engine.propose(&x)?;
//!         (p.x, p.log_hastings)
//!     } else {
//!         // The host's own symmetric move.
//!         (x.iter().map(|v| v + 0.5 * (rng.random::<f64>() - 0.5)).collect(), 0.0)
//!     };
//!     let u_new = energy(&x_new);
//!     if accept(log_acceptance(1.0, u, u_new, log_hastings), rng.random()) {
//!         if step % 4 == 0 { accepted += 1; }
//!         x = x_new;
//!         u = u_new;
//!     }
//!     left += usize::from(x[0] < 0.0);
//! }
//! // About 96.7 % of the mass is in the left well.
//! assert!((left as f64 / 20_000.0 - 0.967).abs() < 0.03);
//! assert!(accepted > 1000);
//! # Ok::<(), boltzgen::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::generator::store::{load_flow, read_model_file, ModelSpec};
use crate::generator::{DeviceChoice, Generator, TorchScriptGenerator};
use crate::mcmc::moves::flow::{independence_log_hastings, DrawBuffer};
use crate::rng::{stream, ChainRng};

pub use crate::mcmc::{accept, log_acceptance};

/// Settings of a [`ProposalEngine`]; every field has a default. As TOML (the C ABI takes this
/// as a string):
///
/// ```toml
/// seed = 42        # proposals are a function of the seed and the calls made
/// buffer = 256     # configurations drawn per generator call
/// device = "cpu"   # "auto" (GPU when usable), "cpu" or "cuda"
/// threads = 1      # libtorch intra-op threads (process-wide); unset leaves libtorch's default
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Seed of the engine's own random stream.
    pub seed: u64,
    /// Configurations drawn per generator call (at least 1).
    pub buffer: usize,
    /// Where the model runs.
    pub device: DeviceChoice,
    /// libtorch intra-op threads. This is a process-wide libtorch setting.
    pub threads: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            buffer: 256,
            device: DeviceChoice::Auto,
            threads: None,
        }
    }
}

impl EngineConfig {
    /// Parses the TOML form shown on [`EngineConfig`].
    ///
    /// # Errors
    /// [`Error::Config`] naming the key (and line) of an unknown key or a bad value.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self = crate::io::toml::parse(text, Path::new("engine config"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: &str| Error::Config {
            file: "engine config".into(),
            key: key.into(),
            message: message.into(),
        };
        if self.buffer == 0 {
            return Err(bad("buffer", "must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(bad("threads", "must be at least 1"));
        }
        Ok(())
    }
}

/// A proposed configuration and its Hastings term `log q(x | x′) − log q(x′ | x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineProposal {
    /// x′.
    pub x: Vec<f64>,
    /// `log q(x) − log q(x′)` for the independence proposal.
    pub log_hastings: f64,
}

/// Counters of what the engine did, for a host that wants to see where time goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Configurations proposed.
    pub proposals: u64,
    /// Configurations drawn from the generator (buffer refills).
    pub draws: u64,
    /// Current states whose `log q` had to be evaluated.
    pub log_prob_evaluations: u64,
    /// Current states whose `log q` was remembered from the previous call.
    pub remembered: u64,
}

/// Independence proposals from a generator with an exact density, for a host's own
/// Metropolis–Hastings loop (see the [module docs](self)).
///
/// Not `Sync`: use one engine per thread (the C ABI wraps it in a lock).
pub struct ProposalEngine {
    generator: Box<dyn Generator + Send>,
    config: EngineConfig,
    rng: ChainRng,
    /// The flow move's own buffer of draws ([`crate::mcmc::moves::flow`]).
    draws: DrawBuffer,
    /// `log q` of the configurations seen in the previous call, keyed by their bits.
    known: HashMap<Vec<u64>, f64>,
    stats: EngineStats,
}

impl std::fmt::Debug for ProposalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProposalEngine")
            .field("dim", &self.generator.dim())
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish()
    }
}

fn bits(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

impl ProposalEngine {
    /// An engine around any generator with an exact density.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a generator without an exact density (a VAE) or a
    /// zero-dimensional one; [`Error::Config`] for a bad config.
    pub fn new(generator: Box<dyn Generator + Send>, config: EngineConfig) -> Result<Self> {
        config.validate()?;
        if !generator.exact_density() {
            return Err(Error::InvalidArgument {
                name: "generator".into(),
                message: "the engine's independence proposal needs an exact log q (a flow); \
                          a VAE's log p(x) is an estimate, and its exact move lives in the \
                          extended space (x, z) of boltzgen's own sampler"
                    .into(),
            });
        }
        if generator.dim() == 0 {
            return Err(Error::InvalidArgument {
                name: "generator".into(),
                message: "has no coordinates".into(),
            });
        }
        if let Some(n) = config.threads {
            tch::set_num_threads(n as i32);
        }
        Ok(Self {
            generator,
            rng: stream(config.seed, 0),
            config,
            draws: DrawBuffer::default(),
            known: HashMap::new(),
            stats: EngineStats::default(),
        })
    }

    /// Opens a saved model: a boltzgen flow (`model.json` with its `.safetensors`) or a
    /// TorchScript module (`.pt`, see [`TorchScriptGenerator`]).
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Model`] naming the file for a missing, corrupt or unsupported
    /// model (a VAE included), and as [`ProposalEngine::new`].
    pub fn open(model: &Path, config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let is_torchscript = model
            .extension()
            .is_some_and(|e| e == "pt" || e == "ts" || e == "torchscript");
        let generator: Box<dyn Generator + Send> = if is_torchscript {
            Box::new(TorchScriptGenerator::load(model, config.device)?)
        } else {
            if let ModelSpec::Vae(_) = read_model_file(model)?.model {
                return Err(Error::Model {
                    file: model.to_owned(),
                    message: "holds a VAE, which has no exact density; the engine needs a \
                              flow (VAE moves are available in boltzgen's own sampler)"
                        .into(),
                });
            }
            Box::new(load_flow(model, config.device)?.0)
        };
        Self::new(generator, config)
    }

    /// Coordinates per configuration.
    pub fn dim(&self) -> usize {
        self.generator.dim()
    }

    /// The generator behind the proposals (to reweight with it, or to hand it to boltzgen's
    /// own sampler).
    pub fn generator(&self) -> &dyn Generator {
        self.generator.as_ref()
    }

    /// The settings in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// What the engine has done so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// `log q(x)` of a batch `[n × dim]`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for a length that is not a multiple of `dim`,
    /// [`Error::NonFinite`] for NaN or infinite coordinates.
    pub fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.generator.log_prob(x)
    }

    /// Proposes x′ from the current state `x_current`.
    ///
    /// # Errors
    /// As [`ProposalEngine::propose_batch`].
    pub fn propose(&mut self, x_current: &[f64]) -> Result<EngineProposal> {
        let mut x = vec![0.0; self.dim()];
        let mut log_hastings = [0.0];
        self.propose_batch(x_current, &mut x, &mut log_hastings)?;
        Ok(EngineProposal {
            x,
            log_hastings: log_hastings[0],
        })
    }

    /// Proposes one x′ for each of the `n` current states in `x_current` (`[n × dim]`,
    /// row-major), writing them to `x_proposed` (`[n × dim]`) and their Hastings terms to
    /// `log_hastings` (`[n]`). Row i of the output is a proposal for row i of the input; each
    /// is accepted or rejected on its own.
    ///
    /// # Errors
    /// [`Error::Dimension`] when the slices' lengths disagree with `dim` and each other,
    /// [`Error::NonFinite`] naming the first NaN or infinite coordinate, and whatever the
    /// generator reports. On error the outputs are left unspecified.
    pub fn propose_batch(
        &mut self,
        x_current: &[f64],
        x_proposed: &mut [f64],
        log_hastings: &mut [f64],
    ) -> Result<()> {
        let dim = self.dim();
        let n = log_hastings.len();
        for (what, got) in [
            ("current states (n × dim)", x_current.len()),
            ("proposed states (n × dim)", x_proposed.len()),
        ] {
            if got != n * dim {
                return Err(Error::Dimension {
                    what: format!("{what} for {n} Hastings terms of dimension {dim}"),
                    expected: n * dim,
                    got,
                });
            }
        }
        if let Some(index) = x_current.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("coordinate of current state {}", index / dim),
                index,
            });
        }
        // log q of the current states: remembered, or evaluated together in one call.
        let mut current: Vec<f64> = vec![f64::NAN; n];
        let mut missing = Vec::new();
        for (i, x) in x_current.chunks(dim).enumerate() {
            match self.known.get(&bits(x)) {
                Some(&lq) => current[i] = lq,
                None => missing.push(i),
            }
        }
        if !missing.is_empty() {
            let batch: Vec<f64> = missing
                .iter()
                .flat_map(|&i| x_current[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            for (&i, lq) in missing.iter().zip(self.generator.log_prob(&batch)?) {
                current[i] = lq;
            }
        }
        self.stats.log_prob_evaluations += missing.len() as u64;
        self.stats.remembered += (n - missing.len()) as u64;

        let mut known = HashMap::with_capacity(2 * n);
        for i in 0..n {
            if self.draws.remaining() == 0 {
                self.stats.draws += self.config.buffer as u64;
            }
            let draw = self.draws.next(
                self.generator.as_ref(),
                self.config.buffer,
                &mut self.rng,
                None,
                &mut 0,
            )?;
            let row = &mut x_proposed[i * dim..(i + 1) * dim];
            row.copy_from_slice(draw.x);
            let log_q_new = draw.log_q;
            let x = &x_current[i * dim..(i + 1) * dim];
            self.generator.place_like(row, x)?;
            log_hastings[i] = independence_log_hastings(current[i], log_q_new);
            known.insert(bits(x), current[i]);
            known.insert(bits(row), log_q_new);
        }
        self.known = known;
        self.stats.proposals += n as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::DiagonalGaussian;

    fn gaussian_engine(seed: u64, buffer: usize) -> ProposalEngine {
        let g = DiagonalGaussian::new(vec![0.5, -1.0], vec![1.0, 2.0]).unwrap();
        let config = EngineConfig {
            seed,
            buffer,
            ..EngineConfig::default()
        };
        ProposalEngine::new(Box::new(g), config).unwrap()
    }

    #[test]
    fn hastings_term_is_log_q_current_minus_log_q_proposed() {
        let mut engine = gaussian_engine(1, 8);
        let x = [0.3, 0.7];
        for _ in 0..20 {
            let p = engine.propose(&x).unwrap();
            let lq = engine
                .log_prob(&[x.to_vec(), p.x.clone()].concat())
                .unwrap();
            assert!((p.log_hastings - (lq[0] - lq[1])).abs() < 1e-12);
        }
    }

    #[test]
    fn remembered_log_q_is_used_for_kept_and_accepted_states() {
        let mut engine = gaussian_engine(2, 4);
        let x = vec![0.3, 0.7];
        let p = engine.propose(&x).unwrap();
        assert_eq!(engine.stats().log_prob_evaluations, 1);
        // Rejected: the host passes x again. Accepted: it passes x′.
        let q = engine.propose(&x).unwrap();
        engine.propose(&q.x).unwrap();
        assert_eq!(engine.stats().log_prob_evaluations, 1);
        assert_eq!(engine.stats().remembered, 2);
        // p.x is no longer among the last call's configurations.
        engine.propose(&p.x).unwrap();
        assert_eq!(engine.stats().log_prob_evaluations, 2);
    }

    #[test]
    fn batches_equal_single_calls_and_the_seed_fixes_the_draws() {
        let xs = [0.1, 0.2, -0.3, 0.4, 1.0, -1.0];
        let mut batched = gaussian_engine(5, 4);
        let mut out = vec![0.0; 6];
        let mut lh = vec![0.0; 3];
        batched.propose_batch(&xs, &mut out, &mut lh).unwrap();
        let mut single = gaussian_engine(5, 4);
        for i in 0..3 {
            let p = single.propose(&xs[2 * i..2 * i + 2]).unwrap();
            assert_eq!(p.x, out[2 * i..2 * i + 2]);
            assert!((p.log_hastings - lh[i]).abs() < 1e-12);
        }
        let mut other = gaussian_engine(6, 4);
        assert_ne!(other.propose(&xs[..2]).unwrap().x, out[..2]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut engine = gaussian_engine(3, 4);
        assert!(matches!(
            engine.propose(&[1.0, 2.0, 3.0]),
            Err(Error::Dimension { .. })
        ));
        let err = engine.propose(&[1.0, f64::NAN]).unwrap_err();
        assert!(err.to_string().contains("current state 0"), "{err}");
        let mut out = vec![0.0; 4];
        assert!(engine
            .propose_batch(&[0.0; 4], &mut out, &mut [0.0; 3])
            .is_err());
        assert!(EngineConfig::from_toml("buffer = 0").is_err());
        let err = EngineConfig::from_toml("seed = 1\nbufer = 3").unwrap_err();
        assert!(err.to_string().contains("bufer"), "{err}");
        let c = EngineConfig::from_toml("seed = 9\ndevice = \"cpu\"").unwrap();
        assert_eq!((c.seed, c.buffer, c.device), (9, 256, DeviceChoice::Cpu));
    }
}
