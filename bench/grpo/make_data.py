"""Writes the GRPO benchmark's prompts, read by both trainers: 64 two-number sums as
JSON Lines rows {"prompt", "answer", "system"} in bench/out/grpo-data/train.jsonl.
(mlx-lm-lora takes the system prompt from each row; lora-grpo's jsonl plugin from its
config, with the same text, so both render the same chat-template prompt.)

    python3 bench/grpo/make_data.py
"""

import json
import random
from pathlib import Path

SYSTEM = "Answer with a number."


def main():
    rng = random.Random(0)
    out = Path("bench/out/grpo-data")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w") as f:
        for _ in range(64):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            f.write(json.dumps({"prompt": f"What is {a} + {b}?", "answer": str(a + b), "system": SYSTEM}) + "\n")
    print(f"wrote {out / 'train.jsonl'}")


if __name__ == "__main__":
    main()
