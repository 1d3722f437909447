//! Trajectories through chemfiles: reading training frames, writing samples.
//!
//! Configurations are flat `[n_particles × spatial_dim]` in the potential's length unit;
//! chemfiles positions are 3-D in ångström. Systems with fewer than three spatial dimensions
//! write zeros in the missing ones and ignore them when reading.

use std::path::{Path, PathBuf};

use chemfiles::{Atom, Frame, Selection, Trajectory};

use crate::error::{Error, Result};

/// Sends chemfiles' warnings to the `log` of this crate instead of stderr, once.
/// Sends chemfiles' warnings to the log (`tracing`, target `chemfiles`) instead of its own
/// stderr printing: each distinct message once as a warning, its repeats (chemfiles warns per
/// frame) at trace level, so that a long trajectory cannot flood the terminal.
pub(crate) fn log_chemfiles_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        chemfiles::set_warning_callback(|message: &str| {
            static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
            let first = SEEN.lock().is_ok_and(|mut seen| {
                let new = !seen.iter().any(|m| m == message);
                if new && seen.len() < 1000 {
                    seen.push(message.to_owned());
                }
                new
            });
            if first {
                tracing::warn!(target: "chemfiles", "{message}");
            } else {
                tracing::trace!(target: "chemfiles", "{message}");
            }
        })
    });
}

/// Frames `start:stop:stride` (Python slice rules without negatives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRange {
    /// First frame.
    pub start: usize,
    /// One past the last frame (`None`: to the end).
    pub stop: Option<usize>,
    /// Step between frames (≥ 1).
    pub stride: usize,
}

impl Default for FrameRange {
    fn default() -> Self {
        Self {
            start: 0,
            stop: None,
            stride: 1,
        }
    }
}

impl std::str::FromStr for FrameRange {
    type Err = String;

    /// `"10:"`, `":1000:10"`, `"5:50"`, `"::2"`, or a single frame `"7"`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(':').map(str::trim).collect();
        let num = |p: &str, what: &str| -> std::result::Result<Option<usize>, String> {
            if p.is_empty() {
                Ok(None)
            } else {
                p.parse()
                    .map(Some)
                    .map_err(|_| format!("{what} `{p}` is not a non-negative integer"))
            }
        };
        let range = match parts.as_slice() {
            [single] => {
                let i = num(single, "frame")?.ok_or("empty frame range")?;
                FrameRange {
                    start: i,
                    stop: Some(i + 1),
                    stride: 1,
                }
            }
            [a, b] | [a, b, ""] => FrameRange {
                start: num(a, "start")?.unwrap_or(0),
                stop: num(b, "stop")?,
                stride: 1,
            },
            [a, b, c] => FrameRange {
                start: num(a, "start")?.unwrap_or(0),
                stop: num(b, "stop")?,
                stride: num(c, "stride")?.unwrap_or(1),
            },
            _ => return Err(format!("`{s}` is not start:stop:stride")),
        };
        if range.stride == 0 {
            return Err("stride must be at least 1".into());
        }
        Ok(range)
    }
}

/// What to read from a trajectory and how to map it onto a system.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    /// Frames to read.
    pub frames: FrameRange,
    /// A chemfiles selection of atoms, applied to the first frame read.
    pub selection: Option<String>,
    /// Particles the system expects (after selection).
    pub n_particles: usize,
    /// Coordinates per particle (1–3).
    pub spatial_dim: usize,
    /// Potential length units per ångström.
    pub length_per_angstrom: f64,
}

fn traj_error(path: &Path, frame: Option<usize>, message: impl Into<String>) -> Error {
    Error::Trajectory {
        file: path.to_owned(),
        frame,
        message: message.into(),
    }
}

/// A chemfiles selection of single atoms. A selection of pairs, angles, … matches tuples, and
/// only single atoms make frames (chemfiles panics when asked for a list of tuples).
fn parse_selection(s: &str) -> std::result::Result<Selection, String> {
    let sel = Selection::new(s).map_err(|e| format!("bad selection `{s}`: {e}"))?;
    if sel.size() != 1 {
        return Err(format!(
            "selection `{s}` matches groups of {} atoms; give one that selects single atoms \
             (e.g. `name C or name N`)",
            sel.size()
        ));
    }
    Ok(sel)
}

/// Checks a chemfiles atom selection without a trajectory (for configs, before any file is
/// read).
///
/// # Errors
/// A message for a selection chemfiles cannot parse, or one of pairs, angles, ….
pub fn check_selection(s: &str) -> std::result::Result<(), String> {
    log_chemfiles_warnings();
    parse_selection(s).map(|_| ())
}

/// Reads frames of `path` into a flat `[frames × n_particles·spatial_dim]` batch.
///
/// # Errors
/// [`Error::Trajectory`] naming the file — and the frame, where one is at fault — for a
/// missing or unreadable file, an unreadable (e.g. truncated) frame, a wrong atom count, a
/// bad selection, non-finite coordinates, or no frame in the range.
pub fn read_frames(path: &Path, spec: &ReadSpec) -> Result<Vec<f64>> {
    log_chemfiles_warnings();
    if !path.is_file() {
        return Err(traj_error(path, None, "no such file"));
    }
    if !(1..=3).contains(&spec.spatial_dim) {
        return Err(traj_error(path, None, "spatial_dim must be 1, 2 or 3"));
    }
    let mut traj = Trajectory::open(path, 'r')
        .map_err(|e| traj_error(path, None, format!("cannot open: {e}")))?;
    let total = traj.nsteps();
    let stop = spec.frames.stop.unwrap_or(total).min(total);
    let mut selection = match &spec.selection {
        Some(s) => Some(parse_selection(s).map_err(|m| traj_error(path, None, m))?),
        None => None,
    };
    let mut atoms: Option<Vec<usize>> = None;
    let mut out = Vec::new();
    let mut frame = Frame::new();
    let d = spec.spatial_dim;
    for index in (spec.frames.start..stop).step_by(spec.frames.stride) {
        traj.read_step(index, &mut frame)
            .map_err(|e| traj_error(path, Some(index), format!("cannot read: {e}")))?;
        if atoms.is_none() {
            atoms = Some(match &mut selection {
                Some(sel) => sel.list(&frame),
                None => (0..frame.size()).collect(),
            });
        }
        let picked = atoms.as_deref().unwrap_or(&[]);
        if picked.len() != spec.n_particles || picked.iter().any(|&a| a >= frame.size()) {
            return Err(traj_error(
                path,
                Some(index),
                format!(
                    "has {} atoms{}, the system needs {}",
                    if spec.selection.is_some() {
                        picked.len()
                    } else {
                        frame.size()
                    },
                    if spec.selection.is_some() {
                        " selected"
                    } else {
                        ""
                    },
                    spec.n_particles
                ),
            ));
        }
        let positions = frame.positions();
        for &a in picked {
            for &v in &positions[a][..d] {
                let v = v * spec.length_per_angstrom;
                if !v.is_finite() {
                    return Err(traj_error(
                        path,
                        Some(index),
                        format!("atom {a} has a non-finite coordinate"),
                    ));
                }
                out.push(v);
            }
        }
    }
    if out.is_empty() {
        return Err(traj_error(
            path,
            None,
            format!("no frames in the range (the file has {total})"),
        ));
    }
    Ok(out)
}

/// Number of atoms of the first frame of `path` (after `selection`, when given): what
/// [`ReadSpec::n_particles`] must be to read the file.
///
/// # Errors
/// [`Error::Trajectory`] if the file cannot be opened or its first frame read, or for a bad
/// selection.
pub fn count_atoms(path: &Path, selection: Option<&str>) -> Result<usize> {
    log_chemfiles_warnings();
    if !path.is_file() {
        return Err(traj_error(path, None, "no such file"));
    }
    let mut traj = Trajectory::open(path, 'r')
        .map_err(|e| traj_error(path, None, format!("cannot open: {e}")))?;
    let mut frame = Frame::new();
    traj.read_step(0, &mut frame)
        .map_err(|e| traj_error(path, Some(0), format!("cannot read: {e}")))?;
    match selection {
        Some(s) => {
            let mut sel = parse_selection(s).map_err(|m| traj_error(path, None, m))?;
            Ok(sel.list(&frame).len())
        }
        None => Ok(frame.size()),
    }
}

/// Number of frames chemfiles sees in `path`.
///
/// # Errors
/// [`Error::Trajectory`] if the file cannot be opened.
pub fn count_frames(path: &Path) -> Result<usize> {
    log_chemfiles_warnings();
    let mut traj = Trajectory::open(path, 'r')
        .map_err(|e| traj_error(path, None, format!("cannot open: {e}")))?;
    Ok(traj.nsteps())
}

/// Writes configurations as trajectory frames; the format follows the file extension.
///
/// chemfiles has no flush: [`TrajectoryWriter::flush`] closes the file (so that chemfiles writes
/// out its buffers and any footer), fsyncs it and reopens it in append mode, so that everything
/// written so far is on disk (done at every checkpoint, before the checkpoint).
pub struct TrajectoryWriter {
    path: PathBuf,
    traj: Option<Trajectory>,
    frame: Frame,
    spatial_dim: usize,
    angstrom_per_length: f64,
    written: usize,
}

impl TrajectoryWriter {
    /// Creates (or, with `append`, extends) `path` for systems of `n_particles` particles in
    /// `spatial_dim` dimensions, atoms named `element`.
    ///
    /// # Errors
    /// [`Error::Trajectory`] naming the file if chemfiles cannot open it for writing (an
    /// unknown extension, a missing directory).
    pub fn create(
        path: &Path,
        n_particles: usize,
        spatial_dim: usize,
        length_per_angstrom: f64,
        element: &str,
        append: bool,
    ) -> Result<Self> {
        log_chemfiles_warnings();
        let traj = Trajectory::open(path, if append { 'a' } else { 'w' })
            .map_err(|e| traj_error(path, None, format!("cannot open for writing: {e}")))?;
        let mut frame = Frame::new();
        let atom = Atom::new(element);
        for _ in 0..n_particles {
            frame.add_atom(&atom, [0.0; 3], None);
        }
        Ok(Self {
            path: path.to_owned(),
            traj: Some(traj),
            frame,
            spatial_dim,
            angstrom_per_length: 1.0 / length_per_angstrom,
            written: 0,
        })
    }

    /// Appends one configuration as a frame with step number `step`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for a configuration of the wrong size, [`Error::Trajectory`] if
    /// chemfiles cannot write.
    pub fn write(&mut self, x: &[f64], step: usize) -> Result<()> {
        let n = self.frame.size();
        let d = self.spatial_dim;
        if x.len() != n * d {
            return Err(Error::Dimension {
                what: format!("configuration written to {}", self.path.display()),
                expected: n * d,
                got: x.len(),
            });
        }
        let scale = self.angstrom_per_length;
        for (p, c) in self.frame.positions_mut().iter_mut().zip(x.chunks_exact(d)) {
            *p = [0.0; 3];
            for (k, v) in c.iter().enumerate() {
                p[k] = v * scale;
            }
        }
        self.frame.set_step(step);
        let traj = self
            .traj
            .as_mut()
            .ok_or_else(|| traj_error(&self.path, None, "writer is closed"))?;
        traj.write(&self.frame).map_err(|e| {
            traj_error(&self.path, Some(self.written), format!("cannot write: {e}"))
        })?;
        self.written += 1;
        Ok(())
    }

    /// Frames written by this writer.
    pub fn frames_written(&self) -> usize {
        self.written
    }

    /// Puts everything written so far on disk (close, fsync, then reopen for appending) and
    /// returns the file's length in bytes, for a checkpoint to record.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be synced, [`Error::Trajectory`] if it cannot be
    /// reopened.
    pub fn flush(&mut self) -> Result<u64> {
        drop(self.traj.take());
        let bytes = super::stream::sync_and_measure(&self.path)?;
        self.traj = Some(
            Trajectory::open(&self.path, 'a')
                .map_err(|e| traj_error(&self.path, None, format!("cannot reopen: {e}")))?,
        );
        Ok(bytes)
    }
}

/// Cuts `path` back to its first `keep` frames (after an interrupted run wrote frames past its
/// last checkpoint), by copying them to a temporary file and renaming it over the original.
///
/// # Errors
/// [`Error::Trajectory`] if the file has fewer than `keep` frames or cannot be rewritten.
pub fn truncate_frames(path: &Path, keep: usize) -> Result<()> {
    let total = count_frames(path)?;
    if total == keep {
        return Ok(());
    }
    if total < keep {
        return Err(traj_error(
            path,
            None,
            format!("has {total} frames, the checkpoint expects at least {keep}"),
        ));
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_extension(format!("truncating.{extension}"));
    {
        let mut input = Trajectory::open(path, 'r')
            .map_err(|e| traj_error(path, None, format!("cannot open: {e}")))?;
        let mut output = Trajectory::open(&tmp, 'w')
            .map_err(|e| traj_error(&tmp, None, format!("cannot open for writing: {e}")))?;
        let mut frame = Frame::new();
        for i in 0..keep {
            input
                .read_step(i, &mut frame)
                .map_err(|e| traj_error(path, Some(i), format!("cannot read: {e}")))?;
            output
                .write(&frame)
                .map_err(|e| traj_error(&tmp, Some(i), format!("cannot write: {e}")))?;
        }
    }
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ranges_parse_like_python_slices() {
        let r: FrameRange = "10:100:5".parse().unwrap();
        assert_eq!((r.start, r.stop, r.stride), (10, Some(100), 5));
        let r: FrameRange = "::2".parse().unwrap();
        assert_eq!((r.start, r.stop, r.stride), (0, None, 2));
        let r: FrameRange = "7".parse().unwrap();
        assert_eq!((r.start, r.stop), (7, Some(8)));
        assert!("1:2:0".parse::<FrameRange>().is_err());
        assert!("a:b".parse::<FrameRange>().is_err());
        assert!("1:2:3:4".parse::<FrameRange>().is_err());
    }

    fn spec(n: usize, d: usize) -> ReadSpec {
        ReadSpec {
            frames: FrameRange::default(),
            selection: None,
            n_particles: n,
            spatial_dim: d,
            length_per_angstrom: 1.0,
        }
    }

    /// write → read gives the same coordinates, within each format's precision.
    #[test]
    fn round_trips_through_xyz_pdb_dcd_and_xtc() {
        let dir = tempfile::tempdir().unwrap();
        let frames: Vec<Vec<f64>> = (0..5)
            .map(|f| (0..9).map(|i| (f * 9 + i) as f64 * 0.37 - 3.1).collect())
            .collect();
        // Precision: XYZ writes many digits, PDB 3 decimals, DCD float32, XTC 3 decimals
        // (in nm: 1e-3 nm = 0.01 Å).
        for (ext, tol) in [("xyz", 1e-5), ("pdb", 1e-3), ("dcd", 1e-5), ("xtc", 1e-2)] {
            let path = dir.path().join(format!("t.{ext}"));
            let mut w = TrajectoryWriter::create(&path, 3, 3, 1.0, "Ar", false).unwrap();
            for (i, f) in frames.iter().enumerate() {
                w.write(f, i).unwrap();
            }
            w.flush().unwrap();
            drop(w);
            let back = read_frames(&path, &spec(3, 3)).unwrap();
            let flat: Vec<f64> = frames.concat();
            assert_eq!(back.len(), flat.len(), "{ext}");
            for (a, b) in back.iter().zip(&flat) {
                assert!((a - b).abs() < tol, "{ext}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn two_dimensional_systems_and_units() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xyz");
        // Coordinates in nm: written as 10× larger ångström values, read back in nm.
        let mut w = TrajectoryWriter::create(&path, 2, 2, 0.1, "X", false).unwrap();
        w.write(&[0.1, 0.2, 0.3, 0.4], 0).unwrap();
        drop(w);
        let mut s = spec(2, 2);
        s.length_per_angstrom = 0.1;
        let back = read_frames(&path, &s).unwrap();
        for (a, b) in back.iter().zip([0.1, 0.2, 0.3, 0.4]) {
            assert!((a - b).abs() < 1e-9);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("1.0") || text.contains("1 "), "{text}");
    }

    #[test]
    fn errors_name_the_file_and_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.xyz");
        let e = read_frames(&missing, &spec(3, 3)).unwrap_err().to_string();
        assert!(
            e.contains("missing.xyz") && e.contains("no such file"),
            "{e}"
        );

        let path = dir.path().join("t.xyz");
        let mut w = TrajectoryWriter::create(&path, 3, 3, 1.0, "Ar", false).unwrap();
        for i in 0..4 {
            w.write(&[i as f64; 9], i).unwrap();
        }
        drop(w);
        let e = read_frames(&path, &spec(4, 3)).unwrap_err().to_string();
        assert!(e.contains("frame 0") && e.contains("has 3 atoms"), "{e}");

        // A truncated file: the last frame is cut in the middle.
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = dir.path().join("cut.xyz");
        std::fs::write(&cut, &text[..text.len() - 30]).unwrap();
        let e = read_frames(&cut, &spec(3, 3)).unwrap_err().to_string();
        // chemfiles finds the damage when it indexes the file, and names the frame ("step").
        assert!(e.contains("cut.xyz") && e.contains("step 3"), "{e}");

        let mut s = spec(2, 3);
        s.selection = Some("index < 2".into());
        assert_eq!(read_frames(&path, &s).unwrap().len(), 4 * 6);
        s.selection = Some("indx < 2".into());
        let e = read_frames(&path, &s).unwrap_err().to_string();
        assert!(e.contains("bad selection"), "{e}");
        s.selection = None;
        s.frames = "1:3".parse().unwrap();
        s.n_particles = 3;
        assert_eq!(read_frames(&path, &s).unwrap()[0], 1.0);
        s.frames = "10:".parse().unwrap();
        let e = read_frames(&path, &s).unwrap_err().to_string();
        assert!(e.contains("no frames"), "{e}");
    }

    #[test]
    fn non_finite_coordinates_name_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.dcd");
        let mut w = TrajectoryWriter::create(&path, 1, 3, 1.0, "Ar", false).unwrap();
        w.write(&[0.0, 1.0, 2.0], 0).unwrap();
        w.write(&[0.0, f64::NAN, 2.0], 1).unwrap();
        drop(w);
        let e = read_frames(&path, &spec(1, 3)).unwrap_err().to_string();
        assert!(
            e.contains("t.dcd, frame 1") && e.contains("non-finite"),
            "{e}"
        );
    }

    #[test]
    fn truncation_keeps_the_first_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xyz");
        let mut w = TrajectoryWriter::create(&path, 1, 3, 1.0, "Ar", false).unwrap();
        for i in 0..6 {
            w.write(&[i as f64, 0.0, 0.0], i).unwrap();
        }
        drop(w);
        truncate_frames(&path, 4).unwrap();
        assert_eq!(count_frames(&path).unwrap(), 4);
        assert!(truncate_frames(&path, 5).is_err());
        let mut w = TrajectoryWriter::create(&path, 1, 3, 1.0, "Ar", true).unwrap();
        w.write(&[9.0, 0.0, 0.0], 9).unwrap();
        drop(w);
        let x = read_frames(&path, &spec(1, 3)).unwrap();
        assert_eq!(
            x.chunks(3).map(|c| c[0]).collect::<Vec<_>>(),
            vec![0.0, 1.0, 2.0, 3.0, 9.0]
        );
    }
}
