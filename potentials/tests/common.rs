//! Helpers shared by the potentials' integration tests.
#![allow(dead_code)]

use boltzgen_potentials::Potential;

/// Checks ∇U against central finite differences at `x`, coordinate by coordinate.
///
/// Step h = 1e-5·max(1, |xᵢ|); the truncation error is O(h²·U''') and the rounding error
/// O(ε·|U|/h), so the tolerance has one term for each.
pub fn assert_gradient_matches_finite_differences<P: Potential>(p: &P, x: &[f64]) {
    let mut grad = vec![0.0; p.dim()];
    let u = p.energy_and_gradient(x, &mut grad).unwrap();
    assert_eq!(
        u,
        p.energy(x).unwrap(),
        "energy_and_gradient and energy disagree"
    );
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        let h = 1e-5 * x[i].abs().max(1.0);
        xp[i] = x[i] + h;
        let up = p.energy(&xp).unwrap();
        xp[i] = x[i] - h;
        let um = p.energy(&xp).unwrap();
        xp[i] = x[i];
        let fd = (up - um) / (2.0 * h);
        let tol = 1e-5 * (1.0 + grad[i].abs()) + 1e-12 * (1.0 + u.abs()) / h;
        assert!(
            (fd - grad[i]).abs() <= tol,
            "{}: coordinate {i}: analytic {} vs finite difference {fd} (tol {tol}){}",
            p.name(),
            grad[i],
            if x.len() <= 16 {
                format!(" at {x:?}")
            } else {
                String::new()
            }
        );
    }
}

/// Positions of `n` particles on a simple cubic lattice of spacing `a` in `dim` dimensions,
/// filled in row-major order: a non-overlapping starting point for particle tests.
pub fn lattice(n: usize, dim: usize, a: f64) -> Vec<f64> {
    let side = (n as f64).powf(1.0 / dim as f64).ceil() as usize;
    let mut x = Vec::with_capacity(n * dim);
    for i in 0..n {
        let mut rest = i;
        for _ in 0..dim {
            x.push((rest % side) as f64 * a);
            rest /= side;
        }
    }
    x
}

/// A tiny deterministic generator for test configurations (SplitMix64), so that tests do
/// not depend on any RNG crate's stream.
pub struct TestRng(pub u64);

impl TestRng {
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}
