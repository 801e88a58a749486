"""What the PyTorch benchmarks share: the thread settings, torch's own sgemm speed printed first, and
the refusal to compare against a torch on a slow BLAS. Call limit_threads before importing torch."""
import json
import os
import sys
import time


def limit_threads(threads):
    """The thread count must reach OpenBLAS (its own pthreads pool) and OpenMP before torch loads
    them: torch.set_num_threads alone leaves OpenBLAS on every core, and the two pools then fight.
    OpenMP's idle threads spin by default and take the cores OpenBLAS needs: at 2 threads on 2 cores
    that made torch 2-3x slower than at 1 (measured); passive waiting is what a tuned setup uses."""
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def sgemm_gflops(n=2048, repeats=10):
    import torch
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
    import torch
    peak = sgemm_gflops()
    print(json.dumps({"torch": torch.__version__, "threads": threads, "sgemm_gflops": round(peak, 1),
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset")}), flush=True)
    if peak < min_gflops:
        print(f"torch's sgemm runs at {peak:.1f} GFLOP/s, below {min_gflops}: not comparing "
              "(install libopenblas0-pthread, or lower --min-gflops for a slower machine)", file=sys.stderr)
        sys.exit(2)
