"""boltzgen proposals inside OpenMM and openmmtools: ``BoltzgenMove``.

``BoltzgenMove`` is an openmmtools ``MCMCMove``: its proposals are independence draws from a
boltzgen flow, its energies come from the OpenMM ``Context`` of the thermodynamic state, and
it accepts with the exact Metropolis-Hastings ratio

    min(1, exp(-(u(x') - u(x))) * q(x) / q(x'))

where u is openmmtools' reduced potential (beta U, plus beta p V in NPT) and q the flow's
density. So it may be mixed with Langevin dynamics, GHMC or any other move in an openmmtools
``SequenceMove`` or ``MCMCSampler``, and the chain keeps the Boltzmann distribution.

The flow's coordinates are OpenMM's positions in nanometres, flattened atom by atom
(``x0, y0, z0, x1, ...``), the layout boltzgen's ``openmm`` potential uses; ``components``
selects a subset of them (for example ``[0, 1]``, atom 0's x and y, for a 2-D model of one
particle) and leaves the others where they are, which is an exact block update.

Example::

    from openmmtools import mcmc, states
    from boltzgen.openmm import BoltzgenMove
    move = mcmc.SequenceMove([mcmc.GHMCMove(timestep=1.0 * unit.femtosecond, n_steps=50),
                              BoltzgenMove("runs/ala2/model.json", seed=1)])
    sampler = mcmc.MCMCSampler(thermodynamic_state, sampler_state, move)
    sampler.run(100)
    print(move.move_list[1].statistics)

openmm and openmmtools (both on PyPI) are needed only when this module is imported.
"""

import numpy as np
from openmm import unit
from openmmtools.mcmc import MCMCMove

from . import ProposalEngine, accept, log_acceptance

__all__ = ["BoltzgenMove"]


class BoltzgenMove(MCMCMove):
    """Independence proposals from a boltzgen flow, accepted by exact Metropolis-Hastings.

    Parameters
    ----------
    model : str or os.PathLike
        The flow (``model.json`` as ``boltzgen train`` writes it, or a TorchScript ``.pt``).
    n_proposals : int
        Proposals per ``apply``.
    seed : int
        Seeds the engine's draws and the acceptance uniforms (a stream of its own).
    buffer : int
        Draws per generator call.
    components : sequence of int, optional
        Indices into the flattened positions (in nm) that the model covers; all of them by
        default. The model's dimension must equal their number.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Attributes
    ----------
    n_accepted, n_proposed : int
        Acceptance counts, also as ``statistics``.
    """

    def __init__(self, model, n_proposals=1, seed=42, buffer=256, components=None, device="cpu"):
        super().__init__()
        if n_proposals < 1:
            raise ValueError(f"n_proposals must be at least 1, got {n_proposals}")
        self.model = str(model)
        self.n_proposals = int(n_proposals)
        self.seed = int(seed)
        self.buffer = int(buffer)
        self.device = device
        self.components = None if components is None else np.asarray(components, dtype=np.intp)
        self.engine = ProposalEngine(self.model, seed=self.seed, buffer=self.buffer, device=device)
        # A uniform stream distinct from the engine's (which is seeded by the same number).
        self._uniforms = np.random.default_rng([self.seed, 0x6F6D6D])
        self.n_accepted = 0
        self.n_proposed = 0

    @property
    def statistics(self):
        """The acceptance counts as a dict."""
        return dict(n_accepted=self.n_accepted, n_proposed=self.n_proposed)

    @statistics.setter
    def statistics(self, value):
        self.n_accepted = value["n_accepted"]
        self.n_proposed = value["n_proposed"]

    def _model_coordinates(self, flat):
        return flat if self.components is None else flat[self.components]

    def _check_dimension(self, flat):
        dim = flat.size if self.components is None else self.components.size
        if dim != self.engine.dim:
            raise ValueError(
                f"the model {self.model} has {self.engine.dim} coordinates; the system gives "
                f"{dim} ({flat.size // 3} atoms x 3"
                + ("" if self.components is None else f", {self.components.size} components selected")
                + ")"
            )

    def apply(self, thermodynamic_state, sampler_state, context_cache=None):
        """Makes ``n_proposals`` Metropolis-Hastings steps on ``sampler_state`` (modified)."""
        context_cache = self._get_context_cache(context_cache)
        context, _ = context_cache.get_context(thermodynamic_state)
        sampler_state.apply_to_context(context, ignore_velocities=True)
        u_current = thermodynamic_state.reduced_potential(context)
        positions = np.ascontiguousarray(
            sampler_state.positions.value_in_unit(unit.nanometer), dtype=np.float64
        )
        flat = positions.reshape(-1)
        self._check_dimension(flat)
        x = np.ascontiguousarray(self._model_coordinates(flat))
        for _ in range(self.n_proposals):
            x_new, log_hastings = self.engine.propose(x)
            trial = flat.copy()
            if self.components is None:
                trial[:] = x_new
            else:
                trial[self.components] = x_new
            sampler_state.positions = unit.Quantity(trial.reshape(-1, 3), unit.nanometer)
            sampler_state.apply_to_context(context, ignore_velocities=True)
            u_proposed = thermodynamic_state.reduced_potential(context)
            log_alpha = log_acceptance(1.0, u_current, u_proposed, log_hastings)
            self.n_proposed += 1
            if accept(log_alpha, self._uniforms.random()):
                self.n_accepted += 1
                flat, x, u_current = trial, x_new, u_proposed
        # The state ends at the last accepted configuration (the context may hold a rejected
        # one), with its energies read back from OpenMM as openmmtools' own moves leave them.
        # Velocities are not touched: the target is π(x) N(v), so a Metropolis-Hastings update
        # of x at fixed v keeps it, and GHMC or Langevin moves may carry their momenta across.
        sampler_state.positions = unit.Quantity(flat.reshape(-1, 3), unit.nanometer)
        sampler_state.apply_to_context(context, ignore_velocities=True)
        sampler_state.update_from_context(context, ignore_velocities=True)

    def __getstate__(self):
        state = dict(
            model=self.model,
            n_proposals=self.n_proposals,
            seed=self.seed,
            buffer=self.buffer,
            components=None if self.components is None else self.components.tolist(),
            device=self.device,
        )
        state.update(self.statistics)
        return state

    def __setstate__(self, state):
        self.__init__(
            state["model"],
            n_proposals=state["n_proposals"],
            seed=state["seed"],
            buffer=state["buffer"],
            components=state["components"],
            device=state["device"],
        )
        self.statistics = state
