#!/usr/bin/env bash
# Runs lora-grpo on an NVIDIA machine with CUDA 13 and no network, using the bundle
# that `cargo xtask cuda-bundle` prepares (target/cuda-bundle/: CUDA libmlx.so in xz
# parts, NVRTC headers, the list of BLAS/LAPACK names libmlx.so needs).
#
#   scripts/gpu.sh stash          keep the bundle files present in target/cuda-bundle
#                                 under $MLX_CUDA_HOME (parts may arrive over several calls)
#   scripts/gpu.sh run CMD ARGS   assemble the library once every part is there, then run
#                                 CMD with the CUDA libmlx.so on the loader path
#   e.g. scripts/gpu.sh run target/release/lora-grpo doctor
set -euo pipefail
home=${MLX_CUDA_HOME:-$HOME/mlx-cuda}
bundle=${BUNDLE_DIR:-target/cuda-bundle}
cuda_lib=${CUDA_LIB_DIR:-/usr/local/cuda-13.0/targets/x86_64-linux/lib}
openblas=${OPENBLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}

stash() {
  mkdir -p "$home/parts"
  shopt -s nullglob
  for f in "$bundle"/*; do
    [ -f "$f" ] && cp -f "$f" "$home/parts/"
  done
  ls -la "$home/parts"
}

assemble() {
  [ -f "$home/lib/libmlx.so" ] && return 0
  local parts="$home/parts"
  [ -f "$parts/MANIFEST" ] || { echo "gpu.sh: no MANIFEST in $parts; stash the bundle first" >&2; exit 1; }
  # MANIFEST lists every part with its sha256: refuse to assemble an incomplete set.
  (cd "$parts" && sha256sum --quiet -c MANIFEST) || {
    echo "gpu.sh: bundle parts missing or damaged in $parts (see MANIFEST); stash the rest first" >&2
    exit 1
  }
  mkdir -p "$home/lib" "$home/include"
  cat "$parts"/libmlx.so.xz.part-* | xz -dc > "$home/lib/libmlx.so.tmp"
  mv "$home/lib/libmlx.so.tmp" "$home/lib/libmlx.so"
  # NVRTC reads kernel headers from <dir of libmlx.so>/../include.
  tar -xJf "$parts/mlx-include.tar.xz" -C "$home/include"
  while read -r name; do
    case "$name" in
      libblas*) ln -sf "$openblas/libblas.so.3" "$home/lib/$name" ;;
      liblapack*) ln -sf "$openblas/liblapack.so.3" "$home/lib/$name" ;;
    esac
  done < "$parts/needed.txt"
  echo "gpu.sh: CUDA libmlx.so ready in $home/lib"
}

case "${1:-}" in
  stash) stash ;;
  run)
    shift
    assemble
    export LD_LIBRARY_PATH="$home/lib:$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    exec "$@"
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
