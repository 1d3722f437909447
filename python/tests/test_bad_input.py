"""Bad input from Python: a Python exception that names the problem, never a crash, and no
file written."""

import numpy as np
import pytest

import boltzgen


@pytest.fixture(scope="module")
def u():
    return boltzgen.Potential("double_well")


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros(2, dtype=np.int64), TypeError, ["float64", "int64"]),
        (np.zeros(2, dtype=np.float32), TypeError, ["float64", "float32"]),
        ([0.0, 1.0], TypeError, ["NumPy array", "list"]),
        (np.zeros(3), ValueError, ["shape (3,)", "(2,)", "(n, 2)"]),
        (np.zeros((4, 3)), ValueError, ["shape (4, 3)"]),
        (np.zeros((2, 2, 2)), ValueError, ["shape (2, 2, 2)"]),
        (np.zeros((2, 4))[:, ::2], ValueError, ["not C-contiguous", "ascontiguousarray"]),
        (np.zeros((2, 2)).T, ValueError, ["not C-contiguous"]),
        (np.array([np.nan, 1.0]), ValueError, ["not finite"]),
        (np.array([[0.0, 1.0], [1.0, np.inf]]), ValueError, ["not finite", "configuration 1"]),
    ],
)
def test_potential_rejects_bad_arrays(u, x, error, words):
    for call in (u.energy, u.energy_and_gradient):
        with pytest.raises(error) as info:
            call(x)
        for w in words:
            assert w in str(info.value), (w, str(info.value))


def test_unknown_potential_and_bad_parameters_name_the_key():
    with pytest.raises(boltzgen.ConfigError, match="unknown potential `nope`"):
        boltzgen.Potential("nope")
    with pytest.raises(boltzgen.ConfigError, match="unknown field `q`"):
        boltzgen.Potential("double_well", {"q": 1.0})
    with pytest.raises(boltzgen.ConfigError, match="`d`"):
        boltzgen.Potential("double_well", {"d": -1.0})
    with pytest.raises(TypeError, match="parameters must be a dict"):
        boltzgen.Potential("double_well", [1.0])
    # The XML is a parameter of the section: a ConfigError naming the key and the file.
    with pytest.raises(boltzgen.ConfigError, match="parameters.xml.*missing.xml"):
        boltzgen.Potential.openmm("missing.xml")


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        boltzgen.Model.load(tmp_path / "nothing.json")
    bad = tmp_path / "model.json"
    bad.write_text("{ not json")
    with pytest.raises(boltzgen.ModelError, match="model.json"):
        boltzgen.Model.load(bad)
    with pytest.raises(boltzgen.ModelError, match="model.json"):
        boltzgen.ProposalEngine(bad)
    with pytest.raises(ValueError, match="device"):
        boltzgen.Model.load(bad, device="tpu")


def test_model_and_engine_reject_bad_arrays(double_well_flow):
    model, path, _ = double_well_flow
    engine = boltzgen.ProposalEngine(path, seed=1, buffer=4)
    for call in (model.log_prob, engine.log_prob, engine.propose_batch, engine.propose):
        with pytest.raises(ValueError, match="shape"):
            call(np.zeros(5))
        with pytest.raises(TypeError, match="float64"):
            call(np.zeros(2, dtype=np.float32))
        with pytest.raises(ValueError, match="C-contiguous"):
            call(np.zeros((3, 4))[:, 1:3])
    with pytest.raises(ValueError, match="non-finite coordinate of current state 0"):
        engine.propose(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="propose_batch"):
        engine.propose(np.zeros((2, 2)))
    with pytest.raises(boltzgen.ConfigError, match="buffer"):
        boltzgen.ProposalEngine(path, buffer=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        boltzgen.accept(0.0, 1.5)


def test_diagnostics_reject_bad_arrays():
    with pytest.raises(ValueError, match="log_q has 2 values; expected 3"):
        boltzgen.importance_weights(1.0, np.zeros(3), np.zeros(2))
    with pytest.raises(TypeError, match="float64"):
        boltzgen.importance_weights(1.0, np.zeros(3, dtype=np.int32), np.zeros(3))
    with pytest.raises(ValueError, match="at least"):
        boltzgen.split_rhat(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="chains"):
        boltzgen.integrated_time(np.zeros(1))
    with pytest.raises(ValueError, match=r"chains\[1\]"):
        boltzgen.summarize([np.zeros(10), np.zeros((2, 2))])


def test_bad_configs_name_the_key_and_write_nothing(tmp_path):
    out = tmp_path / "run"
    base = {"system": {"potential": "double_well", "beta": 1.0}}
    with pytest.raises(boltzgen.ConfigError, match="unknown field `bogus`"):
        boltzgen.run(dict(base, bogus=1), output=out)
    with pytest.raises(boltzgen.ConfigError, match="None"):
        boltzgen.run({"system": {"potential": "double_well", "beta": None}}, output=out)
    with pytest.raises(boltzgen.ConfigError, match="sample"):
        boltzgen.sample(dict(base, sample={"chains": 0}), output=out)
    with pytest.raises(FileNotFoundError, match="absent.toml"):
        boltzgen.train(tmp_path / "absent.toml", output=out)
    with pytest.raises(TypeError, match="path to a TOML file or a dict"):
        boltzgen.run(42, output=out)
    with pytest.raises(boltzgen.ConfigError, match="model.file"):
        boltzgen.reweight(base, output=out)
    assert not out.exists()


def test_training_data_is_checked_before_anything_is_written(tmp_path):
    config = {
        "system": {"potential": "double_well", "beta": 1.0},
        "model": {"kind": "real_nvp", "layers": 2, "hidden": [8]},
        "train": {"method": "gradient", "steps": 5, "forward_weight": 1.0},
    }
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"shape \(10, 3\)"):
        boltzgen.train(config, data=np.zeros((10, 3)), output=out)
    frames = np.zeros((10, 2))
    frames[7, 1] = np.nan
    with pytest.raises(ValueError, match="frame 7"):
        boltzgen.train(config, data=frames, output=out)
    with pytest.raises(TypeError, match="float64"):
        boltzgen.train(config, data=np.zeros((10, 2), dtype=np.float32), output=out)
    assert not out.exists()


def test_an_existing_run_directory_is_not_overwritten(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my own file")
    config = {"system": {"potential": "double_well", "beta": 1.0},
              "sample": {"chains": 1, "steps": 10, "start": [-1.7, 0.0], "moves": [{"kind": "random_walk", "weight": 1.0, "step": 0.5}]}}
    # Sampling into a directory of one's own adds the outputs beside one's files ...
    report = boltzgen.sample(config, output=out)
    assert report["sample"]["frames"] == 10
    # ... and then neither overwrites them without force, nor empties the directory with it.
    with pytest.raises(ValueError, match="already holds the results of an earlier `boltzgen sample`"):
        boltzgen.sample(config, output=out)
    with pytest.raises(ValueError, match="was not created by boltzgen"):
        boltzgen.sample(config, output=out, force=True)
    assert (out / "notes.txt").read_text() == "my own file"


def test_every_public_call_is_documented_with_an_example():
    for name in boltzgen.__all__:
        if name.endswith("Error") or name.startswith("__"):
            continue
        doc = getattr(boltzgen, name).__doc__ or ""
        assert "Example" in doc, name


def test_library_warnings_reach_python_logging(root, tmp_path, caplog):
    pdb = (root / "examples/data/ala2/ala2.pdb").read_text().splitlines()
    pdb.insert(3, "ZZZZZZ an unknown record")
    odd = tmp_path / "odd.pdb"
    odd.write_text("\n".join(pdb) + "\n")
    with caplog.at_level("WARNING", logger="boltzgen"):
        x = boltzgen.read_frames(odd)
    assert x.shape == (1, 66)
    assert any(
        r.name == "boltzgen.chemfiles" and "ignoring unknown record" in r.getMessage()
        for r in caplog.records
    ), caplog.records


def test_read_only_arrays_are_read_in_place():
    u = boltzgen.Potential("double_well")
    x = np.zeros((3, 2))
    x.flags.writeable = False
    assert u.energy(x).shape == (3,)
    e = u.energy(np.zeros((4, 2)))
    # The result is the Rust vector itself, handed to NumPy (not a copy of it).
    assert e.flags.c_contiguous and e.base is not None
