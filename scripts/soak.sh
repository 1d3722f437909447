#!/usr/bin/env bash
# Soak test of crash safety: `boltzgen train` and `boltzgen sample` are killed with SIGKILL at
# random moments, KILLS times each, and resumed with --resume every time. The final files must
# equal an uninterrupted run's byte for byte, and no temporary file may be left behind.
#
#   scripts/soak.sh [KILLS] [WORKDIR] [sample|train]
#
# Defaults: 50 kills each, a fresh temporary directory, both commands.
#
# Needs a release build of the binary (the script builds it). Takes about 10 minutes at 50.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
KILLS="${1:-50}"
WORK="${2:-$(mktemp -d -t boltzgen-soak.XXXXXX)}"
ONLY="${3:-}"
cargo build --release --features "$BOLTZGEN_CARGO_FEATURES" --bin boltzgen --quiet
BIN="$PWD/target/release/boltzgen"
mkdir -p "$WORK"
cd "$WORK"
echo "soak: $KILLS kills each, in $WORK"

# Sampling: local moves on DW4, checkpointed every block; about 3 s uninterrupted.
cat > sample.toml <<'EOF'
seed = 11
[system]
potential = "dw4"
beta = 1.0
[sample]
chains = 8
burn_in = 200
steps = 6000
thin = 2
sync_interval = 50
checkpoint_every = 1
start = [-2.0, -2.0, 2.0, -2.0, 2.0, 2.0, -2.0, 2.0]
[[sample.moves]]
kind = "particle_walk"
weight = 2.0
step = 0.3
spatial_dim = 2
[[sample.moves]]
kind = "mala"
weight = 1.0
step = 0.05
[analysis]
cv = { kind = "distance", particles = [0, 1] }
EOF

# Training: a small spline flow on the double well by annealed reverse KL; checkpoints every
# 50 steps.
cat > train.toml <<'EOF'
seed = 3
[system]
potential = "double_well"
beta = 1.0
[model]
kind = "neural_spline"
layers = 2
hidden = [16]
[train]
steps = 1200
batch_size = 128
learning_rate = 3e-3
forward_weight = 0.0
reverse_weight = 1.0
anneal_from_beta = 0.2
anneal_steps = 600
EOF

# One thread: libtorch's reductions are then deterministic, so a resumed training run is
# bit-identical to an uninterrupted one.
run() { "$BIN" --threads 1 -q "$@"; }

soak() {
    local command="$1" config="$2" dir="$3"
    shift 3
    local files=("$@")
    local start end
    start=$(date +%s.%N)
    run "$command" "$config" -o "ref_$dir"
    end=$(date +%s.%N)
    local whole_ms
    whole_ms=$(python3 -c "print(int(($end - $start) * 1000))")
    local kills=0 finished_early=0
    while [ "$kills" -lt "$KILLS" ]; do
        "$BIN" --threads 1 -q "$command" "$config" -o "$dir" --resume &
        local pid=$!
        # Anywhere from the start-up to past the whole run's length.
        local delay_ms=$((RANDOM % (whole_ms + 200)))
        sleep "$(python3 -c "print($delay_ms / 1000)")"
        if kill -9 "$pid" 2>/dev/null; then
            kills=$((kills + 1))
            wait "$pid" 2>/dev/null || true
        else
            # It ended before the kill: it must have succeeded. Start the run over, so that
            # every kill lands in a live run.
            if ! wait "$pid"; then
                echo "soak: FAILED: a resumed $command exited with an error" >&2
                exit 1
            fi
            finished_early=$((finished_early + 1))
            rm -rf "$dir"
        fi
    done
    run "$command" "$config" -o "$dir" --resume
    for f in "${files[@]}"; do
        if ! cmp -s "ref_$dir/$f" "$dir/$f"; then
            echo "soak: FAILED: $dir/$f differs from the uninterrupted run's" >&2
            exit 1
        fi
    done
    local leftovers
    leftovers=$(find "$dir" -name '.*.tmp-*' -o -name '*.truncating.*' | wc -l)
    if [ "$leftovers" -ne 0 ]; then
        echo "soak: FAILED: $leftovers temporary files left in $dir" >&2
        exit 1
    fi
    echo "soak: $command: $kills kills (+$finished_early runs that ended first), resumed each time; ${files[*]} identical to the uninterrupted run"
}

if [ "$ONLY" != train ]; then
    soak sample sample.toml sampled samples.xyz samples.csv
fi
if [ "$ONLY" != sample ]; then
    soak train train.toml trained model.safetensors train_loss.csv
fi
echo "soak: passed"
