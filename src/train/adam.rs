//! Adam, written out so that its state (moments, step count) can be checkpointed by name.

use tch::Tensor;

use crate::error::{Error, Result};

/// Adam with bias correction (Kingma & Ba), β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
///
/// tch's built-in optimiser keeps its moments inside libtorch where they cannot be saved;
/// a resumed run must continue with the same moments to reproduce an uninterrupted one.
#[derive(Debug)]
pub(crate) struct Adam {
    /// (name, parameter) sorted by name: the checkpoint key order.
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: i64,
    lr: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    pub(crate) fn new(mut params: Vec<(String, Tensor)>, lr: f64) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            params,
            m,
            v,
            t: 0,
            lr,
        }
    }

    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    pub(crate) fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    fn grads(&self) -> impl Iterator<Item = Tensor> + '_ {
        self.params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
    }

    /// Euclidean norm of all gradients together (NaN if any entry is NaN).
    pub(crate) fn grad_norm(&self) -> f64 {
        let sq: f64 = self
            .grads()
            .map(|g| g.square().sum(tch::Kind::Double).double_value(&[]))
            .sum();
        sq.sqrt()
    }

    /// Scales the gradients down to norm `max` if they are longer.
    pub(crate) fn clip_grad_norm(&mut self, norm: f64, max: f64) {
        if norm > max {
            let factor = max / (norm + 1e-12);
            tch::no_grad(|| {
                for mut g in self.grads().collect::<Vec<_>>() {
                    let _ = g.f_mul_scalar_(factor);
                }
            });
        }
    }

    pub(crate) fn step(&mut self) {
        self.t += 1;
        let bc1 = 1.0 - BETA1.powi(self.t as i32);
        let bc2 = 1.0 - BETA2.powi(self.t as i32);
        let lr = self.lr;
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let m = &self.m[i] * BETA1 + &g * (1.0 - BETA1);
                let v = &self.v[i] * BETA2 + g.square() * (1.0 - BETA2);
                let update = (&m / bc1) / ((&v / bc2).sqrt() + EPS) * lr;
                let _ = p.f_sub_(&update);
                self.m[i] = m;
                self.v[i] = v;
            }
        });
    }

    /// Moments and step count, keyed `adam.m.<name>`, `adam.v.<name>`, for a checkpoint.
    pub(crate) fn state(&self) -> (i64, Vec<(String, Tensor)>) {
        let mut out = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("adam.m.{name}"), self.m[i].shallow_clone()));
            out.push((format!("adam.v.{name}"), self.v[i].shallow_clone()));
        }
        (self.t, out)
    }

    /// Restores what [`state`](Self::state) saved.
    pub(crate) fn load_state(
        &mut self,
        t: i64,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (key, slot) in [
                (format!("adam.m.{name}"), &mut self.m[i]),
                (format!("adam.v.{name}"), &mut self.v[i]),
            ] {
                let saved = tensors.get(&key).ok_or_else(|| Error::InvalidArgument {
                    name: "checkpoint".into(),
                    message: format!("optimizer state `{key}` is missing"),
                })?;
                if saved.size() != p.size() {
                    return Err(Error::InvalidArgument {
                        name: "checkpoint".into(),
                        message: format!(
                            "optimizer state `{key}` has shape {:?}, the model needs {:?}",
                            saved.size(),
                            p.size()
                        ),
                    });
                }
                *slot = saved.to_kind(p.kind()).to_device(p.device());
            }
        }
        self.t = t;
        Ok(())
    }
}
