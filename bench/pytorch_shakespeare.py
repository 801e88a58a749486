#!/usr/bin/python3
"""PyTorch's side of the learning-speed comparison (docs/benchmarks.md, issue 16): nanoGPT's
shakespeare_char recipe, written out, timed by the wall clock on this machine.

nanoGPT's CPU configuration (its README: train_shakespeare_char.py with --device=cpu --compile=False
--eval_iters=20 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
--lr_decay_iters=2000 --dropout=0.0): characters as tokens (65 of them), the first 90% of
tinyshakespeare to train on and the last 10% to validate; GPT-2's architecture (learned positions,
pre-layer-norm blocks, exact GELU, tied head); AdamW lr 1e-3 with betas (0.9, 0.99), weight decay
0.1 on matrices, 100 warm-up steps then cosine to 1e-4 at step 2000, gradients clipped to 1.
Every --eval-every steps the validation loss over --eval-iters random batches (nanoGPT's
estimate_loss), in the clock like Flywheel's evaluations. One character is one byte here
(tinyshakespeare is ASCII), so bits/byte = nats/character / ln 2.

Prints one JSON line per evaluation: {"minutes", "step", "val_loss", "val_bits_per_byte"}, then
{"first_minutes_at_or_below": ...} for --target bits/byte (2.71, the anchor in docs/benchmarks.md).

Usage: /usr/bin/python3 bench/pytorch_shakespeare.py --data ../shared/data/tinyshakespeare.txt [--threads 1] [--minutes 4]
"""
import argparse
import json
import math
import time

from torch_peer import limit_threads

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--minutes", type=float, default=4)
parser.add_argument("--eval-every", type=int, default=100)
parser.add_argument("--eval-iters", type=int, default=20)
parser.add_argument("--target", type=float, default=2.71)
parser.add_argument("--min-gflops", type=float, default=60)
args = parser.parse_args()
limit_threads(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_peer import check_blas  # noqa: E402

check_blas(args.threads, args.min_gflops)
torch.manual_seed(1337)

text = open(args.data, encoding="utf-8").read()
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
data = torch.tensor([index[c] for c in text], dtype=torch.long)
cut = int(0.9 * len(data))
train, val = data[:cut], data[cut:]

LAYERS, HEADS, WIDTH, CONTEXT, BATCH = 4, 4, 128, 64, 12
LR, MIN_LR, WARMUP, DECAY = 1e-3, 1e-4, 100, 2000


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(WIDTH)
        self.attn = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.ln2 = nn.LayerNorm(WIDTH)
        self.fc = nn.Linear(WIDTH, 4 * WIDTH)
        self.fc_proj = nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.attn(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, HEADS, C // HEADS).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
            else ((q @ k.transpose(-2, -1)) / math.sqrt(C // HEADS)).masked_fill(
                torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1) @ v
        x = x + self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, WIDTH)
        self.wpe = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.lnf = nn.LayerNorm(WIDTH)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * LAYERS) if name.endswith(("proj.weight", "fc_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def batch(split):
    starts = torch.randint(len(split) - CONTEXT, (BATCH,))
    x = torch.stack([split[i:i + CONTEXT] for i in starts])
    y = torch.stack([split[i + 1:i + 1 + CONTEXT] for i in starts])
    return x, y


def lr_at(step):
    if step < WARMUP:
        return LR * (step + 1) / (WARMUP + 1)
    if step > DECAY:
        return MIN_LR
    ratio = (step - WARMUP) / (DECAY - WARMUP)
    return MIN_LR + 0.5 * (1 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


model = GPT(len(chars))
decay = [p for p in model.parameters() if p.dim() >= 2]
rest = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                              lr=LR, betas=(0.9, 0.99))
start = time.perf_counter()
reached = None
step = 0
while (time.perf_counter() - start) / 60 < args.minutes:
    if step % args.eval_every == 0 and step > 0:
        model.eval()
        with torch.no_grad():
            loss = sum(model(*batch(val)).item() for _ in range(args.eval_iters)) / args.eval_iters
        model.train()
        minutes = (time.perf_counter() - start) / 60
        bpb = loss / math.log(2)
        print(json.dumps({"minutes": round(minutes, 2), "step": step, "val_loss": round(loss, 4),
                          "val_bits_per_byte": round(bpb, 3)}), flush=True)
        if reached is None and bpb <= args.target:
            reached = round(minutes, 2)
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step)
    loss = model(*batch(train))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    step += 1
print(json.dumps({"target_bits_per_byte": args.target, "first_minutes_at_or_below": reached}), flush=True)
