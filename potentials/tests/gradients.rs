//! Every potential's gradient against central finite differences at random points.

mod common;

use boltzgen_potentials::{
    DoubleWell2D, Gaussian, GaussianMixture, LennardJonesCluster, LennardJonesFluid, ManyWell,
    MullerBrown, ParticleDoubleWell, Potential,
};
use common::{assert_gradient_matches_finite_differences as check, lattice};
use proptest::prelude::*;

fn coords(dim: usize, lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(lo..hi, dim)
}

/// A lattice with each coordinate perturbed by up to ±`noise`: random, but never overlapping.
fn jittered_lattice(n: usize, dim: usize, a: f64, noise: f64) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-noise..noise, n * dim).prop_map(move |jitter| {
        lattice(n, dim, a)
            .into_iter()
            .zip(jitter)
            .map(|(x, j)| x + j)
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn double_well(x in coords(2, -3.0, 3.0)) {
        check(&DoubleWell2D::default(), &x);
        check(&DoubleWell2D::new(2.0, 3.0, -0.5, 4.0).unwrap(), &x);
    }

    #[test]
    fn muller_brown(x in coords(2, -1.5, 1.2)) {
        check(&MullerBrown::new(0.1).unwrap(), &x);
    }

    #[test]
    fn many_well(x in coords(8, -2.5, 2.5)) {
        check(&ManyWell::new(8).unwrap(), &x);
    }

    #[test]
    fn gmm40(x in coords(2, -45.0, 45.0)) {
        check(&GaussianMixture::gmm40(), &x);
    }

    #[test]
    fn gaussian(x in coords(3, -3.0, 3.0)) {
        let g = Gaussian::new(vec![0.5, -1.0, 2.0], vec![2.0, 0.3, -0.1, 0.3, 1.5, 0.2, -0.1, 0.2, 1.0]).unwrap();
        check(&g, &x);
    }

    #[test]
    fn dw4(x in jittered_lattice(4, 2, 3.0, 1.0)) {
        check(&ParticleDoubleWell::dw4(), &x);
    }

    #[test]
    fn dw_in_3d(x in jittered_lattice(5, 3, 2.0, 0.5)) {
        check(&ParticleDoubleWell::new(5, 3, 0.3, -4.0, 0.9, 2.5).unwrap(), &x);
    }

    #[test]
    fn lj13(x in jittered_lattice(13, 3, 1.1, 0.15)) {
        check(&LennardJonesCluster::lj13(), &x);
    }

    #[test]
    fn lj_cluster_in_2d_and_4d(x2 in jittered_lattice(7, 2, 1.1, 0.15), x4 in jittered_lattice(5, 4, 1.1, 0.15)) {
        check(&LennardJonesCluster::new(7, 2, 1.3, 1.0, 0.5).unwrap(), &x2);
        check(&LennardJonesCluster::new(5, 4, 1.0, 1.0, 1.0).unwrap(), &x4);
    }

    #[test]
    fn lj_fluid(x in jittered_lattice(125, 3, 1.0, 0.04)) {
        // 5 × 5 × 5 lattice of spacing 1 with ≤ 0.04 jitter per coordinate: nearest
        // neighbours lie in [0.86, 1.14] and the next shell in [1.27, 1.55], so no pair sits
        // at the cutoff 1.2, where the force jumps and finite differences mean nothing.
        // 4 cells per side: the cell-list path, with pairs across the periodic boundary.
        for shift in [false, true] {
            let lj = LennardJonesFluid::new(125, 5.0, 1.0, 1.0, 1.2, shift).unwrap();
            check(&lj, &x);
        }
    }
}

#[test]
fn batched_gradients_equal_single_calls() {
    let p = ManyWell::new(6).unwrap();
    let xs: Vec<f64> = (0..6 * 300)
        .map(|i| ((i * 37 % 101) as f64 / 25.0) - 2.0)
        .collect();
    let mut u = vec![0.0; 300];
    let mut g = vec![0.0; 6 * 300];
    p.energies_and_gradients(&xs, &mut u, &mut g).unwrap();
    let mut u_only = vec![0.0; 300];
    p.energies(&xs, &mut u_only).unwrap();
    let mut gi = vec![0.0; 6];
    for i in 0..300 {
        let ui = p
            .energy_and_gradient(&xs[6 * i..6 * i + 6], &mut gi)
            .unwrap();
        assert_eq!(u[i], ui);
        assert_eq!(u_only[i], ui);
        assert_eq!(&g[6 * i..6 * i + 6], &gi[..]);
    }
}
