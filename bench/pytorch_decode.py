#!/usr/bin/python3
"""PyTorch's side of the decode comparison (docs/benchmarks.md, "Decode"; issue 16).

The same network as Flywheel's Gpt (see pytorch_train.py) on the serving benchmark's shapes,
context 256, vocabulary 1024, random weights (speed does not depend on them): eager PyTorch,
float32, no_grad, with a key/value cache preallocated per layer as [clients, heads, context, hd]
and written in place, as a tuned eager decode loop is written. Each round prefills a random prompt
of --prompt tokens for every client in one forward, then draws --tokens greedy tokens, all clients
in one batch per step; a warm-up round, then the median of --rounds.

One JSON line per shape and client count: {"model", "clients", "threads", "tokens_per_s",
"ttft_ms"}, where tokens_per_s counts every client's tokens over the round's wall time (prefill
included) and ttft_ms is the prefill plus the first step.

Usage: /usr/bin/python3 bench/pytorch_decode.py --threads 1 [--clients 1,16] [--tokens 128] [--prompt 16] [--rounds 3]
"""
import argparse
import json
import math
import statistics
import sys
import time

from torch_peer import limit_threads

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--clients", default="1,16")
parser.add_argument("--prompt", type=int, default=16)
parser.add_argument("--tokens", type=int, default=128)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--min-gflops", type=float, default=100)
args = parser.parse_args()
limit_threads(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from torch_peer import check_blas  # noqa: E402


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio=4):
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

    def forward(self, x, cache_k, cache_v, start):
        """x: [B, n, C], the n positions after `start`; the cache holds positions before them."""
        B, n, C = x.shape
        hd = C // self.heads
        h = self.ln1(x)
        q = self.q(h).view(B, n, self.heads, hd).transpose(1, 2)
        cache_k[:, :, start:start + n] = self.k(h).view(B, n, self.heads, hd).transpose(1, 2)
        cache_v[:, :, start:start + n] = self.v(h).view(B, n, self.heads, hd).transpose(1, 2)
        k = cache_k[:, :, :start + n]
        v = cache_v[:, :, :start + n]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        if n > 1:   # a prompt: each new position sees the cache and the new ones up to itself
            mask = torch.ones(n, start + n, dtype=torch.bool).triu(start + 1)
            scores = scores.masked_fill(mask, float("-inf"))
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, n, C)
        x = x + self.o(y)
        m = self.fc(self.ln2(x))
        return x + self.proj(m * torch.sigmoid(1.702 * m))


class Gpt(nn.Module):
    def __init__(self, vocab, context, layers, heads, width):
        super().__init__()
        self.context = context
        self.heads = heads
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.lnf = nn.LayerNorm(width)

    def cache(self, clients):
        C = self.wte.weight.shape[1]
        shape = (clients, self.heads, self.context, C // self.heads)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.blocks]

    def forward(self, idx, cache, start):
        """Logits of the last position only: [B, vocab]."""
        n = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(start, start + n))
        for block, (k, v) in zip(self.blocks, cache):
            x = block(x, k, v, start)
        return self.lnf(x[:, -1]) @ self.wte.weight.t()


@torch.no_grad()
def one_round(model, vocab, clients):
    cache = model.cache(clients)
    prompt = torch.randint(vocab, (clients, args.prompt))
    begin = time.perf_counter()
    logits = model(prompt, cache, 0)
    position = args.prompt
    ttft = None
    for _ in range(args.tokens):
        token = logits.argmax(dim=-1, keepdim=True)
        if ttft is None:
            ttft = time.perf_counter() - begin
        if position == model.context:
            break
        logits = model(token, cache, position)
        position += 1
    elapsed = time.perf_counter() - begin
    return clients * args.tokens / elapsed, ttft


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    check_blas(args.threads, args.min_gflops)
    vocab, context = 1024, 256
    if args.prompt + args.tokens > context + 1:
        sys.exit(f"--prompt {args.prompt} and --tokens {args.tokens} do not fit the context of {context}")
    for layers, heads, width in [(4, 4, 128), (8, 8, 512)]:
        model = Gpt(vocab, context, layers, heads, width).eval()
        for clients in [int(c) for c in args.clients.split(",")]:
            one_round(model, vocab, clients)   # warm-up
            rounds = [one_round(model, vocab, clients) for _ in range(args.rounds)]
            print(json.dumps({"model": f"L{layers} d{width} h{heads}", "clients": clients, "threads": args.threads,
                              "tokens_per_s": round(statistics.median(r[0] for r in rounds), 1),
                              "ttft_ms": round(statistics.median(r[1] for r in rounds) * 1000, 2)}), flush=True)


if __name__ == "__main__":
    main()
