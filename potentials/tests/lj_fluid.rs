//! The cell-list Lennard-Jones fluid against independent references.

mod common;

use boltzgen_potentials::{LennardJonesFluid, Potential};
use common::TestRng;

/// N particles on a simple cubic lattice filling the box at density ρ, each displaced by up
/// to ±0.15σ, then some shifted by whole box lengths (wrapping must undo that).
/// The cutoff is 2.5σ, or less where the box is too small for 3 cells of that size.
fn fluid_configuration(n: usize, density: f64, seed: u64) -> (LennardJonesFluid, Vec<f64>) {
    let box_length = (n as f64 / density).cbrt();
    let cutoff = 2.5f64.min(box_length / 3.0);
    let lj = LennardJonesFluid::at_density(n, density, cutoff, false).unwrap();
    let l = lj.box_length();
    let side = (n as f64).cbrt().ceil() as usize;
    let a = l / side as f64;
    let mut rng = TestRng(seed);
    let mut x = Vec::with_capacity(3 * n);
    for i in 0..n {
        let cell = [i % side, (i / side) % side, i / (side * side)];
        for c in cell {
            let image = if rng.uniform() < 0.1 {
                l * (rng.range(-2.0, 2.0)).round()
            } else {
                0.0
            };
            x.push((c as f64 + 0.5) * a + rng.range(-0.15, 0.15) + image);
        }
    }
    (lj, x)
}

fn assert_cell_list_equals_all_pairs(n: usize) {
    let (lj, x) = fluid_configuration(n, 0.8, n as u64);
    assert!(lj.cells_per_side() >= 3, "N = {n} must use the cell list");
    let mut g_cells = vec![0.0; 3 * n];
    let mut g_pairs = vec![0.0; 3 * n];
    let u_pairs = lj.energy_all_pairs(&x, Some(&mut g_pairs));
    let g_scale = g_pairs.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let mut grids = 0;
    for reach in [1u8, 2, 3] {
        let lj = lj.with_cell_reach(reach).unwrap();
        if lj.cells_per_side() == 0 {
            continue; // box too small for this cell size: the all-pairs path, nothing new
        }
        grids += 1;
        let u_cells = lj.energy_and_gradient(&x, &mut g_cells).unwrap();
        // Same pairs, summed in another order: agreement to rounding.
        assert!(
            (u_cells - u_pairs).abs() <= 1e-10 * u_pairs.abs(),
            "N = {n}, reach {reach}: {u_cells} vs {u_pairs}"
        );
        for i in 0..3 * n {
            assert!(
                (g_cells[i] - g_pairs[i]).abs() <= 1e-10 * g_scale,
                "N = {n}, reach {reach}, coordinate {i}"
            );
        }
    }
    assert!(grids >= 1);
}

#[test]
fn cell_list_equals_all_pairs_for_64_particles() {
    assert_cell_list_equals_all_pairs(64);
}

#[test]
fn cell_list_equals_all_pairs_for_512_particles() {
    assert_cell_list_equals_all_pairs(512);
}

#[test]
fn cell_list_equals_all_pairs_for_4096_particles() {
    assert_cell_list_equals_all_pairs(4096);
}

#[test]
fn translation_and_permutation_invariance() {
    let (lj, x) = fluid_configuration(512, 0.8, 1);
    let u = lj.energy(&x).unwrap();
    let shifted: Vec<f64> = x
        .chunks_exact(3)
        .flat_map(|p| [p[0] + 3.7, p[1] - 11.2, p[2] + 0.01])
        .collect();
    let reversed: Vec<f64> = x.chunks_exact(3).rev().flatten().copied().collect();
    assert!((lj.energy(&shifted).unwrap() - u).abs() < 1e-9 * u.abs());
    assert!((lj.energy(&reversed).unwrap() - u).abs() < 1e-9 * u.abs());
}

/// An FCC crystal's energy per particle is a lattice sum, ½ Σ_{R≠0, |R|<r_c} u(|R|), computed
/// here by enumerating lattice vectors: no boxes, no minimum image, no cell list.
#[test]
fn fcc_crystal_matches_its_lattice_sum() {
    let cells = 6; // 6³ unit cells, 864 atoms
    let density: f64 = 1.0;
    let a = (4.0 / density).cbrt();
    let basis = [
        [0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0],
        [0.5, 0.0, 0.5],
        [0.0, 0.5, 0.5],
    ];
    let mut x = Vec::new();
    for i in 0..cells {
        for j in 0..cells {
            for k in 0..cells {
                for b in basis {
                    x.extend([
                        (i as f64 + b[0]) * a,
                        (j as f64 + b[1]) * a,
                        (k as f64 + b[2]) * a,
                    ]);
                }
            }
        }
    }
    let n = x.len() / 3;
    let rc = 2.5;
    for shift in [false, true] {
        let lj = LennardJonesFluid::new(n, cells as f64 * a, 1.0, 1.0, rc, shift).unwrap();
        let u_shift = if shift {
            4.0 * (rc.powi(-12) - rc.powi(-6))
        } else {
            0.0
        };
        let mut per_particle = 0.0;
        let reach = (rc / a).ceil() as i64 + 1;
        for i in -reach..=reach {
            for j in -reach..=reach {
                for k in -reach..=reach {
                    for b in basis {
                        let r = [
                            (i as f64 + b[0]) * a,
                            (j as f64 + b[1]) * a,
                            (k as f64 + b[2]) * a,
                        ];
                        let r2: f64 = r.iter().map(|v| v * v).sum();
                        if r2 > 0.0 && r2 < rc * rc {
                            let s3 = r2.powi(-3);
                            per_particle += 0.5 * (4.0 * (s3 * s3 - s3) - u_shift);
                        }
                    }
                }
            }
        }
        let u = lj.energy(&x).unwrap();
        assert!(
            (u / n as f64 - per_particle).abs() < 1e-10,
            "shift {shift}: {} vs {per_particle}",
            u / n as f64
        );
    }
}

#[test]
fn tail_correction_equals_the_integral_beyond_the_cutoff() {
    // E_tail = (N ρ / 2) ∫_{r_c}^∞ 4π r² u(r) dr: the trapezoid rule out to R = 200σ, and
    // beyond it the r⁻⁶ term alone, −16π/(3R³) (the r⁻¹² term is 1e-25 there).
    let lj = LennardJonesFluid::at_density(500, 0.8, 2.5, false).unwrap();
    let (n, rho) = (500.0, 0.8);
    let h = 1e-4;
    let steps = ((200.0 - 2.5) / h) as usize;
    let integrand = |r: f64| 4.0 * std::f64::consts::PI * r * r * 4.0 * (r.powi(-12) - r.powi(-6));
    let mut integral = 0.5 * (integrand(2.5) + integrand(2.5 + steps as f64 * h));
    for i in 1..steps {
        integral += integrand(2.5 + i as f64 * h);
    }
    integral *= h;
    integral -= 16.0 * std::f64::consts::PI / (3.0 * 200f64.powi(3));
    let expected = 0.5 * n * rho * integral;
    assert!(
        (lj.tail_correction() - expected).abs() < 1e-8 * expected.abs(),
        "{} vs {expected}",
        lj.tail_correction()
    );
}

#[test]
fn rejects_a_cutoff_beyond_half_the_box() {
    let err = LennardJonesFluid::new(10, 4.0, 1.0, 1.0, 2.5, false).unwrap_err();
    assert!(err.to_string().contains("cutoff"), "{err}");
}
