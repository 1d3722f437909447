"""Every binding against the Rust library on the same input: energies, gradients and
estimators to the last bit (against ``data/rust_reference.json``, which the Rust test
``tests/python_reference.rs`` keeps current), draws and proposals for the same seed identical
to the C ABI's, and a whole run identical to the ``boltzgen`` command's."""

import json
import subprocess

import numpy as np
import pytest

import boltzgen

from conftest import DOUBLE_WELL


@pytest.fixture(scope="module")
def reference(root):
    with open(root / "python/tests/data/rust_reference.json") as f:
        return json.load(f)


def same_bits(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def test_every_potential_matches_rust_to_the_last_bit(reference, root, monkeypatch):
    monkeypatch.chdir(root)  # the OpenMM entry names its System XML relative to the repo
    names = set()
    for entry in reference["potentials"]:
        u = boltzgen.Potential(entry["name"], entry["parameters"])
        assert u.dim == entry["dim"]
        x = np.array(entry["x"]).reshape(-1, u.dim)
        e, g = u.energy_and_gradient(x)
        assert same_bits(e, entry["energy"]), entry["name"]
        assert same_bits(g.reshape(-1), entry["gradient"]), entry["name"]
        assert same_bits(u.energy(x), entry["energy"]), entry["name"]
        # One configuration at a time gives the batch's numbers.
        for i in range(x.shape[0]):
            ei, gi = u.energy_and_gradient(x[i])
            assert same_bits(ei, entry["energy"][i]) and same_bits(u.energy(x[i]), ei)
            assert same_bits(gi, g[i])
        names.add(entry["name"])
    assert names == {
        "double_well", "muller_brown", "many_well", "gmm40", "gaussian", "dw4", "lj13", "lj55",
        "lj_cluster", "lj_fluid", "openmm",
    }


def test_openmm_constructor_is_the_openmm_potential(reference, root):
    entry = next(e for e in reference["potentials"] if e["name"] == "openmm")
    u = boltzgen.Potential.openmm(root / entry["parameters"]["xml"])
    assert (u.n_particles, u.spatial_dim) == (22, 3)
    assert same_bits(u.energy(np.array(entry["x"]).reshape(-1, u.dim)), entry["energy"])


def test_summarize_matches_rust(reference):
    r = reference["summarize"]
    chains = np.array(r["chains"])
    s = boltzgen.summarize(chains)
    for key in ["mean", "std_error", "variance", "tau", "ess", "split_rhat"]:
        assert same_bits(s[key], r[key]), key
    assert s["window"] == r["window"]
    assert same_bits(s["ess_per_chain"], r["ess_per_chain"])
    # A list of chains is the same input as the 2-D array.
    assert boltzgen.summarize(list(chains))["tau"] == s["tau"]
    assert same_bits(boltzgen.integrated_time(chains), r["tau"])
    assert same_bits(boltzgen.split_rhat(chains), r["split_rhat"])


def test_importance_weights_match_rust(reference):
    r = reference["importance_weights"]
    w = boltzgen.importance_weights(r["beta"], np.array(r["energies"]), np.array(r["log_q"]))
    for key in ["ess", "ess_fraction", "log_z", "log_z_std_error"]:
        assert same_bits(w[key], r[key]), key
    assert same_bits(w["weights"], r["weights"])
    assert w["draws"] == len(r["energies"]) and w["invalid"] == 0


def test_draws_and_proposals_match_the_c_abi(double_well_flow, c_engine):
    model, path, _ = double_well_flow
    assert (model.kind, model.dim, model.exact_density) == ("flow", 2, True)
    n, seed = 256, 11
    x, log_q = model.sample(n, seed=seed)
    assert x.shape == (n, 2) and log_q.shape == (n,)
    # The draws are the flow's: log_prob gives back their log q, to the rounding of a float64
    # inverse pass against a forward one (different orders of operations).
    assert np.allclose(model.log_prob(x), log_q, rtol=0, atol=1e-9)
    assert not np.allclose(log_q, log_q[0])  # a trained flow: not a constant density

    current = np.tile([-1.7, 0.3], (n, 1))
    engine = boltzgen.ProposalEngine(path, seed=seed, buffer=n, device="cpu")
    proposed, log_h = engine.propose_batch(current)
    c = c_engine(path, f"seed = {seed}\nbuffer = {n}\ndevice = \"cpu\"")
    c_proposed, c_log_h = c.propose_batch(current)
    assert same_bits(proposed, c_proposed) and same_bits(log_h, c_log_h)
    # The engine's first buffer is Model.sample with the same seed.
    assert same_bits(proposed, x)
    assert same_bits(engine.log_prob(x), c.log_prob(x))
    assert same_bits(model.log_prob(x), c.log_prob(x))
    # The Hastings term is log q(current) − log q(proposed), the latter from the draw itself
    # (so equal to log_prob's up to the rounding of the inverse pass).
    assert same_bits(log_h, engine.log_prob(current) - log_q)
    assert np.allclose(log_h, engine.log_prob(current) - engine.log_prob(proposed), rtol=0, atol=1e-9)
    stats = engine.stats
    assert stats["proposals"] == n and stats["draws"] == n


def test_single_proposals_follow_the_batch_stream(double_well_flow):
    _, path, _ = double_well_flow
    a = boltzgen.ProposalEngine(path, seed=5, buffer=8)
    b = boltzgen.ProposalEngine(path, seed=5, buffer=8)
    x = np.array([-1.7, 0.0])
    batch, log_h = b.propose_batch(np.tile(x, (3, 1)))
    for i in range(3):
        xi, hi = a.propose(x)
        assert same_bits(xi, batch[i]) and same_bits(hi, log_h[i])


def test_acceptance_helpers_are_the_library_s():
    assert boltzgen.log_acceptance(2.0, 1.0, 1.5, 0.25) == -2.0 * 0.5 + 0.25
    assert boltzgen.log_acceptance(1.0, 0.0, float("inf"), 0.0) == float("-inf")
    assert boltzgen.log_acceptance(1.0, 0.0, float("nan"), 0.0) == float("-inf")
    assert boltzgen.accept(0.0, 0.999)
    assert boltzgen.accept(np.log(0.5), 0.49) and not boltzgen.accept(np.log(0.5), 0.51)


def without_timings(value, run_dir):
    """A report without its wall-clock fields, with paths inside the run directory relative."""
    if isinstance(value, dict):
        return {
            k: without_timings(v, run_dir)
            for k, v in value.items()
            if "seconds" not in k and "per_second" not in k
        }
    if isinstance(value, list):
        return [without_timings(v, run_dir) for v in value]
    if isinstance(value, str):
        return value.replace(str(run_dir), "<run>")
    return value


def toml_of(config):
    """A TOML file for the small configs of these tests (tables, scalars, flat lists)."""

    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return repr(v)

    lines = []

    def table(prefix, d):
        subtables = []
        for k, v in d.items():
            if isinstance(v, dict):
                subtables.append((k, v))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    lines.append(f"[[{prefix}{k}]]")
                    for ik, iv in item.items():
                        lines.append(f"{ik} = {scalar(iv)}")
            else:
                lines.append(f"{k} = {scalar(v)}")
        for k, v in subtables:
            lines.append(f"[{prefix}{k}]")
            table(f"{prefix}{k}.", v)

    table("", config)
    return "\n".join(lines) + "\n"


RUN = dict(
    DOUBLE_WELL,
    sample={
        "chains": 4, "burn_in": 100, "steps": 400, "buffer": 256,
        "moves": [{"kind": "flow", "weight": 1.0}, {"kind": "random_walk", "weight": 1.0, "step": 0.5}],
    },
    reweight={"draws": 5000},
    analysis={"cv": {"kind": "coordinate", "index": 0}},
)


def test_run_writes_what_the_command_writes(tmp_path, cli):
    config = tmp_path / "dw.toml"
    config.write_text(toml_of(RUN))
    subprocess.run(
        [str(cli), "run", str(config), "-o", str(tmp_path / "cli"), "--quiet"], check=True
    )
    from_file = boltzgen.run(config, output=tmp_path / "py")
    from_dict = boltzgen.run(RUN, output=tmp_path / "dict")
    with open(tmp_path / "cli" / "report.json") as f:
        written = json.load(f)
    expected = without_timings(written, tmp_path / "cli")
    for report, run_dir in [(from_file, "py"), (from_dict, "dict")]:
        report = without_timings(report, tmp_path / run_dir)
        for key in expected:
            assert report[key] == expected[key], key
    assert from_file["reweight"]["draws"] == 5000 and from_file["sample"]["frames"] > 0
    for name in ["samples.xyz", "samples.csv", "weights.csv", "model.safetensors"]:
        cli_bytes = (tmp_path / "cli" / name).read_bytes()
        assert (tmp_path / "py" / name).read_bytes() == cli_bytes, name
        assert (tmp_path / "dict" / name).read_bytes() == cli_bytes, name
