//! The periodic Lennard-Jones fluid with a cell list, O(N) per evaluation.

use crate::error::{invalid, Result};
use crate::particles::check_positive;
use crate::potential::Potential;

/// The 13 neighbour-cell offsets of a "half shell": together with the home cell they visit
/// every pair of adjacent cells exactly once.
const HALF_SHELL: [[i64; 3]; 13] = [
    [1, 0, 0],
    [-1, 1, 0],
    [0, 1, 0],
    [1, 1, 0],
    [-1, -1, 1],
    [0, -1, 1],
    [1, -1, 1],
    [-1, 0, 1],
    [0, 0, 1],
    [1, 0, 1],
    [-1, 1, 1],
    [0, 1, 1],
    [1, 1, 1],
];

/// A cubic periodic box of N Lennard-Jones particles in 3-D:
///
/// `U(x) = Σ_{i<j, rᵢⱼ<r_c} [4ε((σ/rᵢⱼ)¹² − (σ/rᵢⱼ)⁶) − u_shift]`,
///
/// with minimum-image distances rᵢⱼ, cutoff r_c ≤ L/2, and `u_shift = 4ε((σ/r_c)¹² −
/// (σ/r_c)⁶)` for the cut-and-shifted potential or 0 for the truncated one. (The fluid uses
/// the σ convention of the NIST reference data, unlike [`LennardJonesCluster`], whose
/// literature uses r_m = 2^{1/6}σ.)
///
/// Evaluation sorts the particles into cells of side ≥ r_c and visits each cell with its 13
/// half-shell neighbours, so the cost grows as O(N) at fixed density. Boxes with fewer than 3
/// cells per side fall back to the all-pairs loop, which gives the same result.
/// [`LennardJonesFluid::energy_all_pairs`] is the independent O(N²) reference.
///
/// Coordinates need not lie inside the box: they are wrapped.
///
/// [`LennardJonesCluster`]: crate::LennardJonesCluster
///
/// ```
/// use boltzgen_potentials::{LennardJonesFluid, Potential};
/// // Two particles at 2^{1/6}σ, the pair minimum, in a box of side 10.
/// let lj = LennardJonesFluid::new(2, 10.0, 1.0, 1.0, 3.0, false).unwrap();
/// let r = 2f64.powf(1.0 / 6.0);
/// let u = lj.energy(&[0.0, 0.0, 0.0, r, 0.0, 0.0]).unwrap();
/// assert!((u + 1.0).abs() < 1e-12);
/// // Through the periodic boundary: 9.5 apart in the box is 0.5 apart by minimum image.
/// let near = lj.energy(&[0.25, 0.0, 0.0, 9.75, 0.0, 0.0]).unwrap();
/// assert!((near - 4.0 * (2f64.powi(12) - 2f64.powi(6))).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LennardJonesFluid {
    n_particles: usize,
    box_length: f64,
    sigma: f64,
    epsilon: f64,
    cutoff: f64,
    shift: bool,
}

impl LennardJonesFluid {
    /// A fluid of `n_particles` in a cubic box of side `box_length`.
    ///
    /// # Errors
    /// `InvalidParameter` for fewer than two particles, non-positive lengths or energies, or a
    /// cutoff above half the box (the minimum-image convention would then miss pairs).
    pub fn new(
        n_particles: usize,
        box_length: f64,
        sigma: f64,
        epsilon: f64,
        cutoff: f64,
        shift: bool,
    ) -> Result<Self> {
        crate::particles::check_layout(n_particles, 3)?;
        check_positive("box_length", box_length)?;
        check_positive("sigma", sigma)?;
        check_positive("epsilon", epsilon)?;
        check_positive("cutoff", cutoff)?;
        if cutoff > 0.5 * box_length {
            return Err(invalid(
                "cutoff",
                format!("must be at most half the box ({}), got {cutoff}", 0.5 * box_length),
            ));
        }
        Ok(Self {
            n_particles,
            box_length,
            sigma,
            epsilon,
            cutoff,
            shift,
        })
    }

    /// A fluid at number density ρ (in σ⁻³): the box side is `(N/ρ)^{1/3}`.
    ///
    /// # Errors
    /// As [`LennardJonesFluid::new`].
    pub fn at_density(n_particles: usize, density: f64, cutoff: f64, shift: bool) -> Result<Self> {
        check_positive("density", density)?;
        let box_length = (n_particles as f64 / density).cbrt();
        Self::new(n_particles, box_length, 1.0, 1.0, cutoff, shift)
    }

    /// Number of particles N.
    pub fn n_particles(&self) -> usize {
        self.n_particles
    }

    /// Box side L.
    pub fn box_length(&self) -> f64 {
        self.box_length
    }

    /// Cutoff radius r_c.
    pub fn cutoff(&self) -> f64 {
        self.cutoff
    }

    /// Cells per box side: the cell side `L/m` is at least r_c.
    pub fn cells_per_side(&self) -> usize {
        (self.box_length / self.cutoff).floor() as usize
    }

    /// The standard long-range (tail) correction of the truncated, unshifted potential,
    /// `(8/3) π N ρ ε σ³ [⅓ (σ/r_c)⁹ − (σ/r_c)³]`, assuming g(r) = 1 beyond r_c.
    ///
    /// It is a constant at fixed N and V, so samplers do not need it; it is what the NIST
    /// reference tables add to the truncated energy.
    pub fn tail_correction(&self) -> f64 {
        let n = self.n_particles as f64;
        let rho = n / self.box_length.powi(3);
        let sr3 = (self.sigma / self.cutoff).powi(3);
        8.0 / 3.0 * std::f64::consts::PI * n * rho * self.epsilon * self.sigma.powi(3)
            * (sr3 * sr3 * sr3 / 3.0 - sr3)
    }

    /// Pair energy at squared distance r² (inside the cutoff), and the scalar f with
    /// ∇ᵢ u = f (xᵢ − xⱼ).
    #[inline(always)]
    fn pair(&self, r2: f64, sigma2: f64, shift: f64) -> (f64, f64) {
        let s = sigma2 / r2;
        let s3 = s * s * s;
        // Factored so that r = 0 gives +∞ rather than ∞ − ∞ = NaN.
        let u = 4.0 * self.epsilon * s3 * (s3 - 1.0) - shift;
        let f = -24.0 * self.epsilon * s3 * (2.0 * s3 - 1.0) / r2;
        (u, f)
    }

    fn shift_value(&self) -> f64 {
        if self.shift {
            let s3 = (self.sigma / self.cutoff).powi(6);
            4.0 * self.epsilon * (s3 * s3 - s3)
        } else {
            0.0
        }
    }

    #[inline(always)]
    fn minimum_image(&self, mut d: f64) -> f64 {
        let l = self.box_length;
        d -= l * (d / l).round();
        d
    }

    /// The O(N²) all-pairs evaluation with minimum image: the reference the cell list is
    /// tested against. Writes the gradient if one is given.
    pub fn energy_all_pairs(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> f64 {
        let n = self.n_particles;
        let (rc2, sigma2, shift) = (self.cutoff * self.cutoff, self.sigma * self.sigma, self.shift_value());
        if let Some(g) = grad.as_deref_mut() {
            g.iter_mut().for_each(|v| *v = 0.0);
        }
        let mut u = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                let mut d = [0.0; 3];
                let mut r2 = 0.0;
                for k in 0..3 {
                    d[k] = self.minimum_image(x[3 * i + k] - x[3 * j + k]);
                    r2 += d[k] * d[k];
                }
                if r2 < rc2 {
                    let (uij, f) = self.pair(r2, sigma2, shift);
                    u += uij;
                    if let Some(g) = grad.as_deref_mut() {
                        for k in 0..3 {
                            g[3 * i + k] += f * d[k];
                            g[3 * j + k] -= f * d[k];
                        }
                    }
                }
            }
        }
        u
    }

    /// The cell-list evaluation.
    fn energy_cell_list(&self, x: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let m = self.cells_per_side();
        if m < 3 {
            return self.energy_all_pairs(x, grad);
        }
        let n = self.n_particles;
        let l = self.box_length;
        let half = 0.5 * l;
        let inv_cell = m as f64 / l;
        let n_cells = m * m * m;

        // Wrap into [0, L) and bin. Counting sort keeps particles of a cell contiguous, so the
        // inner loops stream through memory.
        let mut cell_of = Vec::with_capacity(n);
        let mut wrapped = Vec::with_capacity(n);
        let mut start = vec![0usize; n_cells + 1];
        for p in x.chunks_exact(3) {
            let w: [f64; 3] = std::array::from_fn(|k| {
                let v = p[k] - l * (p[k] / l).floor();
                // floor can round v up to exactly L for tiny negative inputs.
                if v >= l {
                    0.0
                } else {
                    v
                }
            });
            let c: [usize; 3] = std::array::from_fn(|k| ((w[k] * inv_cell) as usize).min(m - 1));
            let cell = (c[2] * m + c[1]) * m + c[0];
            start[cell + 1] += 1;
            cell_of.push(cell);
            wrapped.push(w);
        }
        for c in 0..n_cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut pos = vec![[0.0; 3]; n];
        let mut original = vec![0usize; n];
        for (i, &c) in cell_of.iter().enumerate() {
            let slot = fill[c];
            fill[c] += 1;
            pos[slot] = wrapped[i];
            original[slot] = i;
        }

        let (rc2, sigma2, shift) = (self.cutoff * self.cutoff, self.sigma * self.sigma, self.shift_value());
        let want_grad = grad.is_some();
        let mut g_sorted = if want_grad { vec![[0.0; 3]; n] } else { Vec::new() };
        let mut u = 0.0;

        let mut visit = |a: usize, b: usize, pos: &[[f64; 3]], g: &mut Vec<[f64; 3]>| {
            let (pa, pb) = (pos[a], pos[b]);
            let mut d = [0.0; 3];
            let mut r2 = 0.0;
            for k in 0..3 {
                let mut dk = pa[k] - pb[k];
                // Both are wrapped into [0, L): one correction gives the minimum image.
                if dk > half {
                    dk -= l;
                } else if dk < -half {
                    dk += l;
                }
                d[k] = dk;
                r2 += dk * dk;
            }
            if r2 < rc2 {
                let (uij, f) = self.pair(r2, sigma2, shift);
                u += uij;
                if want_grad {
                    for k in 0..3 {
                        g[a][k] += f * d[k];
                        g[b][k] -= f * d[k];
                    }
                }
            }
        };

        let mi = m as i64;
        for cz in 0..m {
            for cy in 0..m {
                for cx in 0..m {
                    let home = (cz * m + cy) * m + cx;
                    let (h0, h1) = (start[home], start[home + 1]);
                    for a in h0..h1 {
                        for b in a + 1..h1 {
                            visit(a, b, &pos, &mut g_sorted);
                        }
                    }
                    for off in HALF_SHELL {
                        let nx = (cx as i64 + off[0]).rem_euclid(mi) as usize;
                        let ny = (cy as i64 + off[1]).rem_euclid(mi) as usize;
                        let nz = (cz as i64 + off[2]).rem_euclid(mi) as usize;
                        let other = (nz * m + ny) * m + nx;
                        let (o0, o1) = (start[other], start[other + 1]);
                        for a in h0..h1 {
                            for b in o0..o1 {
                                visit(a, b, &pos, &mut g_sorted);
                            }
                        }
                    }
                }
            }
        }
        if let Some(g) = grad {
            for (slot, gs) in g_sorted.iter().enumerate() {
                g[3 * original[slot]..3 * original[slot] + 3].copy_from_slice(gs);
            }
        }
        u
    }
}

impl Potential for LennardJonesFluid {
    fn dim(&self) -> usize {
        3 * self.n_particles
    }
    fn name(&self) -> &str {
        "lennard_jones_fluid"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        self.energy_cell_list(x, None)
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.energy_cell_list(x, Some(grad))
    }
}
