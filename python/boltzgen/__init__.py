"""boltzgen: learned samplers (normalizing flows, VAEs) coupled to exact Metropolis-Hastings.

The Python face of the boltzgen Rust library. Arrays are NumPy float64 and C-contiguous
(configurations are ``(dim,)`` or ``(n, dim)``, particles' coordinates row-major); they are
read in place, never copied behind your back. Errors are exceptions that carry the library's
message, naming the file, key, frame or dimension at fault.

What is here:

- ``Potential(name, parameters)``: every built-in potential, and ``Potential.openmm(xml)`` for
  an OpenMM System; ``energy`` and ``energy_and_gradient`` of one configuration or a batch.
- ``Model.load(path)``: a trained flow, VAE or TorchScript flow; ``sample(n, seed)``,
  ``log_prob(x)``.
- ``ProposalEngine(model)``: independence proposals with their Hastings terms for your own
  Metropolis-Hastings loop, with ``log_acceptance`` and ``accept``.
- ``train``, ``sample``, ``reweight``, ``run``: whole runs from a TOML file or a dict, exactly as
  the ``boltzgen`` command does them, returning the reports as dicts.
- ``read_frames(path)``: a trajectory file (any format chemfiles reads) as an array.
- ``importance_weights``, ``summarize``, ``integrated_time``, ``split_rhat``: the estimators of
  the reports, on your own arrays.
- ``boltzgen.openmm.BoltzgenMove``: an openmmtools MCMC move whose proposals come from a
  boltzgen flow and whose energies come from OpenMM.

Example::

    import numpy, boltzgen
    model, report = boltzgen.train("examples/double_well.toml", output="runs/dw", force=True)
    u = boltzgen.Potential("double_well")
    x, log_q = model.sample(10_000, seed=1)
    w = boltzgen.importance_weights(1.0, u.energy(x), log_q)
    print(w["ess_fraction"], w["log_z"], "+-", w["log_z_std_error"])

``import torch`` and ``import boltzgen`` may come in either order: both use the same libtorch.
"""

from ._boltzgen import (
    BoltzgenError,
    ConfigError,
    Model,
    ModelError,
    Potential,
    ProposalEngine,
    TorchError,
    TrainingError,
    TrajectoryError,
    __version__,
    accept,
    importance_weights,
    integrated_time,
    log_acceptance,
    read_frames,
    reweight,
    run,
    sample,
    split_rhat,
    summarize,
    train,
)

__all__ = [
    "BoltzgenError",
    "ConfigError",
    "Model",
    "ModelError",
    "Potential",
    "ProposalEngine",
    "TorchError",
    "TrainingError",
    "TrajectoryError",
    "__version__",
    "accept",
    "importance_weights",
    "integrated_time",
    "log_acceptance",
    "read_frames",
    "reweight",
    "run",
    "sample",
    "split_rhat",
    "summarize",
    "train",
]
