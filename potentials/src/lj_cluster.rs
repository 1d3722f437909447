//! The Lennard-Jones cluster (LJ13, LJ55) with a harmonic restraint to the centre of mass.

use crate::error::Result;
use crate::particles::{check_layout, check_positive};
use crate::potential::Potential;

/// `U(x) = ε Σ_{i<j} [(r_m/dᵢⱼ)¹² − 2 (r_m/dᵢⱼ)⁶] + ½ k Σᵢ ‖xᵢ − x_com‖²`.
///
/// Convention: the pair term is written with the pair-minimum distance r_m (the pair energy
/// is −ε at d = r_m), not with σ; the two are related by r_m = 2^{1/6} σ, and
/// `ε[(r_m/d)¹² − 2(r_m/d)⁶] = 4ε[(σ/d)¹² − (σ/d)⁶]`. With ε = r_m = k = 1 this is the
/// LJ13/LJ55 target of the Boltzmann-generator literature. The restraint keeps the cluster
/// from evaporating and acts only on internal coordinates (it is translation invariant), so
/// exp(−βU) is normalisable on the centre-of-mass-free subspace.
///
/// ```
/// use boltzgen_potentials::{LennardJonesCluster, Potential};
/// let lj = LennardJonesCluster::new(2, 3, 1.0, 1.0, 1.0).unwrap();
/// // Two atoms at r_m: pair energy −ε, restraint ½k(2 · 0.5²) = 0.25.
/// let u = lj.energy(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
/// assert!((u - (-1.0 + 0.25)).abs() < 1e-14);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LennardJonesCluster {
    n_particles: usize,
    spatial_dim: usize,
    epsilon: f64,
    r_m: f64,
    k: f64,
}

impl LennardJonesCluster {
    /// A cluster of `n_particles` in `spatial_dim` dimensions.
    ///
    /// # Errors
    /// `InvalidParameter` for fewer than two particles, zero dimensions, `ε ≤ 0`, `r_m ≤ 0`
    /// or `k < 0`.
    pub fn new(
        n_particles: usize,
        spatial_dim: usize,
        epsilon: f64,
        r_m: f64,
        k: f64,
    ) -> Result<Self> {
        check_layout(n_particles, spatial_dim)?;
        check_positive("epsilon", epsilon)?;
        check_positive("r_m", r_m)?;
        if !(k >= 0.0 && k.is_finite()) {
            return Err(crate::error::invalid(
                "k",
                format!("must be >= 0 and finite, got {k}"),
            ));
        }
        Ok(Self {
            n_particles,
            spatial_dim,
            epsilon,
            r_m,
            k,
        })
    }

    /// LJ13: 13 atoms in 3-D, ε = r_m = k = 1.
    pub fn lj13() -> Self {
        Self::new(13, 3, 1.0, 1.0, 1.0).expect("LJ13 parameters are valid")
    }

    /// LJ55: 55 atoms in 3-D, ε = r_m = k = 1.
    pub fn lj55() -> Self {
        Self::new(55, 3, 1.0, 1.0, 1.0).expect("LJ55 parameters are valid")
    }

    /// Number of particles.
    pub fn n_particles(&self) -> usize {
        self.n_particles
    }

    /// Spatial dimension.
    pub fn spatial_dim(&self) -> usize {
        self.spatial_dim
    }

    /// The pair part and restraint, for a compile-time spatial dimension `D` (the hot path:
    /// fixed-size arrays let the compiler keep each displacement in registers).
    fn evaluate<const D: usize>(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> f64 {
        let n = self.n_particles;
        let r_m2 = self.r_m * self.r_m;
        let pos = |i: usize| -> [f64; D] { std::array::from_fn(|k| x[i * D + k]) };
        if let Some(g) = grad.as_deref_mut() {
            g.iter_mut().for_each(|v| *v = 0.0);
        }
        let mut pair_sum = 0.0;
        for i in 0..n {
            let xi = pos(i);
            let mut gi = [0.0; D];
            for j in i + 1..n {
                let xj = pos(j);
                let mut delta = [0.0; D];
                let mut d2 = 0.0;
                for k in 0..D {
                    delta[k] = xi[k] - xj[k];
                    d2 += delta[k] * delta[k];
                }
                let s = r_m2 / d2;
                let s3 = s * s * s;
                // s³(s³ − 2) rather than s⁶ − 2s³: at d = 0 this is +∞, not ∞ − ∞ = NaN.
                pair_sum += s3 * (s3 - 2.0);
                if let Some(g) = grad.as_deref_mut() {
                    // dU/dd · (xᵢ − xⱼ)/d = −12ε (s³² − s³) (xᵢ − xⱼ) / d²
                    let f = -12.0 * s3 * (s3 - 1.0) / d2;
                    for k in 0..D {
                        gi[k] += f * delta[k];
                        g[j * D + k] -= f * delta[k];
                    }
                }
            }
            if let Some(g) = grad.as_deref_mut() {
                for k in 0..D {
                    g[i * D + k] += gi[k];
                }
            }
        }
        let mut u = self.epsilon * pair_sum;
        if let Some(g) = grad.as_deref_mut() {
            g.iter_mut().for_each(|v| *v *= self.epsilon);
        }
        u += self.restraint(x, grad);
        u
    }

    /// `½ k Σ‖xᵢ − x_com‖²`, adding `k (xᵢ − x_com)` to the gradient (the com's own
    /// dependence on xᵢ drops out because Σ(xⱼ − x_com) = 0).
    fn restraint(&self, x: &[f64], grad: Option<&mut [f64]>) -> f64 {
        if self.k == 0.0 {
            return 0.0;
        }
        let (n, dim) = (self.n_particles, self.spatial_dim);
        let mut com = vec![0.0; dim];
        for p in x.chunks_exact(dim) {
            for (c, v) in com.iter_mut().zip(p) {
                *c += v;
            }
        }
        com.iter_mut().for_each(|c| *c /= n as f64);
        let mut sum = 0.0;
        for p in x.chunks_exact(dim) {
            for (c, v) in com.iter().zip(p) {
                sum += (v - c) * (v - c);
            }
        }
        if let Some(g) = grad {
            for (gp, p) in g.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                for ((gv, v), c) in gp.iter_mut().zip(p).zip(&com) {
                    *gv += self.k * (v - c);
                }
            }
        }
        0.5 * self.k * sum
    }

    fn dispatch(&self, x: &[f64], grad: Option<&mut [f64]>) -> f64 {
        match self.spatial_dim {
            1 => self.evaluate::<1>(x, grad),
            2 => self.evaluate::<2>(x, grad),
            3 => self.evaluate::<3>(x, grad),
            _ => self.evaluate_any_dim(x, grad),
        }
    }

    fn evaluate_any_dim(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> f64 {
        let (n, dim) = (self.n_particles, self.spatial_dim);
        let r_m2 = self.r_m * self.r_m;
        let mut delta = vec![0.0; dim];
        if let Some(g) = grad.as_deref_mut() {
            g.iter_mut().for_each(|v| *v = 0.0);
        }
        let mut pair_sum = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                let d = crate::particles::displacement(x, dim, i, j, &mut delta);
                let d2 = d * d;
                let s3 = (r_m2 / d2).powi(3);
                pair_sum += s3 * (s3 - 2.0);
                if let Some(g) = grad.as_deref_mut() {
                    let f = -12.0 * self.epsilon * s3 * (s3 - 1.0) / d2;
                    for k in 0..dim {
                        g[i * dim + k] += f * delta[k];
                        g[j * dim + k] -= f * delta[k];
                    }
                }
            }
        }
        self.epsilon * pair_sum + self.restraint(x, grad)
    }
}

impl Potential for LennardJonesCluster {
    fn dim(&self) -> usize {
        self.n_particles * self.spatial_dim
    }
    fn name(&self) -> &str {
        "lennard_jones_cluster"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        self.dispatch(x, None)
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.dispatch(x, Some(grad))
    }
}
