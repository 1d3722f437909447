//! A fingerprint of the generators behind a run's cached terms, so that a resume with another
//! model drops them instead of using a stale log q in a Hastings term.

use crate::error::Result;
use crate::generator::Generator;
use crate::mcmc::moves::Learned;

/// A fingerprint of the learned generators: `log q` (rounded to f32, so that the last bits of
/// libtorch's sums do not matter) of a few fixed probe configurations, FNV-1a hashed. Two
/// different models agree on it only by an extraordinary coincidence.
pub(crate) fn generator_fingerprint(learned: Learned, dim: usize) -> Result<Option<u64>> {
    let generators: [(u8, Option<&dyn Generator>); 3] = [
        (1, learned.independence),
        (2, learned.latent_flow.map(|f| f as &dyn Generator)),
        (3, learned.vae.map(|v| v as &dyn Generator)),
    ];
    if generators.iter().all(|(_, g)| g.is_none()) {
        return Ok(None);
    }
    let probes: Vec<f64> = (0..4 * dim)
        .map(|i| 0.5 * (0.7 * i as f64 + 0.1).sin() + 0.3)
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (tag, g) in generators {
        if let Some(g) = g {
            feed(&[tag]);
            feed(&(g.dim() as u64).to_le_bytes());
            if g.dim() == dim {
                for v in g.log_prob(&probes)? {
                    feed(&(v as f32).to_bits().to_le_bytes());
                }
            }
        }
    }
    Ok(Some(hash))
}
