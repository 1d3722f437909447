//! The VAE proposal, exact in the extended space `π̃(x, z) = π(x) r(z | x)`.
//!
//! A VAE has no exact marginal density, so an independence proposal `x′ ~ q(x)` cannot be
//! corrected exactly. Instead the chain carries an auxiliary latent z whose conditional
//! target is the encoder `r(z | x)`, and proposes the pair `(x′, z′)` from the decoder's
//! joint: `z′ ~ p(z)`, `x′ ~ p_θ(x | z′)`. The Metropolis–Hastings ratio on the pair is
//!
//! `log α = −βΔU + log r(z′ | x′) − log r(z | x) + log p(z) + log p_θ(x | z) − log p(z′) − log p_θ(x′ | z′)`.
//!
//! Moves of x that do not come from this proposal leave z stale; a Gibbs refresh
//! `z ~ r(z | x)` restores the extended target. Since nothing but this proposal reads z, the
//! refreshes after several other moves collapse into one, made just before the next VAE move
//! (a chain state holds no latent after another move is accepted, see
//! [`ChainState`]).

use std::borrow::Borrow;

use serde::{Deserialize, Serialize};

use super::{decode, encode, energies_or_nan, Batch, Move, Proposed, Target};
use crate::error::{Error, Result};
use crate::generator::Vae;
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

/// The auxiliary latent of a chain in the extended space, with the log-densities of the
/// pair it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtendedLatent {
    /// z.
    pub z: Vec<f64>,
    /// log r(z | x), the encoder density.
    pub log_r: f64,
    /// log p(z), the prior.
    pub log_p_z: f64,
    /// log p_θ(x | z), the decoder density.
    pub log_p_x_given_z: f64,
}

impl ExtendedLatent {
    /// The part of the Hastings term that belongs to this pair as the *current* state:
    /// `log p(z) + log p_θ(x | z) − log r(z | x)`. The proposed pair enters with the
    /// opposite sign, so `log_hastings = current.weight() − proposed.weight()`.
    pub fn weight(&self) -> f64 {
        self.log_p_z + self.log_p_x_given_z - self.log_r
    }
}

/// The Hastings term of a VAE move from `current` to `proposed`:
/// `log r(z′ | x′) − log r(z | x) + log p(z) + log p_θ(x | z) − log p(z′) − log p_θ(x′ | z′)`.
pub fn vae_log_hastings(current: &ExtendedLatent, proposed: &ExtendedLatent) -> f64 {
    current.weight() - proposed.weight()
}

/// One buffered draw of the VAE proposal.
#[derive(Debug, Clone, PartialEq)]
struct VaeDraw {
    /// x′.
    x: Vec<f64>,
    /// z′ and the log-densities of the pair.
    latent: ExtendedLatent,
    /// U(x′).
    energy: f64,
    /// Energy evaluations made to produce it (the whole batch when it refilled the buffer).
    evaluations: u64,
}

/// Draws from the decoder's joint, with everything the acceptance test needs, and their
/// energies (evaluated in parallel when the buffer is filled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct VaeBuffer {
    x: Vec<f64>,
    latents: Vec<ExtendedLatent>,
    energy: Vec<f64>,
    next: usize,
}

impl VaeBuffer {
    /// The next draw, refilling the buffer with `batch` draws first if it is empty.
    fn take(
        &mut self,
        vae: &Vae,
        batch: usize,
        rng: &mut ChainRng,
        energies: impl Fn(&[f64]) -> Vec<f64>,
    ) -> Result<VaeDraw> {
        let mut evaluated = 0;
        if self.next >= self.latents.len() {
            let joint = vae.sample_joint(batch, rng)?;
            let log_r = vae.encoder_log_prob(&joint.x, &joint.z)?;
            let l = vae.latent_dim();
            self.latents = (0..batch)
                .map(|i| ExtendedLatent {
                    z: joint.z[i * l..(i + 1) * l].to_vec(),
                    log_r: log_r[i],
                    log_p_z: joint.log_p_z[i],
                    log_p_x_given_z: joint.log_p_x_given_z[i],
                })
                .collect();
            self.energy = energies(&joint.x);
            self.x = joint.x;
            self.next = 0;
            evaluated = batch as u64;
        }
        let i = self.next;
        self.next += 1;
        let d = self.x.len() / self.latents.len();
        Ok(VaeDraw {
            x: self.x[i * d..(i + 1) * d].to_vec(),
            latent: self.latents[i].clone(),
            energy: self.energy[i],
            evaluations: evaluated,
        })
    }
}

/// The VAE move in the extended space, drawing `batch` pairs per decoder call. Holds the VAE
/// owned or borrowed (`&Vae`).
pub struct VaeMove<V: Borrow<Vae>> {
    vae: V,
    batch: usize,
    buffer: VaeBuffer,
}

impl<V: Borrow<Vae>> VaeMove<V> {
    /// The VAE move drawing `batch` pairs `(x′, z′)` per call of the decoder.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `batch == 0`.
    pub fn new(vae: V, batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(Error::InvalidArgument {
                name: "batch".into(),
                message: "must be positive".into(),
            });
        }
        Ok(Self {
            vae,
            batch,
            buffer: VaeBuffer::default(),
        })
    }

    /// The VAE it proposes from.
    pub fn vae(&self) -> &Vae {
        self.vae.borrow()
    }
}

impl<V: Borrow<Vae>> Move for VaeMove<V> {
    fn name(&self) -> &str {
        "vae"
    }

    fn is_batched(&self) -> bool {
        true
    }

    /// Refreshes the stale latents `z ~ r(z | x)` of the chains in one encoder call, then
    /// gives each chain the next pair `(x′, z′)` of the buffer.
    fn propose_batch(
        &mut self,
        chains: &mut [&mut ChainState],
        _steps: &[f64],
        target: &Target,
        rng: &mut ChainRng,
    ) -> Result<Batch> {
        let vae = self.vae.borrow();
        let stale: Vec<usize> = (0..chains.len())
            .filter(|&i| chains[i].latent.is_none())
            .collect();
        if !stale.is_empty() {
            let x: Vec<f64> = stale
                .iter()
                .flat_map(|&i| chains[i].x.iter().copied())
                .collect();
            for (&i, latent) in stale.iter().zip(refresh_latents(vae, &x, rng)?) {
                chains[i].latent = Some(latent);
            }
        }
        let mut evaluations = 0;
        let mut proposals = Vec::with_capacity(chains.len());
        for state in chains.iter() {
            let draw = self.buffer.take(vae, self.batch, rng, |xs| {
                energies_or_nan(target.potential, xs)
            })?;
            evaluations += draw.evaluations;
            let current = state
                .latent
                .as_ref()
                .ok_or_else(|| Error::InvalidArgument {
                    name: "vae".into(),
                    message: "a chain has no extended-space latent".into(),
                })?;
            let log_hastings = vae_log_hastings(current, &draw.latent);
            proposals.push(Proposed {
                energy: Some(draw.energy),
                latent: Some(draw.latent),
                ..Proposed::new(draw.x, log_hastings)
            });
        }
        Ok(Batch {
            proposals,
            evaluations,
        })
    }

    fn save(&self) -> Result<Vec<u8>> {
        encode(self.name(), &self.buffer)
    }

    fn restore(&mut self, saved: &[u8]) -> Result<()> {
        self.buffer = decode(self.name(), saved)?;
        Ok(())
    }
}

/// Gibbs refresh `z ~ r(z | x)` for a batch of configurations `x = [n × dim]`, with the
/// log-densities of the refreshed pairs.
fn refresh_latents(vae: &Vae, x: &[f64], rng: &mut ChainRng) -> Result<Vec<ExtendedLatent>> {
    let (z, log_r) = vae.sample_encoder(x, rng)?;
    let log_p_x_given_z = vae.decoder_log_prob(x, &z)?;
    let l = vae.latent_dim();
    Ok(log_r
        .iter()
        .enumerate()
        .map(|(i, &log_r)| {
            let zi = &z[i * l..(i + 1) * l];
            ExtendedLatent {
                z: zi.to_vec(),
                log_r,
                log_p_z: standard_normal_log_density(zi),
                log_p_x_given_z: log_p_x_given_z[i],
            }
        })
        .collect())
}

/// log 𝒩(z; 0, I).
fn standard_normal_log_density(z: &[f64]) -> f64 {
    -0.5 * z.iter().map(|v| v * v).sum::<f64>()
        - 0.5 * z.len() as f64 * (2.0 * std::f64::consts::PI).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hastings_term_is_the_extended_space_ratio() {
        let current = ExtendedLatent {
            z: vec![0.1],
            log_r: -1.0,
            log_p_z: -2.0,
            log_p_x_given_z: -3.0,
        };
        let proposed = ExtendedLatent {
            z: vec![0.2],
            log_r: -0.5,
            log_p_z: -1.5,
            log_p_x_given_z: -4.0,
        };
        // log r(z'|x') − log r(z|x) + log p(z) + log p(x|z) − log p(z') − log p(x'|z')
        let expected = -0.5 - (-1.0) + (-2.0) + (-3.0) - (-1.5) - (-4.0);
        assert!((vae_log_hastings(&current, &proposed) - expected).abs() < 1e-15);
        assert_eq!(vae_log_hastings(&current, &current), 0.0);
    }

    #[test]
    fn prior_density_matches_the_closed_form() {
        let lp = standard_normal_log_density(&[0.0, 1.0]);
        assert!((lp - (-0.5 - (2.0 * std::f64::consts::PI).ln())).abs() < 1e-15);
    }
}
