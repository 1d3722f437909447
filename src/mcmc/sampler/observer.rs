//! What hears a sampling run: one shape for progress, streaming samples to disk and
//! checkpoints, called at the run's start, at every block end, and at its finish.

use std::ops::Deref;

use super::Sampler;
use crate::error::Result;

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
    fn block(&mut self, end: &mut BlockEnd<'_>) -> Result<()> {
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
pub struct BlockEnd<'s> {
    pub(super) sampler: &'s mut Sampler,
}

impl BlockEnd<'_> {
    /// Takes the samples recorded since the last drain (see [`Sampler::drain_samples`]).
    pub fn drain_samples(&mut self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.sampler.drain_samples()
    }
}

impl Deref for BlockEnd<'_> {
    type Target = Sampler;

    fn deref(&self) -> &Sampler {
        self.sampler
    }
}

/// A closure called at every block end: what [`Sampler::run`] takes.
pub(super) struct AfterBlock<F>(pub(super) F);

impl<F: FnMut(&Sampler) -> Result<()>> SamplerObserver for AfterBlock<F> {
    fn block(&mut self, end: &mut BlockEnd<'_>) -> Result<()> {
        (self.0)(end)
    }
}
