//! Adam on one flat parameter buffer, written out so that its state can be checkpointed.
//!
//! libtorch's per-call overhead (microseconds) dominates small flows, so the optimiser works
//! on a single flat buffer: at construction every parameter is re-pointed at a slice of one
//! contiguous tensor. Gradients come from `autograd::grad` for all parameters at once (no
//! `.grad` accumulation, so nothing to zero) and are concatenated once; the norm, clipping and
//! the Adam update are then a handful of whole-buffer operations instead of a dozen per
//! parameter. tch's own optimiser keeps its moments inside libtorch, where they cannot be
//! saved; a resumed run must continue with the same moments.

use std::collections::HashMap;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Adam with bias correction (Kingma & Ba), β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
#[derive(Debug)]
pub(crate) struct Adam {
    /// Parameters sorted by name; each is a view into `flat`.
    params: Vec<(String, Tensor)>,
    flat: Tensor,
    /// Gradient of the last [`compute_gradients`](Self::compute_gradients).
    grad: Option<Tensor>,
    m: Tensor,
    v: Tensor,
    t: i64,
    lr: f64,
}

impl Adam {
    pub(crate) fn new(mut params: Vec<(String, Tensor)>, lr: f64) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let flat = tch::no_grad(|| {
            let pieces: Vec<Tensor> = params
                .iter()
                .map(|(_, p)| p.detach().flatten(0, -1))
                .collect();
            Tensor::cat(&pieces, 0)
        });
        // Re-point every parameter at its slice of the flat buffer (same values, shared
        // storage), so updating `flat` in place updates the model.
        let mut offset = 0;
        for (_, p) in params.iter_mut() {
            let n = p.numel() as i64;
            let view = flat.narrow(0, offset, n).view(p.size().as_slice());
            p.set_data(&view);
            offset += n;
        }
        let m = flat.zeros_like();
        let v = flat.zeros_like();
        Self {
            params,
            flat,
            grad: None,
            m,
            v,
            t: 0,
            lr,
        }
    }

    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Back-propagates `loss` to every parameter and returns the gradient's Euclidean norm
    /// (NaN or ∞ if any entry is not finite).
    pub(crate) fn compute_gradients(&mut self, loss: &Tensor) -> f64 {
        let inputs: Vec<&Tensor> = self.params.iter().map(|(_, p)| p).collect();
        let grads = Tensor::run_backward(&[loss], &inputs, false, false);
        let flat_grad = tch::no_grad(|| {
            let pieces: Vec<Tensor> = grads
                .iter()
                .zip(&self.params)
                .map(|(g, (_, p))| {
                    // A parameter the loss does not reach gets no gradient edge at all.
                    if g.defined() {
                        g.flatten(0, -1)
                    } else {
                        p.zeros_like().flatten(0, -1)
                    }
                })
                .collect();
            Tensor::cat(&pieces, 0)
        });
        let norm = flat_grad.norm().to_kind(Kind::Double).double_value(&[]);
        self.grad = Some(flat_grad);
        norm
    }

    /// Clips the last gradient to norm `max` (if given and exceeded) and takes one Adam step.
    pub(crate) fn step(&mut self, norm: f64, clip: Option<f64>) {
        let Some(g) = self.grad.take() else { return };
        self.t += 1;
        let bc1 = 1.0 - BETA1.powi(self.t.min(i32::MAX as i64) as i32);
        let bc2 = 1.0 - BETA2.powi(self.t.min(i32::MAX as i64) as i32);
        tch::no_grad(|| {
            let g = match clip {
                Some(max) if norm > max => g * (max / (norm + 1e-12)),
                _ => g,
            };
            let _ = self.m.lerp_(&g, 1.0 - BETA1);
            let _ = self.v.lerp_(&g.square(), 1.0 - BETA2);
            let denom = (&self.v / bc2).sqrt() + EPS;
            let update = (&self.m / &denom) * (self.lr / bc1);
            let _ = self.flat.f_sub_(&update);
        });
    }

    /// Moments (`adam.m`, `adam.v`, flat in name order) and the step count, for a checkpoint.
    pub(crate) fn state(&self) -> (i64, Vec<(String, Tensor)>) {
        (
            self.t,
            vec![
                ("adam.m".to_string(), self.m.shallow_clone()),
                ("adam.v".to_string(), self.v.shallow_clone()),
            ],
        )
    }

    /// Restores what [`state`](Self::state) saved.
    pub(crate) fn load_state(&mut self, t: i64, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for (key, slot) in [("adam.m", &mut self.m), ("adam.v", &mut self.v)] {
            let saved = tensors.get(key).ok_or_else(|| Error::InvalidArgument {
                name: "checkpoint".into(),
                message: format!("optimizer state `{key}` is missing"),
            })?;
            if saved.size() != slot.size() {
                return Err(Error::InvalidArgument {
                    name: "checkpoint".into(),
                    message: format!(
                        "optimizer state `{key}` has shape {:?}, the model needs {:?}",
                        saved.size(),
                        slot.size()
                    ),
                });
            }
            *slot = saved.to_kind(slot.kind()).to_device(slot.device());
        }
        self.t = t;
        Ok(())
    }
}
