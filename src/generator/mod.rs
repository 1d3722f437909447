//! Generators q_θ(x): normalizing flows and VAEs in libtorch, and a pure-Rust Gaussian
//! baseline.
//!
//! `tch::Tensor` stays inside this module and [`crate::train`]; the rest of boltzgen sees
//! configurations and log-densities as `f64` slices through the [`Generator`] trait.

pub mod flow;
pub mod gaussian;
mod mlp;
pub mod store;
pub(crate) mod tensor;
pub mod thinned;
pub mod torchscript;
pub mod vae;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::ChainRng;

pub use flow::{BaseSpec, Flow, FlowConfig, LayerSpec};
pub use gaussian::DiagonalGaussian;
pub use mlp::Activation;
pub use thinned::ThinnedGenerator;
pub use torchscript::TorchScriptGenerator;
pub use vae::{JointSamples, Vae, VaeConfig};

/// A batch of generator draws: configurations `x` (row-major `[n × dim]`) and their
/// log-densities `log_q` under the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Number of coordinates per configuration.
    pub dim: usize,
    /// Configurations, row-major `[n × dim]`.
    pub x: Vec<f64>,
    /// `log q(x)` of each configuration (exact for flows, an estimate for VAEs).
    pub log_q: Vec<f64>,
}

impl Samples {
    /// Number of configurations.
    pub fn len(&self) -> usize {
        self.log_q.len()
    }

    /// True when the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.log_q.is_empty()
    }

    /// Configuration `i`.
    pub fn configuration(&self, i: usize) -> &[f64] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
}

/// A generative model with a (log-)density: the learned half of boltzgen.
///
/// All randomness comes from the caller's stream, so the same seed gives the same samples.
/// Implementations are not `Sync` (libtorch tensors are not): keep a generator on one thread
/// and hand its batches to the chains.
pub trait Generator {
    /// Number of coordinates of one configuration.
    fn dim(&self) -> usize;

    /// Draws `n` configurations and their `log q`.
    ///
    /// # Errors
    /// [`Error::Torch`] if libtorch fails.
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples>;

    /// `log q(x)` for a batch `x = [n × dim]`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for a batch whose length is not a multiple of `dim`,
    /// [`Error::NonFinite`] for NaN or infinite coordinates.
    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>>;

    /// Whether `log_prob` is the exact log-density (flows) or an estimate (VAE marginal).
    /// Exact Metropolis–Hastings with an independence proposal needs the exact density.
    fn exact_density(&self) -> bool;

    /// `Some((n_particles, spatial_dim))` when every draw has its centre of mass at the origin
    /// and `log q` is a density on the centre-of-mass-free subspace (a flow with the
    /// [`BaseSpec::MeanFree`] base); `None` for densities on all of ℝ^dim.
    ///
    /// Proposals from such a generator must keep the current state's centre of mass (see
    /// [`move_to_centre_of_mass_of`]): a draw at the origin proposed from a state elsewhere
    /// could never be proposed back, and the Hastings ratio would be wrong.
    fn centre_of_mass_free(&self) -> Option<(usize, usize)> {
        None
    }

    /// Whether draws leave some external degrees of freedom to the caller: a centre of mass
    /// ([`centre_of_mass_free`](Self::centre_of_mass_free)), or the position and orientation of
    /// a molecule (internal-coordinate flows, see [`flow::internal`]). Proposals from such a
    /// generator must pass through [`place_like`](Self::place_like).
    fn keeps_external_dofs(&self) -> bool {
        self.centre_of_mass_free().is_some()
    }

    /// Gives a fresh draw `x_new` the external degrees of freedom of the current state
    /// `reference` (its centre of mass, or its position and orientation), so that an
    /// independence proposal stays on the current state's fibre, where `log q` is its exact
    /// density and the Hastings term is `log q(x) − log q(x′)` (see
    /// [`move_to_centre_of_mass_of`]). Does nothing for densities on all of ℝ^dim.
    ///
    /// # Errors
    /// [`Error::Dimension`] for rows of the wrong length.
    fn place_like(&self, x_new: &mut [f64], reference: &[f64]) -> Result<()> {
        if let Some((_, spatial_dim)) = self.centre_of_mass_free() {
            move_to_centre_of_mass_of(x_new, reference, spatial_dim);
        }
        Ok(())
    }
}

/// A borrowed generator is a generator: moves hold `&dyn Generator` when the sampler lends
/// them the run's models, or own one.
impl<T: Generator + ?Sized> Generator for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples> {
        (**self).sample(n, rng)
    }

    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        (**self).log_prob(x)
    }

    fn exact_density(&self) -> bool {
        (**self).exact_density()
    }

    fn centre_of_mass_free(&self) -> Option<(usize, usize)> {
        (**self).centre_of_mass_free()
    }

    fn keeps_external_dofs(&self) -> bool {
        (**self).keeps_external_dofs()
    }

    fn place_like(&self, x_new: &mut [f64], reference: &[f64]) -> Result<()> {
        (**self).place_like(x_new, reference)
    }
}

/// Translates the configuration `x_new` (whose centre of mass is at the origin, as a
/// mean-free generator draws it) so that its centre of mass is that of `reference`.
///
/// With this shift, an independence proposal `x′ = y + c(x)`, `y ~ q`, stays on the fibre of
/// constant centre of mass `c(x)`, where it is an exact independence proposal with density
/// `q(x′ − c)`; since `log q` of a mean-free generator ignores the centre of mass, the
/// Hastings term remains `log q(x) − log q(x′)`. Translation-invariant potentials (LJ, DW4)
/// see the same energy with or without the shift.
pub fn move_to_centre_of_mass_of(x_new: &mut [f64], reference: &[f64], spatial_dim: usize) {
    let n = reference.len() / spatial_dim.max(1);
    if n == 0 {
        return;
    }
    for k in 0..spatial_dim {
        let centre_ref: f64 = reference.iter().skip(k).step_by(spatial_dim).sum::<f64>() / n as f64;
        let centre_new: f64 = x_new.iter().skip(k).step_by(spatial_dim).sum::<f64>() / n as f64;
        let shift = centre_ref - centre_new;
        for v in x_new.iter_mut().skip(k).step_by(spatial_dim) {
            *v += shift;
        }
    }
}

static TORCH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A process-wide lock for libtorch's global state.
///
/// libtorch's random generator (used by `tch::manual_seed` and by the initialisation of new
/// models) is global, and its matrix products split work by the threads they get. Code that
/// seeds, builds or trains models on several threads at once and wants reproducible results
/// — test suites, above all — holds this guard for the duration. A panic while holding it
/// does not poison it for others.
pub fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Floating-point precision of a model's parameters and computations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats: fast, the default for training.
    #[default]
    Float32,
    /// 64-bit floats: log q accurate to ~1e-12 relative, for reweighting and tests.
    Float64,
}

impl Precision {
    pub(crate) fn kind(self) -> tch::Kind {
        match self {
            Precision::Float32 => tch::Kind::Float,
            Precision::Float64 => tch::Kind::Double,
        }
    }
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// The first CUDA device when one is usable, otherwise the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// The first CUDA device; an error if there is none.
    Cuda,
}

impl DeviceChoice {
    /// The libtorch device for this choice.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `Cuda` on a machine without a usable GPU.
    pub fn device(self) -> Result<tch::Device> {
        match self {
            DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            DeviceChoice::Cuda => Err(Error::InvalidArgument {
                name: "device".into(),
                message: "cuda was requested but libtorch sees no usable CUDA device".into(),
            }),
        }
    }
}
