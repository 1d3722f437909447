//! Internal coordinates as the data-side end of a flow: the layers act on normalised bond
//! lengths, angles and torsions of a Z-matrix ([`ZMatrix`]), while samples, `log q` and the
//! potentials stay Cartesian.
//!
//! **The map.** A configuration `x` (n atoms, 3n numbers) has Z-matrix coordinates
//! `q = [external (6), q_int (3n − 6)]` (see [`crate::molecule::zmatrix`]). Each internal
//! coordinate is normalised by a fixed, invertible map fitted once from training frames:
//!
//! | coordinate | layer coordinate `u` | `log du/dq` |
//! |---|---|---|
//! | bond `r` | `(ln r − m) / s` | `−ln r − ln s` |
//! | angle `θ ∈ (0, π)` | `(logit(θ/π) − m) / s` | `−ln(π y (1 − y)) − ln s`, `y = θ/π` |
//! | torsion `φ` | `B/π · wrap(φ − c − π)` ∈ `[−B, B)` | `ln(B/π)` |
//!
//! so bond lengths stay positive and angles inside `(0, π)` whatever the layers do.
//!
//! **Torsions are periodic.** A torsion is cut open at the angle `c`, chosen where the training
//! frames are sparsest, and mapped onto `[−B, B)`. Its latent coordinate is uniform on that
//! interval (a fixed [`LayerSpec::UniformCdf`](super::LayerSpec::UniformCdf) layer), and every
//! spline coupling acts on exactly `[−B, B]` with end slopes fixed at 1, so the layers are
//! bijections of the cut circle and the density is continuous across the cut (each side has the
//! base density there). This is the documented alternative to circular splines: the same
//! function class away from the cut, which sits where the data has (almost) no mass.
//!
//! **The six external degrees of freedom** (position and orientation) are not modelled. Draws
//! are placed in a canonical frame (root atom at the origin, fixed orientation), and `log q` is
//! the density of the internal coordinates pulled back to Cartesian space on the fibre of fixed
//! position and orientation: `log q(x) = log p(u) + log|du/dq_int| − log J_int(q_int)`. That is
//! the quantity a Metropolis–Hastings independence move needs when it keeps the current
//! state's six external coordinates ([`Generator::place_like`](crate::generator::Generator::place_like)),
//! and the importance weight `e^{−βU(x)} / q(x)` of a draw, for potentials invariant under
//! rotations and translations (molecules in vacuum). Importance-sampling estimates of `log Z`
//! are then relative to the (infinite, constant) volume of the external coordinates, which
//! cancels in free-energy differences and observables.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::molecule::ZMatrix;

const PI: f64 = std::f64::consts::PI;

/// Which internal coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinateKind {
    /// A bond length.
    Bond,
    /// A bond angle in (0, π).
    Angle,
    /// A torsion (periodic).
    Torsion,
}

/// The fixed normalisation of one internal coordinate (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinateNorm {
    /// Bond, angle or torsion.
    pub kind: CoordinateKind,
    /// `m` for bonds and angles; for torsions, the angle `c` (radians) where the circle is cut.
    pub shift: f64,
    /// `s` for bonds and angles; 1 for torsions.
    pub scale: f64,
}

/// A Z-matrix and the normalisation of its internal coordinates: what turns a flow on
/// `3n − 6` coordinates into a generator of Cartesian configurations (see the
/// [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalCoordinates {
    /// Number of atoms n.
    pub n_atoms: usize,
    /// The bonds the Z-matrix is built from (0-based pairs).
    pub bonds: Vec<(usize, usize)>,
    /// The root chain `a–b–c` of the Z-matrix.
    pub root: [usize; 3],
    /// Every placement `[atom, j, k, l]` in order: loading checks that the Z-matrix rebuilt
    /// from `bonds` and `root` is this one, so a model never meets a different layout.
    pub placements: Vec<[usize; 4]>,
    /// One entry per internal coordinate, in Z-matrix order.
    pub coordinates: Vec<CoordinateNorm>,
    /// Torsions live on `[−B, B)` in layer space; the spline couplings' `tail_bound`.
    pub torsion_bound: f64,
}

/// `a` wrapped into `[−π, π)`.
fn wrap(a: f64) -> f64 {
    (a + PI).rem_euclid(2.0 * PI) - PI
}

/// The kinds of the internal coordinates `q[6..]` of a Z-matrix with `n_atoms` atoms.
fn layout(n_atoms: usize) -> Vec<CoordinateKind> {
    use CoordinateKind::*;
    let mut kinds = vec![Bond, Bond, Angle];
    for _ in 3..n_atoms {
        kinds.extend([Bond, Angle, Torsion]);
    }
    kinds
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument {
        name: "internal".into(),
        message,
    }
}

/// Mean and standard deviation, with the deviation floored so that a constant coordinate
/// (one training frame) still gives an invertible map.
fn mean_and_scale(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-3))
}

/// Where to cut a torsion: the centre of the least populated 5° bin (counts smoothed over the
/// two neighbouring bins, so one empty bin inside a populated basin does not win).
fn sparsest_angle(values: &[f64]) -> f64 {
    const BINS: usize = 72;
    let width = 2.0 * PI / BINS as f64;
    let mut counts = [0usize; BINS];
    for &v in values {
        let b = (((wrap(v) + PI) / width) as usize).min(BINS - 1);
        counts[b] += 1;
    }
    let smoothed = |b: usize| counts[(b + BINS - 1) % BINS] + counts[b] + counts[(b + 1) % BINS];
    let best = (0..BINS).min_by_key(|&b| smoothed(b)).unwrap_or(0);
    -PI + (best as f64 + 0.5) * width
}

impl InternalCoordinates {
    /// The Z-matrix of `n_atoms` atoms with these bonds (root chosen as in
    /// [`ZMatrix::from_bonds`]) and normalisations fitted to `frames` (row-major
    /// `[m × 3n]`, any length unit): mean and spread of `ln r` and `logit(θ/π)`, and each
    /// torsion cut where the frames are sparsest.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable bond graph, no frames, or a frame length that
    /// is not 3n; [`Error::NonFinite`] for NaN coordinates.
    pub fn fit(
        n_atoms: usize,
        bonds: &[(usize, usize)],
        frames: &[f64],
        torsion_bound: f64,
    ) -> Result<Self> {
        let zmatrix = ZMatrix::from_bonds(n_atoms, bonds)?;
        let width = 3 * n_atoms;
        if frames.is_empty() || frames.len() % width != 0 {
            return Err(invalid(format!(
                "fitting internal coordinates needs frames of {width} numbers; got {} numbers",
                frames.len()
            )));
        }
        if let Some(index) = frames.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "training frame coordinate".into(),
                index,
            });
        }
        let q: Vec<Vec<f64>> = frames
            .par_chunks(width)
            .map(|x| zmatrix.to_internal(x))
            .collect::<Result<_>>()?;
        let coordinates = layout(n_atoms)
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let column = q.iter().map(|row| row[6 + i]);
                let (shift, scale) = match kind {
                    CoordinateKind::Bond => {
                        mean_and_scale(&column.map(f64::ln).collect::<Vec<_>>())
                    }
                    CoordinateKind::Angle => mean_and_scale(
                        &column
                            .map(|t| {
                                let y = t / PI;
                                (y / (1.0 - y)).ln()
                            })
                            .collect::<Vec<_>>(),
                    ),
                    CoordinateKind::Torsion => (sparsest_angle(&column.collect::<Vec<_>>()), 1.0),
                };
                CoordinateNorm { kind, shift, scale }
            })
            .collect();
        let fitted = Self {
            n_atoms,
            bonds: bonds.to_vec(),
            root: zmatrix.root(),
            placements: placement_rows(&zmatrix),
            coordinates,
            torsion_bound,
        };
        fitted.validate()?;
        Ok(fitted)
    }

    /// Number of internal coordinates, 3n − 6 (the flow's latent dimension).
    pub fn internal_dim(&self) -> usize {
        (3 * self.n_atoms).saturating_sub(6)
    }

    /// Positions (in `0..3n − 6`) of the torsions: the coordinates with a uniform latent.
    pub fn torsions(&self) -> Vec<usize> {
        self.coordinates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == CoordinateKind::Torsion)
            .map(|(i, _)| i)
            .collect()
    }

    /// Checks the layout against the Z-matrix and that every normalisation is invertible.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let zmatrix = self.zmatrix()?;
        if placement_rows(&zmatrix) != self.placements {
            return Err(invalid(
                "the Z-matrix built from these bonds and root places atoms differently from the one recorded (a model from another boltzgen version?)".into(),
            ));
        }
        let expected = layout(self.n_atoms);
        if self.coordinates.len() != expected.len() {
            return Err(invalid(format!(
                "{} atoms have {} internal coordinates; {} normalisations given",
                self.n_atoms,
                expected.len(),
                self.coordinates.len()
            )));
        }
        for (i, (c, kind)) in self.coordinates.iter().zip(&expected).enumerate() {
            if c.kind != *kind {
                return Err(invalid(format!(
                    "coordinate {i} is a {kind:?} in the Z-matrix, not a {:?}",
                    c.kind
                )));
            }
            if !(c.shift.is_finite() && c.scale.is_finite() && c.scale > 0.0) {
                return Err(invalid(format!(
                    "coordinate {i} has shift {} and scale {}: need finite values and a positive scale",
                    c.shift, c.scale
                )));
            }
        }
        if !(self.torsion_bound > 0.0 && self.torsion_bound.is_finite()) {
            return Err(invalid(format!(
                "torsion_bound must be positive, got {}",
                self.torsion_bound
            )));
        }
        Ok(())
    }

    /// The Z-matrix.
    ///
    /// # Errors
    /// As [`ZMatrix::with_root`].
    pub fn zmatrix(&self) -> Result<ZMatrix> {
        ZMatrix::with_root(self.n_atoms, &self.bonds, self.root)
    }

    /// Internal coordinates `q_int` to layer coordinates `u`, and `log|du/dq_int|`.
    fn normalise(&self, q_int: &[f64], u: &mut [f64]) -> f64 {
        let b = self.torsion_bound;
        let mut log_derivative = 0.0;
        for ((c, &q), u) in self.coordinates.iter().zip(q_int).zip(u.iter_mut()) {
            match c.kind {
                CoordinateKind::Bond => {
                    *u = (q.ln() - c.shift) / c.scale;
                    log_derivative -= q.ln() + c.scale.ln();
                }
                CoordinateKind::Angle => {
                    let y = q / PI;
                    *u = ((y / (1.0 - y)).ln() - c.shift) / c.scale;
                    log_derivative -= (PI * y * (1.0 - y)).ln() + c.scale.ln();
                }
                CoordinateKind::Torsion => {
                    *u = b / PI * wrap(q - c.shift - PI);
                    log_derivative += (b / PI).ln();
                }
            }
        }
        log_derivative
    }

    /// The inverse of [`normalise`](Self::normalise); returns `log|du/dq_int|` at the result.
    #[cfg(test)]
    fn denormalise(&self, u: &[f64], q_int: &mut [f64]) -> f64 {
        let b = self.torsion_bound;
        let mut log_derivative = 0.0;
        for ((c, &v), q) in self.coordinates.iter().zip(u).zip(q_int.iter_mut()) {
            match c.kind {
                CoordinateKind::Bond => {
                    *q = (c.scale * v + c.shift).exp();
                    log_derivative -= q.ln() + c.scale.ln();
                }
                CoordinateKind::Angle => {
                    let y = 1.0 / (1.0 + (-(c.scale * v + c.shift)).exp());
                    *q = PI * y;
                    log_derivative -= (PI * y * (1.0 - y)).ln() + c.scale.ln();
                }
                CoordinateKind::Torsion => {
                    *q = wrap(v * PI / b + c.shift + PI);
                    log_derivative += (b / PI).ln();
                }
            }
        }
        log_derivative
    }

    /// Cartesian rows `x` (`[m × 3n]`) to layer rows `u` (`[m × (3n − 6)]`) and, per row,
    /// `log|det ∂u/∂x|` on the fibre of fixed position and orientation:
    /// `log|du/dq_int| − log J_int(q_int)`.
    pub(crate) fn to_layer_space(
        &self,
        zmatrix: &ZMatrix,
        x: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (width, d) = (3 * self.n_atoms, self.internal_dim());
        let rows: Vec<(Vec<f64>, f64)> = x
            .par_chunks(width)
            .map(|row| {
                let q = zmatrix.to_internal(row)?;
                let mut u = vec![0.0; d];
                let log_du = self.normalise(&q[6..], &mut u);
                Ok((u, log_du - zmatrix.log_jacobian_internal(&q)?))
            })
            .collect::<Result<_>>()?;
        Ok(unzip_rows(rows, d))
    }

    /// Layer coordinates `u` (`[m, 3n − 6]`, any kind) to Cartesian configurations `x`
    /// (`[m, 3n]`, float64) in the canonical frame, and per row `log|det ∂x/∂u|` on the fibre,
    /// `log J_int(q_int) − log|du/dq_int|`: the same map as [`to_cartesian`](Self::to_cartesian),
    /// written in libtorch so that gradients reach the layers (reverse KL).
    pub(crate) fn to_cartesian_t(&self, zmatrix: &ZMatrix, u: &Tensor) -> (Tensor, Tensor) {
        let device = u.device();
        let u = u.to_kind(Kind::Double);
        let column = |f: &dyn Fn(&CoordinateNorm) -> f64| {
            let v: Vec<f64> = self.coordinates.iter().map(f).collect();
            Tensor::from_slice(&v).to_device(device)
        };
        let is = |kind: CoordinateKind| {
            column(&|c: &CoordinateNorm| f64::from(u8::from(c.kind == kind)))
        };
        let (bond, angle, torsion) = (
            is(CoordinateKind::Bond),
            is(CoordinateKind::Angle),
            is(CoordinateKind::Torsion),
        );
        let b = self.torsion_bound;
        // a = s·u + m for bonds and angles; π/B·u + c + π for torsions.
        let scale = column(&|c: &CoordinateNorm| match c.kind {
            CoordinateKind::Torsion => PI / b,
            _ => c.scale,
        });
        let shift = column(&|c: &CoordinateNorm| match c.kind {
            CoordinateKind::Torsion => c.shift + PI,
            _ => c.shift,
        });
        let a = &u * &scale + &shift;
        // Each kind's formula on every column, kept where it applies; the others are finite.
        let bond_q = a.clamp(-30.0, 30.0).exp();
        let angle_q = a.sigmoid() * PI;
        let torsion_q = (&a + PI).remainder(2.0 * PI) - PI;
        let q = &bond_q * &bond + &angle_q * &angle + &torsion_q * &torsion;
        let log_y = a.log_sigmoid() + (-&a).log_sigmoid(); // ln y + ln(1 − y)
        let log_du = (-(&a) - scale.log()) * &bond
            + (-(log_y + PI.ln()) - scale.log()) * &angle
            + torsion.ones_like().g_mul_scalar((b / PI).ln()) * &torsion;
        let log_j = &a * 2.0 * &bond + angle_q.sin().log() * &angle;
        let logdet = (log_j - log_du).sum_dim_intlist(1, false, Kind::Double);

        let m = u.size()[0];
        let coordinate = |k: usize| q.select(1, k as i64).unsqueeze(1);
        let vector = |v: [f64; 3]| Tensor::from_slice(&v).to_device(device).unsqueeze(0);
        let mut positions: Vec<Option<Tensor>> = (0..self.n_atoms).map(|_| None).collect();
        let [ra, rb, rc] = zmatrix.root();
        // Canonical frame (α = π/2, β = ψ = 0): a at the origin, b along x, c in the x–z plane.
        let (axis, e_alpha) = (vector([1.0, 0.0, 0.0]), vector([0.0, 0.0, -1.0]));
        let xa = Tensor::zeros([m, 3], (Kind::Double, device));
        let xb = &xa + &axis * coordinate(0);
        let (r_bc, theta) = (coordinate(1), coordinate(2));
        let xc = &xb + (-(&axis) * theta.cos() + &e_alpha * theta.sin()) * r_bc;
        positions[ra] = Some(xa);
        positions[rb] = Some(xb);
        positions[rc] = Some(xc);
        for (k, p) in zmatrix.placements().iter().enumerate() {
            let at = |i: usize| positions[i].as_ref().map(Tensor::shallow_clone);
            let (Some(xj), Some(xk), Some(xl)) = (at(p.j), at(p.k), at(p.l)) else {
                unreachable!("a Z-matrix places its references before the atom")
            };
            let (r, theta, phi) = (
                coordinate(3 + 3 * k),
                coordinate(4 + 3 * k),
                coordinate(5 + 3 * k),
            );
            let unit = |v: Tensor| {
                let n = v.square().sum_dim_intlist(1, true, Kind::Double).sqrt();
                v / n
            };
            let e1 = unit(&xk - &xj);
            let mv = &xl - &xk;
            let e2 = unit(&mv - &e1 * (&mv * &e1).sum_dim_intlist(1, true, Kind::Double));
            let e3 = e2.cross(&e1, 1);
            let d = &e1 * theta.cos() + (&e2 * phi.cos() + &e3 * phi.sin()) * theta.sin();
            positions[p.atom] = Some(xj + d * r);
        }
        let atoms: Vec<Tensor> = positions.into_iter().flatten().collect();
        (
            Tensor::stack(&atoms, 1).reshape([m, 3 * self.n_atoms as i64]),
            logdet,
        )
    }

    /// Layer rows `u` to Cartesian rows `x` in the canonical frame (root atom at the origin,
    /// orientation angles `(π/2, 0, 0)`), and per row `log|det ∂x/∂u|` on the fibre:
    /// `log J_int(q_int) − log|du/dq_int|`.
    /// (The f64 reference that the libtorch map is tested against.)
    #[cfg(test)]
    pub(crate) fn to_cartesian(
        &self,
        zmatrix: &ZMatrix,
        u: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (width, d) = (3 * self.n_atoms, self.internal_dim());
        let rows: Vec<(Vec<f64>, f64)> = u
            .par_chunks(d)
            .map(|row| {
                let mut q = vec![0.0; width];
                q[3] = PI / 2.0;
                let log_du = self.denormalise(row, &mut q[6..]);
                let x = zmatrix.to_cartesian(&q)?;
                Ok((x, zmatrix.log_jacobian_internal(&q)? - log_du))
            })
            .collect::<Result<_>>()?;
        Ok(unzip_rows(rows, width))
    }

    /// Gives `x_new` the position and orientation (the six external Z-matrix coordinates) of
    /// `reference`, keeping its internal coordinates.
    pub(crate) fn place_like(
        &self,
        zmatrix: &ZMatrix,
        x_new: &mut [f64],
        reference: &[f64],
    ) -> Result<()> {
        let mut q = zmatrix.to_internal(x_new)?;
        let q_ref = zmatrix.to_internal(reference)?;
        q[..6].copy_from_slice(&q_ref[..6]);
        x_new.copy_from_slice(&zmatrix.to_cartesian(&q)?);
        Ok(())
    }
}

fn placement_rows(zmatrix: &ZMatrix) -> Vec<[usize; 4]> {
    zmatrix
        .placements()
        .iter()
        .map(|p| [p.atom, p.j, p.k, p.l])
        .collect()
}

fn unzip_rows(rows: Vec<(Vec<f64>, f64)>, width: usize) -> (Vec<f64>, Vec<f64>) {
    let mut values = Vec::with_capacity(rows.len() * width);
    let mut logdets = Vec::with_capacity(rows.len());
    for (row, logdet) in rows {
        values.extend(row);
        logdets.push(logdet);
    }
    (values, logdets)
}
