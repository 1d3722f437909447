//! The OpenMM force field against OpenMM's own energies: alanine dipeptide (vacuum AMBER ff96)
//! read from `examples/data/ala2/system.xml`, on the frames of `md_300K.dcd` for which
//! `reference_energies_public.csv` gives OpenMM's per-force energies (Reference platform,
//! double precision).
//!
//! Target: |ΔE| ≤ max(1e-6 relative, 1e-6 kJ/mol) for every term of every reference frame, in
//! float64 from the DCD's float32 ångström coordinates. Gradients against central finite
//! differences on a few frames.

use std::path::{Path, PathBuf};

use boltzgen::io::trajectory::{read_frames, FrameRange, ReadSpec};
use boltzgen::potentials::{OpenMmForceField, Potential};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/data/ala2")
        .join(name)
}

fn frames(file: &str, frames: FrameRange, n_particles: usize) -> Vec<f64> {
    read_frames(
        &data(file),
        &ReadSpec {
            frames,
            selection: None,
            n_particles,
            spatial_dim: 3,
            length_per_angstrom: 0.1,
        },
    )
    .unwrap()
}

struct Reference {
    frame: usize,
    terms: [f64; 5], // total, bond, angle, torsion, nonbonded
}

fn references() -> Vec<Reference> {
    let text = std::fs::read_to_string(data("reference_energies_public.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "frame_index,total,bond,angle,torsion,nonbonded"
    );
    lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|s| s.parse().unwrap()).collect();
            Reference {
                frame: v[0] as usize,
                terms: [v[1], v[2], v[3], v[4], v[5]],
            }
        })
        .collect()
}

#[test]
fn energies_match_openmm_on_every_reference_frame() {
    let ff = OpenMmForceField::from_file(&data("system.xml")).unwrap();
    assert_eq!(ff.n_particles(), 22);
    let refs = references();
    assert_eq!(refs.len(), 100);
    // The reference frames are 0, 100, …, 9900: one stride-100 read.
    let x = frames(
        "md_300K.dcd",
        FrameRange {
            start: 0,
            stop: Some(10_000),
            stride: 100,
        },
        22,
    );
    let mut worst: [(f64, usize); 5] = [(0.0, 0); 5];
    for (k, r) in refs.iter().enumerate() {
        assert_eq!(r.frame, 100 * k);
        let t = ff.energy_terms(&x[66 * k..66 * (k + 1)]).unwrap();
        let ours = [t.total(), t.bond, t.angle, t.torsion, t.nonbonded];
        for (term, (a, b)) in ours.iter().zip(&r.terms).enumerate() {
            let bound = (1e-6 * b.abs()).max(1e-6);
            let diff = (a - b).abs();
            if diff / bound > worst[term].0 {
                worst[term] = (diff / bound, r.frame);
            }
            assert!(
                diff <= bound,
                "frame {}: term {term} (total, bond, angle, torsion, nonbonded) = {a} vs OpenMM {b}",
                r.frame
            );
        }
    }
    if std::env::var("SHOW_WORST").is_ok() {
        eprintln!(
            "worst |ΔE| / bound per term (total, bond, angle, torsion, nonbonded): {worst:?}"
        );
    }
}

#[test]
fn gradients_match_finite_differences_on_md_frames() {
    let ff = OpenMmForceField::from_file(&data("system.xml")).unwrap();
    let x = frames(
        "md_300K.dcd",
        FrameRange {
            start: 1234,
            stop: Some(1234 + 3 * 2000),
            stride: 2000,
        },
        22,
    );
    for frame in x.chunks_exact(66) {
        let mut g = vec![0.0; 66];
        ff.energy_and_gradient(frame, &mut g).unwrap();
        for i in 0..66 {
            let h = 1e-6;
            let (mut xp, mut xm) = (frame.to_vec(), frame.to_vec());
            xp[i] += h;
            xm[i] -= h;
            let fd = (ff.energy(&xp).unwrap() - ff.energy(&xm).unwrap()) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-4 * (1.0 + fd.abs()),
                "coordinate {i}: analytic {} vs numeric {fd} kJ/mol/nm",
                g[i]
            );
        }
    }
}

#[test]
fn atom_counts_must_agree() {
    let ff = OpenMmForceField::from_file(&data("system.xml")).unwrap();
    // The PDB and the trajectory hold the System's 22 atoms; asking for another count names
    // the file.
    assert_eq!(
        frames("ala2.pdb", FrameRange::default(), ff.n_particles()).len(),
        66
    );
    let err = read_frames(
        &data("md_300K.dcd"),
        &ReadSpec {
            frames: FrameRange::default(),
            selection: None,
            n_particles: 21,
            spatial_dim: 3,
            length_per_angstrom: 0.1,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("md_300K.dcd") && err.contains("22"), "{err}");
    let err = OpenMmForceField::from_file(&data("missing.xml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.xml"), "{err}");
}
