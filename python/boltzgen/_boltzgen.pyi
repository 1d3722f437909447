"""Type stubs of the extension module ``boltzgen._boltzgen`` (re-exported by ``boltzgen``)."""

import os
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__version__: str

_Array = npt.NDArray[np.float64]
_Path = str | os.PathLike[str]
_Config = _Path | dict[str, Any]
_Device = Literal["auto", "cpu", "cuda"]

class BoltzgenError(Exception): ...
class ConfigError(BoltzgenError): ...
class ModelError(BoltzgenError): ...
class TrajectoryError(BoltzgenError): ...
class TorchError(BoltzgenError): ...
class TrainingError(BoltzgenError): ...

class Potential:
    """A potential energy U(x); see ``help(boltzgen.Potential)``."""

    def __init__(self, name: str, parameters: dict[str, Any] | None = None) -> None: ...
    @staticmethod
    def openmm(xml: _Path) -> Potential: ...
    @property
    def dim(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def spatial_dim(self) -> int: ...
    @property
    def n_particles(self) -> int: ...
    def energy(self, x: _Array) -> float | _Array: ...
    def energy_and_gradient(self, x: _Array) -> tuple[float | _Array, _Array]: ...

class Model:
    """A trained flow, VAE or TorchScript flow."""

    @staticmethod
    def load(path: _Path, device: _Device = "cpu") -> Model: ...
    @property
    def dim(self) -> int: ...
    @property
    def kind(self) -> Literal["flow", "vae", "torchscript"]: ...
    @property
    def exact_density(self) -> bool: ...
    def sample(self, n: int, seed: int = 0) -> tuple[_Array, _Array]: ...
    def log_prob(self, x: _Array) -> float | _Array: ...

class ProposalEngine:
    """Independence proposals from a flow for your own Metropolis-Hastings loop."""

    def __init__(
        self,
        model: _Path,
        seed: int = 42,
        buffer: int = 256,
        device: _Device = "cpu",
        threads: int | None = None,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def stats(self) -> dict[str, int]: ...
    def propose(self, x: _Array) -> tuple[_Array, float]: ...
    def propose_batch(self, x: _Array) -> tuple[_Array, _Array]: ...
    def log_prob(self, x: _Array) -> float | _Array: ...

def log_acceptance(beta: float, u_current: float, u_proposed: float, log_hastings: float) -> float: ...
def accept(log_alpha: float, uniform: float) -> bool: ...
def importance_weights(beta: float, energies: _Array, log_q: _Array) -> dict[str, Any]: ...
def summarize(chains: _Array | list[_Array]) -> dict[str, Any]: ...
def integrated_time(chains: _Array | list[_Array]) -> float: ...
def split_rhat(chains: _Array | list[_Array]) -> float: ...
def read_frames(
    path: _Path,
    frames: str | None = None,
    selection: str | None = None,
    spatial_dim: int = 3,
    length_unit: Literal["nanometer", "nm", "angstrom", "reduced"] = "nanometer",
) -> _Array: ...
def train(
    config: _Config,
    data: _Array | None = None,
    *,
    output: _Path | None = None,
    seed: int | None = None,
    device: _Device | None = None,
    force: bool = False,
    resume: bool = False,
    quiet: bool = True,
) -> tuple[Model, dict[str, Any]]: ...
def sample(
    config: _Config,
    *,
    output: _Path | None = None,
    seed: int | None = None,
    device: _Device | None = None,
    force: bool = False,
    resume: bool = False,
    quiet: bool = True,
) -> dict[str, Any]: ...
def reweight(
    config: _Config,
    *,
    output: _Path | None = None,
    seed: int | None = None,
    device: _Device | None = None,
    force: bool = False,
    quiet: bool = True,
) -> dict[str, Any]: ...
def run(
    config: _Config | None = None,
    *,
    output: _Path | None = None,
    seed: int | None = None,
    device: _Device | None = None,
    force: bool = False,
    resume: bool = False,
    quiet: bool = True,
) -> dict[str, Any]: ...
