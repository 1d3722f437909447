#!/usr/bin/env bash
# Parallel efficiency of `mpirun -np 2 boltzgen sample` against one process, on a CPU-bound
# target (alanine dipeptide replica exchange 300 → 1000 K, local moves only, one thread per
# rank), and the cost of a swap round (the ranks' exchange of chains) from the same run with
# swaps 10× more often. Alternates the variants ROUNDS times (default 3) and prints medians;
# STEPS production steps per chain (default 40 000).
#
#   benches/mpi_scaling.sh            (needs a build with --features mpi: scripts/env.sh's)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --features "$BOLTZGEN_CARGO_FEATURES" --bin boltzgen --quiet
exe="$PWD/target/release/boltzgen"
rounds="${ROUNDS:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r examples/data "$work/data"
make_config() { # swap_interval steps
    sed -e "s/^steps = .*/steps = $2/" -e "s/^burn_in = .*/burn_in = 1000/" \
        -e "s/^thin = .*/thin = 1000/" -e "s/^swap_interval = .*/swap_interval = $1/" \
        -e "s/^checkpoint_every = .*/checkpoint_every = 100000/" \
        examples/ala2_exchange.toml > "$work/x$1.toml"
}
steps="${STEPS:-40000}"
make_config 20 "$steps"
make_config 2 "$steps"
declare -A times
run() { # name np config
    local start end
    start=$(date +%s.%N)
    if [ "$2" = 1 ]; then
        (cd "$work" && "$exe" sample "$3" -o "out_$1" -q --force --threads 1)
    else
        (cd "$work" && mpirun --allow-run-as-root --oversubscribe -np "$2" "$exe" sample "$3" -o "out_$1" -q --force --threads 1)
    fi
    end=$(date +%s.%N)
    times[$1]+="$(echo "$end - $start" | bc) "
}
for _ in $(seq "$rounds"); do
    run one 1 x20.toml
    run two 2 x20.toml
    run two_swap2 2 x2.toml
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
evals=$(python3 -c "import json;print(json.load(open('$work/out_one/sample_report.json'))['energy_evaluations'])")
chains=$(python3 -c "import json;r=json.load(open('$work/out_one/sample_report.json'))['replica_exchange'];print(r['ladders']*len(r['betas']))")
t1=$(echo "${times[one]}" | median); t2=$(echo "${times[two]}" | median); t2s=$(echo "${times[two_swap2]}" | median)
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo "one process, 1 thread:      ${times[one]}→ median $t1 s ($evals energy evaluations, $chains chains)"
echo "2 ranks, 1 thread each:     ${times[two]}→ median $t2 s"
echo "2 ranks, swaps every 2:     ${times[two_swap2]}→ median $t2s s"
python3 - "$t1" "$t2" "$t2s" "$steps" <<'PY'
import sys
t1, t2, t2s, steps = map(float, sys.argv[1:])
print(f"efficiency 1 → 2 ranks: {t1 / (2 * t2):.3f}")
extra_rounds = (steps + 1000) / 2 - (steps + 1000) / 20
print(f"cost of one exchange round at 2 ranks: {(t2s - t2) / extra_rounds * 1e6:.1f} µs")
PY
