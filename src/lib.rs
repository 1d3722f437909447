//! boltzgen: learned samplers (normalizing flows, VAEs) coupled to exact Metropolis–Hastings
//! for molecular simulation.
//!
//! This crate holds the generators, training, sampling, reweighting, I/O and the CLI; the
//! potentials U(x) live in the tch-free crate [`boltzgen_potentials`], re-exported here as
//! [`potentials`].
//!
//! Host Monte Carlo codes that keep their own energies and moves take learned proposals from
//! [`engine::ProposalEngine`] (its module docs hold a complete, tested host loop), or through
//! the C ABI (`capi`, crate feature `capi`, header `include/boltzgen.h`).
#![warn(missing_docs)]

#[cfg(feature = "capi")]
pub mod capi;
pub mod config;
pub mod diagnostics;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod generator;
pub mod io;
pub mod mcmc;
pub mod molecule;
#[cfg(feature = "mpi")]
pub mod mpi_ranks;
pub mod pipeline;
pub mod reweight;
pub mod rng;
pub mod train;

pub use boltzgen_potentials as potentials;
pub use error::{Error, Result};
