"""The notebook-style example ``examples/python/double_well.py`` runs top to bottom, as a user
would run it from the repository root, and its numbers agree with the exact answers."""

import os
import re
import subprocess
import sys


def test_the_python_example_runs_and_agrees_with_the_exact_answers(root, tmp_path):
    env = dict(os.environ, BOLTZGEN_EXAMPLE_OUT=str(tmp_path / "run"))
    done = subprocess.run(
        [sys.executable, "examples/python/double_well.py"], cwd=root, env=env,
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    log_z, error = map(float, re.search(r"log Z = (\S+) ± (\S+)", out).groups())
    exact = float(re.search(r"exact log Z = (\S+);", out).group(1))
    assert abs(log_z - exact) < 4 * error + 1e-4  # the exact value is printed to 4 decimals
    p, p_error = map(float, re.search(r"P\(right well\) = (\S+) ± (\S+)", out).groups())
    p_exact = float(re.search(r"\(exact (\S+)\)", out).group(1))
    assert abs(p - p_exact) < 4 * p_error
    assert (tmp_path / "run" / "python_marginal.png").is_file(), out
