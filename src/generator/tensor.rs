//! Conversions between `f64` slices at the boundary and tensors inside the generators.

use rand_distr::{Distribution, StandardNormal};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::rng::ChainRng;

/// A `[n × dim]` tensor of the given kind and device from a row-major slice, checking shape
/// and finiteness first (user data reaches this).
pub(crate) fn batch_to_tensor(x: &[f64], dim: usize, kind: Kind, device: Device) -> Result<Tensor> {
    if dim == 0 || x.len() % dim != 0 {
        return Err(Error::Dimension {
            what: "configuration batch (length must be a multiple of the model dimension)".into(),
            expected: dim,
            got: x.len(),
        });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "coordinate".into(),
            index,
        });
    }
    let n = (x.len() / dim) as i64;
    Tensor::f_from_slice(x)
        .and_then(|t| t.f_reshape([n, dim as i64]))
        .and_then(|t| t.f_to_kind(kind))
        .and_then(|t| t.f_to_device(device))
        .map_err(Error::torch("copying a batch to the model"))
}

/// Copies any tensor to a host `Vec<f64>` (flattened).
pub(crate) fn tensor_to_vec(t: &Tensor) -> Result<Vec<f64>> {
    t.f_to_kind(Kind::Double)
        .and_then(|t| t.f_to_device(Device::Cpu))
        .and_then(|t| t.f_flatten(0, -1))
        .and_then(|t| Vec::<f64>::try_from(&t))
        .map_err(Error::torch("copying a tensor to the host"))
}

/// `[n × dim]` standard-normal noise drawn from the caller's stream (never libtorch's global
/// generator), so that samples are reproducible from the seed alone and identical on CPU and
/// GPU.
pub(crate) fn standard_normal(
    n: usize,
    dim: usize,
    rng: &mut ChainRng,
    kind: Kind,
    device: Device,
) -> Result<Tensor> {
    let z: Vec<f64> = (0..n * dim).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::f_from_slice(&z)
        .and_then(|t| t.f_reshape([n as i64, dim as i64]))
        .and_then(|t| t.f_to_kind(kind))
        .and_then(|t| t.f_to_device(device))
        .map_err(Error::torch("copying latent noise to the model"))
}
