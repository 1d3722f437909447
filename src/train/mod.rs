//! Training generators: maximum likelihood on data (forward KL), the variational free energy
//! against a Rust potential (reverse KL), or a weighted mix of both.
//!
//! The library prints nothing: progress goes to a [`TrainObserver`].
//!
//! Size: the file is the training loop, its config and its step reports; it runs past 700
//! lines only with its unit tests (from line ~750), which exercise the loop's private state.

mod adam;
mod checkpoint;
mod objective;
pub mod smc;
mod vae;

use std::collections::HashMap;

use boltzgen_potentials::{EnergyRegularizer, Potential};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::generator::flow::ParamGrads;
use crate::generator::{Flow, Generator};
use crate::rng::{stream, ChainRng};

use adam::Adam;
pub use smc::{train_flow_smc, Rung, SmcConfig, SmcObserver, SmcReport};
pub use vae::{latent_diagnostics, train_vae, LatentDiagnostics, VaeObjective};

/// Learning-rate schedule (after the linear warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Cosine decay from the base rate to `final_fraction` of it at the last step.
    Cosine {
        /// Rate at the end, as a fraction of the base rate.
        final_fraction: f64,
    },
}

/// The most optimiser steps a run may ask for (far beyond any real run; bounds what a config
/// can make boltzgen allocate for its reports).
pub const MAX_TRAIN_STEPS: usize = 100_000_000;

/// The largest batch a run may ask for.
pub const MAX_BATCH_SIZE: usize = 10_000_000;

/// Step reports reserved up front; longer runs grow the vectors as they go.
const RESERVED_STEPS: usize = 1 << 16;

/// How a flow is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainMethod {
    /// Gradient steps on the weighted objective terms of [`TrainConfig`] (forward KL,
    /// reverse KL, the ESS term, annealing): [`train_flow`].
    Gradient,
    /// Sequential Monte Carlo annealing with maximum-likelihood refits ([`smc`]): needs a
    /// potential, no schedule, and covers every mode it reaches at the hot end.
    Smc,
}

impl TrainMethod {
    /// The method used when `[train]` does not name one: SMC annealing for flows, gradient
    /// training (on data) for VAEs.
    pub fn default_for(is_flow: bool) -> Self {
        if is_flow {
            TrainMethod::Smc
        } else {
            TrainMethod::Gradient
        }
    }
}

/// Everything that controls a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// How to train; None: [`TrainMethod::default_for`] the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<TrainMethod>,
    /// The knobs of SMC annealing (`[train.smc]`), used by [`TrainMethod::Smc`].
    pub smc: SmcConfig,
    /// Optimiser steps in total.
    pub steps: usize,
    /// Configurations per step (data rows and/or generator draws).
    pub batch_size: usize,
    /// Base Adam learning rate.
    pub learning_rate: f64,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Steps of linear warm-up from 0 to the base rate.
    pub warmup_steps: usize,
    /// Clip the gradient to this Euclidean norm (None: no clipping).
    pub clip_grad_norm: Option<f64>,
    /// Decoupled weight decay λ (AdamW): every step multiplies each weight by 1 − lr·λ before
    /// Adam's update. It limits how sharply a flow can fit its training frames; 0: none.
    pub weight_decay: f64,
    /// Weight of the forward-KL (maximum-likelihood) term; needs data.
    pub forward_weight: f64,
    /// Weight of the reverse-KL (free-energy) term; needs a potential.
    pub reverse_weight: f64,
    /// The reverse-KL term joins at this step (0: from the start). Pre-training by maximum
    /// likelihood first keeps the first reverse-KL batches away from the huge energies of
    /// random configurations (clashing atoms), and keeps the modes the data shows.
    pub reverse_from_step: usize,
    /// When the energy term joins at `reverse_from_step` (> 0): reset Adam's moment estimates
    /// and ramp the learning rate linearly from 0 back to the schedule over this many steps.
    /// Reverse-KL gradients (forces) are typically far larger than maximum-likelihood ones,
    /// and Adam's second-moment estimate (β₂ = 0.999) needs ~1000 steps to follow, so without
    /// a reset the first steps after the join are many times the intended size. 0: the
    /// energy joins without either.
    pub reverse_warmup_steps: usize,
    /// Weight of the ESS term (needs a potential): it minimises `log E_q[w²]`, the Rényi
    /// divergence D₂(p‖q) whose inverse exponential is the Kish ESS fraction of direct draws,
    /// by maximum likelihood on the flow's own draws weighted by their squared importance
    /// weights. It acts on the rare, heavy weights that forward and reverse KL leave alone.
    pub ess_weight: f64,
    /// The ESS term joins at this step (0: from the start). Its weights mean nothing until
    /// the flow is close to the target, so it belongs at the end of training or to a
    /// fine-tuning run (`[model] file`).
    pub ess_from_step: usize,
    /// Inverse temperature of the target exp(−βU) for the reverse-KL term.
    pub beta: f64,
    /// Temperature annealing against mode collapse: the reverse-KL term starts at this
    /// inverse temperature (below `beta`, i.e. hotter, where the modes merge) and moves
    /// geometrically to `beta` over `anneal_steps`. None: train at `beta` throughout.
    pub anneal_from_beta: Option<f64>,
    /// Steps of the annealing ramp.
    pub anneal_steps: usize,
    /// Training-only energy regulariser (None: raw energies).
    pub regularizer: Option<EnergyRegularizer>,
    /// Fraction of the data held out for validation.
    pub validation_fraction: f64,
    /// Evaluate the validation NLL every this many steps.
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement, and keep the best weights
    /// (None: never stop early).
    pub patience: Option<usize>,
    /// Consecutive non-finite steps tolerated before training stops with an error.
    pub max_bad_steps: usize,
    /// Seed of the data shuffling and latent draws.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            method: None,
            smc: SmcConfig::default(),
            steps: 1000,
            batch_size: 256,
            learning_rate: 1e-3,
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            clip_grad_norm: Some(100.0),
            weight_decay: 0.0,
            forward_weight: 1.0,
            reverse_weight: 0.0,
            reverse_from_step: 0,
            reverse_warmup_steps: 0,
            ess_weight: 0.0,
            ess_from_step: 0,
            beta: 1.0,
            anneal_from_beta: None,
            anneal_steps: 0,
            regularizer: None,
            validation_fraction: 0.1,
            eval_every: 100,
            patience: None,
            max_bad_steps: 10,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// The reverse-KL inverse temperature at `step`: geometric from `anneal_from_beta` to
    /// `beta` over `anneal_steps`, then `beta`.
    pub fn beta_at(&self, step: usize) -> f64 {
        match self.anneal_from_beta {
            Some(b0) if step < self.anneal_steps => {
                b0 * (self.beta / b0).powf(step as f64 / self.anneal_steps as f64)
            }
            _ => self.beta,
        }
    }

    /// The learning rate at `step` (0-based): the schedule, times the re-warm-up ramp after
    /// the energy joins (see [`reverse_warmup_steps`](Self::reverse_warmup_steps)).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let ramp = if self.restarts_at_reverse_join() && step >= self.reverse_from_step {
            ((step - self.reverse_from_step + 1) as f64 / self.reverse_warmup_steps as f64).min(1.0)
        } else {
            1.0
        };
        ramp * self.scheduled_learning_rate(step)
    }

    /// Whether Adam restarts and the learning rate warms up again when the energy joins.
    pub(crate) fn restarts_at_reverse_join(&self) -> bool {
        self.reverse_warmup_steps > 0 && self.reverse_from_step > 0 && self.reverse_weight > 0.0
    }

    fn scheduled_learning_rate(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine { final_fraction } => {
                let span = (self.steps - self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let c = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                self.learning_rate * (final_fraction + (1.0 - final_fraction) * c)
            }
        }
    }

    /// The first key set away from its default that SMC annealing does not use (the
    /// objective weights and schedules of gradient training): with `method = "smc"` such a
    /// key would be silently ignored, so it is refused instead.
    pub fn key_unused_by_smc(&self) -> Option<&'static str> {
        let d = Self::default();
        [
            ("steps", self.steps != d.steps),
            ("forward_weight", self.forward_weight != d.forward_weight),
            ("reverse_weight", self.reverse_weight != d.reverse_weight),
            ("ess_weight", self.ess_weight != d.ess_weight),
            (
                "reverse_from_step",
                self.reverse_from_step != d.reverse_from_step,
            ),
            (
                "reverse_warmup_steps",
                self.reverse_warmup_steps != d.reverse_warmup_steps,
            ),
            ("ess_from_step", self.ess_from_step != d.ess_from_step),
            (
                "anneal_from_beta",
                self.anneal_from_beta != d.anneal_from_beta,
            ),
            ("anneal_steps", self.anneal_steps != d.anneal_steps),
            ("regularizer", self.regularizer != d.regularizer),
            ("schedule", self.schedule != d.schedule),
            ("warmup_steps", self.warmup_steps != d.warmup_steps),
            (
                "validation_fraction",
                self.validation_fraction != d.validation_fraction,
            ),
            ("eval_every", self.eval_every != d.eval_every),
            ("patience", self.patience != d.patience),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(key, _)| key)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.smc.validate()?;
        let bad = |name: &str, message: String| {
            Err(Error::InvalidArgument {
                name: name.into(),
                message,
            })
        };
        if self.steps > MAX_TRAIN_STEPS {
            return bad(
                "steps",
                format!("must be at most {MAX_TRAIN_STEPS}, got {}", self.steps),
            );
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return bad(
                "batch_size",
                format!(
                    "must be from 1 to {MAX_BATCH_SIZE}, got {}",
                    self.batch_size
                ),
            );
        }
        if let Some(c) = self.clip_grad_norm {
            if !(c > 0.0 && c.is_finite()) {
                return bad(
                    "clip_grad_norm",
                    format!("must be positive and finite (omit it to clip nothing), got {c}"),
                );
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                format!("must be positive, got {}", self.learning_rate),
            );
        }
        for (name, weight) in [
            ("forward_weight", self.forward_weight),
            ("reverse_weight", self.reverse_weight),
            ("ess_weight", self.ess_weight),
        ] {
            if !(weight >= 0.0 && weight.is_finite()) {
                return bad(name, format!("must be finite and >= 0, got {weight}"));
            }
        }
        if self.forward_weight + self.reverse_weight + self.ess_weight <= 0.0 {
            return bad(
                "forward_weight",
                "forward_weight, reverse_weight and ess_weight cannot all be 0".into(),
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(
                "weight_decay",
                format!("must be finite and >= 0, got {}", self.weight_decay),
            );
        }
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return bad("beta", format!("must be positive, got {}", self.beta));
        }
        if let Some(b0) = self.anneal_from_beta {
            if !(b0 > 0.0 && b0.is_finite()) {
                return bad("anneal_from_beta", format!("must be positive, got {b0}"));
            }
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return bad(
                "validation_fraction",
                format!("must be in [0, 1), got {}", self.validation_fraction),
            );
        }
        if self.eval_every == 0 {
            return bad("eval_every", "must be positive".into());
        }
        if let LrSchedule::Cosine { final_fraction } = self.schedule {
            if !(0.0..=1.0).contains(&final_fraction) {
                return bad(
                    "schedule.final_fraction",
                    format!("must be in [0, 1], got {final_fraction}"),
                );
            }
        }
        Ok(())
    }
}

/// What happened in one optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 0-based step index.
    pub step: usize,
    /// The total loss that was minimised (NaN for a skipped step).
    pub loss: f64,
    /// Forward-KL term: mean negative log-likelihood of the data batch.
    pub forward_nll: Option<f64>,
    /// Reverse-KL term's true value, `mean[βU(x) + log q(x)]` with the raw energy
    /// (= KL(q‖p) − log Z): the variational free energy.
    pub reverse_free_energy: Option<f64>,
    /// ESS term: the Kish ESS fraction of its batch of flow draws.
    pub batch_ess: Option<f64>,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Whether the step was skipped because something was not finite.
    pub skipped: bool,
}

/// A summary of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Steps completed (including skipped ones).
    pub steps: usize,
    /// Steps skipped by the non-finite guard.
    pub skipped_steps: usize,
    /// Loss of the last successful step (None if none succeeded).
    pub final_loss: Option<f64>,
    /// (step, validation NLL) at each evaluation.
    pub validation: Vec<(usize, f64)>,
    /// The best validation NLL, whose weights the model holds when early stopping is on.
    pub best_validation_nll: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Loss of every step, for the loss plot (None for skipped steps).
    pub losses: Vec<Option<f64>>,
    /// The terms of every step (`train_loss.csv`); empty for VAEs.
    #[serde(default)]
    pub step_terms: Vec<StepTerms>,
}

/// What one flow-training step measured, besides its loss. (Not a [`StepReport`]: that one's
/// loss is NaN for a skipped step, which the checkpoint's JSON could not read back.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepTerms {
    /// Mean negative log-likelihood of the data batch.
    pub forward_nll: Option<f64>,
    /// `mean[βU + log q]` of the reverse-KL batch, raw energies.
    pub reverse_free_energy: Option<f64>,
    /// Kish ESS fraction of the ESS term's batch.
    #[serde(default)]
    pub batch_ess: Option<f64>,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f64,
}

/// Receives training progress; every method has a default that does nothing.
pub trait TrainObserver {
    /// Before the first step.
    fn on_start(&mut self, _total_steps: usize) {}
    /// After every step.
    fn on_step(&mut self, _report: &StepReport) {}
    /// After each validation evaluation.
    fn on_evaluation(&mut self, _step: usize, _validation_nll: f64) {}
    /// After the last step.
    fn on_finish(&mut self, _report: &TrainReport) {}
    /// Asked after every step: true stops training with [`Error::Interrupted`] (the training
    /// checkpoint already written is kept).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl TrainObserver for NoObserver {}

/// Where and how often training writes checkpoints, and whether to resume from one.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointPolicy {
    /// The checkpoint's JSON file; its tensors go next to it.
    pub path: std::path::PathBuf,
    /// Write a checkpoint after every this many steps (and after the last one).
    pub every: usize,
    /// Continue from the checkpoint at `path`. It must exist and match the flow and config:
    /// a missing or mismatched checkpoint is an error, never a silent fresh start.
    pub resume: bool,
}

/// Trains `flow` in place.
///
/// `data` (row-major `[n × dim]`) feeds the forward-KL term, `potential` the reverse-KL
/// term; each is required when its weight in `config` is positive. ActNorm layers are
/// initialised from the first data rows if they have not been.
///
/// # Errors
/// [`Error::InvalidArgument`] for an inconsistent config, [`Error::Dimension`] when data or
/// potential do not fit the flow, [`Error::Training`] when `max_bad_steps` consecutive steps
/// were non-finite.
pub fn train_flow(
    flow: &mut Flow,
    data: Option<&[f64]>,
    potential: Option<&dyn Potential>,
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainReport> {
    train_flow_with_checkpoints(flow, data, potential, config, observer, None)
}

/// [`train_flow`] with periodic checkpoints (model, optimiser moments, step, random stream,
/// early-stopping state), written atomically; with `resume`, it continues a checkpointed run
/// exactly where it stopped, so that an interrupted and resumed run ends bit for bit where an
/// uninterrupted one would (at the same libtorch thread count: matrix products split their
/// sums by thread, so the last bits depend on it).
///
/// # Errors
/// As [`train_flow`], plus [`Error::Model`] for an unreadable or mismatched checkpoint and
/// [`Error::Io`] when one cannot be written.
pub fn train_flow_with_checkpoints(
    flow: &mut Flow,
    data: Option<&[f64]>,
    potential: Option<&dyn Potential>,
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
    checkpoints: Option<&CheckpointPolicy>,
) -> Result<TrainReport> {
    config.validate()?;
    if checkpoints.is_some_and(|c| c.every == 0) {
        return Err(Error::InvalidArgument {
            name: "checkpoint_every".into(),
            message: "must be positive".into(),
        });
    }
    let dim = flow.dim();
    let data = match (config.forward_weight > 0.0, data) {
        (true, None) => {
            return Err(Error::InvalidArgument {
                name: "forward_weight".into(),
                message: "the forward-KL term needs training data".into(),
            })
        }
        (true, Some(d)) => Some(objective::DataSplit::new(
            d,
            dim,
            config.validation_fraction,
            config.seed,
        )?),
        (false, _) => None,
    };
    let needs_potential = config.reverse_weight > 0.0 || config.ess_weight > 0.0;
    let potential = match (needs_potential, potential) {
        (true, None) => {
            return Err(Error::InvalidArgument {
                name: if config.reverse_weight > 0.0 {
                    "reverse_weight"
                } else {
                    "ess_weight"
                }
                .into(),
                message: "the reverse-KL and ESS terms need a potential".into(),
            })
        }
        (true, Some(p)) if p.dim() != dim => {
            return Err(Error::Dimension {
                what: format!("potential `{}` against the flow", p.name()),
                expected: dim,
                got: p.dim(),
            })
        }
        (true, Some(p)) => Some(p),
        (false, _) => None,
    };

    let mut state = match checkpoints.filter(|c| c.resume) {
        Some(policy) => checkpoint::load(&policy.path, flow, config)?,
        None => {
            if let Some(d) = &data {
                let rows = d.train_rows().min(4096);
                flow.initialize_from_data(&d.train[..rows * dim])?;
            }
            TrainState {
                next_step: 0,
                rng: stream(config.seed, 0),
                adam: Adam::new(
                    flow.var_store().variables().into_iter().collect(),
                    config.learning_rate,
                ),
                report: TrainReport {
                    steps: 0,
                    skipped_steps: 0,
                    final_loss: None,
                    validation: Vec::new(),
                    best_validation_nll: None,
                    stopped_early: false,
                    losses: Vec::with_capacity(config.steps.min(RESERVED_STEPS)),
                    step_terms: Vec::with_capacity(config.steps.min(RESERVED_STEPS)),
                },
                consecutive_bad: 0,
                best: None,
                evaluations_without_improvement: 0,
            }
        }
    };
    observer.on_start(config.steps);

    let mut energies = objective::BatchEnergies::default();
    for step in state.next_step..config.steps {
        if potential.is_some()
            && step == config.reverse_from_step
            && config.restarts_at_reverse_join()
        {
            state.adam.reset_moments();
        }
        let lr = config.learning_rate_at(step);
        state.adam.set_lr(lr);

        let mut terms = objective::Terms::default();
        let mut loss = StepLoss::default();
        if let Some(d) = &data {
            let batch = d.batch(config.batch_size, &mut state.rng);
            let nll = objective::forward_kl(flow, &batch)?;
            terms.forward_nll = Some(nll.double_value(&[]));
            loss.add(StepLoss::autograd(nll * config.forward_weight));
        }
        if let Some(p) =
            potential.filter(|_| config.reverse_weight > 0.0 && step >= config.reverse_from_step)
        {
            match objective::reverse_kl(flow, p, config, step, &mut energies, &mut state.rng)? {
                Ok(reverse) => {
                    terms.reverse_free_energy = Some(reverse.free_energy);
                    loss.add(reverse.loss);
                }
                Err(why) => terms.problem = Some(why),
            }
        }
        if let Some(p) =
            potential.filter(|_| config.ess_weight > 0.0 && step >= config.ess_from_step)
        {
            match objective::ess_term(flow, p, config, step, &mut state.rng)? {
                Ok(ess) => {
                    terms.batch_ess = Some(ess.batch_ess);
                    loss.add(ess.loss);
                }
                Err(why) => terms.problem = Some(why),
            }
        }

        let outcome = guarded_step(
            &mut state.adam,
            loss,
            terms.problem.take(),
            &terms.describe(),
            config,
            step,
            &mut state.report,
            &mut state.consecutive_bad,
        )?;
        state.next_step = step + 1;
        state.report.step_terms.push(StepTerms {
            forward_nll: terms.forward_nll,
            reverse_free_energy: terms.reverse_free_energy,
            batch_ess: terms.batch_ess,
            grad_norm: outcome.grad_norm,
            learning_rate: lr,
        });
        observer.on_step(&StepReport {
            step,
            loss: outcome.loss,
            forward_nll: terms.forward_nll,
            reverse_free_energy: terms.reverse_free_energy,
            batch_ess: terms.batch_ess,
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
        let mut stop = false;
        if let (true, Some(d)) = (evaluate, &data) {
            if d.validation_rows() > 0 {
                let nll = d.validation_nll(flow)?;
                stop = record_validation(
                    nll,
                    step,
                    config,
                    &mut state.report,
                    &mut state.best,
                    &mut state.evaluations_without_improvement,
                    || snapshot(flow.var_store()),
                    observer,
                );
            }
        }
        if let Some(policy) = checkpoints {
            let cadence = crate::envelope::Cadence {
                every: policy.every,
            };
            if cadence.due(step + 1, step + 1 == config.steps || stop) {
                checkpoint::save(&policy.path, flow, config, &state)?;
            }
        }
        if stop {
            break;
        }
    }

    if let Some((nll, weights)) = &state.best {
        state.report.best_validation_nll = Some(*nll);
        if config.patience.is_some() {
            restore(flow.var_store_mut(), weights);
        }
    }
    observer.on_finish(&state.report);
    Ok(state.report)
}

/// Everything that changes from step to step: what a checkpoint holds besides the weights.
pub(crate) struct TrainState {
    pub(crate) next_step: usize,
    pub(crate) rng: ChainRng,
    pub(crate) adam: Adam,
    pub(crate) report: TrainReport,
    pub(crate) consecutive_bad: usize,
    /// Best validation NLL and the weights that reached it.
    pub(crate) best: Option<(f64, HashMap<String, Tensor>)>,
    pub(crate) evaluations_without_improvement: usize,
}

/// The outcome of one guarded optimiser step.
pub(crate) struct GuardedStep {
    /// The loss (NaN for a skipped step).
    pub(crate) loss: f64,
    /// The gradient norm before clipping (NaN if not computed).
    pub(crate) grad_norm: f64,
    /// Whether the step was skipped.
    pub(crate) skipped: bool,
}

/// The loss of one step: its value, the part autograd differentiates, and gradients written
/// out by hand (the taped reverse-KL pass). The gradient of the step is the sum of both.
#[derive(Default)]
pub(crate) struct StepLoss {
    pub(crate) value: f64,
    pub(crate) autograd: Option<Tensor>,
    pub(crate) taped: Option<ParamGrads>,
}

impl StepLoss {
    /// A scalar loss tensor for autograd.
    pub(crate) fn autograd(loss: Tensor) -> Self {
        Self {
            value: loss.double_value(&[]),
            autograd: Some(loss),
            taped: None,
        }
    }

    /// Adds another term.
    pub(crate) fn add(&mut self, other: StepLoss) {
        self.value += other.value;
        self.autograd = match (self.autograd.take(), other.autograd) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.taped = match (self.taped.take(), other.taped) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }
}

/// Back-propagates `loss` and takes the Adam step, unless `problem` is already set or the loss
/// or the gradient is not finite: such steps change nothing, are counted as skipped, and after
/// `max_bad_steps` in a row stop training with [`Error::Training`] naming the step and the
/// terms (`describe`). Records the step in `report`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn guarded_step(
    adam: &mut Adam,
    loss: StepLoss,
    mut problem: Option<String>,
    describe: &str,
    config: &TrainConfig,
    step: usize,
    report: &mut TrainReport,
    consecutive_bad: &mut usize,
) -> Result<GuardedStep> {
    let loss_value = loss.value;
    if problem.is_none() && !loss_value.is_finite() {
        problem = Some(format!("the loss is {loss_value} ({describe})"));
    }
    let mut grad_norm = f64::NAN;
    if problem.is_none() {
        grad_norm = adam.compute_gradients(loss)?;
        if !grad_norm.is_finite() {
            problem = Some(format!("the gradient norm is {grad_norm} ({describe})"));
        }
    }
    let skipped = problem.is_some();
    if let Some(why) = problem {
        report.skipped_steps += 1;
        *consecutive_bad += 1;
        if *consecutive_bad >= config.max_bad_steps {
            return Err(Error::Training {
                step,
                message: format!(
                    "{consecutive_bad} consecutive steps were not finite; the last: {why}. \
                     Lower the learning rate or clip gradients (for reverse KL, an energy \
                     regulariser also helps)"
                ),
            });
        }
    } else {
        *consecutive_bad = 0;
        adam.step(grad_norm, config.clip_grad_norm, config.weight_decay);
        report.final_loss = Some(loss_value);
    }
    report.losses.push((!skipped).then_some(loss_value));
    report.steps = step + 1;
    Ok(GuardedStep {
        loss: if skipped { f64::NAN } else { loss_value },
        grad_norm,
        skipped,
    })
}

/// Records a validation value (lower is better), keeps the best one with a snapshot of the
/// weights, and says whether early stopping's patience has run out.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_validation(
    value: f64,
    step: usize,
    config: &TrainConfig,
    report: &mut TrainReport,
    best: &mut Option<(f64, HashMap<String, Tensor>)>,
    stale: &mut usize,
    snapshot: impl FnOnce() -> HashMap<String, Tensor>,
    observer: &mut dyn TrainObserver,
) -> bool {
    report.validation.push((step, value));
    observer.on_evaluation(step, value);
    if best.as_ref().is_none_or(|(b, _)| value < *b) {
        *best = Some((value, snapshot()));
        *stale = 0;
    } else {
        *stale += 1;
    }
    let stop = config.patience.is_some_and(|p| *stale >= p);
    report.stopped_early |= stop;
    stop
}

/// A detached copy of every parameter.
pub(crate) fn snapshot(vs: &tch::nn::VarStore) -> HashMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect()
}

/// Copies a [`snapshot`] back into the parameters.
pub(crate) fn restore(vs: &mut tch::nn::VarStore, weights: &HashMap<String, Tensor>) {
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if let Some(w) = weights.get(&name) {
                v.copy_(w);
            }
        }
    });
}

/// Draws a uniformly random row index (shared by the objectives).
pub(crate) fn random_row(rng: &mut ChainRng, rows: usize) -> usize {
    rng.random_range(0..rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `reverse_warmup_steps`, the rate drops to 1/N of the schedule when the energy
    /// joins and climbs back linearly over N steps; without an energy term nothing changes.
    #[test]
    fn the_learning_rate_warms_up_again_when_the_energy_joins() {
        let config = TrainConfig {
            steps: 100,
            learning_rate: 1e-3,
            reverse_weight: 1.0,
            reverse_from_step: 50,
            reverse_warmup_steps: 10,
            ..TrainConfig::default()
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(config.learning_rate_at(49), 1e-3));
        assert!(close(config.learning_rate_at(50), 1e-4));
        assert!(close(config.learning_rate_at(54), 5e-4));
        assert!(close(config.learning_rate_at(59), 1e-3));
        assert!(close(config.learning_rate_at(99), 1e-3));
        let maximum_likelihood_only = TrainConfig {
            reverse_weight: 0.0,
            ..config.clone()
        };
        assert!(!maximum_likelihood_only.restarts_at_reverse_join());
        assert!(close(maximum_likelihood_only.learning_rate_at(50), 1e-3));
        let from_the_start = TrainConfig {
            reverse_from_step: 0,
            ..config
        };
        assert!(!from_the_start.restarts_at_reverse_join());
    }

    /// A negative or non-finite weight decay is refused with the key's name.
    #[test]
    fn a_bad_weight_decay_names_the_key() {
        for weight_decay in [-0.1, f64::NAN, f64::INFINITY] {
            let config = TrainConfig {
                weight_decay,
                ..TrainConfig::default()
            };
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains("weight_decay"), "{message}");
        }
        let fine = TrainConfig {
            weight_decay: 0.1,
            ..TrainConfig::default()
        };
        assert!(fine.validate().is_ok());
    }

    /// A negative or non-finite term weight is refused by name, as is a config with no term
    /// at all; the ESS term alone is a valid objective.
    #[test]
    fn bad_term_weights_name_the_key() {
        for value in [-1.0, f64::NAN, f64::INFINITY] {
            for key in ["forward_weight", "reverse_weight", "ess_weight"] {
                let mut config = TrainConfig::default();
                *match key {
                    "forward_weight" => &mut config.forward_weight,
                    "reverse_weight" => &mut config.reverse_weight,
                    _ => &mut config.ess_weight,
                } = value;
                let message = config.validate().unwrap_err().to_string();
                assert!(message.contains(key), "{key} = {value}: {message}");
            }
        }
        let nothing = TrainConfig {
            forward_weight: 0.0,
            ..TrainConfig::default()
        };
        assert!(nothing.validate().is_err());
        let ess_only = TrainConfig {
            forward_weight: 0.0,
            ess_weight: 1.0,
            ..TrainConfig::default()
        };
        assert!(ess_only.validate().is_ok());
    }
}
