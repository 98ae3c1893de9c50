"""mlx-lm-lora's side of the GRPO step benchmark: runs its own trainer (`mlx_lm_lora.train`,
version 5.10.2, the code path of `mlx_lm_lora.train --train-mode grpo`) with the settings of
bench/grpo/lora-grpo.yaml, and prints one JSON line per step.

    target/pyenv-lora/bin/python bench/grpo/mlx_lm_lora_run.py --model bench/out/qwen3-tiny-q4-f32

Settings are passed as a dict to `mlx_lm_lora.train.main`, not as a YAML config: in 5.10.2
the CLI parser's defaults (group_size 4, max_completion_length 512, epsilon 1e-4,
temperature 1.0, gradient_accumulation_steps 1) silently win over the same keys in a
YAML file (`main` only fills YAML values where the parsed argument is None).

Instrumentation only, the training code is untouched: `run` gets a TrainingCallback that
reads the trainer's own per-step report (steps_per_report 1: iterations/s and MLX peak
memory), then resets MLX's peak counter so that each step reports its own peak (the
weights, both copies, stay allocated and are counted every step); `generate_grpo` is
wrapped to time the rollout.
"""

import argparse
import json
import time

import mlx.core as mx
import mlx_lm_lora.train as train
from mlx_lm.tuner.callbacks import TrainingCallback
from mlx_lm_lora.trainer import grpo_trainer


def settings(model, steps, out, data):
    return {
        "model": model, "train": True, "train_mode": "grpo", "train_type": "lora",
        "data": data, "iters": steps, "batch_size": 4, "group_size": 8,
        "max_completion_length": 128, "temperature": 0.8, "epsilon": 0.2, "beta": 0.1,
        "grpo_loss_type": "grpo", "learning_rate": 1e-5, "optimizer": "adamw",
        "optimizer_config": {"adamw": {"weight_decay": 0.0}}, "num_layers": -1,
        "lora_parameters": {"rank": 8, "scale": 10.0, "dropout": 0.0},
        "gradient_accumulation_steps": 1, "steps_per_report": 1, "steps_per_eval": 10**9,
        "save_every": 10**9, "adapter_path": out, "fuse": False, "seed": 0,
    }


class StepReport(TrainingCallback):
    def __init__(self, rollouts):
        self.rollouts = rollouts

    def on_train_loss_report(self, info):
        print(json.dumps({
            "step": info["iteration"], "step_seconds": 1.0 / info["iterations_per_second"],
            "generation_seconds": self.rollouts[-1], "peak_memory_bytes": info["peak_memory"] * 1e9,
            "loss": info["train_loss"], "reward_mean": info.get("train_total_rewards_mean"),
            "completion_length_mean": info.get("train_average_generated_tokens"),
        }), flush=True)
        mx.reset_peak_memory()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", default="bench/out/grpo-mlx-lm-lora")
    p.add_argument("--data", default="bench/out/grpo-data", help="folder holding train.jsonl")
    args = p.parse_args()

    rollouts = []
    generate = grpo_trainer.generate_grpo

    def timed_generate(*a, **k):
        start = time.perf_counter()
        result = generate(*a, **k)
        mx.eval([c for c in result[0]])
        rollouts.append(time.perf_counter() - start)
        return result

    grpo_trainer.generate_grpo = timed_generate
    run = train.run

    def run_with_report(a, training_callback=None):
        keys = ["group_size", "batch_size", "max_completion_length", "temperature", "epsilon", "beta",
                "grpo_loss_type", "num_layers", "lora_parameters", "optimizer", "learning_rate"]
        print(json.dumps({"effective_settings": {k: getattr(a, k) for k in keys}}), flush=True)
        return run(a, training_callback=StepReport(rollouts))

    train.run = run_with_report
    train.main(settings(args.model, args.steps, args.out, args.data))


if __name__ == "__main__":
    main()
