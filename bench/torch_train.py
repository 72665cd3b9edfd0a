#!/usr/bin/env python3
"""The PyTorch side of `mixgrad-bench train`: the same masked mixer (PAPER.md A.1: LayerNorm,
tril-masked kernel-1 Conv1d token mixing re-masked before each forward as the paper's code does,
LayerNorm, GELU feed-forward, untied lm_head) and Llama-style transformer (RMSNorm, RoPE, causal
attention, SwiGLU) at B=8, n_ctx=512, V=4096, L=8, d=256/512; one step = forward, backward,
grad-norm clip and AdamW. Debian's torch 1.13 has no F.scaled_dot_product_attention, so attention
is the eager softmax(QK^T/sqrt(d) + mask)V that HF Llama used before SDPA.
    /usr/bin/python3 bench/torch_train.py --threads 2 --reps 3"""
import argparse, math, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class FeedForward(nn.Module):
    def __init__(s, d, f=4):
        super().__init__()
        s.net = nn.Sequential(nn.Linear(d, f * d), nn.GELU(), nn.Linear(f * d, d))

    def forward(s, x):
        return s.net(x)


class MixerBlock(nn.Module):
    def __init__(s, d, n):
        super().__init__()
        s.seq_layernorm = nn.LayerNorm(d)
        s.patch_layernorm = nn.LayerNorm(d)
        s.conv = nn.Conv1d(n, n, 1)
        s.patch_ff = FeedForward(d)

    def forward(s, x):
        s.conv.weight.data = torch.tril(s.conv.weight.data.squeeze(-1)).unsqueeze(-1)
        x = x + s.conv(s.seq_layernorm(x))
        return x + s.patch_ff(s.patch_layernorm(x))


class Mixer(nn.Module):
    def __init__(s, V, d, L, n):
        super().__init__()
        s.wte = nn.Embedding(V, d)
        s.blocks = nn.ModuleList([MixerBlock(d, n) for _ in range(L)])
        s.lm_head = nn.Linear(d, V, bias=False)

    def forward(s, ids):
        x = s.wte(ids)
        for b in s.blocks:
            x = b(x)
        return s.lm_head(x)


class RMSNorm(nn.Module):
    def __init__(s, d, eps=1e-6):
        super().__init__()
        s.weight = nn.Parameter(torch.ones(d))
        s.eps = eps

    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps) * s.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(s, d, h, n, f=4):
        super().__init__()
        s.h = h
        s.q, s.k, s.v, s.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        s.gate, s.up = nn.Linear(d, f * d, bias=False), nn.Linear(d, f * d, bias=False)
        s.down = nn.Linear(f * d, d, bias=False)
        s.n1, s.n2 = RMSNorm(d), RMSNorm(d)
        dh = d // h
        inv = 1.0 / (10000 ** (torch.arange(0, dh, 2).float() / dh))
        ang = torch.outer(torch.arange(n).float(), inv)
        emb = torch.cat((ang, ang), dim=-1)
        s.register_buffer("cos", emb.cos())
        s.register_buffer("sin", emb.sin())
        s.register_buffer("mask", torch.full((n, n), float("-inf")).triu(1))

    def forward(s, x):
        B, T, d = x.shape
        y = s.n1(x)
        q, k, v = (p(y).view(B, T, s.h, d // s.h).transpose(1, 2) for p in (s.q, s.k, s.v))
        q = q * s.cos + rotate_half(q) * s.sin
        k = k * s.cos + rotate_half(k) * s.sin
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // s.h) + s.mask, dim=-1)
        x = x + s.o((att @ v).transpose(1, 2).reshape(B, T, d))
        y = s.n2(x)
        return x + s.down(F.silu(s.gate(y)) * s.up(y))


class Llama(nn.Module):
    def __init__(s, V, d, L, n, h=4):
        super().__init__()
        s.embed = nn.Embedding(V, d)
        s.layers = nn.ModuleList([LlamaBlock(d, h, n) for _ in range(L)])
        s.norm = RMSNorm(d)
        s.lm_head = nn.Linear(d, V, bias=False)

    def forward(s, ids):
        x = s.embed(ids)
        for l in s.layers:
            x = l(x)
        return s.lm_head(s.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B, n, V, L = 8, 512, 4096, 8
    print(f"# torch {torch.__version__} train step (fwd+bwd+AdamW), {torch.get_num_threads()} threads, median of {a.reps}")
    for kind in ("mixer", "llama"):
        for d in (256, 512):
            name = f"{kind}_d{d}"
            if a.only and a.only not in name:
                continue
            model = Mixer(V, d, L, n) if kind == "mixer" else Llama(V, d, L, n)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
            ids = torch.randint(0, V, (B, n))

            def step():
                logits = model(ids)
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
            step()
            t = []
            for _ in range(a.reps):
                s = time.perf_counter()
                step()
                t.append(time.perf_counter() - s)
            med = statistics.median(t)
            print(f"{name:<18} {med:12.3f} {B * n / med:10.0f}", flush=True)


if __name__ == "__main__":
    main()
