#!/usr/bin/env bash
# The README's main-job command: set up (once), build, and run the default example.
# Without arguments it runs `boltzgen run --force` (the built-in 2-D double well, written to
# runs/double_well, replacing an earlier run); with arguments it passes them to boltzgen.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ $# -eq 0 ]; then
    set -- run --force
fi
cargo run --release --features "$BOLTZGEN_CARGO_FEATURES" --bin boltzgen -- "$@"
