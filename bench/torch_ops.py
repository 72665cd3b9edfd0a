#!/usr/bin/env python3
"""The PyTorch side of `mixgrad-bench ops`: the same fwd+bwd work at the same shapes, timed the
same way (median of REPS after one warm-up). Run with Debian's python3-torch:
    /usr/bin/python3 bench/torch_ops.py --threads 2 --reps 7
PyTorch 1.13 has no F.scaled_dot_product_attention, so attention is the eager form that HF
Llama used: softmax(QK^T/sqrt(d) + causal mask) V. Masked mixing is timed in both of the paper's
forms (Conv1d with a tril'd kernel-1 weight, and tril(W) @ x) and the faster is reported."""
import argparse, math, statistics, time
import torch
import torch.nn.functional as F


def median_ms(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        t.append((time.perf_counter() - a) * 1e3)
    return statistics.median(t)


def param(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


def clear(*ts):
    for t in ts:
        t.grad = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B, T, V = 8, 512, 4096
    print(f"# torch {torch.__version__} ops fwd+bwd, {torch.get_num_threads()} threads, median of {a.reps} (ms)")

    def report(name, ms):
        print(f"{name:<28} {ms:10.3f}")

    def want(name):
        return not a.only or a.only in name

    for D in (256, 512):
        if want(f"layernorm_d{D}"):
            x, w, b = param(B, T, D), param(D), param(D)
            g = torch.randn(B, T, D)

            def f():
                clear(x, w, b)
                F.layer_norm(x, (D,), w, b).backward(g)
            report(f"layernorm_d{D}", median_ms(f, a.reps))
        if want(f"gelu_d{D}"):
            x = param(B, T, 4 * D)
            g = torch.randn(B, T, 4 * D)

            def f():
                clear(x)
                F.gelu(x).backward(g)
            report(f"gelu_d{D}", median_ms(f, a.reps))
        if want(f"masked_mix_d{D}"):
            x, w, c = param(B, T, D), param(T, T, scale=1 / 22.6), param(T)
            g = torch.randn(B, T, D)

            def conv():
                clear(x, w, c)
                F.conv1d(x, torch.tril(w).unsqueeze(-1), c).backward(g)

            def mm():
                clear(x, w, c)
                (torch.tril(w) @ x + c[:, None]).backward(g)
            report(f"masked_mix_d{D}", min(median_ms(conv, a.reps), median_ms(mm, a.reps)))
        if want(f"attention_d{D}"):
            H = 8
            Dh = D // H
            q, k, v = param(B, H, T, Dh), param(B, H, T, Dh), param(B, H, T, Dh)
            g = torch.randn(B, H, T, Dh)
            mask = torch.full((T, T), float("-inf")).triu(1)

            def f():
                clear(q, k, v)
                s = q @ k.transpose(-1, -2) / math.sqrt(Dh) + mask
                (torch.softmax(s, dim=-1) @ v).backward(g)
            report(f"attention_d{D}", median_ms(f, a.reps))
    if want("attention_bf16_d512_h4"):
        # As autocast runs it: bf16 products, the softmax in f32.
        H, Dh = 4, 128
        q, k, v = (torch.randn(B, H, T, Dh).bfloat16().requires_grad_() for _ in range(3))
        g = torch.randn(B, H, T, Dh).bfloat16()
        mask = torch.full((T, T), float("-inf")).triu(1)

        def f():
            clear(q, k, v)
            s = (q @ k.transpose(-1, -2)).float() / math.sqrt(Dh) + mask
            (torch.softmax(s, dim=-1).bfloat16() @ v).backward(g)
        report("attention_bf16_d512_h4", median_ms(f, a.reps))
    if want("softmax_ce_v4096"):
        logits = param(B * T, V)
        targets = torch.randint(0, V, (B * T,))

        def f():
            clear(logits)
            F.cross_entropy(logits, targets).backward()
        report("softmax_ce_v4096", median_ms(f, a.reps))


if __name__ == "__main__":
    main()
