"""The cost of crossing into boltzgen from Python, against the same work in one batched call.

Run from the repository root after scripts/python-test.sh (which builds the module):
    ~/.cache/boltzgen/venv/bin/python benches/python_overhead.py
Prints medians of 7 repeats, per configuration. Numbers in BENCHMARKS.md.
"""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import boltzgen


def median_per_item(fn, items, repeats=7):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / items)
    return statistics.median(times)


def main():
    u = boltzgen.Potential("double_well")
    x = np.array([-1.7, 0.3])
    xs = np.tile(x, (100_000, 1))
    single = median_per_item(lambda: [u.energy(x) for _ in range(100_000)], 100_000)
    batch = median_per_item(lambda: u.energy(xs), 100_000)
    print(f"double_well energy: one call per configuration {single * 1e6:.3f} µs, "
          f"batched {batch * 1e9:.1f} ns per configuration (ratio {single / batch:.0f})")

    ala2 = boltzgen.Potential.openmm("examples/data/ala2/system.xml")
    frames = boltzgen.read_frames("examples/data/ala2/md_300K.dcd", frames="0:2000")
    single = median_per_item(lambda: [ala2.energy(f) for f in frames], len(frames))
    batch = median_per_item(lambda: ala2.energy(frames), len(frames))
    print(f"ala2 energy: one call per frame {single * 1e6:.2f} µs, batched {batch * 1e6:.2f} µs "
          f"per frame (ratio {single / batch:.1f})")

    out = Path(tempfile.mkdtemp()) / "flow"
    boltzgen.train({
        "seed": 1, "system": {"potential": "double_well", "beta": 1.0},
        "model": {"kind": "neural_spline", "layers": 4, "hidden": [32, 32], "bins": 8, "tail_bound": 5.0},
        "train": {"smc": {"particles": 1024, "refit_steps": 50, "final_steps": 100}},
    }, output=out)
    engine = boltzgen.ProposalEngine(out / "model.json", seed=1, buffer=4096, threads=1)
    n = 20_000
    state = np.tile(x, (n, 1))
    single = median_per_item(lambda: [engine.propose(x) for _ in range(n)], n)
    batch = median_per_item(lambda: engine.propose_batch(state), n)
    print(f"flow proposals (buffer 4096, 1 libtorch thread): propose {single * 1e6:.2f} µs, "
          f"propose_batch {batch * 1e6:.2f} µs per proposal (ratio {single / batch:.1f})")


if __name__ == "__main__":
    main()
