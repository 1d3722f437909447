//! The run directory: which directories boltzgen may write into, and what `--force` may delete.
//!
//! boltzgen marks every directory it creates (or finds empty and adopts) with a
//! [`RUN_DIR_MARKER`] file. `--force` deletes only inside a marked directory, never follows a
//! symbolic link out of it, and never deletes a file the run itself reads (its config, its
//! frames, its model). A directory without the marker is never emptied: a mistyped `-o` that
//! names a directory of the user's own is an error, not a deletion.
//!
//! Each command owns some outputs. `train` and `run` own the whole directory; `sample` and
//! `reweight` add their own files to a run that `train` left, and refuse to overwrite an
//! earlier `sample` or `reweight` without `--force` (which then replaces only their files).

use std::path::{Path, PathBuf};

use super::{Options, Prepared};
use crate::error::{Error, Result};

/// The file that marks a directory as a boltzgen run directory.
pub const RUN_DIR_MARKER: &str = ".boltzgen-run";

/// What a command writes into the run directory, and so what `--force` may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `train` and `run`: the whole directory.
    Whole,
    /// `sample`: the samples, their table, the sampler checkpoint and the sample report.
    Sample,
    /// `reweight`: the weights, the profile, the resampled frames and the reweight report.
    Reweight,
}

impl Stage {
    /// The command's name, for messages.
    fn command(self) -> &'static str {
        match self {
            Stage::Whole => "train/run",
            Stage::Sample => "sample",
            Stage::Reweight => "reweight",
        }
    }

    /// The files of this stage in the run directory (for [`Stage::Whole`], none in
    /// particular: it owns them all).
    fn outputs(self, prep: &Prepared) -> Vec<PathBuf> {
        let format = &prep.config.output.trajectory_format;
        let names: Vec<String> = match self {
            Stage::Whole => Vec::new(),
            Stage::Sample => vec![
                format!("samples.{format}"),
                "samples.csv".into(),
                "sampler.ckpt".into(),
                "sampler.ckpt.prev".into(),
                "sample_report.json".into(),
            ],
            Stage::Reweight => vec![
                "weights.csv".into(),
                "profile.csv".into(),
                format!("resampled.{format}"),
                "reweight_report.json".into(),
            ],
        };
        names.iter().map(|n| prep.path(n)).collect()
    }
}

/// Whether anything (a file, a link, a directory) is at `path`, without following a link.
fn present(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn refuse(message: String) -> Error {
    Error::InvalidArgument {
        name: "output".into(),
        message,
    }
}

impl Prepared {
    /// The files this run reads: the config, the training trajectories, the OpenMM System
    /// and the model file. `--force` never deletes one of them.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config_path.clone()];
        if let Some(d) = &self.config.data {
            if let Some(t) = &d.trajectory {
                files.extend(t.paths().iter().cloned());
            }
        }
        if let Some(toml::Value::String(xml)) = self
            .config
            .system
            .parameters
            .as_ref()
            .and_then(|p| p.get("xml"))
        {
            files.push(PathBuf::from(xml));
        }
        if let Some(file) = self.config.model.as_ref().and_then(|m| m.file.as_ref()) {
            files.push(file.clone());
        }
        files
    }

    /// Creates (or reuses) the run directory for `stage`, deleting earlier results only as
    /// `--force` allows (see the module docs). With `--resume` nothing is deleted.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (key `output`) if the directory holds results of the stage
    /// without `--force` or `--resume`, if `--force` would empty a directory boltzgen did not
    /// create or delete one of the run's inputs, or if the path is not a directory;
    /// [`Error::Io`] if it cannot be created or cleared.
    pub fn create_run_dir(&self, options: &Options, stage: Stage) -> Result<()> {
        let dir = &self.run_dir;
        let shown = dir.display();
        match dir.symlink_metadata() {
            Err(_) => {
                std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
                return mark(dir);
            }
            Ok(m) if !m.is_dir() && !dir.is_dir() => {
                return Err(refuse(format!("{shown} exists and is not a directory")));
            }
            Ok(_) => {}
        }
        let owned = dir.join(RUN_DIR_MARKER).is_file();
        let entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n != RUN_DIR_MARKER))
            .collect();
        if entries.is_empty() {
            return mark(dir);
        }
        let doomed: Vec<PathBuf> = match stage {
            Stage::Whole => entries,
            _ => stage
                .outputs(self)
                .into_iter()
                .filter(|p| present(p))
                .collect(),
        };
        if options.resume {
            return remove_stale_temporaries(dir);
        }
        if doomed.is_empty() {
            return Ok(());
        }
        let names = doomed
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .take(6)
            .collect::<Vec<_>>()
            .join(", ");
        if !options.force {
            return Err(refuse(match stage {
                Stage::Whole => format!(
                    "the run directory {shown} already holds results ({names}); use --force to \
                     replace them, --resume to continue, or -o for another directory"
                ),
                _ => format!(
                    "the run directory {shown} already holds the results of an earlier `boltzgen \
                     {}` ({names}); use --force to replace them, --resume to continue, or -o for \
                     another directory",
                    stage.command()
                ),
            }));
        }
        if !owned {
            return Err(refuse(format!(
                "--force: {shown} was not created by boltzgen (it has no {RUN_DIR_MARKER} file), \
                 so nothing in it is deleted; remove it yourself or choose another directory \
                 with -o"
            )));
        }
        if dir
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(refuse(format!(
                "--force: {shown} is a symbolic link; boltzgen deletes nothing through one"
            )));
        }
        let inside = |input: &Path| -> Option<PathBuf> {
            let input = input.canonicalize().ok()?;
            doomed.iter().find_map(|d| {
                let d = d.canonicalize().ok()?;
                input.starts_with(&d).then_some(input.clone())
            })
        };
        if let Some(input) = self.input_files().iter().find_map(|f| inside(f)) {
            return Err(refuse(format!(
                "--force would delete {}, which this run reads; move it out of {shown} first",
                input.display()
            )));
        }
        for path in &doomed {
            // Never follows a link: a link is removed, not what it points to.
            let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
            if is_dir {
                std::fs::remove_dir_all(path).map_err(Error::io(path))?;
            } else {
                std::fs::remove_file(path).map_err(Error::io(path))?;
            }
        }
        Ok(())
    }
}

/// Removes what a killed run left half-written: the temporary files of atomic writes
/// (`.NAME.tmp-PID`, see [`crate::io::write_atomically`]) and of trajectory cut-backs
/// (`NAME.truncating.EXT`). Only names of those two forms are touched.
fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let atomic = name.starts_with('.')
            && name
                .rsplit_once(".tmp-")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        let cut_back = name.contains(".truncating.");
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if (atomic || cut_back) && is_file {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(Error::io(path))?;
        }
    }
    Ok(())
}

/// Writes the marker into a directory boltzgen has just created or found empty.
fn mark(dir: &Path) -> Result<()> {
    let marker = dir.join(RUN_DIR_MARKER);
    std::fs::write(
        &marker,
        format!(
            "A boltzgen run directory (boltzgen {}). `--force` may delete what is in it.\n",
            env!("CARGO_PKG_VERSION")
        ),
    )
    .map_err(Error::io(marker))
}
