//! ActNorm: a per-coordinate affine map with data-dependent initialisation.

use tch::{nn, Kind, Tensor};

use super::backprop::ParamGrads;

/// `x = z ⊙ exp(s) + b`. Starts as the identity; [`ActNorm::initialize`] sets b and s from
/// data so that the data leave this layer (towards the base) with zero mean and unit variance.
#[derive(Debug)]
pub(crate) struct ActNorm {
    log_scale: Tensor,
    bias: Tensor,
}

impl ActNorm {
    pub(crate) fn new(path: &nn::Path, dim: usize) -> Self {
        Self {
            log_scale: path.zeros("log_scale", &[dim as i64]),
            bias: path.zeros("bias", &[dim as i64]),
        }
    }

    pub(crate) fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        let x = z * self.log_scale.exp() + &self.bias;
        (x, self.logdet(z.size()[0]))
    }

    /// Reverse-mode pass for a forward pass that saw `z`: given `∂L/∂x` and `∂L/∂logdet =
    /// logdet_weight` for every row, pushes `∂L/∂s` and `∂L/∂b` and returns `∂L/∂z`.
    pub(crate) fn backward_taped(
        &self,
        z: &Tensor,
        grad_out: &Tensor,
        logdet_weight: f64,
        grads: &mut ParamGrads,
    ) -> Tensor {
        let scale = self.log_scale.exp();
        let rows = grad_out.size()[0] as f64;
        let kind = grad_out.kind();
        let g_log_scale =
            (grad_out * z).sum_dim_intlist(0, false, kind) * &scale + logdet_weight * rows;
        grads.push(&self.log_scale, g_log_scale);
        grads.push(&self.bias, grad_out.sum_dim_intlist(0, false, kind));
        grad_out * scale
    }

    pub(crate) fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        let z = (x - &self.bias) * (-&self.log_scale).exp();
        (z, -self.logdet(x.size()[0]))
    }

    fn logdet(&self, n: i64) -> Tensor {
        self.log_scale.sum(Kind::Double).expand([n], false)
    }

    /// Sets b = mean(x) and s = log std(x) over the batch (std floored at 1e-6 so a constant
    /// coordinate does not give −∞).
    pub(crate) fn initialize(&mut self, x: &Tensor) {
        tch::no_grad(|| {
            let mean = x.mean_dim(0, false, x.kind());
            let std = x.std_dim(0, false, false).clamp_min(1e-6);
            self.bias.copy_(&mean);
            self.log_scale.copy_(&std.log());
        });
    }
}
