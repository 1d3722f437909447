"""Whole runs from Python, as a user scripts them: train from arrays and from trajectory files,
then sample and reweight with the trained model, reading the reports as dicts."""

import numpy as np
import pytest

import boltzgen

MULLER_BROWN = {"potential": "muller_brown", "parameters": {"scale": 0.05}, "beta": 1.0}


def test_train_from_an_array_and_from_the_same_frames_in_a_file(root, tmp_path):
    path = root / "examples/data/muller_brown_mcmc.xyz"
    frames = boltzgen.read_frames(path, spatial_dim=2, length_unit="reduced")
    assert frames.shape == (3200, 2)
    config = {
        "seed": 7,
        "system": MULLER_BROWN,
        "model": {"kind": "real_nvp", "layers": 4, "hidden": [32, 32], "precision": "float64"},
        "train": {"method": "gradient", "steps": 150, "batch_size": 128, "learning_rate": 3e-3,
                  "forward_weight": 1.0, "reverse_weight": 0.0},
    }
    from_array, report = boltzgen.train(config, data=frames, output=tmp_path / "array")
    assert report["train"]["steps"] == 150 and report["warnings"] == []
    assert (tmp_path / "array" / "model.json").is_file()
    from_file, _ = boltzgen.train(
        dict(config, data={"trajectory": str(path)}), output=tmp_path / "file"
    )
    # The same frames, the same seed: the same flow, to the last bit.
    x, log_q = from_array.sample(500, seed=1)
    x_file, log_q_file = from_file.sample(500, seed=1)
    assert np.array_equal(x, x_file) and np.array_equal(log_q, log_q_file)
    # Trained by maximum likelihood, it puts more density on the data than a Gaussian would.
    assert from_array.log_prob(frames).mean() > -2.0
    reloaded = boltzgen.Model.load(tmp_path / "array" / "model.json")
    assert np.array_equal(reloaded.log_prob(frames), from_array.log_prob(frames))


def test_sample_and_reweight_with_the_trained_flow(double_well_flow, tmp_path):
    _, path, _ = double_well_flow
    config = {
        "seed": 4,
        "system": {"potential": "double_well", "beta": 1.0},
        "model": {"kind": "neural_spline", "file": str(path)},
        "sample": {"chains": 8, "burn_in": 200, "steps": 2000, "buffer": 1024, "moves": [
            {"kind": "flow", "weight": 1.0},
            {"kind": "random_walk", "weight": 1.0, "step": 0.5},
        ]},
        "reweight": {"draws": 20000},
        "analysis": {"cv": {"kind": "coordinate", "index": 0},
                     "states": [{"name": "left", "lower": -10.0, "upper": -1.0},
                                {"name": "right", "lower": 1.0, "upper": 10.0}]},
    }
    sampled = boltzgen.sample(config, output=tmp_path / "run")
    s = sampled["sample"]
    assert s["frames"] == 8 * 2000
    flow_move = next(m for m in s["moves"] if m["name"] == "flow")
    assert flow_move["production"]["accepted"] > 0.5 * flow_move["production"]["proposed"]
    # The reweight stage goes into the same run directory, beside the samples.
    reweighted = boltzgen.reweight(config, output=tmp_path / "run")["reweight"]
    assert reweighted["draws"] == 20000 and reweighted["ess_fraction"] > 0.5
    log_z, exact = reweighted["log_z"], reweighted["exact_log_z"]
    assert abs(log_z["value"] - exact) < 4.0 * log_z["std_error"], (log_z, exact)
    assert (tmp_path / "run" / "samples.xyz").is_file() and (tmp_path / "run" / "weights.csv").is_file()
    # Resuming a finished sampling run gives the same report, without sampling again.
    again = boltzgen.sample(config, output=tmp_path / "run", resume=True)["sample"]
    assert again["frames"] == s["frames"] and again["energy"] == s["energy"]


def test_progress_goes_to_stderr_only_when_asked(tmp_path, capfd):
    config = {"system": {"potential": "double_well", "beta": 1.0},
              "sample": {"chains": 1, "steps": 50, "start": [-1.7, 0.0],
                         "moves": [{"kind": "random_walk", "weight": 1.0, "step": 0.5}]}}
    boltzgen.sample(config, output=tmp_path / "quiet")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    boltzgen.sample(config, output=tmp_path / "loud", quiet=False)
    out, err = capfd.readouterr()
    assert out == "" and "boltzgen:" in err
