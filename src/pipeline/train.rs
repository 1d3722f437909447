//! `boltzgen train`: build (or load) a generator, train it, save it with its report.

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{finite, write_json, Model, Options, Prepared, Progress};
use crate::config::{Coordinates, ModelConfig, ModelKind};
use crate::error::{Error, Result};
use crate::generator::flow::InternalCoordinates;
use crate::generator::store::{save_flow, save_vae, ModelMetadata, SystemTag};
use crate::generator::{Flow, FlowConfig, Vae, VaeConfig};
use crate::mcmc::{relax_frames, RelaxReport};
use crate::train::{
    train_flow_smc, train_flow_with_checkpoints, train_vae, CheckpointPolicy, Rung, SmcObserver,
    SmcReport, StepReport, TrainConfig, TrainMethod, TrainObserver, TrainReport, VaeObjective,
};

/// What a training run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// The saved model's JSON file.
    pub model_file: PathBuf,
    /// Optimiser steps made (0 when the model was only loaded).
    pub steps: usize,
    /// Steps skipped by the non-finite guard.
    pub skipped_steps: usize,
    /// Loss of the last step.
    pub final_loss: Option<f64>,
    /// Best validation NLL (forward KL with a validation split).
    pub best_validation_nll: Option<f64>,
    /// Whether early stopping ended training.
    pub stopped_early: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// What `[data] oversample` added to the training frames, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversampling: Option<OversampleReport>,
    /// What `[data] relax` did to the training frames, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relaxation: Option<RelaxReport>,
    /// The annealing ladder, when the flow was trained by SMC annealing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annealing: Option<SmcReport>,
}

struct Observer<'a> {
    progress: &'a mut dyn Progress,
}

impl TrainObserver for Observer<'_> {
    fn on_start(&mut self, total: usize) {
        self.progress.start("training", total as u64);
    }
    fn on_step(&mut self, r: &StepReport) {
        let mut parts = Vec::new();
        if let Some(f) = r.forward_nll {
            parts.push(format!("NLL {f:.3}"));
        }
        if let Some(b) = r.reverse_free_energy {
            parts.push(format!("free energy {b:.3}"));
        }
        if let Some(e) = r.batch_ess {
            parts.push(format!("batch ESS {:.1}%", 100.0 * e));
        }
        if parts.is_empty() {
            parts.push(format!("loss {:.4}", r.loss));
        }
        let message = parts.join("  ");
        self.progress.update(r.step as u64 + 1, &message);
    }
    fn on_finish(&mut self, _: &TrainReport) {
        self.progress.finish();
    }
    fn should_stop(&mut self) -> bool {
        self.progress.interrupted()
    }
}

/// SMC's rungs as notes, and its stop question relayed to the progress.
struct RungNotes<'a> {
    progress: &'a mut dyn Progress,
}

impl SmcObserver for RungNotes<'_> {
    fn on_rung(&mut self, r: &Rung) {
        self.progress.note(&format!(
            "  β = {:<10.4e} ESS {:>5.1} %  local acceptance {:.3}{}  ⟨U⟩ = {:.4}",
            r.beta,
            100.0 * r.ess_fraction,
            r.local_acceptance,
            r.flow_acceptance
                .map(|a| format!("  flow acceptance {a:.3}"))
                .unwrap_or_default(),
            r.mean_energy
        ))
    }
    fn should_stop(&mut self) -> bool {
        self.progress.interrupted()
    }
}

fn build_model(prep: &Prepared, m: &ModelConfig, frames: Option<&[f64]>) -> Result<Model> {
    let dim = prep.system.potential.dim();
    let bad = |key: &str, message: String| Error::Config {
        file: prep.config_path.clone(),
        key: key.into(),
        message,
    };
    tch::manual_seed(prep.seed as i64);
    Ok(match m.kind {
        ModelKind::NeuralSpline if m.coordinates == Coordinates::Internal => {
            // Checked with the config: a molecule with bonds, and training frames.
            let bonds = prep.system.bonds.as_deref().unwrap_or_default();
            let frames = frames.unwrap_or_default();
            let internal =
                InternalCoordinates::fit(prep.system.n_particles, bonds, frames, m.tail_bound)
                    .map_err(|e| bad("model.coordinates", e.to_string()))?;
            let c = FlowConfig::internal_spline_with(
                internal,
                m.layers,
                &m.hidden,
                m.bins,
                m.split_bonds_angles,
            )
            .with_precision(m.precision);
            Model::Flow(Flow::new(c, prep.device).map_err(|e| bad("model", e.to_string()))?)
        }
        ModelKind::RealNvp | ModelKind::NeuralSpline => {
            let mut c = if m.kind == ModelKind::RealNvp {
                FlowConfig::real_nvp(dim, m.layers, &m.hidden)
            } else {
                FlowConfig::neural_spline(dim, m.layers, &m.hidden, m.bins, m.tail_bound)
            }
            .with_precision(m.precision);
            if m.mean_free {
                c = c
                    .mean_free(prep.system.n_particles, prep.system.spatial_dim)
                    .map_err(|e| bad("model.mean_free", e.to_string()))?;
            }
            Model::Flow(Flow::new(c, prep.device).map_err(|e| bad("model", e.to_string()))?)
        }
        ModelKind::Torchscript => {
            return Err(bad(
                "model.kind",
                "a torchscript model is loaded from `file`, not built".into(),
            ))
        }
        ModelKind::Vae => {
            let latent = m.latent_dim.unwrap_or(2);
            let c = VaeConfig::new(dim, latent, &m.hidden).with_precision(m.precision);
            Model::Vae(Vae::new(c, prep.device).map_err(|e| bad("model", e.to_string()))?)
        }
    })
}

/// Training frames (borrowed when used as read), what oversampling added and what relaxing
/// them did.
struct TrainingFrames<'a> {
    frames: Option<Cow<'a, [f64]>>,
    oversampling: Option<OversampleReport>,
    relaxation: Option<RelaxReport>,
}

/// What `[data] oversample` added to the training frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OversampleReport {
    /// Frames whose CV lies in the range (of the files named).
    pub selected: usize,
    /// Copies appended, `(factor − 1) · selected`.
    pub added: usize,
}

/// The frames to train on: `prep.data`, with the copies `[data] oversample` asks for appended
/// (each file's copies as blocks of their own, after all files), then relaxed at the system's
/// temperature when `[data] relax` asks for it (the frames of the files it names, copies
/// included, or all). Each block is relaxed with streams of its own, so the copies of one
/// frame cool along different paths.
fn training_frames<'a>(
    prep: &'a Prepared,
    progress: &mut dyn Progress,
) -> Result<TrainingFrames<'a>> {
    let data = prep.config.data.as_ref();
    let relax = data.and_then(|d| d.relax.as_ref());
    let oversample = data.and_then(|d| d.oversample.as_ref());
    let Some(frames) = (prep.data.as_ref()).filter(|_| relax.is_some() || oversample.is_some())
    else {
        // Nothing to add or relax: train on the frames as read (if any), without a copy.
        return Ok(TrainingFrames {
            frames: prep.data.as_deref().map(Cow::Borrowed),
            oversampling: None,
            relaxation: None,
        });
    };
    let mut frames = frames.clone();
    let dim = prep.system.potential.dim();
    // Exact samples have no files: they are one block.
    let mut blocks = if prep.data_files.is_empty() {
        vec![(prep.config_path.clone(), frames.len() / dim.max(1))]
    } else {
        prep.data_files.clone()
    };
    let oversampling = match oversample {
        Some(spec) => {
            let report = oversample_frames(prep, spec.factor, &mut frames, &mut blocks);
            progress.note(&format!(
                "oversampling {} frames with {} in [{}, {}] by {}: {} copies added",
                report.selected,
                spec.cv.label(),
                spec.range[0],
                spec.range[1],
                spec.factor,
                report.added
            ));
            Some(report)
        }
        None => None,
    };
    let Some(spec) = relax else {
        return Ok(TrainingFrames {
            frames: Some(Cow::Owned(frames)),
            oversampling,
            relaxation: None,
        });
    };
    let mut total: Option<RelaxReport> = None;
    let mut first = 0;
    for (index, (file, n)) in blocks.iter().enumerate() {
        let rows = first * dim..(first + n) * dim;
        first += n;
        if !spec.files.as_ref().is_none_or(|f| f.contains(file)) {
            continue;
        }
        progress.note(&format!(
            "relaxing the {n} frames of {} by {} local steps each at β = {}",
            file.display(),
            spec.steps,
            prep.system.beta
        ));
        // Each file its own streams.
        let config = spec.settings(
            prep.system.spatial_dim,
            prep.seed.wrapping_add(index as u64),
        );
        let report = relax_frames(
            &mut frames[rows],
            prep.system.potential.as_ref(),
            prep.system.beta,
            &config,
        )
        .map_err(|e| Error::Config {
            file: prep.config_path.clone(),
            key: "data.relax".into(),
            message: format!("{}: {e}", file.display()),
        })?;
        progress.note(&format!(
            "  mean U {:.3} → {:.3}, acceptance {:.3}",
            report.mean_energy_before, report.mean_energy_after, report.acceptance
        ));
        total = Some(match total {
            None => report,
            Some(t) => t.merge(&report),
        });
    }
    Ok(TrainingFrames {
        frames: Some(Cow::Owned(frames)),
        oversampling,
        relaxation: total,
    })
}

/// Appends `factor − 1` copies of the frames `[data] oversample` selected as they were read
/// ([`Prepared::oversampled_rows`]), one block per source file after all files, and counts
/// them.
fn oversample_frames(
    prep: &Prepared,
    factor: usize,
    frames: &mut Vec<f64>,
    blocks: &mut Vec<(PathBuf, usize)>,
) -> OversampleReport {
    let dim = prep.system.potential.dim();
    let mut report = OversampleReport {
        selected: 0,
        added: 0,
    };
    for (file, rows) in &prep.oversampled_rows {
        report.selected += rows.len();
        for _ in 1..factor {
            for &row in rows {
                frames.extend_from_within(row * dim..(row + 1) * dim);
            }
            blocks.push((file.clone(), rows.len()));
            report.added += rows.len();
        }
    }
    report
}

fn write_loss_csv(path: &std::path::Path, report: &TrainReport) -> Result<()> {
    crate::io::write_atomically(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(Error::io(tmp))?;
        let mut w = std::io::BufWriter::new(file);
        let io = |e| Error::io(tmp)(e);
        writeln!(
            w,
            "step,loss,validation_nll,forward_nll,free_energy,grad_norm,learning_rate,batch_ess"
        )
        .map_err(io)?;
        let validation: std::collections::HashMap<usize, f64> =
            report.validation.iter().copied().collect();
        let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        for (step, loss) in report.losses.iter().enumerate() {
            let terms = report.step_terms.get(step);
            writeln!(
                w,
                "{step},{},{},{},{},{},{},{}",
                cell(*loss),
                cell(validation.get(&step).copied()),
                cell(terms.and_then(|t| t.forward_nll)),
                cell(terms.and_then(|t| t.reverse_free_energy)),
                cell(terms.map(|t| t.grad_norm)),
                cell(terms.map(|t| t.learning_rate)),
                cell(terms.and_then(|t| t.batch_ess)),
            )
            .map_err(io)?;
        }
        w.flush().map_err(io)
    })
}

/// Trains the model of `prep` (or loads `[model] file` when there is no `[train]`), saves it
/// as `model.json` + `model.safetensors` in the run directory, and writes
/// `train_report.json` and `train_loss.csv`.
///
/// # Errors
/// [`Error::Config`] when the config lacks `[model]`, or asks for training without data or
/// energy; whatever training and saving report.
pub fn train(
    prep: &Prepared,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<(Model, TrainSummary)> {
    let missing = |key: &str, message: &str| Error::Config {
        file: prep.config_path.clone(),
        key: key.into(),
        message: message.into(),
    };
    let m = prep
        .config
        .model
        .as_ref()
        .ok_or_else(|| missing("model", "required to train or load a generator"))?;
    let model_file = prep.path(if m.kind == ModelKind::Torchscript {
        "model.pt"
    } else {
        "model.json"
    });
    let started = Instant::now();
    let Some(train_config) = &prep.config.train else {
        // Nothing to train: a model file must be given.
        let model = prep.load_model_file()?.ok_or_else(|| {
            missing(
                "train",
                "required unless [model] file names a trained model",
            )
        })?;
        save(prep, &model, &model_file, None)?;
        return Ok((
            model,
            TrainSummary {
                model_file,
                steps: 0,
                skipped_steps: 0,
                final_loss: None,
                best_validation_nll: None,
                stopped_early: false,
                seconds: started.elapsed().as_secs_f64(),
                oversampling: None,
                relaxation: None,
                annealing: None,
            },
        ));
    };
    // The system's β is the target's; a `beta` in [train] would contradict it.
    let config = TrainConfig {
        seed: prep.seed,
        beta: prep.system.beta,
        ..train_config.clone()
    };
    let is_flow = !matches!(m.kind, ModelKind::Vae | ModelKind::Torchscript);
    let method = config.method.unwrap_or(TrainMethod::default_for(is_flow));
    if method == TrainMethod::Gradient && config.forward_weight > 0.0 && prep.data.is_none() {
        return Err(missing(
            "train.forward_weight",
            "forward KL needs training frames: add a [data] section",
        ));
    }
    let TrainingFrames {
        frames: data,
        oversampling,
        relaxation,
    } = training_frames(prep, progress)?;
    let data = data.as_deref();
    let mut model = match prep.load_model_file()? {
        Some(model) => model,
        None => build_model(prep, m, data)?,
    };
    let mut observer = Observer { progress };
    let potential = (config.reverse_weight > 0.0 || config.ess_weight > 0.0)
        .then_some(prep.system.potential.as_ref());
    let mut annealing = None;
    let report = match &mut model {
        Model::Flow(flow) if method == TrainMethod::Smc => {
            let progress = &mut *observer.progress;
            if options.resume {
                progress.note(
                    "--resume: SMC annealing keeps no training checkpoint, so it starts again",
                );
            }
            progress.note(&format!(
                "training by SMC annealing: {} particles from β = {:.4e} to {:.4e}{}",
                config.smc.particles_for(prep.system.potential.dim()),
                config.beta * config.smc.start_beta_fraction,
                config.beta,
                if data.is_some() {
                    ", starting from the training frames"
                } else {
                    ""
                }
            ));
            let (report, ladder) = train_flow_smc(
                flow,
                data,
                prep.system.potential.as_ref(),
                &config,
                &config.smc,
                &mut RungNotes {
                    progress: &mut *progress,
                },
            )?;
            progress.note(&format!(
                "  {} rungs, {} refit steps, {} energy evaluations; the flow's ESS at the target: {:.1} %",
                ladder.rungs.len(),
                ladder.refit_steps,
                ladder.energy_evaluations,
                100.0 * ladder.final_ess_fraction
            ));
            annealing = Some(ladder);
            report
        }
        Model::Flow(flow) => {
            let checkpoint = prep.path("train_checkpoint.json");
            let resume = options.resume && checkpoint.is_file();
            if options.resume && !resume {
                observer.progress.note(&format!(
                    "--resume: there is no training checkpoint {} yet, so training starts \
                     from the beginning",
                    checkpoint.display()
                ));
            }
            let policy = CheckpointPolicy {
                path: checkpoint,
                every: (config.steps / 20).max(50),
                resume,
            };
            train_flow_with_checkpoints(
                flow,
                data,
                potential,
                &config,
                &mut observer,
                Some(&policy),
            )?
        }
        Model::Vae(vae) => {
            let data = data.ok_or_else(|| {
                missing("data", "a VAE is trained on frames: add a [data] section")
            })?;
            train_vae(vae, data, &config, &VaeObjective::default(), &mut observer)?
        }
        Model::TorchScript(_) => {
            return Err(missing(
                "train",
                "a torchscript model is trained in PyTorch, not by boltzgen",
            ))
        }
    };
    save(prep, &model, &model_file, Some(&config))?;
    write_loss_csv(&prep.path("train_loss.csv"), &report)?;
    let summary = TrainSummary {
        model_file,
        steps: report.steps,
        skipped_steps: report.skipped_steps,
        final_loss: report.final_loss.and_then(finite),
        best_validation_nll: report.best_validation_nll.and_then(finite),
        stopped_early: report.stopped_early,
        seconds: started.elapsed().as_secs_f64(),
        oversampling,
        relaxation,
        annealing,
    };
    write_json(
        &prep.path("train_report.json"),
        &serde_json::json!({ "summary": &summary, "validation": report.validation }),
    )?;
    Ok((model, summary))
}

fn save(
    prep: &Prepared,
    model: &Model,
    path: &std::path::Path,
    config: Option<&TrainConfig>,
) -> Result<()> {
    let metadata = ModelMetadata {
        system: Some(SystemTag {
            potential: prep.system.potential.name().to_string(),
            dim: prep.system.potential.dim(),
            beta: Some(prep.system.beta),
        }),
        training_steps: config.map(|c| c.steps),
        training_config: config.and_then(|c| serde_json::to_value(c).ok()),
        notes: Some(format!(
            "written by boltzgen from {}",
            prep.config_path.display()
        )),
    };
    match model {
        Model::Flow(f) => save_flow(f, path, metadata),
        Model::Vae(v) => save_vae(v, path, metadata),
        // A TorchScript module is kept as exported, next to where model.json would be.
        Model::TorchScript(t) => {
            let copy = path.with_extension("pt");
            std::fs::copy(t.file(), &copy)
                .map(|_| ())
                .map_err(Error::io(copy))
        }
    }
}
