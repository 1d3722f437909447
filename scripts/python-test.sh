#!/usr/bin/env bash
# Builds the Python module (`import boltzgen`) into the venv of scripts/env.sh with maturin and
# runs its tests with pytest. scripts/test.sh calls it after the Rust tests, whose build
# (the `boltzgen` command, the C ABI's libboltzgen.so) the Python tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# What the Python side needs beyond the venv of env.sh, from PyPI, once: maturin (the build),
# pytest, OpenMM with openmmtools for the `boltzgen.openmm` move and its tests, and matplotlib
# for the example in examples/python.
BOLTZGEN_PYTHON_TEST_SPECS=(maturin==1.16.0 pytest==9.2.0 openmm==8.6.1 openmmtools==0.27.0 matplotlib==3.11.2)
marker="$BOLTZGEN_VENV/.boltzgen-ready-python-tests-$(printf '%s ' "${BOLTZGEN_PYTHON_TEST_SPECS[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$marker" ]; then
    echo "boltzgen: installing ${BOLTZGEN_PYTHON_TEST_SPECS[*]} into $BOLTZGEN_VENV; this happens once" >&2
    "$BOLTZGEN_VENV/bin/python" -m pip install --quiet "${BOLTZGEN_PYTHON_TEST_SPECS[@]}"
    touch "$marker"
fi

# The same features as the Rust build, so that cargo reuses its compiled boltzgen crate.
(cd python && VIRTUAL_ENV="$BOLTZGEN_VENV" maturin develop --release --features "$BOLTZGEN_CARGO_FEATURES")
"$BOLTZGEN_VENV/bin/python" -m pytest python/tests -q -p no:cacheprovider --durations=8 "$@"
