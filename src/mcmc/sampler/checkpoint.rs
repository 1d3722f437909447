//! Sampler checkpoints: the whole state between two blocks (chains, streams, adaptation, the
//! moves' buffers, counters and the samples not yet drained), written atomically, from which
//! a resumed run continues the uninterrupted one bit for bit.

use std::path::Path;

use boltzgen_potentials::Potential;
use serde::{Deserialize, Serialize};

use super::{Sampler, SamplerConfig};
use crate::envelope::{read_cbor, write_cbor, Format};
use crate::error::{Error, Result};
use crate::io::StreamMark;

/// The envelope of sampler checkpoints. Version 2: the moves save their own buffers
/// (`move_memory`).
pub const FORMAT: Format = Format {
    magic: "boltzgen-sampler-checkpoint",
    version: 2,
    what: "sampler checkpoint",
};

/// A checkpoint's payload.
#[derive(Serialize, Deserialize)]
struct Checkpoint<S> {
    sampler: S,
    /// The lengths of the files the caller streams samples to, as they were on disk when the
    /// checkpoint was written.
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
        write_cbor(
            path,
            &FORMAT,
            &Checkpoint {
                sampler: self,
                streams: streams.to_vec(),
            },
        )
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
        let saved: Checkpoint<Sampler> = read_cbor(path, &FORMAT)?;
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
        if sampler.dim != potential.dim() || sampler.chains.len() != config.all_chains() {
            return Err(bad(format!(
                "written for a system of {} coordinates and {} chains",
                sampler.dim,
                sampler.chains.len()
            )));
        }
        if sampler.move_memory.len() != sampler.config.moves.len() {
            return Err(bad("holds buffers for another number of moves".into()));
        }
        let exchange_fits = match (&sampler.exchange, &sampler.config.exchange) {
            (Some(state), Some(config)) => state.fits(config, sampler.chains.len()),
            (None, None) => true,
            _ => false,
        };
        if !exchange_fits {
            return Err(bad(
                "its replica-exchange state does not fit its chains and ladder".into(),
            ));
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
        let saved: Checkpoint<Sampler> = read_cbor(path, &FORMAT)?;
        Ok((saved.sampler.config, saved.sampler.step, saved.sampler.dim))
    }
}
