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
    crate::io::trajectory::log_chemfiles_warnings();
    let bad = |m: String| Error::Trajectory {
        file: path.to_owned(),
        frame: None,
        message: m,
    };
    let mut traj = Trajectory::open(path, 'r').map_err(|e| bad(format!("cannot open: {e}")))?;
    let frames = traj.nsteps();
    let mut out = format!(
        "{}: trajectory, {frames} frame{}\n",
        path.display(),
        if frames == 1 { "" } else { "s" }
    );
    if frames == 0 {
        return Ok(out);
    }
    let mut read = |index: usize| -> Result<Frame> {
        let mut frame = Frame::new();
        traj.read_step(index, &mut frame)
            .map_err(|e| Error::Trajectory {
                file: path.to_owned(),
                frame: Some(index),
                message: format!("cannot read: {e}"),
            })?;
        Ok(frame)
    };
    let first = read(0)?;
    let second = if frames > 1 { Some(read(1)?) } else { None };
    let last = if frames > 2 {
        Some(read(frames - 1)?)
    } else {
        None
    };
    let last = last.as_ref().or(second.as_ref());
    out += &steps_line(&first, second.as_ref(), last, frames);
    let akma = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("dcd"));
    out += &time_line(&first, second.as_ref(), last, akma);
    out += &atoms_lines(&first);
    out += &box_line(&first);
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in first.positions() {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    if first.size() > 0 {
        out += &format!(
            "  extent of frame 0: [{:.3}, {:.3}] × [{:.3}, {:.3}] × [{:.3}, {:.3}] Å\n",
            lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
        );
    }
    Ok(out)
}

/// The simulation steps the frames record, when they record any (chemfiles numbers the frames
/// 0, 1, … itself when the file has no steps).
fn steps_line(
    first: &Frame,
    second: Option<&Frame>,
    last: Option<&Frame>,
    frames: usize,
) -> String {
    let (Some(second), Some(last)) = (second, last) else {
        return format!("  step: {}\n", first.step());
    };
    let stride = second.step().abs_diff(first.step());
    let numbered = first.step() == 0 && second.step() == 1 && last.step() == frames - 1;
    if numbered || (stride == 0 && last.step() == first.step()) {
        return "  steps: not recorded in the file\n".into();
    }
    format!(
        "  steps: {} → {}, every {stride} steps\n",
        first.step(),
        last.step()
    )
}

/// One AKMA time unit (CHARMM's, in which DCD files store time) in picoseconds.
const AKMA_PS: f64 = 0.048_888_21;

/// The frames' time, for the formats that store one (chemfiles' `time` property, in ps for
/// the GROMACS formats and in AKMA units for DCD, converted here).
fn time_line(first: &Frame, second: Option<&Frame>, last: Option<&Frame>, akma: bool) -> String {
    let scale = if akma { AKMA_PS } else { 1.0 };
    let time = |f: &Frame| {
        // Through the property list: `get` of a missing property makes chemfiles warn.
        f.properties()
            .find(|(name, _)| name == "time")
            .and_then(|(_, p)| match p {
                chemfiles::Property::Double(t) => Some(t * scale),
                _ => None,
            })
    };
    match (time(first), second.and_then(time), last.and_then(time)) {
        (Some(t0), Some(t1), Some(tn)) => format!(
            "  time: {t0:.4} → {tn:.4} ps, {:.4} ps between frames\n",
            t1 - t0
        ),
        (Some(t0), _, _) => format!("  time of frame 0: {t0:.4} ps\n"),
        _ => "  time: not recorded in the file\n".into(),
    }
}

/// Counts of distinct labels in order of first appearance: `C ×6, H ×12`.
fn tally(labels: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for l in labels {
        match counts.iter_mut().find(|(name, _)| *name == l.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((l.as_str(), 1)),
        }
    }
    counts
        .iter()
        .map(|(name, n)| format!("{name} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The atoms: their count, names and elements (each only when the file has them), residues
/// and bonds.
fn atoms_lines(frame: &Frame) -> String {
    let n = frame.size();
    let mut out = format!("  atoms: {n}\n");
    let names: Vec<String> = (0..n).map(|i| frame.atom(i).name()).collect();
    let elements: Vec<String> = (0..n).map(|i| frame.atom(i).atomic_type()).collect();
    let named = names.iter().any(|s| !s.trim().is_empty());
    if named {
        out += &if n <= 40 {
            format!("  names: {}\n", names.join(" "))
        } else {
            format!("  names: {}\n", tally(&names))
        };
    } else {
        out += "  names: none in the file\n";
    }
    // chemfiles takes the type from the name when the format has no separate one: show
    // elements only when they say something the names did not.
    let typed = elements.iter().any(|s| !s.trim().is_empty());
    let known: Vec<String> = (0..n)
        .filter(|&i| frame.atom(i).atomic_number() > 0)
        .map(|i| elements[i].clone())
        .collect();
    if typed && !known.is_empty() {
        out += &format!("  elements: {}", tally(&known));
        if known.len() < n {
            out += &format!(" ({} atoms of no known element)", n - known.len());
        }
        out += "\n";
    } else {
        out += "  elements: none in the file\n";
    }
    let topology = frame.topology();
    let residues = topology.residues_count() as usize;
    if residues > 0 {
        let names: Vec<String> = (0..residues)
            .filter_map(|i| topology.residue(i).map(|r| r.name()))
            .collect();
        out += &format!("  residues: {residues} ({})\n", names.join(" "));
    }
    let bonds = topology.bonds_count();
    if bonds > 0 {
        out += &format!("  bonds: {bonds}\n");
    }
    out
}

/// The unit cell of frame 0.
fn box_line(frame: &Frame) -> String {
    let cell = frame.cell();
    let [a, b, c] = cell.lengths();
    match cell.shape() {
        chemfiles::CellShape::Infinite => "  box: none (no unit cell in the file)\n".into(),
        chemfiles::CellShape::Orthorhombic => {
            format!("  box: orthorhombic {a:.3} × {b:.3} × {c:.3} Å\n")
        }
        chemfiles::CellShape::Triclinic => {
            let [alpha, beta, gamma] = cell.angles();
            format!(
                "  box: triclinic {a:.3} × {b:.3} × {c:.3} Å, angles {alpha:.2}° {beta:.2}° {gamma:.2}°\n"
            )
        }
    }
}
