//! The conditioner network of the coupling layers.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

use super::flow::ParamGrads;

/// The most weights a model may have (4·10⁸ bytes in single precision): sizes read from a
/// config or a model file are checked against it before anything is allocated.
pub const MAX_PARAMETERS: usize = 100_000_000;

/// The most coordinates a model may have.
pub const MAX_MODEL_DIM: usize = 10_000_000;

/// Weights and biases of an [`Mlp`] from `input` through `hidden` to `output` units, or `None`
/// if the count overflows.
pub(crate) fn parameter_count(input: usize, hidden: &[usize], output: usize) -> Option<usize> {
    let mut sizes = std::iter::once(input)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(output));
    let mut previous = sizes.next()?;
    let mut total = 0usize;
    for size in sizes {
        let layer = previous.checked_add(1)?.checked_mul(size)?;
        total = total.checked_add(layer)?;
        previous = size;
    }
    Some(total)
}

/// Adds `count` (None: overflowed) to a running total of a model's parameters, or explains
/// why the model is too large.
pub(crate) fn add_parameters(total: &mut usize, count: Option<usize>) -> Result<(), String> {
    match count.and_then(|c| c.checked_add(*total)) {
        Some(t) if t <= MAX_PARAMETERS => {
            *total = t;
            Ok(())
        }
        _ => Err(format!(
            "the networks would have more than {MAX_PARAMETERS} weights; use fewer or smaller \
             hidden layers"
        )),
    }
}

/// Non-linearity between the hidden layers of a conditioner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0.01 x).
    #[default]
    LeakyRelu,
    /// tanh(x): smooth, for flows whose Jacobians enter a loss.
    Tanh,
    /// x · sigmoid(x).
    Silu,
}

/// What the hand-written backward pass of an [`Mlp`] needs from its forward pass.
#[derive(Debug)]
pub(crate) struct MlpTape {
    /// The input of each linear layer (the first is the network's input).
    inputs: Vec<Tensor>,
    /// The pre-activation output of each hidden layer (SiLU only).
    pre_activations: Vec<Tensor>,
}

/// A multilayer perceptron whose last layer starts at zero, so that every coupling layer
/// starts as the identity map and a new flow is exactly its base distribution.
#[derive(Debug)]
pub(crate) struct Mlp {
    layers: Vec<nn::Linear>,
    activation: Activation,
}

impl Mlp {
    pub(crate) fn new(
        path: &nn::Path,
        input: usize,
        hidden: &[usize],
        output: usize,
        activation: Activation,
    ) -> Self {
        let mut sizes = vec![input];
        sizes.extend_from_slice(hidden);
        sizes.push(output);
        let last = sizes.len() - 2;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let config = if i == last {
                    nn::LinearConfig {
                        ws_init: nn::Init::Const(0.0),
                        bs_init: Some(nn::Init::Const(0.0)),
                        bias: true,
                    }
                } else {
                    Default::default()
                };
                nn::linear(
                    path / format!("linear{i}"),
                    w[0] as i64,
                    w[1] as i64,
                    config,
                )
            })
            .collect();
        Self { layers, activation }
    }

    /// [`forward`](Self::forward), keeping what [`backward_taped`](Self::backward_taped)
    /// needs: the input of every linear layer and, for SiLU, the pre-activations of the
    /// hidden ones (shallow handles: no copies). Records autograd unless the caller is in
    /// `no_grad`.
    pub(crate) fn forward_taped(&self, x: &Tensor) -> (Tensor, MlpTape) {
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut pre_activations = Vec::with_capacity(self.layers.len() - 1);
        let mut h = x.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let a = layer.forward(&h);
            inputs.push(h);
            if i + 1 < self.layers.len() {
                h = match self.activation {
                    Activation::LeakyRelu => a.leaky_relu(),
                    Activation::Tanh => a.tanh(),
                    Activation::Silu => a.silu(),
                };
                // Only SiLU's derivative needs the pre-activation; the others use the output.
                if self.activation == Activation::Silu {
                    pre_activations.push(a);
                }
            } else {
                h = a;
            }
        }
        (
            h,
            MlpTape {
                inputs,
                pre_activations,
            },
        )
    }

    /// Reverse-mode pass through the network: given `∂L/∂output`, pushes `(parameter,
    /// ∂L/∂parameter)` for every weight and bias onto `grads` and returns `∂L/∂input`.
    pub(crate) fn backward_taped(
        &self,
        tape: MlpTape,
        grad_output: Tensor,
        grads: &mut ParamGrads,
    ) -> Tensor {
        let mut g = grad_output;
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let input = &tape.inputs[i];
            // y = x Wᵀ + b: ∂W = gᵀ x, ∂b = Σ_rows g, ∂x = g W.
            grads.push(&layer.ws, g.tr().mm(input));
            if let Some(bias) = &layer.bs {
                grads.push(bias, g.sum_dim_intlist(0, false, g.kind()));
            }
            g = g.mm(&layer.ws);
            if i > 0 {
                // Through the activation that made this layer's input from the
                // pre-activation of the layer below.
                g = match self.activation {
                    Activation::LeakyRelu => input.leaky_relu_backward(&g, 0.01, true),
                    Activation::Tanh => Tensor::tanh_backward(&g, input),
                    Activation::Silu => tape.pre_activations[i - 1].silu_backward(&g),
                };
            }
        }
        g
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_taped(x).0
    }
}
