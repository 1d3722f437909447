"""Ctrl-C from Python: a long run stops at its next step or block with KeyboardInterrupt
(the GIL is released while it runs, so boltzgen runs Python's signal handlers itself), the
sampler checkpoints first, and resuming gives the same samples as a run never interrupted."""

import json
import subprocess
import sys
import textwrap

# The child starts the run, and a thread of its own sends it SIGINT once the first samples are
# on disk (not after a fixed time: the machine's speed does not decide what is tested).
CHILD = textwrap.dedent('''
    import json, os, signal, sys, threading, time
    from pathlib import Path
    import boltzgen
    config, out, watch = json.loads(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    def interrupt():
        # `watch` holds at least two lines (a CSV's header and a row), or exists.
        target = out / watch
        while not (target.is_file() and (watch.startswith(".") or target.read_bytes().count(b"\\n") >= 2)):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        if "sample" in config:
            boltzgen.sample(config, output=out)
        else:
            boltzgen.train(config, output=out)
    except KeyboardInterrupt as e:
        print("interrupted:", e)
        sys.exit(0)
    print("finished")
''')

SAMPLE = {
    "seed": 5,
    "system": {"potential": "double_well", "beta": 1.0},
    "sample": {
        "chains": 4, "burn_in": 100, "steps": 100_000, "thin": 10, "checkpoint_every": 1,
        "start": [-1.7, 0.0],
        "moves": [{"kind": "random_walk", "weight": 1.0, "step": 0.5}],
    },
}


def run_child(config, out, watch):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(config), str(out), watch],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sampling_stops_at_a_checkpoint_and_resumes_exactly(tmp_path):
    import boltzgen

    out = run_child(SAMPLE, tmp_path / "stopped", "samples.csv")
    assert out.startswith("interrupted: interrupted during sampling"), out
    partial = (tmp_path / "stopped" / "samples.csv").read_text().count("\n")
    boltzgen.sample(SAMPLE, output=tmp_path / "stopped", resume=True)
    boltzgen.sample(SAMPLE, output=tmp_path / "whole")
    whole = (tmp_path / "whole" / "samples.csv").read_bytes()
    assert 1 < partial < whole.count(b"\n"), (partial, whole.count(b"\n"))
    assert (tmp_path / "stopped" / "samples.csv").read_bytes() == whole
    assert (tmp_path / "stopped" / "samples.xyz").read_bytes() == (tmp_path / "whole" / "samples.xyz").read_bytes()


def test_training_stops_with_keyboard_interrupt(tmp_path):
    config = {
        "seed": 1,
        "system": {"potential": "double_well", "beta": 1.0},
        "model": {"kind": "real_nvp", "layers": 2, "hidden": [16]},
        "train": {"method": "gradient", "steps": 10_000_000, "batch_size": 64,
                  "forward_weight": 0.0, "reverse_weight": 1.0},
    }
    # The signal comes once the run directory is made, i.e. while the flow is built or trains.
    out = run_child(config, tmp_path / "run", ".boltzgen-run")
    assert out.startswith("interrupted: interrupted during training"), out
