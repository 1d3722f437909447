#!/usr/bin/env bash
# Runs the C example (examples/c/host_mc.c) under valgrind's memcheck and fails on any memory
# error or on memory lost (definitely or indirectly) at exit.
#
#   scripts/valgrind-c-example.sh [MODEL.json] [STEPS]
#
# Without MODEL it first trains the built-in double-well example's flow (about 15 s). libtorch
# itself keeps a few thread-pool blocks alive until exit ("possibly lost" / "still
# reachable"); those are reported but not counted as failures. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
cargo build --release --features "$BOLTZGEN_CARGO_FEATURES" --lib --bin boltzgen
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
model="${1:-}"
if [ -z "$model" ]; then
    target/release/boltzgen train --quiet -o "$work/run" examples/double_well.toml
    model="$work/run/model.json"
fi
lib="$PWD/target/release"
cc -g -O1 -std=c99 -Wall -Wextra -Werror -I include examples/c/host_mc.c \
    -L "$lib" -lboltzgen -Wl,-rpath,"$lib" -lm -o "$work/host_mc"
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=3 --num-callers=30 \
    "$work/host_mc" "$model" "${2:-400}" 3
echo "valgrind: no memory errors, nothing definitely or indirectly lost"
