//! The one acceptance rule that every kernel uses.

/// `log α = −β [U(x′) − U(x)] + log q(x | x′) − log q(x′ | x)`.
///
/// Sign convention: `log_hastings = log q(x | x′) − log q(x′ | x)` (0 for symmetric proposals);
/// the move is accepted with probability `min(1, e^{log α})`. A proposal with infinite or NaN
/// energy, or a NaN Hastings term, gets `log α = −∞` and is always rejected.
///
/// ```
/// use boltzgen::mcmc::log_acceptance;
/// // Downhill by 2 at β = 0.5, symmetric proposal: log α = 1 (always accepted).
/// assert_eq!(log_acceptance(0.5, 3.0, 1.0, 0.0), 1.0);
/// assert_eq!(log_acceptance(1.0, 0.0, f64::INFINITY, 0.0), f64::NEG_INFINITY);
/// ```
#[inline]
pub fn log_acceptance(beta: f64, u_current: f64, u_proposed: f64, log_hastings: f64) -> f64 {
    if u_proposed.is_nan() || u_proposed == f64::INFINITY || log_hastings.is_nan() {
        return f64::NEG_INFINITY;
    }
    -beta * (u_proposed - u_current) + log_hastings
}

/// Accepts when `ln u < log α` for a uniform draw `u ∈ [0, 1)`.
#[inline]
pub fn accept(log_alpha: f64, uniform: f64) -> bool {
    // ln u < 0 ≤ log α for every u in [0, 1): no logarithm needed when log α ≥ 0.
    log_alpha >= 0.0 || uniform.ln() < log_alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_and_edge_cases() {
        assert_eq!(log_acceptance(2.0, 1.0, 2.0, 0.5), -1.5);
        assert_eq!(log_acceptance(1.0, 1.0, f64::NAN, 0.0), f64::NEG_INFINITY);
        assert_eq!(log_acceptance(1.0, 1.0, 0.0, f64::NAN), f64::NEG_INFINITY);
        assert!(accept(0.0, 0.999_999));
        assert!(!accept(f64::NEG_INFINITY, 0.0));
        assert!(!accept((0.3f64).ln(), 0.3));
        assert!(accept((0.3f64).ln(), 0.299));
    }
}
