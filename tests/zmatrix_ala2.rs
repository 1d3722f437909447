//! Internal coordinates on alanine dipeptide: the Z-matrix built from the force field's bonds
//! round-trips every frame of the 300 K MD trajectory (20 000 frames) to 1e-10 Å, its
//! log-Jacobian matches a numerical Jacobian on MD frames and on a branched 61-atom molecule,
//! and φ is one of its torsions when rooted on the backbone.

use std::path::{Path, PathBuf};

use boltzgen::io::trajectory::{read_frames, FrameRange, ReadSpec};
use boltzgen::molecule::ZMatrix;
use boltzgen::potentials::openmm::dihedral;
use boltzgen::potentials::OpenMmForceField;

mod common;
use common::log_abs_det;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/data/ala2")
        .join(name)
}

fn all_frames() -> Vec<f64> {
    read_frames(
        &data("md_300K.dcd"),
        &ReadSpec {
            frames: FrameRange::default(),
            selection: None,
            n_particles: 22,
            spatial_dim: 3,
            length_per_angstrom: 1.0, // ångström: the tolerance below is in Å
        },
    )
    .unwrap()
}

fn zmatrix() -> ZMatrix {
    let ff = OpenMmForceField::from_file(&data("system.xml")).unwrap();
    // Rooted on the backbone C(ACE)–N–CA, so that φ = dihedral(C, CA, N, C(ACE)) is a torsion.
    ZMatrix::with_root(22, &ff.bonds(), [4, 6, 8]).unwrap()
}

#[test]
fn every_md_frame_round_trips_to_1e10_angstrom() {
    let z = zmatrix();
    let x = all_frames();
    assert_eq!(x.len(), 20_000 * 66);
    let mut worst: f64 = 0.0;
    for frame in x.chunks_exact(66) {
        let q = z.to_internal(frame).unwrap();
        let back = z.to_cartesian(&q).unwrap();
        for (a, b) in frame.iter().zip(&back) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 1e-10, "worst round-trip error {worst} Å");
    // φ (C(ACE) 4, N 6, CA 8, C 14) is the torsion of atom 14 placed from (8, 6, 4), up to
    // the IUPAC symmetry dihedral(a, b, c, d) = dihedral(d, c, b, a).
    let k = z.torsion_index(14).unwrap();
    let p = z.placements().iter().find(|p| p.atom == 14).unwrap();
    assert_eq!((p.j, p.k, p.l), (8, 6, 4));
    let frame = &x[..66];
    let pt = |i: usize| [frame[3 * i], frame[3 * i + 1], frame[3 * i + 2]];
    let phi = dihedral(pt(4), pt(6), pt(8), pt(14));
    assert!((z.to_internal(frame).unwrap()[k] - phi).abs() < 1e-12);
}

/// log|det ∂x/∂q| by central differences of `to_cartesian` (h = 1e-6).
fn numerical_log_jacobian(z: &ZMatrix, q: &[f64]) -> f64 {
    let h = 1e-6;
    let columns: Vec<Vec<f64>> = (0..q.len())
        .map(|i| {
            let (mut qp, mut qm) = (q.to_vec(), q.to_vec());
            qp[i] += h;
            qm[i] -= h;
            let (xp, xm) = (z.to_cartesian(&qp).unwrap(), z.to_cartesian(&qm).unwrap());
            xp.iter()
                .zip(&xm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect()
        })
        .collect();
    log_abs_det(columns)
}

#[test]
fn log_jacobian_matches_a_numerical_jacobian_on_md_frames() {
    let z = zmatrix();
    let x = all_frames();
    for frame_index in [17, 5_003, 12_345, 19_999] {
        let q = z
            .to_internal(&x[66 * frame_index..66 * (frame_index + 1)])
            .unwrap();
        let numeric = numerical_log_jacobian(&z, &q);
        let exact = z.log_jacobian(&q).unwrap();
        assert!(
            (numeric - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "frame {frame_index}: numerical {numeric} vs exact {exact}"
        );
    }
}

/// A branched tree of 61 atoms (each atom bonded to its parent `(i − 1) / 3`) in a sane
/// geometry: the Z-matrix works beyond alanine dipeptide, every atom placed exactly once.
#[test]
fn a_larger_branched_molecule_places_every_atom_once_with_an_exact_jacobian() {
    let n = 61;
    let bonds: Vec<(usize, usize)> = (1..n).map(|i| ((i - 1) / 3, i)).collect();
    let z = ZMatrix::from_bonds(n, &bonds).unwrap();
    let mut seen = vec![0; n];
    for &r in &z.root() {
        seen[r] += 1;
    }
    for p in z.placements() {
        seen[p.atom] += 1;
    }
    assert!(seen.iter().all(|&s| s == 1), "{seen:?}");
    let mut q = vec![0.1, -0.2, 0.3, 1.1, 0.4, 0.7, 0.15, 0.15, 1.9];
    for k in 0..n - 3 {
        let t = k as f64;
        q.extend([
            0.15 + 0.01 * (t * 0.7).sin(),
            1.9 + 0.1 * (t * 1.3).cos(),
            2.5 * (t * 2.1).sin(),
        ]);
    }
    let x = z.to_cartesian(&q).unwrap();
    let back = z.to_cartesian(&z.to_internal(&x).unwrap()).unwrap();
    assert!(x.iter().zip(&back).all(|(a, b)| (a - b).abs() < 1e-12));
    let (numeric, exact) = (numerical_log_jacobian(&z, &q), z.log_jacobian(&q).unwrap());
    assert!(
        (numeric - exact).abs() < 1e-5 * exact.abs().max(1.0),
        "{numeric} vs {exact}"
    );
}

/// The default Z-matrix (what `coordinates = "internal"` builds) is rooted at the centre of
/// the molecule, N–CA–C, makes φ and ψ explicit torsions, and places the hydrogens of each
/// methyl group relative to the first one (narrow ≈ ±120° offsets instead of three copies of
/// the rotor angle).
#[test]
fn the_default_zmatrix_has_phi_and_psi_as_torsions_and_methyl_offsets() {
    let ff = OpenMmForceField::from_file(&data("system.xml")).unwrap();
    let z = ZMatrix::from_bonds(22, &ff.bonds()).unwrap();
    assert_eq!(z.root(), [6, 8, 14]);
    let placement = |atom: usize| *z.placements().iter().find(|p| p.atom == atom).unwrap();
    let phi = placement(4); // dihedral(4, 6, 8, 14) = φ
    assert_eq!((phi.j, phi.k, phi.l), (6, 8, 14));
    let psi = placement(16); // dihedral(16, 14, 8, 6) = ψ
    assert_eq!((psi.j, psi.k, psi.l), (14, 8, 6));
    let x = all_frames();
    for frame in x.chunks_exact(66).step_by(97) {
        let q = z.to_internal(frame).unwrap();
        let p = |i: usize| [frame[3 * i], frame[3 * i + 1], frame[3 * i + 2]];
        let phi_md = dihedral(p(4), p(6), p(8), p(14));
        let psi_md = dihedral(p(6), p(8), p(14), p(16));
        assert!((q[z.torsion_index(4).unwrap()] - phi_md).abs() < 1e-12);
        assert!((q[z.torsion_index(16).unwrap()] - psi_md).abs() < 1e-12);
    }
    // ACE methyl: carbon 1 with hydrogens 0, 2, 3; the first hydrogen is the others' reference.
    let hydrogens: Vec<_> = [0, 2, 3].map(placement).to_vec();
    let first = hydrogens
        .iter()
        .find(|h| h.l != 0 && h.l != 2 && h.l != 3)
        .unwrap();
    for h in hydrogens.iter().filter(|h| h.atom != first.atom) {
        assert_eq!((h.j, h.k, h.l), (first.j, first.k, first.atom));
        for frame in x.chunks_exact(66).step_by(997) {
            let q = z.to_internal(frame).unwrap();
            let offset = q[z.torsion_index(h.atom).unwrap()].to_degrees().abs();
            assert!((offset - 120.0).abs() < 25.0, "methyl offset {offset}°");
        }
    }
}
