"""``boltzgen.openmm.BoltzgenMove`` inside openmmtools, OpenMM computing every energy.

1. The double well as an OpenMM ``CustomExternalForce`` on one particle (x and y in nm, a
   harmonic z), at kT = 1 kJ/mol so that the reduced potential is boltzgen's U at β = 1: GHMC
   and the boltzgen move (on atom 0's x and y) in a ``SequenceMove``, against the exact
   ⟨x⟩ and P(x > 0) by quadrature.
2. Alanine dipeptide from its System XML at 300 K: GHMC and the boltzgen move, against the
   mean energy of boltzgen's own sampler (local moves from the MD frames).

Tolerances are 4 standard errors, the errors from the integrated autocorrelation time of each
chain (``boltzgen.summarize``), never tuned by trial.
"""

import numpy as np
import pytest

openmm = pytest.importorskip("openmm")
from openmm import unit  # noqa: E402
from openmmtools import cache, mcmc, states  # noqa: E402

import boltzgen  # noqa: E402
from boltzgen.openmm import BoltzgenMove  # noqa: E402

# kT = 1 kJ/mol: OpenMM's reduced potential u = U / kT is then boltzgen's βU with β = 1.
UNIT_KT = (1.0 * unit.kilojoule_per_mole / unit.MOLAR_GAS_CONSTANT_R).in_units_of(unit.kelvin)


class SeededGHMC(mcmc.GHMCMove):
    """openmmtools' GHMC with a fixed random seed, so that a test run is repeatable."""

    def __init__(self, seed, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def _get_integrator(self, thermodynamic_state):
        integrator = super()._get_integrator(thermodynamic_state)
        integrator.setRandomNumberSeed(self.seed)
        return integrator


def double_well_system(a=1.0, b=6.0, c=1.0, d=1.0):
    system = openmm.System()
    system.addParticle(1.0)
    # Parameters with names of their own: GHMC's integrator has variables called a and b.
    force = openmm.CustomExternalForce(
        "dw_a*x^4 - dw_b*x^2 + dw_c*x + 0.5*dw_d*y^2 + 0.5*z^2"
    )
    for name, value in [("dw_a", a), ("dw_b", b), ("dw_c", c), ("dw_d", d)]:
        force.addGlobalParameter(name, value)
    force.addParticle(0, [])
    system.addForce(force)
    return system


def exact_x_moments(a=1.0, b=6.0, c=1.0):
    """⟨x⟩ and P(x > 0) under exp(−(a x⁴ − b x² + c x)), by quadrature on a fine grid."""
    x = np.linspace(-6.0, 6.0, 200_001)
    p = np.exp(-(a * x**4 - b * x**2 + c * x))
    p /= p.sum()
    return (p * x).sum(), p[x > 0].sum()


def within(series, exact, what):
    s = boltzgen.summarize(np.ascontiguousarray(series))
    assert s["tau_converged"], (what, s)
    tolerance = 4.0 * s["std_error"]
    assert abs(s["mean"] - exact) < tolerance, (what, s["mean"], exact, s["std_error"], s["tau"])
    return s


def test_double_well_through_a_custom_external_force_is_exact(double_well_flow):
    # Seen: ⟨x⟩ = −1.641 ± 0.012 against the exact −1.625, P(x > 0) = 0.029 ± 0.003 against
    # 0.033 (τ ≈ 1.1 iterations), 85 % of the flow's proposals accepted. A planted bug, tried
    # once: the Hastings term with its sign flipped (log_acceptance(1.0, u, u', −log_h) in
    # BoltzgenMove.apply) gave ⟨x⟩ = −1.753 (47 standard errors off) and never visited the
    # right well (P(x > 0) = 0), and this test failed.
    _, path, _ = double_well_flow
    system = double_well_system()
    thermodynamic_state = states.ThermodynamicState(system, UNIT_KT)
    sampler_state = states.SamplerState(unit.Quantity(np.array([[-1.7, 0.0, 0.0]]), unit.nanometer))
    ghmc = SeededGHMC(seed=1, timestep=0.05 * unit.picosecond, n_steps=5)
    flow = BoltzgenMove(path, n_proposals=4, seed=9, components=[0, 1])
    sampler = mcmc.MCMCSampler(thermodynamic_state, sampler_state, mcmc.SequenceMove([ghmc, flow]))
    context_cache = cache.ContextCache(platform=openmm.Platform.getPlatformByName("Reference"))
    iterations = 3000
    xs = np.empty(iterations)
    for i in range(iterations):
        sampler.run(1, context_cache=context_cache)
        xs[i] = sampler.sampler_state.positions[0, 0].value_in_unit(unit.nanometer)
    burn = 100
    mean_x, p_right = exact_x_moments()
    within(xs[burn:], mean_x, "<x>")
    within((xs[burn:] > 0).astype(np.float64), p_right, "P(x > 0)")
    stats = flow.statistics
    assert stats["n_proposed"] == 4 * iterations
    # A trained flow on the double well: most of its proposals are accepted.
    assert stats["n_accepted"] > 0.5 * stats["n_proposed"], stats


def test_the_move_refuses_a_system_of_another_size(double_well_flow):
    _, path, _ = double_well_flow
    system = double_well_system()
    thermodynamic_state = states.ThermodynamicState(system, UNIT_KT)
    sampler_state = states.SamplerState(unit.Quantity(np.zeros((1, 3)), unit.nanometer))
    move = BoltzgenMove(path)  # all 3 coordinates, for a 2-D model
    with pytest.raises(ValueError, match="has 2 coordinates; the system gives 3"):
        move.apply(thermodynamic_state, sampler_state)


def test_the_move_pickles_with_its_counts(double_well_flow):
    import pickle

    _, path, _ = double_well_flow
    move = BoltzgenMove(path, n_proposals=2, seed=4, components=[0, 1])
    move.n_accepted, move.n_proposed = 3, 5
    back = pickle.loads(pickle.dumps(move))
    assert (back.n_accepted, back.n_proposed, back.n_proposals) == (3, 5, 2)
    assert back.components.tolist() == [0, 1]


ALA2 = "examples/data/ala2"


@pytest.fixture(scope="module")
def ala2(root, tmp_path_factory):
    """(System, MD frames in nm, path of a briefly trained internal-coordinate flow)."""
    xml = str(root / ALA2 / "system.xml")
    with open(xml) as f:
        system = openmm.XmlSerializer.deserialize(f.read())
    config = {
        "seed": 5,
        "system": {"potential": "openmm", "parameters": {"xml": xml}, "temperature": 300.0},
        "data": {"trajectory": str(root / ALA2 / "md_300K.dcd"), "frames": "0:20000:4"},
        "model": {
            "kind": "neural_spline", "coordinates": "internal", "layers": 6, "hidden": [64, 64],
            "bins": 8, "tail_bound": 5.0, "precision": "float64",
        },
        "train": {"method": "gradient", "steps": 400, "batch_size": 256, "learning_rate": 2e-3,
                  "forward_weight": 1.0, "reverse_weight": 0.0},
    }
    out = tmp_path_factory.mktemp("ala2") / "flow"
    model, _ = boltzgen.train(config, output=out)
    return system, xml, out / "model.json", model


def test_proposals_have_the_same_energy_in_openmm_and_boltzgen(ala2):
    # The move hands OpenMM the flow's coordinates as they are: atom order, nm and flattening
    # must agree, or OpenMM would price other configurations than boltzgen proposes.
    system, xml, path, model = ala2
    u = boltzgen.Potential.openmm(xml)
    x, _ = model.sample(20, seed=3)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    for xi, ui in zip(x, u.energy(x)):
        context.setPositions(unit.Quantity(xi.reshape(-1, 3), unit.nanometer))
        e = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        assert abs(e - ui) <= max(1e-6 * abs(e), 1e-6), (e, ui)


# Chains start from 16 MD frames 625 ps apart (nearly independent equilibrium draws at 300 K),
# the same frames for both samplers; neither sampler crosses between the basins often in a run
# this short, so each side's error bar is the spread of its chain means over √16.
STARTS = "312:20000:1250"


def chain_means(values, chains):
    """Mean over chains of the chains' means, and its standard error from their spread."""
    means = np.array([values[chains == c].mean() for c in np.unique(chains)])
    return means.mean(), means.std(ddof=1) / np.sqrt(means.size)


def test_alanine_dipeptide_mean_energy_agrees_with_boltzgen_s_sampler(ala2, root, tmp_path):
    # Seen: OpenMM + boltzgen ⟨U⟩ = −44.48 ± 0.66 kJ/mol, σ 12.99, against boltzgen's sampler
    # −45.35 ± 0.81, σ 13.22; 30 of the 6400 flow proposals accepted (a flow trained for 16 s).
    # A planted bug, tried once: accepting every flow proposal (``if True or accept(...)`` in
    # BoltzgenMove.apply) gave ⟨U⟩ = 4·10⁷ kJ/mol, σ 1·10⁹, and the spread check failed.
    system, xml, path, _ = ala2
    # Rust: boltzgen's own sampler with local moves (examples/ala2_local.toml's), 16 chains.
    config = {
        "seed": 300,
        "system": {"potential": "openmm", "parameters": {"xml": xml}, "temperature": 300.0},
        "data": {"trajectory": str(root / ALA2 / "md_300K.dcd"), "frames": STARTS},
        "sample": {"chains": 16, "burn_in": 2000, "steps": 20000, "thin": 20, "moves": [
            {"kind": "particle_walk", "weight": 1.0, "step": 0.005, "spatial_dim": 3, "target_acceptance": 0.4},
        ]},
    }
    boltzgen.sample(config, output=tmp_path / "rust")
    table = np.genfromtxt(tmp_path / "rust" / "samples.csv", delimiter=",", names=True)
    rust_mean, rust_error = chain_means(table["energy"], table["chain"])
    rust_sigma = table["energy"].std()

    # OpenMM: seeded GHMC (exact) and the boltzgen move, every energy from an OpenMM Context of
    # the Reference platform (double precision, deterministic), from the same 16 frames.
    frames = boltzgen.read_frames(root / ALA2 / "md_300K.dcd", frames=STARTS)
    assert frames.shape == (16, 66)
    context_cache = cache.ContextCache(platform=openmm.Platform.getPlatformByName("Reference"))
    thermodynamic_state = states.ThermodynamicState(system, 300.0 * unit.kelvin)
    burn, iterations = 20, 60
    energies, chains, flows = [], [], []
    for c, frame in enumerate(frames):
        ghmc = SeededGHMC(seed=100 + c, timestep=1.0 * unit.femtosecond, n_steps=25)
        flow = BoltzgenMove(path, n_proposals=5, seed=c)
        sampler_state = states.SamplerState(unit.Quantity(frame.reshape(-1, 3), unit.nanometer))
        sampler = mcmc.MCMCSampler(thermodynamic_state, sampler_state, mcmc.SequenceMove([ghmc, flow]))
        for i in range(burn + iterations):
            sampler.run(1, context_cache=context_cache)
            if i >= burn:
                energies.append(sampler.sampler_state.potential_energy.value_in_unit(unit.kilojoule_per_mole))
                chains.append(c)
        flows.append(flow.statistics)
    energies, chains = np.array(energies), np.array(chains)
    mean, error = chain_means(energies, chains)
    # The spreads first: a broken chain (one that accepts what it should not) moves its energies
    # far from the Boltzmann distribution's, whatever its mean. σ of ≈ 16 × 60 and 16 × 1000
    # correlated draws: its relative error is well under 10 % (ESS ≥ 50 on each side); 4 × that.
    sigma = energies.std()
    ess = min(boltzgen.summarize([energies[chains == c] for c in range(16)])["ess"], 16 * 1000)
    assert abs(sigma / rust_sigma - 1.0) < 4.0 * np.sqrt(0.5 / ess), (sigma, rust_sigma, ess)
    assert abs(mean - rust_mean) < 4.0 * np.hypot(error, rust_error), (mean, error, rust_mean, rust_error)
    assert all(f["n_proposed"] == 5 * (burn + iterations) for f in flows)
