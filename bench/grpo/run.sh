#!/usr/bin/env bash
# GRPO step benchmark: lora-grpo vs mlx-lm-lora 5.10.2, same model, data and settings,
# run one after the other. Appends per-step JSON lines to bench/out/grpo.md.
#   bench/setup_python.sh; target/pyenv/bin/python bench/make_model.py;
#   target/pyenv/bin/python bench/make_model.py --float32 --out bench/out/qwen3-tiny-q4-f32;
#   python3 bench/grpo/make_data.py;
#   cargo build --release -p lora-grpo -p lora-grpo-dataset-jsonl -p lora-grpo-reward-math-answer
#   bench/grpo/run.sh [STEPS] [BF16_STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-3}
BF16_STEPS=${2:-1}
OUT=bench/out/grpo.md
load() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"; }
{
    echo "## $(date -u +%Y-%m-%dT%H:%MZ) GRPO steps=$STEPS bf16_steps=$BF16_STEPS"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    load
    echo "### lora-grpo (bench/out/qwen3-tiny-q4; computes in f32 on the CPU)"
    rm -rf bench/out/grpo-lora-grpo
    ./target/release/lora-grpo run bench/grpo/lora-grpo.yaml --set grpo.steps="$STEPS" --no-progress >/dev/null
    python3 -c "
import json
for l in open('bench/out/grpo-lora-grpo/metrics.jsonl'):
    r = json.loads(l)
    print(json.dumps({k: r[k] for k in ('step', 'step_seconds', 'generation_seconds', 'training_seconds', 'peak_memory_bytes', 'loss', 'reward_mean', 'completion_length_mean')}))"
    load
    echo "### mlx-lm-lora (bench/out/qwen3-tiny-q4-f32: same values, f32 scales, so it computes in f32 too)"
    rm -rf bench/out/grpo-mlx-lm-lora
    target/pyenv-lora/bin/python bench/grpo/mlx_lm_lora_run.py --model bench/out/qwen3-tiny-q4-f32 --steps "$STEPS" 2>/dev/null | grep '^{'
    load
    if [ "$BF16_STEPS" -gt 0 ]; then
        echo "### mlx-lm-lora as users run it (bench/out/qwen3-tiny-q4, bf16: emulated on the CPU)"
        target/pyenv-lora/bin/python bench/grpo/mlx_lm_lora_run.py --model bench/out/qwen3-tiny-q4 --steps "$BF16_STEPS" 2>/dev/null | grep '^{'
        load
    fi
} 2>&1 | tee -a "$OUT"
