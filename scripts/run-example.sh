#!/usr/bin/env bash
# The README's main-job command: set up (once), build, and run the default example.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --release --bin boltzgen -- "$@"
