//! The `boltzgen` command: train generators, sample with exact MCMC, reweight, inspect.
//!
//! All the work happens in [`boltzgen::pipeline`]; this file parses the command line, draws
//! progress, prints the summary, and turns errors into exit code 2.

#[cfg(feature = "mpi")]
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

use boltzgen::generator::DeviceChoice;
use boltzgen::mcmc::OneProcess;
#[cfg(feature = "mpi")]
use boltzgen::mcmc::Ranks;
#[cfg(feature = "mpi")]
use boltzgen::pipeline::existing_model;
use boltzgen::pipeline::{
    inspect, prepare_run, reweight_command, run_command, sample_command, train_command, Options,
    Prepared,
};
use clap::{Parser, Subcommand, ValueEnum};

mod display;
mod summary;

use display::Display;
use summary::print_summary;

#[derive(Parser)]
#[command(
    name = "boltzgen",
    version,
    about = "Learned samplers (normalizing flows, VAEs) coupled to exact Metropolis–Hastings",
    long_about = "Learned samplers (normalizing flows, VAEs) coupled to exact Metropolis–Hastings.\n\n\
        Every command reads a TOML run config (see docs/config.md) and writes into a run \
        directory (default runs/<config name>), which is never overwritten without --force.\n\n\
        Example: boltzgen run examples/double_well.toml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Seed of every random stream (overrides the config's `seed`). Example: --seed 7
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// Where models run (overrides the config's `device`). Example: --device cpu
    #[arg(long, global = true, value_enum)]
    device: Option<Device>,
    /// Worker threads for rayon and libtorch (default: all cores). Example: --threads 2
    #[arg(long, global = true, value_parser = parse_threads)]
    threads: Option<usize>,
    /// Run directory (overrides the config's `output.directory`). Example: -o runs/test
    #[arg(long, short, global = true)]
    output: Option<PathBuf>,
    /// Replace the results already in the run directory.
    #[arg(long, global = true)]
    force: bool,
    /// Continue from the checkpoints in the run directory.
    #[arg(long, global = true)]
    resume: bool,
    /// No progress and no notes on stderr: only warnings and errors (results still go to
    /// stdout).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More of the log on stderr: -v adds debug lines, -vv trace lines.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Clone, Copy, ValueEnum)]
enum Device {
    /// The GPU when libtorch sees one, else the CPU.
    Auto,
    /// Always the CPU.
    Cpu,
    /// The first CUDA device (an error without one).
    Cuda,
}

#[derive(Subcommand)]
enum Command {
    /// Train a generator from trajectory frames (forward KL), the energy (reverse KL) or both.
    ///
    /// Writes model.json + model.safetensors, train_report.json and train_loss.csv.
    /// Example: boltzgen train examples/double_well.toml
    Train {
        /// The run config (TOML).
        config: PathBuf,
    },
    /// Sample with Metropolis–Hastings chains mixing local and learned moves.
    ///
    /// Uses [model] file, or the model.json a previous `train` left in the run directory.
    /// Writes samples.<format>, samples.csv, sampler.ckpt and sample_report.json.
    /// Example: boltzgen sample examples/double_well.toml --resume
    Sample {
        /// The run config (TOML).
        config: PathBuf,
    },
    /// Importance-weight direct draws of a flow against the potential.
    ///
    /// Writes weights.csv, profile.csv, resampled.<format> (if asked) and
    /// reweight_report.json. Example: boltzgen reweight examples/double_well.toml
    Reweight {
        /// The run config (TOML).
        config: PathBuf,
    },
    /// Train, sample and reweight in one go; without a config, the built-in 2-D double well.
    ///
    /// Example: boltzgen run            (the built-in example)
    ///          boltzgen run examples/gmm40.toml
    Run {
        /// The run config (TOML); the built-in double-well example when omitted.
        config: Option<PathBuf>,
    },
    /// Summarise a trajectory, a model file (.json) or a sampler checkpoint (.ckpt).
    ///
    /// Example: boltzgen inspect runs/double_well/samples.xyz
    Inspect {
        /// The file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ boltzgen::Error::Interrupted { .. }) => {
            eprintln!("boltzgen: {e}");
            ExitCode::from(130)
        }
        Err(e) => {
            let mut message = format!("boltzgen: error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message += &format!("\n  caused by: {s}");
                source = s.source();
            }
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// The number of processes when this one was started by `mpirun` with more than one
/// (Open MPI's and PMI's environment say so), else `None`.
fn launched_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .filter_map(|v| v.parse::<usize>().ok())
        .find(|&n| n > 1)
}

/// `mpirun -np N boltzgen sample CONFIG`: the first rank prepares the run directory, runs
/// the sampler over all ranks and writes everything; the others only advance their chains.
/// An error on any rank ends them all (`MPI_Abort`, exit code 2), so none waits for ever.
#[cfg(feature = "mpi")]
fn sample_spread(config: &Path, options: &Options, display: &mut Display) -> boltzgen::Result<()> {
    use boltzgen::mpi_ranks::MpiRanks;
    let universe = mpi::initialize().ok_or_else(|| boltzgen::Error::InvalidArgument {
        name: "mpirun".into(),
        message: "MPI could not be initialised".into(),
    })?;
    let ranks = MpiRanks::new(&universe);
    let outcome = (|| {
        let prep = Prepared::new(config, options)?;
        if ranks.rank() == 0 {
            tracing::info!(
                "sampling on {} MPI ranks (an even share of the chains each, rank 0 writing)",
                ranks.size()
            );
            let report = sample_command(&prep, options, display, &ranks)?;
            {
                print_summary(&prep, &report);
                Ok(())
            }
        } else {
            let model = existing_model(&prep)?;
            boltzgen::pipeline::sample_worker(&prep, model.as_ref(), &ranks)
        }
    })();
    if let Err(e) = &outcome {
        report_and_abort(&ranks, e);
    }
    outcome
}

/// Prints `e` as this rank's error in one write (so that MPI's own abort message, from
/// another process, cannot cut it), then ends every rank with exit code 2.
#[cfg(feature = "mpi")]
fn report_and_abort(ranks: &boltzgen::mpi_ranks::MpiRanks, e: &boltzgen::Error) -> ! {
    use std::io::Write;
    let line = format!(
        "boltzgen: error (MPI rank {} of {}): {e}\n",
        ranks.rank(),
        ranks.size()
    );
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
    ranks.abort(2)
}

/// `mpirun -np N boltzgen run [CONFIG]`: the first rank trains, samples (over all ranks),
/// reweights and writes everything; the others wait until the trained model is in the run
/// directory, load it, and advance their share of the chains. An error on any rank ends them
/// all (`MPI_Abort`, exit code 2).
#[cfg(feature = "mpi")]
fn run_spread(
    config: Option<&Path>,
    options: &Options,
    display: &mut Display,
) -> boltzgen::Result<()> {
    use boltzgen::mpi_ranks::MpiRanks;
    let universe = mpi::initialize().ok_or_else(|| boltzgen::Error::InvalidArgument {
        name: "mpirun".into(),
        message: "MPI could not be initialised".into(),
    })?;
    let ranks = MpiRanks::new(&universe);
    let outcome = if ranks.rank() == 0 {
        (|| {
            let prep = prepare_run(config, options)?;
            let report = run_command(&prep, options, display, &ranks)?;
            {
                print_summary(&prep, &report);
                Ok(())
            }
        })()
    } else {
        (|| {
            let prep = prepare_run(config, options)?;
            // Until the first rank has trained and saved the model (or failed: then MPI_Abort).
            ranks.all_gather(&[])?;
            if prep.config.sample.is_none() {
                return Ok(());
            }
            let trained = prep.path("model.json");
            let model = match &prep.config.model {
                Some(m) if trained.is_file() => Some(prep.load_model(&trained, m.kind)?),
                _ => existing_model(&prep)?,
            };
            boltzgen::pipeline::sample_worker(&prep, model.as_ref(), &ranks)
        })()
    };
    if let Err(e) = &outcome {
        report_and_abort(&ranks, e);
    }
    outcome
}

/// `--threads`: a positive count, at most 4096 (rayon and libtorch take 0 to mean something
/// else, and a huge count would only exhaust the machine).
fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=4096) => Ok(n),
        _ => Err(format!("`{text}` is not a thread count from 1 to 4096")),
    }
}

fn options(cli: &Cli) -> Options {
    Options {
        seed: cli.seed,
        device: cli.device.map(|d| match d {
            Device::Auto => DeviceChoice::Auto,
            Device::Cpu => DeviceChoice::Cpu,
            Device::Cuda => DeviceChoice::Cuda,
        }),
        force: cli.force,
        resume: cli.resume,
        output: cli.output.clone(),
    }
}

fn execute(cli: &Cli) -> boltzgen::Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| boltzgen::Error::InvalidArgument {
                name: "threads".into(),
                message: e.to_string(),
            })?;
        tch::set_num_threads(i32::try_from(n).unwrap_or(i32::MAX));
    }
    display::init_logging(display::level(cli.quiet, cli.verbose));
    if launched_ranks().is_none() {
        display::catch_interrupts();
    }
    let options = options(cli);
    let mut display = Display::new(cli.quiet);
    if let Some(n) = launched_ranks() {
        let spreads = matches!(cli.command, Command::Sample { .. } | Command::Run { .. });
        if !spreads || !cfg!(feature = "mpi") {
            return Err(boltzgen::Error::InvalidArgument {
                name: "mpirun".into(),
                message: format!(
                    "started as one of {n} MPI processes, which would each run the whole job \
                     into the same files: only `boltzgen sample` and `run` spread over MPI \
                     ranks, and only when boltzgen is built with `--features mpi`{}",
                    if cfg!(feature = "mpi") {
                        ""
                    } else {
                        " (this one is not)"
                    }
                ),
            });
        }
    }
    match &cli.command {
        Command::Inspect { file } => {
            print!("{}", inspect(file)?);
            Ok(())
        }
        Command::Train { config } => {
            let prep = Prepared::new(config, &options)?;
            let (_, report) = train_command(&prep, &options, &mut display)?;
            {
                print_summary(&prep, &report);
                Ok(())
            }
        }
        Command::Sample { config } => {
            #[cfg(feature = "mpi")]
            if launched_ranks().is_some() {
                return sample_spread(config, &options, &mut display);
            }
            let prep = Prepared::new(config, &options)?;
            let report = sample_command(&prep, &options, &mut display, &OneProcess)?;
            {
                print_summary(&prep, &report);
                Ok(())
            }
        }
        Command::Reweight { config } => {
            let prep = Prepared::new(config, &options)?;
            let report = reweight_command(&prep, &options, &mut display)?;
            {
                print_summary(&prep, &report);
                Ok(())
            }
        }
        Command::Run { config } => {
            #[cfg(feature = "mpi")]
            if launched_ranks().is_some() {
                return run_spread(config.as_deref(), &options, &mut display);
            }
            let prep = prepare_run(config.as_deref(), &options)?;
            let report = run_command(&prep, &options, &mut display, &OneProcess)?;
            {
                print_summary(&prep, &report);
                Ok(())
            }
        }
    }
}
