//! A generator thinned stratum by stratum: the proposal of balanced flow moves.
//!
//! Each draw of an inner generator falls in one stratum `k(x)` (a region of collective
//! variables, or the rest) and is kept with the acceptance `a_k ∈ (0, 1]` of its stratum,
//! planned from a pilot ([`crate::reweight::balance::Plan`]). The kept draws have density
//! `q(x) a_k(x) / A`; the constant `A` cancels in a Metropolis–Hastings ratio, so the
//! independence move with this proposal is exact ([`crate::mcmc::moves::balanced`]). The
//! reweighting of direct draws thins with the same rule but counts the rejected draws, which
//! keeps `Z` unbiased ([`crate::reweight::balance::draw_thinned`]).

use rand::RngExt;

use super::{Generator, Samples};
use crate::error::{Error, Result};
use crate::rng::ChainRng;

/// The thinning rule shared by [`ThinnedGenerator`] and the reweighting's
/// [`draw_thinned`](crate::reweight::balance::draw_thinned): each draw's stratum and the
/// acceptance it is kept with.
pub(crate) struct Thinning<'a> {
    stratum_of: &'a dyn Fn(&[f64]) -> usize,
    acceptance: Vec<f64>,
}

impl<'a> Thinning<'a> {
    pub(crate) fn new(
        stratum_of: &'a dyn Fn(&[f64]) -> usize,
        acceptance: Vec<f64>,
    ) -> Result<Self> {
        if acceptance.is_empty() || acceptance.iter().any(|a| !(*a > 0.0 && *a <= 1.0)) {
            return Err(Error::InvalidArgument {
                name: "acceptance".into(),
                message: format!("needs acceptances in (0, 1]: {acceptance:?}"),
            });
        }
        Ok(Self {
            stratum_of,
            acceptance,
        })
    }

    /// The stratum of `row` and its acceptance.
    pub(crate) fn classify(&self, row: &[f64]) -> Result<(usize, f64)> {
        let k = (self.stratum_of)(row);
        let a = self
            .acceptance
            .get(k)
            .ok_or_else(|| Error::InvalidArgument {
                name: "stratum".into(),
                message: format!("stratum {k} of {}", self.acceptance.len()),
            })?;
        Ok((k, *a))
    }
}

/// A generator whose draws are those of `inner`, each kept with the acceptance `a_k` of its
/// stratum: the proposal of a balanced flow move (see the module docs).
///
/// Its `log q` is `log q_inner(x) + ln a_k(x)`, the log-density of the kept draws up to the
/// constant `−ln A` (`A` = the fraction of inner draws kept). Metropolis–Hastings needs it
/// only up to a constant, so the flow-independence move with this proposal is exact. An
/// importance-sampling estimate of `Z` from it would be off by `A`: reweighting uses
/// [`draw_thinned`](crate::reweight::balance::draw_thinned) instead, which counts the rejected draws.
///
/// The strata must not depend on the degrees of freedom that
/// [`Generator::place_like`] sets (a dihedral or distance is fine for a molecule; a
/// Cartesian coordinate is not for a centre-of-mass-free generator): a draw is kept by its
/// stratum before it is placed, and its density is evaluated after.
pub struct ThinnedGenerator<'a> {
    inner: &'a dyn Generator,
    thinning: Thinning<'a>,
}

impl<'a> ThinnedGenerator<'a> {
    /// `inner`'s draws thinned with `acceptance[stratum_of(x)]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty list or an acceptance outside `(0, 1]`.
    pub fn new(
        inner: &'a dyn Generator,
        stratum_of: &'a dyn Fn(&[f64]) -> usize,
        acceptance: Vec<f64>,
    ) -> Result<Self> {
        Ok(Self {
            inner,
            thinning: Thinning::new(stratum_of, acceptance)?,
        })
    }
}

/// Inner draws per kept draw after which [`ThinnedGenerator::sample`] gives up: far beyond
/// what any acceptance ≥ 10⁻³ needs, so reaching it means a broken plan.
const MAX_INNER_DRAWS_PER_KEPT: usize = 100_000;

impl Generator for ThinnedGenerator<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Draws batches of `n` from the inner generator and keeps each draw with its stratum's
    /// acceptance (from the same stream), until `n` are kept. The kept draws are independent
    /// draws of the thinned density, so the first `n` of them are too.
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples> {
        let dim = self.dim();
        let mut out = Samples {
            dim,
            x: Vec::with_capacity(n * dim),
            log_q: Vec::with_capacity(n),
        };
        let mut inner_draws = 0;
        while out.len() < n {
            if inner_draws > n.max(1) * MAX_INNER_DRAWS_PER_KEPT {
                return Err(Error::InvalidArgument {
                    name: "acceptance".into(),
                    message: format!(
                        "kept {} of {inner_draws} draws; the plan {:?} keeps almost nothing",
                        out.len(),
                        self.thinning.acceptance
                    ),
                });
            }
            let s = self.inner.sample(n.max(1), rng)?;
            inner_draws += s.len();
            for (row, &lq) in s.x.chunks_exact(dim).zip(&s.log_q) {
                let (_, a) = self.thinning.classify(row)?;
                if rng.random::<f64>() < a && out.len() < n {
                    out.x.extend_from_slice(row);
                    out.log_q.push(lq + a.ln());
                }
            }
        }
        Ok(out)
    }

    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        let mut log_q = self.inner.log_prob(x)?;
        for (lq, row) in log_q.iter_mut().zip(x.chunks_exact(self.dim())) {
            *lq += self.thinning.classify(row)?.1.ln();
        }
        Ok(log_q)
    }

    fn exact_density(&self) -> bool {
        self.inner.exact_density()
    }

    fn centre_of_mass_free(&self) -> Option<(usize, usize)> {
        self.inner.centre_of_mass_free()
    }

    fn keeps_external_dofs(&self) -> bool {
        self.inner.keeps_external_dofs()
    }

    fn place_like(&self, x_new: &mut [f64], reference: &[f64]) -> Result<()> {
        self.inner.place_like(x_new, reference)
    }
}
