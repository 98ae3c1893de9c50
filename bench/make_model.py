"""Writes the random 4-bit benchmark model with Python mlx-lm: Qwen3 architecture, bf16
weights quantized to 4 bits (group 64) as mlx-community checkpoints are, plus a tokenizer.

    target/pyenv/bin/python bench/make_model.py [--out bench/out/qwen3-tiny-q4]

Default shape (for 2 shared CPU cores): hidden 256, 4 layers, 4 heads (2 KV), head_dim 64,
MLP 512, vocab 4096, tied embeddings. The issue's suggested CPU shape (hidden 512, 8
layers, vocab 32000: --hidden 512 --layers 8 --heads 8 --kv-heads 4 --intermediate 1536
--vocab 32000) is too slow here: MLX's CPU quantized matmul runs at about 1 GFLOP/s, and
one GRPO-shaped generation (8x8x128) took about 10 minutes per engine.

The tokenizer is a real `tokenizer.json` (BPE without merges, so one character per token)
with ChatML special tokens and a chat template: 3 specials, newline, printable ASCII, and
letters from U+4E00 upwards up to the vocabulary size. Every id is a single character, so
decoding and re-encoding a completion gives back the same ids, as a real BPE mostly does;
mlx-lm-lora re-tokenizes completions from text, and longer re-encodings would penalise it.
"""

import argparse
import json
import unicodedata
from pathlib import Path

import mlx.core as mx
from mlx_lm.utils import _get_classes, quantize_model, save_config, save_model

SPECIALS = ["<unk>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokens(vocab_size):
    out = SPECIALS + ["\n"] + [chr(c) for c in range(32, 127)]
    code = 0x4E00
    while len(out) < vocab_size:
        if unicodedata.category(chr(code)).startswith("L"):
            out.append(chr(code))
        code += 1
    return out


def write_tokenizer(out, vocab_size):
    vocab = {t: i for i, t in enumerate(tokens(vocab_size))}
    added = [
        dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
        for i, t in enumerate(SPECIALS)
    ]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": []},
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHAT_TEMPLATE,
        "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "bos_token": None, "unk_token": "<unk>",
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/out/qwen3-tiny-q4")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--intermediate", type=int, default=512)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float32", action="store_true",
                   help="store scales, biases and norms in float32 (the same values, upcast after "
                        "quantizing in bf16): makes Python tools compute in f32 on the CPU")
    p.add_argument("--tokenizer-only", action="store_true",
                   help="write only the tokenizer files (e.g. for a random model built on a GPU host "
                        "by `lora-grpo bench random-model --tokenizer DIR`)")
    args = p.parse_args()
    if args.tokenizer_only:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_tokenizer(Path(args.out), args.vocab)
        print(f"wrote the tokenizer to {args.out}")
        return

    config = {
        "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"],
        "hidden_size": args.hidden, "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads, "head_dim": args.head_dim,
        "rms_norm_eps": 1e-6, "vocab_size": args.vocab, "rope_theta": 1e6,
        "tie_word_embeddings": True, "max_position_embeddings": 40960, "torch_dtype": "bfloat16",
    }
    mx.random.seed(args.seed)
    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    model.set_dtype(mx.bfloat16)
    model, config = quantize_model(model, config, group_size=64, bits=4)
    if args.float32:
        model.set_dtype(mx.float32)
        config["torch_dtype"] = "float32"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_model(out, model)
    save_config(config, out / "config.json")
    write_tokenizer(out, args.vocab)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
