#!/usr/bin/env bash
# The behaviour oracle of refactors (issue 20): runs every example config (shrunk) and the
# configs in scripts/oracle/ at a fixed seed and thread count, and digests their results.
#
#   scripts/oracle.sh record [FILE]   record the digests (default scripts/oracle/expected.txt)
#   scripts/oracle.sh check [FILE]    compare against them; exit 1 on any difference
#
# A refactor that claims to change no result must leave `check` passing. About 5 minutes on
# 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
mode="${1:?usage: scripts/oracle.sh record|check [FILE]}"
file="${2:-scripts/oracle/expected.txt}"
cargo build --release --features "$BOLTZGEN_CARGO_FEATURES" --bin boltzgen
python3 scripts/oracle/oracle.py "$mode" "$file" --exe target/release/boltzgen
