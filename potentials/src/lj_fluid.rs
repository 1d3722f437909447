//! The periodic Lennard-Jones fluid with a cell list, O(N) per evaluation.

use crate::error::{invalid, Result};
use crate::particles::check_positive;
use crate::potential::Potential;

/// Half of the neighbour stencil `[-reach, reach]³`: the offsets that come after (0, 0, 0) in
/// lexicographic (z, y, x) order. With the home cell's own pairs, they visit every pair of
/// cells within reach exactly once.
fn half_stencil(reach: i64) -> Vec<[i64; 3]> {
    let mut offsets = Vec::new();
    for dz in -reach..=reach {
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                if (dz, dy, dx) > (0, 0, 0) {
                    offsets.push([dx, dy, dz]);
                }
            }
        }
    }
    offsets
}

/// A cubic periodic box of N Lennard-Jones particles in 3-D:
///
/// `U(x) = Σ_{i<j, rᵢⱼ<r_c} [4ε((σ/rᵢⱼ)¹² − (σ/rᵢⱼ)⁶) − u_shift]`,
///
/// with minimum-image distances rᵢⱼ, cutoff r_c ≤ L/2, and `u_shift = 4ε((σ/r_c)¹² −
/// (σ/r_c)⁶)` for the cut-and-shifted potential or 0 for the truncated one. (The fluid uses
/// the σ convention of the NIST reference data, unlike [`LennardJonesCluster`], whose
/// literature uses r_m = 2^{1/6}σ.)
///
/// Evaluation sorts the particles into cells of side ≥ r_c and visits each cell with the
/// 13 cells of its 3 × 3 × 3 neighbourhood that come after it, so the cost grows as O(N) at
/// fixed density ([`LennardJonesFluid::with_cell_reach`] selects smaller cells and a wider
/// stencil). Boxes with fewer than 3 cells per side use the all-pairs loop, which gives the
/// same result.
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
    /// Neighbour reach of the cell list: cells of side ≥ r_c / reach (see
    /// [`LennardJonesFluid::with_cell_reach`]).
    #[serde(default = "default_reach")]
    cell_reach: u8,
}

/// Cells of side ≥ r_c: measured 1.7–2.1× faster than half-size cells at ρ = 0.8 (fewer,
/// fuller cells amortise the per-cell-pair overhead), see BENCHMARKS.md.
fn default_reach() -> u8 {
    1
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
                format!(
                    "must be at most half the box ({}), got {cutoff}",
                    0.5 * box_length
                ),
            ));
        }
        Ok(Self {
            n_particles,
            box_length,
            sigma,
            epsilon,
            cutoff,
            shift,
            cell_reach: default_reach(),
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

    /// A tuning knob of the cell list: cells of side ≥ r_c/`reach`, visited with the half of
    /// their (2·reach + 1)³ neighbourhood. Reach 1 (the default) visits fewer, fuller cells;
    /// reach 2 tests fewer candidate pairs (a 2.5 r_c cube against 3 r_c) but pays more
    /// per-cell overhead, which dominated at ρ = 0.8. The energy does not depend on it.
    ///
    /// # Errors
    /// `InvalidParameter` unless reach is 1, 2 or 3.
    pub fn with_cell_reach(mut self, reach: u8) -> Result<Self> {
        if !(1..=3).contains(&reach) {
            return Err(invalid(
                "cell_reach",
                format!("must be 1, 2 or 3, got {reach}"),
            ));
        }
        self.cell_reach = reach;
        Ok(self)
    }

    /// Cells per box side and the neighbour reach used by the cell list: cells have side
    /// `L/m ≥ r_c/reach`, and `m ≥ 2·reach + 1` so that every neighbour in the stencil is a
    /// distinct cell. `None` means the all-pairs loop.
    pub fn cell_grid(&self) -> Option<(usize, i64)> {
        let reach = self.cell_reach as i64;
        let m = (reach as f64 * self.box_length / self.cutoff).floor() as usize;
        (m > 2 * reach as usize).then_some((m, reach))
    }

    /// Cells per box side (0 when the all-pairs loop is used).
    pub fn cells_per_side(&self) -> usize {
        self.cell_grid().map_or(0, |(m, _)| m)
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
        8.0 / 3.0
            * std::f64::consts::PI
            * n
            * rho
            * self.epsilon
            * self.sigma.powi(3)
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
        let (rc2, sigma2, shift) = (
            self.cutoff * self.cutoff,
            self.sigma * self.sigma,
            self.shift_value(),
        );
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
    ///
    /// Particles are sorted by cell into structure-of-arrays buffers. For each pair of cells
    /// the periodic image is fixed once (a cell offset that wraps around the box shifts the
    /// whole neighbour cell by ±L), so the inner loop has no minimum-image branches and only
    /// one division per pair inside the cutoff.
    fn energy_cell_list(&self, x: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let Some((m, reach)) = self.cell_grid() else {
            return self.energy_all_pairs(x, grad);
        };
        let n = self.n_particles;
        let l = self.box_length;
        let inv_cell = m as f64 / l;
        let n_cells = m * m * m;

        // Wrap into [0, L), bin, and counting-sort into SoA buffers.
        let mut cell_of = Vec::with_capacity(n);
        let mut start = vec![0usize; n_cells + 1];
        let wrap = |v: f64| {
            let w = v - l * (v / l).floor();
            // floor can leave exactly L for tiny negative inputs.
            if w >= l {
                0.0
            } else {
                w
            }
        };
        for p in x.chunks_exact(3) {
            let c: [usize; 3] =
                std::array::from_fn(|k| ((wrap(p[k]) * inv_cell) as usize).min(m - 1));
            let cell = (c[2] * m + c[1]) * m + c[0];
            start[cell + 1] += 1;
            cell_of.push(cell);
        }
        for c in 0..n_cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let (mut px, mut py, mut pz) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let mut original = vec![0usize; n];
        for (i, &c) in cell_of.iter().enumerate() {
            let slot = fill[c];
            fill[c] += 1;
            px[slot] = wrap(x[3 * i]);
            py[slot] = wrap(x[3 * i + 1]);
            pz[slot] = wrap(x[3 * i + 2]);
            original[slot] = i;
        }

        let (rc2, sigma2, shift) = (
            self.cutoff * self.cutoff,
            self.sigma * self.sigma,
            self.shift_value(),
        );
        let (c4, c24) = (4.0 * self.epsilon, 24.0 * self.epsilon);
        let want_grad = grad.is_some();
        let gl = if want_grad { n } else { 0 };
        let (mut gx, mut gy, mut gz) = (vec![0.0; gl], vec![0.0; gl], vec![0.0; gl]);
        let mut u = 0.0;
        let stencil = half_stencil(reach);
        let mi = m as i64;

        // Pairs (a, b) with a in [a0, a1), b in [b0, b1), b's image shifted by `image`;
        // `same_cell` restricts to b > a.
        let mut cell_pairs =
            |a0: usize, a1: usize, b0: usize, b1: usize, image: [f64; 3], same_cell: bool| {
                for a in a0..a1 {
                    let (xa, ya, za) = (px[a] - image[0], py[a] - image[1], pz[a] - image[2]);
                    let (mut fx, mut fy, mut fz) = (0.0, 0.0, 0.0);
                    let first = if same_cell { a + 1 } else { b0 };
                    // Slices of exactly the candidate range: no bounds checks in the hot loop.
                    let (bx, by, bz) = (&px[first..b1], &py[first..b1], &pz[first..b1]);
                    if want_grad {
                        let (gbx, gby, gbz) =
                            (&mut gx[first..b1], &mut gy[first..b1], &mut gz[first..b1]);
                        for j in 0..bx.len() {
                            let (dx, dy, dz) = (xa - bx[j], ya - by[j], za - bz[j]);
                            let r2 = dx * dx + dy * dy + dz * dz;
                            if r2 < rc2 {
                                let inv_r2 = 1.0 / r2;
                                let s = sigma2 * inv_r2;
                                let s3 = s * s * s;
                                // Factored so that r = 0 gives +∞ rather than ∞ − ∞ = NaN.
                                u += c4 * s3 * (s3 - 1.0) - shift;
                                let f = -c24 * s3 * (2.0 * s3 - 1.0) * inv_r2;
                                fx += f * dx;
                                fy += f * dy;
                                fz += f * dz;
                                gbx[j] -= f * dx;
                                gby[j] -= f * dy;
                                gbz[j] -= f * dz;
                            }
                        }
                    } else {
                        for j in 0..bx.len() {
                            let (dx, dy, dz) = (xa - bx[j], ya - by[j], za - bz[j]);
                            let r2 = dx * dx + dy * dy + dz * dz;
                            if r2 < rc2 {
                                let s = sigma2 / r2;
                                let s3 = s * s * s;
                                u += c4 * s3 * (s3 - 1.0) - shift;
                            }
                        }
                    }
                    if want_grad {
                        gx[a] += fx;
                        gy[a] += fy;
                        gz[a] += fz;
                    }
                }
            };

        // Per axis and per offset: the wrapped neighbour index and its image shift, looked up
        // instead of computed (integer division per neighbour cell would dominate the cost).
        let span = 2 * reach + 1;
        let mut wrapped = vec![0usize; m * span as usize];
        let mut image_of = vec![0.0f64; m * span as usize];
        for c in 0..mi {
            for o in -reach..=reach {
                let raw = c + o;
                let k = (c * span + o + reach) as usize;
                wrapped[k] = raw.rem_euclid(mi) as usize;
                image_of[k] = l * raw.div_euclid(mi) as f64;
            }
        }
        let lookup = |c: usize, o: i64| {
            let k = c * span as usize + (o + reach) as usize;
            (wrapped[k], image_of[k])
        };
        for cz in 0..m {
            for cy in 0..m {
                for cx in 0..m {
                    let home = (cz * m + cy) * m + cx;
                    let (h0, h1) = (start[home], start[home + 1]);
                    if h0 == h1 {
                        continue;
                    }
                    cell_pairs(h0, h1, h0, h1, [0.0; 3], true);
                    for off in &stencil {
                        // A neighbour index past either face is the periodic image: its
                        // particles sit at position + L·(wraps).
                        let (wx, ix) = lookup(cx, off[0]);
                        let (wy, iy) = lookup(cy, off[1]);
                        let (wz, iz) = lookup(cz, off[2]);
                        let other = (wz * m + wy) * m + wx;
                        let (o0, o1) = (start[other], start[other + 1]);
                        if o0 < o1 {
                            cell_pairs(h0, h1, o0, o1, [ix, iy, iz], false);
                        }
                    }
                }
            }
        }
        if let Some(g) = grad {
            for slot in 0..n {
                let i = original[slot];
                g[3 * i] = gx[slot];
                g[3 * i + 1] = gy[slot];
                g[3 * i + 2] = gz[slot];
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
