//! What hears a sampling run: one shape for progress, streaming samples to disk and
//! checkpoints, called at the run's start, at every block end, and at its finish.

use std::ops::Deref;
use std::path::Path;

use super::Sampler;
use crate::error::Result;
use crate::io::StreamMark;
use crate::mcmc::moves::Scheduled;

/// Hears a sampling run ([`Sampler::run_observed`]); every method defaults to doing nothing.
/// An error returned stops the run.
pub trait SamplerObserver {
    /// Before the first block of this call (after the moves were built).
    ///
    /// # Errors
    /// Whatever the observer reports.
    fn start(&mut self, sampler: &Sampler) -> Result<()> {
        let _ = sampler;
        Ok(())
    }

    /// After every block: chains aligned, a checkpoint may be taken.
    ///
    /// # Errors
    /// Whatever the observer reports.
    fn block(&mut self, end: &mut BlockEnd<'_, '_>) -> Result<()> {
        let _ = end;
        Ok(())
    }

    /// After the last block.
    ///
    /// # Errors
    /// Whatever the observer reports.
    fn finish(&mut self, sampler: &Sampler) -> Result<()> {
        let _ = sampler;
        Ok(())
    }
}

/// The sampler at a block end, as an observer sees it: everything it can read, and the
/// samples recorded since the last drain, which it may take.
pub struct BlockEnd<'s, 'm> {
    pub(super) sampler: &'s mut Sampler,
    pub(super) moves: &'s [Scheduled<'m>],
}

impl BlockEnd<'_, '_> {
    /// Takes the samples recorded since the last drain (see [`Sampler::drain_samples`]).
    pub fn drain_samples(&mut self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.sampler.drain_samples()
    }

    /// Writes a checkpoint of the run as it stands (see [`Sampler::checkpoint_with_streams`]),
    /// the moves' buffers included.
    ///
    /// # Errors
    /// As [`Sampler::checkpoint_with_streams`], and if a move's buffer cannot be encoded.
    pub fn checkpoint_with_streams(&mut self, path: &Path, streams: &[StreamMark]) -> Result<()> {
        self.sampler.save_moves(self.moves)?;
        self.sampler.checkpoint_with_streams(path, streams)
    }

    /// Brings the sampler's copy of the moves' buffers up to date, so that anything reading
    /// the sampler itself (its checkpoint methods) sees them.
    fn save_moves(&mut self) -> Result<()> {
        self.sampler.save_moves(self.moves)
    }
}

impl Deref for BlockEnd<'_, '_> {
    type Target = Sampler;

    fn deref(&self) -> &Sampler {
        self.sampler
    }
}

/// A closure called at every block end: what [`Sampler::run`] takes.
pub(super) struct AfterBlock<F>(pub(super) F);

impl<F: FnMut(&Sampler) -> Result<()>> SamplerObserver for AfterBlock<F> {
    /// The closure sees the sampler itself and may checkpoint it, so the moves' buffers are
    /// brought up to date first.
    fn block(&mut self, end: &mut BlockEnd<'_, '_>) -> Result<()> {
        end.save_moves()?;
        (self.0)(end)
    }
}
