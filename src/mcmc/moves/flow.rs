//! Independence proposals from a generator with an exact density: `x′ ~ q_θ`, Hastings term
//! `log q_θ(x) − log q_θ(x′)`.
//!
//! Exactness does not depend on the generator being good, only on log q being its exact
//! density, so generators without one (VAEs) are refused. Draws come from a buffer that one
//! generator call fills ([`DrawBuffer`], flowMC-style; the host-code
//! [`ProposalEngine`](crate::engine::ProposalEngine) uses the same buffer), with their
//! energies evaluated in parallel when the filling is done.
//!
//! **External degrees of freedom.** A generator that leaves the centre of mass, or a
//! molecule's position and orientation, to the caller draws them at the origin; each draw is
//! then given those of the state it would replace ([`Generator::place_like`]) before its
//! Hastings term is taken, so that the proposal stays on the current state's fibre, where
//! `log q` is its exact density. Such draws are evaluated by the chains after placing, not in
//! the buffer: the move does not assume that the potential is invariant.

use boltzgen_potentials::Potential;
use serde::{Deserialize, Serialize};

use super::{decode, encode, energies_or_nan, Batch, Move, Proposed, Target};
use crate::error::{Error, Result};
use crate::generator::Generator;
use crate::mcmc::state::ChainState;
use crate::rng::ChainRng;

/// The Hastings term of an independence proposal: `log q(x) − log q(x′)`.
pub fn independence_log_hastings(log_q_current: f64, log_q_proposed: f64) -> f64 {
    log_q_current - log_q_proposed
}

/// Draws of a generator with an exact density (and, optionally, their energies), filled
/// `batch` at a time by one generator call and handed out in draw order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DrawBuffer {
    x: Vec<f64>,
    log_q: Vec<f64>,
    energy: Vec<f64>,
    next: usize,
}

/// One draw taken from a [`DrawBuffer`].
pub(crate) struct Draw<'b> {
    /// The configuration as the generator drew it (before placing).
    pub(crate) x: &'b [f64],
    /// Its log q.
    pub(crate) log_q: f64,
    /// Its energy, when the buffer evaluated it.
    pub(crate) energy: Option<f64>,
}

impl DrawBuffer {
    /// Draws left before the next refill.
    pub(crate) fn remaining(&self) -> usize {
        self.log_q.len().saturating_sub(self.next)
    }

    /// The next draw, refilling the buffer with `batch` draws of `generator` first when it is
    /// used up. With `potential`, a refill evaluates every draw's energy in parallel and adds
    /// the count to `evaluations`.
    ///
    /// # Errors
    /// What the generator reports; [`Error::Dimension`] when it returns another number or
    /// size of draws than asked for.
    pub(crate) fn next(
        &mut self,
        generator: &dyn Generator,
        batch: usize,
        rng: &mut ChainRng,
        potential: Option<&dyn Potential>,
        evaluations: &mut u64,
    ) -> Result<Draw<'_>> {
        let dim = generator.dim();
        if self.next >= self.log_q.len() {
            let s = generator.sample(batch, rng)?;
            if s.len() != batch || s.dim != dim || s.x.len() != batch * dim {
                return Err(Error::Dimension {
                    what: "generator draws (configurations × dimension)".into(),
                    expected: batch * dim,
                    got: s.x.len(),
                });
            }
            self.energy = match potential {
                Some(p) => {
                    *evaluations += batch as u64;
                    energies_or_nan(p, &s.x)
                }
                None => Vec::new(),
            };
            self.x = s.x;
            self.log_q = s.log_q;
            self.next = 0;
        }
        let i = self.next;
        self.next += 1;
        Ok(Draw {
            x: &self.x[i * dim..(i + 1) * dim],
            log_q: self.log_q[i],
            energy: self.energy.get(i).copied(),
        })
    }
}

/// Independence proposals `x′ ~ q_θ` from `generator`, drawn `batch` at a time.
pub struct FlowIndependence<G: Generator> {
    generator: G,
    batch: usize,
    buffer: DrawBuffer,
}

impl<G: Generator> FlowIndependence<G> {
    /// An independence proposal drawing `batch` configurations per generator call.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a generator without an exact density or `batch == 0`.
    pub fn new(generator: G, batch: usize) -> Result<Self> {
        if !generator.exact_density() {
            return Err(Error::InvalidArgument {
                name: "generator".into(),
                message: "an independence proposal needs an exact log q (a flow); use the VAE proposal for VAEs".into(),
            });
        }
        if batch == 0 {
            return Err(Error::InvalidArgument {
                name: "batch".into(),
                message: "must be positive".into(),
            });
        }
        Ok(Self {
            generator,
            batch,
            buffer: DrawBuffer::default(),
        })
    }

    /// The generator it draws from.
    pub fn generator(&self) -> &G {
        &self.generator
    }
}

impl<G: Generator> Move for FlowIndependence<G> {
    fn name(&self) -> &str {
        "flow"
    }

    fn is_batched(&self) -> bool {
        true
    }

    fn propose_batch(
        &mut self,
        chains: &mut [&mut ChainState],
        _steps: &[f64],
        target: &Target,
        rng: &mut ChainRng,
    ) -> Result<Batch> {
        // log q of current states that did not come from the generator, in one batch.
        let missing: Vec<usize> = (0..chains.len())
            .filter(|&i| chains[i].log_q.is_none())
            .collect();
        if !missing.is_empty() {
            let x: Vec<f64> = missing
                .iter()
                .flat_map(|&i| chains[i].x.iter().copied())
                .collect();
            for (&i, lq) in missing.iter().zip(self.generator.log_prob(&x)?) {
                chains[i].log_q = Some(lq);
            }
        }
        let evaluate = (!self.generator.keeps_external_dofs()).then_some(target.potential);
        let mut evaluations = 0;
        let mut proposals = Vec::with_capacity(chains.len());
        for state in chains.iter() {
            let draw =
                self.buffer
                    .next(&self.generator, self.batch, rng, evaluate, &mut evaluations)?;
            let (log_q_new, energy) = (draw.log_q, draw.energy);
            let mut x_new = draw.x.to_vec();
            self.generator.place_like(&mut x_new, &state.x)?;
            let log_q_current = state.log_q.unwrap_or(f64::NAN);
            proposals.push(Proposed {
                energy,
                log_q: Some(log_q_new),
                ..Proposed::new(x_new, independence_log_hastings(log_q_current, log_q_new))
            });
        }
        Ok(Batch {
            proposals,
            evaluations,
        })
    }

    fn save(&self) -> Result<Vec<u8>> {
        encode(self.name(), &self.buffer)
    }

    fn restore(&mut self, saved: &[u8]) -> Result<()> {
        self.buffer = decode(self.name(), saved)?;
        Ok(())
    }
}
