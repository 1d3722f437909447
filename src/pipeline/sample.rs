//! `boltzgen sample`: Metropolis–Hastings chains streaming samples to disk, with checkpoints,
//! resume, and a report of acceptance, autocorrelation, ESS, R̂ and transitions.
//!
//! Size: about 700 lines, the command's whole story (setup, resume with its stream checks, the
//! streaming observer, the report); the balance plan is in [`super::balance`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{finite, write_json, Model, Options, Prepared, Progress};
use crate::config::SampleConfig;
use crate::diagnostics::verdict::{
    check_chain_spread, check_replica_exchange, check_split_rhat, check_transitions,
};
use crate::diagnostics::{count_transitions, summarize, SeriesSummary, Transitions, Warning};
use crate::error::{Error, Result};
use crate::generator::Generator;
use crate::io::stream::{cut_back, StreamMark};
use crate::io::trajectory::{count_frames, truncate_frames, TrajectoryWriter};
use crate::mcmc::{
    BlockEnd, Learned, MoveReport, OneProcess, Ranks, Sampler, SamplerConfig, SamplerObserver,
};
use crate::rng::{auxiliary_stream, Purpose};

/// What a sampling run produced.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    /// The trajectory of samples.
    pub trajectory: PathBuf,
    /// Per-frame chain, step, energy and CV.
    pub table: PathBuf,
    /// Frames written in all.
    pub frames: usize,
    /// Per move: acceptance during burn-in and production.
    pub moves: Vec<MoveReport>,
    /// Steps 0..adaptive_steps adapted step sizes.
    pub adaptive_steps: usize,
    /// Median over chains of each move's frozen step size.
    pub step_sizes: Vec<Option<f64>>,
    /// Every evaluation of U.
    pub energy_evaluations: u64,
    /// U over all recorded frames.
    pub energy: Option<ObservableReport>,
    /// The collective variable over all recorded frames.
    pub cv: Option<ObservableReport>,
    /// Transitions between the configured states (summed over chains).
    pub transitions: Option<Transitions>,
    /// The probability of each `[analysis] states` core, from the chains.
    pub states: Vec<StateReport>,
    /// Probabilities and free energies of the `[analysis] regions`, from the chains.
    pub regions: Vec<RegionReport>,
    /// With `[sample] balance`: the pilot and each region's acceptance for flow proposals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<ProposalBalance>,
    /// With `[sample.replica_exchange]`: the ladder, swaps, round trips and each rung's moves
    /// (the fields above are the target rung's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_exchange: Option<ReplicaExchangeSummary>,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// The convergence checks that failed (see [`crate::diagnostics::verdict`]): empty for a
    /// run with nothing to warn of.
    pub warnings: Vec<Warning>,
}

/// Replica exchange in a sample report: the sampler's report, with the ladder in the units
/// of `[system] temperature`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaExchangeSummary {
    /// Each rung's temperature (1/β when the system gives β).
    pub temperatures: Vec<f64>,
    /// Everything else.
    #[serde(flatten)]
    pub report: crate::mcmc::ExchangeReport,
}

/// The fraction of the chains' frames in a state's core.
#[derive(Debug, Clone, Serialize)]
pub struct StateReport {
    /// The state's name.
    pub name: String,
    /// The fraction, with its τ-based error.
    pub probability: Option<ObservableReport>,
}

/// How `[sample] balance` thinned the flow moves' proposals between the regions.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalBalance {
    /// Weighted pilot draws that planned the acceptances.
    pub pilot_draws: usize,
    /// The pilot's ESS fraction: the flow's own, unthinned.
    pub pilot_ess_fraction: f64,
    /// Per stratum: the `[analysis] regions` in order, then `rest`.
    pub strata: Vec<NamedStratumPlan>,
}

/// One stratum of [`ProposalBalance`].
#[derive(Debug, Clone, Serialize)]
pub struct NamedStratumPlan {
    /// The region's name, or `rest`.
    pub name: String,
    /// What the pilot found and the acceptance it gave.
    #[serde(flatten)]
    pub plan: crate::reweight::balance::StratumPlan,
}

/// A region's probability and its free energy relative to the first region, from the chains,
/// with error bars from the integrated autocorrelation time.
#[derive(Debug, Clone, Serialize)]
pub struct RegionReport {
    /// The region's name.
    pub name: String,
    /// The fraction of recorded frames in the region.
    pub probability: Option<ObservableReport>,
    /// `F_region − F_first = −kT ln(P_region / P_first)`, in the potential's energy unit.
    pub delta_f: Option<f64>,
    /// Its standard error: that of the mean of `1_region / P_region − 1_first / P_first`,
    /// divided by β (the delta method on the chains' series).
    pub delta_f_std_error: Option<f64>,
}

/// A summarised observable with JSON-safe numbers.
#[derive(Debug, Clone, Serialize)]
pub struct ObservableReport {
    /// Mean over chains.
    pub mean: Option<f64>,
    /// Its standard error from the autocorrelation time.
    pub std_error: Option<f64>,
    /// Integrated autocorrelation time, in recorded frames.
    pub tau: Option<f64>,
    /// Whether Sokal's window converged.
    pub tau_converged: bool,
    /// Effective sample size, all chains.
    pub ess: Option<f64>,
    /// Split-R̂.
    pub split_rhat: Option<f64>,
}

impl From<&SeriesSummary> for ObservableReport {
    fn from(s: &SeriesSummary) -> Self {
        Self {
            mean: finite(s.mean),
            std_error: finite(s.std_error),
            tau: finite(s.iat.tau),
            tau_converged: s.iat.converged,
            ess: finite(s.ess),
            split_rhat: finite(s.split_rhat),
        }
    }
}

/// Starting configurations: the config's point, else finite-energy generator draws, else
/// the first training frames.
fn starting_points(prep: &Prepared, model: Option<&Model>, chains: usize) -> Result<Vec<f64>> {
    let s = prep.config.sample.as_ref().expect("checked by the caller");
    if let Some(x) = &s.start {
        return Ok(x.clone());
    }
    let dim = prep.system.potential.dim();
    let u = prep.system.potential.as_ref();
    if let Some(model) = model {
        let generator = model.generator();
        let draws = generator.sample(
            4 * chains,
            &mut auxiliary_stream(prep.seed, Purpose::StartingPoints),
        )?;
        let finite_draws: Vec<&[f64]> = draws
            .x
            .chunks_exact(dim)
            .filter(|x| u.energy(x).is_ok_and(f64::is_finite))
            .take(chains)
            .collect();
        if finite_draws.len() == chains {
            return Ok(finite_draws.concat());
        }
    }
    if let Some(data) = &prep.data {
        let n = data.len() / dim;
        return Ok((0..chains)
            .flat_map(|c| data[(c % n) * dim..(c % n + 1) * dim].iter().copied())
            .collect());
    }
    Err(Error::Config {
        file: prep.config_path.clone(),
        key: "sample.start".into(),
        message: "no starting point: give sample.start, a model, or [data] frames".into(),
    })
}

/// Per chain: the energy series and the CV series.
type PerChainSeries = (Vec<Vec<f64>>, Vec<Vec<f64>>);

/// Reads back the energy and CV series of a resumed run from its table.
fn read_series(path: &Path, chains: usize, keep: usize) -> Result<PerChainSeries> {
    let file = File::open(path).map_err(Error::io(path))?;
    let mut energies = vec![Vec::new(); chains];
    let mut cvs = vec![Vec::new(); chains];
    let mut read = 0;
    for (i, line) in std::io::BufReader::new(file)
        .lines()
        .skip(1)
        .take(keep)
        .enumerate()
    {
        let line = line.map_err(Error::io(path))?;
        let fields: Vec<&str> = line.split(',').collect();
        let parse = |k: usize| fields.get(k).and_then(|v| v.parse::<f64>().ok());
        let (Some(c), Some(u)) = (
            fields.get(1).and_then(|v| v.parse::<usize>().ok()),
            parse(3),
        ) else {
            return Err(Error::Trajectory {
                file: path.to_owned(),
                frame: Some(i),
                message: "unreadable row in the sample table".into(),
            });
        };
        if c >= chains {
            return Err(Error::Trajectory {
                file: path.to_owned(),
                frame: Some(i),
                message: format!("chain {c} in a run of {chains} chains"),
            });
        }
        energies[c].push(u);
        if let Some(v) = parse(4) {
            cvs[c].push(v);
        }
        read += 1;
    }
    if read != keep {
        return Err(Error::Trajectory {
            file: path.to_owned(),
            frame: None,
            message: format!("has {read} rows, the checkpoint expects {keep}"),
        });
    }
    Ok((energies, cvs))
}

/// A sampler with the energy and CV series of the frames it has recorded.
type Resumed = (Sampler, Vec<Vec<f64>>, Vec<Vec<f64>>);

/// Where the checkpoint before `checkpoint` is kept.
pub(crate) fn previous_checkpoint(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.as_os_str().to_owned();
    name.push(".prev");
    PathBuf::from(name)
}

/// Resumes from the newest of `checkpoints` (newest first) whose data is all on disk, after
/// cutting the outputs back to it; `None` if there is no checkpoint at all.
///
/// # Errors
/// The newest checkpoint's error if none can be resumed from.
fn resume(
    prep: &Prepared,
    config: &SamplerConfig,
    checkpoints: &[&Path],
    trajectory: &Path,
    table: &Path,
    progress: &mut dyn Progress,
) -> Result<Option<Resumed>> {
    let mut newest_error = None;
    for (i, checkpoint) in checkpoints.iter().filter(|c| c.is_file()).enumerate() {
        match resume_one(prep, config, checkpoint, trajectory, table) {
            Ok(resumed) => {
                if i > 0 {
                    progress.note(&format!(
                        "the newest checkpoint claims data that is not on disk ({}); resuming \
                         from the one before it, {}",
                        newest_error
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        checkpoint.display()
                    ));
                }
                progress.note(&format!(
                    "resuming from {} at step {} ({} frames kept)",
                    checkpoint.display(),
                    resumed.0.steps_done(),
                    resumed.1.iter().map(Vec::len).sum::<usize>()
                ));
                return Ok(Some(resumed));
            }
            Err(e) => {
                newest_error.get_or_insert(e);
            }
        }
    }
    newest_error.map_or(Ok(None), Err)
}

/// Resumes from one checkpoint: cuts the outputs back to the lengths it recorded and checks
/// that they then hold exactly the frames and rows it describes.
fn resume_one(
    prep: &Prepared,
    config: &SamplerConfig,
    checkpoint: &Path,
    trajectory: &Path,
    table: &Path,
) -> Result<Resumed> {
    let u = prep.system.potential.as_ref();
    let (sampler, streams) = Sampler::resume_with_streams(checkpoint, config, u)?;
    let frames = config.chains * sampler.recorded_per_chain(sampler.steps_done());
    // Frames written after the checkpoint are dropped: the resumed chains make them again,
    // identically.
    if streams.is_empty() {
        cut_back_by_frames(trajectory, table, frames)?;
    } else {
        for file in [trajectory, table] {
            let name = file_name(file);
            let mark = streams
                .iter()
                .find(|m| m.name == name)
                .ok_or_else(|| Error::Config {
                    file: prep.config_path.clone(),
                    key: "output.trajectory_format".into(),
                    message: format!(
                        "the checkpoint {} was written for other output files ({}), not {name}; \
                     resume with the format it was started with",
                        checkpoint.display(),
                        streams
                            .iter()
                            .map(|m| m.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            cut_back(&prep.run_dir, mark)?;
        }
        // The whole frames must all be there: chemfiles reports a failed write at close only
        // as a short file, so a checkpoint written after it can claim frames that never
        // reached the disk.
        if frames > 0 {
            let found = count_frames(trajectory).unwrap_or(0);
            if found != frames {
                return Err(Error::Trajectory {
                    file: trajectory.to_owned(),
                    frame: None,
                    message: format!(
                        "holds {found} readable frames where the checkpoint {} expects {frames}",
                        checkpoint.display()
                    ),
                });
            }
        }
    }
    let (e, c) = read_series(table, config.chains, frames)?;
    Ok((sampler, e, c))
}

/// A file's name inside the run directory.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Cuts the outputs back to `frames` frames by parsing them: for checkpoints written before
/// they recorded the files' lengths.
fn cut_back_by_frames(trajectory: &Path, table: &Path, frames: usize) -> Result<()> {
    if frames == 0 {
        let _ = std::fs::remove_file(trajectory);
    } else {
        truncate_frames(trajectory, frames)?;
    }
    truncate_rows(table, frames)
}

/// Keeps the header and the first `keep` rows of a CSV file.
fn truncate_rows(path: &Path, keep: usize) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let kept: Vec<&str> = text.lines().take(keep + 1).collect();
    if kept.len() < keep + 1 {
        return Err(Error::Trajectory {
            file: path.to_owned(),
            frame: None,
            message: format!("has {} rows, the checkpoint expects {keep}", kept.len() - 1),
        });
    }
    let body = kept.join("\n") + "\n";
    crate::io::write_atomically(path, |tmp| {
        std::fs::write(tmp, body).map_err(Error::io(tmp))
    })
}

fn summarize_chains(series: &[Vec<f64>]) -> Option<SeriesSummary> {
    let refs: Vec<&[f64]> = series.iter().map(|s| s.as_slice()).collect();
    summarize(&refs).ok()
}

/// Streams a run's samples to its trajectory and table at every block end, and writes the
/// sampler checkpoint at the cadence asked for: samples first, synced and measured, then the
/// checkpoint recording their lengths, so that a checkpoint is never ahead of the data and a
/// resume never parses a torn tail.
struct SampleStream<'a> {
    writer: &'a mut TrajectoryWriter,
    rows: &'a mut BufWriter<File>,
    table: &'a Path,
    trajectory: &'a Path,
    checkpoint: &'a Path,
    previous: &'a Path,
    cadence: crate::envelope::Cadence,
    burn_in: usize,
    thin: usize,
    cv: Option<&'a crate::config::CollectiveVariable>,
    dim: usize,
    spatial_dim: usize,
    energies: &'a mut [Vec<f64>],
    cvs: &'a mut [Vec<f64>],
    /// Frames written so far (all chains).
    frame: usize,
    blocks: usize,
    progress: &'a mut dyn Progress,
}

impl SamplerObserver for SampleStream<'_> {
    fn block(&mut self, end: &mut BlockEnd<'_, '_>) -> Result<()> {
        let chains = self.energies.len();
        let recorded_before = self.frame / chains.max(1);
        let drained = end.drain_samples();
        let recorded = end.recorded_per_chain(end.steps_done()) - recorded_before;
        for k in 0..recorded {
            let step = self.burn_in + (recorded_before + k + 1) * self.thin - 1;
            for (c, (xs, us)) in drained.iter().enumerate() {
                let x = &xs[k * self.dim..(k + 1) * self.dim];
                self.writer.write(x, step)?;
                self.energies[c].push(us[k]);
                let cv_text = match self.cv {
                    Some(cv) => {
                        let v = cv.value(x, self.spatial_dim);
                        self.cvs[c].push(v);
                        format!(",{v}")
                    }
                    None => String::new(),
                };
                writeln!(self.rows, "{},{c},{step},{}{cv_text}", self.frame, us[k])
                    .map_err(Error::io(self.table))?;
                self.frame += 1;
            }
        }
        self.blocks += 1;
        self.progress
            .update(end.steps_done() as u64, &format!("{} frames", self.frame));
        // Asked to stop: checkpoint now, so that a resume continues from this block.
        let stop = self.progress.interrupted();
        if !stop && !self.cadence.due(self.blocks, end.is_finished()) {
            return Ok(());
        }
        let trajectory_bytes = self.writer.flush()?;
        self.rows.flush().map_err(Error::io(self.table))?;
        self.rows
            .get_ref()
            .sync_all()
            .map_err(Error::io(self.table))?;
        let table_bytes = self
            .rows
            .get_ref()
            .metadata()
            .map_err(Error::io(self.table))?
            .len();
        // The checkpoint before is kept: if a write was lost when the trajectory was closed
        // (a full disk), this one claims frames that are not there, and a resume falls back
        // to the one before.
        if self.checkpoint.is_file() {
            std::fs::rename(self.checkpoint, self.previous).map_err(Error::io(self.previous))?;
        }
        end.checkpoint_with_streams(
            self.checkpoint,
            &[
                StreamMark {
                    name: file_name(self.trajectory),
                    bytes: trajectory_bytes,
                },
                StreamMark {
                    name: file_name(self.table),
                    bytes: table_bytes,
                },
            ],
        )?;
        if stop {
            return Err(Error::Interrupted {
                stage: "sampling".into(),
            });
        }
        Ok(())
    }
}

/// Runs the `[sample]` section with `model`'s learned moves, writing `samples.<format>`,
/// `samples.csv`, `sampler.ckpt` and `sample_report.json` into the run directory.
///
/// # Errors
/// [`Error::Config`] without a `[sample]` section or a starting point; whatever the sampler
/// and the files report. With `--resume`, a missing or mismatched checkpoint is an error.
pub fn sample(
    prep: &Prepared,
    options: &Options,
    model: Option<&Model>,
    progress: &mut dyn Progress,
) -> Result<SampleSummary> {
    sample_on(prep, options, model, progress, &OneProcess)
}

/// The `[sample]` section and the sampler's config from it.
fn sampler_config(prep: &Prepared) -> Result<(&SampleConfig, SamplerConfig)> {
    let s = prep.config.sample.as_ref().ok_or_else(|| Error::Config {
        file: prep.config_path.clone(),
        key: "sample".into(),
        message: "required for sampling".into(),
    })?;
    let system = &prep.system;
    let mut config = SamplerConfig::new(s.chains, system.beta, s.moves.clone());
    config.seed = prep.seed;
    config.burn_in = s.burn_in;
    config.steps = s.steps;
    config.thin = s.thin;
    config.buffer = s.buffer;
    config.sync_interval = s.sync_interval;
    config.exchange = prep
        .config
        .exchange_ladder(&prep.config_path, system.beta)?;
    Ok((s, config))
}

/// The learned moves' generators: `model`'s, with the flow move proposing `balanced` (the
/// thinned draws of `[sample] balance`) instead of the model's own when given.
fn learned_moves<'a>(model: Option<&'a Model>, balanced: Option<&'a dyn Generator>) -> Learned<'a> {
    match model {
        Some(Model::Flow(f)) => Learned {
            independence: balanced.or(Some(f)),
            ..Learned::flow(f)
        },
        Some(Model::Vae(v)) => Learned::none().with_vae(v),
        Some(Model::TorchScript(t)) => Learned {
            independence: balanced.or(Some(t)),
            ..Learned::none()
        },
        None => Learned::none(),
    }
}

/// Refuses what cannot yet be spread over processes, by name, before anything is written.
fn check_spreadable(prep: &Prepared, s: &SampleConfig, ranks: &dyn Ranks) -> Result<()> {
    if ranks.size() > 1 && s.balance.is_some() {
        return Err(Error::Config {
            file: prep.config_path.clone(),
            key: "sample.balance".into(),
            message: format!(
                "balanced flow proposals are planned by one process and cannot yet be shared \
                 by {} MPI ranks: run without mpirun, or without balance",
                ranks.size()
            ),
        });
    }
    Ok(())
}

/// A process other than the first of a run spread over processes (`mpirun -np N boltzgen
/// sample`): it takes the first process's sampler, advances its share of the chains, and
/// writes nothing (the first process writes the trajectory, the checkpoints and the reports).
///
/// # Errors
/// As [`sample_on`].
pub fn sample_worker(prep: &Prepared, model: Option<&Model>, ranks: &dyn Ranks) -> Result<()> {
    /// Takes the samples at every block end so that they do not pile up; writes nothing.
    struct Discard;
    impl SamplerObserver for Discard {
        fn block(&mut self, end: &mut BlockEnd<'_, '_>) -> Result<()> {
            end.drain_samples();
            Ok(())
        }
    }
    let (s, _) = sampler_config(prep)?;
    check_spreadable(prep, s, ranks)?;
    let u = prep.system.potential.as_ref();
    Sampler::run_spread(None, u, learned_moves(model, None), &mut Discard, ranks)?;
    Ok(())
}

/// As [`sample`], the chains spread over the processes of `ranks` (this is the first of
/// them; the others run [`sample_worker`]).
///
/// # Errors
/// As [`sample`]; `[sample] balance` with more than one process.
pub fn sample_on(
    prep: &Prepared,
    options: &Options,
    model: Option<&Model>,
    progress: &mut dyn Progress,
    ranks: &dyn Ranks,
) -> Result<SampleSummary> {
    let (s, config) = sampler_config(prep)?;
    check_spreadable(prep, s, ranks)?;
    let system = &prep.system;
    let u = system.potential.as_ref();
    let strata = s
        .balance
        .as_ref()
        .map(|_| super::balance::region_strata(prep, "sample.balance"))
        .transpose()?;
    let (thinned, balance) = match (&s.balance, &strata) {
        (Some(b), Some((stratum_of, n_strata))) => {
            let (generator, balance) = super::balance::balanced_proposals(
                prep, s, model, b, stratum_of, *n_strata, progress,
            )?;
            (Some(generator), Some(balance))
        }
        _ => (None, None),
    };
    // With `balance`, the flow move proposes the thinned draws instead of the model's own.
    let balanced = thinned.as_ref().map(|t| t as &dyn Generator);
    let learned = learned_moves(model, balanced);
    let format = &prep.config.output.trajectory_format;
    let trajectory = prep.path(&format!("samples.{format}"));
    let table = prep.path("samples.csv");
    let checkpoint = prep.path("sampler.ckpt");
    let cv = prep.config.analysis.cv.clone();
    let spatial_dim = system.spatial_dim;

    let previous = previous_checkpoint(&checkpoint);
    let resumed = if options.resume {
        resume(
            prep,
            &config,
            &[&checkpoint, &previous],
            &trajectory,
            &table,
            progress,
        )?
    } else {
        None
    };
    if options.resume && resumed.is_none() {
        progress.note(&format!(
            "--resume: there is no sampler checkpoint {} yet (the run stopped before its first \
             one), so sampling starts from the beginning",
            checkpoint.display()
        ));
    }
    let resuming = resumed.is_some();
    let (mut sampler, mut energies, mut cvs) = match resumed {
        Some(r) => r,
        None => {
            let start = starting_points(prep, model, s.chains)?;
            (
                Sampler::new(config, u, &start)?,
                vec![Vec::new(); s.chains],
                vec![Vec::new(); s.chains],
            )
        }
    };
    let append = resuming && trajectory.is_file();
    let mut writer = TrajectoryWriter::create(
        &trajectory,
        system.n_particles,
        spatial_dim,
        system.length_per_angstrom,
        prep.element(),
        append,
    )?;
    let table_file = if resuming {
        OpenOptions::new().append(true).open(&table)
    } else {
        File::create(&table)
    }
    .map_err(Error::io(&table))?;
    let mut rows = BufWriter::new(table_file);
    if !resuming {
        writeln!(
            rows,
            "frame,chain,step,energy{}",
            if cv.is_some() { ",cv" } else { "" }
        )
        .map_err(Error::io(&table))?;
    }
    let frame = s.chains * sampler.recorded_per_chain(sampler.steps_done());

    let started = Instant::now();
    progress.start("sampling", sampler.total_steps() as u64);
    let mut stream = SampleStream {
        writer: &mut writer,
        rows: &mut rows,
        table: &table,
        trajectory: &trajectory,
        checkpoint: &checkpoint,
        previous: &previous,
        cadence: crate::envelope::Cadence {
            every: s.checkpoint_every,
        },
        burn_in: s.burn_in,
        thin: s.thin,
        cv: cv.as_ref(),
        dim: u.dim(),
        spatial_dim,
        energies: &mut energies,
        cvs: &mut cvs,
        frame,
        blocks: 0,
        progress: &mut *progress,
    };
    let sampler = if ranks.size() > 1 {
        Sampler::run_spread(Some(sampler), u, learned, &mut stream, ranks)?
    } else {
        sampler.run_observed(u, learned, &mut stream)?;
        sampler
    };
    let frame = stream.frame;
    progress.finish();
    drop(writer);
    debug_assert_eq!(count_frames(&trajectory).unwrap_or(frame), frame);

    let report = sampler.report();
    if report.generator_changes > 0 {
        progress.note(
            "the model differs from the one the checkpoint was written with: the chains' cached \
             generator terms and buffered draws were dropped and recomputed",
        );
    }
    let step_sizes = (0..report.moves.len())
        .map(|k| {
            let mut v: Vec<f64> = report
                .chains
                .iter()
                .filter_map(|c| c.step_sizes[k])
                .collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        })
        .collect();
    let transitions = match (&cv, prep.config.analysis.states.is_empty()) {
        (Some(_), false) => {
            let mut total: Option<Transitions> = None;
            for series in &cvs {
                let t = count_transitions(series, &prep.config.analysis.states)?;
                match &mut total {
                    None => total = Some(t),
                    Some(acc) => acc.add(&t)?,
                }
            }
            total
        }
        _ => None,
    };
    let (regions, region_spread) = region_reports(prep, &trajectory, s.chains)?;
    let mut spread: Vec<Warning> = Vec::new();
    let states = match &cv {
        Some(_) => prep
            .config
            .analysis
            .states
            .iter()
            .map(|state| {
                let inside: Vec<Vec<f64>> = cvs
                    .iter()
                    .map(|c| {
                        c.iter()
                            .map(|&v| f64::from(u8::from(v >= state.lower && v <= state.upper)))
                            .collect()
                    })
                    .collect();
                let refs: Vec<&[f64]> = inside.iter().map(Vec::as_slice).collect();
                spread.extend(check_chain_spread(&format!("state {}", state.name), &refs));
                StateReport {
                    name: state.name.clone(),
                    probability: summarize_chains(&inside)
                        .as_ref()
                        .map(ObservableReport::from),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let energy = summarize_chains(&energies);
    let cv_summary = cv.as_ref().and_then(|_| summarize_chains(&cvs));
    // The raw R̂, not the JSON-safe one: an infinite R̂ (chains each constant at different
    // values) is the worst case, not a missing number.
    let mut warnings: Vec<Warning> = [("the energy", &energy), ("the CV", &cv_summary)]
        .into_iter()
        .filter_map(|(name, o)| check_split_rhat(name, o.as_ref().map(|o| o.split_rhat)))
        .collect();
    fn as_refs(series: &[Vec<f64>]) -> Vec<&[f64]> {
        series.iter().map(Vec::as_slice).collect()
    }
    warnings.extend(check_chain_spread("the energy", &as_refs(&energies)));
    if cv.is_some() {
        warnings.extend(check_chain_spread("the CV", &as_refs(&cvs)));
    }
    warnings.extend(spread);
    warnings.extend(region_spread);
    let (energy, cv_report) = (
        energy.as_ref().map(ObservableReport::from),
        cv_summary.as_ref().map(ObservableReport::from),
    );
    if let Some(t) = &transitions {
        let names: Vec<String> = prep
            .config
            .analysis
            .states
            .iter()
            .map(|s| s.name.clone())
            .collect();
        warnings.extend(check_transitions(t, &names));
    }
    let replica_exchange = report.exchange.clone().map(|x| {
        let temperature = prep.config.system.temperature.unwrap_or(1.0 / system.beta);
        ReplicaExchangeSummary {
            temperatures: x
                .temperature_factors
                .iter()
                .map(|f| f * temperature)
                .collect(),
            report: x,
        }
    });
    if let Some(x) = &replica_exchange {
        let acceptance: Vec<Option<f64>> = x.report.pairs.iter().map(|p| p.acceptance).collect();
        warnings.extend(check_replica_exchange(
            &acceptance,
            &x.temperatures,
            x.report.total_round_trips(),
            x.report.production_rounds,
        ));
    }
    let summary = SampleSummary {
        trajectory,
        table,
        frames: frame,
        moves: report.moves.clone(),
        adaptive_steps: report.adaptive_steps,
        step_sizes,
        energy_evaluations: report.energy_evaluations,
        energy,
        cv: cv_report,
        transitions,
        balance,
        states,
        regions,
        replica_exchange,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
    };
    write_json(&prep.path("sample_report.json"), &summary)?;
    Ok(summary)
}

/// Region estimates from the written samples (read back, so a resumed run counts every frame;
/// frame f belongs to chain f mod `chains`).
/// With the `chain_spread` warnings of the regions' probabilities.
fn region_reports(
    prep: &Prepared,
    trajectory: &Path,
    chains: usize,
) -> Result<(Vec<RegionReport>, Vec<Warning>)> {
    let regions = &prep.config.analysis.regions;
    let (Some([a, b]), false) = (&prep.config.analysis.scatter, regions.is_empty()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let system = &prep.system;
    let x = prep.read_written(trajectory)?;
    let dim = system.potential.dim();
    let points: Vec<(f64, f64)> = x
        .chunks_exact(dim)
        .map(|c| {
            (
                a.value(c, system.spatial_dim),
                b.value(c, system.spatial_dim),
            )
        })
        .collect();
    let per_chain = |f: &dyn Fn(f64, f64) -> f64| -> Vec<Vec<f64>> {
        let mut series = vec![Vec::new(); chains];
        for (i, &(px, py)) in points.iter().enumerate() {
            series[i % chains].push(f(px, py));
        }
        series
    };
    let indicator = |r: &crate::config::Region| {
        let r = r.clone();
        move |px: f64, py: f64| f64::from(u8::from(r.contains(px, py)))
    };
    let first = &regions[0];
    let first_summary = summarize_chains(&per_chain(&indicator(first)));
    let mut warnings = Vec::new();
    let reports = regions
        .iter()
        .map(|r| {
            let series = per_chain(&indicator(r));
            let refs: Vec<&[f64]> = series.iter().map(Vec::as_slice).collect();
            warnings.extend(check_chain_spread(&format!("P({})", r.name), &refs));
            let summary = summarize_chains(&series);
            let (p, p_first) = (
                summary.as_ref().map(|s| s.mean).unwrap_or(f64::NAN),
                first_summary.as_ref().map(|s| s.mean).unwrap_or(f64::NAN),
            );
            let (in_r, in_first) = (indicator(r), indicator(first));
            let g = per_chain(&|px, py| in_r(px, py) / p - in_first(px, py) / p_first);
            let beta = system.beta;
            let valid = p > 0.0 && p_first > 0.0;
            RegionReport {
                name: r.name.clone(),
                probability: summary.as_ref().map(ObservableReport::from),
                delta_f: valid.then(|| -(p / p_first).ln() / beta).and_then(finite),
                delta_f_std_error: valid
                    .then(|| summarize_chains(&g).map(|s| s.std_error / beta))
                    .flatten()
                    .and_then(finite),
            }
        })
        .collect();
    Ok((reports, warnings))
}
