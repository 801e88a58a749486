#!/usr/bin/python3
"""PyTorch's side of the training-throughput comparison (docs/benchmarks.md, issue 16).

The same network as Flywheel's Gpt on the same shapes: learned positions, pre-layer-norm blocks
of causal multi-head attention and a GELU MLP (x * sigmoid(1.702 x), Flywheel's default form),
tied output head, batch 8 x context 128, vocabulary 1024; a full step is forward, backward,
gradient clipping to norm 1 and AdamW. Eager PyTorch, float32, as a user would write it.

Prints torch's own 2048^3 sgemm GFLOP/s first and refuses to go on below --min-gflops (Debian's
torch without libopenblas0-pthread runs a generic BLAS at ~6 GFLOP/s). Then one JSON line per
shape: {"model", "threads", "tokens_per_s", "step_ms"}.

Usage: /usr/bin/python3 bench/pytorch_train.py (Debian's python, where python3-torch is) --threads 1 [--steps 12] [--min-gflops 100]
"""
import argparse
import json
import math
import statistics
import time

from torch_peer import limit_threads

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--steps", type=int, default=12)
parser.add_argument("--min-gflops", type=float, default=100)
args = parser.parse_args()
limit_threads(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_peer import check_blas  # noqa: E402


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.o = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, mlp_ratio * width)
        self.proj = nn.Linear(mlp_ratio * width, width)

    def forward(self, x):
        B, T, C = x.shape
        h = self.ln1(x)
        q = self.q(h).view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = self.k(h).view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = self.v(h).view(B, T, self.heads, C // self.heads).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.o(y)
        m = self.fc(self.ln2(x))
        return x + self.proj(m * torch.sigmoid(1.702 * m))


class Gpt(nn.Module):
    def __init__(self, vocab, context, layers, heads, width, mlp_ratio=4):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(layers))
        self.lnf = nn.LayerNorm(width)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    check_blas(args.threads, args.min_gflops)
    vocab, context, batch = 1024, 128, 8
    for layers, heads, width in [(4, 4, 128), (6, 8, 256), (8, 8, 512)]:
        model = Gpt(vocab, context, layers, heads, width)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        times = []
        steps = args.steps if width < 512 else max(3, args.steps // 2)
        for step in range(3 + steps):
            idx = torch.randint(vocab, (batch, context))
            targets = torch.randint(vocab, (batch, context))
            start = time.perf_counter()
            loss = model(idx, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step >= 3:
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(json.dumps({"model": f"L{layers} d{width} h{heads}", "threads": args.threads,
                          "tokens_per_s": round(batch * context / median), "step_ms": round(median * 1000, 1)}), flush=True)


if __name__ == "__main__":
    main()
