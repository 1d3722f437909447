//! Which coordinates a coupling layer transforms and which it conditions on.

use tch::{Device, Kind, Tensor};

/// A partition of the coordinates `0..dim` into a conditioning set A and a transformed set B,
/// with the index tensors that split a batch and put it back together.
#[derive(Debug)]
pub(crate) struct Split {
    conditioning: Tensor,
    transformed: Tensor,
    /// Column order that maps `[A | B]` back to `0..dim`.
    restore: Tensor,
    n_conditioning: usize,
    n_transformed: usize,
    /// When both sets are contiguous ranges (the alternating halves of the standard flows),
    /// whether the conditioning block comes first: split and join are then `narrow` (views)
    /// and `cat`, avoiding two gathers and two scatters (in autograd's backward) per layer.
    contiguous: Option<bool>,
}

impl Split {
    /// `transformed` must be a non-empty proper subset of `0..dim` without repeats (checked by
    /// the config's validation).
    pub(crate) fn new(dim: usize, transformed: &[usize], device: Device) -> Self {
        let conditioning: Vec<i64> = (0..dim)
            .filter(|i| !transformed.contains(i))
            .map(|i| i as i64)
            .collect();
        let transformed: Vec<i64> = transformed.iter().map(|&i| i as i64).collect();
        let mut restore = vec![0i64; dim];
        for (position, &column) in conditioning.iter().chain(&transformed).enumerate() {
            restore[column as usize] = position as i64;
        }
        let is_range = |v: &[i64]| v.windows(2).all(|w| w[1] == w[0] + 1);
        let contiguous = (is_range(&conditioning) && is_range(&transformed)).then(|| {
            // Two contiguous blocks covering 0..dim: one of them starts at 0.
            conditioning.first() == Some(&0)
        });
        let to = |v: &[i64]| Tensor::from_slice(v).to_kind(Kind::Int64).to_device(device);
        Self {
            contiguous,
            n_conditioning: conditioning.len(),
            n_transformed: transformed.len(),
            conditioning: to(&conditioning),
            transformed: to(&transformed),
            restore: to(&restore),
        }
    }

    pub(crate) fn conditioning_len(&self) -> usize {
        self.n_conditioning
    }

    pub(crate) fn transformed_len(&self) -> usize {
        self.n_transformed
    }

    /// `(x_A, x_B)`.
    pub(crate) fn split(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (a, b) = (self.n_conditioning as i64, self.n_transformed as i64);
        match self.contiguous {
            Some(true) => (x.narrow(1, 0, a), x.narrow(1, a, b)),
            Some(false) => (x.narrow(1, b, a), x.narrow(1, 0, b)),
            None => (
                x.index_select(1, &self.conditioning),
                x.index_select(1, &self.transformed),
            ),
        }
    }

    /// The inverse of [`split`](Self::split).
    pub(crate) fn join(&self, a: &Tensor, b: &Tensor) -> Tensor {
        match self.contiguous {
            Some(true) => Tensor::cat(&[a, b], 1),
            Some(false) => Tensor::cat(&[b, a], 1),
            None => Tensor::cat(&[a, b], 1).index_select(1, &self.restore),
        }
    }
}
