//! Fixed permutations of the coordinates.

use tch::{Device, Kind, Tensor};

/// `x_i = z_{order[i]}`; volume preserving (log-determinant 0).
#[derive(Debug)]
pub(crate) struct Permutation {
    order: Tensor,
    inverse_order: Tensor,
}

impl Permutation {
    /// `order` must be a permutation of `0..dim` (checked by the config's validation).
    pub(crate) fn new(order: &[usize], device: Device) -> Self {
        let mut inverse = vec![0i64; order.len()];
        for (i, &o) in order.iter().enumerate() {
            inverse[o] = i as i64;
        }
        let order: Vec<i64> = order.iter().map(|&o| o as i64).collect();
        let to = |v: &[i64]| Tensor::from_slice(v).to_kind(Kind::Int64).to_device(device);
        Self {
            order: to(&order),
            inverse_order: to(&inverse),
        }
    }

    pub(crate) fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        let n = z.size()[0];
        (
            z.index_select(1, &self.order),
            Tensor::zeros([n], (Kind::Double, z.device())),
        )
    }

    /// Reverse-mode pass: `∂L/∂z` is `∂L/∂x` permuted back.
    pub(crate) fn backward_taped(&self, grad_out: &Tensor) -> Tensor {
        grad_out.index_select(1, &self.inverse_order)
    }

    pub(crate) fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        let n = x.size()[0];
        (
            x.index_select(1, &self.inverse_order),
            Tensor::zeros([n], (Kind::Double, x.device())),
        )
    }
}
