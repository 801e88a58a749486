#!/usr/bin/env bash
# Decode throughput, Flywheel's serving engine beside PyTorch's eager KV-cache decode, in one window
# (docs/benchmarks.md, "Decode"; issue 16): L4 d128 and L8 d512, context 256, vocabulary 1024,
# a 16-token prompt then 128 greedy tokens, 1 and 16 clients, one thread each. Flywheel's side is
# `flywheel bench decode` (serving's decoder and batcher), with the memory-bandwidth bound beside it.
# Needs Debian's python3-torch and libopenblas0-pthread (apt-get install python3-torch
# libopenblas0-pthread); the tests never do.
# Usage: bench/decode-vs-pytorch.sh [threads]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads="${1:-1}"
# The AVX-512 kernels of the OpenBLAS ND4J ships, where the CPU has them (as ./flywheel chooses);
# torch's OpenBLAS reads the same variable.
flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
if [[ "$flags" == *" avx512f "* && "$flags" == *" avx512cd "* && "$flags" == *" avx512bw "* \
      && "$flags" == *" avx512dq "* && "$flags" == *" avx512vl "* ]]; then
  export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE_BENCH:-SKYLAKEX}"
fi
echo "== PyTorch, $threads thread(s)"
/usr/bin/python3 "$root/bench/pytorch_decode.py" --threads "$threads" --clients 1,16 --prompt 16 --tokens 128 2>&1 | grep -v -i warn
echo "== Flywheel, $threads thread(s)"
for shape in "4 4 128" "8 8 512"; do
  set -- $shape
  for clients in 1 16; do
    OMP_NUM_THREADS=$threads "$root/flywheel" bench decode --layers "$1" --heads "$2" --width "$3" --vocab 1024 \
        --context 256 --prompt 16 --tokens 128 --clients "$clients" --threads "$threads" 2>/dev/null
  done
done
