#!/usr/bin/env python3
"""The PyTorch side of `mixgrad-bench train`: the same masked mixer (docs/paper.md A.1: LayerNorm,
tril-masked kernel-1 Conv1d token mixing re-masked before each forward as the paper's code does,
LayerNorm, GELU feed-forward, untied lm_head) and Llama-style transformer (RMSNorm, RoPE, causal
attention, SwiGLU) at B=8, n_ctx=512, V=4096, L=8, d=256/512; one step = forward, backward,
grad-norm clip and AdamW. Debian's torch 1.13 has no F.scaled_dot_product_attention, so attention
is the eager softmax(QK^T/sqrt(d) + mask)V that HF Llama used before SDPA (also on CUDA with a
recent torch, so both sides run the same graph: no FlashAttention, no torch.compile).
--device cuda times each step between torch.cuda.synchronize() calls; --bf16 runs forward and
loss under torch.autocast(bfloat16) with f32 master weights, backward/clip/AdamW outside it, as
mixgrad's train.precision bf16 does. TF32 is switched off (matmul and cuDNN) so the f32 rows
compare with mixgrad's f32 cuBLAS GEMMs; AdamW is the eager (non-fused) one.
    /usr/bin/python3 bench/torch_train.py --threads 2 --reps 3
    python3 bench/torch_train.py --device cuda --bf16 --reps 20 --only _d512"""
import argparse, ctypes, gc, math, os, statistics, sys, time
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


def status_mib(key):
    """VmHWM / VmRSS of this process in MiB: the same reading as mixgrad-bench's rss_MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def libc_trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def peer_config(threads):
    """What this PyTorch runs with: threads, the OMP wait policy, and the core of the OpenBLAS it
    loaded (Debian's torch links libopenblas.so.0; OPENBLAS_CORETYPE picks its kernels), plus
    torch.mm's f32 rate at 2048^3 (fastest of 4), to be checked against the CPU's FMA peak."""
    core = "unknown"
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        pass
    a = torch.full((2048, 2048), 0.5)
    b = torch.full((2048, 2048), 0.25)
    best = 1e30
    for _ in range(4):
        s = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - s)
    gflops = 2 * 2048 ** 3 / best / 1e9
    alloc = "glibc malloc"
    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        alloc = "tcmalloc (LD_PRELOAD)"
    elif "MALLOC_MMAP_THRESHOLD_" in os.environ:
        alloc = f"glibc malloc, MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']}"
    return (f"# torch peer: {torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}, "
            f"allocator {alloc}, "
            f"OpenBLAS core {core} (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}), "
            f"torch.mm 2048^3 f32: {gflops:.1f} GFLOP/s")


def make_adamw(params):
    # fused= appeared in torch 2.0; 1.13's AdamW has no such argument (and no fused kernel).
    try:
        return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0, fused=False)
    except TypeError:
        return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)


def main():
    ap = argparse.ArgumentParser(description="PyTorch side of `mixgrad-bench train`")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="run only models whose name contains this (e.g. mixer_d512)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--bf16", action="store_true", help="forward+loss under torch.autocast(dtype=torch.bfloat16)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--d", default="256,512", help="comma-separated widths (default 256,512)")
    ap.add_argument("--warmup", type=int, default=-1, help="untimed steps first (default 1 on cpu, 3 on cuda)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit(f"torch_train.py: --device {a.device} but torch.cuda.is_available() is False "
                 f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})")
    warmup = a.warmup if a.warmup >= 0 else (3 if cuda else 1)
    widths = [int(x) for x in a.d.split(",") if x]
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    B, n, V, L = a.batch, 512, 4096, 8
    if cuda:
        print(f"# torch {torch.__version__} train step (fwd+bwd+AdamW), B={B}, {torch.cuda.get_device_name(dev)}"
              f"{' bf16 autocast' if a.bf16 else ' f32 (no TF32)'}, median of {a.reps} "
              f"(synchronised, after {warmup} warm-up steps)")
    else:
        print(f"# torch {torch.__version__} train step (fwd+bwd+AdamW), {torch.get_num_threads()} threads"
              f"{', bf16 autocast' if a.bf16 else ''}, median of {a.reps}")
        print(peer_config(a.threads))
    print("# columns: model step_s tokens/s peak_MiB (CPU: process peak RSS; CUDA: torch.cuda.max_memory_allocated)")
    for kind in ("mixer", "llama"):
        for d in widths:
            name = f"{kind}_d{d}"
            if a.only and a.only not in name:
                continue
            gc.collect()
            libc_trim()
            reset_peak_rss()
            if cuda:
                torch.cuda.reset_peak_memory_stats(dev)
            model = (Mixer(V, d, L, n) if kind == "mixer" else Llama(V, d, L, n)).to(dev)
            opt = make_adamw(model.parameters())
            ids = torch.randint(0, V, (B, n), device=dev)

            def step():
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16):
                    logits = model(ids)
                    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
            for _ in range(warmup):
                step()
            t = []
            for _ in range(a.reps):
                sync()
                s = time.perf_counter()
                step()
                sync()
                t.append(time.perf_counter() - s)
            med = statistics.median(t)
            peak = torch.cuda.max_memory_allocated(dev) / 2 ** 20 if cuda else status_mib("VmHWM")
            print(f"{name:<18} {med:12.{5 if cuda else 3}f} {B * n / med:10.0f} {peak:10.0f}", flush=True)
            del model, opt
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
