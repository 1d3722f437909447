# %% [markdown]
# # boltzgen from Python: a Boltzmann generator for the 2-D double well
#
# Run it top to bottom from the repository root (`python examples/python/double_well.py`), or
# cell by cell in an editor that understands `# %%` cells (VS Code, Jupyter with jupytext).
# It trains a flow from the energy alone, reweights its direct draws, runs a Metropolis-Hastings
# loop of our own with the flow's proposals, and compares everything with the exact answers.
# About half a minute on 2 cores. Set BOLTZGEN_EXAMPLE_OUT to write elsewhere than runs/.

# %%
import os
from pathlib import Path

import numpy as np

import boltzgen

config = Path("examples/double_well.toml")
out = Path(os.environ.get("BOLTZGEN_EXAMPLE_OUT", "runs/python_double_well"))

# %% [markdown]
# ## Train
# The config's `[train]` section is the default method (SMC annealing from the energy alone).
# `force=True` replaces an earlier run of this example (boltzgen only ever deletes directories
# it made itself).

# %%
model, report = boltzgen.train(config, output=out, force=out.exists())
print(f"trained in {report['train']['seconds']:.1f} s: {model}")

# %% [markdown]
# ## Direct draws, reweighted
# log w = −βU(x) − log q(x); the Kish ESS says how many exact samples the draws are worth.

# %%
u = boltzgen.Potential("double_well")  # a = 1, b = 6, c = 1, d = 1: the config's system
beta = 1.0
x, log_q = model.sample(100_000, seed=1)
w = boltzgen.importance_weights(beta, u.energy(x), log_q)
print(f"ESS {100 * w['ess_fraction']:.1f} %, log Z = {w['log_z']:.4f} ± {w['log_z_std_error']:.4f}")

# The exact answers, by quadrature: the density factorises into a quartic in x and a
# Gaussian in y.
grid = np.linspace(-6.0, 6.0, 200_001)
px = np.exp(-beta * (grid**4 - 6 * grid**2 + grid))
exact_log_z = np.log(px.sum() * (grid[1] - grid[0])) + 0.5 * np.log(2 * np.pi / beta)
exact_right = px[grid > 0].sum() / px.sum()
right = w["weights"][x[:, 0] > 0].sum()
print(f"exact log Z = {exact_log_z:.4f}; P(right well) = {right:.4f} (exact {exact_right:.4f})")

# %% [markdown]
# ## A Metropolis–Hastings loop of our own
# The engine proposes x′ ~ q with the Hastings term log q(x) − log q(x′); we add a random walk
# so that the chain also moves locally.

# %%
engine = boltzgen.ProposalEngine(out / "model.json", seed=2)
rng = np.random.default_rng(3)
state = np.array([-1.7, 0.0])
energy = u.energy(state)
chain = np.empty((20_000, 2))
accepted = 0
for step in range(chain.shape[0]):
    if step % 2 == 0:
        proposal, log_h = engine.propose(state)
    else:
        proposal, log_h = state + 0.5 * rng.standard_normal(2), 0.0
    proposed_energy = u.energy(proposal)
    if boltzgen.accept(boltzgen.log_acceptance(beta, energy, proposed_energy, log_h), rng.random()):
        state, energy = proposal, proposed_energy
        accepted += step % 2 == 0
    chain[step] = state
s = boltzgen.summarize((chain[:, 0] > 0).astype(np.float64))
print(
    f"flow moves accepted: {accepted / (chain.shape[0] // 2):.2f}; P(right well) = "
    f"{s['mean']:.4f} ± {s['std_error']:.4f} (τ = {s['tau']:.1f} steps)"
)

# %% [markdown]
# ## Plot (when matplotlib is installed)

# %%
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot")
else:
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-3, 3, 121)
    centres = 0.5 * (bins[1:] + bins[:-1])
    ax.hist(x[:, 0], bins=bins, density=True, histtype="step", label="flow draws q(x)")
    ax.hist(x[:, 0], bins=bins, weights=w["weights"], density=True, histtype="step", label="reweighted")
    ax.hist(chain[:, 0], bins=bins, density=True, histtype="step", label="our MH chain")
    exact = np.exp(-beta * (centres**4 - 6 * centres**2 + centres))
    ax.plot(centres, exact / (exact.sum() * (bins[1] - bins[0])), "k:", label="exact")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "python_marginal.png", dpi=120)
    print(f"plot: {out / 'python_marginal.png'}")
