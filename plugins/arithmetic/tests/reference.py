#!/usr/bin/env python3
"""Python port of the `arithmetic` dataset plugin's generator.

Writes the golden values that `src/tests.rs` checks: SplitMix64 outputs and the first
problems of a few configs. Run from this directory:

    python3 reference.py > golden.json

SplitMix64 is transcribed from the published algorithm (Steele, Lea, Flood 2014;
Vigna's reference C code), so the RNG vectors are independent of the Rust code.
"""
import json

MASK = (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        threshold = ((1 << 64) - n) % n
        while True:
            r = self.next_u64()
            if r >= threshold:
                return r % n

    def between(self, lo, hi):
        return lo + self.below(hi - lo + 1)


def i64(x):
    if not I64_MIN <= x <= I64_MAX:
        raise OverflowError
    return x


def evaluate(operands, ops):
    """Usual precedence: sum of products/quotients; None for inexact division."""
    total, term = 0, operands[0]
    try:
        for op, x in zip(ops, operands[1:]):
            if op == "*":
                term = i64(term * x)
            elif op == "/":
                if x == 0 or abs(term) % abs(x) != 0:
                    return None
                q = abs(term) // abs(x)
                term = i64(q if (term < 0) == (x < 0) else -q)
            elif op == "+":
                total, term = i64(total + term), x
            else:
                total, term = i64(total + term), i64(-x)
        return i64(total + term)
    except OverflowError:
        return None


def render(operands, ops):
    show = lambda x: f"({x})" if x < 0 else str(x)
    text = show(operands[0])
    for op, x in zip(ops, operands[1:]):
        text += f" {op} {show(x)}"
    return text


def split_of(text, seed, eval_share):
    h = 0xCBF29CE484222325
    for byte in seed.to_bytes(8, "little") + text.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return "eval" if (h >> 11) / float(1 << 53) < eval_share else "train"


SALT = {"train": 0, "eval": 0xD1B54A32D192ED03}


def generate(split, n, seed=0, lo=0, hi=99, operations=("+", "-"), terms=(2, 2),
             allow_negative=True, unique=False, eval_share=0.1):
    rng = SplitMix64(seed ^ SALT[split])
    seen, out = set(), []
    while len(out) < n:
        k = rng.between(*terms)
        operands = [rng.between(lo, hi) for _ in range(k)]
        ops = [operations[rng.below(len(operations))] for _ in range(k - 1)]
        value = evaluate(operands, ops)
        if value is None or (not allow_negative and value < 0):
            continue
        text = render(operands, ops)
        if split_of(text, seed, eval_share) != split or (unique and text in seen):
            continue
        seen.add(text)
        out.append([text, str(value)])
    return out


if __name__ == "__main__":
    rng0, rng1 = SplitMix64(0), SplitMix64(1234567)
    golden = {
        "splitmix64_seed0": [hex(rng0.next_u64()) for _ in range(3)],
        "splitmix64_seed1234567": [rng1.next_u64() for _ in range(2)],
        "default_train": generate("train", 5),
        "default_eval": generate("eval", 5),
        "mixed_train": generate("train", 6, seed=42, lo=-5, hi=20,
                                operations=("+", "-", "*", "/"), terms=(2, 4),
                                allow_negative=False, unique=True, eval_share=0.25),
        "mixed_eval": generate("eval", 6, seed=42, lo=-5, hi=20,
                               operations=("+", "-", "*", "/"), terms=(2, 4),
                               allow_negative=False, unique=True, eval_share=0.25),
        "division_train": generate("train", 4, seed=7, lo=1, hi=50, operations=("/",),
                                   terms=(2, 2)),
    }
    print(json.dumps(golden, indent=1))
