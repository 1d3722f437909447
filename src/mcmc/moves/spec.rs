//! The moves a config can name (`[[sample.moves]]`), their settings, and how each becomes a
//! [`Move`](super::Move) with the generator it needs.

use serde::{Deserialize, Serialize};

use super::{FlowIndependence, LatentWalk, Mala, ParticleWalk, RandomWalk, Scheduled, VaeMove};
use crate::error::{Error, Result};
use crate::generator::{Flow, Generator, Vae};

/// The kinds of move the sampler knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Gaussian random walk on all coordinates (needs `step`).
    RandomWalk,
    /// Gaussian random walk of one particle (needs `step` and `spatial_dim`).
    ParticleWalk,
    /// Metropolis-adjusted Langevin (needs `step`).
    Mala,
    /// Independence proposal from a generator with an exact density.
    Flow,
    /// Random walk in the latent space of a flow (needs `step`).
    LatentWalk,
    /// VAE proposal in the extended space (x, z).
    Vae,
    /// A move the caller supplies ([`Sampler::run_with_moves`](crate::mcmc::Sampler::run_with_moves));
    /// its spec gives the weight and, optionally, the step size and its adaptation.
    Custom,
}

impl MoveKind {
    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::RandomWalk => "random_walk",
            MoveKind::ParticleWalk => "particle_walk",
            MoveKind::Mala => "mala",
            MoveKind::Flow => "flow",
            MoveKind::LatentWalk => "latent_walk",
            MoveKind::Vae => "vae",
            MoveKind::Custom => "custom",
        }
    }

    /// Whether the move is served in batches by a learned generator.
    pub fn is_learned(self) -> bool {
        matches!(self, MoveKind::Flow | MoveKind::LatentWalk | MoveKind::Vae)
    }

    /// Whether the move takes a step size (a custom move may or may not).
    pub fn has_step(self) -> bool {
        !matches!(self, MoveKind::Flow | MoveKind::Vae | MoveKind::Custom)
    }
}

/// One move of the mixture: its kind, its weight and its step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveSpec {
    /// What kind of move.
    pub kind: MoveKind,
    /// Relative probability of choosing this move at a step.
    pub weight: f64,
    /// Initial step size (random walks, MALA, latent walk).
    #[serde(default)]
    pub step: Option<f64>,
    /// Coordinates per particle (particle walk).
    #[serde(default)]
    pub spatial_dim: Option<usize>,
    /// Adapt the step towards this acceptance rate during burn-in; `None` keeps it fixed.
    #[serde(default)]
    pub target_acceptance: Option<f64>,
}

impl MoveSpec {
    /// A move of `kind` with weight `weight`, no step and no adaptation.
    pub fn new(kind: MoveKind, weight: f64) -> Self {
        Self {
            kind,
            weight,
            step: None,
            spatial_dim: None,
            target_acceptance: None,
        }
    }

    /// With initial step size `step`.
    pub fn with_step(mut self, step: f64) -> Self {
        self.step = Some(step);
        self
    }

    /// Adapting the step towards `target` during burn-in.
    pub fn adapting_to(mut self, target: f64) -> Self {
        self.target_acceptance = Some(target);
        self
    }

    /// Moving particles of `spatial_dim` coordinates (particle walk).
    pub fn with_spatial_dim(mut self, spatial_dim: usize) -> Self {
        self.spatial_dim = Some(spatial_dim);
        self
    }

    /// Checks the spec for a system of `dim` coordinates (`index` names it in errors).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `moves[index]` and the field.
    pub fn validate(&self, index: usize, dim: usize) -> Result<()> {
        let bad = |message: String| {
            Err(Error::InvalidArgument {
                name: format!("moves[{index}] ({})", self.kind.name()),
                message,
            })
        };
        if !(self.weight > 0.0 && self.weight.is_finite()) {
            return bad(format!("weight must be positive, got {}", self.weight));
        }
        let has_step =
            self.kind.has_step() || (self.kind == MoveKind::Custom && self.step.is_some());
        match (has_step, self.step) {
            (true, None) if self.kind != MoveKind::Custom => return bad("needs a step size".into()),
            (true, Some(s)) if !(s > 0.0 && s.is_finite()) => {
                return bad(format!("step must be positive, got {s}"))
            }
            (false, Some(_)) => return bad("takes no step size".into()),
            _ => {}
        }
        if let Some(t) = self.target_acceptance {
            if !has_step {
                return bad("has no step to adapt".into());
            }
            if !(t > 0.0 && t < 1.0) {
                return bad(format!("target_acceptance must be in (0, 1), got {t}"));
            }
        }
        match (self.kind, self.spatial_dim) {
            (MoveKind::ParticleWalk, Some(s)) if s > 0 && dim % s == 0 => Ok(()),
            (MoveKind::ParticleWalk, s) => bad(format!(
                "spatial_dim must divide the {dim} coordinates, got {s:?}"
            )),
            (_, Some(_)) => bad("spatial_dim belongs to particle_walk only".into()),
            _ => Ok(()),
        }
    }
    /// The move this spec describes, with the generator it needs from `learned` (drawing
    /// `buffer` configurations per generator call).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `moves[index]` for a learned move without its
    /// generator, or a generator without an exact density for `flow`; [`Error::Dimension`]
    /// for a generator of another dimension than `dim`.
    pub fn build<'a>(
        &self,
        index: usize,
        dim: usize,
        learned: Learned<'a>,
        buffer: usize,
    ) -> Result<Scheduled<'a>> {
        let missing = |what: &str| Error::InvalidArgument {
            name: format!("moves[{index}] ({})", self.kind.name()),
            message: format!("needs {what}"),
        };
        let check_dim = |got: usize| {
            if got == dim {
                Ok(())
            } else {
                Err(Error::Dimension {
                    what: format!("generator of moves[{index}] against the system"),
                    expected: dim,
                    got,
                })
            }
        };
        let step = self.step.unwrap_or(0.0);
        Ok(match self.kind {
            MoveKind::RandomWalk => Scheduled::PerChain(Box::new(RandomWalk { step })),
            MoveKind::ParticleWalk => Scheduled::PerChain(Box::new(ParticleWalk {
                step,
                spatial_dim: self.spatial_dim.unwrap_or(1),
            })),
            MoveKind::Mala => Scheduled::PerChain(Box::new(Mala { step })),
            MoveKind::Flow => {
                let g = learned
                    .independence
                    .ok_or_else(|| missing("a generator with an exact density"))?;
                if !g.exact_density() {
                    return Err(missing(
                        "a generator with an exact density (a VAE has none: use the vae move)",
                    ));
                }
                check_dim(g.dim())?;
                Scheduled::Batched(Box::new(FlowIndependence::new(g, buffer)?))
            }
            MoveKind::LatentWalk => {
                let f = learned.latent_flow.ok_or_else(|| missing("a flow"))?;
                check_dim(f.dim())?;
                Scheduled::Batched(Box::new(LatentWalk::new(f, step)))
            }
            MoveKind::Custom => {
                return Err(missing(
                    "to be supplied by the caller (Sampler::run_with_moves)",
                ))
            }
            MoveKind::Vae => {
                let v = learned.vae.ok_or_else(|| missing("a VAE"))?;
                check_dim(v.dim())?;
                Scheduled::Batched(Box::new(VaeMove::new(v, buffer)?))
            }
        })
    }
}

/// The learned generators a run may use; each learned move needs its own.
#[derive(Default, Clone, Copy)]
pub struct Learned<'a> {
    /// Generator of the `flow` independence move (must have an exact density).
    pub independence: Option<&'a dyn Generator>,
    /// Flow of the `latent_walk` move.
    pub latent_flow: Option<&'a Flow>,
    /// VAE of the `vae` move.
    pub vae: Option<&'a Vae>,
}

impl<'a> Learned<'a> {
    /// No generator: local moves only.
    pub fn none() -> Self {
        Self::default()
    }

    /// One flow for both the independence and the latent-walk moves.
    pub fn flow(flow: &'a Flow) -> Self {
        Self {
            independence: Some(flow),
            latent_flow: Some(flow),
            vae: None,
        }
    }

    /// With a VAE for the `vae` move.
    pub fn with_vae(mut self, vae: &'a Vae) -> Self {
        self.vae = Some(vae);
        self
    }
}
