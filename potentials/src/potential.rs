//! The [`Potential`] trait: the energy U(x) that every sampler and trainer calls.

use rayon::prelude::*;

use crate::error::{PotentialError, Result};

/// Configurations per rayon task in the batched calls: large enough that the scheduling cost
/// is negligible next to even the cheapest potential, small enough to balance two cores.
const BATCH_GRAIN: usize = 64;

/// A potential energy U(x) on flat configurations `x ∈ ℝ^dim`.
///
/// Configurations are flat `f64` slices; particle systems store `n_atoms × spatial_dim`
/// coordinates row-major. Energies are in the potential's own units; samplers multiply by
/// their inverse temperature β themselves.
///
/// Implementors write [`compute_energy`](Potential::compute_energy) and
/// [`compute_energy_and_gradient`](Potential::compute_energy_and_gradient), which may assume
/// valid input. Callers use the checked methods ([`energy`](Potential::energy),
/// [`energy_and_gradient`](Potential::energy_and_gradient), and the batched forms), which
/// reject wrong lengths and non-finite coordinates with an error instead of panicking.
///
/// An energy of `+∞` is a legitimate answer (a forbidden configuration, such as two
/// overlapping atoms); a NaN energy is reported as [`PotentialError::NanEnergy`].
pub trait Potential: Send + Sync {
    /// Number of coordinates of one configuration.
    fn dim(&self) -> usize;

    /// A short name for reports and error messages.
    fn name(&self) -> &str;

    /// U(x) for a configuration that is known to have length [`dim`](Potential::dim) and
    /// finite coordinates.
    fn compute_energy(&self, x: &[f64]) -> f64;

    /// U(x), writing ∇U(x) into `grad` (overwritten, not accumulated). The caller
    /// guarantees `x.len() == grad.len() == dim` and finite `x`.
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64;

    /// U(x), checked.
    ///
    /// # Errors
    /// [`PotentialError::WrongLength`] or [`PotentialError::NonFiniteCoordinate`] for bad
    /// input, [`PotentialError::NanEnergy`] if the energy is NaN.
    fn energy(&self, x: &[f64]) -> Result<f64> {
        check_configuration(x, self.dim())?;
        check_energy(self.compute_energy(x))
    }

    /// U(x) and ∇U(x) into a caller-owned buffer, checked.
    ///
    /// # Errors
    /// As [`energy`](Potential::energy), and [`PotentialError::WrongLength`] for a gradient
    /// buffer of the wrong size.
    fn energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_configuration(x, self.dim())?;
        check_length("gradient buffer", grad.len(), self.dim())?;
        check_energy(self.compute_energy_and_gradient(x, grad))
    }

    /// Energies of a batch `xs = [n × dim]` into `out = [n]`, in parallel with rayon.
    ///
    /// The result does not depend on the number of threads.
    ///
    /// # Errors
    /// [`PotentialError::InBatch`] naming the first bad configuration, or
    /// [`PotentialError::WrongLength`] if the slices do not fit together.
    fn energies(&self, xs: &[f64], out: &mut [f64]) -> Result<()> {
        let d = self.dim();
        check_batch(xs, out.len(), d)?;
        out.par_iter_mut()
            .zip(xs.par_chunks(d.max(1)))
            .with_min_len(BATCH_GRAIN)
            .for_each(|(u, x)| *u = self.compute_energy(x));
        first_nan(out)
    }

    /// Energies and gradients of a batch: `xs = [n × dim]`, `out = [n]`, `grads = [n × dim]`.
    ///
    /// # Errors
    /// As [`energies`](Potential::energies).
    fn energies_and_gradients(&self, xs: &[f64], out: &mut [f64], grads: &mut [f64]) -> Result<()> {
        let d = self.dim();
        check_batch(xs, out.len(), d)?;
        check_length("gradient batch", grads.len(), xs.len())?;
        out.par_iter_mut()
            .zip(xs.par_chunks(d.max(1)).zip(grads.par_chunks_mut(d.max(1))))
            .with_min_len(BATCH_GRAIN)
            .for_each(|(u, (x, g))| *u = self.compute_energy_and_gradient(x, g));
        first_nan(out)
    }
}

/// Checks a slice length.
pub(crate) fn check_length(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(PotentialError::WrongLength {
            what,
            expected,
            got,
        })
    }
}

/// Checks that `x` has `dim` finite coordinates.
///
/// # Errors
/// [`PotentialError::WrongLength`] or [`PotentialError::NonFiniteCoordinate`].
pub fn check_configuration(x: &[f64], dim: usize) -> Result<()> {
    check_length("configuration", x.len(), dim)?;
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(PotentialError::NonFiniteCoordinate {
            index,
            value: x[index],
        }),
    }
}

fn check_energy(u: f64) -> Result<f64> {
    if u.is_nan() {
        Err(PotentialError::NanEnergy)
    } else {
        Ok(u)
    }
}

/// Checks a whole batch in parallel (sequential validation would cap the batched speed-up);
/// `position_first` keeps the reported configuration the first bad one, whatever the threads.
fn check_batch(xs: &[f64], n: usize, dim: usize) -> Result<()> {
    check_length("configuration batch", xs.len(), n * dim)?;
    let bad = xs
        .par_chunks(dim.max(1))
        .with_min_len(BATCH_GRAIN)
        .position_first(|x| x.iter().any(|v| !v.is_finite()));
    match bad {
        None => Ok(()),
        Some(index) => {
            let x = &xs[index * dim..(index + 1) * dim];
            let k = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
            Err(PotentialError::InBatch {
                index,
                source: Box::new(PotentialError::NonFiniteCoordinate {
                    index: k,
                    value: x[k],
                }),
            })
        }
    }
}

fn first_nan(out: &[f64]) -> Result<()> {
    match out
        .par_iter()
        .with_min_len(4 * BATCH_GRAIN)
        .position_first(|u| u.is_nan())
    {
        None => Ok(()),
        Some(index) => Err(PotentialError::InBatch {
            index,
            source: Box::new(PotentialError::NanEnergy),
        }),
    }
}

impl<P: Potential + ?Sized> Potential for Box<P> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        (**self).compute_energy(x)
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        (**self).compute_energy_and_gradient(x, grad)
    }
}

impl<P: Potential + ?Sized> Potential for std::sync::Arc<P> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        (**self).compute_energy(x)
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        (**self).compute_energy_and_gradient(x, grad)
    }
}
