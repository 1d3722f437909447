//! Isotropic Gaussian mixtures, including the GMM-40 benchmark.

use std::path::Path;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use crate::error::{invalid, PotentialError, Result};
use crate::potential::Potential;
use crate::quadrature::log_sum_exp;
use crate::reference::{ExactLogZ, ExactSampler};

/// The 40 means of GMM-40, embedded from `potentials/data/gmm40_means.csv`.
const GMM40_MEANS_CSV: &str = include_str!("../data/gmm40_means.csv");

/// Component standard deviation of GMM-40: softplus(1) = ln(1 + e).
pub const GMM40_STD: f64 = 1.313_261_687_518_222_7;

/// `U(x) = −ln Σ_k w_k 𝒩(x; μ_k, σ² I)`: an equal-weight, isotropic Gaussian mixture.
///
/// U is the negative log of a normalised density, so `ln Z = 0` at β = 1 and exact samples
/// are drawn by picking a component and adding Gaussian noise. At other β the density is a
/// power of a mixture, with no closed form: the exact references then report
/// `NoExactReference`.
///
/// ```
/// use boltzgen_potentials::{GaussianMixture, Potential, ExactLogZ};
/// let gmm = GaussianMixture::gmm40();
/// assert_eq!(gmm.n_components(), 40);
/// assert_eq!(gmm.log_z(1.0).unwrap(), 0.0);
/// assert!(gmm.energy(&[0.0, 0.0]).unwrap().is_finite());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianMixture {
    dim: usize,
    /// Row-major `[K × dim]`.
    means: Vec<f64>,
    std: f64,
}

impl GaussianMixture {
    /// A mixture of `means.len() / dim` equal-weight components with standard deviation `std`.
    ///
    /// # Errors
    /// `InvalidParameter` for an empty or ragged mean table, non-finite means, or `std ≤ 0`.
    pub fn new(dim: usize, means: Vec<f64>, std: f64) -> Result<Self> {
        if dim == 0 {
            return Err(invalid("dim", "must be positive"));
        }
        if means.is_empty() || means.len() % dim != 0 {
            return Err(invalid(
                "means",
                format!(
                    "need a non-empty [K × {dim}] table, got {} values",
                    means.len()
                ),
            ));
        }
        if means.iter().any(|m| !m.is_finite()) {
            return Err(invalid("means", "must be finite"));
        }
        if !(std > 0.0 && std.is_finite()) {
            return Err(invalid(
                "std",
                format!("must be positive and finite, got {std}"),
            ));
        }
        Ok(Self { dim, means, std })
    }

    /// GMM-40: 40 components in 2-D with the standard means and σ = ln(1 + e).
    pub fn gmm40() -> Self {
        let means = parse_means_csv(GMM40_MEANS_CSV, Path::new("gmm40_means.csv"))
            .expect("the embedded GMM-40 table is valid");
        Self::new(2, means, GMM40_STD).expect("the embedded GMM-40 table is valid")
    }

    /// Reads means from a CSV file with a header line and one component per row.
    ///
    /// # Errors
    /// `Io` if the file cannot be read, `Parse` naming the line of a malformed row.
    pub fn from_csv(path: &Path, std: f64) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PotentialError::Io {
            path: path.to_owned(),
            source,
        })?;
        let means = parse_means_csv(&text, path)?;
        let dim = text
            .lines()
            .next()
            .map(|header| header.split(',').count())
            .unwrap_or(0);
        Self::new(dim, means, std)
    }

    /// Number of components K.
    pub fn n_components(&self) -> usize {
        self.means.len() / self.dim
    }

    /// The means, row-major `[K × dim]`.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// The component standard deviation.
    pub fn std(&self) -> f64 {
        self.std
    }

    /// Index of the component with the largest responsibility for `x` (nearest mean, since
    /// the weights and widths are equal). Used to count mode coverage.
    pub fn nearest_component(&self, x: &[f64]) -> usize {
        self.means
            .chunks_exact(self.dim)
            .map(|m| m.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |best, (k, d2)| if d2 < best.1 { (k, d2) } else { best },
            )
            .0
    }

    /// `ln w_k 𝒩(x; μ_k, σ²I)` for each component, into `out`.
    fn component_log_densities(&self, x: &[f64], out: &mut Vec<f64>) {
        let var = self.std * self.std;
        let log_norm = -(self.n_components() as f64).ln()
            - 0.5 * self.dim as f64 * (2.0 * std::f64::consts::PI * var).ln();
        out.clear();
        out.extend(self.means.chunks_exact(self.dim).map(|m| {
            let d2: f64 = m.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
            log_norm - 0.5 * d2 / var
        }));
    }
}

fn parse_means_csv(text: &str, path: &Path) -> Result<Vec<f64>> {
    let mut lines = text.lines().enumerate();
    let columns = match lines.next() {
        Some((_, header)) => header.split(',').count(),
        None => {
            return Err(PotentialError::Parse {
                path: path.to_owned(),
                line: 1,
                message: "empty file, expected a header line".into(),
            })
        }
    };
    let mut means = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != columns {
            return Err(PotentialError::Parse {
                path: path.to_owned(),
                line: i + 1,
                message: format!("expected {columns} columns, found {}", fields.len()),
            });
        }
        for f in fields {
            let v: f64 = f.trim().parse().map_err(|_| PotentialError::Parse {
                path: path.to_owned(),
                line: i + 1,
                message: format!("`{f}` is not a number"),
            })?;
            means.push(v);
        }
    }
    Ok(means)
}

impl Potential for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> &str {
        "gmm"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        let mut logs = Vec::with_capacity(self.n_components());
        self.component_log_densities(x, &mut logs);
        -log_sum_exp(&logs)
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let mut logs = Vec::with_capacity(self.n_components());
        self.component_log_densities(x, &mut logs);
        let log_p = log_sum_exp(&logs);
        // ∇U = Σ_k r_k (x − μ_k) / σ², with responsibilities r_k = w_k 𝒩_k / p.
        let var = self.std * self.std;
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (m, l) in self.means.chunks_exact(self.dim).zip(&logs) {
            let r = (l - log_p).exp();
            for ((g, xi), mi) in grad.iter_mut().zip(x).zip(m) {
                *g += r * (xi - mi) / var;
            }
        }
        -log_p
    }
}

impl ExactLogZ for GaussianMixture {
    fn log_z(&self, beta: f64) -> Result<f64> {
        if beta == 1.0 {
            Ok(0.0)
        } else {
            Err(PotentialError::NoExactReference(format!(
                "a Gaussian mixture has a closed-form log Z only at beta = 1, not {beta}"
            )))
        }
    }
}

impl ExactSampler for GaussianMixture {
    fn sample_exact<R: Rng + ?Sized>(&self, beta: f64, n: usize, rng: &mut R) -> Result<Vec<f64>> {
        self.log_z(beta)?;
        let k = self.n_components();
        let mut out = Vec::with_capacity(n * self.dim);
        for _ in 0..n {
            let c = rng.random_range(0..k);
            for &m in &self.means[c * self.dim..(c + 1) * self.dim] {
                let eps: f64 = StandardNormal.sample(rng);
                out.push(m + self.std * eps);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmm40_std_is_softplus_one() {
        assert!((GMM40_STD - (1.0 + std::f64::consts::E).ln()).abs() < 1e-15);
    }

    #[test]
    fn bad_csv_names_the_line() {
        let err = parse_means_csv("x,y\n1,2\n3,abc\n", Path::new("m.csv")).unwrap_err();
        assert_eq!(err.to_string(), "m.csv:3: `abc` is not a number");
        let err = parse_means_csv("x,y\n1,2,3\n", Path::new("m.csv")).unwrap_err();
        assert!(err.to_string().contains("m.csv:2"), "{err}");
    }
}
