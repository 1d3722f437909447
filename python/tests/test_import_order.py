"""``import torch`` and ``import boltzgen`` in one process, in either order: the extension
links the venv's own libtorch (by an rpath to torch's lib directory), so there is one libtorch
in the process, and a libtorch setting made through boltzgen is seen by torch."""

import subprocess
import sys

import pytest

CHECK = """
import numpy as np
{first}
{second}
import torch, boltzgen
# One libtorch: boltzgen's engine sets libtorch's intra-op threads, and torch sees it.
u = boltzgen.Potential("double_well")
model, _ = boltzgen.train(
    {{"seed": 1, "system": {{"potential": "double_well", "beta": 1.0}},
      "model": {{"kind": "real_nvp", "layers": 2, "hidden": [8]}},
      "train": {{"method": "gradient", "steps": 3, "batch_size": 16, "forward_weight": 0.0, "reverse_weight": 1.0}}}},
    output={out!r})
engine = boltzgen.ProposalEngine({out!r} + "/model.json", threads=1)
assert torch.get_num_threads() == 1, torch.get_num_threads()
x, log_q = model.sample(8, seed=2)
t = torch.from_numpy(x)  # boltzgen's arrays are ordinary NumPy arrays for torch
assert t.shape == (8, 2) and torch.isfinite(t).all()
print("ok", torch.__version__)
"""


@pytest.mark.parametrize("first, second", [("import torch", "import boltzgen"), ("import boltzgen", "import torch")])
def test_torch_and_boltzgen_in_either_order(tmp_path, first, second):
    script = CHECK.format(first=first, second=second, out=str(tmp_path / "run"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok 2.13.0"), done.stdout


def test_one_libtorch_is_loaded(tmp_path):
    script = """
import boltzgen, torch
maps = open("/proc/self/maps").read()
paths = {line.split()[-1] for line in maps.splitlines() if "libtorch_cpu.so" in line}
assert len(paths) == 1, paths
print(paths.pop())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import torch, os

    assert os.path.realpath(done.stdout.strip()) == os.path.realpath(
        os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    )
