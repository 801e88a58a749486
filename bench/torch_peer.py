"""What the PyTorch benchmarks share: torch's own sgemm speed, printed first, and the refusal to
compare against a torch on a slow BLAS. Import it after the thread settings are in the environment."""
import json
import os
import sys
import time

import torch


def sgemm_gflops(n=2048, repeats=10):
    a = torch.rand(n, n)
    b = torch.rand(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def check_blas(threads, min_gflops):
    """Prints torch's version and sgemm GFLOP/s as one JSON line; exits 2 below min_gflops."""
    peak = sgemm_gflops()
    print(json.dumps({"torch": torch.__version__, "threads": threads, "sgemm_gflops": round(peak, 1),
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset")}), flush=True)
    if peak < min_gflops:
        print(f"torch's sgemm runs at {peak:.1f} GFLOP/s, below {min_gflops}: not comparing "
              "(install libopenblas0-pthread, or lower --min-gflops for a slower machine)", file=sys.stderr)
        sys.exit(2)
