//! Bring your own PyTorch flow: a TorchScript module used as a [`Generator`].
//!
//! Most flows in this field are trained in PyTorch. A module exported with `torch.jit.script`
//! (or `torch.jit.trace` of a wrapper) that has two methods,
//!
//! - `sample(self, n: int) -> Tuple[Tensor, Tensor]`: `n` configurations `[n, dim]` and their
//!   `log q` `[n]`;
//! - `log_prob(self, x: Tensor) -> Tensor`: `log q` `[n]` of a batch `[n, dim]`;
//!
//! both exported (`@torch.jit.export`), can drive boltzgen's proposals and reweighting as it
//! is. The module's dtype (float32 or float64) is kept: batches are converted to it on the way
//! in and to `f64` on the way out.
//!
//! **Randomness.** A TorchScript `sample` draws from libtorch's global generator. To keep "the
//! same seed gives the same samples", every `sample` call first reseeds that generator
//! (`torch.manual_seed`) with a number drawn from the caller's stream. The global generator is
//! process-wide: other code that draws from it between boltzgen's calls does not change
//! boltzgen's samples, but boltzgen's reseeding does change what that code sees next.
//!
//! **Exactness.** boltzgen cannot verify that `log_prob` is the exact density of `sample`; it
//! checks shapes and that `log_prob(sample(n).x)` matches the reported `log q` when the module
//! is loaded, and it treats the density as exact ([`Generator::exact_density`]).

use std::path::{Path, PathBuf};

use rand::RngExt;
use tch::{CModule, Device, IValue, Kind, Tensor};

use super::tensor::{batch_to_tensor, tensor_to_vec};
use super::{DeviceChoice, Generator, Samples};
use crate::error::{Error, Result};
use crate::rng::ChainRng;

/// A TorchScript module with `sample(n)` and `log_prob(x)` methods (see the module docs).
pub struct TorchScriptGenerator {
    module: CModule,
    file: PathBuf,
    dim: usize,
    kind: Kind,
    device: Device,
}

impl std::fmt::Debug for TorchScriptGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchScriptGenerator")
            .field("file", &self.file)
            .field("dim", &self.dim)
            .field("kind", &self.kind)
            .field("device", &self.device)
            .finish()
    }
}

/// Relative agreement required between `sample`'s `log q` and `log_prob` of the same draws
/// when a module is loaded: a float32 module cannot do better than about 1e-5.
fn consistency_tolerance(kind: Kind) -> f64 {
    match kind {
        Kind::Double => 1e-8,
        _ => 1e-3,
    }
}

impl TorchScriptGenerator {
    /// Loads `path` onto the chosen device and probes it. A TorchScript file is code, not
    /// data: loading it runs that code with the caller's rights, so call this only with a
    /// path the user named and trusts (boltzgen never looks for one by itself). The probe: `sample(4)` must return
    /// `([4, dim], [4])` in a floating dtype, and `log_prob` of those draws must agree with
    /// their `log q`.
    ///
    /// # Errors
    /// [`Error::Model`] naming the file for a file libtorch cannot load, a missing method, or
    /// outputs of the wrong shape, dtype or value.
    pub fn load(path: &Path, device: DeviceChoice) -> Result<Self> {
        let device = device.device()?;
        let model_error = |message: String| Error::Model {
            file: path.to_owned(),
            message,
        };
        if !path.is_file() {
            return Err(model_error("no such TorchScript file".into()));
        }
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            model_error(format!(
                "not a TorchScript module libtorch can load ({})",
                first_line(&e.to_string())
            ))
        })?;
        module.set_eval();
        let mut generator = Self {
            module,
            file: path.to_owned(),
            dim: 0,
            kind: Kind::Float,
            device,
        };
        // The probe's seed is fixed: loading must not depend on anyone's stream.
        tch::manual_seed(0x5EED);
        let (x, log_q) = generator.call_sample(4)?;
        let size = x.size();
        if size.len() != 2 || size[0] != 4 || size[1] < 1 {
            return Err(model_error(format!(
                "`sample(4)` returned x of shape {size:?}; expected [4, dim]"
            )));
        }
        generator.dim = size[1] as usize;
        generator.kind = x.kind();
        if !matches!(generator.kind, Kind::Float | Kind::Double) {
            return Err(model_error(format!(
                "`sample` returned x of dtype {:?}; expected float32 or float64",
                generator.kind
            )));
        }
        let reported = tensor_to_vec(&log_q)?;
        if reported.len() != 4 {
            return Err(model_error(format!(
                "`sample(4)` returned log_q of shape {:?}; expected [4]",
                log_q.size()
            )));
        }
        let x_host = tensor_to_vec(&x)?;
        let recomputed = generator.log_prob(&x_host)?;
        let tol = consistency_tolerance(generator.kind);
        for (i, (a, b)) in reported.iter().zip(&recomputed).enumerate() {
            if !(a.is_finite() && (a - b).abs() <= tol * (1.0 + a.abs())) {
                return Err(model_error(format!(
                    "`log_prob` disagrees with the log_q that `sample` reported for draw {i}: \
                     {b} vs {a}; boltzgen needs log_prob to be the exact density of sample"
                )));
            }
        }
        Ok(generator)
    }

    /// The file the module was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn call_sample(&self, n: usize) -> Result<(Tensor, Tensor)> {
        let model_error = |message: String| Error::Model {
            file: self.file.clone(),
            message,
        };
        let out = tch::no_grad(|| self.module.method_is("sample", &[IValue::Int(n as i64)]))
            .map_err(|e| {
                model_error(format!(
                    "calling `sample({n})` failed: {}",
                    first_line(&e.to_string())
                ))
            })?;
        match out {
            IValue::Tuple(mut parts) if parts.len() == 2 => {
                let log_q = parts.pop();
                let x = parts.pop();
                match (x, log_q) {
                    (Some(IValue::Tensor(x)), Some(IValue::Tensor(log_q))) => Ok((x, log_q)),
                    _ => Err(model_error(
                        "`sample` must return a tuple of two tensors (x, log_q)".into(),
                    )),
                }
            }
            _ => Err(model_error(
                "`sample` must return a tuple of two tensors (x, log_q)".into(),
            )),
        }
    }

    fn check_rows(&self, what: &str, t: &Tensor, rows: usize, cols: Option<usize>) -> Result<()> {
        let size = t.size();
        let ok = match cols {
            Some(c) => size == [rows as i64, c as i64],
            None => size == [rows as i64],
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Model {
                file: self.file.clone(),
                message: format!(
                    "{what} has shape {size:?}; expected [{rows}{}]",
                    cols.map(|c| format!(", {c}")).unwrap_or_default()
                ),
            })
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

impl Generator for TorchScriptGenerator {
    fn dim(&self) -> usize {
        self.dim
    }

    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Samples> {
        // libtorch seeds are i64; keep the draw non-negative.
        tch::manual_seed((rng.random::<u64>() >> 1) as i64);
        let (x, log_q) = self.call_sample(n)?;
        self.check_rows("x from `sample`", &x, n, Some(self.dim))?;
        self.check_rows("log_q from `sample`", &log_q, n, None)?;
        Ok(Samples {
            dim: self.dim,
            x: tensor_to_vec(&x)?,
            log_q: tensor_to_vec(&log_q)?,
        })
    }

    fn log_prob(&self, x: &[f64]) -> Result<Vec<f64>> {
        let t = batch_to_tensor(x, self.dim, self.kind, self.device)?;
        let n = x.len() / self.dim;
        let log_q =
            tch::no_grad(|| self.module.method_ts("log_prob", &[t])).map_err(|e| Error::Model {
                file: self.file.clone(),
                message: format!("calling `log_prob` failed: {}", first_line(&e.to_string())),
            })?;
        self.check_rows("log_q from `log_prob`", &log_q, n, None)?;
        tensor_to_vec(&log_q)
    }

    fn exact_density(&self) -> bool {
        true
    }
}
