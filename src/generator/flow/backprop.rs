//! A hand-written reverse-mode pass through the sampling direction `z → x`, for reverse-KL
//! training of flows made of affine couplings, ActNorm and permutations.
//!
//! Why not autograd: on the small models of molecular and toy targets (batches of a few
//! hundred rows, conditioners of 64 units) a training step is a few hundred libtorch
//! operators, and autograd's per-operator bookkeeping (graph nodes, saved tensors, the
//! engine's scheduling) costs more than their arithmetic. Running the forward pass without
//! recording and the backward pass as explicit matrix products and fused activation
//! derivatives (`leaky_relu_backward`, `tanh_backward`) takes a fraction of the time
//! (BENCHMARKS.md, "Reverse-KL training speed"). Flows with other layers (splines, uniform
//! CDFs, internal coordinates) keep using autograd; a unit test checks both give the same
//! gradient.

use tch::Tensor;

use crate::generator::mlp::MlpTape;

/// `∂L/∂parameter` for parameters identified by where their data starts, as produced by a
/// hand-written backward pass; an optimiser matches them to its variables by that address
/// (every parameter is non-empty, so distinct parameters start at distinct addresses, also
/// once the optimiser has made them disjoint ranges of one flat buffer).
#[derive(Debug, Default)]
pub(crate) struct ParamGrads {
    pairs: Vec<(usize, Tensor)>,
}

impl ParamGrads {
    pub(crate) fn push(&mut self, parameter: &Tensor, gradient: Tensor) {
        self.pairs.push((parameter.data_ptr() as usize, gradient));
    }

    /// Takes out the gradient of the tensor whose data starts at `data_ptr` (adding up
    /// several entries for the same parameter, should there be any).
    pub(crate) fn take(&mut self, data_ptr: usize) -> Option<Tensor> {
        let mut total: Option<Tensor> = None;
        let mut i = 0;
        while i < self.pairs.len() {
            if self.pairs[i].0 == data_ptr {
                let (_, g) = self.pairs.swap_remove(i);
                total = Some(match total {
                    Some(t) => t + g,
                    None => g,
                });
            } else {
                i += 1;
            }
        }
        total
    }

    /// Adds the pairs of `other` (gradients of another term of the same loss).
    pub(crate) fn extend(&mut self, other: ParamGrads) {
        self.pairs.extend(other.pairs);
    }

    /// Whether every gradient has been taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// What one layer's backward pass needs from its forward pass.
#[derive(Debug)]
pub(crate) enum LayerTape {
    Affine(AffineTape),
    /// ActNorm: the layer's input.
    ActNorm(Tensor),
    Permutation,
}

/// What the affine coupling's backward pass needs: the conditioner's tape, the transformed
/// coordinates on entry, `exp(s)` and `tanh(ŝ/c)`.
#[derive(Debug)]
pub(crate) struct AffineTape {
    pub(crate) net: MlpTape,
    pub(crate) moved: Tensor,
    pub(crate) scale: Tensor,
    pub(crate) tanh: Tensor,
}

/// The tape of a whole forward pass: one entry per layer, in order.
#[derive(Debug)]
pub(crate) struct FlowTape {
    pub(crate) layers: Vec<LayerTape>,
}
