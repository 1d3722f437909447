//! The loss terms: forward KL on data and the reverse-KL surrogate with Rust forces.
//!
//! Size: the terms share one batch's tensors and one backward pass, so they live together;
//! past line ~360 the file is its tests (gradients against finite differences).

use boltzgen_potentials::Potential;
use rand::seq::SliceRandom;
use tch::{Kind, Tensor};

use super::{random_row, StepLoss, TrainConfig};
use crate::error::{Error, Result};
use crate::generator::tensor::{batch_to_tensor, tensor_to_vec};
use crate::generator::{Flow, Generator};
use crate::rng::{stream, ChainRng};

/// The values of one step's loss terms, for the report.
#[derive(Debug, Default)]
pub(crate) struct Terms {
    pub(crate) forward_nll: Option<f64>,
    pub(crate) reverse_free_energy: Option<f64>,
    pub(crate) batch_ess: Option<f64>,
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
        if let Some(v) = self.batch_ess {
            parts.push(format!("batch ESS fraction {v}"));
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

/// Evaluates `U` and `∇U` for reverse-KL batches, in parallel only where that pays.
///
/// rayon's workers keep spinning for a while after a parallel loop, and libtorch's OpenMP
/// threads do the same after each operator: on a machine with few cores the two pools then
/// take the cores from each other. For cheap potentials (the toy targets: microseconds per
/// batch) that contention cost 1–2 ms per training step on 2 cores, far more than the
/// parallel loop saved (BENCHMARKS.md, "Reverse-KL training speed"). So the first batch is
/// evaluated row by row and timed; later batches go to rayon only if it took longer than
/// [`PARALLEL_ENERGY_THRESHOLD`]. The row-by-row path calls `energy_and_gradient`, the
/// parallel one `energies_and_gradients`: they agree for every potential whose batch method
/// evaluates rows independently, as all of `boltzgen-potentials` do (a potential overriding
/// the batch method is trusted to keep that contract).
#[derive(Debug, Default)]
pub(crate) struct BatchEnergies {
    parallel: Option<bool>,
}

/// Sequential batch time above which training evaluates energies with rayon.
const PARALLEL_ENERGY_THRESHOLD: std::time::Duration = std::time::Duration::from_millis(4);

impl BatchEnergies {
    fn evaluate(
        &mut self,
        potential: &dyn Potential,
        xs: &[f64],
        u: &mut [f64],
        g: &mut [f64],
    ) -> boltzgen_potentials::Result<()> {
        if self.parallel == Some(true) {
            return potential.energies_and_gradients(xs, u, g);
        }
        let dim = potential.dim();
        let start = std::time::Instant::now();
        for (i, ((x, ui), gi)) in xs
            .chunks_exact(dim)
            .zip(u.iter_mut())
            .zip(g.chunks_exact_mut(dim))
            .enumerate()
        {
            *ui = potential.energy_and_gradient(x, gi).map_err(|e| {
                boltzgen_potentials::PotentialError::InBatch {
                    index: i,
                    source: Box::new(e),
                }
            })?;
        }
        if self.parallel.is_none() {
            self.parallel = Some(start.elapsed() > PARALLEL_ENERGY_THRESHOLD);
        }
        Ok(())
    }
}

/// One batch of the reverse-KL term: its loss (value and gradient) and the free energy.
pub(crate) struct ReverseKl {
    /// `weight · mean[β ⟨x, stopgrad(g)⟩ + log q_θ(x)]`, with its gradient.
    pub(crate) loss: StepLoss,
    /// `mean[β U(x) + log q(x)]` with the raw U (what the report shows).
    pub(crate) free_energy: f64,
}

/// The reverse-KL term of a batch of `config.batch_size` flow draws at the inverse
/// temperature of `step`, scaled by `weight = config.reverse_weight`.
///
/// Draw `x = f_θ(z)`, evaluate `U` and `g = ∇U` in Rust, and minimise
/// `mean[β ⟨x, stopgrad(g)⟩ + log q_θ(x)]`, whose gradient in θ equals that of
/// `mean[β U(x) + log q_θ(x)]` (reparameterisation: ∂U/∂θ = ⟨∇U, ∂x/∂θ⟩). With a regulariser
/// the surrogate uses `U_reg` and its slope; the reported value always uses the raw U.
///
/// Flows made of affine couplings, ActNorm and permutations take the hand-written backward
/// pass (`Flow::backward_taped`, with `∂L/∂x = weight β g / n` and `∂L/∂log|det J| =
/// −weight / n`); others build the surrogate for autograd. Both give the same gradient.
///
/// The inner `Err(reason)` means the batch is unusable (a non-finite draw or energy) and the
/// step should be skipped; the outer error is a real failure.
pub(crate) fn reverse_kl(
    flow: &Flow,
    potential: &dyn Potential,
    config: &TrainConfig,
    step: usize,
    energies: &mut BatchEnergies,
    rng: &mut ChainRng,
) -> Result<std::result::Result<ReverseKl, String>> {
    let beta = config.beta_at(step);
    let (batch_size, weight) = (config.batch_size, config.reverse_weight);
    let dim = flow.dim();
    let z = flow.latent(batch_size, rng)?;
    let taped = flow.has_taped_backward();
    let (x, logdet, tape) = if taped {
        let (x, logdet, tape) = flow.forward_taped(&z)?;
        (x, logdet, Some(tape))
    } else {
        let (x, logdet) = flow.forward_t(&z)?;
        (x, logdet, None)
    };
    let log_q = flow.base_log_prob_t(&z) - logdet;
    let x_host = tensor_to_vec(&x.detach())?;
    let mut u = vec![0.0; batch_size];
    let mut g = vec![0.0; batch_size * dim];
    if let Err(e) = energies.evaluate(potential, &x_host, &mut u, &mut g) {
        return Ok(Err(format!("reverse KL: {e}")));
    }
    let log_q_host = tensor_to_vec(&log_q.detach())?;
    let n = batch_size as f64;
    let free_energy = u
        .iter()
        .zip(&log_q_host)
        .map(|(u, lq)| beta * u + lq)
        .sum::<f64>()
        / n;
    if let Some(reg) = &config.regularizer {
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
    let to_model = |values: &[f64]| {
        Tensor::f_from_slice(values)
            .and_then(|t| t.f_reshape([batch_size as i64, dim as i64]))
            .and_then(|t| t.f_to_kind(x.kind()))
            .and_then(|t| t.f_to_device(x.device()))
            .map_err(Error::torch("copying forces to the model"))
    };
    let loss = match tape {
        Some(tape) => {
            let surrogate = x_host
                .iter()
                .zip(&g)
                .map(|(x, g)| beta * x * g)
                .chain(log_q_host.iter().copied())
                .sum::<f64>()
                / n;
            let scale = weight * beta / n;
            let grad_x: Vec<f64> = g.iter().map(|v| v * scale).collect();
            let grads = flow.backward_taped(tape, &to_model(&grad_x)?, -weight / n)?;
            StepLoss {
                value: weight * surrogate,
                autograd: None,
                taped: Some(grads),
            }
        }
        None => {
            let g = to_model(&g)?;
            let surrogate = ((&x * &g).sum_dim_intlist(1, false, Kind::Double) * beta + log_q)
                .mean(Kind::Double);
            StepLoss::autograd(surrogate * weight)
        }
    };
    Ok(Ok(ReverseKl { loss, free_energy }))
}

/// One batch of the ESS term: its loss (value and gradient) and the batch's ESS fraction.
pub(crate) struct EssTerm {
    /// `−weight · Σᵢ vᵢ log q_θ(xᵢ)` with `vᵢ = wᵢ² / Σⱼ wⱼ²` held fixed, with its gradient.
    pub(crate) loss: StepLoss,
    /// Kish ESS fraction `(Σ w)² / (n Σ w²)` of the batch's importance weights.
    pub(crate) batch_ess: f64,
}

/// The ESS term of a batch of `config.batch_size` flow draws at the inverse temperature of
/// `step`, scaled by `config.ess_weight`.
///
/// It minimises the Rényi divergence of order 2, `D₂(p‖q) = log E_q[w²]` with `w = p/q`: the
/// Kish ESS fraction of direct draws tends to `1 / E_q[(w / E_q w)²]`, so this is the
/// objective that raises it. Forward KL pulls q up where the data lie and reverse KL pulls it
/// down where the energy is high; neither acts on the rare draws that carry a large weight
/// (q far below p where the data are thin), which are what keeps the ESS low. Here those
/// draws dominate the gradient.
///
/// Draw `x ~ q` without a gradient, evaluate `U` in Rust, and form `log wᵢ = −βUᵢ − log q(xᵢ)`.
/// The importance-sampling estimate of `∫ p²/q_θ` from draws of the current `q` is
/// `(1/n) Σ wᵢ² q(xᵢ)/q_θ(xᵢ)`, whose log has the gradient `−Σ vᵢ ∇_θ log q_θ(xᵢ)` at the
/// current θ, `vᵢ = wᵢ² / Σⱼ wⱼ²`. So the surrogate is `−Σ vᵢ log q_θ(xᵢ)` with `v` held
/// fixed: maximum likelihood on the batch's own draws, each weighted by its squared weight.
/// Draws whose energy is not finite have weight 0.
///
/// The inner `Err(reason)` means the batch is unusable (a non-finite draw, or no finite
/// weight) and the step should be skipped; the outer error is a real failure.
pub(crate) fn ess_term(
    flow: &Flow,
    potential: &dyn Potential,
    config: &TrainConfig,
    step: usize,
    rng: &mut ChainRng,
) -> Result<std::result::Result<EssTerm, String>> {
    let beta = config.beta_at(step);
    let dim = flow.dim();
    let z = flow.latent(config.batch_size, rng)?;
    let (x, log_q) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
        let (x, logdet) = flow.forward_t(&z)?;
        Ok((x, flow.base_log_prob_t(&z) - logdet))
    })?;
    let x = tensor_to_vec(&x)?;
    let log_q = tensor_to_vec(&log_q)?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Ok(Err(format!("ESS term: draw {} is not finite", i / dim)));
    }
    let mut u = vec![0.0; config.batch_size];
    if let Err(e) = potential.energies(&x, &mut u) {
        return Ok(Err(format!("ESS term: {e}")));
    }
    let log_w: Vec<f64> = u.iter().zip(&log_q).map(|(u, lq)| -beta * u - lq).collect();
    let Some(max) = log_w
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .max_by(f64::total_cmp)
    else {
        return Ok(Err("ESS term: no draw has a finite weight".into()));
    };
    // Weights relative to the largest, so that the sums cannot overflow.
    let w: Vec<f64> = log_w
        .iter()
        .map(|&l| if l.is_finite() { (l - max).exp() } else { 0.0 })
        .collect();
    let (sum, sum_sq) = w.iter().fold((0.0, 0.0), |(s, s2), &w| (s + w, s2 + w * w));
    let batch_ess = sum * sum / (config.batch_size as f64 * sum_sq);
    // Only the draws that carry weight enter the likelihood.
    let kept: Vec<usize> = (0..w.len()).filter(|&i| w[i] > 0.0).collect();
    let rows: Vec<f64> = kept
        .iter()
        .flat_map(|&i| x[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let v: Vec<f64> = kept.iter().map(|&i| w[i] * w[i] / sum_sq).collect();
    let rows = batch_to_tensor(&rows, dim, flow.kind(), flow.device())?;
    let v = Tensor::f_from_slice(&v)
        .and_then(|t| t.f_to_device(flow.device()))
        .map_err(Error::torch("copying the ESS weights to the model"))?;
    let surrogate = -(flow.log_prob_t(&rows)?.to_kind(Kind::Double) * v).sum(Kind::Double);
    Ok(Ok(EssTerm {
        loss: StepLoss::autograd(surrogate * config.ess_weight),
        batch_ess,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::flow::tests::perturb;
    use crate::generator::flow::InternalCoordinates;
    use crate::generator::{DeviceChoice, FlowConfig, LayerSpec, Precision};
    use crate::train::adam::Adam;
    use boltzgen_potentials::DoubleWell2D;

    /// The double well written again in torch, so autograd can differentiate βU + log q
    /// directly.
    fn torch_double_well(x: &Tensor) -> Tensor {
        let (a, b) = (x.select(1, 0), x.select(1, 1));
        a.pow_tensor_scalar(4) - a.square() * 6.0 + &a + b.square() * 0.5
    }

    /// The reverse-KL term's gradient (through the surrogate, by autograd for a spline flow
    /// and by the hand-written pass for a RealNVP) equals autograd's gradient of
    /// `weight · mean[βU + log q]` with U written in torch, also with a maximum-likelihood
    /// term added (mixed objective); the reported value is the surrogate's.
    #[test]
    fn surrogate_gradient_equals_autograd_gradient() {
        let _torch = crate::generator::torch_lock();
        let spline = FlowConfig::neural_spline(2, 3, &[16], 6, 3.0);
        let mut real_nvp = FlowConfig::real_nvp(2, 4, &[16, 16]);
        real_nvp
            .layers
            .insert(2, LayerSpec::Permutation { order: vec![1, 0] });
        for (name, config, taped) in [("spline", spline, false), ("real_nvp", real_nvp, true)] {
            tch::manual_seed(1);
            let flow =
                Flow::new(config.with_precision(Precision::Float64), DeviceChoice::Cpu).unwrap();
            assert_eq!(flow.has_taped_backward(), taped, "{name}");
            // A random, non-identity model.
            perturb(&flow, 0.2);
            let mut adam = Adam::new(flow.var_store().variables().into_iter().collect(), 1e-3);
            let (beta, weight) = (0.7, 1.3);
            let data: Vec<f64> = (0..64)
                .map(|i| ((i * 37 % 17) as f64 / 8.5) - 1.0)
                .collect();
            let mut gradient = |use_surrogate: bool| -> Tensor {
                let mut rng = stream(4, 0);
                let loss = if use_surrogate {
                    let config = TrainConfig {
                        beta,
                        reverse_weight: weight,
                        batch_size: 64,
                        ..TrainConfig::default()
                    };
                    let reverse = reverse_kl(
                        &flow,
                        &DoubleWell2D::default(),
                        &config,
                        0,
                        &mut BatchEnergies::default(),
                        &mut rng,
                    )
                    .unwrap()
                    .unwrap();
                    assert_eq!(reverse.loss.taped.is_some(), taped, "{name}");
                    // The reported value is the surrogate weight · mean[β⟨x, ∇U⟩ + log q].
                    let mut rng = stream(4, 0);
                    let z = flow.latent(64, &mut rng).unwrap();
                    let (x, logdet) = flow.forward_t(&z).unwrap();
                    let log_q = tensor_to_vec(&(flow.base_log_prob_t(&z) - logdet)).unwrap();
                    let x = tensor_to_vec(&x).unwrap();
                    let mut u = vec![0.0; 64];
                    let mut g = vec![0.0; 128];
                    DoubleWell2D::default()
                        .energies_and_gradients(&x, &mut u, &mut g)
                        .unwrap();
                    let dot: f64 = x.iter().zip(&g).map(|(x, g)| x * g).sum();
                    let expected = weight * (beta * dot + log_q.iter().sum::<f64>()) / 64.0;
                    assert!(
                        (reverse.loss.value - expected).abs() < 1e-10 * (1.0 + expected.abs()),
                        "{name}: loss {} vs {expected}",
                        reverse.loss.value
                    );
                    reverse.loss
                } else {
                    let z = flow.latent(64, &mut rng).unwrap();
                    let (x, logdet) = flow.forward_t(&z).unwrap();
                    let log_q = flow.base_log_prob_t(&z) - logdet;
                    StepLoss::autograd(
                        (torch_double_well(&x) * beta + log_q).mean(Kind::Double) * weight,
                    )
                };
                // Mixed objective: a maximum-likelihood term by autograd adds to either.
                let mut loss = loss;
                loss.add(StepLoss::autograd(forward_kl(&flow, &data).unwrap() * 0.6));
                adam.compute_gradients(loss).unwrap();
                adam.gradient().unwrap().copy()
            };
            let surrogate = gradient(true);
            let direct = gradient(false);
            let max_grad = direct.abs().max().double_value(&[]);
            let max_diff = (&surrogate - &direct).abs().max().double_value(&[]);
            assert!(
                max_grad > 1e-3,
                "{name}: the check needs non-trivial gradients"
            );
            assert!(
                max_diff < 1e-10 * (1.0 + max_grad),
                "{name}: surrogate and autograd gradients differ by {max_diff}"
            );
        }
    }
    /// The ESS term's gradient is that of `log Σᵢ wᵢ² q₀(xᵢ)/q_θ(xᵢ)` (the log of the
    /// importance-sampling estimate of ∫p²/q_θ from the batch's draws of q₀ = q_θ at the
    /// current θ), written directly for autograd with the same draws; its batch ESS is the
    /// Kish fraction of those draws' weights.
    #[test]
    fn ess_term_gradient_is_that_of_the_log_second_moment_of_the_weights() {
        let _torch = crate::generator::torch_lock();
        tch::manual_seed(3);
        let flow = Flow::new(
            FlowConfig::neural_spline(2, 3, &[16], 6, 3.0).with_precision(Precision::Float64),
            DeviceChoice::Cpu,
        )
        .unwrap();
        perturb(&flow, 0.2);
        let (beta, weight, n) = (0.7, 1.3, 64);
        let config = TrainConfig {
            beta,
            ess_weight: weight,
            batch_size: n,
            ..TrainConfig::default()
        };
        let target = DoubleWell2D::default();
        let mut adam = Adam::new(flow.var_store().variables().into_iter().collect(), 1e-3);

        let term = ess_term(&flow, &target, &config, 0, &mut stream(4, 0))
            .unwrap()
            .unwrap();
        adam.compute_gradients(term.loss).unwrap();
        let surrogate = adam.gradient().unwrap().copy();

        let z = flow.latent(n, &mut stream(4, 0)).unwrap();
        let x = tch::no_grad(|| flow.forward_t(&z).unwrap().0);
        let x_host = tensor_to_vec(&x).unwrap();
        let mut u = vec![0.0; n];
        target.energies(&x_host, &mut u).unwrap();
        let u = Tensor::from_slice(&u);
        let log_q = flow.log_prob_t(&x).unwrap();
        let log_second_moment = (u * (-2.0 * beta) - &log_q - log_q.detach()).logsumexp([0], false);
        let lw: Vec<f64> = tensor_to_vec(&(-log_q.detach())).unwrap();
        adam.compute_gradients(StepLoss::autograd(log_second_moment * weight))
            .unwrap();
        let direct = adam.gradient().unwrap().copy();

        let max_grad = direct.abs().max().double_value(&[]);
        let max_diff = (&surrogate - &direct).abs().max().double_value(&[]);
        assert!(max_grad > 1e-3, "the check needs non-trivial gradients");
        assert!(
            max_diff < 1e-10 * (1.0 + max_grad),
            "ESS term and autograd gradients differ by {max_diff}"
        );

        // Kish fraction of wᵢ = exp(−βUᵢ − log qᵢ), computed independently.
        let mut u = vec![0.0; n];
        target.energies(&x_host, &mut u).unwrap();
        let w: Vec<f64> = u
            .iter()
            .zip(&lw)
            .map(|(u, l)| (-beta * u + l).exp())
            .collect();
        let kish =
            w.iter().sum::<f64>().powi(2) / (n as f64 * w.iter().map(|w| w * w).sum::<f64>());
        assert!(
            (term.batch_ess - kish).abs() < 1e-12,
            "batch ESS {} vs {kish}",
            term.batch_ess
        );
    }

    /// Pair springs `Σ_{i<j} k (r_ij − r₀)²` over eight atoms: smooth, invariant under
    /// rotations and translations like a molecular force field.
    struct PairSprings;

    impl Potential for PairSprings {
        fn dim(&self) -> usize {
            24
        }
        fn name(&self) -> &str {
            "pair springs"
        }
        fn compute_energy(&self, x: &[f64]) -> f64 {
            self.compute_energy_and_gradient(x, &mut [0.0; 24])
        }
        fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
            let (k, r0) = (30.0, 0.2);
            grad.fill(0.0);
            let mut u = 0.0;
            for i in 0..8 {
                for j in i + 1..8 {
                    let d: Vec<f64> = (0..3).map(|a| x[3 * i + a] - x[3 * j + a]).collect();
                    let r = d.iter().map(|v| v * v).sum::<f64>().sqrt();
                    u += k * (r - r0).powi(2);
                    for a in 0..3 {
                        let f = 2.0 * k * (r - r0) * d[a] / r;
                        grad[3 * i + a] += f;
                        grad[3 * j + a] -= f;
                    }
                }
            }
            u
        }
    }

    /// The reverse-KL gradient of an internal-coordinate flow (spline couplings, then the
    /// Z-matrix placement written in libtorch, with the Jacobian J_int in log q) against central
    /// finite differences of `mean[βU(f_θ(z)) + log q_θ(f_θ(z))]` at fixed latent draws, along
    /// random directions in parameter space. The finite differences take log q from the
    /// inverse pass, so a wrong Jacobian in the forward placement fails the check too.
    #[test]
    fn internal_coordinate_reverse_kl_gradient_matches_finite_differences() {
        let _torch = crate::generator::torch_lock();
        tch::manual_seed(3);
        let (bonds, frames) = crate::generator::flow::tests::branched_molecule();
        let internal = InternalCoordinates::fit(8, &bonds, &frames, 4.0).unwrap();
        let config =
            FlowConfig::internal_spline(internal, 4, &[16], 6).with_precision(Precision::Float64);
        let flow = Flow::new(config, DeviceChoice::Cpu).unwrap();
        perturb(&flow, 0.1);
        let (beta, n) = (0.4, 32);
        let train = TrainConfig {
            beta,
            reverse_weight: 1.0,
            batch_size: n,
            ..TrainConfig::default()
        };
        let objective = || -> f64 {
            let z = flow.latent(n, &mut stream(9, 0)).unwrap();
            let x = tensor_to_vec(&tch::no_grad(|| flow.forward_t(&z)).unwrap().0).unwrap();
            // log q by the inverse pass on the host (Cartesian → internal → latent), which
            // shares no code with the libtorch placement that the gradient goes through.
            let log_q = flow.log_prob(&x).unwrap();
            let mut u = vec![0.0; n];
            PairSprings.energies(&x, &mut u).unwrap();
            u.iter()
                .zip(&log_q)
                .map(|(u, lq)| beta * u + lq)
                .sum::<f64>()
                / n as f64
        };
        let reverse = reverse_kl(
            &flow,
            &PairSprings,
            &train,
            0,
            &mut BatchEnergies::default(),
            &mut stream(9, 0),
        )
        .unwrap()
        .unwrap();
        let loss = reverse.loss.autograd.expect("spline flows use autograd");
        let variables = flow.var_store().trainable_variables();
        for v in &variables {
            v.shallow_clone().zero_grad();
        }
        loss.backward();
        let grads: Vec<Tensor> = variables.iter().map(Tensor::grad).collect();
        for direction in 0..3 {
            tch::manual_seed(100 + direction);
            let d: Vec<Tensor> = variables.iter().map(Tensor::randn_like).collect();
            let analytic: f64 = grads
                .iter()
                .zip(&d)
                .map(|(g, d)| (g * d).sum(Kind::Double).double_value(&[]))
                .sum();
            let eps = 1e-6;
            let shift = |s: f64| {
                tch::no_grad(|| {
                    for (mut v, d) in variables.iter().map(Tensor::shallow_clone).zip(&d) {
                        let _ = v.f_add_(&(d * s));
                    }
                })
            };
            shift(eps);
            let plus = objective();
            shift(-2.0 * eps);
            let minus = objective();
            shift(eps);
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                analytic.abs() > 1e-2,
                "direction {direction}: the check needs a non-trivial derivative"
            );
            assert!(
                (analytic - numeric).abs() < 1e-5 * (1.0 + numeric.abs()),
                "direction {direction}: surrogate {analytic} against finite differences {numeric}"
            );
        }
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
        let threads = std::env::var("PROFILE_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        tch::set_num_threads(threads);
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
        let (mut t_lat, mut t_fwd, mut t_u, mut t_back, mut t_grad, mut t_step) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let reps = 200;
        let mut energies = BatchEnergies::default();
        for _ in 0..reps {
            let t = Instant::now();
            let z = flow.latent(256, &mut rng).unwrap();
            t_lat += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let (x, logdet, tape) = flow.forward_taped(&z).unwrap();
            let log_q = flow.base_log_prob_t(&z) - logdet;
            t_fwd += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let xh = tensor_to_vec(&x).unwrap();
            let _ = tensor_to_vec(&log_q).unwrap();
            let mut u = vec![0.0; 256];
            let mut g = vec![0.0; 256 * 32];
            energies.evaluate(&target, &xh, &mut u, &mut g).unwrap();
            let gt = Tensor::from_slice(&g).reshape([256, 32]).to_kind(x.kind()) / 256.0;
            t_u += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let grads = flow.backward_taped(tape, &gt, -1.0 / 256.0).unwrap();
            t_back += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let norm = adam
                .compute_gradients(StepLoss {
                    value: 0.0,
                    autograd: None,
                    taped: Some(grads),
                })
                .unwrap();
            t_grad += t.elapsed().as_secs_f64();
            let t = Instant::now();
            adam.step(norm, None, 0.0);
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
            "latent {:.3} ms, taped forward {:.3} ms, energies {:.3} ms, hand-written backward {:.3} ms, \
             flat gradient {:.3} ms, adam {:.3} ms",
            ms(t_lat), ms(t_fwd), ms(t_u), ms(t_back), ms(t_grad), ms(t_step)
        );
    }
}
