//! Internal coordinates: a bijection between Cartesian coordinates and bond lengths, angles and
//! torsions built from a molecule's bonds (a Z-matrix), with its exact log-Jacobian.
//!
//! **Layout.** Atoms are placed in a breadth-first order over the bond graph, the larger
//! branches of each atom first. Three root atoms `a–b–c` (bonded in a chain) are placed first,
//! then every other atom `i` from three placed reference atoms `j, k, l` by its bond length
//! `r = |xᵢ − xⱼ|`, its angle `θ = ∠(i, j, k)` and its torsion `φ = dihedral(i, j, k, l)`
//! (IUPAC sign, as OpenMM's torsions). `j` is bonded to `i`; `k` is the atom `j` was placed
//! from (the chain continues), or a placed neighbour of a root atom `j`. `l` is the first
//! sibling placed from the same `j` and `k` when there is one, so that the torsions of the
//! atoms around one bond are a rotor angle plus narrow offsets (≈ ±120° in a methyl group)
//! rather than three copies of the rotor angle; otherwise `l` is the atom `k` was placed from,
//! or a placed neighbour of `k` or `j`. The Jacobian below does not depend on these choices.
//!
//! **The six external degrees of freedom** are kept explicitly, so that the map is a bijection
//! of ℝ^{3n} (away from its singular set: zero lengths, straight angles), not a projection:
//! - translation: the position of root atom `a` (3 numbers);
//! - orientation: the polar angle α ∈ (0, π) and azimuth β of the unit vector `u` from `a` to
//!   `b`, and the angle ψ of `c` about that axis (measured from `e_α = ∂u/∂α`, towards
//!   `e_β = ẑ × u / |ẑ × u|`). (β, α, ψ) are Euler angles of the molecule's frame, whose Haar
//!   measure is `sin α dα dβ dψ`.
//!
//! The coordinate vector `q` (3n values) is
//! `[t_x, t_y, t_z, α, β, ψ, r_ab, r_bc, θ_abc, (r, θ, φ) of each further atom in placement
//! order]`. Its Jacobian determinant is
//!
//! `|det ∂x/∂q| = sin α · r_ab² · r_bc² sin θ_abc · Πᵢ rᵢ² sin θᵢ`,
//!
//! of which [`ZMatrix::log_jacobian_internal`] is the part without the orientation factor
//! `sin α`. A flow over the 3n − 6 internal coordinates `q_int = q[6..]` with density `p(q_int)`
//! then has the Cartesian density `p(q_int) / J_int(q_int)` on each fibre of fixed position and
//! orientation; a proposal that keeps the current state's six external coordinates and draws
//! new internal ones is an exact Metropolis–Hastings move for any U that is invariant under
//! rotations and translations (molecules in vacuum), with Hastings term
//! `[log p(q_int) − log J_int(q_int)] − [log p(q′_int) − log J_int(q′_int)]`.

use crate::error::{Error, Result};

/// One placed atom: the atom and its reference atoms `j` (bond), `k` (angle), `l` (torsion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The atom placed.
    pub atom: usize,
    /// Bonded reference: `r = |x_atom − x_j|`.
    pub j: usize,
    /// Angle reference: `θ = ∠(atom, j, k)`.
    pub k: usize,
    /// Torsion reference: `φ = dihedral(atom, j, k, l)`.
    pub l: usize,
}

/// A Z-matrix over a molecule's bond graph (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct ZMatrix {
    n_atoms: usize,
    root: [usize; 3],
    placements: Vec<Placement>,
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn axpy(y: [f64; 3], s: f64, x: [f64; 3]) -> [f64; 3] {
    [y[0] + s * x[0], y[1] + s * x[1], y[2] + s * x[2]]
}

/// The angle (radians, [0, π]) at the vertex between the rays to `p` and `q`.
fn angle(p: [f64; 3], vertex: [f64; 3], q: [f64; 3]) -> f64 {
    let (u, v) = (sub(p, vertex), sub(q, vertex));
    norm(cross(u, v)).atan2(dot(u, v))
}

/// The orientation frame of the unit vector `u(α, β)`: `(u, e_α, e_β)`.
fn frame(alpha: f64, beta: f64) -> [[f64; 3]; 3] {
    let (sa, ca, sb, cb) = (alpha.sin(), alpha.cos(), beta.sin(), beta.cos());
    [
        [sa * cb, sa * sb, ca],
        [ca * cb, ca * sb, -sa],
        [-sb, cb, 0.0],
    ]
}

/// Places atom `i` from `x_j, x_k, x_l` with bond r, angle θ = ∠(i, j, k) and torsion
/// φ = dihedral(i, j, k, l) (the natural-extension reference frame construction).
fn place(xj: [f64; 3], xk: [f64; 3], xl: [f64; 3], r: f64, theta: f64, phi: f64) -> [f64; 3] {
    let e1 = scale(sub(xk, xj), 1.0 / norm(sub(xk, xj)));
    let m = sub(xl, xk);
    let w = axpy(m, -dot(m, e1), e1);
    let e2 = scale(w, 1.0 / norm(w));
    let e3 = cross(e2, e1);
    let (st, ct) = (theta.sin(), theta.cos());
    let d = [
        ct * e1[0] + st * (phi.cos() * e2[0] + phi.sin() * e3[0]),
        ct * e1[1] + st * (phi.cos() * e2[1] + phi.sin() * e3[1]),
        ct * e1[2] + st * (phi.cos() * e2[2] + phi.sin() * e3[2]),
    ];
    axpy(xj, r, d)
}

impl ZMatrix {
    /// Builds a Z-matrix for `n_atoms` atoms from their bonds (0-based pairs).
    ///
    /// The root chain is the centre of the bond graph (the atom with the smallest largest bond
    /// distance to any other, lowest index first) between its two largest branches; see
    /// [`ZMatrix::with_root`] to choose it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for fewer than three atoms, a bond to a missing atom or to
    /// itself, or a bond graph that is not connected or has no atom with two neighbours.
    pub fn from_bonds(n_atoms: usize, bonds: &[(usize, usize)]) -> Result<Self> {
        let neighbours = Self::neighbours(n_atoms, bonds)?;
        // The centre of the bond graph (smallest eccentricity) keeps placement chains short;
        // its two largest branches give the root chain.
        let b = (0..n_atoms)
            .filter(|&i| neighbours[i].len() >= 2)
            .min_by_key(|&i| (eccentricity(&neighbours, i), i))
            .ok_or_else(|| invalid("no atom has two bonded neighbours".into()))?;
        let mut branches = neighbours[b].clone();
        branches.sort_by_key(|&i| (std::cmp::Reverse(branch_size(&neighbours, b, i)), i));
        Self::build(n_atoms, &neighbours, [branches[0], b, branches[1]])
    }

    /// As [`ZMatrix::from_bonds`] with the root chain `a–b–c` given (a and c bonded to b).
    ///
    /// # Errors
    /// As [`ZMatrix::from_bonds`], and for a root that is not a bonded chain.
    pub fn with_root(n_atoms: usize, bonds: &[(usize, usize)], root: [usize; 3]) -> Result<Self> {
        let neighbours = Self::neighbours(n_atoms, bonds)?;
        let [a, b, c] = root;
        if root.iter().any(|&i| i >= n_atoms)
            || a == c
            || !neighbours[b].contains(&a)
            || !neighbours[b].contains(&c)
        {
            return Err(invalid(format!(
                "root {root:?} must be a chain a–b–c of bonded atoms"
            )));
        }
        Self::build(n_atoms, &neighbours, root)
    }

    fn neighbours(n_atoms: usize, bonds: &[(usize, usize)]) -> Result<Vec<Vec<usize>>> {
        if n_atoms < 3 {
            return Err(invalid(format!(
                "{n_atoms} atoms: internal coordinates need at least 3"
            )));
        }
        let mut neighbours = vec![Vec::new(); n_atoms];
        for &(i, j) in bonds {
            if i >= n_atoms || j >= n_atoms || i == j {
                return Err(invalid(format!(
                    "bond ({i}, {j}) is not between two different atoms below {n_atoms}"
                )));
            }
            if !neighbours[i].contains(&j) {
                neighbours[i].push(j);
                neighbours[j].push(i);
            }
        }
        for list in &mut neighbours {
            list.sort_unstable();
        }
        Ok(neighbours)
    }

    fn build(n_atoms: usize, neighbours: &[Vec<usize>], root: [usize; 3]) -> Result<Self> {
        let mut placed = vec![false; n_atoms];
        for &r in &root {
            placed[r] = true;
        }
        // parent[i]: the bond reference j of a placed non-root atom i.
        let mut parent: Vec<Option<usize>> = vec![None; n_atoms];
        let mut order: Vec<usize> = root.to_vec();
        let mut placements: Vec<Placement> = Vec::with_capacity(n_atoms - 3);
        // Breadth first: each atom is placed from the earliest-placed atom bonded to it, the
        // larger branches of an atom before the smaller (so a backbone comes before its
        // hydrogens).
        let mut cursor = 0;
        while cursor < order.len() {
            let j = order[cursor];
            cursor += 1;
            let mut children: Vec<usize> = neighbours[j]
                .iter()
                .copied()
                .filter(|&i| !placed[i])
                .collect();
            children.sort_by_key(|&i| (std::cmp::Reverse(branch_size(neighbours, j, i)), i));
            for i in children {
                let other_placed = |lists: &[&[usize]], k: usize| {
                    lists
                        .iter()
                        .flat_map(|list| list.iter().copied())
                        .find(|&l| l != i && l != j && l != k && placed[l])
                };
                // k: the chain continues through j's own bond reference.
                let k = match parent[j] {
                    Some(k) => k,
                    None => other_placed(&[&neighbours[j]], usize::MAX)
                        .ok_or_else(|| invalid(format!("atom {j} has no placed neighbour")))?,
                };
                // l: a sibling placed before from the same j and k (the torsion then is the
                // narrow offset between the two, e.g. 120° in a methyl group, instead of a
                // second copy of the rotor angle); otherwise k's own bond reference, or any
                // placed neighbour of k or j.
                let sibling = placements
                    .iter()
                    .find(|p| p.j == j && p.k == k)
                    .map(|p| p.atom);
                let l = sibling
                    .or(parent[k].filter(|&l| l != j))
                    .or_else(|| other_placed(&[&neighbours[k], &neighbours[j]], k))
                    .ok_or_else(|| {
                        invalid(format!(
                            "no torsion reference for atom {i} (bonded to {j}, {k})"
                        ))
                    })?;
                placed[i] = true;
                parent[i] = Some(j);
                order.push(i);
                placements.push(Placement { atom: i, j, k, l });
            }
        }
        if let Some(missing) = placed.iter().position(|p| !p) {
            return Err(invalid(format!(
                "the bond graph is not connected: atom {missing} cannot be reached from the root {root:?}"
            )));
        }
        Ok(Self {
            n_atoms,
            root,
            placements,
        })
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.n_atoms
    }

    /// The root chain `a–b–c`.
    pub fn root(&self) -> [usize; 3] {
        self.root
    }

    /// The placements of the atoms after the root, in order.
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// Index in `q` of the torsion of the placement of `atom` (for naming a backbone dihedral
    /// that the Z-matrix happens to hold), if it is not a root atom.
    pub fn torsion_index(&self, atom: usize) -> Option<usize> {
        self.placements
            .iter()
            .position(|p| p.atom == atom)
            .map(|k| 9 + 3 * k + 2)
    }

    fn check(&self, what: &str, got: usize) -> Result<()> {
        if got == 3 * self.n_atoms {
            Ok(())
        } else {
            Err(Error::Dimension {
                what: what.into(),
                expected: 3 * self.n_atoms,
                got,
            })
        }
    }

    /// Cartesian `x` (row-major `[n × 3]`) to internal coordinates `q` (see the module docs).
    ///
    /// # Errors
    /// [`Error::Dimension`] for a wrong length.
    pub fn to_internal(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.check("Cartesian configuration", x.len())?;
        let p = |i: usize| [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
        let [a, b, c] = self.root.map(p);
        let ab = sub(b, a);
        let r_ab = norm(ab);
        let u = scale(ab, 1.0 / r_ab);
        let alpha = u[2].clamp(-1.0, 1.0).acos();
        let beta = u[1].atan2(u[0]);
        let [_, e_alpha, e_beta] = frame(alpha, beta);
        let bc = sub(c, b);
        let r_bc = norm(bc);
        let theta_abc = angle(a, b, c);
        // ψ: the direction of c − b perpendicular to u, in the (e_α, e_β) plane.
        let psi = dot(bc, e_beta).atan2(dot(bc, e_alpha));
        let mut q = Vec::with_capacity(3 * self.n_atoms);
        q.extend_from_slice(&a);
        q.extend_from_slice(&[alpha, beta, psi, r_ab, r_bc, theta_abc]);
        for pl in &self.placements {
            let (xi, xj, xk, xl) = (p(pl.atom), p(pl.j), p(pl.k), p(pl.l));
            q.push(norm(sub(xi, xj)));
            q.push(angle(xi, xj, xk));
            q.push(boltzgen_potentials::openmm::dihedral(xi, xj, xk, xl));
        }
        Ok(q)
    }

    /// Internal coordinates `q` back to Cartesian `x`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for a wrong length.
    pub fn to_cartesian(&self, q: &[f64]) -> Result<Vec<f64>> {
        self.check("internal coordinates", q.len())?;
        let mut x = vec![0.0; 3 * self.n_atoms];
        let set = |x: &mut [f64], i: usize, v: [f64; 3]| x[3 * i..3 * i + 3].copy_from_slice(&v);
        let [a, b, c] = self.root;
        let xa = [q[0], q[1], q[2]];
        let (alpha, beta, psi) = (q[3], q[4], q[5]);
        let (r_ab, r_bc, theta_abc) = (q[6], q[7], q[8]);
        let [u, e_alpha, e_beta] = frame(alpha, beta);
        let xb = axpy(xa, r_ab, u);
        // c = b + r_bc [−cos θ u + sin θ (cos ψ e_α + sin ψ e_β)].
        let perp = axpy(scale(e_alpha, psi.cos()), psi.sin(), e_beta);
        let xc = axpy(
            axpy(xb, -r_bc * theta_abc.cos(), u),
            r_bc * theta_abc.sin(),
            perp,
        );
        set(&mut x, a, xa);
        set(&mut x, b, xb);
        set(&mut x, c, xc);
        for (k, pl) in self.placements.iter().enumerate() {
            let (r, theta, phi) = (q[9 + 3 * k], q[10 + 3 * k], q[11 + 3 * k]);
            let p = |i: usize| [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
            let xi = place(p(pl.j), p(pl.k), p(pl.l), r, theta, phi);
            set(&mut x, pl.atom, xi);
        }
        Ok(x)
    }

    /// `log |det ∂x/∂q|` at `q` (see the module docs).
    ///
    /// # Errors
    /// [`Error::Dimension`] for a wrong length.
    pub fn log_jacobian(&self, q: &[f64]) -> Result<f64> {
        Ok(q[3].sin().abs().ln() + self.log_jacobian_internal(q)?)
    }

    /// The part of [`ZMatrix::log_jacobian`] that depends on the internal coordinates
    /// `q[6..]`: `log(r_ab² · r_bc² sin θ_abc · Πᵢ rᵢ² sin θᵢ)`.
    ///
    /// # Errors
    /// [`Error::Dimension`] for a wrong length.
    pub fn log_jacobian_internal(&self, q: &[f64]) -> Result<f64> {
        self.check("internal coordinates", q.len())?;
        let mut total = 2.0 * q[6].abs().ln() + 2.0 * q[7].abs().ln() + q[8].sin().abs().ln();
        for k in 0..self.placements.len() {
            total += 2.0 * q[9 + 3 * k].abs().ln() + q[10 + 3 * k].sin().abs().ln();
        }
        Ok(total)
    }
}

/// Number of atoms reachable from `start` without passing through `from` (the size of the
/// branch of `from` that `start` begins).
fn branch_size(neighbours: &[Vec<usize>], from: usize, start: usize) -> usize {
    let mut seen = vec![false; neighbours.len()];
    seen[from] = true;
    seen[start] = true;
    let mut stack = vec![start];
    let mut count = 0;
    while let Some(a) = stack.pop() {
        count += 1;
        for &n in &neighbours[a] {
            if !seen[n] {
                seen[n] = true;
                stack.push(n);
            }
        }
    }
    count
}

/// Largest bond-count distance from `start` to any atom it reaches.
fn eccentricity(neighbours: &[Vec<usize>], start: usize) -> usize {
    let mut distance = vec![usize::MAX; neighbours.len()];
    distance[start] = 0;
    let mut queue = std::collections::VecDeque::from([start]);
    let mut furthest = 0;
    while let Some(a) = queue.pop_front() {
        furthest = furthest.max(distance[a]);
        for &n in &neighbours[a] {
            if distance[n] == usize::MAX {
                distance[n] = distance[a] + 1;
                queue.push_back(n);
            }
        }
    }
    furthest
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument {
        name: "bonds".into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A branched, alkane-like tree of `n` atoms with a 3-D zig-zag geometry and jitter.
    fn tree(n: usize) -> (Vec<(usize, usize)>, Vec<f64>) {
        let bonds: Vec<(usize, usize)> = (1..n).map(|i| ((i - 1) / 3, i)).collect();
        let mut state = 17u64;
        let mut jitter = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.3
        };
        // Place by a random Z-matrix so that bond lengths and angles are sane.
        let z = ZMatrix::from_bonds(n, &bonds).unwrap();
        let mut q = vec![0.1, -0.2, 0.3, 1.1, 0.4, 0.7, 0.15, 0.15, 1.9];
        for _ in z.placements() {
            q.extend([0.15 + 0.1 * jitter(), 1.9 + jitter(), 3.0 * jitter() * 6.0]);
        }
        let x = z.to_cartesian(&q).unwrap();
        (bonds, x)
    }

    #[test]
    fn round_trip_and_every_atom_placed_once() {
        let n = 61;
        let (bonds, x) = tree(n);
        let z = ZMatrix::from_bonds(n, &bonds).unwrap();
        let mut seen = vec![0; n];
        for &r in &z.root() {
            seen[r] += 1;
        }
        for p in z.placements() {
            seen[p.atom] += 1;
            assert!(bonds.contains(&(p.j.min(p.atom), p.j.max(p.atom))));
        }
        assert!(seen.iter().all(|&s| s == 1), "{seen:?}");
        let q = z.to_internal(&x).unwrap();
        let back = z.to_cartesian(&q).unwrap();
        let worst = x
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "round trip error {worst}");
        let q2 = z.to_internal(&back).unwrap();
        for (a, b) in q.iter().zip(&q2) {
            assert!((a - b).abs() < 1e-10);
        }
    }

    #[test]
    fn torsions_follow_the_iupac_convention() {
        // Butane-like chain 0-1-2-3: atom 3's torsion is dihedral(3, 2, 1, 0).
        let z = ZMatrix::with_root(4, &[(0, 1), (1, 2), (2, 3)], [0, 1, 2]).unwrap();
        let p = z.placements()[0];
        assert_eq!((p.atom, p.j, p.k, p.l), (3, 2, 1, 0));
        for phi in [-2.5, -0.3, 0.0, 1.0, 3.0] {
            let q = [
                0.0, 0.0, 0.0, 1.0, 0.5, 0.2, 0.15, 0.15, 1.9, 0.15, 1.9, phi,
            ];
            let x = z.to_cartesian(&q).unwrap();
            let pt = |i: usize| [x[3 * i], x[3 * i + 1], x[3 * i + 2]];
            let d = boltzgen_potentials::openmm::dihedral(pt(3), pt(2), pt(1), pt(0));
            assert!((d - phi).abs() < 1e-12, "{d} vs {phi}");
        }
    }

    #[test]
    fn bad_bond_graphs_are_errors() {
        assert!(ZMatrix::from_bonds(2, &[(0, 1)]).is_err());
        assert!(ZMatrix::from_bonds(4, &[(0, 1), (1, 2)]).is_err()); // atom 3 unreachable
        assert!(ZMatrix::from_bonds(3, &[(0, 3)]).is_err());
        assert!(ZMatrix::with_root(4, &[(0, 1), (1, 2), (2, 3)], [0, 2, 3]).is_err());
        let z = ZMatrix::from_bonds(3, &[(0, 1), (1, 2)]).unwrap();
        assert!(z.to_internal(&[0.0; 8]).is_err());
    }
}
