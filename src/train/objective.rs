//! The loss terms: forward KL on data and the reverse-KL surrogate with Rust forces.

use boltzgen_potentials::{EnergyRegularizer, Potential};
use rand::seq::SliceRandom;
use tch::{Kind, Tensor};

use super::random_row;
use crate::error::{Error, Result};
use crate::generator::tensor::{batch_to_tensor, tensor_to_vec};
use crate::generator::{Flow, Generator};
use crate::rng::{stream, ChainRng};

/// The values of one step's loss terms, for the report.
#[derive(Debug, Default)]
pub(crate) struct Terms {
    pub(crate) forward_nll: Option<f64>,
    pub(crate) reverse_free_energy: Option<f64>,
    /// Why the step must be skipped, if it must.
    pub(crate) problem: Option<String>,
}

impl Terms {
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.forward_nll {
            parts.push(format!("forward NLL {v}"));
        }
        if let Some(v) = self.reverse_free_energy {
            parts.push(format!("reverse free energy {v}"));
        }
        parts.join(", ")
    }
}

/// Training data split once, reproducibly, into training and validation rows.
pub(crate) struct DataSplit {
    pub(crate) dim: usize,
    pub(crate) train: Vec<f64>,
    pub(crate) validation: Vec<f64>,
}

impl DataSplit {
    pub(crate) fn new(
        data: &[f64],
        dim: usize,
        validation_fraction: f64,
        seed: u64,
    ) -> Result<Self> {
        if data.is_empty() || data.len() % dim != 0 {
            return Err(Error::Dimension {
                what: "training data (length must be a positive multiple of the model dimension)"
                    .into(),
                expected: dim,
                got: data.len(),
            });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("training data coordinate (row {})", index / dim),
                index,
            });
        }
        let n = data.len() / dim;
        let mut order: Vec<usize> = (0..n).collect();
        // A stream of its own, so the split does not shift the training draws.
        order.shuffle(&mut stream(seed, 1));
        let n_val = ((n as f64) * validation_fraction).floor() as usize;
        let n_val = n_val.min(n - 1);
        let rows = |idx: &[usize]| {
            idx.iter()
                .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
                .collect()
        };
        Ok(Self {
            dim,
            validation: rows(&order[..n_val]),
            train: rows(&order[n_val..]),
        })
    }

    pub(crate) fn train_rows(&self) -> usize {
        self.train.len() / self.dim
    }

    pub(crate) fn validation_rows(&self) -> usize {
        self.validation.len() / self.dim
    }

    /// A batch of training rows drawn uniformly with replacement.
    pub(crate) fn batch(&self, size: usize, rng: &mut ChainRng) -> Vec<f64> {
        let rows = self.train_rows();
        let mut out = Vec::with_capacity(size * self.dim);
        for _ in 0..size {
            let i = random_row(rng, rows);
            out.extend_from_slice(&self.train[i * self.dim..(i + 1) * self.dim]);
        }
        out
    }

    pub(crate) fn validation_nll(&self, flow: &Flow) -> Result<f64> {
        let lq = flow.log_prob(&self.validation)?;
        Ok(-lq.iter().sum::<f64>() / lq.len() as f64)
    }
}

/// `−mean log q(x)` over a data batch, differentiable.
pub(crate) fn forward_kl(flow: &Flow, batch: &[f64]) -> Result<Tensor> {
    let x = batch_to_tensor(batch, flow.dim(), flow.kind(), flow.device())?;
    Ok(-flow.log_prob_t(&x)?.mean(Kind::Double))
}

/// The reverse-KL surrogate and the true free-energy value of a batch of flow draws.
///
/// Draw `x = f_θ(z)`, evaluate `U` and `g = ∇U` in Rust, and return
/// `mean[β ⟨x, stopgrad(g)⟩ + log q_θ(x)]`, whose gradient in θ equals that of
/// `mean[β U(x) + log q_θ(x)]` (reparameterisation: ∂U/∂θ = ⟨∇U, ∂x/∂θ⟩). With a regulariser
/// the surrogate uses `U_reg` and its slope; the reported value always uses the raw U.
///
/// The inner `Err(reason)` means the batch is unusable (a non-finite draw or energy) and the
/// step should be skipped; the outer error is a real failure.
pub(crate) fn reverse_kl(
    flow: &Flow,
    potential: &dyn Potential,
    beta: f64,
    regularizer: Option<&EnergyRegularizer>,
    batch_size: usize,
    rng: &mut ChainRng,
) -> Result<std::result::Result<(Tensor, f64), String>> {
    let dim = flow.dim();
    let z = flow.latent(batch_size, rng)?;
    let (x, logdet) = flow.forward_t(&z)?;
    let log_q = flow.base_log_prob_t(&z) - logdet;
    let x_host = tensor_to_vec(&x.detach())?;
    let mut u = vec![0.0; batch_size];
    let mut g = vec![0.0; batch_size * dim];
    if let Err(e) = potential.energies_and_gradients(&x_host, &mut u, &mut g) {
        return Ok(Err(format!("reverse KL: {e}")));
    }
    let log_q_host = tensor_to_vec(&log_q.detach())?;
    let free_energy = u
        .iter()
        .zip(&log_q_host)
        .map(|(u, lq)| beta * u + lq)
        .sum::<f64>()
        / batch_size as f64;
    if let Some(reg) = regularizer {
        for (ui, gi) in u.iter_mut().zip(g.chunks_exact_mut(dim)) {
            let (_, slope) = reg.apply(*ui);
            gi.iter_mut().for_each(|v| *v *= slope);
        }
    } else if let Some(i) = u.iter().position(|v| !v.is_finite()) {
        return Ok(Err(format!(
            "reverse KL: draw {i} has energy {} (set an energy regulariser to train through such states)",
            u[i]
        )));
    }
    if let Some(i) = g.iter().position(|v| !v.is_finite()) {
        return Ok(Err(format!(
            "reverse KL: the force on draw {} is not finite",
            i / dim
        )));
    }
    let g = Tensor::f_from_slice(&g)
        .and_then(|t| t.f_reshape([batch_size as i64, dim as i64]))
        .and_then(|t| t.f_to_kind(x.kind()))
        .and_then(|t| t.f_to_device(x.device()))
        .map_err(Error::torch("copying forces to the model"))?;
    let surrogate =
        ((&x * &g).sum_dim_intlist(1, false, Kind::Double) * beta + log_q).mean(Kind::Double);
    Ok(Ok((surrogate, free_energy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{DeviceChoice, FlowConfig, Precision};
    use boltzgen_potentials::DoubleWell2D;

    /// The double well written again in torch, so autograd can differentiate βU + log q
    /// directly.
    fn torch_double_well(x: &Tensor) -> Tensor {
        let (a, b) = (x.select(1, 0), x.select(1, 1));
        a.pow_tensor_scalar(4) - a.square() * 6.0 + &a + b.square() * 0.5
    }

    #[test]
    fn surrogate_gradient_equals_autograd_gradient() {
        let _torch = crate::generator::torch_lock();
        tch::manual_seed(1);
        let flow = Flow::new(
            FlowConfig::neural_spline(2, 3, &[16], 6, 3.0).with_precision(Precision::Float64),
            DeviceChoice::Cpu,
        )
        .unwrap();
        // A random, non-identity model.
        tch::no_grad(|| {
            for mut v in flow.var_store().trainable_variables() {
                let noise = v.randn_like() * 0.2;
                let _ = v.f_add_(&noise);
            }
        });
        let beta = 0.7;
        let grads = |use_surrogate: bool| -> Vec<Tensor> {
            let mut rng = stream(4, 0);
            for mut v in flow.var_store().trainable_variables() {
                let mut g = v.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
                let _ = &mut v;
            }
            let loss = if use_surrogate {
                reverse_kl(&flow, &DoubleWell2D::default(), beta, None, 64, &mut rng)
                    .unwrap()
                    .unwrap()
                    .0
            } else {
                let z = flow.latent(64, &mut rng).unwrap();
                let (x, logdet) = flow.forward_t(&z).unwrap();
                let log_q = flow.base_log_prob_t(&z) - logdet;
                (torch_double_well(&x) * beta + log_q).mean(Kind::Double)
            };
            loss.backward();
            flow.var_store()
                .trainable_variables()
                .iter()
                .map(|v| v.grad().copy())
                .collect()
        };
        let surrogate = grads(true);
        let direct = grads(false);
        let mut max_diff: f64 = 0.0;
        let mut max_grad: f64 = 0.0;
        for (a, b) in surrogate.iter().zip(&direct) {
            max_diff = max_diff.max((a - b).abs().max().double_value(&[]));
            max_grad = max_grad.max(b.abs().max().double_value(&[]));
        }
        assert!(max_grad > 1e-3, "the check needs non-trivial gradients");
        assert!(
            max_diff < 1e-10 * (1.0 + max_grad),
            "surrogate and autograd gradients differ by {max_diff}"
        );
    }
}

#[cfg(test)]
mod profile {
    use super::*;
    use crate::generator::{Activation, BaseSpec, DeviceChoice, FlowConfig, LayerSpec, Precision};
    use crate::train::adam::Adam;
    use boltzgen_potentials::ManyWell;
    use std::time::Instant;

    /// Where a reverse-KL step spends its time (run by hand:
    /// `cargo test --release --lib profile_reverse_kl -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn profile_reverse_kl_step() {
        let _torch = crate::generator::torch_lock();
        tch::set_num_threads(2);
        tch::manual_seed(0);
        let layers = (0..8)
            .map(|k| LayerSpec::AffineCoupling {
                transformed: if k % 2 == 0 {
                    (16..32).collect()
                } else {
                    (0..16).collect()
                },
                hidden: vec![64, 64],
                scale_bound: 2.0,
            })
            .collect();
        let cfg = FlowConfig {
            dim: 32,
            layers,
            base: BaseSpec::StandardNormal,
            activation: Activation::LeakyRelu,
            precision: Precision::Float32,
            internal: None,
        };
        let flow = Flow::new(cfg, DeviceChoice::Cpu).unwrap();
        let target = ManyWell::new(32).unwrap();
        let mut adam = Adam::new(flow.var_store().variables().into_iter().collect(), 1e-3);
        let mut rng = stream(0, 0);
        let (mut t_lat, mut t_fwd, mut t_u, mut t_back, mut t_step) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let reps = 200;
        for _ in 0..reps {
            let t = Instant::now();
            let z = flow.latent(256, &mut rng).unwrap();
            t_lat += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (x, logdet) = flow.forward_t(&z).unwrap();
            let log_q = flow.base_log_prob_t(&z) - logdet;
            t_fwd += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let xh = tensor_to_vec(&x.detach()).unwrap();
            let mut u = vec![0.0; 256];
            let mut g = vec![0.0; 256 * 32];
            target.energies_and_gradients(&xh, &mut u, &mut g).unwrap();
            let gt = Tensor::from_slice(&g).reshape([256, 32]).to_kind(x.kind());
            let loss =
                ((&x * &gt).sum_dim_intlist(1, false, Kind::Double) + log_q).mean(Kind::Double);
            t_u += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let norm = adam.compute_gradients(&loss);
            t_back += t.elapsed().as_secs_f64();
            let t = Instant::now();
            adam.step(norm, None);
            t_step += t.elapsed().as_secs_f64();
        }
        let a = Tensor::randn([256, 16], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::randn([256, 16], (Kind::Float, tch::Device::Cpu));
        let w = Tensor::randn([64, 16], (Kind::Float, tch::Device::Cpu));
        let t = Instant::now();
        for _ in 0..1000 {
            let _ = &a + &b;
        }
        let t_add = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..1000 {
            let _ = a.linear::<&Tensor>(&w, None);
        }
        let t_mm = t.elapsed().as_secs_f64();
        let ag = a.set_requires_grad(true);
        let t = Instant::now();
        for _ in 0..1000 {
            let _ = &ag + &b;
        }
        let t_add_grad = t.elapsed().as_secs_f64();
        eprintln!(
            "one add [256x16]: {:.1} us; with autograd {:.1} us; one linear 16->64: {:.1} us",
            t_add * 1e3,
            t_add_grad * 1e3,
            t_mm * 1e3
        );
        let ms = |v: f64| v / reps as f64 * 1e3;
        eprintln!(
            "latent {:.3} ms, forward {:.3} ms, energies+surrogate {:.3} ms, backward {:.3} ms, adam {:.3} ms",
            ms(t_lat), ms(t_fwd), ms(t_u), ms(t_back), ms(t_step)
        );
    }
}
