//! Adam on one flat parameter buffer, written out so that its state can be checkpointed.
//!
//! libtorch's per-call overhead (microseconds) dominates small flows, so the optimiser works
//! on a single flat buffer: at construction every parameter is re-pointed at a slice of one
//! contiguous tensor. Gradients come from `autograd::grad` for all parameters at once (no
//! `.grad` accumulation, so nothing to zero), plus any written out by hand (the taped
//! reverse-KL pass, matched to the parameters by address), and are concatenated once; the
//! norm, clipping and the Adam update are then one pass over host memory on the CPU, or a
//! handful of whole-buffer operations on other devices, instead of a dozen per parameter.
//! tch's own optimiser keeps its moments inside libtorch, where they cannot be saved; a
//! resumed run must continue with the same moments.

use std::collections::HashMap;

use tch::{Kind, Tensor};

use super::StepLoss;
use crate::error::{Error, Result};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Adam with bias correction (Kingma & Ba), β₁ = 0.9, β₂ = 0.999, ε = 1e-8, and optional
/// decoupled weight decay (AdamW, Loshchilov & Hutter): each step first shrinks every
/// parameter by the factor 1 − lr·λ, independently of the gradient's scale.
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
            concat_or_empty(&pieces)
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

    /// Forgets the moment estimates and the step count, as if freshly created (the objective
    /// changed: bias correction then calibrates to the new gradients from the first step).
    pub(crate) fn reset_moments(&mut self) {
        tch::no_grad(|| {
            let _ = self.m.zero_();
            let _ = self.v.zero_();
        });
        self.t = 0;
    }

    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The gradient of `loss` in every parameter (autograd's part plus the hand-written
    /// part), kept for [`step`](Self::step); returns its Euclidean norm (NaN or ∞ if any
    /// entry is not finite).
    ///
    /// # Errors
    /// A hand-written gradient for a tensor that is
    /// not one of the parameters is an [`Error::InvalidArgument`] (a bug, not bad input).
    pub(crate) fn compute_gradients(&mut self, loss: StepLoss) -> Result<f64> {
        let StepLoss {
            autograd, taped, ..
        } = loss;
        let inputs: Vec<&Tensor> = self.params.iter().map(|(_, p)| p).collect();
        // (libtorch refuses a backward pass with no inputs: a flow of permutations only.)
        let autograd_grads = match &autograd {
            Some(l) if !inputs.is_empty() => Tensor::run_backward(&[l], &inputs, false, false),
            _ => Vec::new(),
        };
        let mut taped = taped.unwrap_or_default();
        let mut misshapen = false;
        let flat_grad = tch::no_grad(|| {
            let pieces: Vec<Tensor> = self
                .params
                .iter()
                .enumerate()
                .map(|(i, (_, p))| {
                    // A parameter the loss does not reach gets no gradient edge at all.
                    let from_autograd = autograd_grads.get(i).filter(|g| g.defined());
                    let from_tape = taped.take(p.data_ptr() as usize).filter(|g| {
                        let fits = g.size() == p.size();
                        misshapen |= !fits;
                        fits
                    });
                    match (from_autograd, from_tape) {
                        (Some(a), Some(b)) => (a + b).flatten(0, -1),
                        (Some(a), None) => a.flatten(0, -1),
                        (None, Some(b)) => b.flatten(0, -1),
                        (None, None) => p.zeros_like().flatten(0, -1),
                    }
                })
                .collect();
            concat_or_empty(&pieces)
        });
        // Left-over or misshapen hand-written gradients are bugs: say so rather than train on
        // a partial gradient.
        if !taped.is_empty() || misshapen {
            return Err(Error::InvalidArgument {
                name: "gradient".into(),
                message: "a hand-written gradient names a tensor that is not a model parameter, \
                          or has another shape"
                    .into(),
            });
        }
        let mut flat_grad = flat_grad;
        let norm = host_norm::<f32>(&mut flat_grad)
            .or_else(|| host_norm::<f64>(&mut flat_grad))
            .unwrap_or_else(|| flat_grad.norm().to_kind(Kind::Double).double_value(&[]));
        self.grad = Some(flat_grad);
        Ok(norm)
    }

    /// The gradient kept by the last [`compute_gradients`](Self::compute_gradients), flat in
    /// name order.
    #[cfg(test)]
    pub(crate) fn gradient(&self) -> Option<&Tensor> {
        self.grad.as_ref()
    }

    /// Clips the last gradient to norm `max` (if given and exceeded) and takes one Adam step,
    /// with decoupled weight decay `weight_decay` (λ ≥ 0; 0 is plain Adam).
    pub(crate) fn step(&mut self, norm: f64, clip: Option<f64>, weight_decay: f64) {
        let _ = self.step_on(norm, clip, weight_decay, true);
    }

    /// [`step`](Self::step), with the host-side update allowed or not (the tests compare the
    /// two).
    fn step_on(
        &mut self,
        norm: f64,
        clip: Option<f64>,
        weight_decay: f64,
        host_allowed: bool,
    ) -> UpdatePath {
        let Some(mut g) = self.grad.take() else {
            return UpdatePath::None;
        };
        self.t += 1;
        let bc1 = 1.0 - BETA1.powi(self.t.min(i32::MAX as i64) as i32);
        let bc2 = 1.0 - BETA2.powi(self.t.min(i32::MAX as i64) as i32);
        let clip_scale = match clip {
            Some(max) if norm > max => max / (norm + 1e-12),
            _ => 1.0,
        };
        let update = Update {
            clip_scale,
            bc1,
            bc2,
            lr: self.lr,
            decay: self.lr * weight_decay,
        };
        if host_allowed
            && (update.on_host::<f32>([&mut self.flat, &mut g, &mut self.m, &mut self.v])
                || update.on_host::<f64>([&mut self.flat, &mut g, &mut self.m, &mut self.v]))
        {
            return UpdatePath::Host;
        }
        tch::no_grad(|| {
            let g = if clip_scale < 1.0 { g * clip_scale } else { g };
            let _ = self.m.lerp_(&g, 1.0 - BETA1);
            let _ = self.v.lerp_(&g.square(), 1.0 - BETA2);
            let denom = (&self.v / bc2).sqrt() + EPS;
            let adam_step = (&self.m / &denom) * (self.lr / bc1);
            // λ = 0 skips the multiplication, so plain Adam's arithmetic is unchanged.
            if update.decay != 0.0 {
                let _ = self.flat.f_mul_scalar_(1.0 - update.decay);
            }
            let _ = self.flat.f_sub_(&adam_step);
        });
        UpdatePath::Libtorch
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

/// Which code took an update (the tests check that the host path runs where it should).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdatePath {
    /// No gradient was pending.
    None,
    Host,
    Libtorch,
}

/// `cat` along the only dimension, or an empty float tensor for a model without parameters
/// (which libtorch's `cat` refuses).
fn concat_or_empty(pieces: &[Tensor]) -> Tensor {
    if pieces.is_empty() {
        Tensor::zeros([0], (Kind::Float, tch::Device::Cpu))
    } else {
        Tensor::cat(pieces, 0)
    }
}

/// One Adam update's constants.
struct Update {
    clip_scale: f64,
    bc1: f64,
    bc2: f64,
    lr: f64,
    /// lr·λ: each parameter is first multiplied by 1 − lr·λ (0: no decay).
    decay: f64,
}

impl Update {
    /// The update `[parameters, gradient, m, v]` element by element on host memory: on the
    /// CPU this is one pass instead of eight libtorch operators (each of which wakes the
    /// thread pool), a fraction of the time for the small flows of the benchmarks. The
    /// arithmetic is libtorch's, in the tensors' own precision and order (`lerp` as
    /// `a + w (b − a)`); results agree with libtorch's to rounding (its vector kernels may
    /// fuse multiply-adds). Training is chaotic at that level, as any change of rounding
    /// makes it: Adam divides by √v, which turns rounding differences in near-zero gradients
    /// into full-size steps, so runs agree in distribution, not bit for bit.
    ///
    /// Returns false, changing nothing, unless all four are contiguous CPU tensors of
    /// element type `T`.
    fn on_host<T: HostFloat>(&self, tensors: [&mut Tensor; 4]) -> bool {
        // SAFETY: the optimiser's own buffers and its gradient; the model's views of `flat` are
        // not used during the update (it runs between training steps, on the training thread).
        let Some([p, g, m, v]) = (unsafe { host_slices::<T, 4>(tensors) }) else {
            return false;
        };
        if [g.len(), m.len(), v.len()].iter().any(|&n| n != p.len()) {
            return false;
        }
        let clip = (self.clip_scale < 1.0).then(|| T::from_f64(self.clip_scale));
        let w1 = T::from_f64(1.0 - BETA1);
        let w2 = T::from_f64(1.0 - BETA2);
        let bc2 = T::from_f64(self.bc2);
        let eps = T::from_f64(EPS);
        let step = T::from_f64(self.lr / self.bc1);
        let keep = (self.decay != 0.0).then(|| T::from_f64(1.0 - self.decay));
        for (((p, &g), m), v) in p
            .iter_mut()
            .zip(g.iter())
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            let g = match clip {
                Some(c) => g * c,
                None => g,
            };
            *m = *m + w1 * (g - *m);
            *v = *v + w2 * (g * g - *v);
            let denom = (*v / bc2).sqrt() + eps;
            if let Some(keep) = keep {
                *p = *p * keep;
            }
            *p = *p - *m / denom * step;
        }
        true
    }
}

/// The Euclidean norm of a freshly concatenated gradient, summed in float64 on host memory
/// (None unless it is a contiguous CPU tensor of element type `T`).
fn host_norm<T: HostFloat>(gradient: &mut Tensor) -> Option<f64> {
    // SAFETY: the gradient was just made by `cat`; nothing else refers to it.
    let [g] = unsafe { host_slices::<T, 1>([gradient]) }?;
    Some(g.iter().map(|&v| v.to_f64().powi(2)).sum::<f64>().sqrt())
}

/// The element types the host-side update handles, with the arithmetic it needs.
trait HostFloat:
    tch::kind::Element
    + Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn from_f64(value: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
}

impl HostFloat for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl HostFloat for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// Mutable views of the memory of N tensors, if every one is a non-empty contiguous CPU
/// tensor of element type `T` and no two overlap (None otherwise).
///
/// # Safety
/// Other tensor handles may share this memory (views, shallow clones) without the borrow
/// checker knowing: the caller must make sure none of them is read or written while the
/// slices live.
unsafe fn host_slices<T: tch::kind::Element, const N: usize>(
    tensors: [&mut Tensor; N],
) -> Option<[&mut [T]; N]> {
    let usable = |t: &Tensor| {
        t.device() == tch::Device::Cpu && t.kind() == T::KIND && t.is_contiguous() && t.numel() > 0
    };
    if !tensors.iter().all(|t| usable(t)) {
        return None;
    }
    let ranges: Vec<(usize, usize)> = tensors
        .iter()
        .map(|t| {
            let start = t.data_ptr() as usize;
            (start, start + t.numel() * std::mem::size_of::<T>())
        })
        .collect();
    for (i, a) in ranges.iter().enumerate() {
        if ranges[i + 1..].iter().any(|b| a.0 < b.1 && b.0 < a.1) {
            return None;
        }
    }
    // SAFETY: each tensor is a contiguous CPU tensor of element type T, so `data_ptr` points
    // at `numel` initialised, aligned values of T; the ranges were checked to be disjoint, so
    // the slices do not alias each other; other handles are the caller's to keep quiet.
    Some(
        tensors
            .map(|t| unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, t.numel()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model without parameters (a flow of permutations only) trains as a no-op instead of
    /// tripping libtorch's refusal to concatenate nothing.
    #[test]
    fn a_model_without_parameters_is_not_an_error() {
        let _torch = crate::generator::torch_lock();
        let mut adam = Adam::new(Vec::new(), 1e-3);
        let norm = adam.compute_gradients(StepLoss::default()).unwrap();
        assert_eq!(norm, 0.0);
        adam.step(norm, Some(1.0), 0.0);
    }

    /// After a reset, the first step has Adam's initial size (lr per coordinate, the sign of
    /// the gradient), however different the earlier gradients were.
    #[test]
    fn a_reset_forgets_the_earlier_gradients() {
        let _torch = crate::generator::torch_lock();
        let p = Tensor::zeros([3], (tch::Kind::Double, tch::Device::Cpu)).set_requires_grad(true);
        let mut adam = Adam::new(vec![("p".into(), p.shallow_clone())], 0.1);
        let step_with = |adam: &mut Adam, g: [f64; 3]| {
            let loss = (&p * Tensor::from_slice(&g)).sum(tch::Kind::Double);
            let norm = adam.compute_gradients(StepLoss::autograd(loss)).unwrap();
            let before = Vec::<f64>::try_from(&p.detach()).unwrap();
            adam.step(norm, None, 0.0);
            let after = Vec::<f64>::try_from(&p.detach()).unwrap();
            after
                .iter()
                .zip(&before)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>()
        };
        for _ in 0..2000 {
            step_with(&mut adam, [1e-3, 1e-3, 1e-3]);
        }
        // Without a reset, a 10⁴× larger gradient late in training takes a step of about
        // lr · 0.1 / √(0.001 / (1 − 0.999²⁰⁰¹)) ≈ 2.9 lr: the second moment lags behind.
        let shocked = step_with(&mut adam, [10.0, -10.0, 10.0]);
        assert!(shocked[0].abs() > 0.25, "{shocked:?}");
        adam.reset_moments();
        let fresh = step_with(&mut adam, [10.0, -10.0, 10.0]);
        for (d, sign) in fresh.iter().zip([-1.0, 1.0, -1.0]) {
            assert!((d - 0.1 * sign).abs() < 1e-6, "{fresh:?}");
        }
    }

    /// Decoupled weight decay shrinks each parameter by 1 − lr·λ per step whatever the
    /// gradient: with a zero gradient Adam's own step is 0, so after n steps p = p₀ (1 − lr·λ)ⁿ,
    /// on both update paths.
    #[test]
    fn weight_decay_shrinks_parameters_geometrically() {
        let _torch = crate::generator::torch_lock();
        for host in [true, false] {
            let p = Tensor::from_slice(&[2.0f64, -3.0, 0.5]).set_requires_grad(true);
            let mut adam = Adam::new(vec![("p".into(), p.shallow_clone())], 0.1);
            for _ in 0..10 {
                let loss = (&p * 0.0).sum(Kind::Double);
                let norm = adam.compute_gradients(StepLoss::autograd(loss)).unwrap();
                adam.step_on(norm, None, 0.5, host);
            }
            let after = Vec::<f64>::try_from(&p.detach()).unwrap();
            let factor = 0.95f64.powi(10);
            for (a, p0) in after.iter().zip([2.0, -3.0, 0.5]) {
                assert!((a - p0 * factor).abs() < 1e-12, "host {host}: {after:?}");
            }
        }
    }

    /// The host-side update and the libtorch one take the same steps, to float32 rounding
    /// (with and without clipping, and with weight decay).
    #[test]
    fn host_and_libtorch_updates_agree() {
        let _torch = crate::generator::torch_lock();
        for (clip, weight_decay) in [(None, 0.0), (Some(0.5), 0.0), (Some(0.5), 0.3)] {
            let run = |host: bool| -> Vec<f32> {
                tch::manual_seed(7);
                let a =
                    Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
                let b = Tensor::randn([5], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
                let mut adam = Adam::new(
                    vec![
                        ("a".into(), a.shallow_clone()),
                        ("b".into(), b.shallow_clone()),
                    ],
                    0.05,
                );
                for step in 0..20 {
                    let loss = (&a * &a).sum(Kind::Float) * (1.0 + step as f64)
                        + (&b - 1.0).pow_tensor_scalar(4).sum(Kind::Float);
                    let norm = adam.compute_gradients(StepLoss::autograd(loss)).unwrap();
                    let path = adam.step_on(norm, clip, weight_decay, host);
                    let expected = if host {
                        UpdatePath::Host
                    } else {
                        UpdatePath::Libtorch
                    };
                    assert_eq!(path, expected);
                }
                let flat = Tensor::cat(&[a.detach().flatten(0, -1), b.detach().flatten(0, -1)], 0);
                Vec::<f32>::try_from(&flat).unwrap()
            };
            let (host, libtorch) = (run(true), run(false));
            // float32 rounding: ~6e-8 per operation, ~10 operations per step, 20 steps.
            for (h, l) in host.iter().zip(&libtorch) {
                assert!(
                    (h - l).abs() < 1e-5 * (1.0 + l.abs()),
                    "{clip:?}: {h} vs {l}"
                );
            }
            assert!(host.iter().any(|v| v.abs() > 1e-3));
        }
    }
}
