#!/usr/bin/env bash
# Generation benchmark, lora-grpo vs mlx-lm on the same model directory, one after the
# other in this process-free shell (nothing else of ours running). Appends everything
# to bench/out/generate.md.
#   bench/setup_python.sh && target/pyenv/bin/python bench/make_model.py   (once)
#   cargo build --release && bench/generate.sh [MODEL_DIR] [extra args for both]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-bench/out/qwen3-tiny-q4}
shift || true
OUT=bench/out/generate.md
mkdir -p bench/out
{
    echo "## $(date -u +%Y-%m-%dT%H:%MZ) $MODEL $*"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo '```'
    ./target/release/lora-grpo bench generate --model "$MODEL" "$@"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    target/pyenv/bin/python bench/mlx_lm_generate.py --model "$MODEL" "$@"
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo '```'
} 2>&1 | tee -a "$OUT"
