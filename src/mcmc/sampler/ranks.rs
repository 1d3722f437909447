//! Processes that share one run: how the sampler spreads its chains over MPI ranks (or any
//! other transport) without depending on one.
//!
//! # The scheme
//! Every process holds the whole sampler; each advances only the chains it owns (contiguous,
//! even blocks of the chains, so that the rungs of one replica-exchange ladder may sit on
//! different processes), and after every stretch of per-chain moves the processes
//! exchange the chains they advanced ([`Ranks::all_gather`]), so that each again holds the
//! same state. Batched learned moves are then served on every process for every waiting chain
//! (the same calls, in the same order, from the same generator stream), and replica swaps are
//! decided on every process from the same swap stream: no process waits for another's draws,
//! and nothing but chains crosses between them. A chain's trajectory depends only on its own
//! stream and the served proposals, so a run is bit for bit the one a single process makes,
//! whatever the number of processes — provided every process computes the learned draws
//! alike (the same libtorch thread count on CPU). A checkpoint written by the first process
//! is a single-process checkpoint, so a run restarts on any number of processes.
//!
//! Serving learned draws everywhere duplicates the generator's work on every process; the
//! alternative, drawing on one process (the one with the GPU) and scattering the proposals,
//! saves that work at the price of a second exchange per round, and is not built.

use crate::error::Result;

/// The processes of one run, as the sampler needs them.
pub trait Ranks {
    /// This process's index, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Every process's `mine`, in rank order, on every process (a collective: every process
    /// calls it at the same point).
    ///
    /// # Errors
    /// Whatever the transport reports.
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>>;
}

/// A run in one process: what [`crate::mcmc::Sampler::run`] uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneProcess;

impl Ranks for OneProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![mine.to_vec()])
    }
}

/// The rank that owns chain `chain` of `chains` when `size` processes share them: contiguous,
/// even blocks, so every process works once `chains ≥ size`. Swaps between rungs on
/// different processes need nothing more: every process decides every swap on the chains it
/// holds after the exchange ([`Ranks::all_gather`], `MPI_Allgatherv`).
pub(super) fn owner(chain: usize, chains: usize, size: usize) -> usize {
    // u128: `chain · size` may not fit a usize for absurd inputs; the result is < size.
    ((chain as u128 * size as u128) / chains.max(1) as u128) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_split_evenly_and_in_order() {
        let owners: Vec<usize> = (0..8).map(|l| owner(l, 8, 3)).collect();
        assert_eq!(owners, vec![0, 0, 0, 1, 1, 1, 2, 2]);
        assert!((0..5).all(|l| owner(l, 5, 1) == 0));
        let owners: Vec<usize> = (0..2).map(|l| owner(l, 2, 3)).collect();
        assert_eq!(owners, vec![0, 1]);
    }
}
