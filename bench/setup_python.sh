#!/usr/bin/env bash
# Python side of the benchmarks: two virtual environments under target/ (mlx-lm-lora pins
# mlx>=0.32.3, so it gets its own), both on MLX 0.32.2 like our mlx-sys, and both with
# Debian's OpenBLAS in place of the reference BLAS the mlx-cpu wheel bundles, exactly as
# `cargo xtask mlx` does for the Rust side, so that both sides run the same MLX + BLAS.
set -euo pipefail
cd "$(dirname "$0")/.."
OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread

make_env() {  # make_env DIR PACKAGES...
    local dir=$1; shift
    [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
    "$dir/bin/pip" install -q "$@"
    # mlx-lm-lora asks for mlx>=0.32.3; pin the MLX our Rust build uses (it runs on it).
    "$dir/bin/pip" install -q "mlx[cpu]==0.32.2" 2>&1 | grep -v "dependency conflicts\|requires mlx>=\|dependency resolver" || true
    local libs="$dir/lib/python3.11/site-packages/mlx_cpu.libs"
    for f in "$libs"/libblas-*.so*; do ln -sf "$OPENBLAS/libblas.so.3" "$f"; done
    for f in "$libs"/liblapack-*.so*; do ln -sf "$OPENBLAS/liblapack.so.3" "$f"; done
    "$dir/bin/python" -c "import mlx.core as mx, mlx_lm; print('$dir:', 'mlx', mx.__version__, mx.default_device())"
}

make_env target/pyenv "mlx[cpu]==0.32.2" "mlx-lm==0.32.2"
make_env target/pyenv-lora "mlx-lm-lora==5.10.2" "mlx-lm==0.32.2"
