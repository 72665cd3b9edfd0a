#!/usr/bin/env python3
"""The PyTorch side of `mixgrad-bench represent`: input-gradient steps per second of the
input-representation test (docs/paper.md D, Algorithm 1) on the same models as bench/torch_train.py
(imported from it: the paper's masked mixer with its re-masked Conv1d, and the plain-PyTorch
Llama). One step: with every weight frozen (requires_grad False), forward the input embeddings
e [B, T, D] (requires_grad True) through all L blocks, summed L1 against the target activations,
backward to e, e -= lr * grad.
    /usr/bin/python3 bench/torch_represent.py --threads 2 --reps 5 --steps 3"""
import argparse, os, statistics, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import Mixer, Llama  # noqa: E402


def blocks_of(model):
    return model.blocks if isinstance(model, Mixer) else model.layers


def hidden(model, x):
    for b in blocks_of(model):
        x = b(x)
    return x


def steps_per_second(kind, V, d, L, n, B, steps, reps, warmup):
    torch.manual_seed(0)
    model = Mixer(V, d, L, n) if kind == "mixer" else Llama(V, d, L, n)
    for p in model.parameters():
        p.requires_grad_(False)
    wte = model.wte if kind == "mixer" else model.embed
    ids = torch.randint(0, V, (B, n))
    with torch.no_grad():
        target = hidden(model, wte(ids))
    e = torch.randn(B, n, d)
    eta = 0.02
    last = [0.0]

    def step():
        nonlocal e
        e.requires_grad_(True)
        loss = torch.abs(hidden(model, e) - target).sum()
        last[0] = loss.item()
        loss.backward()
        with torch.no_grad():
            e = (e - e.grad * eta).detach()

    for _ in range(warmup):
        step()
    rate = []
    for _ in range(reps):
        s = time.perf_counter()
        for _ in range(steps):
            step()
        rate.append(steps / (time.perf_counter() - s))
    print(f"# {kind} B={B} final loss {last[0]:.6g}", file=sys.stderr)
    return statistics.median(rate)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=0, help="one batch size (default: 1 and 8)")
    ap.add_argument("--kind", default="mixer", choices=["mixer", "masked_mixer", "llama", "all"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    V = 4096
    kinds = {"all": ["mixer", "llama"], "llama": ["llama"]}.get(a.kind, ["mixer"])
    batches = [a.batch] if a.batch else [1, 8]
    print(f"# torch {torch.__version__} input-representation step, frozen weights, V={V} n_ctx={a.ctx}, "
          f"{torch.get_num_threads()} threads, median over {a.reps} reps of {a.steps} steps")
    for kind in kinds:
        for B in batches:
            sps = steps_per_second(kind, V, a.d, a.layers, a.ctx, B, a.steps, a.reps, a.warmup)
            name = f"{kind}_d{a.d}_L{a.layers}_b{B}"
            print(f"{name:<24} {sps:10.3f} {1e3 / sps:10.2f}", flush=True)


if __name__ == "__main__":
    main()
