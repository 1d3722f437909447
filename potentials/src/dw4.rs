//! The many-particle double-well potential (DW4 and its generalisations).

use crate::error::Result;
use crate::particles::{check_layout, displacement};
use crate::potential::Potential;

/// `U(x) = Σ_{i<j} [a (dᵢⱼ − d₀) + b (dᵢⱼ − d₀)² + c (dᵢⱼ − d₀)⁴]`, dᵢⱼ = ‖xᵢ − xⱼ‖.
///
/// DW4 is 4 particles in 2-D with a = 0, b = −4, c = 0.9, d₀ = 4: each pair distance
/// prefers d₀ ± 2.1. U depends only on distances, so it is invariant under translations,
/// rotations, reflections and permutations of the particles; there is no confinement, so
/// exp(−βU) is normalisable only on the centre-of-mass-free subspace.
///
/// ```
/// use boltzgen_potentials::{ParticleDoubleWell, Potential};
/// let dw4 = ParticleDoubleWell::dw4();
/// assert_eq!(dw4.dim(), 8);
/// // A unit square of side 4: four sides at d₀ (no energy), two diagonals at 4√2.
/// let x = [0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0];
/// let r = 4.0 * 2f64.sqrt() - 4.0;
/// let expected = 2.0 * (-4.0 * r * r + 0.9 * r.powi(4));
/// assert!((dw4.energy(&x).unwrap() - expected).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParticleDoubleWell {
    n_particles: usize,
    spatial_dim: usize,
    a: f64,
    b: f64,
    c: f64,
    d0: f64,
}

impl ParticleDoubleWell {
    /// `n_particles` in `spatial_dim` dimensions with coefficients a, b, c and offset d₀.
    ///
    /// # Errors
    /// `InvalidParameter` for fewer than two particles, zero dimensions or non-finite
    /// coefficients.
    pub fn new(
        n_particles: usize,
        spatial_dim: usize,
        a: f64,
        b: f64,
        c: f64,
        d0: f64,
    ) -> Result<Self> {
        check_layout(n_particles, spatial_dim)?;
        for (name, v) in [("a", a), ("b", b), ("c", c), ("d0", d0)] {
            if !v.is_finite() {
                return Err(crate::error::invalid(
                    name,
                    format!("must be finite, got {v}"),
                ));
            }
        }
        Ok(Self {
            n_particles,
            spatial_dim,
            a,
            b,
            c,
            d0,
        })
    }

    /// DW4: 4 particles in 2-D, a = 0, b = −4, c = 0.9, d₀ = 4.
    pub fn dw4() -> Self {
        Self::new(4, 2, 0.0, -4.0, 0.9, 4.0).expect("DW4 parameters are valid")
    }

    /// Number of particles.
    pub fn n_particles(&self) -> usize {
        self.n_particles
    }

    /// Spatial dimension of each particle.
    pub fn spatial_dim(&self) -> usize {
        self.spatial_dim
    }

    #[inline]
    fn pair(&self, d: f64) -> (f64, f64) {
        let r = d - self.d0;
        let r2 = r * r;
        let u = self.a * r + self.b * r2 + self.c * r2 * r2;
        let du = self.a + 2.0 * self.b * r + 4.0 * self.c * r2 * r;
        (u, du)
    }
}

impl Potential for ParticleDoubleWell {
    fn dim(&self) -> usize {
        self.n_particles * self.spatial_dim
    }
    fn name(&self) -> &str {
        "dw4"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        let mut delta = vec![0.0; self.spatial_dim];
        let mut u = 0.0;
        for i in 0..self.n_particles {
            for j in i + 1..self.n_particles {
                u += self
                    .pair(displacement(x, self.spatial_dim, i, j, &mut delta))
                    .0;
            }
        }
        u
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let dim = self.spatial_dim;
        let mut delta = vec![0.0; dim];
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut u = 0.0;
        for i in 0..self.n_particles {
            for j in i + 1..self.n_particles {
                let d = displacement(x, dim, i, j, &mut delta);
                let (uij, du) = self.pair(d);
                u += uij;
                // ∂d/∂xᵢ = (xᵢ − xⱼ)/d; at d = 0 the direction is undefined and the
                // subgradient 0 is used.
                if d > 0.0 {
                    for k in 0..dim {
                        let f = du * delta[k] / d;
                        grad[i * dim + k] += f;
                        grad[j * dim + k] -= f;
                    }
                }
            }
        }
        u
    }
}
