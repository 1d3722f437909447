//! Potential energies U(x) for boltzgen, and the exact references that judge samplers.
//!
//! Everything here is plain Rust (no tch, no chemfiles), so host Monte Carlo codes can use the
//! potentials alone. Every potential implements [`Potential`]: energies and gradients on flat
//! `f64` configurations, checked for length and finiteness, batched in parallel with rayon.
//!
//! | type | U(x) | exact reference |
//! |---|---|---|
//! | [`DoubleWell2D`] | `a x⁴ − b x² + c x + ½ d y²` | log Z, x-marginal, samples |
//! | [`MullerBrown`] | four-term Müller–Brown × scale | log Z by 2-D quadrature |
//! | [`ManyWell`] | d/2 pairs of `x⁴ − 6x² − 0.5x + ½y²` | log Z, samples |
//! | [`GaussianMixture`] | GMM-40 and friends | log Z = 0, samples (β = 1) |
//! | [`Gaussian`] | `½ (x − μ)ᵀ P (x − μ)` | log Z, samples |
//! | [`ParticleDoubleWell`] | DW4 pair double well | — |
//! | [`LennardJonesCluster`] | LJ13 / LJ55 with COM restraint | — |
//! | [`LennardJonesFluid`] | periodic LJ with a cell list | O(N²) reference |
//! | [`OpenMmForceField`] | bonds, angles, torsions, Coulomb + LJ from an OpenMM System XML | OpenMM's energies (tests) |
//!
//! ```
//! use boltzgen_potentials::{ManyWell, Potential};
//! let mw = ManyWell::new(4).unwrap();
//! let xs = vec![0.0; 3 * 4]; // three configurations
//! let mut u = vec![0.0; 3];
//! mw.energies(&xs, &mut u).unwrap();
//! assert_eq!(u, vec![0.0; 3]);
//! assert!(mw.energy(&[0.0, f64::NAN, 0.0, 0.0]).is_err());
//! ```
#![warn(missing_docs)]

mod double_well;
mod dw4;
mod error;
mod gaussian;
mod gmm;
mod lj_cluster;
mod lj_fluid;
mod many_well;
mod muller_brown;
pub mod openmm;
mod particles;
mod potential;
pub mod quadrature;
mod reference;
mod regularizer;

pub use double_well::DoubleWell2D;
pub use dw4::ParticleDoubleWell;
pub use error::{PotentialError, Result};
pub use gaussian::Gaussian;
pub use gmm::{GaussianMixture, GMM40_STD};
pub use lj_cluster::LennardJonesCluster;
pub use lj_fluid::LennardJonesFluid;
pub use many_well::ManyWell;
pub use muller_brown::MullerBrown;
pub use openmm::{EnergyTerms, OpenMmForceField};
pub use potential::{check_configuration, Potential};
pub use reference::{ExactLogZ, ExactSampler};
pub use regularizer::EnergyRegularizer;
