//! The commands `train`, `sample`, `reweight` and `run` as library calls: the `boltzgen`
//! binary and the Python module both run them, so that a run started from either writes the
//! same files and returns the same report.
//!
//! Each command checks its input, prepares the run directory, does its stages, draws the plots
//! and returns a [`RunReport`]; printing it is the caller's business.

use std::path::Path;

use serde::Serialize;

use super::{
    plots, reweight, run_warnings, sample_on, train, Model, Options, PlotSummary, Prepared,
    Progress, ReweightSummary, SampleSummary, Stage, TrainSummary,
};
use crate::config::RunConfig;
use crate::diagnostics::Warning;
use crate::error::{Error, Result};
use crate::mcmc::Ranks;

/// The built-in example (`boltzgen run` without a config): the 2-D double well.
pub const BUILTIN_EXAMPLE: &str = include_str!("../../examples/double_well.toml");

/// What a command did: the summaries of the stages it ran, its plots and its warnings.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The potential's name.
    pub system: String,
    /// Inverse temperature.
    pub beta: f64,
    /// The seed in force.
    pub seed: u64,
    /// The training stage, when it ran.
    pub train: Option<TrainSummary>,
    /// The sampling stage, when it ran.
    pub sample: Option<SampleSummary>,
    /// The reweighting stage, when it ran.
    pub reweight: Option<ReweightSummary>,
    /// The plots drawn (or why none were).
    pub plots: Option<PlotSummary>,
    /// Every convergence warning of the stages that ran.
    pub warnings: Vec<Warning>,
}

/// The debug log's line for a command's start (`-v`).
fn log_start(command: &str, prep: &Prepared) {
    tracing::debug!(
        "{command}: config {}, system `{}` ({} coordinates, β = {}), seed {}, device {:?}, run \
         directory {}",
        prep.config_path.display(),
        prep.system.potential.name(),
        prep.system.potential.dim(),
        prep.system.beta,
        prep.seed,
        prep.device,
        prep.run_dir.display()
    );
}

impl RunReport {
    fn new(prep: &Prepared) -> Self {
        Self {
            system: prep.system.potential.name().to_owned(),
            beta: prep.system.beta,
            seed: prep.seed,
            train: None,
            sample: None,
            reweight: None,
            plots: None,
            warnings: Vec::new(),
        }
    }
}

/// The config of `boltzgen run [CONFIG]`: the file, or the built-in example (written to
/// `runs/double_well` unless `options.output` says otherwise).
///
/// # Errors
/// As [`Prepared::new`].
pub fn prepare_run(config: Option<&Path>, options: &Options) -> Result<Prepared> {
    match config {
        Some(path) => Prepared::new(path, options),
        None => {
            let path = Path::new("examples/double_well.toml (built in)");
            let parsed = RunConfig::parse(BUILTIN_EXAMPLE, path)?;
            let mut options = options.clone();
            options.output = options.output.or_else(|| Some("runs/double_well".into()));
            Prepared::from_config(parsed, Path::new("double_well.toml"), &options)
        }
    }
}

/// The model of `[model] file`, else the one a previous `train` wrote in the run directory.
///
/// # Errors
/// A model file that is missing, corrupt or does not fit the system.
pub fn existing_model(prep: &Prepared) -> Result<Option<Model>> {
    if let Some(m) = prep.load_model_file()? {
        return Ok(Some(m));
    }
    let in_run_dir = prep.path("model.json");
    match (&prep.config.model, in_run_dir.is_file()) {
        (Some(m), true) => prep.load_model(&in_run_dir, m.kind).map(Some),
        _ => Ok(None),
    }
}

/// Draws the run directory's plots, noting when they were skipped.
///
/// # Errors
/// A plot that could not be written.
pub fn draw_plots(prep: &Prepared, progress: &mut dyn Progress) -> Result<PlotSummary> {
    let summary = plots(prep)?;
    if let Some(why) = &summary.skipped {
        progress.note(&format!("plots skipped: {why}"));
    }
    Ok(summary)
}

/// `boltzgen train`: trains the model of `[model]` with `[train]`, saves it in the run
/// directory, and returns it with the report.
///
/// # Errors
/// Bad input (before anything is written), or a failure while training.
pub fn train_command(
    prep: &Prepared,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<(Model, RunReport)> {
    log_start("train", prep);
    prep.load_model_file()?;
    prep.create_run_dir(options, Stage::Whole)?;
    let (model, summary) = train(prep, options, progress)?;
    let mut report = RunReport::new(prep);
    report.train = Some(summary);
    report.plots = Some(draw_plots(prep, progress)?);
    Ok((model, report))
}

/// `boltzgen sample`: Metropolis–Hastings with the moves of `[sample]`, learned moves served by
/// `[model] file` or the model a previous `train` left in the run directory, as the first (or
/// only) process of `ranks` (the others run [`super::sample_worker`]).
///
/// # Errors
/// Bad input (before anything is written), or a failure while sampling.
pub fn sample_command(
    prep: &Prepared,
    options: &Options,
    progress: &mut dyn Progress,
    ranks: &dyn Ranks,
) -> Result<RunReport> {
    log_start("sample", prep);
    let model = existing_model(prep)?;
    prep.create_run_dir(options, Stage::Sample)?;
    let summary = sample_on(prep, options, model.as_ref(), progress, ranks)?;
    let mut report = RunReport::new(prep);
    report.warnings = summary.warnings.clone();
    report.sample = Some(summary);
    report.plots = Some(draw_plots(prep, progress)?);
    Ok(report)
}

/// `boltzgen reweight`: importance weights of direct draws from the trained model.
///
/// # Errors
/// [`Error::Config`] on `model.file` when there is no trained model; bad input; a failure
/// while reweighting.
pub fn reweight_command(
    prep: &Prepared,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<RunReport> {
    log_start("reweight", prep);
    let model = existing_model(prep)?.ok_or_else(|| Error::Config {
        file: prep.config_path.clone(),
        key: "model.file".into(),
        message:
            "reweighting needs a trained model: give [model] file, or run `boltzgen train` first"
                .into(),
    })?;
    prep.create_run_dir(options, Stage::Reweight)?;
    let summary = reweight(prep, &model, progress)?;
    let mut report = RunReport::new(prep);
    report.warnings = summary.warnings.clone();
    report.reweight = Some(summary);
    report.plots = Some(draw_plots(prep, progress)?);
    Ok(report)
}

/// `boltzgen run`: train (when `[model]` is given), sample (when `[sample]` is), reweight (a
/// flow), plot, and write `report.json`, as the first (or only) process of `ranks`; with more
/// than one, it tells the others when the trained model is on disk and spreads the sampling
/// over them.
///
/// # Errors
/// Bad input (before anything is written), or a failure in a stage.
pub fn run_command(
    prep: &Prepared,
    options: &Options,
    progress: &mut dyn Progress,
    ranks: &dyn Ranks,
) -> Result<RunReport> {
    log_start("run", prep);
    // Fail on a model file that does not fit before anything is written.
    prep.load_model_file()?;
    prep.create_run_dir(options, Stage::Whole)?;
    progress.note(&format!("run directory: {}", prep.run_dir.display()));
    let trained = if prep.config.model.is_some() {
        Some(train(prep, options, progress)?)
    } else {
        None
    };
    if ranks.size() > 1 {
        // The model is in the run directory: the other processes may load it.
        ranks.all_gather(&[])?;
    }
    let model = trained.as_ref().map(|(m, _)| m);
    let mut report = RunReport::new(prep);
    if prep.config.sample.is_some() {
        report.sample = Some(sample_on(prep, options, model, progress, ranks)?);
    }
    if let Some(m @ (Model::Flow(_) | Model::TorchScript(_))) = model {
        report.reweight = Some(reweight(prep, m, progress)?);
    }
    report.train = trained.map(|(_, t)| t);
    report.plots = Some(draw_plots(prep, progress)?);
    report.warnings = run_warnings(report.sample.as_ref(), report.reweight.as_ref());
    // Through a JSON value, whose keys are sorted: report.json keeps the layout it always had.
    let value = serde_json::to_value(&report).map_err(|e| Error::InvalidArgument {
        name: "report".into(),
        message: e.to_string(),
    })?;
    super::write_json(&prep.path("report.json"), &value)?;
    Ok(report)
}
