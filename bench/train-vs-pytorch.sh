#!/usr/bin/env bash
# Training throughput, Flywheel's engine beside PyTorch, in one window (docs/benchmarks.md, issue 16):
# the same three shapes (batch 8 x context 128, vocabulary 1024, a full step with clipping and
# AdamW), at 1 and at 2 threads. Needs Debian's python3-torch and libopenblas0-pthread
# (apt-get install python3-torch libopenblas0-pthread); the tests never do.
# Usage: bench/train-vs-pytorch.sh   (after ./mvnw -B -q install -DskipTests)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The AVX-512 kernels of the OpenBLAS ND4J ships, where the CPU has them (as ./flywheel chooses).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
  if [[ "$flags" == *" avx512f "* && "$flags" == *" avx512cd "* && "$flags" == *" avx512bw "* \
        && "$flags" == *" avx512dq "* && "$flags" == *" avx512vl "* ]]; then
    export OPENBLAS_CORETYPE=SKYLAKEX
  fi
fi
for threads in 1 2; do
  echo "== PyTorch, $threads thread(s)"
  /usr/bin/python3 "$root/bench/pytorch_train.py" --threads "$threads"
  echo "== Flywheel, $threads thread(s)"
  (cd "$root/tests" && OMP_NUM_THREADS=$threads ../mvnw -B -q -Pbench verify -DskipTests \
      -Dbench.main=io.flywheel.bench.TrainerBenchmark -Dbench.args=throughput 2>&1 | grep -v WARN)
done
