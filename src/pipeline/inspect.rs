//! `boltzgen inspect`: what is in a trajectory, a model file or a sampler checkpoint.

use std::path::Path;

use chemfiles::{Frame, Trajectory};

use crate::error::{Error, Result};
use crate::generator::store::{read_model_file, ModelSpec};
use crate::mcmc::Sampler;

/// A human-readable summary of `path`: a model (`.json`), a sampler checkpoint (`.ckpt`),
/// or any trajectory chemfiles reads.
///
/// # Errors
/// [`Error::Io`] for a missing file; the reader's error naming the file otherwise.
pub fn inspect(path: &Path) -> Result<String> {
    if !path.exists() {
        return Err(Error::io(path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        )));
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "json" => inspect_model(path),
        "ckpt" => inspect_checkpoint(path),
        _ => inspect_trajectory(path),
    }
}

fn inspect_model(path: &Path) -> Result<String> {
    let file = read_model_file(path)?;
    let architecture = match &file.model {
        ModelSpec::Flow(c) => format!(
            "normalizing flow: {} coordinates, {} layers, base {:?}, {:?}, {:?}",
            c.dim,
            c.layers.len(),
            c.base,
            c.activation,
            c.precision
        ),
        ModelSpec::Vae(c) => format!(
            "VAE: {} coordinates, latent {}, hidden {:?}, {:?}",
            c.dim, c.latent_dim, c.hidden, c.precision
        ),
    };
    let mut out = format!(
        "{}: boltzgen model (format {}, written by boltzgen {})\n  {architecture}\n  weights: {}\n",
        path.display(),
        file.format_version,
        file.boltzgen_version,
        file.weights
    );
    if let Some(s) = &file.metadata.system {
        out += &format!(
            "  trained for: {} ({} coordinates), beta {:?}\n",
            s.potential, s.dim, s.beta
        );
    }
    if let Some(steps) = file.metadata.training_steps {
        out += &format!("  training steps: {steps}\n");
    }
    Ok(out)
}

fn inspect_checkpoint(path: &Path) -> Result<String> {
    let (config, step, dim) = Sampler::peek_checkpoint(path)?;
    let moves: Vec<String> = config
        .moves
        .iter()
        .map(|m| format!("{} (weight {})", m.kind.name(), m.weight))
        .collect();
    Ok(format!(
        "{}: boltzgen sampler checkpoint\n  {} chains of {dim} coordinates, beta {}, seed {}\n  step {step} of {} ({} burn-in), thin {}\n  moves: {}\n",
        path.display(),
        config.chains,
        config.beta,
        config.seed,
        config.burn_in + config.steps,
        config.burn_in,
        config.thin,
        moves.join(", ")
    ))
}

fn inspect_trajectory(path: &Path) -> Result<String> {
    let bad = |m: String| Error::Trajectory {
        file: path.to_owned(),
        frame: None,
        message: m,
    };
    let mut traj = Trajectory::open(path, 'r').map_err(|e| bad(format!("cannot open: {e}")))?;
    let frames = traj.nsteps();
    let mut out = format!("{}: trajectory, {frames} frames\n", path.display());
    if frames > 0 {
        let mut frame = Frame::new();
        traj.read_step(0, &mut frame)
            .map_err(|e| Error::Trajectory {
                file: path.to_owned(),
                frame: Some(0),
                message: format!("cannot read: {e}"),
            })?;
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in frame.positions() {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let mut names: Vec<String> = (0..frame.size()).map(|i| frame.atom(i).name()).collect();
        names.sort();
        names.dedup();
        out += &format!(
            "  {} atoms ({}) in frame 0; bounding box [{:.3}, {:.3}] × [{:.3}, {:.3}] × [{:.3}, {:.3}] Å\n",
            frame.size(),
            names.join(", "),
            lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
        );
    }
    Ok(out)
}
