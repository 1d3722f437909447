//! Helpers shared by the particle potentials: layout checks and pair geometry.

use crate::error::{invalid, Result};

/// Checks a particle-system layout: at least two particles in 1–3 dimensions (dims above
/// three are allowed for toy systems, but must be positive).
pub(crate) fn check_layout(n_particles: usize, spatial_dim: usize) -> Result<()> {
    if n_particles < 2 {
        return Err(invalid(
            "n_particles",
            format!("need at least 2 particles, got {n_particles}"),
        ));
    }
    if spatial_dim == 0 {
        return Err(invalid("spatial_dim", "must be positive"));
    }
    Ok(())
}

/// Positive, finite check for a named parameter.
pub(crate) fn check_positive(name: &'static str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("must be positive and finite, got {v}"),
        ))
    }
}

/// Distance between particles i and j of a flat `[n × dim]` configuration, and the
/// displacement `x_i − x_j` written into `delta`.
#[inline]
pub(crate) fn displacement(x: &[f64], dim: usize, i: usize, j: usize, delta: &mut [f64]) -> f64 {
    let (xi, xj) = (&x[i * dim..(i + 1) * dim], &x[j * dim..(j + 1) * dim]);
    let mut r2 = 0.0;
    for k in 0..dim {
        delta[k] = xi[k] - xj[k];
        r2 += delta[k] * delta[k];
    }
    r2.sqrt()
}
