//! A variational autoencoder with Gaussian encoder and decoder, as a generator whose
//! marginal density is estimated (IWAE) and whose joint density is exact.
//!
//! Notation: prior p(z) = 𝒩(0, I), decoder p_θ(x | z) = 𝒩(μ_θ(z), σ_θ(z)²), encoder
//! r_φ(z | x) = 𝒩(m_φ(x), s_φ(x)²). The sampler uses the joint (x, z) exactly in an extended
//! space, with the encoder as the auxiliary distribution (ARCHITECTURE.md §4).

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::mlp::{add_parameters, parameter_count, Activation, Mlp, MAX_MODEL_DIM};
use super::tensor::{batch_to_tensor, standard_normal, tensor_to_vec};
use super::{DeviceChoice, Generator, Precision, Samples};
use crate::error::{Error, Result};
use crate::rng::{stream, ChainRng};

/// Bound on every log standard deviation: keeps a collapsing variance from producing
/// infinite densities in one step.
const LOG_STD_BOUND: f64 = 7.0;

/// How the decoder's variance is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DecoderVariance {
    /// Predicted per coordinate by the decoder network.
    Learned,
    /// A fixed standard deviation for every coordinate.
    Fixed {
        /// The standard deviation.
        std: f64,
    },
}

/// The architecture of a VAE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Number of coordinates of x.
    pub dim: usize,
    /// Number of latent coordinates.
    pub latent_dim: usize,
    /// Hidden layer sizes of encoder and decoder.
    pub hidden: Vec<usize>,
    /// Hidden-layer non-linearity.
    #[serde(default)]
    pub activation: Activation,
    /// Decoder variance.
    pub decoder_variance: DecoderVariance,
    /// Parameter precision.
    #[serde(default)]
    pub precision: Precision,
    /// Importance samples K of the IWAE estimate behind `log_prob` and `sample`'s log q.
    pub iwae_samples: usize,
}

impl VaeConfig {
    /// A VAE with learned decoder variance, tanh hidden layers and K = 64.
    pub fn new(dim: usize, latent_dim: usize, hidden: &[usize]) -> Self {
        Self {
            dim,
            latent_dim,
            hidden: hidden.to_vec(),
            activation: Activation::Tanh,
            decoder_variance: DecoderVariance::Learned,
            precision: Precision::Float32,
            iwae_samples: 64,
        }
    }

    /// The same architecture in another precision.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |name: &str, message: String| {
            Err(Error::InvalidArgument {
                name: name.into(),
                message,
            })
        };
        if self.dim == 0 || self.latent_dim == 0 {
            return bad("latent_dim", "dim and latent_dim must be positive".into());
        }
        if self.hidden.contains(&0) {
            return bad("hidden", "hidden layer sizes must be positive".into());
        }
        if self.dim > MAX_MODEL_DIM || self.latent_dim > MAX_MODEL_DIM {
            return bad(
                "latent_dim",
                format!("dim and latent_dim must be at most {MAX_MODEL_DIM}"),
            );
        }
        let mut parameters = 0usize;
        for (input, output) in [
            (self.dim, self.latent_dim.checked_mul(2)),
            (self.latent_dim, self.dim.checked_mul(2)),
        ] {
            let count = output.and_then(|o| parameter_count(input, &self.hidden, o));
            if let Err(m) = add_parameters(&mut parameters, count) {
                return bad("hidden", m);
            }
        }
        if self.iwae_samples == 0 {
            return bad("iwae_samples", "must be positive".into());
        }
        if let DecoderVariance::Fixed { std } = self.decoder_variance {
            if !(std > 0.0 && std.is_finite()) {
                return bad(
                    "decoder_variance.std",
                    format!("must be positive, got {std}"),
                );
            }
        }
        Ok(())
    }
}

/// Draws from the joint p(z) p_θ(x | z), with both log-densities.
#[derive(Debug, Clone, PartialEq)]
pub struct JointSamples {
    /// Configurations, `[n × dim]`.
    pub x: Vec<f64>,
    /// Latents, `[n × latent_dim]`.
    pub z: Vec<f64>,
    /// log p(z).
    pub log_p_z: Vec<f64>,
    /// log p_θ(x | z).
    pub log_p_x_given_z: Vec<f64>,
}

/// A variational autoencoder: an inexact-density [`Generator`] with an exact joint.
#[derive(Debug)]
pub struct Vae {
    config: VaeConfig,
    vs: nn::VarStore,
    encoder: Mlp,
    decoder: Mlp,
    kind: Kind,
    device: Device,
}

/// `Σ_d log 𝒩(x_d; μ_d, e^{2 s_d})` per row, in float64.
pub(crate) fn gaussian_log_prob(x: &Tensor, mean: &Tensor, log_std: &Tensor) -> Tensor {
    let z = (x - mean) * (-log_std).exp();
    let d = x.size()[x.dim() - 1] as f64;
    (z.square() * -0.5 - log_std).sum_dim_intlist(-1, false, Kind::Double)
        - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
}

impl Vae {
    /// A new VAE; hidden weights from libtorch's generator (seed it with `tch::manual_seed`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid config or device.
    pub fn new(config: VaeConfig, device: DeviceChoice) -> Result<Self> {
        config.validate()?;
        let device = device.device()?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = Mlp::new(
            &(&root / "encoder"),
            config.dim,
            &config.hidden,
            2 * config.latent_dim,
            config.activation,
        );
        let out = match config.decoder_variance {
            DecoderVariance::Learned => 2 * config.dim,
            DecoderVariance::Fixed { .. } => config.dim,
        };
        let decoder = Mlp::new(
            &(&root / "decoder"),
            config.latent_dim,
            &config.hidden,
            out,
            config.activation,
        );
        let kind = config.precision.kind();
        vs.set_kind(kind);
        Ok(Self {
            config,
            vs,
            encoder,
            decoder,
            kind,
            device,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.config.latent_dim
    }

    pub(crate) fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub(crate) fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn device(&self) -> Device {
        self.device
    }

    fn bounded(log_std: Tensor) -> Tensor {
        (log_std / LOG_STD_BOUND).tanh() * LOG_STD_BOUND
    }

    /// Encoder mean and log-std.
    pub(crate) fn encode_t(&self, x: &Tensor) -> (Tensor, Tensor) {
        let out = self.encoder.forward(x).chunk(2, -1);
        (
            out[0].shallow_clone(),
            Self::bounded(out[1].shallow_clone()),
        )
    }

    /// Decoder mean and log-std.
    pub(crate) fn decode_t(&self, z: &Tensor) -> (Tensor, Tensor) {
        match self.config.decoder_variance {
            DecoderVariance::Learned => {
                let out = self.decoder.forward(z).chunk(2, -1);
                (
                    out[0].shallow_clone(),
                    Self::bounded(out[1].shallow_clone()),
                )
            }
            DecoderVariance::Fixed { std } => {
                let mean = self.decoder.forward(z);
                let log_std = mean.full_like(std.ln());
                (mean, log_std)
            }
        }
    }

    /// log 𝒩(z; 0, I) per row.
    pub(crate) fn prior_log_prob_t(z: &Tensor) -> Tensor {
        let zero = z.zeros_like();
        gaussian_log_prob(z, &zero, &zero)
    }

    fn noise(&self, rows: usize, cols: usize, rng: &mut ChainRng) -> Result<Tensor> {
        standard_normal(rows, cols, rng, self.kind, self.device)
    }

    fn latents(&self, z: &[f64]) -> Result<Tensor> {
        batch_to_tensor(z, self.config.latent_dim, self.kind, self.device)
    }

    fn configurations(&self, x: &[f64]) -> Result<Tensor> {
        batch_to_tensor(x, self.config.dim, self.kind, self.device)
    }

    /// Draws `(x, z) ~ p(z) p_θ(x | z)` with log p(z) and log p_θ(x | z).
    ///
    /// # Errors
    /// [`Error::Torch`] if libtorch fails.
    pub fn sample_joint(&self, n: usize, rng: &mut ChainRng) -> Result<JointSamples> {
        let z = self.noise(n, self.config.latent_dim, rng)?;
        let eps = self.noise(n, self.config.dim, rng)?;
        let (x, lpxz) = tch::no_grad(|| {
            let (mean, log_std) = self.decode_t(&z);
            let x = &mean + log_std.exp() * &eps;
            let lp = gaussian_log_prob(&x, &mean, &log_std);
            (x, lp)
        });
        let lpz = Self::prior_log_prob_t(&z);
        Ok(JointSamples {
            x: tensor_to_vec(&x)?,
            z: tensor_to_vec(&z)?,
            log_p_z: tensor_to_vec(&lpz)?,
            log_p_x_given_z: tensor_to_vec(&lpxz)?,
        })
    }

    /// log p_θ(x | z) for paired rows.
    ///
    /// # Errors
    /// [`Error::Dimension`] / [`Error::NonFinite`] for bad input, or different row counts.
    pub fn decoder_log_prob(&self, x: &[f64], z: &[f64]) -> Result<Vec<f64>> {
        let (x, z) = self.pair(x, z)?;
        let lp = tch::no_grad(|| {
            let (mean, log_std) = self.decode_t(&z);
            gaussian_log_prob(&x, &mean, &log_std)
        });
        tensor_to_vec(&lp)
    }

    /// log r_φ(z | x) for paired rows: the encoder density.
    ///
    /// # Errors
    /// As [`Vae::decoder_log_prob`].
    pub fn encoder_log_prob(&self, x: &[f64], z: &[f64]) -> Result<Vec<f64>> {
        let (x, z) = self.pair(x, z)?;
        let lp = tch::no_grad(|| {
            let (mean, log_std) = self.encode_t(&x);
            gaussian_log_prob(&z, &mean, &log_std)
        });
        tensor_to_vec(&lp)
    }

    /// Draws z ~ r_φ(z | x) for each row of x; returns `(z, log r(z | x))`.
    ///
    /// # Errors
    /// As [`Vae::decoder_log_prob`].
    pub fn sample_encoder(&self, x: &[f64], rng: &mut ChainRng) -> Result<(Vec<f64>, Vec<f64>)> {
        let x = self.configurations(x)?;
        let n = x.size()[0] as usize;
        let eps = self.noise(n, self.config.latent_dim, rng)?;
        let (z, lr) = tch::no_grad(|| {
            let (mean, log_std) = self.encode_t(&x);
            let z = &mean + log_std.exp() * &eps;
            let lr = gaussian_log_prob(&z, &mean, &log_std);
            (z, lr)
        });
        Ok((tensor_to_vec(&z)?, tensor_to_vec(&lr)?))
    }

    fn pair(&self, x: &[f64], z: &[f64]) -> Result<(Tensor, Tensor)> {
        let x = self.configurations(x)?;
        let z = self.latents(z)?;
        if x.size()[0] != z.size()[0] {
            return Err(Error::Dimension {
                what: "rows of z against rows of x".into(),
                expected: x.size()[0] as usize,
                got: z.size()[0] as usize,
            });
        }
        Ok((x, z))
    }

    /// The importance-weighted estimate of log p_θ(x) with K encoder samples:
    /// `log (1/K) Σ_k p(z_k) p_θ(x | z_k) / r_φ(z_k | x)`, z_k ~ r_φ(· | x). It is a lower bound
    /// in expectation that tightens as K grows.
    ///
    /// # Errors
    /// As [`Vae::decoder_log_prob`].
    pub fn iwae_log_prob(&self, x: &[f64], k: usize, rng: &mut ChainRng) -> Result<Vec<f64>> {
        let x = self.configurations(x)?;
        let n = x.size()[0];
        let l = self.config.latent_dim as i64;
        let eps = self
            .noise(n as usize * k, l as usize, rng)?
            .reshape([k as i64, n, l]);
        let out = tch::no_grad(|| {
            let (mean, log_std) = self.encode_t(&x);
            let z = &mean.unsqueeze(0) + log_std.exp().unsqueeze(0) * &eps; // [K, n, l]
            let log_r = gaussian_log_prob(&z, &mean.unsqueeze(0), &log_std.unsqueeze(0));
            let (dm, dl) = self.decode_t(&z);
            let log_px = gaussian_log_prob(&x.unsqueeze(0), &dm, &dl);
            let log_w = Self::prior_log_prob_t(&z) + log_px - log_r; // [K, n]
            log_w.logsumexp([0], false) - (k as f64).ln()
        });
        tensor_to_vec(&out)
    }
}

impl Generator for Vae {
    fn dim(&self) -> usize {
        self.config.dim
    }

    /// Joint draws; `log_q` is the IWAE estimate of log p_θ(x) with the configured K, made
    /// with the same stream.
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples> {
        let joint = self.sample_joint(n, rng)?;
        let log_q = self.iwae_log_prob(&joint.x, self.config.iwae_samples, rng)?;
        Ok(Samples {
            dim: self.config.dim,
            x: joint.x,
            log_q,
        })
    }

    /// The IWAE estimate with the configured K, drawn from a fixed stream so that the same x
    /// always gets the same value.
    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.iwae_log_prob(x, self.config.iwae_samples, &mut stream(0x1_4AE, 0))
    }

    fn exact_density(&self) -> bool {
        false
    }
}
