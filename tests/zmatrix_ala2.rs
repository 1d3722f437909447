//! Internal coordinates on alanine dipeptide: the Z-matrix built from the force field's bonds
//! round-trips every frame of the 300 K MD trajectory (20 000 frames) to 1e-10 Å, its
//! log-Jacobian matches a numerical Jacobian on MD frames, and φ is one of its torsions when
//! rooted on the backbone.

use std::path::{Path, PathBuf};

use boltzgen::io::trajectory::{read_frames, FrameRange, ReadSpec};
use boltzgen::molecule::ZMatrix;
use boltzgen::potentials::openmm::dihedral;
use boltzgen::potentials::OpenMmForceField;

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

fn log_abs_det(mut m: Vec<Vec<f64>>) -> f64 {
    let n = m.len();
    let mut total = 0.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&a, &b| m[a][c].abs().partial_cmp(&m[b][c].abs()).unwrap())
            .unwrap();
        m.swap(c, p);
        let pivot = m[c][c];
        total += pivot.abs().ln();
        for r in c + 1..n {
            let f = m[r][c] / pivot;
            for k in c..n {
                m[r][k] -= f * m[c][k];
            }
        }
    }
    total
}

#[test]
fn log_jacobian_matches_a_numerical_jacobian_on_md_frames() {
    let z = zmatrix();
    let x = all_frames();
    for frame_index in [17, 5_003, 12_345, 19_999] {
        let q = z
            .to_internal(&x[66 * frame_index..66 * (frame_index + 1)])
            .unwrap();
        let h = 1e-6;
        let columns: Vec<Vec<f64>> = (0..66)
            .map(|i| {
                let (mut qp, mut qm) = (q.clone(), q.clone());
                qp[i] += h;
                qm[i] -= h;
                let (xp, xm) = (z.to_cartesian(&qp).unwrap(), z.to_cartesian(&qm).unwrap());
                xp.iter()
                    .zip(&xm)
                    .map(|(a, b)| (a - b) / (2.0 * h))
                    .collect()
            })
            .collect();
        let numeric = log_abs_det(columns);
        let exact = z.log_jacobian(&q).unwrap();
        assert!(
            (numeric - exact).abs() < 1e-6 * exact.abs().max(1.0),
            "frame {frame_index}: numerical {numeric} vs exact {exact}"
        );
    }
}
