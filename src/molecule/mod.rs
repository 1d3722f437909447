//! Molecular geometry: internal coordinates over a molecule's bond graph.
//!
//! [`ZMatrix`] maps Cartesian coordinates to bond lengths, angles and torsions plus the six
//! external degrees of freedom, with its exact log-Jacobian, in plain `f64`. It is the
//! reference for flows that work in internal coordinates while U(x) and the trajectories stay
//! Cartesian.

pub mod zmatrix;

pub use zmatrix::{Placement, ZMatrix};
