//! The Müller–Brown potential, a classic 2-D landscape with three minima.

use crate::error::{invalid, Result};
use crate::potential::Potential;
use crate::quadrature::{check_beta, log_integrate_2d};
use crate::reference::ExactLogZ;

/// Prefactors A_k of the four Gaussian-like terms.
const A: [f64; 4] = [-200.0, -100.0, -170.0, 15.0];
const AX: [f64; 4] = [-1.0, -1.0, -6.5, 0.7];
const BXY: [f64; 4] = [0.0, 0.0, 11.0, 0.6];
const CY: [f64; 4] = [-10.0, -10.0, -6.5, 0.7];
const X0: [f64; 4] = [1.0, 0.0, -0.5, -1.0];
const Y0: [f64; 4] = [0.0, 0.5, 1.5, 1.0];

/// `U(x, y) = s Σ_{k=1}^{4} A_k exp[a_k (x − x⁰_k)² + b_k (x − x⁰_k)(y − y⁰_k) + c_k (y − y⁰_k)²]`
///
/// with the standard parameters A = (−200, −100, −170, 15), a = (−1, −1, −6.5, 0.7),
/// b = (0, 0, 11, 0.6), c = (−10, −10, −6.5, 0.7), x⁰ = (1, 0, −0.5, −1), y⁰ = (0, 0.5, 1.5, 1)
/// and a scale factor s (s = 0.1 with β = 1 is a common sampling benchmark). The global
/// minimum is near (−0.558, 1.442) with U ≈ −146.70 s.
///
/// ```
/// use boltzgen_potentials::{MullerBrown, Potential};
/// let mb = MullerBrown::new(1.0).unwrap();
/// let u = mb.energy(&[-0.558224, 1.441726]).unwrap();
/// assert!((u + 146.699).abs() < 1e-3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MullerBrown {
    scale: f64,
}

impl MullerBrown {
    /// Müller–Brown multiplied by `scale` (> 0).
    ///
    /// # Errors
    /// `InvalidParameter` for a non-positive or non-finite scale.
    pub fn new(scale: f64) -> Result<Self> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(invalid(
                "scale",
                format!("must be positive and finite, got {scale}"),
            ));
        }
        Ok(Self { scale })
    }

    /// The scale factor s.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// A rectangle outside which `βU − βU_min > 60`: the integration box of [`ExactLogZ`].
    pub fn integration_box(&self, beta: f64) -> ((f64, f64), (f64, f64)) {
        let u_min = self.compute_energy(&[-0.558224, 1.441726]);
        let (mut x, mut y) = ((-2.0, 1.5), (-0.7, 2.2));
        // Grow the box until its whole boundary is 60 kT above the global minimum. The fourth
        // term grows without bound in every direction, so this terminates.
        for _ in 0..100 {
            let edge_min = boundary_points(x, y, 400)
                .map(|(px, py)| self.compute_energy(&[px, py]))
                .fold(f64::INFINITY, f64::min);
            if beta * (edge_min - u_min) > 60.0 {
                break;
            }
            x = (x.0 - 0.5, x.1 + 0.5);
            y = (y.0 - 0.5, y.1 + 0.5);
        }
        (x, y)
    }
}

fn boundary_points(
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    n: usize,
) -> impl Iterator<Item = (f64, f64)> {
    (0..=n).flat_map(move |i| {
        let t = i as f64 / n as f64;
        let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        [(x, y0), (x, y1), (x0, y), (x1, y)]
    })
}

impl Potential for MullerBrown {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> &str {
        "muller_brown"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        let mut u = 0.0;
        for k in 0..4 {
            let (dx, dy) = (x[0] - X0[k], x[1] - Y0[k]);
            u += A[k] * (AX[k] * dx * dx + BXY[k] * dx * dy + CY[k] * dy * dy).exp();
        }
        self.scale * u
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let (mut u, mut gx, mut gy) = (0.0, 0.0, 0.0);
        for k in 0..4 {
            let (dx, dy) = (x[0] - X0[k], x[1] - Y0[k]);
            let term = A[k] * (AX[k] * dx * dx + BXY[k] * dx * dy + CY[k] * dy * dy).exp();
            u += term;
            gx += term * (2.0 * AX[k] * dx + BXY[k] * dy);
            gy += term * (BXY[k] * dx + 2.0 * CY[k] * dy);
        }
        grad[0] = self.scale * gx;
        grad[1] = self.scale * gy;
        self.scale * u
    }
}

impl ExactLogZ for MullerBrown {
    /// Tensor-product Simpson on 1200 × 1200 intervals over [`MullerBrown::integration_box`].
    fn log_z(&self, beta: f64) -> Result<f64> {
        check_beta(beta)?;
        let (xr, yr) = self.integration_box(beta);
        Ok(log_integrate_2d(
            |x, y| -beta * self.compute_energy(&[x, y]),
            xr,
            yr,
            1200,
        ))
    }
}
