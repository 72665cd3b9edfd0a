#!/usr/bin/python3
"""Writes the golden fixtures that tests/test_golden_ops.cpp checks mixgrad against.

Run with Debian's python3-torch (the system interpreter, not a pyenv one):

    /usr/bin/python3 tests/golden/make_fixtures.py            # every fixture
    /usr/bin/python3 tests/golden/make_fixtures.py rope ...   # only these ops
    /usr/bin/python3 tests/golden/make_fixtures.py --check    # table vs generators; needs no torch

Which fixtures exist is read from the op table (ops/op_table.def): every op with golden = 1 gets
<op>.safetensors, written by the function golden_<op>() below. The script refuses to run when a
golden op has no such function or a golden_ function has no golden op in the table (ctest runs
the --check form as golden_fixture_generators).

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
import re
import struct
import sys
import tempfile

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # --check reads only the table and this file
    torch = F = None

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
OP_TABLE = os.path.join(OUT_DIR, "..", "..", "ops", "op_table.def")
F64 = torch.float64 if torch else None

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"} if torch else {}

# The entry format stated in ops/op_table.def (the same expression as CMakeLists.txt and
# tests/test_op_table.cpp).
_OP_LINE = re.compile(r'^MG_OP\(([a-z0-9_]+), *"([^"]*)", *"([^"]*)", *([01]), *([01]), *"([^"]*)", *"([^"]*)"\) *$')


def read_op_table(path=OP_TABLE):
    """[(name, golden)] in table order; exits naming any MG_OP line the format does not match."""
    ops = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.startswith("MG_OP("):
                continue
            m = _OP_LINE.match(line)
            if not m:
                sys.exit(f"{path}:{n}: an MG_OP line that does not match the table's format: {line}")
            ops.append((m.group(1), m.group(4) == "1"))
    return ops


def table_golden_ops():
    return [name for name, golden in read_op_table() if golden]


def check_generators():
    """The golden ops of the table and the golden_<op> functions of this file must agree."""
    ops = set(table_golden_ops())
    gens = {name[len("golden_"):] for name, fn in globals().items() if name.startswith("golden_") and callable(fn)}
    problems = [f"op '{op}' is golden in ops/op_table.def but make_fixtures.py has no golden_{op}()"
                for op in sorted(ops - gens)]
    problems += [f"golden_{g}() writes a fixture for '{g}', which is not a golden op of ops/op_table.def"
                 for g in sorted(gens - ops)]
    return problems


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
    # Atomically, as core/atomic_file.h writes: a unique temporary file beside `path`, fsynced,
    # then renamed over it; removed if anything fails.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=os.path.basename(path) + ".tmp.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def philox4x32_10(counter, subsequence, seed):
    """core/philox.h's Philox4x32-10, in Python integers: the four 32-bit words for one counter."""
    m = 0xFFFFFFFF
    c = [counter & m, (counter >> 32) & m, subsequence & m, (subsequence >> 32) & m]
    k0, k1 = seed & m, (seed >> 32) & m
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & m, (p0 >> 32) ^ c[3] ^ k1, p0 & m]
        k0, k1 = (k0 + 0x9E3779B9) & m, (k1 + 0xBB67AE85) & m
    return c


def philox_uniform_f32(seed, offset, i):
    """core/philox.h's uniform_f32: 1 - q24 / 2^24 with q24 = (word >> 8) + 1, exact in a double."""
    word = philox4x32_10(i >> 2, offset, seed)[i & 3]
    return 1.0 - ((word >> 8) + 1) / 16777216.0


def dropout_mask(n, p, seed, offset):
    """Dropout's mask (core/philox.h, dropout_keep): element i kept when its uniform is >= p."""
    return torch.tensor([1.0 if philox_uniform_f32(seed, offset, i) >= p else 0.0 for i in range(n)], dtype=F64)


# ---- fixtures -------------------------------------------------------------------------------

def golden_layer_norm():
    f = Fixture("layer_norm", 101, eps=1e-5)
    fn = lambda x, weight, bias: F.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)
    for case, shape, shift in [("rows", (3, 5, 7), 0.0), ("t1", (1, 1, 9), 0.0), ("offset", (4, 33), 3.0)]:
        D = shape[-1]
        f.case(case, fn, {"x": f.randn(*shape, shift=shift), "weight": f.randn(D, scale=0.5, shift=1.0),
                          "bias": f.randn(D, scale=0.5)}, ["x", "weight", "bias"])
    return f


def golden_rms_norm():
    f = Fixture("rms_norm", 102, eps=1e-6, formula="x * rsqrt(mean(x^2, -1) + eps) * weight (HF LlamaRMSNorm)")
    for case, shape in [("rows", (3, 5, 7)), ("t1", (1, 1, 9)), ("wide", (2, 65))]:
        D = shape[-1]
        f.case(case, rms_norm_ref, {"x": f.randn(*shape), "weight": f.randn(D, scale=0.5, shift=1.0)},
               ["x", "weight"])
    return f


def golden_gelu():
    f = Fixture("gelu", 103, erf="F.gelu(x)", tanh="F.gelu(x, approximate='tanh')")
    x = f.randn(4, 33, scale=2.5)
    f.case("erf", lambda x: F.gelu(x), {"x": x}, ["x"])
    f.case("tanh", lambda x: F.gelu(x, approximate="tanh"), {"x": x}, ["x"])
    return f


def golden_bias_gelu():
    f = Fixture("bias_gelu", 106, erf="F.gelu(x + bias)", tanh="F.gelu(x + bias, approximate='tanh')")
    x, bias = f.randn(3, 4, 33, scale=2.5), f.randn(33)
    f.case("erf", lambda x, bias: F.gelu(x + bias), {"x": x, "bias": bias}, ["x", "bias"])
    f.case("tanh", lambda x, bias: F.gelu(x + bias, approximate="tanh"), {"x": x, "bias": bias}, ["x", "bias"])
    return f


def golden_silu():
    f = Fixture("silu", 104)
    f.case("rows", lambda x: F.silu(x), {"x": f.randn(4, 33, scale=3.0)}, ["x"])
    return f


def golden_swiglu():
    f = Fixture("swiglu", 105, formula="silu(gate) * up")
    f.case("rows", lambda gate, up: F.silu(gate) * up, {"gate": f.randn(3, 5, 11, scale=2.0), "up": f.randn(3, 5, 11)},
           ["gate", "up"])
    return f


def softmax_fixture(op, fn, seed):
    f = Fixture(op, seed, dims="last: -1, dim1: 1, t1: -1, large: -1")
    f.case("last", lambda x: fn(x, -1), {"x": f.randn(3, 5, 7)}, ["x"])
    f.case("dim1", lambda x: fn(x, 1), {"x": f.randn(3, 5, 7)}, ["x"])
    f.case("t1", lambda x: fn(x, -1), {"x": f.randn(4, 1)}, ["x"])
    f.case("large", lambda x: fn(x, -1), {"x": f.randn(6, 129, scale=30.0)}, ["x"])
    return f


def golden_softmax():
    return softmax_fixture("softmax", torch.softmax, 106)


def golden_log_softmax():
    return softmax_fixture("log_softmax", torch.log_softmax, 107)


def golden_cross_entropy():
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


def golden_embedding():
    f = Fixture("embedding", 109)
    w = f.randn(17, 6)
    ids = torch.tensor([[3, 16, 3, 0, 5], [5, 5, 9, 3, 1], [0, 12, 16, 7, 3]])   # repeats on purpose
    emb = lambda weight, ids: F.embedding(ids, weight)
    f.case("rows", emb, {"weight": w, "ids": ids}, ["weight"])
    f.case("t1", emb, {"weight": w, "ids": torch.tensor([[4]])}, ["weight"])
    return f


def golden_masked_mix():
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


def golden_attention():
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


def golden_rope():
    f = Fixture("rope", 112, theta=1e4, convention="HF Llama rotate_half", offsets="rows: 0, t1: 0, offset5: 5, theta500: 0 (theta 500)")
    f.case("rows", lambda x: rope_ref(x), {"x": f.randn(2, 3, 5, 8)}, ["x"])
    f.case("t1", lambda x: rope_ref(x), {"x": f.randn(1, 2, 1, 6)}, ["x"])
    f.case("offset5", lambda x: rope_ref(x, pos_offset=5), {"x": f.randn(1, 2, 3, 8)}, ["x"])
    f.case("theta500", lambda x: rope_ref(x, theta=500.0), {"x": f.randn(1, 1, 7, 10)}, ["x"])
    return f


def golden_l2_normalize():
    f = Fixture("l2_normalize", 113, eps=1e-12, dims="last: -1, dim0: 0")
    f.case("last", lambda x: F.normalize(x, dim=-1, eps=1e-12), {"x": f.randn(4, 7)}, ["x"])
    f.case("dim0", lambda x: F.normalize(x, dim=0, eps=1e-12), {"x": f.randn(5, 3)}, ["x"])
    return f


def golden_cosine_similarity():
    f = Fixture("cosine_similarity", 114, eps=1e-8, dim=-1)
    f.case("rows", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), {"a": f.randn(5, 9), "b": f.randn(5, 9)},
           ["a", "b"])
    f.case("t1", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), {"a": f.randn(1, 4), "b": f.randn(1, 4)},
           ["a", "b"])
    return f


def golden_info_nce():
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
    return f


def pointwise_loss_fixture(op, fn, seed):
    f = Fixture(op, seed)
    inp, tgt = f.randn(4, 7), f.randn(4, 7)
    if op == "l1_loss":
        tgt[0, 0] = inp[0, 0]   # |d| at 0: gradient 0 in torch
    for red in ["mean", "sum", "none"]:
        f.case(red, lambda input, target: fn(input, target, reduction=red), {"input": inp, "target": tgt},
               ["input", "target"])
    return f


def golden_l1_loss():
    return pointwise_loss_fixture("l1_loss", F.l1_loss, 116)


def golden_mse_loss():
    return pointwise_loss_fixture("mse_loss", F.mse_loss, 117)


def optimizer_steps(f, prefix, make, keys):
    """Three steps; per step k (1-based): "<prefix>s<k>.grad.p<i>" the gradient set before the
    step, "<prefix>s<k>.param.p<i>" the parameter after it; "<prefix>init.param.p<i>" before the
    first step, and the torch state after the last step as "<prefix>final.<state key>.p<i>"."""
    params = [f.randn(3, 5).requires_grad_(True), f.randn(7).requires_grad_(True)]
    for i, p in enumerate(params):
        f.put(prefix + "init", f"param.p{i}", p)
    opt = make(params)
    for k in range(1, 4):
        for i, p in enumerate(params):
            p.grad = f.randn(*p.shape)
            f.put(f"{prefix}s{k}", f"grad.p{i}", p.grad)
        opt.step()
        for i, p in enumerate(params):
            f.put(f"{prefix}s{k}", f"param.p{i}", p)
    for i, p in enumerate(params):
        for key in keys:
            f.put(prefix + "final", f"{key}.p{i}", opt.state[p][key])
    f.cases += [prefix + c for c in ["init", "s1", "s2", "s3", "final"]]


def golden_adamw():
    opts = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    f = Fixture("adamw", 120, steps=3, **opts)
    optimizer_steps(f, "", lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
                    ["exp_avg", "exp_avg_sq"])
    return f


def golden_sgd():
    """Two configurations, cases prefixed momentum_ and nesterov_."""
    f = Fixture("sgd", 121, steps=3,
                momentum="lr 0.01, momentum 0.9, dampening 0, weight_decay 0.01, nesterov False",
                nesterov="lr 0.01, momentum 0.9, dampening 0, weight_decay 0, nesterov True")
    optimizer_steps(f, "momentum_", lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.0,
                                                               weight_decay=0.01, nesterov=False), ["momentum_buffer"])
    optimizer_steps(f, "nesterov_", lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.0,
                                                               weight_decay=0.0, nesterov=True), ["momentum_buffer"])
    return f


# (case, shape, p, seed, offset); tests/test_golden_ops.cpp runs the same cases.
DROPOUT_CASES = [("p005", (4, 33), 0.05, 2024, 0), ("p01", (3, 5, 7), 0.1, 7, 3),
                 ("p05", (2, 64), 0.5, 0x9E3779B97F4A7C15, 1)]


def golden_dropout():
    """torch cannot draw core/philox.h's mask, so the mask is computed by the port above and
    stored as "<case>.mask"; torch applies it (x * mask * (1 / (1 - p))) and differentiates."""
    f = Fixture("dropout", 140,
                formula="x * mask * (1 / (1 - p)), mask[i] = (philox uniform_f32(seed, offset, i) >= p)",
                cases_doc="; ".join(f"{c}: {list(s)} p {p} seed {seed:#x} offset {o}"
                                    for c, s, p, seed, o in DROPOUT_CASES))
    for case, shape, p, seed, offset in DROPOUT_CASES:
        x = f.randn(*shape)
        mask = dropout_mask(x.numel(), p, seed, offset).reshape(shape)
        f.case(case, lambda x: x * mask * (1.0 / (1.0 - p)), {"x": x}, ["x"], extra_outputs={"mask": mask})
    return f


def golden_matmul():
    f = Fixture("matmul", 130, cases_doc=(
        "matmul_batched [2,3,4,5]@[2,3,5,6]; matmul_broadcast [3,1,4,5]@[2,5,3]; matmul_t1 [1,7]@[7,3]; "
        "matmul_vec [5]@[2,5,3]"))
    f.case("matmul_batched", torch.matmul, {"input": f.randn(2, 3, 4, 5), "other": f.randn(2, 3, 5, 6)},
           ["input", "other"])
    f.case("matmul_broadcast", torch.matmul, {"input": f.randn(3, 1, 4, 5), "other": f.randn(2, 5, 3)},
           ["input", "other"])
    f.case("matmul_t1", torch.matmul, {"input": f.randn(1, 7), "other": f.randn(7, 3)}, ["input", "other"])
    f.case("matmul_vec", torch.matmul, {"input": f.randn(5), "other": f.randn(2, 5, 3)}, ["input", "other"])
    return f


def golden_reduce():
    f = Fixture("reduce", 131, cases_doc=(
        "x [3,4,5]: sum_dim1; sum_all; mean_02_keep (dims 0,2 keepdim); max_dim2 (amax); max_all; "
        "var_dim1 (correction 1); var_all_c0 (correction 0)"))
    x = lambda: f.randn(3, 4, 5)
    f.case("sum_dim1", lambda x: x.sum(dim=1), {"x": x()}, ["x"])
    f.case("sum_all", lambda x: x.sum(), {"x": x()}, ["x"])
    f.case("mean_02_keep", lambda x: x.mean(dim=(0, 2), keepdim=True), {"x": x()}, ["x"])
    f.case("max_dim2", lambda x: x.amax(dim=2), {"x": x()}, ["x"])
    f.case("max_all", lambda x: x.amax(dim=(0, 1, 2)), {"x": x()}, ["x"])
    f.case("var_dim1", lambda x: x.var(dim=1, unbiased=True), {"x": x()}, ["x"])
    f.case("var_all_c0", lambda x: x.var(unbiased=False), {"x": x()}, ["x"])
    return f


def golden_elementwise():
    f = Fixture("elementwise", 132, cases_doc="[4,6]: exp; log; tanh; pow2_5; pow_m1_5; pow3")
    f.case("exp", lambda x: torch.exp(x), {"x": f.randn(4, 6)}, ["x"])
    f.case("log", lambda x: torch.log(x), {"x": f.positive(4, 6)}, ["x"])
    f.case("tanh", lambda x: torch.tanh(x), {"x": f.randn(4, 6, scale=2.0)}, ["x"])
    f.case("pow2_5", lambda x: x.pow(2.5), {"x": f.positive(4, 6)}, ["x"])
    f.case("pow_m1_5", lambda x: x.pow(-1.5), {"x": f.positive(4, 6)}, ["x"])
    f.case("pow3", lambda x: x.pow(3.0), {"x": f.randn(4, 6)}, ["x"])
    return f


def main(argv):
    problems = check_generators()
    for p in problems:
        print("make_fixtures.py: " + p, file=sys.stderr)
    if problems:
        return 1
    if argv == ["--check"]:
        print(f"make_fixtures.py: {len(table_golden_ops())} golden ops in ops/op_table.def, each with its generator")
        return 0
    if torch is None:
        print("make_fixtures.py: needs torch (Debian: apt-get install python3-torch; run /usr/bin/python3)",
              file=sys.stderr)
        return 1
    unknown = [a for a in argv if a not in table_golden_ops()]
    if unknown:
        print(f"make_fixtures.py: not golden ops of ops/op_table.def: {' '.join(unknown)}", file=sys.stderr)
        return 1
    torch.use_deterministic_algorithms(True)
    total = 0
    for op in argv or table_golden_ops():
        f = globals()["golden_" + op]()
        assert f.op == op, f"golden_{op}() wrote a fixture named {f.op}"
        path = f.write()
        size = os.path.getsize(path)
        total += size
        print(f"{os.path.relpath(path)}: {len(f.tensors)} tensors, {size} bytes")
    print(f"total {total} bytes, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
