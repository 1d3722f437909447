//! Sampler checkpoints: the whole state between two blocks (chains, streams, adaptation, the
//! moves' buffers, counters and the samples not yet drained), written atomically, from which
//! a resumed run continues the uninterrupted one bit for bit.

use std::path::Path;

use boltzgen_potentials::Potential;
use serde::{Deserialize, Serialize};

use super::{Sampler, SamplerConfig};
use crate::error::{Error, Result};
use crate::io::StreamMark;

/// Identifies a sampler checkpoint file and its layout.
const CHECKPOINT_MAGIC: &str = "boltzgen-sampler-checkpoint";
/// 2: the moves' buffers are saved by the moves themselves (`move_memory`).
const CHECKPOINT_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct CheckpointFile<S> {
    magic: String,
    version: u32,
    sampler: S,
    /// The lengths of the files the caller streams samples to, as they were on disk when the
    /// checkpoint was written (absent in checkpoints of earlier builds).
    #[serde(default)]
    streams: Vec<StreamMark>,
}

impl Sampler {
    /// Writes the whole sampler state (chains, streams, adaptation, buffers, counters and the
    /// samples so far) to `path`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint_with_streams(path, &[])
    }

    /// As [`Sampler::checkpoint`], recording the lengths of the files the samples stream to
    /// (which the caller has synced first), so that a resume cuts them back to exactly what
    /// this checkpoint describes, whatever a crash left after it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn checkpoint_with_streams(&self, path: &Path, streams: &[StreamMark]) -> Result<()> {
        crate::io::write_atomically(path, |tmp| {
            let file = std::fs::File::create(tmp).map_err(Error::io(tmp))?;
            let mut writer = std::io::BufWriter::new(file);
            ciborium::into_writer(
                &CheckpointFile {
                    magic: CHECKPOINT_MAGIC.into(),
                    version: CHECKPOINT_VERSION,
                    sampler: self,
                    streams: streams.to_vec(),
                },
                &mut writer,
            )
            .map_err(|e| Error::Model {
                file: tmp.to_owned(),
                message: format!("cannot write the sampler checkpoint: {e}"),
            })?;
            std::io::Write::flush(&mut writer).map_err(Error::io(tmp))
        })
    }

    /// Resumes from a checkpoint written by [`Sampler::checkpoint`]. `config` must equal the
    /// checkpoint's, except that `steps` may grow (to extend a finished run).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Model`] naming the file if it is
    /// not a sampler checkpoint, is truncated or corrupted, has another version, or was
    /// written for another configuration or system.
    pub fn resume(path: &Path, config: &SamplerConfig, potential: &dyn Potential) -> Result<Self> {
        Self::resume_with_streams(path, config, potential).map(|(sampler, _)| sampler)
    }

    /// As [`Sampler::resume`], also returning the stream lengths that
    /// [`Sampler::checkpoint_with_streams`] recorded (empty for a checkpoint without them).
    ///
    /// # Errors
    /// As [`Sampler::resume`].
    pub fn resume_with_streams(
        path: &Path,
        config: &SamplerConfig,
        potential: &dyn Potential,
    ) -> Result<(Self, Vec<StreamMark>)> {
        let bad = |message: String| Error::Model {
            file: path.to_owned(),
            message,
        };
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let saved: CheckpointFile<Sampler> = ciborium::from_reader(std::io::BufReader::new(file))
            .map_err(|e| {
            bad(format!(
                "not a readable sampler checkpoint (truncated or corrupted?): {e}"
            ))
        })?;
        if saved.magic != CHECKPOINT_MAGIC {
            return Err(bad("not a boltzgen sampler checkpoint".into()));
        }
        if saved.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "checkpoint format version {} (this build reads {CHECKPOINT_VERSION})",
                saved.version
            )));
        }
        let mut sampler = saved.sampler;
        let mut expected = sampler.config.clone();
        expected.steps = config.steps;
        if &expected != config {
            return Err(bad(
                "written for another sampler configuration (only `steps` may change on resume)"
                    .into(),
            ));
        }
        if config.steps < sampler.config.steps {
            return Err(bad(format!(
                "the checkpoint has {} production steps planned; `steps` may grow, not shrink",
                sampler.config.steps
            )));
        }
        if sampler.dim != potential.dim() || sampler.chains.len() != config.chains {
            return Err(bad(format!(
                "written for a system of {} coordinates and {} chains",
                sampler.dim,
                sampler.chains.len()
            )));
        }
        if sampler.chains.iter().any(|c| c.t != sampler.step) {
            return Err(bad("chains are not aligned at a block end".into()));
        }
        sampler.config.steps = config.steps;
        Ok((sampler, saved.streams))
    }

    /// Reads a checkpoint's configuration and progress without resuming it (for `inspect`).
    ///
    /// # Errors
    /// As [`Sampler::resume`], except that no configuration is compared.
    pub fn peek_checkpoint(path: &Path) -> Result<(SamplerConfig, usize, usize)> {
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let saved: CheckpointFile<Sampler> = ciborium::from_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::Model {
            file: path.to_owned(),
            message: format!("not a readable sampler checkpoint (truncated or corrupted?): {e}"),
        })?;
        if saved.magic != CHECKPOINT_MAGIC {
            return Err(Error::Model {
                file: path.to_owned(),
                message: "not a boltzgen sampler checkpoint".into(),
            });
        }
        Ok((saved.sampler.config, saved.sampler.step, saved.sampler.dim))
    }
}
