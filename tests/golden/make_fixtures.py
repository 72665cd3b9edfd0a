#!/usr/bin/python3
"""Writes the golden fixtures that tests/test_golden_ops.cpp checks mixgrad against.

Run with Debian's python3-torch (the system interpreter, not a pyenv one):

    /usr/bin/python3 tests/golden/make_fixtures.py

Every op gets one <op>.safetensors file holding one or more cases. Per case, every floating
tensor is stored twice: "<case>.<name>" in F64 and "<case>.<name>.f32" in F32. Inputs are drawn
in f32 precision (so both copies hold the same values); outputs and gradients are computed in
float64 by torch and rounded once to f32 for the f32 copy. Integer tensors (token ids, targets)
are stored once, as I64, the way torch saves them. Names per case:

    inputs by name (x, weight, q, ...), "out", "grad_out" (the fixed random upstream gradient),
    "grad_<input>" for each differentiable input.

The safetensors files are written by hand (struct + json), since Debian lacks the safetensors
package; the layout is the reference one (8-byte LE header length, JSON header padded with
spaces to a multiple of 8, raw little-endian data). Output is deterministic: fixed seeds, and
the same bytes on every run with the same torch.
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
F64 = torch.float64

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata):
    """tensors: list of (name, tensor); metadata: dict str -> str."""
    header = {"__metadata__": metadata} if metadata else {}
    blobs = []
    offset = 0
    for name, t in tensors:
        assert name not in header, name
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Fixture:
    """Collects the cases of one op and writes <op>.safetensors."""

    def __init__(self, op, seed, **params):
        self.op = op
        self.gen = torch.Generator().manual_seed(seed)
        self.tensors = []
        self.meta = {"op": op, "torch_version": torch.__version__,
                     "generator": "tests/golden/make_fixtures.py"}
        self.meta.update({k: str(v) for k, v in params.items()})
        self.cases = []

    # -- inputs (f32-representable float64, so the f32 and f64 copies hold the same values) --
    def randn(self, *shape, scale=1.0, shift=0.0):
        t = torch.randn(tuple(shape), generator=self.gen, dtype=F64) * scale + shift
        return t.float().double()

    def positive(self, *shape):
        return (torch.rand(tuple(shape), generator=self.gen, dtype=F64) * 2 + 0.25).float().double()

    def randint(self, lo, hi, *shape):
        return torch.randint(lo, hi, shape, generator=self.gen, dtype=torch.int64)

    def put(self, case, name, t):
        key = f"{case}.{name}"
        if t.dtype.is_floating_point:
            t = t.detach().to(F64).clone()  # a snapshot: optimizer params change in place later
            self.tensors.append((key, t))
            self.tensors.append((key + ".f32", t.float()))
        else:
            self.tensors.append((key, t.to(torch.int64)))

    def case(self, case, fn, inputs, grad_wrt, upstream=None, extra_outputs=None):
        """Runs fn(**inputs) in float64 and stores inputs, out, grad_out and grad_<name> for
        each name in grad_wrt. `upstream` overrides the random upstream gradient."""
        leaves = {}
        for k, v in inputs.items():
            if v is not None and v.dtype.is_floating_point:
                v = v.detach().clone().requires_grad_(k in grad_wrt)
            leaves[k] = v
        out = fn(**leaves)
        g = upstream if upstream is not None else self.randn(*out.shape)
        grads = torch.autograd.grad(out, [leaves[k] for k in grad_wrt], g, allow_unused=False)
        for k, v in inputs.items():
            if v is not None:
                self.put(case, k, v)
        self.put(case, "out", out)
        self.put(case, "grad_out", g)
        for k, gr in zip(grad_wrt, grads):
            self.put(case, "grad_" + k, gr)
        for k, v in (extra_outputs or {}).items():
            self.put(case, k, v)
        self.cases.append(case)

    def write(self):
        self.meta["cases"] = ",".join(self.cases)
        path = os.path.join(OUT_DIR, self.op + ".safetensors")
        save_safetensors(path, self.tensors, self.meta)
        return path


# ---- op references (float64, written the way the paper's PyTorch code computes them) --------

def rms_norm_ref(x, weight, eps=1e-6):
    # HF LlamaRMSNorm
    variance = x.pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(variance + eps) * weight


def masked_mix_ref(x, weight, bias):
    y = torch.tril(weight) @ x
    return y if bias is None else y + bias[:, None]


def masked_mix_heads_ref(x, weight, bias, heads):
    B, T, HD = x.shape
    xh = x.view(B, T, heads, HD // heads).permute(0, 2, 1, 3)      # [B, H, T, Dh]
    y = torch.tril(weight) @ xh                                      # [H,T,T] @ [B,H,T,Dh]
    if bias is not None:
        y = y + bias[:, :, None]
    return y.permute(0, 2, 1, 3).reshape(B, T, HD)


def attention_ref(q, k, v, causal, scale):
    s = (q @ k.transpose(-1, -2)) * scale
    if causal:
        T = q.shape[-2]
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_ref(x, theta=10000.0, pos_offset=0):
    # HF LlamaRotaryEmbedding + apply_rotary_pos_emb
    Dh, T = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (theta ** (torch.arange(0, Dh, 2, dtype=F64) / Dh))
    t = torch.arange(pos_offset, pos_offset + T, dtype=F64)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def info_nce_ref(q, d, tau):
    qn, dn = F.normalize(q, dim=-1), F.normalize(d, dim=-1)
    sim = qn @ dn.T / tau
    return F.cross_entropy(sim, torch.arange(q.shape[0]))


def info_nce_grouped_ref(q, cand, tau):
    sim = F.cosine_similarity(q[:, None, :], cand, dim=-1) / tau    # [G, C]
    return F.cross_entropy(sim, torch.zeros(q.shape[0], dtype=torch.int64))


# ---- fixtures -------------------------------------------------------------------------------

def layer_norm():
    f = Fixture("layer_norm", 101, eps=1e-5)
    fn = lambda x, weight, bias: F.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)
    for case, shape, shift in [("rows", (3, 5, 7), 0.0), ("t1", (1, 1, 9), 0.0), ("offset", (4, 33), 3.0)]:
        D = shape[-1]
        f.case(case, fn, {"x": f.randn(*shape, shift=shift), "weight": f.randn(D, scale=0.5, shift=1.0),
                          "bias": f.randn(D, scale=0.5)}, ["x", "weight", "bias"])
    return f


def rms_norm():
    f = Fixture("rms_norm", 102, eps=1e-6, formula="x * rsqrt(mean(x^2, -1) + eps) * weight (HF LlamaRMSNorm)")
    for case, shape in [("rows", (3, 5, 7)), ("t1", (1, 1, 9)), ("wide", (2, 65))]:
        D = shape[-1]
        f.case(case, rms_norm_ref, {"x": f.randn(*shape), "weight": f.randn(D, scale=0.5, shift=1.0)},
               ["x", "weight"])
    return f


def gelu():
    f = Fixture("gelu", 103, erf="F.gelu(x)", tanh="F.gelu(x, approximate='tanh')")
    x = f.randn(4, 33, scale=2.5)
    f.case("erf", lambda x: F.gelu(x), {"x": x}, ["x"])
    f.case("tanh", lambda x: F.gelu(x, approximate="tanh"), {"x": x}, ["x"])
    return f


def silu():
    f = Fixture("silu", 104)
    f.case("rows", lambda x: F.silu(x), {"x": f.randn(4, 33, scale=3.0)}, ["x"])
    return f


def swiglu():
    f = Fixture("swiglu", 105, formula="silu(gate) * up")
    f.case("rows", lambda gate, up: F.silu(gate) * up, {"gate": f.randn(3, 5, 11, scale=2.0), "up": f.randn(3, 5, 11)},
           ["gate", "up"])
    return f


def softmax_fixtures():
    out = []
    for op, fn in [("softmax", torch.softmax), ("log_softmax", torch.log_softmax)]:
        f = Fixture(op, 106 if op == "softmax" else 107, dims="last: -1, dim1: 1, t1: -1, large: -1")
        f.case("last", lambda x: fn(x, -1), {"x": f.randn(3, 5, 7)}, ["x"])
        f.case("dim1", lambda x: fn(x, 1), {"x": f.randn(3, 5, 7)}, ["x"])
        f.case("t1", lambda x: fn(x, -1), {"x": f.randn(4, 1)}, ["x"])
        f.case("large", lambda x: fn(x, -1), {"x": f.randn(6, 129, scale=30.0)}, ["x"])
        out.append(f)
    return out


def cross_entropy():
    f = Fixture("cross_entropy", 108, ignore_index=-100,
                cases_doc="mean/sum/none: logits [13,11] with 3 targets -100; t1: logits [1,5] mean")
    logits = f.randn(13, 11, scale=2.0)
    targets = f.randint(0, 11, 13)
    targets[[2, 7, 11]] = -100
    for red in ["mean", "sum", "none"]:
        f.case(red, lambda logits, targets: F.cross_entropy(logits, targets, ignore_index=-100, reduction=red),
               {"logits": logits, "targets": targets}, ["logits"])
    f.case("t1", lambda logits, targets: F.cross_entropy(logits, targets),
           {"logits": f.randn(1, 5), "targets": torch.tensor([3])}, ["logits"])
    return f


def embedding():
    f = Fixture("embedding", 109)
    w = f.randn(17, 6)
    ids = torch.tensor([[3, 16, 3, 0, 5], [5, 5, 9, 3, 1], [0, 12, 16, 7, 3]])   # repeats on purpose
    emb = lambda weight, ids: F.embedding(ids, weight)
    f.case("rows", emb, {"weight": w, "ids": ids}, ["weight"])
    f.case("t1", emb, {"weight": w, "ids": torch.tensor([[4]])}, ["weight"])
    return f


def masked_mix():
    f = Fixture("masked_mix", 110, formula="tril(weight) @ x + bias[:, None]",
                heads_formula="per head h: tril(weight[h]) @ x[:, :, h*Dh:(h+1)*Dh] + bias[h][:, None]")
    B, T, D = 2, 7, 5
    f.case("flat", masked_mix_ref, {"x": f.randn(B, T, D), "weight": f.randn(T, T), "bias": f.randn(T)},
           ["x", "weight", "bias"])
    f.case("nobias", lambda x, weight: masked_mix_ref(x, weight, None), {"x": f.randn(B, T, D), "weight": f.randn(T, T)},
           ["x", "weight"])
    f.case("t1", masked_mix_ref, {"x": f.randn(3, 1, 4), "weight": f.randn(1, 1), "bias": f.randn(1)},
           ["x", "weight", "bias"])
    H, Dh = 3, 2
    f.case("heads", lambda x, weight, bias: masked_mix_heads_ref(x, weight, bias, H),
           {"x": f.randn(B, T, H * Dh), "weight": f.randn(H, T, T), "bias": f.randn(H, T)}, ["x", "weight", "bias"])
    f.case("heads_nobias", lambda x, weight: masked_mix_heads_ref(x, weight, None, 2),
           {"x": f.randn(B, 5, 2 * 3), "weight": f.randn(2, 5, 5)}, ["x", "weight"])
    return f


def attention():
    f = Fixture("attention", 111, formula="softmax(q k^T * scale + causal mask) v, scale = 1/sqrt(Dh) unless given",
                scales="causal, t1, noncausal: 1/sqrt(Dh); scale03: 0.3 (causal)")
    B, H, T, Dh = 2, 3, 5, 4
    qkv = lambda *s: {"q": f.randn(*s), "k": f.randn(*s), "v": f.randn(*s)}
    f.case("causal", lambda q, k, v: attention_ref(q, k, v, True, 1 / math.sqrt(Dh)), qkv(B, H, T, Dh), ["q", "k", "v"])
    f.case("t1", lambda q, k, v: attention_ref(q, k, v, True, 1 / math.sqrt(6)), qkv(2, 2, 1, 6), ["q", "k", "v"])
    f.case("noncausal", lambda q, k, v: attention_ref(q, k, v, False, 1 / math.sqrt(Dh)), qkv(B, H, T, Dh),
           ["q", "k", "v"])
    f.case("scale03", lambda q, k, v: attention_ref(q, k, v, True, 0.3), qkv(1, 2, 9, 8), ["q", "k", "v"])
    return f


def rope():
    f = Fixture("rope", 112, theta=1e4, convention="HF Llama rotate_half", offsets="rows: 0, t1: 0, offset5: 5, theta500: 0 (theta 500)")
    f.case("rows", lambda x: rope_ref(x), {"x": f.randn(2, 3, 5, 8)}, ["x"])
    f.case("t1", lambda x: rope_ref(x), {"x": f.randn(1, 2, 1, 6)}, ["x"])
    f.case("offset5", lambda x: rope_ref(x, pos_offset=5), {"x": f.randn(1, 2, 3, 8)}, ["x"])
    f.case("theta500", lambda x: rope_ref(x, theta=500.0), {"x": f.randn(1, 1, 7, 10)}, ["x"])
    return f


def losses():
    fs = []
    f = Fixture("l2_normalize", 113, eps=1e-12, dims="last: -1, dim0: 0")
    f.case("last", lambda x: F.normalize(x, dim=-1, eps=1e-12), {"x": f.randn(4, 7)}, ["x"])
    f.case("dim0", lambda x: F.normalize(x, dim=0, eps=1e-12), {"x": f.randn(5, 3)}, ["x"])
    fs.append(f)

    f = Fixture("cosine_similarity", 114, eps=1e-8, dim=-1)
    f.case("rows", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), {"a": f.randn(5, 9), "b": f.randn(5, 9)},
           ["a", "b"])
    f.case("t1", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), {"a": f.randn(1, 4), "b": f.randn(1, 4)},
           ["a", "b"])
    fs.append(f)

    f = Fixture("info_nce", 115, temperature=0.02,
                formula="cross_entropy(normalize(q) @ normalize(d)^T / tau, arange(N))",
                grouped="cross_entropy(cos(q[:, None], cand) / tau, zeros(G))")
    f.case("pairs", lambda queries, docs: info_nce_ref(queries, docs, 0.02),
           {"queries": f.randn(6, 8), "docs": f.randn(6, 8)}, ["queries", "docs"])
    # Docs near their queries, so the loss is not dominated by one huge logit gap.
    q = f.randn(5, 8)
    f.case("aligned", lambda queries, docs: info_nce_ref(queries, docs, 0.02),
           {"queries": q, "docs": (q + f.randn(5, 8, scale=0.3)).float().double()}, ["queries", "docs"])
    f.case("grouped", lambda queries, candidates: info_nce_grouped_ref(queries, candidates, 0.02),
           {"queries": f.randn(4, 6), "candidates": f.randn(4, 3, 6)}, ["queries", "candidates"])
    fs.append(f)

    for op, fn in [("l1_loss", F.l1_loss), ("mse_loss", F.mse_loss)]:
        f = Fixture(op, 116 if op == "l1_loss" else 117)
        inp, tgt = f.randn(4, 7), f.randn(4, 7)
        if op == "l1_loss":
            tgt[0, 0] = inp[0, 0]   # |d| at 0: gradient 0 in torch
        for red in ["mean", "sum", "none"]:
            f.case(red, lambda input, target: fn(input, target, reduction=red), {"input": inp, "target": tgt},
                   ["input", "target"])
        fs.append(f)
    return fs


def optimizers():
    """Three steps each; per step k (1-based): "s<k>.grad.p<i>" the gradient set before the step,
    "s<k>.param.p<i>" the parameter after it; "init.param.p<i>" before the first step, and the
    torch state after the last step as "final.<state key>.p<i>"."""
    out = []
    configs = [
        ("adamw", 120, lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
         {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}, ["exp_avg", "exp_avg_sq"]),
        ("sgd_momentum", 121,
         lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=False),
         {"lr": 1e-2, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.01, "nesterov": False}, ["momentum_buffer"]),
        ("sgd_nesterov", 122,
         lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True),
         {"lr": 1e-2, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": True}, ["momentum_buffer"]),
    ]
    for name, seed, make, opts, keys in configs:
        f = Fixture(name, seed, steps=3, **opts)
        params = [f.randn(3, 5).requires_grad_(True), f.randn(7).requires_grad_(True)]
        for i, p in enumerate(params):
            f.put("init", f"param.p{i}", p)
        opt = make(params)
        for k in range(1, 4):
            for i, p in enumerate(params):
                p.grad = f.randn(*p.shape)
                f.put(f"s{k}", f"grad.p{i}", p.grad)
            opt.step()
            for i, p in enumerate(params):
                f.put(f"s{k}", f"param.p{i}", p)
        for i, p in enumerate(params):
            for key in keys:
                f.put("final", f"{key}.p{i}", opt.state[p][key])
        f.cases = ["init", "s1", "s2", "s3", "final"]
        out.append(f)
    return out


def foundation():
    """matmul (batched, broadcast, 1-D), reductions with dims, and elementwise math."""
    f = Fixture("foundation", 130, cases_doc=(
        "matmul_batched [2,3,4,5]@[2,3,5,6]; matmul_broadcast [3,1,4,5]@[2,5,3]; matmul_t1 [1,7]@[7,3]; "
        "matmul_vec [5]@[2,5,3]; sum_dim1; sum_all; mean_02_keep (dims 0,2 keepdim); max_dim2 (amax); "
        "max_all; var_dim1 (correction 1); var_all_c0 (correction 0); exp; log; tanh; pow2_5; pow_m1_5; pow3"))
    f.case("matmul_batched", torch.matmul, {"input": f.randn(2, 3, 4, 5), "other": f.randn(2, 3, 5, 6)},
           ["input", "other"])
    f.case("matmul_broadcast", torch.matmul, {"input": f.randn(3, 1, 4, 5), "other": f.randn(2, 5, 3)},
           ["input", "other"])
    f.case("matmul_t1", torch.matmul, {"input": f.randn(1, 7), "other": f.randn(7, 3)}, ["input", "other"])
    f.case("matmul_vec", torch.matmul, {"input": f.randn(5), "other": f.randn(2, 5, 3)}, ["input", "other"])
    x = lambda: f.randn(3, 4, 5)
    f.case("sum_dim1", lambda x: x.sum(dim=1), {"x": x()}, ["x"])
    f.case("sum_all", lambda x: x.sum(), {"x": x()}, ["x"])
    f.case("mean_02_keep", lambda x: x.mean(dim=(0, 2), keepdim=True), {"x": x()}, ["x"])
    f.case("max_dim2", lambda x: x.amax(dim=2), {"x": x()}, ["x"])
    f.case("max_all", lambda x: x.amax(dim=(0, 1, 2)), {"x": x()}, ["x"])
    f.case("var_dim1", lambda x: x.var(dim=1, unbiased=True), {"x": x()}, ["x"])
    f.case("var_all_c0", lambda x: x.var(unbiased=False), {"x": x()}, ["x"])
    f.case("exp", lambda x: torch.exp(x), {"x": f.randn(4, 6)}, ["x"])
    f.case("log", lambda x: torch.log(x), {"x": f.positive(4, 6)}, ["x"])
    f.case("tanh", lambda x: torch.tanh(x), {"x": f.randn(4, 6, scale=2.0)}, ["x"])
    f.case("pow2_5", lambda x: x.pow(2.5), {"x": f.positive(4, 6)}, ["x"])
    f.case("pow_m1_5", lambda x: x.pow(-1.5), {"x": f.positive(4, 6)}, ["x"])
    f.case("pow3", lambda x: x.pow(3.0), {"x": f.randn(4, 6)}, ["x"])
    return f


def main():
    torch.use_deterministic_algorithms(True)
    fixtures = [layer_norm(), rms_norm(), gelu(), silu(), swiglu(), *softmax_fixtures(), cross_entropy(), embedding(),
                masked_mix(), attention(), rope(), *losses(), *optimizers(), foundation()]
    total = 0
    for f in fixtures:
        path = f.write()
        size = os.path.getsize(path)
        total += size
        print(f"{os.path.relpath(path)}: {len(f.tensors)} tensors, {size} bytes")
    print(f"total {total} bytes, torch {torch.__version__}")


if __name__ == "__main__":
    main()
