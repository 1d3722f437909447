//! Affine (RealNVP) coupling with bounded log-scales.

use tch::{nn, Kind, Tensor};

use super::split::Split;
use crate::generator::mlp::{Activation, Mlp};

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

    fn shift_and_log_scale(&self, conditioning: &Tensor) -> (Tensor, Tensor) {
        let params = self.net.forward(conditioning);
        let parts = params.chunk(2, 1);
        let log_scale = (&parts[1] / self.scale_bound).tanh() * self.scale_bound;
        (parts[0].shallow_clone(), log_scale)
    }

    pub(crate) fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(z);
        let (shift, log_scale) = self.shift_and_log_scale(&cond);
        let moved = moved * log_scale.exp() + shift;
        let logdet = log_scale.sum_dim_intlist(1, false, Kind::Double);
        (self.split.join(&cond, &moved), logdet)
    }

    pub(crate) fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(x);
        let (shift, log_scale) = self.shift_and_log_scale(&cond);
        let moved = (moved - shift) * (-&log_scale).exp();
        let logdet = -log_scale.sum_dim_intlist(1, false, Kind::Double);
        (self.split.join(&cond, &moved), logdet)
    }
}
