//! Rational-quadratic spline coupling (neural spline flows, Durkan et al. 2019).

use tch::{nn, Kind, Tensor};

use super::split::Split;
use crate::generator::mlp::{Activation, Mlp};

/// Smallest bin width and height, as a fraction of the interval: keeps every bin invertible
/// and the slopes bounded.
const MIN_BIN: f64 = 1e-3;
/// Smallest knot derivative.
const MIN_DERIVATIVE: f64 = 1e-3;

/// Each transformed coordinate passes through a monotone rational-quadratic spline on
/// `[−B, B]` with K bins whose widths, heights and knot derivatives come from a conditioner
/// network of the other coordinates. Outside `[−B, B]` the map is the identity, and the
/// boundary derivatives are fixed at 1 so the map is C¹ across ±B.
///
/// The last conditioner layer starts at zero, and the derivative parameters are offset so
/// that zero means slope 1: a new layer is exactly the identity.
#[derive(Debug)]
pub(crate) struct SplineCoupling {
    split: Split,
    net: Mlp,
    bins: usize,
    tail_bound: f64,
}

/// The spline of one batch: knots and slopes, each `[n, d_B, ·]`.
struct Knots {
    /// `[.., K + 1]`, from −B to B.
    cum_widths: Tensor,
    cum_heights: Tensor,
    /// `[.., K + 1]`, with the boundary values 1.
    derivatives: Tensor,
}

impl SplineCoupling {
    pub(crate) fn new(
        path: &nn::Path,
        split: Split,
        hidden: &[usize],
        bins: usize,
        tail_bound: f64,
        activation: Activation,
    ) -> Self {
        let out = split.transformed_len() * (3 * bins - 1);
        let net = Mlp::new(path, split.conditioning_len(), hidden, out, activation);
        Self {
            split,
            net,
            bins,
            tail_bound,
        }
    }

    fn knots(&self, conditioning: &Tensor) -> Knots {
        let n = conditioning.size()[0];
        let d = self.split.transformed_len() as i64;
        let k = self.bins as i64;
        let params = self.net.forward(conditioning).reshape([n, d, 3 * k - 1]);
        let widths = params.narrow(2, 0, k);
        let heights = params.narrow(2, k, k);
        let derivs = params.narrow(2, 2 * k, k - 1);
        let b = self.tail_bound;
        let cumulative = |raw: &Tensor| {
            let p = raw.softmax(-1, raw.kind());
            let p = p * (1.0 - MIN_BIN * k as f64) + MIN_BIN;
            let cum = p.cumsum(-1, p.kind());
            let cum = Tensor::cat(&[cum.zeros_like().narrow(2, 0, 1), cum], 2);
            // Pin the end knots exactly at ±B: the cumulative sum may miss 1 by rounding.
            let cum = cum * (2.0 * b) - b;
            let inner = cum.narrow(2, 1, k - 1);
            let lo = inner.full_like(-b).narrow(2, 0, 1);
            let hi = inner.full_like(b).narrow(2, 0, 1);
            Tensor::cat(&[lo, inner, hi], 2)
        };
        // softplus(p + c) + min = 1 at p = 0.
        let offset = ((1.0 - MIN_DERIVATIVE).exp() - 1.0).ln();
        let inner = (derivs + offset).softplus() + MIN_DERIVATIVE;
        let ones = inner.ones_like().narrow(2, 0, 1);
        Knots {
            cum_widths: cumulative(&widths),
            cum_heights: cumulative(&heights),
            derivatives: Tensor::cat(&[&ones, &inner, &ones], 2),
        }
    }

    pub(crate) fn forward(&self, z: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(z);
        let knots = self.knots(&cond);
        let (out, logdet) = self.spline(&moved, &knots, false);
        (
            self.split.join(&cond, &out),
            logdet.sum_dim_intlist(1, false, Kind::Double),
        )
    }

    pub(crate) fn inverse(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (cond, moved) = self.split.split(x);
        let knots = self.knots(&cond);
        let (out, logdet) = self.spline(&moved, &knots, true);
        (
            self.split.join(&cond, &out),
            logdet.sum_dim_intlist(1, false, Kind::Double),
        )
    }

    /// Applies the spline (or its inverse) elementwise; returns the output and the
    /// per-element log-derivative of the map that was applied.
    fn spline(&self, input: &Tensor, knots: &Knots, inverse: bool) -> (Tensor, Tensor) {
        let b = self.tail_bound;
        let inside = input.ge(-b).logical_and(&input.le(b));
        // Evaluate the spline on a clamped copy, so the branch that `where` discards stays
        // finite (a NaN there would still poison the gradient).
        let x = input.clamp(-b, b).unsqueeze(-1);
        let k = self.bins as i64;

        // Bin of each input: the number of knots at or below it, minus one.
        let search = if inverse {
            &knots.cum_heights
        } else {
            &knots.cum_widths
        };
        let bin = x
            .ge_tensor(&search.narrow(2, 0, k))
            .sum_dim_intlist(-1, true, Kind::Int64)
            .f_sub_scalar(1)
            .expect("integer subtraction")
            .clamp(0, k - 1);
        let pick = |t: &Tensor, offset: i64| t.gather(-1, &(&bin + offset), false);
        let x0 = pick(&knots.cum_widths, 0);
        let w = pick(&knots.cum_widths, 1) - &x0;
        let y0 = pick(&knots.cum_heights, 0);
        let h = pick(&knots.cum_heights, 1) - &y0;
        let d0 = pick(&knots.derivatives, 0);
        let d1 = pick(&knots.derivatives, 1);
        let slope = &h / &w;
        let curvature = &d1 + &d0 - &slope * 2.0;

        let theta = if inverse {
            // Solve the rational quadratic for θ: a θ² + b θ + c = 0. The root in [0, 1] is
            // 2c / (−b − √(b² − 4ac)); for b < 0 that form cancels catastrophically, and the
            // algebraically equal (−b + √(b² − 4ac)) / 2a is used instead. Each branch gets a
            // safe denominator, so the branch `where` discards cannot put NaN in a gradient.
            let dy = &x - &y0;
            let a = &h * (&slope - &d0) + &dy * &curvature;
            let bq = &h * &d0 - &dy * &curvature;
            let c = -(&slope * &dy);
            let root = (bq.square() - &a * &c * 4.0).clamp_min(0.0).sqrt();
            let positive_b = bq.ge(0.0);
            let one = bq.ones_like();
            let den_pos = (-&bq - &root).where_self(&positive_b, &one);
            let den_neg = (&a * 2.0).where_self(&positive_b.logical_not(), &one);
            let theta_pos = (&c * 2.0) / den_pos;
            let theta_neg = (-&bq + &root) / den_neg;
            theta_pos
                .where_self(&positive_b, &theta_neg)
                .clamp(0.0, 1.0)
        } else {
            ((&x - &x0) / &w).clamp(0.0, 1.0)
        };
        let one_minus = theta.ones_like() - &theta;
        let t1t = &theta * &one_minus;
        let denominator = &slope + &curvature * &t1t;
        let derivative_numerator = slope.square()
            * (&d1 * theta.square() + &slope * &t1t * 2.0 + &d0 * one_minus.square());
        let log_derivative = derivative_numerator.log() - denominator.log() * 2.0;

        let (out, log_derivative) = if inverse {
            (&theta * &w + &x0, -log_derivative)
        } else {
            let numerator = &h * (&slope * theta.square() + &d0 * &t1t);
            (&y0 + numerator / &denominator, log_derivative)
        };
        let out = out.squeeze_dim(-1);
        let log_derivative = log_derivative.squeeze_dim(-1);
        (
            out.where_self(&inside, input),
            log_derivative.where_self(&inside, &log_derivative.zeros_like()),
        )
    }
}
