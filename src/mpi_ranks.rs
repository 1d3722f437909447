//! MPI ranks for the sampler (feature `mpi`, on Open MPI): [`MpiRanks`] carries
//! [`Ranks::all_gather`] over `MPI_Allgather` of the lengths and `MPI_Allgatherv` of the
//! bytes. The scheme it serves is in [`crate::mcmc::sampler::ranks`].

use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use crate::error::{Error, Result};
use crate::mcmc::Ranks;

/// The processes of `MPI_COMM_WORLD`.
pub struct MpiRanks {
    world: SimpleCommunicator,
}

impl MpiRanks {
    /// The world of an initialised MPI (keep the `Universe` alive while this is used:
    /// dropping it finalises MPI).
    pub fn new(universe: &mpi::environment::Universe) -> Self {
        Self {
            world: universe.world(),
        }
    }

    /// Ends every process of the world with `code` (`MPI_Abort`): how an error on one rank
    /// stops the others, which would otherwise wait in a collective for ever.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Waits until every process arrives.
    pub fn barrier(&self) {
        self.world.barrier();
    }
}

impl Ranks for MpiRanks {
    fn rank(&self) -> usize {
        usize::try_from(self.world.rank()).unwrap_or(0)
    }

    fn size(&self) -> usize {
        usize::try_from(self.world.size()).unwrap_or(1)
    }

    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        let too_big = || Error::InvalidArgument {
            name: "ranks".into(),
            message: format!(
                "{} bytes of chains to send at once: MPI counts stop at {}",
                mine.len(),
                Count::MAX
            ),
        };
        let length = Count::try_from(mine.len()).map_err(|_| too_big())?;
        let mut counts: Vec<Count> = vec![0; self.size()];
        self.world.all_gather_into(&length, &mut counts[..]);
        let mut displacements = Vec::with_capacity(counts.len());
        let mut total: Count = 0;
        for &c in &counts {
            displacements.push(total);
            total = total.checked_add(c).ok_or_else(too_big)?;
        }
        if total == 0 {
            // Nothing to move (a signal between ranks): an empty send and receive buffer
            // would share the same dangling address, which MPI refuses as aliasing.
            return Ok(vec![Vec::new(); counts.len()]);
        }
        let mut buffer = vec![0u8; usize::try_from(total).map_err(|_| too_big())?];
        {
            let mut partition = PartitionMut::new(&mut buffer[..], &counts[..], &displacements[..]);
            self.world.all_gather_varcount_into(mine, &mut partition);
        }
        Ok(counts
            .iter()
            .zip(&displacements)
            .map(|(&c, &d)| buffer[d as usize..(d + c) as usize].to_vec())
            .collect())
    }
}
