//! Normalizing flows: a standard-normal base pushed through composable invertible layers.
//!
//! Direction convention: the flow maps latent z to configurations, `x = f(z)`. Every layer
//! has `forward(z) -> (x, log|det ∂x/∂z|)` and `inverse(x) -> (z, log|det ∂z/∂x|)`, and
//!
//! `log q(x) = log p_Z(f⁻¹(x)) + log|det J_{f⁻¹}(x)| = log p_Z(z) − log|det J_f(z)|`.
//!
//! Log-determinants are accumulated in float64 whatever the model precision.

mod actnorm;
mod affine;
mod backprop;
mod config;
pub mod internal;
mod permutation;
mod spline;
mod split;
mod uniform;

use tch::{nn, Device, Kind, Tensor};

use super::tensor::{batch_to_tensor, standard_normal, tensor_to_vec};
use super::{DeviceChoice, Generator, Samples};
use crate::error::{Error, Result};
use crate::molecule::ZMatrix;
use crate::rng::ChainRng;

pub use super::mlp::Activation;
pub use config::{BaseSpec, FlowConfig, LayerSpec, MAX_LAYERS};
pub use internal::{CoordinateKind, CoordinateNorm, InternalCoordinates};

pub(crate) use backprop::ParamGrads;

use actnorm::ActNorm;
use affine::AffineCoupling;
use backprop::{FlowTape, LayerTape};
use permutation::Permutation;
use spline::SplineCoupling;
use split::Split;
use uniform::UniformCdf;

/// Rows per libtorch call when sampling or evaluating large batches: bounds peak memory
/// without making per-call overhead visible.
const CHUNK: usize = 65_536;

#[derive(Debug)]
enum Layer {
    Affine(AffineCoupling),
    Spline(SplineCoupling),
    ActNorm(ActNorm),
    Permutation(Permutation),
    Uniform(UniformCdf),
}

impl Layer {
    fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        match self {
            Layer::Affine(l) => l.forward(z),
            Layer::Spline(l) => l.forward(z),
            Layer::ActNorm(l) => l.forward(z),
            Layer::Permutation(l) => l.forward(z),
            Layer::Uniform(l) => l.forward(z),
        }
    }

    fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        match self {
            Layer::Affine(l) => l.inverse(x),
            Layer::Spline(l) => l.inverse(x),
            Layer::ActNorm(l) => l.inverse(x),
            Layer::Permutation(l) => l.inverse(x),
            Layer::Uniform(l) => l.inverse(x),
        }
    }
}

/// A normalizing flow with a standard-normal base: an exact-density [`Generator`].
///
/// ```no_run
/// use boltzgen::generator::{Flow, FlowConfig, Generator, DeviceChoice};
/// let flow = Flow::new(FlowConfig::real_nvp(2, 4, &[32, 32]), DeviceChoice::Cpu).unwrap();
/// let mut rng = boltzgen::rng::stream(1, 0);
/// let s = flow.sample(10, &mut rng).unwrap();
/// let lq = flow.log_prob(&s.x).unwrap();
/// assert!((lq[0] - s.log_q[0]).abs() < 1e-4);
/// ```
#[derive(Debug)]
pub struct Flow {
    config: FlowConfig,
    vs: nn::VarStore,
    layers: Vec<Layer>,
    kind: Kind,
    device: Device,
    /// Whether the ActNorm layers have seen data (saved with the model, so a loaded model is
    /// never re-initialised).
    data_initialized: bool,
    /// For a mean-free base: the orthonormal basis E (`[n·d, (n−1)·d]`) of the
    /// centre-of-mass-free subspace; x = E y and y = Eᵀ x.
    embedding: Option<Tensor>,
    /// For internal coordinates: the Z-matrix of `config.internal`.
    zmatrix: Option<ZMatrix>,
}

/// The error for a tape that another flow recorded (a bug in the caller, not bad input).
fn mismatched_tape() -> Error {
    Error::InvalidArgument {
        name: "tape".into(),
        message: "the tape was recorded by a flow with other layers".into(),
    }
}

/// The Helmert basis of the centre-of-mass-free subspace of n particles in d dimensions, as
/// an `[n·d, (n−1)·d]` matrix with orthonormal columns orthogonal to every translation.
///
/// Column (k, a) for k = 1..n−1 puts 1/√(k(k+1)) on coordinate a of particles 0..k−1 and
/// −k/√(k(k+1)) on particle k.
fn helmert_embedding(n: usize, d: usize, kind: Kind, device: Device) -> Tensor {
    let cols = (n - 1) * d;
    let mut e = vec![0.0f64; n * d * cols];
    for k in 1..n {
        let norm = ((k * (k + 1)) as f64).sqrt();
        for a in 0..d {
            let col = (k - 1) * d + a;
            for i in 0..k {
                e[(i * d + a) * cols + col] = 1.0 / norm;
            }
            e[(k * d + a) * cols + col] = -(k as f64) / norm;
        }
    }
    Tensor::from_slice(&e)
        .reshape([(n * d) as i64, cols as i64])
        .to_kind(kind)
        .to_device(device)
}

impl Flow {
    /// A new flow with identity couplings (so q starts as the base distribution).
    ///
    /// Initial weights of the hidden layers come from libtorch's generator: call
    /// `tch::manual_seed` first for a reproducible initialisation.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid config or device.
    pub fn new(config: FlowConfig, device: DeviceChoice) -> Result<Self> {
        config.validate()?;
        let device = device.device()?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let latent_dim = config.latent_dim();
        let layers = config
            .layers
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let path = &root / format!("layer{i}");
                match spec {
                    LayerSpec::AffineCoupling {
                        transformed,
                        hidden,
                        scale_bound,
                    } => Layer::Affine(AffineCoupling::new(
                        &path,
                        Split::new(latent_dim, transformed, device),
                        hidden,
                        *scale_bound,
                        config.activation,
                    )),
                    LayerSpec::SplineCoupling {
                        transformed,
                        hidden,
                        bins,
                        tail_bound,
                    } => Layer::Spline(SplineCoupling::new(
                        &path,
                        Split::new(latent_dim, transformed, device),
                        hidden,
                        *bins,
                        *tail_bound,
                        config.activation,
                    )),
                    LayerSpec::ActNorm => Layer::ActNorm(ActNorm::new(&path, latent_dim)),
                    LayerSpec::Permutation { order } => {
                        Layer::Permutation(Permutation::new(order, device))
                    }
                    LayerSpec::UniformCdf { transformed, bound } => Layer::Uniform(
                        UniformCdf::new(Split::new(latent_dim, transformed, device), *bound),
                    ),
                }
            })
            .collect();
        let kind = config.precision.kind();
        vs.set_kind(kind);
        let embedding = match config.base {
            BaseSpec::StandardNormal => None,
            BaseSpec::MeanFree {
                n_particles,
                spatial_dim,
            } => Some(helmert_embedding(n_particles, spatial_dim, kind, device)),
        };
        let zmatrix = config
            .internal
            .as_ref()
            .map(InternalCoordinates::zmatrix)
            .transpose()?;
        Ok(Self {
            config,
            vs,
            layers,
            kind,
            device,
            data_initialized: false,
            embedding,
            zmatrix,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The libtorch device the flow runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Whether the ActNorm layers have been initialised from data.
    pub fn is_data_initialized(&self) -> bool {
        self.data_initialized
    }

    pub(crate) fn set_data_initialized(&mut self, value: bool) {
        self.data_initialized = value;
    }

    /// The parameters (for optimisers and checkpoints).
    pub(crate) fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub(crate) fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Data-dependent initialisation of the ActNorm layers from a batch of configurations:
    /// each ActNorm standardises what reaches it from the data side. Does nothing once done.
    ///
    /// # Errors
    /// As [`Generator::log_prob`].
    pub fn initialize_from_data(&mut self, x: &[f64]) -> Result<()> {
        if self.data_initialized {
            return Ok(());
        }
        let x = batch_to_tensor(x, self.config.dim, self.kind, self.device)?;
        let (mut h, _) = self.configurations_to_layer_space(&x)?;
        tch::no_grad(|| {
            for layer in self.layers.iter_mut().rev() {
                if let Layer::ActNorm(a) = layer {
                    a.initialize(&h);
                }
                h = layer.inverse(&h).0;
            }
        });
        self.data_initialized = true;
        Ok(())
    }

    /// Configurations to the coordinates the layers see, with `log|det|` of that map per row
    /// (float64): `Eᵀ x` (dropping the centre of mass, an isometry) with a mean-free base, the
    /// normalised internal coordinates with a Z-matrix (computed in `f64` on the host, outside
    /// autograd: this direction only ever sees data or fixed states), `x` otherwise.
    fn configurations_to_layer_space(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let zeros = || Tensor::zeros([x.size()[0]], (Kind::Double, self.device));
        match (&self.embedding, &self.zmatrix, &self.config.internal) {
            (Some(e), _, _) => Ok((x.matmul(e), zeros())),
            (None, Some(zmatrix), Some(internal)) => {
                let (u, logdet) = internal.to_layer_space(zmatrix, &tensor_to_vec(x)?)?;
                Ok((
                    batch_to_tensor(&u, internal.internal_dim(), self.kind, self.device)?,
                    self.host_to_tensor(&logdet)?,
                ))
            }
            _ => Ok((x.shallow_clone(), zeros())),
        }
    }

    /// The inverse of [`configurations_to_layer_space`](Self::configurations_to_layer_space), with `log|det|` of this
    /// direction.
    fn layer_space_to_configurations(&self, h: &Tensor) -> Result<(Tensor, Tensor)> {
        let zeros = || Tensor::zeros([h.size()[0]], (Kind::Double, self.device));
        match (&self.embedding, &self.zmatrix, &self.config.internal) {
            (Some(e), _, _) => Ok((h.matmul(&e.tr()), zeros())),
            (None, Some(zmatrix), Some(internal)) => {
                let (x, logdet) = internal.to_cartesian_t(zmatrix, h);
                Ok((x.to_kind(self.kind), logdet))
            }
            _ => Ok((h.shallow_clone(), zeros())),
        }
    }

    fn host_to_tensor(&self, values: &[f64]) -> Result<Tensor> {
        Tensor::f_from_slice(values)
            .and_then(|t| t.f_to_device(self.device))
            .map_err(Error::torch("copying log-determinants to the model"))
    }

    /// `(x, log|det J_f(z)|)` for a latent batch, differentiable (with internal coordinates,
    /// through the Z-matrix map too: reverse KL works).
    pub(crate) fn forward_t(&self, z: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = z.shallow_clone();
        let mut logdet = Tensor::zeros([z.size()[0]], (Kind::Double, self.device));
        for layer in &self.layers {
            let (next, ld) = layer.forward(&h);
            h = next;
            logdet = &logdet + ld;
        }
        let (x, ld) = self.layer_space_to_configurations(&h)?;
        Ok((x, logdet + ld))
    }

    /// Whether [`forward_taped`](Self::forward_taped) and
    /// [`backward_taped`](Self::backward_taped) cover this flow: every layer an affine
    /// coupling, an ActNorm or a permutation, and no internal coordinates.
    pub(crate) fn has_taped_backward(&self) -> bool {
        self.zmatrix.is_none()
            && self.layers.iter().all(|l| {
                matches!(
                    l,
                    Layer::Affine(_) | Layer::ActNorm(_) | Layer::Permutation(_)
                )
            })
    }

    /// [`forward_t`](Self::forward_t) without autograd, keeping what the hand-written
    /// [`backward_taped`](Self::backward_taped) needs. Only for flows where
    /// [`has_taped_backward`](Self::has_taped_backward) holds.
    pub(crate) fn forward_taped(&self, z: &Tensor) -> Result<(Tensor, Tensor, FlowTape)> {
        let not_covered = || Error::InvalidArgument {
            name: "flow".into(),
            message: "the hand-written backward pass covers affine couplings, ActNorm and \
                      permutations without internal coordinates only"
                .into(),
        };
        if !self.has_taped_backward() {
            return Err(not_covered());
        }
        tch::no_grad(|| {
            let mut h = z.shallow_clone();
            let mut logdet: Option<Tensor> = None;
            let mut layers = Vec::with_capacity(self.layers.len());
            for layer in &self.layers {
                let (next, ld, tape) = match layer {
                    Layer::Affine(l) => {
                        let (next, ld, tape) = l.forward_taped(&h);
                        (next, ld, LayerTape::Affine(tape))
                    }
                    Layer::ActNorm(l) => {
                        let (next, ld) = l.forward(&h);
                        (next, ld, LayerTape::ActNorm(h))
                    }
                    Layer::Permutation(l) => {
                        let (next, ld) = l.forward(&h);
                        (next, ld, LayerTape::Permutation)
                    }
                    Layer::Spline(_) | Layer::Uniform(_) => return Err(not_covered()),
                };
                logdet = Some(match logdet {
                    Some(total) => total + ld,
                    None => ld,
                });
                layers.push(tape);
                h = next;
            }
            let logdet =
                logdet.unwrap_or_else(|| Tensor::zeros([z.size()[0]], (Kind::Double, self.device)));
            let (x, ld) = self.layer_space_to_configurations(&h)?;
            Ok((x, logdet + ld, FlowTape { layers }))
        })
    }

    /// The gradient of a loss L in every parameter, from `∂L/∂x` (`grad_x`, one row per draw
    /// of the taped forward pass) and `∂L/∂log|det J_f(z_i)| = logdet_weight` for every row.
    /// The latent z is not differentiated (it does not depend on the parameters).
    pub(crate) fn backward_taped(
        &self,
        tape: FlowTape,
        grad_x: &Tensor,
        logdet_weight: f64,
    ) -> Result<ParamGrads> {
        if tape.layers.len() != self.layers.len() {
            return Err(mismatched_tape());
        }
        tch::no_grad(|| {
            let mut grads = ParamGrads::default();
            // x = h Eᵀ with a mean-free base: ∂h = ∂x E.
            let mut g = match &self.embedding {
                Some(e) => grad_x.matmul(e),
                None => grad_x.shallow_clone(),
            };
            for (layer, tape) in self.layers.iter().zip(tape.layers).rev() {
                g = match (layer, tape) {
                    (Layer::Affine(l), LayerTape::Affine(t)) => {
                        l.backward_taped(t, &g, logdet_weight, &mut grads)
                    }
                    (Layer::ActNorm(l), LayerTape::ActNorm(z)) => {
                        l.backward_taped(&z, &g, logdet_weight, &mut grads)
                    }
                    (Layer::Permutation(l), LayerTape::Permutation) => l.backward_taped(&g),
                    _ => return Err(mismatched_tape()),
                };
            }
            Ok(grads)
        })
    }

    /// `(z, log|det J_{f⁻¹}(x)|)`, differentiable in the layers.
    pub(crate) fn inverse_t(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mut z, mut logdet) = self.configurations_to_layer_space(x)?;
        for layer in self.layers.iter().rev() {
            let (next, ld) = layer.inverse(&z);
            z = next;
            logdet = &logdet + ld;
        }
        Ok((z, logdet))
    }

    /// log 𝒩(z; 0, I) per row, in float64 (z has `latent_dim` coordinates).
    pub(crate) fn base_log_prob_t(&self, z: &Tensor) -> Tensor {
        let d = self.config.latent_dim() as f64;
        z.to_kind(Kind::Double)
            .square()
            .sum_dim_intlist(1, false, Kind::Double)
            * -0.5
            - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
    }

    /// `log q(x)` per row, differentiable (maximum-likelihood training).
    pub(crate) fn log_prob_t(&self, x: &Tensor) -> Result<Tensor> {
        let (z, logdet) = self.inverse_t(x)?;
        Ok(self.base_log_prob_t(&z) + logdet)
    }

    /// Latent noise for `n` draws from the caller's stream.
    pub(crate) fn latent(&self, n: usize, rng: &mut ChainRng) -> Result<Tensor> {
        standard_normal(n, self.config.latent_dim(), rng, self.kind, self.device)
    }

    /// Pushes latent points through the flow: `x = f(z)` and `log|det J_f(z)|`, as host
    /// vectors (`z` row-major `[n × latent_dim]`).
    ///
    /// # Errors
    /// As [`Generator::log_prob`].
    pub fn forward(&self, z: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let z = batch_to_tensor(z, self.config.latent_dim(), self.kind, self.device)?;
        let (x, logdet) = tch::no_grad(|| self.forward_t(&z))?;
        Ok((tensor_to_vec(&x)?, tensor_to_vec(&logdet)?))
    }

    /// Pulls configurations back to latent space: `z = f⁻¹(x)` and `log|det J_{f⁻¹}(x)|`
    /// (the Jacobian term of latent-space random walks).
    ///
    /// # Errors
    /// As [`Generator::log_prob`].
    pub fn inverse(&self, x: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let x = batch_to_tensor(x, self.config.dim, self.kind, self.device)?;
        let (z, logdet) = tch::no_grad(|| self.inverse_t(&x))?;
        Ok((tensor_to_vec(&z)?, tensor_to_vec(&logdet)?))
    }
}

impl Generator for Flow {
    fn dim(&self) -> usize {
        self.config.dim
    }

    fn keeps_external_dofs(&self) -> bool {
        self.zmatrix.is_some() || self.centre_of_mass_free().is_some()
    }

    fn place_like(&self, x_new: &mut [f64], reference: &[f64]) -> Result<()> {
        match (&self.zmatrix, &self.config.internal) {
            (Some(zmatrix), Some(internal)) => internal.place_like(zmatrix, x_new, reference),
            _ => {
                if let Some((_, spatial_dim)) = self.centre_of_mass_free() {
                    super::move_to_centre_of_mass_of(x_new, reference, spatial_dim);
                }
                Ok(())
            }
        }
    }

    fn centre_of_mass_free(&self) -> Option<(usize, usize)> {
        match self.config.base {
            BaseSpec::StandardNormal => None,
            BaseSpec::MeanFree {
                n_particles,
                spatial_dim,
            } => Some((n_particles, spatial_dim)),
        }
    }

    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples> {
        let dim = self.config.dim;
        let mut out = Samples {
            dim,
            x: Vec::with_capacity(n * dim),
            log_q: Vec::with_capacity(n),
        };
        let mut done = 0;
        while done < n {
            let m = CHUNK.min(n - done);
            let z = self.latent(m, rng)?;
            let (x, log_q) = tch::no_grad(|| {
                let (x, logdet) = self.forward_t(&z)?;
                Ok::<_, Error>((x, self.base_log_prob_t(&z) - logdet))
            })?;
            out.x.extend(tensor_to_vec(&x)?);
            out.log_q.extend(tensor_to_vec(&log_q)?);
            done += m;
        }
        Ok(out)
    }

    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        let dim = self.config.dim;
        let t = batch_to_tensor(x, dim, self.kind, self.device)?;
        let n = t.size()[0];
        let mut out = Vec::with_capacity(n as usize);
        let mut start = 0;
        while start < n {
            let m = (CHUNK as i64).min(n - start);
            let chunk = t.narrow(0, start, m);
            let lq = tch::no_grad(|| self.log_prob_t(&chunk))?;
            out.extend(tensor_to_vec(&lq)?);
            start += m;
        }
        Ok(out)
    }

    fn exact_density(&self) -> bool {
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;
