#!/usr/bin/env bash
# The README's test command, and what CI runs: set up (once), build, run every test (Rust,
# then Python). Arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo test --workspace --release --features "$BOLTZGEN_CARGO_FEATURES" "$@"
scripts/python-test.sh
