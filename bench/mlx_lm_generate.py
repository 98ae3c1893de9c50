"""mlx-lm's side of `lora-grpo bench generate`: the same two scenarios on the same model
directory with the same prompt ids, through mlx-lm's own entry points, printed as the
same Markdown table.

    target/pyenv/bin/python bench/mlx_lm_generate.py --model bench/out/qwen3-small-q4

- batch 1: `stream_generate`, greedy, one prompt of --prompt-tokens ids;
- GRPO BxG: `batch_generate` on the B prompts each repeated G times (mlx-lm has no shared
  prefill for a group), sampling at --temperature, every sequence in one batch
  (completion_batch_size = prefill_batch_size = B*G).

EOS is disabled on both sides so that every completion has exactly --max-tokens tokens.
--lora-rank R puts mlx-lm LoRA layers on every linear (as a GRPO rollout runs).
On the CPU the model is cast to float32 (`model.set_dtype`), as lora-grpo's loader does
there: MLX emulates bf16 arithmetic on the CPU (about 7x slower). --keep-dtype skips it.
Prefill and decode times are mlx-lm's own accounting (prompt_tps / generation_tps of the
last response, BatchStats); "total s" is wall time around the call.
"""

import argparse
import time

import mlx.core as mx
from mlx_lm import batch_generate, load, stream_generate
from mlx_lm.sample_utils import make_sampler
from mlx_lm.tuner.utils import linear_to_lora_layers


def bench_prompt(index, length, vocab):
    """Same ids as lora-grpo's `bench::generate::bench_prompt`."""
    return [(index * 7919 + t * 104729 + 17) % vocab for t in range(length)]


def median_run(fn, repeats):
    runs = sorted((fn() for _ in range(max(repeats, 1))), key=lambda r: r["total_s"])
    return runs[len(runs) // 2]


def single(model, tokenizer, prompt, max_tokens):
    mx.reset_peak_memory()
    start = time.perf_counter()
    for last in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
        pass
    total = time.perf_counter() - start
    return dict(
        scenario="batch 1", sequences=1, prompt_tok=last.prompt_tokens,
        prefill_s=last.prompt_tokens / last.prompt_tps, new_tok=last.generation_tokens,
        decode_s=last.generation_tokens / last.generation_tps, total_s=total,
        peak_mb=mx.get_peak_memory() / 1e6,
    )


def grouped(model, tokenizer, prompts, group, max_tokens, temperature, name):
    rows = [p for p in prompts for _ in range(group)]
    mx.reset_peak_memory()
    start = time.perf_counter()
    out = batch_generate(
        model, tokenizer, rows, max_tokens=max_tokens, sampler=make_sampler(temp=temperature),
        completion_batch_size=len(rows), prefill_batch_size=len(rows),
    )
    total = time.perf_counter() - start
    s = out.stats
    return dict(
        scenario=name, sequences=len(rows), prompt_tok=s.prompt_tokens, prefill_s=s.prompt_time,
        new_tok=s.generation_tokens, decode_s=s.generation_time, total_s=total,
        peak_mb=mx.get_peak_memory() / 1e6,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-dtype", action="store_true")
    p.add_argument("--lora-rank", type=int, help="LoRA adapters of this rank on every linear of every block")
    args = p.parse_args()

    mx.random.seed(args.seed)
    start = time.perf_counter()
    model, tokenizer = load(args.model)
    if not args.keep_dtype and mx.default_device() == mx.cpu:
        model.set_dtype(mx.float32)
    if args.lora_rank:
        # mlx-lm's own LoRA layers, as mlx-lm-lora's rollouts run them.
        linear_to_lora_layers(model, len(model.layers), dict(rank=args.lora_rank, scale=20.0, dropout=0.0))
    mx.eval(model.parameters())
    tokenizer.eos_token_ids = []
    vocab = model.args.vocab_size
    lora = f", LoRA rank {args.lora_rank} on every linear" if args.lora_rank else ""
    print(f"model: {args.model}{' (checkpoint dtype)' if args.keep_dtype else ''}{lora}")
    print(f"MLX {mx.__version__} on {mx.default_device()}; weights {mx.get_active_memory() / 1e6:.1f} MB, "
          f"loaded in {time.perf_counter() - start:.1f} s\n")

    one = bench_prompt(0, args.prompt_tokens, vocab)
    lengths = [max(args.prompt_tokens - 8 * i, 8) for i in range(args.batch)]
    prompts = [bench_prompt(i, n, vocab) for i, n in enumerate(lengths)]
    name = f"GRPO {args.batch}x{args.group}"
    # Untimed warm-ups, as on the Rust side.
    single(model, tokenizer, one, min(args.max_tokens, 4))
    grouped(model, tokenizer, prompts, args.group, min(args.max_tokens, 4), args.temperature, name)
    results = [
        median_run(lambda: single(model, tokenizer, one, args.max_tokens), args.repeats),
        median_run(lambda: grouped(model, tokenizer, prompts, args.group, args.max_tokens, args.temperature, name),
                   args.repeats),
    ]
    print("| engine | scenario | sequences | prompt tok | prefill s | prefill tok/s | new tok | decode s "
          "| decode tok/s | total s | new tok/s overall | peak MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| mlx-lm | {r['scenario']} | {r['sequences']} | {r['prompt_tok']} | {r['prefill_s']:.3f} "
              f"| {r['prompt_tok'] / r['prefill_s']:.1f} | {r['new_tok']} | {r['decode_s']:.3f} "
              f"| {r['new_tok'] / r['decode_s']:.1f} | {r['total_s']:.3f} | {r['new_tok'] / r['total_s']:.1f} "
              f"| {r['peak_mb']:.1f} |")


if __name__ == "__main__":
    main()
