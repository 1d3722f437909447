//! β-VAE training: maximise `E_r[log p_θ(x | z)] − β KL(r_φ(z | x) ‖ p(z))`, with KL warm-up and
//! free bits, plus the posterior-collapse diagnostics.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::adam::Adam;
use super::objective::DataSplit;
use super::{
    guarded_step, record_validation, restore, snapshot, StepLoss, StepReport, TrainConfig,
    TrainObserver, TrainReport,
};
use crate::error::{Error, Result};
use crate::generator::tensor::{batch_to_tensor, standard_normal, tensor_to_vec};
use crate::generator::vae::gaussian_log_prob;
use crate::generator::{Generator, Vae};
use crate::rng::stream;

/// The VAE-specific part of the objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeObjective {
    /// β, the weight of the KL term (1 gives the ELBO).
    pub kl_weight: f64,
    /// The KL weight rises linearly from 0 to `kl_weight` over these steps.
    pub kl_warmup_steps: usize,
    /// Free bits λ (nats per latent dimension): each dimension's batch-mean KL counts as at
    /// least λ, so the optimiser gains nothing from collapsing it below λ.
    pub free_bits: f64,
}

impl Default for VaeObjective {
    fn default() -> Self {
        Self {
            kl_weight: 1.0,
            kl_warmup_steps: 0,
            free_bits: 0.0,
        }
    }
}

/// Per-dimension KL(r_φ(z_d | x) ‖ 𝒩(0, 1)), `[n, latent]`.
fn kl_per_dim(mean: &Tensor, log_std: &Tensor) -> Tensor {
    (mean.square() + (log_std * 2.0).exp() - 1.0 - log_std * 2.0) * 0.5
}

/// Trains `vae` on `data` (`[n × dim]`) by the β-ELBO. From `config` it uses the optimiser,
/// schedule, clipping, validation, early-stopping and guard settings; its forward/reverse
/// weights must be the defaults (1, 0): a VAE has no exact density for reverse KL.
///
/// The validation metric is the negative ELBO at β = 1 without free bits, an upper bound on
/// the NLL.
///
/// # Errors
/// As [`super::train_flow`].
pub fn train_vae(
    vae: &mut Vae,
    data: &[f64],
    config: &TrainConfig,
    objective: &VaeObjective,
    observer: &mut dyn TrainObserver,
) -> Result<TrainReport> {
    config.validate()?;
    for (name, weight) in [
        ("reverse_weight", config.reverse_weight),
        ("ess_weight", config.ess_weight),
    ] {
        if weight != 0.0 {
            return Err(Error::InvalidArgument {
                name: name.into(),
                message:
                    "VAEs are trained by the ELBO only; the energy terms need an exact density"
                        .into(),
            });
        }
    }
    if !(objective.kl_weight >= 0.0 && objective.free_bits >= 0.0) {
        return Err(Error::InvalidArgument {
            name: "kl_weight".into(),
            message: "kl_weight and free_bits must be >= 0".into(),
        });
    }
    let dim = vae.dim();
    let split = DataSplit::new(data, dim, config.validation_fraction, config.seed)?;
    let mut rng = stream(config.seed, 0);
    let mut adam = Adam::new(
        vae.var_store().variables().into_iter().collect(),
        config.learning_rate,
    );
    observer.on_start(config.steps);
    let mut report = TrainReport {
        steps: 0,
        skipped_steps: 0,
        final_loss: None,
        validation: Vec::new(),
        best_validation_nll: None,
        stopped_early: false,
        losses: Vec::with_capacity(config.steps.min(1 << 16)),
        step_terms: Vec::new(),
    };
    let mut consecutive_bad = 0;
    let mut best: Option<(f64, HashMap<String, Tensor>)> = None;
    let mut stale = 0;

    for step in 0..config.steps {
        let lr = config.learning_rate_at(step);
        adam.set_lr(lr);
        let warm = if objective.kl_warmup_steps == 0 {
            1.0
        } else {
            ((step + 1) as f64 / objective.kl_warmup_steps as f64).min(1.0)
        };
        let beta = objective.kl_weight * warm;

        let batch = split.batch(config.batch_size, &mut rng);
        let x = batch_to_tensor(&batch, dim, vae.kind(), vae.device())?;
        let eps = standard_normal(
            config.batch_size,
            vae.latent_dim(),
            &mut rng,
            vae.kind(),
            vae.device(),
        )?;
        let (mean, log_std) = vae.encode_t(&x);
        let z = &mean + log_std.exp() * &eps;
        let (dm, dl) = vae.decode_t(&z);
        let reconstruction = gaussian_log_prob(&x, &dm, &dl).mean(Kind::Double);
        let kl = kl_per_dim(&mean, &log_std)
            .to_kind(Kind::Double)
            .mean_dim(0, false, Kind::Double);
        let kl_term = kl.clamp_min(objective.free_bits).sum(Kind::Double);
        let loss = -&reconstruction + &kl_term * beta;
        let neg_elbo = (-reconstruction + kl.sum(Kind::Double)).double_value(&[]);

        let outcome = guarded_step(
            &mut adam,
            StepLoss::autograd(loss),
            None,
            &format!("negative ELBO {neg_elbo}"),
            config,
            step,
            &mut report,
            &mut consecutive_bad,
        )?;
        observer.on_step(&StepReport {
            step,
            loss: outcome.loss,
            forward_nll: Some(neg_elbo),
            reverse_free_energy: None,
            batch_ess: None,
            grad_norm: outcome.grad_norm,
            learning_rate: lr,
            skipped: outcome.skipped,
        });
        if observer.should_stop() {
            return Err(Error::Interrupted {
                stage: "training".into(),
            });
        }

        let evaluate = (step + 1) % config.eval_every == 0 || step + 1 == config.steps;
        if evaluate && split.validation_rows() > 0 {
            let nelbo = negative_elbo(vae, &split.validation, config.seed)?;
            let stop = record_validation(
                nelbo,
                step,
                config,
                &mut report,
                &mut best,
                &mut stale,
                || snapshot(vae.var_store()),
                observer,
            );
            if stop {
                break;
            }
        }
    }
    if let Some((nll, weights)) = best {
        report.best_validation_nll = Some(nll);
        if config.patience.is_some() {
            restore(vae.var_store_mut(), &weights);
        }
    }
    observer.on_finish(&report);
    Ok(report)
}

/// Mean negative ELBO (β = 1) of `x`, one encoder sample per row from a fixed stream.
pub(crate) fn negative_elbo(vae: &Vae, x: &[f64], seed: u64) -> Result<f64> {
    let t = batch_to_tensor(x, vae.dim(), vae.kind(), vae.device())?;
    let n = t.size()[0] as usize;
    let eps = standard_normal(
        n,
        vae.latent_dim(),
        &mut stream(seed, 2),
        vae.kind(),
        vae.device(),
    )?;
    let value = tch::no_grad(|| {
        let (mean, log_std) = vae.encode_t(&t);
        let z = &mean + log_std.exp() * &eps;
        let (dm, dl) = vae.decode_t(&z);
        let rec = gaussian_log_prob(&t, &dm, &dl);
        let kl = kl_per_dim(&mean, &log_std).sum_dim_intlist(1, false, Kind::Double);
        (kl - rec).mean(Kind::Double)
    });
    Ok(value.double_value(&[]))
}

/// Posterior-collapse diagnostics of a VAE on data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentDiagnostics {
    /// Mean KL(r(z_d | x) ‖ p(z_d)) over the data, per latent dimension (nats).
    pub kl_per_dim: Vec<f64>,
    /// Variance over the data of the encoder mean, per latent dimension.
    pub activity: Vec<f64>,
    /// Number of dimensions whose activity exceeds the threshold (Burda et al.'s active
    /// units); a collapsed dimension ignores x and has activity ≈ 0.
    pub active_units: usize,
    /// The activity threshold used.
    pub threshold: f64,
}

/// KL per latent dimension and active units (activity threshold 0.01) on `x`.
///
/// # Errors
/// As [`Generator::log_prob`].
pub fn latent_diagnostics(vae: &Vae, x: &[f64]) -> Result<LatentDiagnostics> {
    let threshold = 0.01;
    let t = batch_to_tensor(x, vae.dim(), vae.kind(), vae.device())?;
    let (kl, activity) = tch::no_grad(|| {
        let (mean, log_std) = vae.encode_t(&t);
        let kl = kl_per_dim(&mean, &log_std)
            .to_kind(Kind::Double)
            .mean_dim(0, false, Kind::Double);
        let activity = mean.to_kind(Kind::Double).var_dim(0, false, false);
        (kl, activity)
    });
    let kl_per_dim = tensor_to_vec(&kl)?;
    let activity = tensor_to_vec(&activity)?;
    let active_units = activity.iter().filter(|&&a| a > threshold).count();
    Ok(LatentDiagnostics {
        kl_per_dim,
        activity,
        active_units,
        threshold,
    })
}
