#!/usr/bin/env bash
# GPU benchmark (CUDA backend): lora-grpo beside mlx-lm and mlx-lm-lora on one random
# Qwen3-0.6B-shaped 4-bit model. The lent NVIDIA machines have no network, so the `run`
# device tool carries everything from ignored folders of this checkout:
#
#   bench/gpu.sh prepare     here: release binary + plugins, a 32k-token tokenizer and the
#                            GRPO prompts into target/bench-gpu (~10 MB); Python wheels
#                            (mlx, mlx-lm, mlx-lm-lora, datasets and its two missing needs)
#                            into .whl (~2.3 MB)
#   then device calls (scripts/gpu.sh explains the CUDA libmlx.so parts):
#     carry target/cuda-bundle/{libmlx.so.xz.part-00,MANIFEST,needed.txt,mlx-include.tar.xz}:
#         scripts/gpu.sh stash
#     carry target/cuda-bundle/libmlx.so.xz.part-01:          scripts/gpu.sh stash
#     carry target/cuda-bundle/libmlx.so.xz.part-02, target/bench-gpu and .whl:
#         scripts/gpu.sh stash && bench/gpu.sh generate
#     (same machine, still warm)                              bench/gpu.sh grpo
#   bench/gpu.sh generate    there: writes the model ($HOME/bench-gpu-model), then
#                            `lora-grpo bench generate` and bench/mlx_lm_generate.py on it
#   bench/gpu.sh grpo        there: STEPS GRPO steps of bench/grpo/lora-grpo.yaml and of
#                            mlx-lm-lora with the same settings; results in $OUT
#   bench/gpu.sh scaling     there, on a machine with 2 GPUs (after `generate` or with the
#                            model written): the same GRPO steps with 8 prompts x 8 per
#                            step, on 1 GPU and on 2 (nccl, `lora-grpo launch -n 2`)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/bench-gpu
# BIN: the lora-grpo binary to measure; TAG: suffix of the output files (to compare two
# builds on one machine); PYTHON_SIDE=0 skips mlx-lm / mlx-lm-lora.
BIN=${BIN:-$DIR/lora-grpo}
TAG=${TAG:-}
PYTHON_SIDE=${PYTHON_SIDE:-1}
MODEL=$HOME/bench-gpu-model
RUN="scripts/gpu.sh run"
STEPS=${STEPS:-4}

# Python mlx from the carried wheels, on the same CUDA libmlx.so as the Rust binary.
python_env() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    $RUN true
    ln -sfn "$HOME/mlx-cuda/lib" /tmp/site/mlx/lib
    ln -sfn "$HOME/mlx-cuda/include" /tmp/site/mlx/include
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
}

case "${1:-}" in
prepare)
    cargo build --release -p lora-grpo -p lora-grpo-dataset-jsonl -p lora-grpo-reward-math-answer
    mkdir -p "$DIR/grpo-data"
    strip --strip-unneeded -o "$DIR/lora-grpo" target/release/lora-grpo
    cp target/release/liblora_grpo_dataset_jsonl.so target/release/liblora_grpo_reward_math_answer.so "$DIR/"
    python3 bench/make_model.py --tokenizer-only --vocab 32000 --out "$DIR/tokenizer"
    python3 bench/grpo/make_data.py && cp bench/out/grpo-data/train.jsonl "$DIR/grpo-data/"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_35_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
        mlx==0.32.2 mlx-lm==0.32.2 mlx-lm-lora==5.10.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    du -sh "$DIR" .whl
    ;;
generate)
    python_env
    $RUN "$BIN" doctor | tee "$OUT/doctor.txt"
    [ -d "$MODEL" ] || $RUN "$BIN" bench random-model --config bench/configs/qwen3-0.6b-q4.json --tokenizer "$DIR/tokenizer" --out "$MODEL"
    { date -u; nvidia-smi --query-gpu=name --format=csv,noheader
      $RUN "$BIN" bench generate --model "$MODEL" --repeats 3
      # One mlx-lm run on the H200 once hung past 100 s for no reason found: bound it.
      [ "$PYTHON_SIDE" = 0 ] || $RUN timeout 300 python3 bench/mlx_lm_generate.py --model "$MODEL" --keep-dtype --repeats 3
    } 2>&1 | tee "$OUT/generate$TAG.md"
    ;;
grpo)
    python_env
    # 4 prompts x 8 completions in 8 micro-batches, as mlx-lm-lora chunks them; then the
    # same batch in one micro-batch. The first step of each process includes MLX's kernel JIT.
    for run in "mb8 8" "mb1 1"; do
        read -r name micro <<<"$run"
        $RUN "$BIN" run bench/grpo/lora-grpo.yaml --no-progress \
            --set "model.path=$MODEL" --set "data.config.path=$DIR/grpo-data/train.jsonl" \
            --set "plugin_dirs=[$DIR]" --set "output_dir=$HOME/grpo-$name$TAG" --set "grpo.steps=$STEPS" \
            --set "grpo.gradient_accumulation_steps=$micro" >/dev/null
        cp "$HOME/grpo-$name$TAG/metrics.jsonl" "$OUT/grpo-lora-grpo-$name$TAG.jsonl"
    done
    [ "$PYTHON_SIDE" = 0 ] || $RUN python3 bench/grpo/mlx_lm_lora_run.py --model "$MODEL" --data "$DIR/grpo-data" \
        --steps "$STEPS" --out "$HOME/grpo-mlx-lm-lora" 2>"$OUT/mlx-lm-lora.err" | tee "$OUT/grpo-mlx-lm-lora.jsonl"
    ;;
scaling)
    [ -d "$MODEL" ] || $RUN "$BIN" bench random-model --config bench/configs/qwen3-0.6b-q4.json --tokenizer "$DIR/tokenizer" --out "$MODEL"
    # Same global batch (BATCH prompts x 8) and micro-batches of 8 sequences on both: one
    # rank runs BATCH of them, each of two ranks BATCH/2. Both use the nccl backend's
    # seeding (one process without a launcher is a world of one).
    BATCH=${BATCH:-8}
    common=(bench/grpo/lora-grpo.yaml --no-progress --set "model.path=$MODEL"
        --set "data.config.path=$DIR/grpo-data/train.jsonl" --set "plugin_dirs=[$DIR]"
        --set "grpo.steps=$STEPS" --set "grpo.batch_size=$BATCH" --set distributed.backend=nccl)
    nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpus.txt"
    $RUN "$BIN" run "${common[@]}" --set "output_dir=$HOME/scale-1" \
        --set "grpo.gradient_accumulation_steps=$BATCH" >"$OUT/scale-1.log" 2>&1
    $RUN "$BIN" launch -n 2 --backend nccl -- run "${common[@]}" --set "output_dir=$HOME/scale-2" \
        --set "grpo.gradient_accumulation_steps=$((BATCH / 2))" >"$OUT/scale-2.log" 2>&1
    for n in 1 2; do cp "$HOME/scale-$n/metrics.jsonl" "$OUT/scale-$n.jsonl"; done
    python3 - "$OUT" <<'PY'
import json, sys
for n in (1, 2):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/scale-{n}.jsonl")]
    steady = rows[1:]  # step 1 includes MLX's kernel compilation
    mean = sum(r["step_seconds"] for r in steady) / len(steady)
    print(f"{n} GPU(s): steps 2-{len(rows)} mean {mean:.3f} s/step = {1 / mean:.3f} steps/s; "
          f"step s {[round(r['step_seconds'], 2) for r in rows]}; "
          f"rollout s {[round(r['generation_seconds'], 2) for r in rows]}; "
          f"peak GB {[round(r['peak_memory_bytes'] / 1e9, 2) for r in rows]}")
PY
    ;;
*) sed -n '2,25p' "$0"; exit 2 ;;
esac
