//! Affine (RealNVP) coupling with bounded log-scales.

use tch::{nn, Kind, Tensor};

use super::backprop::{AffineTape, ParamGrads};
use super::split::Split;
use crate::generator::mlp::{Activation, Mlp, MlpTape};

/// `x_B = z_B ⊙ exp(s(z_A)) + t(z_A)`, `x_A = z_A`, with `s = c · tanh(ŝ / c)`.
///
/// Bounding the log-scale by c keeps one layer from stretching space by more than e^c per
/// coordinate: without it a reverse-KL step can blow a scale up and the next batch is NaN.
#[derive(Debug)]
pub(crate) struct AffineCoupling {
    split: Split,
    net: Mlp,
    scale_bound: f64,
}

impl AffineCoupling {
    pub(crate) fn new(
        path: &nn::Path,
        split: Split,
        hidden: &[usize],
        scale_bound: f64,
        activation: Activation,
    ) -> Self {
        let out = 2 * split.transformed_len();
        let net = Mlp::new(path, split.conditioning_len(), hidden, out, activation);
        Self {
            split,
            net,
            scale_bound,
        }
    }

    /// The conditioner's shift t and tanh(ŝ/c) (the log-scale is s = c·tanh(ŝ/c)), with the
    /// network's tape.
    fn conditioner(&self, conditioning: &Tensor) -> (Tensor, Tensor, MlpTape) {
        let (params, net) = self.net.forward_taped(conditioning);
        let n = self.split.transformed_len() as i64;
        let shift = params.narrow(1, 0, n);
        let tanh = (params.narrow(1, n, n) / self.scale_bound).tanh();
        (shift, tanh, net)
    }

    pub(crate) fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        let (x, logdet, _) = self.forward_taped(z);
        (x, logdet)
    }

    /// [`forward`](Self::forward), keeping the tape for
    /// [`backward_taped`](Self::backward_taped) (records autograd unless the caller is in
    /// `no_grad`).
    pub(crate) fn forward_taped(&self, z: &Tensor) -> (Tensor, Tensor, AffineTape) {
        let (cond, moved) = self.split.split(z);
        let (shift, tanh, net) = self.conditioner(&cond);
        let log_scale = &tanh * self.scale_bound;
        let scale = log_scale.exp();
        let out = shift.addcmul(&moved, &scale);
        let logdet = log_scale.sum_dim_intlist(1, false, Kind::Double);
        let tape = AffineTape {
            net,
            moved,
            scale,
            tanh,
        };
        (self.split.join(&cond, &out), logdet, tape)
    }

    /// Reverse-mode pass: given `∂L/∂x` and `∂L/∂logdet = logdet_weight` for every row,
    /// pushes the parameter gradients onto `grads` and returns `∂L/∂z`.
    ///
    /// With `x_B = z_B e^s + t`, `s = c tanh(ŝ/c)`: `∂z_B = ∂x_B e^s`, `∂t = ∂x_B`,
    /// `∂s = ∂x_B z_B e^s + w`, `∂ŝ = ∂s (1 − tanh²)`, and `∂z_A` gathers the direct path and
    /// the conditioner's input gradient.
    pub(crate) fn backward_taped(
        &self,
        tape: AffineTape,
        grad_out: &Tensor,
        logdet_weight: f64,
        grads: &mut ParamGrads,
    ) -> Tensor {
        let (g_cond, g_out) = self.split.split(grad_out);
        let g_moved = &g_out * &tape.scale;
        let g_log_scale = &g_moved * &tape.moved + logdet_weight;
        let g_raw_scale = Tensor::tanh_backward(&g_log_scale, &tape.tanh);
        let g_params = Tensor::cat(&[&g_out, &g_raw_scale], 1);
        let g_cond = g_cond + self.net.backward_taped(tape.net, g_params, grads);
        self.split.join(&g_cond, &g_moved)
    }

    pub(crate) fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(x);
        let (shift, tanh, _) = self.conditioner(&cond);
        let log_scale = tanh * self.scale_bound;
        let moved = (moved - shift) * (-&log_scale).exp();
        let logdet = -log_scale.sum_dim_intlist(1, false, Kind::Double);
        (self.split.join(&cond, &moved), logdet)
    }
}
