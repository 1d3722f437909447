#!/usr/bin/env bash
# Runs the boltzgen and normflows reverse-KL benchmarks back to back on the same machine,
# alternating twice so that drifting load affects both sides alike.
# Needs normflows in the venv: "$BOLTZGEN_VENV/bin/pip" install normflows==1.7.3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --bench reverse_kl_many_well
bin=$(ls -t target/release/deps/reverse_kl_many_well-* | grep -v '\.d$' | head -1)
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F)"
for round in $(seq "${ROUNDS:-2}"); do
    "$bin"
    python benches/python/normflows_many_well.py
done
