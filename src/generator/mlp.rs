//! The conditioner network of the coupling layers.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

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

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            if i + 1 < self.layers.len() {
                h = match self.activation {
                    Activation::LeakyRelu => h.leaky_relu(),
                    Activation::Tanh => h.tanh(),
                    Activation::Silu => h.silu(),
                };
            }
        }
        h
    }
}
