#!/usr/bin/env python3
"""The behaviour oracle of the engine refactor (issue 20): every example config, and the
configs in this directory that cover what the examples do not (the CLI tests' runs, VAE and
latent-walk moves, balanced flow moves), run at a fixed seed and thread count, shrunk so that
the whole set takes minutes; then a digest of every output that carries a result.

    oracle.py record FILE --exe BOLTZGEN    writes the digests to FILE
    oracle.py check FILE --exe BOLTZGEN     compares against FILE, exit 1 on any difference

Digested, bit for bit: samples.csv, weights.csv and every other CSV of the run directory, and
the numbers of every *_report.json (keys naming wall-clock times and paths are dropped: they
change from run to run without the results changing). Models and checkpoints are not
digested: their layout may change in a refactor; what they lead to may not.
"""

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Caps that keep each run to seconds while every stage still runs (train, relax, balance
# pilots, sample with burn-in and adaptation, reweight with bootstrap).
CAPS = {
    ("train", "steps"): 40,
    ("train", "anneal_steps"): 20,
    ("train", "reverse_from_step"): 20,
    ("train", "eval_every"): 20,
    ("train", "checkpoint_every"): 20,
    ("data", "relax", "steps"): 10,
    ("sample", "burn_in"): 100,
    ("sample", "steps"): 300,
    ("sample", "balance", "pilot"): 1000,
    ("reweight", "draws"): 3000,
    ("reweight", "bootstrap"): 20,
    ("reweight", "resample"): 100,
    ("reweight", "balance", "pilot"): 1000,
}

# The temporary directory of the current runs (paths in reports are written relative to it).
TMP_ROOT = [None]

# Report keys whose values are not results.
VOLATILE = ("seconds", "wall", "elapsed", "time_s", "path", "file", "dir", "started", "finished",
            "version", "host", "threads_used")
# Keys a change adds to the reports, named in ORACLE_NEW_KEYS (comma-separated) so that
# `check` can confirm every number that was there before is unchanged; then `record`.
NEW_KEYS = tuple(k for k in os.environ.get("ORACLE_NEW_KEYS", "").split(",") if k)


def shrink(config):
    for path, cap in CAPS.items():
        node = config
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict) and isinstance(node.get(path[-1]), int):
            node[path[-1]] = min(node[path[-1]], cap)
    sample = config.get("sample")
    if isinstance(sample, dict) and isinstance(sample.get("sync_interval"), int):
        sample["sync_interval"] = min(sample["sync_interval"], 50)
    return config


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return ("inf" if v > 0 else "-inf") if not math.isnan(v) else "nan"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def is_table_array(v):
    return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)


def toml_table(table, prefix, out):
    """Scalars and inline values first, then sub-tables and arrays of tables."""
    for k, v in table.items():
        if not isinstance(v, dict) and not is_table_array(v):
            out.append(f"{json.dumps(k)} = {toml_value(v)}")
    for k, v in table.items():
        name = f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k)
        if isinstance(v, dict):
            out.append(f"\n[{name}]")
            toml_table(v, name, out)
        elif is_table_array(v):
            for item in v:
                out.append(f"\n[[{name}]]")
                toml_table(item, name, out)


def to_toml(config):
    out = []
    toml_table(config, "", out)
    return "\n".join(out) + "\n"


def numbers(value, prefix=""):
    """The report's numbers and strings as sorted `path = value` lines."""
    lines = []
    if isinstance(value, dict):
        for k in sorted(value):
            if any(word in k.lower() for word in VOLATILE) or k in NEW_KEYS:
                continue
            lines += numbers(value[k], f"{prefix}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            lines += numbers(v, f"{prefix}[{i}]")
    elif isinstance(value, float):
        lines.append(f"{prefix} = {value.hex()}")
    elif isinstance(value, str):
        # Paths name the temporary directory, which differs from run to run.
        lines.append(f"{prefix} = {value.replace(str(TMP_ROOT[0]), '<tmp>')!r}")
    else:
        lines.append(f"{prefix} = {value!r}")
    return lines


def digest_run(out_dir):
    digests = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir).as_posix()
        if not path.is_file():
            continue
        if path.suffix == ".csv":
            digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        elif path.name.endswith("_report.json"):
            text = "\n".join(numbers(json.loads(path.read_text())))
            digests[rel] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return digests


def cases():
    found = sorted((ROOT / "examples").glob("*.toml")) + sorted(Path(__file__).parent.glob("*.toml"))
    return [(p.stem if p.parent.name == "examples" else f"oracle/{p.stem}", p) for p in found]


def run_all(exe):
    results = {}
    with tempfile.TemporaryDirectory(prefix="boltzgen-oracle-") as tmp:
        # The examples' layout: configs in examples/ (data/ beside them), runs in runs/ (where
        # ala2_finetune.toml finds ala2's model, as ../runs/ala2/model.json).
        TMP_ROOT[0] = Path(tmp).resolve()
        tmp = Path(tmp) / "examples"
        tmp.mkdir()
        os.symlink(ROOT / "examples" / "data", tmp / "data")
        for name, path in cases():
            config = tomllib.loads(path.read_text())
            # The examples are shrunk; this directory's configs are small already.
            if not name.startswith("oracle/"):
                config = shrink(config)
            cfg = tmp / (name.replace("/", "_") + ".toml")
            cfg.write_text(to_toml(config))
            out = tmp.parent / "runs" / cfg.stem
            env = dict(os.environ, OMP_NUM_THREADS="1")
            proc = subprocess.run(
                [exe, "run", str(cfg), "-o", str(out), "--threads", "2", "--quiet"],
                cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name}: boltzgen failed:\n{proc.stderr}", file=sys.stderr)
                results[name] = {"exit": str(proc.returncode)}
                continue
            results[name] = digest_run(out)
            print(f"{name}: {len(results[name])} outputs digested", file=sys.stderr)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["record", "check"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--exe", required=True)
    args = parser.parse_args()
    results = run_all(str(Path(args.exe).resolve()))
    lines = [f"{case} {out} {d}" for case in sorted(results) for out, d in sorted(results[case].items())]
    if args.mode == "record":
        args.file.write_text("\n".join(lines) + "\n")
        print(f"recorded {len(lines)} digests of {len(results)} runs in {args.file}")
        return 0
    expected = set(args.file.read_text().split("\n")) - {""}
    got = set(lines)
    for line in sorted(expected - got):
        print(f"expected: {line}")
    for line in sorted(got - expected):
        print(f"got:      {line}")
    same = len(expected & got)
    print(f"{same} of {len(expected)} digests identical")
    return 0 if expected == got else 1


if __name__ == "__main__":
    sys.exit(main())
