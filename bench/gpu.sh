#!/usr/bin/env bash
# GPU benchmark (CUDA backend), lora-grpo only: Python mlx-lm is not installed on the lent
# NVIDIA machines. The `run` device tool sends the checkout the session started in (not a
# helper's worktree), so everything the device needs goes into target/bench-gpu there.
#
#   bench/gpu.sh prepare     here, in that checkout: release binary + plugins, a 32k-token
#                            tokenizer and the GRPO prompts into target/bench-gpu (~10 MB)
#   then three device calls (scripts/gpu.sh explains the CUDA libmlx.so parts):
#     carry target/cuda-bundle/{libmlx.so.xz.part-00,MANIFEST,needed.txt,mlx-include.tar.xz}:
#         scripts/gpu.sh stash
#     carry target/cuda-bundle/libmlx.so.xz.part-01:          scripts/gpu.sh stash
#     carry target/cuda-bundle/libmlx.so.xz.part-02 and target/bench-gpu:
#         scripts/gpu.sh stash && bench/gpu.sh device
#   bench/gpu.sh device      there: random Qwen3-0.6B-shaped 4-bit model built in memory,
#                            `bench generate`, then 4 GRPO steps twice; results in $OUT
# RUNNER (default `scripts/gpu.sh run`) and CONFIG / STEPS can be overridden for a dry run
# on the CPU: RUNNER= CONFIG=bench/configs/qwen3-tiny-q4.json STEPS=1 OUT=/tmp/o bench/gpu.sh device
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/bench-gpu

case "${1:-}" in
prepare)
    cargo build --release -p lora-grpo -p lora-grpo-dataset-jsonl -p lora-grpo-reward-math-answer
    mkdir -p "$DIR"
    strip --strip-unneeded -o "$DIR/lora-grpo" target/release/lora-grpo
    cp target/release/liblora_grpo_dataset_jsonl.so target/release/liblora_grpo_reward_math_answer.so "$DIR/"
    target/pyenv/bin/python bench/make_model.py --tokenizer-only --vocab 32000 --out "$DIR/tokenizer"
    python3 bench/grpo/make_data.py
    mkdir -p "$DIR/grpo-data" && cp bench/out/grpo-data/train.jsonl "$DIR/grpo-data/"
    du -sh "$DIR"
    ;;
device)
    RUNNER=${RUNNER-scripts/gpu.sh run}
    CONFIG=${CONFIG:-bench/configs/qwen3-0.6b-q4.json}
    STEPS=${STEPS:-4}
    BIN="$DIR/lora-grpo"
    MODEL=$HOME/bench-gpu-model
    $RUNNER "$BIN" doctor | tee "$OUT/doctor.txt"
    { date -u; $RUNNER "$BIN" bench generate --config "$CONFIG" --repeats 3; } 2>&1 | tee "$OUT/generate.md"
    $RUNNER "$BIN" bench random-model --config "$CONFIG" --tokenizer "$DIR/tokenizer" --out "$MODEL"
    # The CPU benchmark's recipe (4 prompts x 8, 8 micro-batches), then 8 prompts x 8 in one
    # micro-batch; the first step of each process includes MLX's kernel JIT.
    for run in "b4x8-mb8 4 8" "b8x8-mb1 8 1"; do
        read -r name batch micro <<<"$run"
        $RUNNER "$BIN" run bench/grpo/lora-grpo.yaml --no-progress \
            --set "model.path=$MODEL" --set "data.config.path=$DIR/grpo-data/train.jsonl" \
            --set "plugin_dirs=[$DIR]" --set "output_dir=$HOME/grpo-$name" --set "grpo.steps=$STEPS" \
            --set "grpo.batch_size=$batch" --set "grpo.gradient_accumulation_steps=$micro" >/dev/null
        cp "$HOME/grpo-$name/metrics.jsonl" "$OUT/grpo-$name.jsonl"
    done
    ;;
*) sed -n '2,18p' "$0"; exit 2 ;;
esac
